//! A full log disk (issue #17): the app is never held back, the lines that do not fit are
//! dropped whole (the file never ends in half a line), counted and shown (`list`, `describe`,
//! `jlist`, `logs`), and writing resumes by itself once there is room again.
//!
//! The disk is a 1 MiB tmpfs mounted in a mount namespace of the daemon's own (`unshare -m`),
//! so nothing is mounted on the machine and the kernel removes it with the daemon. The test
//! reads and frees the tmpfs through `/proc/<daemon>/root`. It needs root (to mount); without
//! it, the unit tests of `logs::output` play a full disk instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{path_str, run_with_deadline, wait_until, Home, BIN};

/// Start the daemon of `home` in a mount namespace where `dir` is a 1 MiB tmpfs; the path of
/// `dir` as seen from here. None when this cannot be done (not root, no unshare).
fn daemon_with_a_small_disk(home: &Home, dir: &Path) -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{}' && exec '{BIN}' ping",
        dir.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("RCLUSTER_HOME", &home.dir);
    let out = run_with_deadline(cmd, &["unshare"]);
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let pid = home.daemon_pid()?;
    Some(PathBuf::from(format!("/proc/{pid}/root")).join(dir.strip_prefix("/").ok()?))
}

const WRITER: &str = "import sys, time
for i in range(100000):
    sys.stdout.write('line %07d\\n' % i)
sys.stdout.flush()
sys.stderr.write('done\\n')
sys.stderr.flush()
n = 0
while True:
    n += 1
    print('tick %d' % n, flush=True)
    time.sleep(0.05)
";

fn dropped(home: &Home) -> u64 {
    let out = home.ok(&["jlist"]);
    let list: Value = serde_json::from_str(&out).expect("jlist");
    list[0]["log_lines_dropped"]
        .as_u64()
        .expect("log_lines_dropped")
}

#[test]
fn a_full_disk_drops_whole_lines_counts_them_and_resumes_by_itself() {
    let home = Home::new();
    let dir = home.work().join("small");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let Some(disk) = daemon_with_a_small_disk(&home, &dir) else {
        eprintln!("skipped: mounting a tmpfs in a mount namespace needs root and unshare");
        return;
    };
    // Most of the disk taken: the app's 1.3 MB cannot fit in what is left.
    let filler = disk.join("filler");
    std::fs::write(&filler, vec![0u8; 300 * 1024]).expect("fill");
    let out = dir.join("out.log");
    home.ok(&[
        "start",
        "python3",
        "--name",
        "fill",
        "-o",
        path_str(&out),
        "--",
        "-c",
        WRITER,
    ]);
    // Not held back: it wrote everything and went on.
    wait_until("the writer done", || {
        home.read_log("fill-error.log")
            .contains("done")
            .then_some(())
    });
    wait_until("drops counted", || (dropped(&home) > 0).then_some(()));
    let list = home.ok(&["ls"]);
    assert!(
        list.contains("app \"fill\":") && list.contains("log line(s) could not be written"),
        "{list}"
    );
    let described = home.ok(&["describe", "fill"]);
    assert!(described.contains("log lines dropped"), "{described}");
    let text = home.ok(&["logs", "fill", "--nostream"]);
    assert!(
        text.contains("App [fill:0] cannot write its logs: cannot write log file")
            && text.contains("no space left on device"),
        "{text}"
    );

    // Room again: writing resumes by itself, and says so.
    std::fs::remove_file(&filler).expect("free the disk");
    wait_until("writing resumed", || {
        home.ok(&["logs", "fill", "--nostream", "--json", "--lines", "50"])
            .lines()
            .any(|l| l.contains("\"status\":\"log resumed\""))
            .then_some(())
    });
    let count = dropped(&home);
    let file = std::fs::read_to_string(disk.join("out.log")).expect("the log file");
    assert!(file.ends_with('\n'), "the file ends in a whole line");
    let (mut lines, mut ticks) = (Vec::new(), Vec::new());
    for line in file.lines() {
        if let Some(n) = line.strip_prefix("line ") {
            lines.push(n.parse::<u64>().unwrap_or_else(|_| panic!("{line:?}")));
        } else if let Some(n) = line.strip_prefix("tick ") {
            ticks.push(n.parse::<u64>().unwrap_or_else(|_| panic!("{line:?}")));
        } else {
            panic!("a torn or glued line: {line:?}");
        }
    }
    assert!(lines.windows(2).all(|w| w[0] < w[1]) && ticks.windows(2).all(|w| w[0] < w[1]));
    assert!(
        lines.len() > 1000 && lines.len() < 100_000,
        "{}",
        lines.len()
    );
    // Every line is in the file or in the count.
    let last_tick = ticks.last().copied().expect("ticks after the recovery");
    let missing = (100_000 - lines.len() as u64) + (last_tick - ticks.len() as u64);
    assert_eq!(count, missing);
}
