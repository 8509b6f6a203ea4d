//! Running the tools xtask drives, echoing each command first so a log shows
//! exactly what ran.

use std::ffi::OsStr;
use std::process::Command;

use crate::XtaskError;

/// `cargo`, as the one running xtask (so the pinned toolchain is used).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `command` with inherited output; an exit status other than 0 is an
/// error naming the command.
pub fn run(command: &mut Command) -> Result<(), XtaskError> {
    let shown = show(command);
    eprintln!("+ {shown}");
    let status = command.status().map_err(|source| XtaskError::Spawn {
        command: shown.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(XtaskError::Failed {
            command: shown,
            status,
        })
    }
}

fn show(command: &Command) -> String {
    let mut parts: Vec<String> = command
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    parts.push(command.get_program().to_string_lossy().into_owned());
    parts.extend(command.get_args().map(OsStr::to_string_lossy).map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    parts.join(" ")
}

/// Whether `program` is found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
