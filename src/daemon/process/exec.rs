//! `rcluster __exec ARGV0 PROGRAM ARGS...`: the trampoline between the daemon's fork and the
//! program. It runs in the child, so it knows the pid the program will keep across exec, and
//! sets LISTEN_PID to it (sd_listen_fds(3) ignores fds whose LISTEN_PID is another process).

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Never returns on success (the process becomes the program).
pub fn main(args: &[String]) -> i32 {
    let [argv0, program, rest @ ..] = args else {
        eprintln!("rcluster __exec: usage: __exec ARGV0 PROGRAM [ARGS...]");
        return 2;
    };
    let mut command = Command::new(program);
    command.arg0(argv0).args(rest);
    if std::env::var_os("LISTEN_FDS").is_some() {
        command.env("LISTEN_PID", std::process::id().to_string());
    }
    let error = command.exec();
    eprintln!("rcluster: cannot execute {program}: {error}");
    127
}
