//! Ecosystem files on the command line (PRODUCT.md §7, §8): `start|reload|restart|stop|delete
//! <file>` with pm2's shapes (a fixed-port server with `instances: 4` and no `port:`, JSON with
//! string instances and `deploy`, `ecosystem.config.js`, `increment_var` in fork mode),
//! idempotent `start <file>`, a changed file reloaded, `depends_on` order, an invalid file's
//! exact message, `rcluster ecosystem`, and save -> kill -> resurrect losing nothing.
//!
//! Fixtures are in `tests/fixtures/ecosystem-it/`; `install` copies one into the test's work
//! directory with `@PORT@`, `@SERVERS@` and `@WORK@` filled in (files name fixed ports, as
//! pm2's do; tests must use free ones).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rcluster::protocol::model::{AppDetail, InstanceState};

use crate::harness::{fixture, free_port, have, http_get, path_str, wait_until, Home};

/// Copies fixture `name` into the work directory (with the other files it uses), placeholders
/// filled in; its path.
pub fn install(home: &Home, name: &str, port: u16) -> PathBuf {
    let work = home.work();
    for helper in ["worker.py", "whoami.js"] {
        std::fs::copy(
            fixture(&format!("ecosystem-it/{helper}")),
            work.join(helper),
        )
        .expect("copy helper");
    }
    let text = std::fs::read_to_string(fixture(&format!("ecosystem-it/{name}")))
        .expect("read fixture")
        .replace("@PORT@", &port.to_string())
        .replace("@SERVERS@", &fixture("servers"))
        .replace("@WORK@", path_str(&work));
    let path = work.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path
}

/// Every (sorted) pid of the app once `n` instances are online.
fn pids(home: &Home, name: &str, n: usize) -> Vec<u32> {
    let mut pids = wait_until(&format!("{n} {name} online"), || home.online_pids(name, n));
    pids.sort_unstable();
    pids
}

/// The instance indexes that answer on `port`, once all `n` do.
fn served_by(port: u16, n: usize) -> BTreeSet<String> {
    wait_until(&format!("{n} instances serving on {port}"), || {
        let seen: BTreeSet<String> = (0..8 * n)
            .filter_map(|_| http_get(port).ok())
            .filter_map(|body| body.split_whitespace().next().map(str::to_owned))
            .collect();
        (seen.len() == n).then_some(seen)
    })
}

/// One variable of a process's environment.
pub fn env_of(pid: u32, key: &str) -> Option<String> {
    // Empty while the kernel is still inside the instance's execve (the new memory map is in
    // place before the environment's bounds are): wait for the real one, never empty here.
    let environ = wait_until(&format!("environment of {pid}"), || {
        std::fs::read(format!("/proc/{pid}/environ"))
            .ok()
            .filter(|env| !env.is_empty())
    });
    environ.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        let (k, v) = entry.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

pub fn describe(home: &Home, name: &str) -> AppDetail {
    let out = home.ok(&["describe", name, "--json"]);
    let mut apps: Vec<AppDetail> = serde_json::from_str(&out).expect("describe --json");
    assert_eq!(apps.len(), 1, "{out}");
    apps.remove(0)
}

#[test]
fn fixed_port_server_with_four_instances_and_no_port_key() {
    let home = Home::new();
    let port = free_port();
    let file = install(&home, "cluster.yaml", port);
    home.ok(&["start", path_str(&file)]);
    let first = pids(&home, "api", 4);
    assert_eq!(
        served_by(port, 4),
        ["0", "1", "2", "3"].map(String::from).into()
    );
    assert!(first
        .iter()
        .all(|pid| env_of(*pid, "GREETING").as_deref() == Some("first")));

    // Unchanged file: nothing restarts.
    let out = home.run(&["start", path_str(&file)]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert_eq!(
        pids(&home, "api", 4),
        first,
        "start <file> twice is idempotent"
    );

    // Changed file: `start` reloads the app with the new definition.
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("GREETING: first", "GREETING: second")).expect("write");
    home.ok(&["start", path_str(&file)]);
    let second = wait_until("4 new pids", || {
        let now = home.online_pids("api", 4)?;
        now.iter().all(|p| !first.contains(p)).then_some(now)
    });
    assert!(
        second
            .iter()
            .all(|pid| env_of(*pid, "GREETING").as_deref() == Some("second")),
        "the reload applied the new env"
    );
    assert_eq!(served_by(port, 4).len(), 4);

    home.ok(&["delete", path_str(&file)]);
    assert!(home.app("api").is_empty());
    let err = home.fails(&["delete", path_str(&file)]);
    assert!(err.contains("none of the apps of"), "{err}");
}

#[test]
fn restart_file_applies_the_files_definition() {
    let home = Home::new();
    let port = free_port();
    let file = install(&home, "cluster.yaml", port);
    home.ok(&["start", path_str(&file)]);
    let first = pids(&home, "api", 4);

    // A changed env and one instance fewer: restart <file> runs the new definition (pm2
    // applies the file's env on restart too).
    let text = std::fs::read_to_string(&file).expect("read");
    let changed = text
        .replace("GREETING: first", "GREETING: restarted")
        .replace("instances: 4", "instances: 3");
    std::fs::write(&file, changed).expect("write");
    home.ok(&["restart", path_str(&file)]);
    let now = pids(&home, "api", 3);
    assert!(now.iter().all(|p| !first.contains(p)), "{now:?} {first:?}");
    for pid in &now {
        assert_eq!(env_of(*pid, "GREETING").as_deref(), Some("restarted"));
    }
    assert_eq!(describe(&home, "api").spec.instances, 3);
    // Other verbs take the file's apps too.
    let out = home.ok(&["reset", path_str(&file)]);
    assert!(
        out.contains("reset the restart counts of 3 instance(s)"),
        "{out}"
    );

    // Sockets cannot change under a restart: refused, nothing changed or restarted.
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("{text}    port: {}\n", free_port())).expect("write");
    let err = home.fails(&["restart", path_str(&file)]);
    assert!(
        err.contains("app \"api\": its listen addresses or balance changed")
            && err.contains("rcluster delete api"),
        "{err}"
    );
    assert_eq!(pids(&home, "api", 3), now);
}

#[test]
fn pm2s_deploy_verbs_start_what_is_missing_and_replace_what_runs() {
    let home = Home::new();
    let file = home.work().join("ecosystem.yaml");
    let app = |name: &str| {
        format!(
            "  - name: {name}\n    script: sleep\n    args: \"1000\"\n    listen_timeout: 100\n"
        )
    };
    std::fs::write(&file, format!("apps:\n{}{}", app("one"), app("two"))).expect("write");
    home.ok(&["start", path_str(&file), "--only", "one"]);
    let one = pids(&home, "one", 1);

    // pm2's startOrReload: a reload of what runs (new code, same file), a start of the rest.
    home.ok(&["startOrReload", path_str(&file)]);
    let one_reloaded = pids(&home, "one", 1);
    let two = pids(&home, "two", 1);
    assert_ne!(one_reloaded, one);

    // pm2's startOrRestart: a restart of each app of the file.
    home.ok(&["startOrRestart", path_str(&file)]);
    assert_ne!(pids(&home, "one", 1), one_reloaded);
    assert_ne!(pids(&home, "two", 1), two);

    // A plain start of the file starts again what was stopped, as pm2 does, and leaves what
    // runs alone.
    let two = pids(&home, "two", 1);
    home.ok(&["stop", "one"]);
    home.wait_status("one", InstanceState::Stopped);
    let out = home.ok(&["start", path_str(&file)]);
    assert!(!out.contains("stopped"), "{out}");
    pids(&home, "one", 1);
    assert_eq!(pids(&home, "two", 1), two);

    // pm2's dump and prettylist.
    let out = home.ok(&["dump"]);
    assert!(out.contains("saved"), "{out}");
    let pretty = home.ok(&["prettylist"]);
    assert_eq!(pretty.matches("\n    pm2_env: {\n").count(), 2, "{pretty}");
    assert!(
        pretty.contains("status: 'online'"),
        "pm2's notation: {pretty}"
    );
}

#[test]
fn json_with_string_instances_deploy_and_profiles() {
    let home = Home::new();
    let file = install(&home, "apps.json", 0);
    let out = home.run(&["start", path_str(&file), "--env", "production"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "[rcluster] note: {}:18:3: `deploy` section ignored: rcluster does not deploy",
            path_str(&file)
        )),
        "{stderr}"
    );
    let jobs = pids(&home, "jobs", 2);
    pids(&home, "ticker", 1);
    for pid in &jobs {
        assert_eq!(env_of(*pid, "QUEUE").as_deref(), Some("mail-prod"));
        assert_eq!(env_of(*pid, "RETRIES").as_deref(), Some("3"));
    }

    // --only: one app of the file.
    home.ok(&["stop", path_str(&file), "--only", "ticker"]);
    assert_eq!(home.app("ticker")[0].status, InstanceState::Stopped);
    assert_eq!(pids(&home, "jobs", 2), jobs, "--only left jobs alone");
    // restart <file> brings ticker back; stop <file> stops both.
    home.ok(&["restart", path_str(&file)]);
    pids(&home, "ticker", 1);
    home.ok(&["stop", path_str(&file)]);
    assert!(home
        .list()
        .iter()
        .all(|i| i.status == InstanceState::Stopped));
    let err = home.fails(&["stop", "jobs", "--only", "jobs"]);
    assert!(
        err.contains("--only and --env apply to ecosystem files"),
        "{err}"
    );
    home.ok(&["delete", path_str(&file)]);
    assert!(home.list().is_empty());
}

#[test]
fn ecosystem_config_js() {
    if !have("node") {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let home = Home::new();
    let port = free_port();
    let file = install(&home, "ecosystem.config.js", 0);
    let mut cmd = home.command(&["start", path_str(&file)]);
    cmd.env("IT_PORT", port.to_string());
    let out = crate::harness::run_with_deadline(cmd, &["start", "ecosystem.config.js"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let web = pids(&home, "js-web", 2);
    assert_eq!(served_by(port, 2).len(), 2);
    assert_eq!(env_of(web[0], "NODE_ENV").as_deref(), Some("development"));

    // reload <file> --env production: new definitions, zero downtime, new pids.
    let mut cmd = home.command(&["reload", path_str(&file), "--env", "production"]);
    cmd.env("IT_PORT", port.to_string());
    let out = crate::harness::run_with_deadline(cmd, &["reload"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let after = pids(&home, "js-web", 2);
    assert!(after.iter().all(|p| !web.contains(p)), "{web:?} {after:?}");
    assert_eq!(env_of(after[0], "NODE_ENV").as_deref(), Some("production"));
}

/// The free base of `n` consecutive free ports.
fn free_run(n: u16) -> u16 {
    wait_until("consecutive free ports", || {
        let base = free_port();
        let all_free = (0..n).all(|i| {
            base.checked_add(i)
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        all_free.then_some(base)
    })
}

#[test]
fn increment_var_gives_each_fork_instance_its_own_port() {
    let home = Home::new();
    let base = free_run(3);
    let file = install(&home, "fork-increment.yaml", base);
    home.ok(&["start", path_str(&file)]);
    pids(&home, "shards", 3);
    for i in 0..3u16 {
        let body = wait_until("the shard answers", || http_get(base + i).ok());
        assert!(
            body.starts_with(&format!("{i} ")),
            "port {}: {body}",
            base + i
        );
    }
}

#[test]
fn depends_on_starts_after_the_dependency_is_ready() {
    let home = Home::new();
    let port = free_port();
    let file = install(&home, "depends.yaml", port);
    let out = home.run(&["start", path_str(&file)]);
    assert!(out.status.success(), "{}", home.report(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting for \"db\" to be ready before starting \"api\""),
        "{stderr}"
    );
    // The report shows db as it is after the wait, not as it was when it was started.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("db") && !stdout.contains("launching"),
        "{stdout}"
    );
    pids(&home, "db", 1);
    // api exits at once (and is not restarted) if db did not answer when it started.
    pids(&home, "api", 1);
    wait_until("api reached db", || {
        home.read_log("api-out.log")
            .contains("connected")
            .then_some(())
    });
    assert_eq!(home.app("api")[0].status, InstanceState::Online);

    let broken = install(&home, "broken-dependency.yaml", 0);
    let err = home.fails(&["start", path_str(&broken)]);
    assert!(
        err.contains("rcluster: error: app \"web\" not started: \"store\" (instance 0) errored:"),
        "{err}"
    );
    assert!(home.app("web").is_empty(), "web must not start");
}

#[test]
fn invalid_file_reports_every_problem_and_starts_nothing() {
    let home = Home::new();
    let file = install(&home, "bad.yaml", 0);
    let out = home.run(&["start", path_str(&file)]);
    assert_eq!(out.status.code(), Some(1), "{}", home.report(&out));
    let f = path_str(&file);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "[rcluster] warning: {f}:4:5: app \"web\": unknown key `instnces`, did you mean `instances`?\n\
             {f}:5:25: app \"web\": `max_memory_restart`: `lots` is not a size (use bytes, or a number with K, M or G, like 300M or 1G)\n\
             {f}:6:11: app \"web\": duplicate name (first at line 2)\n\
             rcluster: error: {f}: 2 problems (above); nothing was done\n"
        )
    );
    assert!(!home.socket().exists(), "no daemon was even started");
    let missing = home.work().join("nope.yaml");
    let err = home.fails(&["start", path_str(&missing)]);
    assert!(
        err.starts_with(&format!(
            "rcluster: error: {}: cannot read:",
            path_str(&missing)
        )),
        "{err}"
    );
    let err = home.fails(&[
        "start",
        path_str(&file),
        "--cwd",
        "/",
        "--interpreter",
        "node",
    ]);
    assert!(
        err.contains("--cwd, --interpreter cannot be used with an ecosystem file"),
        "{err}"
    );
}

#[test]
fn init_writes_an_example_that_loads() {
    use rcluster::config::ecosystem::{load, LoadOptions};
    let home = Home::new();
    let out = home.ok(&["init"]);
    let file = home.work().join("ecosystem.yaml");
    assert!(out.contains("wrote ecosystem.yaml"), "{out}");
    let err = home.fails(&["ecosystem"]);
    assert!(
        err.contains("exists already (--force overwrites it)"),
        "{err}"
    );
    home.ok(&["ecosystem", "--force"]);

    let loaded = load(&file, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = loaded.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["web", "worker"]);
    let web = &loaded.apps[0];
    assert_eq!(web.instances, 2);
    assert!(web.readiness.is_some() && !web.cluster.listen.is_empty());
    assert_eq!(loaded.apps[1].depends_on, vec!["web".to_owned()]);
    let text = std::fs::read_to_string(&file).expect("read");
    for key in [
        "listen:",
        "balance:",
        "kill_signal:",
        "readiness:",
        "depends_on:",
        "env_production:",
    ] {
        assert!(text.contains(key), "{key} missing");
    }

    // Every setting shown commented out (`# key: value`) is valid too.
    let uncommented: String = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            match trimmed.strip_prefix("# ") {
                Some(rest) if is_setting(rest) && !indent.is_empty() => format!("{indent}{rest}\n"),
                _ => format!("{line}\n"),
            }
        })
        .collect();
    let all = home.work().join("all.yaml");
    std::fs::write(&all, &uncommented).expect("write");
    assert_ne!(uncommented, text);
    let loaded =
        load(&all, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(loaded.apps[1].instances, 3);
    assert_eq!(loaded.apps[0].max_memory_restart, Some(300 << 20));
}

/// `key: value` with a lowercase key: a setting, not prose.
fn is_setting(text: &str) -> bool {
    text.split_once(": ").is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

#[test]
fn save_kill_resurrect_loses_nothing() {
    let home = Home::new();
    let port = free_port();
    let file = install(&home, "roundtrip.yaml", port);
    std::fs::create_dir_all(home.work().join("site")).expect("mkdir");
    std::fs::write(home.work().join("site/index.html"), "saved site\n").expect("write");
    home.ok(&["start", path_str(&file)]);
    pids(&home, "site", 2);
    pids(&home, "cron", 1);
    let before: BTreeMap<String, AppDetail> = ["site", "cron"]
        .iter()
        .map(|n| ((*n).to_owned(), describe(&home, n)))
        .collect();
    home.ok(&["save"]);
    home.ok(&["kill"]);
    assert!(home.list().is_empty(), "a fresh daemon runs nothing");
    let out = home.ok(&["resurrect"]);
    assert!(out.contains("site") && out.contains("cron"), "{out}");
    let site = pids(&home, "site", 2);
    pids(&home, "cron", 1);
    for (name, old) in &before {
        let new = describe(&home, name);
        assert_eq!(&new.spec, &old.spec, "app {name} came back as it was saved");
    }
    assert_eq!(env_of(site[0], "GREETING").as_deref(), Some("hello world"));
    assert_eq!(env_of(site[0], "EMPTY").as_deref(), Some(""));
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", site[0])).expect("cwd");
    assert_eq!(cwd, home.work().join("site"));
    let body = wait_until("the site serves", || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.contains(" 200 ").then_some(out)
    });
    assert!(body.ends_with("saved site\n"), "{body}");
    // As pm2's, the saved list keeps the environment the apps ran with: private to the user.
    let dump = home.dir.join("dump.pm2");
    let text = std::fs::read_to_string(&dump).expect("dump");
    assert!(text.contains("GREETING"), "{text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dump).expect("dump").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_namespace_names_its_apps_as_a_target() {
    let home = Home::new();
    let file = home.work().join("ecosystem.yaml");
    std::fs::write(
        &file,
        "apps:\n  - name: api-a\n    script: sleep\n    args: \"1000\"\n    namespace: api\n  - name: api-b\n    script: sleep\n    args: \"1000\"\n    namespace: api\n",
    )
    .expect("write");
    home.ok(&["start", path_str(&file)]);
    home.ok(&["start", "sleep 1000", "--name", "other"]);
    // pm2's `--namespace`, and an app named like a namespace.
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "api-c",
        "--namespace",
        "api",
    ]);
    home.ok(&["start", "sleep 1000", "--name", "web", "--namespace", "api"]);
    home.ok(&["start", "sleep 1000", "--name", "api"]);
    let table = home.ok(&["ls"]);
    assert!(table.contains("namespace"), "{table}");
    let spaces: BTreeMap<String, String> = home
        .list()
        .into_iter()
        .map(|i| (i.name, i.namespace))
        .collect();
    assert_eq!(spaces["api-a"], "api");
    assert_eq!(spaces["other"], "default");
    let before: BTreeMap<String, Vec<u32>> = ["api-a", "api-b", "api-c", "web", "api", "other"]
        .into_iter()
        .map(|n| (n.to_owned(), pids(&home, n, 1)))
        .collect();

    // `api` names the app called so (pm2: the app wins); `web` the app; a namespace otherwise.
    home.ok(&["restart", "api"]);
    assert_ne!(pids(&home, "api", 1), before["api"]);
    assert_eq!(pids(&home, "api-a", 1), before["api-a"]);
    home.ok(&["delete", "api"]);
    let listed = home.ok(&["pid", "api"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    home.ok(&["restart", "api"]);
    for name in ["api-a", "api-b", "api-c", "web"] {
        assert_ne!(pids(&home, name, 1), before[name], "{name}");
    }
    assert_eq!(pids(&home, "other", 1), before["other"]);
    let refused = home.fails(&["start", "sleep 1000", "--name", "x", "--namespace", "all"]);
    assert!(
        refused.contains("namespace \"all\" is reserved"),
        "{refused}"
    );
}

#[test]
fn json_files_as_pm2_reads_them() {
    let home = Home::new();
    // A byte order mark (Windows editors) needs no node.
    let bom = home.work().join("bom.json");
    std::fs::write(
        &bom,
        "\u{feff}{\"apps\": [{\"name\": \"bom\", \"script\": \"sleep\", \"args\": \"1000\"}]}\r\n",
    )
    .expect("write");
    home.ok(&["start", path_str(&bom)]);
    assert_eq!(home.app("bom").len(), 1);
    if !have("node") {
        eprintln!("skipped the rest: no node");
        return;
    }
    // pm2 evaluates a .json file as JavaScript: comments, trailing commas, unquoted keys.
    let loose = home.work().join("loose.json");
    std::fs::write(
        &loose,
        "// production\n{\n  apps: [\n    { name: 'loose', script: 'sleep', args: '1000', }, /* one */\n  ],\n}\n",
    )
    .expect("write");
    let out = home.run(&["start", path_str(&loose)]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read as JavaScript"),
        "{}",
        home.report(&out)
    );
    assert_eq!(home.app("loose").len(), 1);
    // Broken for both: the strict parser's message, with its place.
    let broken = home.work().join("broken.json");
    std::fs::write(&broken, "{\"apps\": [ {\"name\": \"x\", script: }\n").expect("write");
    let err = home.fails(&["start", path_str(&broken)]);
    assert!(err.contains("broken.json:1:"), "{err}");
}
