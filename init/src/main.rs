//! The `liftoff` binary: PID 1 when the kernel starts it, a command-line
//! tool otherwise.

fn main() {
    // Taken before anything else so the first boot stamp is as close to the
    // kernel's hand-off as possible.
    let start = liftoff_init::stamps::boottime();
    if nix::unistd::getpid().as_raw() == 1 {
        liftoff_init::pid1::main(start);
    }
    std::process::exit(liftoff_init::cli::main(std::env::args_os().skip(1)));
}
