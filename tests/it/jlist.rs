//! `jlist` and `prettylist` in pm2's shape (issue 16, item 3): pm2's keys with pm2's meanings
//! and value forms, checked on real Node and Python programs, rcluster's own keys beside them.

use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{have, path_str, wait_until, Home};
use rcluster::protocol::model::InstanceState;

fn jlist(home: &Home) -> Vec<Value> {
    let _ = home.list(); // the harness records the groups to clean up
    serde_json::from_str(&home.ok(&["jlist"])).expect("jlist is JSON")
}

fn one<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

const NODE_SERVER: &str = "const http = require('http');\n\
    http.createServer((q, s) => s.end(String(process.pid))).listen(0, '127.0.0.1');\n";

const PY_SERVER: &str = "import http.server\n\
    http.server.HTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler).serve_forever()\n";

#[test]
fn jlist_carries_pm2_keys_with_pm2_meanings() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    let web = home.write_script("web.js", NODE_SERVER);
    let api = home.write_script("api.py", PY_SERVER);
    home.write_script(
        "crash.py",
        "import sys, time\ntime.sleep(0.2)\nsys.exit(3)\n",
    );
    let before = now_ms();
    // A secret of the shell that starts the app: pm2 shows it in pm2_env.env; rcluster shows
    // the declared env only.
    let out = home
        .command(&["start", path_str(&web), "--env-var", "GREETING=hi"])
        .env("SHELL_SECRET", "hunter2")
        .output()
        .expect("run rcluster");
    assert!(out.status.success(), "{}", home.report(&out));
    home.ok(&["start", "api.py", "-i", "2"]);
    home.ok(&[
        "start",
        "crash.py",
        "--restart-delay",
        "60s",
        "--min-uptime",
        "60s",
    ]);
    home.online_pids("web", 1).expect("web online");
    wait_until("api online", || home.online_pids("api", 2));
    home.wait_status("crash", InstanceState::WaitingRestart);

    let list = jlist(&home);
    let web_p = one(&list, "web");
    let env = &web_p["pm2_env"];
    let web_view = &home.app("web")[0];
    assert_eq!(web_p["pm_id"], web_view.id);
    assert_eq!(web_p["pid"], web_view.pid.expect("web runs"));
    assert_eq!(env["status"], "online");
    assert_eq!(env["exec_mode"], "fork_mode");
    assert_eq!(env["pm_exec_path"], path_str(&web));
    assert_eq!(env["pm_cwd"], path_str(&home.work()));
    assert_eq!(env["exec_interpreter"], "node");
    assert_eq!(env["instances"], 1);
    assert_eq!(env["restart_time"], 0);
    assert_eq!(env["unstable_restarts"], 0);
    assert_eq!(env["watch"], false);
    assert_eq!(env["NODE_APP_INSTANCE"], 0);
    assert_eq!(env["env"]["GREETING"], "hi");
    assert_eq!(env["GREETING"], "hi", "pm2 spreads the env over pm2_env");
    assert_eq!(env["env"]["RCLUSTER_APP"], "web");
    assert!(env["env"].get("SHELL_SECRET").is_none(), "{env}");
    assert!(!home.ok(&["jlist"]).contains("hunter2"));
    assert_eq!(
        env["pm_out_log_path"],
        path_str(&home.log_file("web-out.log"))
    );
    assert_eq!(
        env["pm_err_log_path"],
        path_str(&home.log_file("web-error.log"))
    );
    let created = env["created_at"].as_u64().expect("created_at in ms");
    let started = env["pm_uptime"].as_u64().expect("pm_uptime in ms");
    assert!(before <= created && created <= started && started <= now_ms());
    assert!(web_p["monit"]["memory"].as_u64().expect("bytes") > 1_000_000);
    assert!(web_p["monit"]["cpu"].is_number());
    // rcluster's own keys stay, beside pm2's.
    for key in [
        "id",
        "status",
        "ports",
        "ready",
        "accepted",
        "open",
        "reason",
        "uptime_ms",
    ] {
        assert!(web_p.get(key).is_some(), "{key} missing: {web_p}");
    }

    let api_p: Vec<&Value> = list.iter().filter(|p| p["name"] == "api").collect();
    assert_eq!(api_p.len(), 2);
    for (index, p) in api_p.iter().enumerate() {
        assert_eq!(p["pm2_env"]["exec_mode"], "cluster_mode");
        assert_eq!(p["pm2_env"]["instances"], 2);
        assert_eq!(p["pm2_env"]["NODE_APP_INSTANCE"], index);
        assert_eq!(p["pm2_env"]["exec_interpreter"], "python3");
        assert_eq!(p["pm2_env"]["pm_exec_path"], path_str(&api));
    }
    let crash = &one(&list, "crash")["pm2_env"];
    assert_eq!(crash["status"], "waiting restart", "pm2's spelling");
    assert_eq!(
        crash["unstable_restarts"], 1,
        "one run shorter than min_uptime"
    );
    assert_eq!(one(&list, "crash")["pid"], 0, "no process: pm2's 0");

    // A crash restart: a new start time, the same creation time, one more restart.
    let pid = web_view.pid.expect("web runs");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill web");
    let again = wait_until("web restarted", || {
        let list = jlist(&home);
        let p = one(&list, "web").clone();
        (p["pid"] != 0 && p["pid"] != pid).then_some(p)
    });
    assert_eq!(again["pm2_env"]["restart_time"], 1);
    assert_eq!(again["pm2_env"]["created_at"], created);
    assert!(again["pm2_env"]["pm_uptime"].as_u64() > Some(started));
    // A restart by command starts the count of unstable restarts over: created_at moves.
    home.ok(&["restart", "web"]);
    let list = jlist(&home);
    let env = &one(&list, "web")["pm2_env"];
    assert_eq!(env["restart_time"], 2);
    assert!(env["created_at"].as_u64() > Some(created));

    home.ok(&["stop", "web"]);
    let list = jlist(&home);
    let stopped = one(&list, "web");
    assert_eq!(stopped["pid"], 0);
    assert_eq!(stopped["pm2_env"]["status"], "stopped");
    assert_eq!(stopped["monit"]["memory"], 0);
}

#[test]
fn prettylist_prints_pm2s_object_notation() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    let web = home.write_script("web.js", NODE_SERVER);
    home.write_script("it's.py", PY_SERVER);
    home.ok(&[
        "start",
        path_str(&web),
        "--env-var",
        "QUOTE=it's \"x\"",
        "--env-var",
        "10=ten",
    ]);
    home.ok(&["start", "it's.py", "-i", "2", "--name", "py"]);
    home.online_pids("web", 1).expect("web online");
    wait_until("py online", || home.online_pids("py", 2));
    let pretty = home.ok(&["prettylist"]);
    assert!(pretty.contains("    name: 'web',\n"), "{pretty}");
    assert!(pretty.contains("      status: 'online',\n"), "{pretty}");
    // Once per instance, as in pm2 (rcluster's own `status` is jlist's alone).
    assert_eq!(pretty.matches("status: 'online'").count(), 3, "{pretty}");

    // Stopped, every value is still: what node's util.inspect prints for jlist's JSON (as
    // `pm2 prettylist` prints it) must be what prettylist prints.
    home.ok(&["stop", "all"]);
    let json = home.ok(&["jlist"]);
    // prettylist leaves out rcluster's keys that repeat pm2's (docs/jlist.md).
    let script = "const repeats = ['id', 'namespace', 'status', 'restarts', 'unstable_restarts', \
                  'created_at', 'started_at', 'cpu', 'memory', 'cwd', 'out_log', 'err_log']; \
                  let s = ''; process.stdin.on('data', d => s += d).on('end', () => { \
                  const list = JSON.parse(s); for (const p of list) for (const k of repeats) delete p[k]; \
                  process.stdout.write(require('util').inspect(list, false, null, false) + '\\n') })";
    let mut node = std::process::Command::new("node")
        .args(["-e", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    use std::io::Write;
    node.stdin
        .take()
        .expect("node stdin")
        .write_all(json.as_bytes())
        .expect("feed node");
    let inspected = node.wait_with_output().expect("node output");
    assert!(inspected.status.success());
    let expected = String::from_utf8_lossy(&inspected.stdout);
    let pretty = home.ok(&["prettylist"]);
    assert_eq!(pretty, expected);
    assert!(pretty.contains("QUOTE: `it's \"x\"`"), "{pretty}");
}
