//! `rcluster import pm2`: a dump.pm2 in pm2's shape (fixture), and the real thing — pm2 from
//! npm in a temp prefix starts three apps with its own `PM2_HOME`, `pm2 save`, `pm2 kill`, then
//! rcluster imports them and runs them (skipped, with the reason, without npm or the registry).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ecosystem::{describe, env_of};
use crate::harness::{
    fixture, free_port, have, http_get, path_str, run_with_deadline, wait_until, Home,
};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn imports_a_pm2_dump() {
    let home = Home::new();
    let work = home.work();
    let port = free_port();
    std::fs::copy(fixture("ecosystem-it/worker.py"), work.join("worker.py")).expect("copy");
    let pm2_home = work.join("pm2");
    std::fs::create_dir_all(&pm2_home).expect("mkdir");
    let dump = std::fs::read_to_string(fixture("ecosystem-it/pm2/local.dump.pm2"))
        .expect("fixture")
        .replace("@PORT@", &port.to_string())
        .replace("@SERVERS@", &fixture("servers"))
        .replace("@WORK@", path_str(&work));
    std::fs::write(pm2_home.join("dump.pm2"), dump).expect("write dump");

    let mut cmd = home.command(&["import", "pm2", "--pm2-home", path_str(&pm2_home), "--save"]);
    cmd.env("IT_SHELL_VAR", "same").env("IT_CHANGED", "now");
    let out = run_with_deadline(cmd, &["import"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("[rcluster] note: app \"sleeper\" was stopped under pm2; it is started here"),
        "{stderr}"
    );
    assert!(stderr.contains("[rcluster] saved 3 app(s)"), "{stderr}");

    let web = wait_until("py-web online", || home.online_pids("py-web", 1));
    let workers = wait_until("2 workers online", || home.online_pids("workers", 2));
    wait_until("sleeper online", || home.online_pids("sleeper", 1));
    let body = wait_until("py-web serves", || http_get(port).ok());
    assert!(body.starts_with("0 "), "{body}");

    // Declared env only: pm2's keys, the per-instance index and the shell's values are gone;
    // a value that differs from the importing shell's stays.
    let spec = describe(&home, "py-web").spec;
    assert_eq!(
        spec.env,
        env(&[
            ("GREETING", "from pm2"),
            ("IT_CHANGED", "under-pm2"),
            ("PORT", &port.to_string()),
        ])
    );
    assert_eq!(env_of(web[0], "GREETING").as_deref(), Some("from pm2"));
    let spec = describe(&home, "workers").spec;
    assert_eq!(spec.instances, 2);
    assert_eq!(spec.cwd, work);
    assert_eq!(spec.logs.out_file, Some(work.join("workers-out.log")));
    assert_eq!(
        describe(&home, "sleeper").spec.command.display(),
        "sleep 1000"
    );

    // --write gives the same definitions as a file: starting it changes nothing.
    let written = work.join("from-pm2.json");
    let mut cmd = home.command(&[
        "import",
        "pm2",
        "--pm2-home",
        path_str(&pm2_home),
        "--write",
        path_str(&written),
    ]);
    cmd.env("IT_SHELL_VAR", "same").env("IT_CHANGED", "now");
    let out = run_with_deadline(cmd, &["import"]);
    assert!(out.status.success(), "{}", home.report(&out));
    home.ok(&["start", path_str(&written)]);
    assert_eq!(home.online_pids("workers", 2), Some(workers));

    let dump = std::fs::read_to_string(home.dir.join("dump.pm2")).expect("saved list");
    let dump: serde_json::Value = serde_json::from_str(&dump).expect("JSON");
    let declared = |name: &str| {
        dump.as_array()
            .expect("a list")
            .iter()
            .find_map(|e| (e["name"] == name).then(|| e["rcluster"]["spec"]["env"].clone()))
    };
    let env = declared("py-web").expect("py-web saved");
    assert!(env.get("PM2_HOME").is_none(), "{env}");
    let err = home.fails(&["import", "pm2", "--pm2-home", path_str(&work)]);
    assert!(err.contains("no pm2 process list at"), "{err}");
}

/// pm2 from npm, installed once per target dir (npm's cache makes a reinstall cheap).
fn pm2_binary() -> Result<PathBuf, String> {
    if !have("npm") || !have("node") {
        return Err("npm and node are needed".into());
    }
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pm2-7.0.4");
    let bin = prefix.join("node_modules/.bin/pm2");
    if bin.is_file() {
        return Ok(bin);
    }
    // Install beside it, then rename: a concurrent run never sees half an install.
    let partial = prefix.with_extension(format!("part-{}", std::process::id()));
    let mut npm = Command::new("npm");
    npm.args(["install", "--prefix", path_str(&partial)])
        .args(["pm2@7.0.4", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(["--fetch-timeout=30000", "--fetch-retries=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Err(why) = install_within(npm, Duration::from_secs(300)) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!(
            "npm install pm2 failed (registry unreachable?): {why}"
        ));
    }
    if std::fs::rename(&partial, &prefix).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("npm installed no {}", bin.display()))
    }
}

/// Runs `npm`, killing it after `limit` (an unreachable registry may hang; that is a skip,
/// not a failure). Its stderr on failure.
fn install_within(mut npm: Command, limit: Duration) -> Result<(), String> {
    use std::io::Read;
    let mut child = npm.spawn().map_err(|e| format!("cannot run npm: {e}"))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50)); // polling npm's exit
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", limit.as_secs()));
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", text.trim()))
    }
}

/// pm2 with its own home; `pm2 kill` (of that home) when dropped, so no pm2 daemon outlives
/// the test.
struct Pm2 {
    bin: PathBuf,
    home: PathBuf,
    work: PathBuf,
}

impl Pm2 {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("PM2_HOME", &self.home)
            .env_remove("RCLUSTER_INSTANCE")
            .current_dir(&self.work);
        run_with_deadline(cmd, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pm2 {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Pm2 {
    fn drop(&mut self) {
        let _ = self.run(&["kill"]);
    }
}

#[test]
fn pm2_save_then_rcluster_import() {
    let bin = match pm2_binary() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let home = Home::new();
    let work = home.work();
    let port = free_port();
    std::fs::write(
        work.join("tick.js"),
        "setInterval(() => {}, 1000);\nconsole.log('tick', process.env.NODE_APP_INSTANCE);\n",
    )
    .expect("write");
    let config = format!(
        "module.exports = {{ apps: [\n\
         {{ name: 'py-web', script: '{server}', args: '{port}', env: {{ GREETING: 'from pm2' }} }},\n\
         {{ name: 'ticks', script: './tick.js', instances: 2, exec_mode: 'cluster' }},\n\
         ] }};\n",
        server = fixture("servers/whoami.py"),
    );
    std::fs::write(work.join("apps.config.js"), config).expect("write");
    let pm2 = Pm2 {
        bin,
        home: home.dir.join("pm2"),
        work: work.clone(),
    };
    pm2.ok(&["start", "apps.config.js"]);
    pm2.ok(&["start", "sleep 1000", "--name", "sleeper"]);
    wait_until("pm2 serves py-web", || http_get(port).ok());
    pm2.ok(&["save"]);
    pm2.ok(&["kill"]);
    assert!(pm2.home.join("dump.pm2").is_file());
    wait_until("pm2 released the port", || {
        std::net::TcpListener::bind(("127.0.0.1", port)).ok()
    });

    let mut cmd = home.command(&["import", "pm2", "--pm2-home", path_str(&pm2.home)]);
    cmd.env_remove("PM2_HOME");
    let out = run_with_deadline(cmd, &["import"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let web = wait_until("py-web online", || home.online_pids("py-web", 1));
    wait_until("2 ticks online", || home.online_pids("ticks", 2));
    wait_until("sleeper online", || home.online_pids("sleeper", 1));
    let body = wait_until("py-web serves under rcluster", || http_get(port).ok());
    assert!(body.starts_with("0 "), "{body}");
    // pm2's dump held its CLI's whole environment and its own keys; only the declared stays.
    assert_eq!(
        describe(&home, "py-web").spec.env,
        env(&[("GREETING", "from pm2")])
    );
    assert_eq!(env_of(web[0], "PM2_HOME"), None);
    assert_eq!(env_of(web[0], "unique_id"), None);
    assert_eq!(
        describe(&home, "sleeper").spec.command.display(),
        "sleep 1000"
    );
    assert_eq!(describe(&home, "ticks").spec.cwd, work);
}
