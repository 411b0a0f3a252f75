//! Basic log capture: every line of stdout/stderr (descendants included) in the app's files,
//! the tail with `logs --lines`, live lines with `logs --follow`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::{path_str, wait_until, Home};

#[test]
fn output_lands_in_files_whole_and_in_order() {
    let home = Home::new();
    let talk = home.write_script(
        "talk.sh",
        "#!/bin/sh\nfor i in $(seq 1 500); do echo \"out $i\"; done\necho 'to stderr' >&2\n(echo 'from a grandchild')\nprintf 'no newline at the end'\n",
    );
    // It ends by itself: its last line, without a newline, must be completed at EOF.
    home.ok(&["start", path_str(&talk), "--no-autorestart"]);
    let out = wait_until("all lines captured", || {
        let out = home.read_log("talk-out.log");
        out.contains("no newline at the end").then_some(out)
    });
    let expected: Vec<String> = (1..=500).map(|i| format!("out {i}")).collect();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..500],
        expected
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
    );
    assert_eq!(
        &lines[500..],
        &["from a grandchild", "no newline at the end"]
    );
    assert_eq!(home.read_log("talk-error.log"), "to stderr\n");

    let tail = home.ok(&["logs", "talk", "--lines", "2", "--out", "--raw"]);
    assert_eq!(tail, "from a grandchild\nno newline at the end\n");
}

#[test]
fn the_last_lines_of_a_crashing_instance_are_kept() {
    let home = Home::new();
    let dying = home.write_script("dying.sh", "#!/bin/sh\necho 'last words'\nkill -9 $$\n");
    home.ok(&["start", path_str(&dying), "--no-autorestart"]);
    wait_until("last words", || {
        home.read_log("dying-out.log")
            .contains("last words\n")
            .then_some(())
    });
}

#[test]
fn follow_streams_live_lines_with_prefixes() {
    let home = Home::new();
    let ticker = home.write_script(
        "ticker.sh",
        "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done\n",
    );
    home.ok(&["start", path_str(&ticker)]);
    let id = home.app("ticker")[0].id;
    let mut follower = home
        .command(&["logs", "ticker", "--follow", "--lines", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    let stdout = follower.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let prefix = format!("{id}|ticker");
    // Reads block until the daemon sends: the deadline guard kills the follower if it never does.
    let guard = std::thread::spawn({
        let pid = follower.id() as i32;
        move || {
            std::thread::sleep(crate::harness::DEADLINE); // a deadline, not synchronisation
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let mut live = 0;
    while live < 3 {
        line.clear();
        let n = reader.read_line(&mut line).expect("read follower");
        assert!(n > 0, "follower ended before live lines arrived");
        if line.starts_with(&prefix) && line.contains("tick") {
            live += 1;
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    drop(guard);
}
