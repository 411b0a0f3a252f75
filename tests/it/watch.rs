//! watch: a change under the app's folder restarts it; ignored paths (node_modules, hidden
//! files, --ignore-watch) and the app's own log files do not; new folders are watched too.

use std::path::Path;

use crate::harness::{have, wait_until, Home};

fn daemon_log(home: &Home) -> String {
    std::fs::read_to_string(home.dir.join("daemon.log")).unwrap_or_default()
}

/// The paths named by "change detected on …" lines of the daemon log, in order.
fn detected(home: &Home) -> Vec<String> {
    daemon_log(home)
        .lines()
        .filter_map(|l| l.split("change detected on ").nth(1))
        .filter_map(|rest| rest.split(':').next())
        .map(str::to_owned)
        .collect()
}

fn wait_restarts(home: &Home, name: &str, n: u32) {
    wait_until(&format!("{name} restarted {n} time(s) and online"), || {
        let app = home.app(name);
        (app[0].restarts == n && app[0].pid.is_some()).then_some(())
    });
}

fn touch(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write a watched file");
}

#[test]
fn a_change_restarts_and_ignored_paths_do_not() {
    let home = Home::new();
    let work = home.work();
    std::fs::create_dir_all(work.join("node_modules/lib")).expect("mkdir");
    std::fs::create_dir_all(work.join("cache")).expect("mkdir");
    touch(&work.join("app.js"), "v1");
    home.ok(&["start", "sleep 1000", "--name", "dev", "--watch"]);
    wait_until("online", || home.online_pids("dev", 1));

    // Ignored by default: node_modules and hidden files. Then a real change.
    touch(&work.join("node_modules/lib/index.js"), "x");
    touch(&work.join(".env.swp"), "x");
    touch(&work.join("app.js"), "v2");
    wait_restarts(&home, "dev", 1);
    assert_eq!(
        detected(&home),
        vec![work.join("app.js").display().to_string()]
    );

    // A folder made after the start is watched as well.
    std::fs::create_dir(work.join("src")).expect("mkdir");
    wait_restarts(&home, "dev", 2);
    touch(&work.join("src/new.js"), "x");
    wait_restarts(&home, "dev", 3);
    assert_eq!(
        detected(&home).last().map(String::as_str),
        Some(work.join("src/new.js").display().to_string().as_str())
    );
}

#[test]
fn ignore_watch_and_own_logs_are_left_alone() {
    let home = Home::new();
    let work = home.work();
    std::fs::create_dir_all(work.join("tmp")).expect("mkdir");
    home.ok(&[
        "start",
        "sh -c 'while :; do echo line; sleep 0.02; done'",
        "--name",
        "chatty",
        "-o",
        "out.log",
        "--watch",
        "--ignore-watch",
        "tmp *.bak",
    ]);
    wait_until("its log is being written", || {
        let lines = std::fs::read_to_string(work.join("out.log")).unwrap_or_default();
        (lines.lines().count() >= 5).then_some(())
    });
    touch(&work.join("tmp/scratch"), "x");
    touch(&work.join("notes.bak"), "x");
    touch(&work.join("config.json"), "{}");
    wait_restarts(&home, "chatty", 1);
    assert_eq!(
        detected(&home),
        vec![work.join("config.json").display().to_string()]
    );
}

#[test]
fn javascript_regexps_in_ignore_watch() {
    if !have("node") {
        eprintln!("skipped: no node to evaluate ecosystem.config.js");
        return;
    }
    let home = Home::new();
    let work = home.work();
    std::fs::create_dir_all(work.join("data")).expect("mkdir");
    // As pm2 users write them: RegExp objects, tested against the full path (chokidar's way).
    std::fs::write(
        work.join("ecosystem.config.js"),
        "module.exports = { apps: [{ name: 'bot', script: 'sleep', args: '1000', watch: true,\n\
         ignore_watch: [/.+\\.sqlite$/i, /(^|[\\/\\\\])cache/, 'ecosystem.config.js'] }] };\n",
    )
    .expect("write the file");
    home.ok(&["start", "ecosystem.config.js"]);
    wait_until("online", || home.online_pids("bot", 1));
    touch(&work.join("data/db.SQLite"), "x");
    touch(&work.join("cache"), "x");
    touch(&work.join("bot.js"), "x");
    wait_restarts(&home, "bot", 1);
    assert_eq!(
        detected(&home),
        vec![work.join("bot.js").display().to_string()]
    );

    // One that cannot be used is named with its key, and nothing starts.
    std::fs::write(
        work.join("bad.config.js"),
        "module.exports = { apps: [{ name: 'b2', script: 'sleep', args: '1000', watch: true, ignore_watch: [/a(?<=b)/] }] };\n",
    )
    .expect("write the file");
    let err = home.fails(&["start", "bad.config.js"]);
    assert!(
        err.contains("ignore_watch") && err.contains("cannot be used"),
        "{err}"
    );
    assert!(home.app("b2").is_empty());
}

#[test]
fn ext_limits_the_changes_that_count() {
    let home = Home::new();
    let work = home.work();
    // pm2's --ext: only .js and .json files count.
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "js",
        "--watch",
        "--ext",
        "js,.json",
    ]);
    wait_until("online", || home.online_pids("js", 1));
    // Neither another extension nor a new folder without such a file counts: had either,
    // it would be detected before app.js, whose change comes last.
    touch(&work.join("notes.txt"), "x");
    std::fs::create_dir(work.join("docs")).expect("mkdir");
    touch(&work.join("docs/readme.txt"), "x");
    touch(&work.join("app.js"), "x");
    wait_restarts(&home, "js", 1);
    assert_eq!(
        detected(&home),
        vec![work.join("app.js").display().to_string()]
    );
}

#[test]
fn a_watched_file_replaced_by_a_rename_stays_watched() {
    let home = Home::new();
    let work = home.work();
    touch(&work.join("config.json"), "{}");
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "cfg",
        "--watch=config.json",
    ]);
    wait_until("online", || home.online_pids("cfg", 1));
    // An editor's save: a new file renamed over the old one.
    touch(&work.join("config.json.new"), "{\"a\": 1}");
    std::fs::rename(work.join("config.json.new"), work.join("config.json")).expect("rename");
    wait_restarts(&home, "cfg", 1);
    touch(&work.join("config.json"), "{\"a\": 2}");
    wait_restarts(&home, "cfg", 2);
}

#[test]
fn a_path_that_cannot_be_watched_starts_nothing() {
    let home = Home::new();
    let err = home.fails(&["start", "sleep 1000", "--name", "w", "--watch=missing"]);
    assert!(
        err.contains("cannot watch") && err.contains("missing"),
        "{err}"
    );
    let err = home.fails(&["start", "sleep 1000", "--watch-delay", "1s"]);
    assert!(err.contains("go with --watch"), "{err}");
}
