//! Lifecycle records in `logs` (issue #16): start, exit with its code or signal, restart and
//! why (crash, watch, memory, cron, command), errored and why, reload steps, shown as pm2 shows
//! its `PM2 | App [web:0] exited with code [1]` lines; `--json` lines with pm2's keys; lines from
//! the files with their instance id and timestamp.

use rcluster::protocol::model::InstanceState;
use serde_json::Value;

use crate::harness::{fixture, free_port, have, path_str, wait_until, Home};
use crate::logs::{follower, read_until};

/// Every JSON object `logs --json --nostream` prints for `target`.
fn json_history(home: &Home, target: &str) -> Vec<Value> {
    home.ok(&["logs", target, "--json", "--nostream", "--lines", "200"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn events(history: &[Value]) -> Vec<&Value> {
    history
        .iter()
        .filter(|v| v["type"] == "process_event")
        .collect()
}

fn has_event(history: &[Value], kind: &str, cause: Option<&str>) -> bool {
    events(history)
        .iter()
        .any(|e| e["kind"] == kind && cause.is_none_or(|c| e["cause"] == c))
}

#[test]
fn a_crashing_node_app_shows_start_exit_restart_and_errored() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    let app = home.write_script(
        "crashy.js",
        "console.log('up', process.pid);\nsetTimeout(() => process.exit(3), 100);\n",
    );
    home.ok(&["start", path_str(&app), "--max-restarts", "2"]);
    home.wait_status("crashy", InstanceState::Errored);
    // Past records first, as pm2 prints its own log's tail.
    let text = home.ok(&["logs", "crashy", "--nostream"]);
    let exit = text
        .lines()
        .find(|l| l.contains("exited"))
        .unwrap_or_else(|| panic!("no exit line: {text}"));
    assert!(
        exit.starts_with("rcluster    | App [crashy:0] exited with code 3 (pid "),
        "{exit:?}"
    );
    assert!(text.contains("App [crashy:0] restarting (crash)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("App [crashy:0] errored: too many unstable restarts")),
        "{text}"
    );
    // Live: the follower sees a restart by command, the start and the exit.
    let (mut child, mut reader) = follower(&home, &["logs", "crashy", "--lines", "0"]);
    // Its first header comes once it is subscribed.
    read_until(&mut reader, "a header", |l| l.starts_with("==> "));
    home.ok(&["restart", "crashy"]);
    for what in ["restarting (command)", "started (pid", "exited with code 3"] {
        read_until(&mut reader, what, |l| {
            l.starts_with("rcluster    | App [crashy:0] ") && l.contains(what)
        });
    }
    let _ = child.kill();
    let _ = child.wait();

    let history = json_history(&home, "crashy");
    let exits: Vec<&Value> = events(&history)
        .into_iter()
        .filter(|e| e["status"] == "exit")
        .collect();
    assert!(exits.len() >= 3, "{history:?}");
    for exit in &exits {
        assert_eq!(exit["code"], 3);
        assert_eq!(exit["app_name"], "crashy");
        assert_eq!(exit["process_id"], 0);
        assert!(exit["pid"].as_u64().is_some_and(|p| p > 0));
        assert!(exit["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24));
    }
    let starts = events(&history)
        .iter()
        .filter(|e| e["status"] == "online")
        .count();
    assert!(starts >= 3, "{history:?}");
    let errored = events(&history)
        .into_iter()
        .find(|e| e["kind"] == "errored")
        .expect("an errored record");
    assert_eq!(errored["status"], "restart overlimit");
    assert_eq!(errored["cause"], "unstable");
    // The app's own lines come with pm2's keys.
    let up = history
        .iter()
        .find(|v| v["type"] == "out")
        .expect("an out line");
    assert!(up["message"].as_str().is_some_and(|m| m.starts_with("up ")));
    assert_eq!(up["app_name"], "crashy");
    assert_eq!(up["process_id"], 0);

    // A program that cannot start (its interpreter is missing; a missing script is refused
    // before anything is added): errored at once, and why.
    home.write_script("ghost.py", "print('never')\n");
    home.fails(&[
        "start",
        "ghost.py",
        "--interpreter",
        "/surely/not/there",
        "--name",
        "ghost",
    ]);
    let history = json_history(&home, "ghost");
    assert!(has_event(&history, "errored", Some("spawn")), "{history:?}");
    // --out/--err show the stream alone, as pm2 does.
    let out_only = home.ok(&["logs", "crashy", "--out", "--nostream"]);
    assert!(!out_only.contains("App [crashy"), "{out_only}");
}

#[test]
fn restarts_say_why_watch_memory_cron_command_and_reload_steps() {
    let home = Home::new();
    let work = home.work();
    std::fs::write(work.join("app.py"), "v1").expect("write");
    home.ok(&["start", "sleep 1000", "--name", "watched", "--watch"]);
    // Cron with seconds: every second.
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "timed",
        "--cron-restart",
        "* * * * * *",
    ]);
    home.ok(&[
        "start",
        "python3",
        "--name",
        "hungry",
        "--max-memory-restart",
        "30M",
        "--",
        "-c",
        "import time\nx = bytearray(80 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\ntime.sleep(1000)",
    ]);
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&["start", &cmd, "--name", "web", "-i", "2"]);
    wait_until("web online", || home.online_pids("web", 2));
    home.ok(&["reload", "web"]);
    home.ok(&["restart", "timed"]);
    // Said before the command answers (and checked now: the cron restarts that follow push
    // older records out of the app's history).
    assert!(has_event(
        &json_history(&home, "timed"),
        "restart",
        Some("command")
    ));
    std::fs::write(work.join("app.py"), "v2").expect("change a watched file");
    for (app, cause) in [
        ("watched", "watch"),
        ("timed", "cron"),
        ("hungry", "memory"),
    ] {
        wait_until(&format!("{app} restarting ({cause})"), || {
            has_event(&json_history(&home, app), "restart", Some(cause)).then_some(())
        });
    }
    let history = json_history(&home, "web");
    for kind in ["reload_start", "reload_ready"] {
        let steps = events(&history)
            .iter()
            .filter(|e| e["kind"] == kind)
            .count();
        assert_eq!(steps, 2, "{kind}: {history:?}");
    }
    let id = home.app("web")[0].id;
    let text = home.ok(&["logs", "web", "--nostream"]);
    assert!(
        text.contains(&format!("App [web:{id}] reload: new instance ready (pid ")),
        "{text}"
    );
    // A stop says so, then how the program ended.
    home.ok(&["stop", "watched"]);
    let history = json_history(&home, "watched");
    let tail: Vec<&str> = events(&history)
        .iter()
        .rev()
        .take(2)
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(tail, ["exit", "stop"], "{history:?}");
}

#[test]
fn history_lines_carry_their_instance_id_and_timestamp() {
    let home = Home::new();
    home.ok(&[
        "start",
        "sh",
        "--name",
        "stamped",
        "-i",
        "2",
        "--time",
        "--no-autorestart",
        "--",
        "-c",
        "echo \"hello from $RCLUSTER_INSTANCE\"",
    ]);
    let ids: Vec<u32> = home.app("stamped").iter().map(|i| i.id).collect();
    wait_until("both lines in the files", || {
        let lines: Vec<Value> = json_history(&home, "stamped")
            .into_iter()
            .filter(|v| v["type"] == "out")
            .collect();
        (lines.len() == 2).then_some(())
    });
    for line in json_history(&home, "stamped")
        .iter()
        .filter(|v| v["type"] == "out")
    {
        let index: u32 = line["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("hello from "))
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(line["process_id"], ids[index as usize], "{line}");
        // pm2's --time stamp, as the file has it: `YYYY-MM-DDTHH:mm:ss`.
        let stamp = line["timestamp"].as_str().expect("a timestamp");
        assert!(stamp.len() == 19 && &stamp[10..11] == "T", "{line}");
    }
    // In text, a file's lines are prefixed with their instance's id too, as pm2 does.
    let text = home.ok(&["logs", "stamped", "--nostream", "--out"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{}|stamped", ids[1])) && l.ends_with("hello from 1")),
        "{text}"
    );
}
