//! `describe` as a person reads it: the port a cluster app's program bound (found, not
//! declared), when the app was created, whether it is watched, and what makes it ready.

use crate::harness::{fixture, free_port, http_get, wait_until, Home};

/// The value of the `key` row of `describe`'s first table (`│ key ┆ value │`).
fn row(described: &str, key: &str) -> String {
    described
        .lines()
        .find_map(|line| {
            let mut cells = line
                .split(['│', '┆'])
                .map(str::trim)
                .filter(|c| !c.is_empty());
            (cells.next() == Some(key)).then(|| cells.collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| panic!("no `{key}` row in:\n{described}"))
}

#[test]
fn a_cluster_app_shows_the_port_it_bound_its_readiness_and_creation() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&["start", &cmd, "--name", "web", "-i", "2"]);
    wait_until("2 online", || home.online_pids("web", 2));
    wait_until("the port served", || http_get(port).ok());
    let described = wait_until("both instances ready", || {
        let described = home.ok(&["describe", "web"]);
        row(&described, "readiness")
            .starts_with("2/2 ready")
            .then_some(described)
    });
    let ports = row(&described, "ports");
    assert!(
        ports.contains(&format!(":{port}")) && ports.contains("found when the program bound it"),
        "{described}"
    );
    assert!(
        row(&described, "readiness").contains("listen() on the shared port"),
        "{described}"
    );
    let created = row(&described, "created at");
    let at =
        chrono::NaiveDateTime::parse_from_str(created.get(..19).unwrap_or(""), "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("created at `{created}`: {e}"));
    let age = chrono::Local::now().naive_local() - at;
    assert!(
        age.num_seconds() >= -1 && age.num_minutes() < 60 && created.ends_with("ago)"),
        "{described}"
    );
    assert_eq!(row(&described, "watch"), "off", "{described}");
}

#[test]
fn a_fork_app_is_ready_after_listen_timeout_and_says_so() {
    let home = Home::new();
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "idle",
        "--listen-timeout",
        "500ms",
    ]);
    wait_until("online", || home.online_pids("idle", 1));
    let described = home.ok(&["describe", "idle"]);
    assert!(
        row(&described, "readiness").contains("after listen_timeout 500 ms"),
        "{described}"
    );
    assert!(
        !described.lines().any(|l| l.contains(" ports ")),
        "a fork app has no ports row: {described}"
    );
    let json = home.ok(&["jlist"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&json).expect("jlist is JSON");
    let created = list[0]["created_at"].as_u64().expect("created_at in ms");
    let now = chrono::Utc::now().timestamp_millis() as u64;
    assert!(created <= now && now - created < 3_600_000, "{json}");
}
