//! Logs (issue #6): every line whole, once, in order per stream — under full-speed writers, across
//! rotations, at a crash, with huge lines, with a follower that stopped reading; per-line
//! timestamps and JSON lines; `flush`, `reloadLogs`; the `logs` command's tail, follow and
//! output forms. Writers are real programs (`python3`, `seq`) going as fast as they can.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use rcluster::protocol::model::InstanceState;

use crate::harness::{have, path_str, wait_until, Home, DEADLINE};

/// A writer as fast as Python goes: `per` lines `"<instance> <n>"` per instance, in big writes.
const FAST_WRITER: &str = "import os
i = os.environ['RCLUSTER_INSTANCE']
per = int(os.environ['PER'])
for start in range(0, per, 20000):
    data = ''.join(f'{i} {n}\\n' for n in range(start, min(per, start + 20000))).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
";

fn expected_bytes(instances: u32, per: u64) -> u64 {
    (0..instances)
        .flat_map(|i| (0..per).map(move |n| format!("{i} {n}\n").len() as u64))
        .sum()
}

/// Start `instances` fast writers of `per` lines each, with extra flags.
fn start_writers(home: &Home, name: &str, instances: u32, per: u64, extra: &[&str]) {
    let per = format!("PER={per}");
    let instances = instances.to_string();
    let mut args = vec![
        "start",
        "python3",
        "--name",
        name,
        "-i",
        &instances,
        "--no-autorestart",
        // One file for all instances: the writer interleaves them, lines whole.
        "--merge-logs",
        "--env-var",
        &per,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "-c", FAST_WRITER]);
    home.ok(&args);
}

/// Every line of `text` once, and each instance's lines in order 0..per.
fn assert_each_line_once_in_order(text: &str, instances: u32, per: u64) {
    let mut next: HashMap<u32, u64> = HashMap::new();
    let mut count = 0u64;
    for line in text.lines() {
        let (i, n) = line
            .split_once(' ')
            .and_then(|(i, n)| Some((i.parse::<u32>().ok()?, n.parse::<u64>().ok()?)))
            .unwrap_or_else(|| panic!("a broken line: {:?}", &line[..line.len().min(80)]));
        let want = next.entry(i).or_insert(0);
        assert_eq!(n, *want, "instance {i}: line {n} where {want} was due");
        *want += 1;
        count += 1;
    }
    assert_eq!(count, u64::from(instances) * per, "line count");
    for i in 0..instances {
        assert_eq!(next.get(&i), Some(&per), "instance {i} complete");
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wait_stopped(home: &Home, name: &str) {
    home.wait_status(name, InstanceState::Stopped);
}

#[test]
fn a_million_lines_from_four_instances_arrive_exactly_once() {
    let home = Home::new();
    let per = 250_000;
    start_writers(&home, "flood", 4, per, &[]);
    let out = home.log_file("flood-out.log");
    let want = expected_bytes(4, per);
    wait_stopped(&home, "flood");
    wait_until("1,000,000 lines in the file", || {
        (file_len(&out) >= want).then_some(())
    });
    let text = std::fs::read_to_string(&out).expect("out file");
    assert_eq!(text.len() as u64, want, "no more, no less");
    assert_each_line_once_in_order(&text, 4, per);

    // A long tail comes through in several frames, whole.
    let tail = home.ok(&[
        "logs",
        "flood",
        "--out",
        "--raw",
        "--lines",
        "300000",
        "--nostream",
    ]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 300_000);
    assert_eq!(
        lines[..],
        text.lines().skip(700_000).collect::<Vec<_>>()[..]
    );
}

/// The live file and its rotated siblings (`.1`, `.2`…, maybe `.gz`), oldest first.
fn rotated_set(live: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut k = 1;
    loop {
        let plain = PathBuf::from(format!("{}.{k}", live.display()));
        let gz = PathBuf::from(format!("{}.{k}.gz", live.display()));
        if plain.exists() {
            files.push(plain);
        } else if gz.exists() {
            files.push(gz);
        } else {
            break;
        }
        k += 1;
    }
    files.reverse();
    files.push(live.to_path_buf());
    files
}

/// The rotated set's files and their text, oldest first, once `done` accepts them and the same
/// was read twice in a row: the daemon may still be writing (and rotating) the program's last
/// output, and a rotation between the reads of two files would mix them up. A file renamed
/// while being read shows up as an error, and the set is read again.
fn settled_read(
    what: &str,
    live: &Path,
    done: impl Fn(&[PathBuf], &str) -> bool,
) -> (Vec<PathBuf>, String) {
    let mut last: Option<(Vec<PathBuf>, String)> = None;
    wait_until(what, || {
        let files = rotated_set(live);
        let text = files
            .iter()
            .map(|p| try_read_any(p).ok())
            .collect::<Option<String>>()?;
        let read = (files, text);
        let settled = last.as_ref() == Some(&read) && done(&read.0, &read.1);
        last = Some(read);
        if settled {
            last.take()
        } else {
            None
        }
    })
}

fn try_read_any(path: &Path) -> std::io::Result<String> {
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

#[test]
fn rotation_under_load_loses_and_repeats_nothing() {
    let home = Home::new();
    let per = 250_000;
    start_writers(
        &home,
        "spin",
        4,
        per,
        &["--log-max-size", "200K", "--log-retain", "1000"],
    );
    let live = home.log_file("spin-out.log");
    let want = expected_bytes(4, per);
    wait_stopped(&home, "spin");
    let (files, text) = settled_read("every line in the rotated set", &live, |_, text| {
        text.len() as u64 >= want
    });
    assert!(files.len() > 10, "rotated {} times", files.len() - 1);
    for file in &files {
        assert!(
            file_len(file) <= 200 * 1024,
            "{} over the limit",
            file.display()
        );
    }
    assert_eq!(text.len() as u64, want);
    assert_each_line_once_in_order(&text, 4, per);
}

#[test]
fn rotation_keeps_retain_files_and_compresses_them() {
    let home = Home::new();
    let per = 30_000;
    start_writers(
        &home,
        "zip",
        1,
        per,
        &[
            "--log-max-size",
            "20K",
            "--log-retain",
            "3",
            "--log-compress",
        ],
    );
    let live = home.log_file("zip-out.log");
    wait_stopped(&home, "zip");
    // The last rotation's file is compressed in the background: wait for it too.
    let (_, text) = settled_read(
        "3 compressed rotated files ending with the last line",
        &live,
        |files, text| {
            let gz = files
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "gz"))
                .count();
            files.len() == 4 && gz == 3 && text.ends_with(&format!(" {}\n", per - 1))
        },
    );
    assert!(!PathBuf::from(format!("{}.4.gz", live.display())).exists());
    // The newest lines are all there, in order, ending with the last one.
    let numbers: Vec<u64> = text
        .lines()
        .map(|l| l.split_once(' ').expect("a line").1.parse().expect("n"))
        .collect();
    assert_eq!(numbers.last(), Some(&(per - 1)));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "consecutive");
}

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

    let tail = home.ok(&[
        "logs",
        "talk",
        "--lines",
        "2",
        "--out",
        "--raw",
        "--nostream",
    ]);
    assert_eq!(tail, "from a grandchild\nno newline at the end\n");
    let json = home.ok(&[
        "logs",
        "talk",
        "--lines",
        "1",
        "--err",
        "--json",
        "--nostream",
    ]);
    let line: serde_json::Value = serde_json::from_str(json.trim()).expect("a JSON line");
    assert_eq!(line["app"], "talk");
    assert_eq!(line["stream"], "err");
    assert_eq!(line["message"], "to stderr");
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
    // A burst, then a final line without a newline, then SIGKILL.
    home.ok(&[
        "start",
        "python3",
        "--name",
        "burst",
        "--no-autorestart",
        "--",
        "-c",
        "import os, signal\nos.write(1, b''.join(b'line %d\\n' % n for n in range(20000)) + b'final words')\nos.kill(os.getpid(), signal.SIGKILL)",
    ]);
    let out = wait_until("the final words", || {
        let out = home.read_log("burst-out.log");
        out.ends_with("final words\n").then_some(out)
    });
    assert_eq!(out.lines().count(), 20_001);
    assert!(out.starts_with("line 0\nline 1\n"));
}

#[test]
fn long_lines_are_whole_and_runaway_lines_cut_with_a_marker() {
    let home = Home::new();
    home.ok(&[
        "start",
        "python3",
        "--name",
        "long",
        "--no-autorestart",
        "--",
        "-c",
        "import os\nfor chunk in [b'a' * 200000 + b'\\n', b'b' * 1500000 + b'\\n', b'after\\n']:\n    view = memoryview(chunk)\n    while view:\n        view = view[os.write(1, view):]",
    ]);
    let out = wait_until("the line after", || {
        let out = home.read_log("long-out.log");
        out.ends_with("after\n").then_some(out)
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].len(), 200_000, "a line past 64 KiB is whole");
    assert!(lines[0].bytes().all(|b| b == b'a'));
    let marker = " [rcluster: line cut at 1 MiB]";
    assert_eq!(lines[1].len(), (1 << 20) + marker.len());
    assert!(lines[1].ends_with(marker) && lines[1].starts_with("bbbb"));
    assert_eq!(lines[2], "after");
}

/// `logs -f` as a child whose stdout we read only when told.
pub fn follower(home: &Home, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = home
        .command(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    let stdout = child.stdout.take().expect("stdout");
    // Reads block until the daemon sends: this guard ends the follower at the deadline.
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(DEADLINE); // a deadline, not synchronisation
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    (child, BufReader::new(stdout))
}

pub fn read_until(reader: &mut impl BufRead, what: &str, found: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read follower");
        assert!(n > 0, "follower ended before {what}");
        if found(&line) {
            return line;
        }
    }
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
    let (mut child, mut reader) = follower(&home, &["logs", "ticker", "--follow", "--lines", "0"]);
    let prefix = format!("{id}|ticker");
    for _ in 0..3 {
        read_until(&mut reader, "live lines", |l| {
            l.starts_with(&prefix) && l.contains("tick")
        });
    }
    let _ = child.kill();
    let _ = child.wait();

    // --json and --timestamp on live lines.
    let (mut child, mut reader) =
        follower(&home, &["logs", "ticker", "-f", "--lines", "0", "--json"]);
    let line = read_until(&mut reader, "a JSON line", |l| l.contains("tick"));
    let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(value["id"], id);
    assert_eq!(value["app"], "ticker");
    assert!(value["timestamp"].as_str().is_some_and(|t| t.len() >= 23));
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, mut reader) = follower(
        &home,
        &[
            "logs",
            "ticker",
            "-f",
            "--lines",
            "0",
            "--timestamp",
            "--raw",
        ],
    );
    let line = read_until(&mut reader, "a stamped line", |l| l.contains("tick"));
    assert!(
        line.as_bytes()[..4].iter().all(u8::is_ascii_digit) && line.as_bytes()[10] == b'T',
        "{line:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `logs` follows by default, as `pm2 logs` does, even into a pipe; `--nostream` prints and
/// exits; a follower whose reader went away (`logs | head`) exits though the app is quiet.
#[test]
fn logs_follow_by_default_and_nostream_prints_and_exits() {
    let home = Home::new();
    let ticker = home.write_script(
        "ticker.sh",
        "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done\n",
    );
    home.ok(&["start", path_str(&ticker)]);
    let (mut child, mut reader) = follower(&home, &["logs", "ticker", "--lines", "0"]);
    for _ in 0..3 {
        read_until(&mut reader, "live lines without -f", |l| {
            l.contains("| tick ")
        });
    }
    assert!(child.try_wait().expect("wait").is_none(), "still following");
    let _ = child.kill();
    let _ = child.wait();

    let printed = home.ok(&["logs", "ticker", "--lines", "2", "--raw", "--nostream"]);
    assert_eq!(printed.lines().count(), 2, "{printed}");
    home.fails(&["logs", "ticker", "--nostream", "--follow"]);

    // A quiet app: the follower's reader closes the pipe after one line, and the follower
    // ends without a next line to fail on.
    home.ok(&[
        "start",
        "sh",
        "--name",
        "quiet",
        "--",
        "-c",
        "echo one; echo two; exec sleep 1000",
    ]);
    wait_until("quiet's lines in the file", || {
        (home.read_log("quiet-out.log").lines().count() == 2).then_some(())
    });
    let (mut child, mut reader) = follower(&home, &["logs", "quiet", "--raw", "--out"]);
    read_until(&mut reader, "a tail line", |l| l.contains("one"));
    drop(reader);
    wait_until("the follower ends with its reader", || {
        child.try_wait().expect("wait").map(|_| ())
    });
}

#[test]
fn a_stalled_follower_slows_nothing_and_is_told_what_it_missed() {
    let home = Home::new();
    let ticker = home.write_script(
        "ticker.sh",
        "#!/bin/sh\nwhile true; do echo ready; sleep 0.05; done\n",
    );
    home.ok(&["start", path_str(&ticker)]);
    let (mut child, mut reader) = follower(&home, &["logs", "-f", "--lines", "0"]);
    // Subscribed once it saw a line go by; from here on nobody reads its output.
    read_until(&mut reader, "the subscription", |l| l.contains("ready"));
    home.ok(&["stop", "ticker"]);

    let count = 2_000_000u64;
    let count_text = count.to_string();
    home.ok(&[
        "start",
        "seq",
        "--name",
        "seq",
        "--no-autorestart",
        "--",
        "1",
        &count_text,
    ]);
    let want: u64 = (1..=count).map(|n| n.to_string().len() as u64 + 1).sum();
    let out = home.log_file("seq-out.log");
    wait_stopped(&home, "seq");
    wait_until("every line in the file", || {
        (file_len(&out) >= want).then_some(())
    });
    let text = std::fs::read_to_string(&out).expect("out");
    assert_eq!(text.len() as u64, want);
    assert!(text
        .lines()
        .zip(1..)
        .all(|(line, n): (&str, u64)| line.parse::<u64>() == Ok(n)));

    // Reading again, the follower learns how many lines it missed.
    let notice = read_until(&mut reader, "the dropped-lines notice", |l| {
        l.contains("lines dropped")
    });
    let missed: u64 = notice
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(missed > 0 && missed < count, "{notice}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn timestamps_per_line_and_json_lines() {
    let home = Home::new();
    let script = "import os\nos.write(1, b'one\\ntwo\\nthree')";
    home.ok(&[
        "start",
        "python3",
        "--name",
        "pm2time",
        "--time",
        "--no-autorestart",
        "--",
        "-c",
        script,
    ]);
    home.ok(&[
        "start",
        "python3",
        "--name",
        "fmt",
        "--log-date-format",
        "YYYY-MM-DD HH:mm:ss.SSS Z",
        "--no-autorestart",
        "--",
        "-c",
        script,
    ]);
    home.ok(&[
        "start",
        "python3",
        "--name",
        "js",
        "--log-type",
        "json",
        "--no-autorestart",
        "--",
        "-c",
        script,
    ]);
    let lines = |name: &str| {
        wait_until(&format!("{name}'s three lines"), || {
            let text = home.read_log(&format!("{name}-out.log"));
            (text.lines().count() == 3 && text.ends_with('\n')).then_some(text)
        })
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    for (line, word) in lines("pm2time").lines().zip(["one", "two", "three"]) {
        // pm2's --time: `YYYY-MM-DDTHH:mm:ss: line`.
        let (stamp, rest) = line.split_at(19);
        assert_eq!(rest, format!(": {word}"), "{line:?}");
        assert!(digits(&stamp[..4]) && &stamp[10..11] == "T", "{line:?}");
    }
    for (line, word) in lines("fmt").lines().zip(["one", "two", "three"]) {
        // `2024-03-05 08:08:09.123 +01:00: one`
        let (stamp, rest) = line.split_at(30);
        assert_eq!(rest, format!(": {word}"), "{line:?}");
        assert!(
            digits(&stamp[20..23]) && (stamp[24..25] == *"+" || stamp[24..25] == *"-"),
            "{line:?}"
        );
    }
    let id = home.app("js")[0].id;
    for (line, word) in lines("js").lines().zip(["one", "two", "three"]) {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(value["message"], word);
        assert_eq!(value["app"], "js");
        assert_eq!(value["id"], id);
        assert_eq!(value["instance"], 0);
        assert_eq!(value["stream"], "out");
        assert!(value["timestamp"].as_str().is_some_and(|t| t.len() >= 23));
    }
}

#[test]
fn per_instance_combined_and_discarded_files() {
    let home = Home::new();
    let work = home.work();
    let combined = work.join("all.log");
    home.ok(&[
        "start",
        "sh",
        "--name",
        "split",
        "-i",
        "2",
        "--log",
        path_str(&combined),
        "--no-autorestart",
        "--",
        "-c",
        "echo \"out $RCLUSTER_INSTANCE\"; echo \"err $RCLUSTER_INSTANCE\" >&2",
    ]);
    for i in 0..2 {
        let out = wait_until("per-instance files", || {
            let out = home.read_log(&format!("split-out-{i}.log"));
            let err = home.read_log(&format!("split-error-{i}.log"));
            (!out.is_empty() && !err.is_empty()).then_some((out, err))
        });
        assert_eq!(out, (format!("out {i}\n"), format!("err {i}\n")));
    }
    let all = wait_until("the combined file", || {
        let all = std::fs::read_to_string(&combined).unwrap_or_default();
        (all.lines().count() == 4).then_some(all)
    });
    for line in ["out 0", "out 1", "err 0", "err 1"] {
        assert!(all.lines().any(|l| l == line), "{all}");
    }
    home.ok(&[
        "start",
        "sh",
        "--name",
        "quiet",
        "--output",
        "/dev/null",
        "--no-autorestart",
        "--",
        "-c",
        "echo gone; echo kept >&2",
    ]);
    wait_until("stderr kept", || {
        (home.read_log("quiet-error.log") == "kept\n").then_some(())
    });
    wait_stopped(&home, "quiet");
    assert!(!home.log_file("quiet-out.log").exists());

    // pm2's --merge-logs: one file for the app's instances.
    home.ok(&[
        "start",
        "sh",
        "--name",
        "merged",
        "-i",
        "2",
        "--merge-logs",
        "--no-autorestart",
        "--",
        "-c",
        "echo \"out $RCLUSTER_INSTANCE\"",
    ]);
    let merged = wait_until("one file for both", || {
        let text = home.read_log("merged-out.log");
        (text.lines().count() == 2).then_some(text)
    });
    for line in ["out 0", "out 1"] {
        assert!(merged.lines().any(|l| l == line), "{merged}");
    }
    assert!(!home.log_file("merged-out-0.log").exists());

    // Ecosystem files as pm2 reads them: `instances` (or cluster mode) splits, `merge_logs`
    // merges, an app with neither has one file.
    let eco = home.work().join("eco.json");
    let app = |name: &str, extra: &str| {
        format!(
            r#"{{"name": "{name}", "script": "sh", "args": ["-c", "echo $RCLUSTER_INSTANCE"], "autorestart": false{extra}}}"#
        )
    };
    std::fs::write(
        &eco,
        format!(
            r#"{{"apps": [{}, {}, {}, {}]}}"#,
            app("e1", r#", "instances": 1"#),
            app("e2", r#", "instances": 2, "merge_logs": true"#),
            app("e3", ""),
            app("e4", r#", "exec_mode": "cluster""#),
        ),
    )
    .expect("write eco.json");
    home.ok(&["start", path_str(&eco)]);
    for file in ["e1-out-0.log", "e2-out.log", "e3-out.log", "e4-out-0.log"] {
        wait_until(file, || (!home.read_log(file).is_empty()).then_some(()));
    }
    for absent in ["e1-out.log", "e2-out-0.log", "e3-out-0.log", "e4-out.log"] {
        assert!(!home.log_file(absent).exists(), "{absent}");
    }
}

fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("tick ").and_then(|n| n.parse().ok()))
        .collect()
}

#[test]
fn flush_empties_and_reload_logs_reopens_after_an_external_rotation() {
    let home = Home::new();
    let ticker = home.write_script(
        "ticker.sh",
        "#!/bin/sh\ni=0\nwhile [ $i -lt 100000 ]; do i=$((i+1)); echo \"tick $i\"; sleep 0.01; done\n",
    );
    home.ok(&["start", path_str(&ticker)]);
    let live = home.log_file("ticker-out.log");
    let seen = wait_until("some ticks", || {
        let t = ticks(&home.read_log("ticker-out.log"));
        (t.len() >= 5).then_some(t)
    });
    let last_before = *seen.last().expect("a tick");
    home.ok(&["flush", "ticker"]);
    wait_until("a flushed file filling again", || {
        let t = ticks(&home.read_log("ticker-out.log"));
        // Everything still there came after the flush.
        t.first()
            .is_some_and(|first| *first > last_before)
            .then_some(())
    });

    // logrotate's `create` mode: move the file away, then tell rcluster.
    let moved = home.work().join("ticker-out.log.old");
    std::fs::rename(&live, &moved).expect("move the log away");
    home.ok(&["reloadLogs"]);
    wait_until("a new file with lines", || {
        (ticks(&home.read_log("ticker-out.log")).len() >= 3).then_some(())
    });
    home.ok(&["stop", "ticker"]);
    wait_stopped(&home, "ticker");
    let mut all = ticks(&std::fs::read_to_string(&moved).expect("old file"));
    let new = ticks(&home.read_log("ticker-out.log"));
    assert!(!new.is_empty());
    all.extend(new);
    assert!(
        all.windows(2).all(|w| w[1] == w[0] + 1),
        "no tick lost or repeated across the reopen"
    );
}

#[test]
fn a_shell_pipeline_loses_no_line() {
    // `yes | head`: a shell pipeline as an app, its lines counted exactly.
    if !have("head") {
        eprintln!("skipped: no head");
        return;
    }
    let home = Home::new();
    home.ok(&[
        "start",
        "yes hello | head -n 300000",
        "--name",
        "yes",
        "--no-autorestart",
    ]);
    let want = 300_000 * 6;
    let out = home.log_file("yes-out.log");
    wait_stopped(&home, "yes");
    wait_until("300000 lines", || (file_len(&out) >= want).then_some(()));
    let text = std::fs::read_to_string(&out).expect("out");
    assert_eq!(text.len() as u64, want);
    assert!(text.lines().all(|l| l == "hello"));
}
