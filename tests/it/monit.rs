//! `monit` as a person sees it: driven in a real terminal (a private tmux server, its pane
//! read with capture-pane) against a real daemon. Skipped, with a message, without tmux.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rcluster::protocol::model::InstanceState;

use crate::harness::{have, path_str, wait_until, Home, BIN, DEADLINE};

/// A tmux server of this test's own (its socket in the test's home), killed on drop.
struct Terminal {
    socket: PathBuf,
}

impl Terminal {
    /// `rcluster monit ARGS` in a WIDTHxHEIGHT terminal; None when tmux is not installed.
    fn monit(home: &Home, args: &[&str], width: u16, height: u16) -> Option<Terminal> {
        if !have("tmux") {
            eprintln!("skipped: tmux is not installed (.ci/run installs it)");
            return None;
        }
        let conf = home.dir.join("tmux.conf");
        // The pane stays after monit exits, to read its exit status and the screen it left.
        std::fs::write(&conf, "set -g remain-on-exit on\nset -g status off\n").expect("conf");
        let terminal = Terminal {
            socket: home.dir.join("tmux.sock"),
        };
        let mut command = vec![
            "-f".to_owned(),
            path_str(&conf).to_owned(),
            "new-session".into(),
            "-d".into(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
            "env".into(),
            format!("RCLUSTER_HOME={}", path_str(&home.dir)),
            BIN.into(),
            "monit".into(),
        ];
        command.extend(args.iter().map(|a| (*a).to_owned()));
        terminal.tmux(&command.iter().map(String::as_str).collect::<Vec<_>>());
        Some(terminal)
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Wait until the screen shows every one of `texts`; the screen then. (Its own loop, not
    /// `wait_until`, to say what the screen showed when it gives up.)
    fn shows(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for the screen to show {texts:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50)); // polling interval, not synchronisation
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Once the pane's program has ended: its exit status (128 + N for a signal N) when tmux
    /// has it. tmux may see the pane's terminal close before it has reaped the program, and
    /// then has no status yet (seen on a loaded machine): the program has ended all the same.
    fn exited(&self) -> Option<Option<i32>> {
        let state = self.tmux(&[
            "display-message",
            "-p",
            "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}",
        ]);
        let mut fields = state.trim().split(':');
        if fields.next() != Some("1") {
            return None;
        }
        let number = |field: Option<&str>| field.and_then(|f| f.parse::<i32>().ok());
        let status = number(fields.next());
        let signal = number(fields.next());
        Some(status.or(signal.map(|s| 128 + s)))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// A program that says one line, then waits.
fn talker(line: &str) -> String {
    format!("python3 -c \"print('{line}', flush=True); import time; time.sleep(1000)\"")
}

#[test]
fn monit_shows_the_apps_their_logs_and_details_and_quits_on_q() {
    let home = Home::new();
    home.ok(&["start", &talker("hello from talker"), "--name", "talker"]);
    home.ok(&["start", "sleep 1000", "--name", "quiet"]);
    wait_until("both online", || {
        home.online_pids("talker", 1)
            .and_then(|_| home.online_pids("quiet", 1))
    });
    wait_until("talker's line in its log", || {
        home.read_log("talker-out.log")
            .contains("hello from talker")
            .then_some(())
    });
    let Some(term) = Terminal::monit(&home, &[], 120, 40) else {
        return;
    };
    // The first app is selected: its log line, its details, the keys.
    let screen = term.shows(&[
        "talker",
        "quiet",
        "hello from talker",
        "talker · details",
        "q  quit",
        "r  restart",
    ]);
    assert!(
        screen.contains("▶ 0"),
        "the first row is selected:\n{screen}"
    );
    assert!(screen.contains("cpu") && screen.contains("mem"), "{screen}");
    term.keys(&["Down"]);
    let screen = term.shows(&["quiet · details", "sleep 1000", "quiet · logs"]);
    assert!(screen.contains("▶ 1"), "the selection moved:\n{screen}");
    term.keys(&["Up"]);
    term.shows(&["talker · details"]);
    term.keys(&["q"]);
    if let Some(status) = wait_until("monit to exit", || term.exited()) {
        assert_eq!(status, 0, "{}", term.screen());
    }
    // It left the alternate screen: the dashboard is gone from the terminal.
    assert!(
        !term.screen().contains("talker · details"),
        "{}",
        term.screen()
    );
}

#[test]
fn monit_keys_restart_and_stop_the_selected_app() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "svc"]);
    let before = wait_until("online", || home.online_pids("svc", 1))[0];
    let Some(term) = Terminal::monit(&home, &["--interval", "200ms"], 120, 40) else {
        return;
    };
    term.shows(&[&before.to_string(), "svc · details"]);
    term.keys(&["r"]);
    let after = wait_until("a new pid", || {
        home.online_pids("svc", 1).filter(|p| p[0] != before)
    })[0];
    // rcluster's own records are among the app's lines, as in `logs`.
    term.shows(&[
        &format!("pid {after}"),
        "restarted svc",
        &format!("rcluster App [svc:0] started (pid {after})"),
    ]);
    // Stop asks first: anything but `y` cancels.
    term.keys(&["s"]);
    term.shows(&["stop svc? y to stop"]);
    term.keys(&["n"]);
    term.shows(&["stop svc: cancelled"]);
    assert_eq!(home.app("svc")[0].pid, Some(after));
    term.keys(&["s"]);
    term.shows(&["stop svc? y to stop"]);
    term.keys(&["y"]);
    home.wait_status("svc", InstanceState::Stopped);
    term.shows(&["stopped svc", "stopped"]);
    // (q, not Esc: a lone ESC byte is ambiguous to a terminal reader, and one sent by tmux
    // was seen lost; the model's test covers Esc.)
    term.keys(&["q"]);
    wait_until("monit to exit", || term.exited());
}

#[test]
fn monit_follows_new_lines_filters_and_fits_a_resized_terminal() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "early"]);
    wait_until("online", || home.online_pids("early", 1));
    let Some(term) = Terminal::monit(&home, &["--interval", "200ms"], 120, 40) else {
        return;
    };
    term.shows(&["early · details"]);
    // An app started after monit: its line arrives live (no file tail had it).
    home.ok(&["start", &talker("a live line"), "--name", "late"]);
    term.shows(&["late"]);
    term.keys(&["/", "l", "a", "t", "Enter"]);
    let screen = term.shows(&["/lat · 1 of 2", "late · details", "a live line"]);
    assert!(
        !screen.contains("early"),
        "the filter hides early:\n{screen}"
    );
    // Too small for four panes: the list and the keys.
    term.tmux(&["resize-window", "-x", "60", "-y", "14"]);
    let screen = term.shows(&["late", "q  quit"]);
    assert!(!screen.contains("details"), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 60), "{screen}");
    term.tmux(&["resize-window", "-x", "100", "-y", "30"]);
    term.shows(&["late · details", "late · logs", "a live line"]);
    term.keys(&["/", "BSpace", "BSpace", "BSpace", "Enter"]);
    term.shows(&["early", "late · details", "Instances · 2"]);
    term.keys(&["q"]);
    wait_until("monit to exit", || term.exited());
}

#[test]
fn monit_into_a_pipe_prints_tables() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "piped"]);
    wait_until("online", || home.online_pids("piped", 1));
    let out = home.ok(&["monit", "--count", "2", "--interval", "100ms"]);
    assert_eq!(out.matches("rcluster monit").count(), 2, "{out}");
    assert!(out.contains("piped") && !out.contains('\u{1b}'), "{out}");
}
