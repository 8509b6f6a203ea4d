//! `host-ctr`: see [`host_ctr::cli`]. The binary only hands its arguments
//! and standard streams to the library.

use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    let status = host_ctr::cli::run(
        std::env::args_os().skip(1),
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    );
    ExitCode::from(status)
}
