//! Cluster mode through wrappers (issue #16, item 6): a server started by `npm start` (npm →
//! sh → node, npm's Node marking the fds it inherited close-on-exec) or by a shell script joins
//! the shared port like one started directly, and every instance serves. A program the preload
//! cannot reach (a static binary behind a script) is flagged with a reason, not left silent.

use std::collections::BTreeSet;

use crate::fork_reload::static_server;
use crate::harness::{free_port, have, http_get, path_str, wait_until, Home};

/// A plain Node HTTP server on $APP_PORT answering `<instance> <pid>`, with a package.json
/// whose start script runs it, and a shell script that runs it too.
fn node_app(home: &Home) {
    let work = home.work();
    std::fs::write(
        work.join("package.json"),
        r#"{ "name": "wrapped", "version": "1.0.0", "private": true, "scripts": { "start": "node server.js" } }"#,
    )
    .expect("write package.json");
    std::fs::write(
        work.join("server.js"),
        "require('http').createServer((req, res) => res.end(`${process.env.RCLUSTER_INSTANCE} ${process.pid}`)).listen(Number(process.env.APP_PORT), '127.0.0.1');\n",
    )
    .expect("write server.js");
    home.write_script(
        "run.sh",
        "#!/bin/sh\ncd \"$(dirname \"$0\")\"\nnode server.js\n",
    );
}

/// Wait until both instances of a 2-instance app answer on `port` (by their pids).
fn both_serve(home: &Home, name: &str, port: u16) {
    let pids = wait_until(&format!("{name}: both instances serve"), || {
        let served: BTreeSet<String> = (0..16)
            .filter_map(|_| http_get(port).ok())
            .filter_map(|b| b.split_whitespace().nth(1).map(str::to_owned))
            .collect();
        (served.len() == 2).then_some(served)
    });
    let app = home.app(name);
    assert_eq!(app.len(), 2, "{app:?}");
    assert!(
        app.iter()
            .all(|i| i.ready && i.ports.iter().any(|a| a.ends_with(&format!(":{port}")))),
        "{app:?}"
    );
    assert!(app.iter().all(|i| i.reason.is_none()), "{app:?}");
    eprintln!("{name}: served by {pids:?}");
}

#[test]
fn npm_start_and_a_shell_script_join_the_shared_port() {
    if !have("node") || !have("npm") {
        eprintln!("skipped: node or npm is not on PATH");
        return;
    }
    let home = Home::new();
    node_app(&home);
    let port = free_port();
    let env = format!("APP_PORT={port}");
    home.ok(&[
        "start",
        "npm",
        "-i",
        "2",
        "--name",
        "web",
        "--env-var",
        &env,
        "--",
        "start",
    ]);
    both_serve(&home, "web", port);
    home.ok(&["delete", "web"]);

    let port = free_port();
    let env = format!("APP_PORT={port}");
    home.ok(&[
        "start",
        "./run.sh",
        "-i",
        "2",
        "--name",
        "script",
        "--env-var",
        &env,
    ]);
    both_serve(&home, "script", port);
}

#[test]
fn an_instance_the_preload_cannot_reach_is_flagged() {
    let home = Home::new();
    let Some(server) = static_server(&home) else {
        eprintln!("skipped: cannot build a static binary (cc -static needs a static libc)");
        return;
    };
    // A static binary behind a shell script (a Go server's usual launcher): it binds the port
    // on its own, so instance 0 serves outside the shared port and instance 1 finds it taken.
    let script = home.write_script(
        "launch.sh",
        &format!(
            "#!/bin/sh
exec {server} \"$@\"\n"
        ),
    );
    let port = free_port();
    home.ok(&[
        "start",
        path_str(&script),
        "-i",
        "2",
        "--name",
        "bare",
        "--listen-timeout",
        "2000",
        "--",
        &port.to_string(),
    ]);
    let reason = wait_until("an instance flagged", || {
        home.app("bare")
            .into_iter()
            .find_map(|i| i.reason.filter(|r| r.contains("itself")))
    });
    assert!(
        reason.contains(&format!("127.0.0.1:{port}")) && reason.contains("preload"),
        "{reason}"
    );
}
