//! The bad ecosystem files: each gives exactly the messages asserted here, each at its
//! file:line:col (`file: message` for JavaScript files, whose positions node does not give).
//! Part of the `ecosystem` test binary.

use rcluster::config::ecosystem::{ErrorKind, LoadOptions};

use super::{abs, errors, node_available};

#[test]
fn javascript_errors_name_the_app_without_positions() {
    if !node_available() {
        return;
    }
    assert_eq!(
        errors("bad-keys.config.js", &strict()),
        (
            ErrorKind::Invalid,
            vec![
                ": app \"api\": `max_memory_restart`: `1GB` is not a size: write 1G".to_owned(),
                ": app \"api\": unknown key `instance`, did you mean `instances`?".to_owned(),
            ]
        )
    );
    // Not strict, the unknown key is only a warning; the bad value still stops the file.
    assert_eq!(
        errors("bad-keys.config.js", &LoadOptions::default()),
        (
            ErrorKind::Invalid,
            vec![": app \"api\": `max_memory_restart`: `1GB` is not a size: write 1G".to_owned()]
        )
    );
    assert_eq!(
        errors("bad-syntax.config.js", &LoadOptions::default()),
        (
            ErrorKind::Evaluate,
            vec![
                ":2:49: evaluating with node failed: SyntaxError: Unexpected token '}'".to_owned()
            ]
        )
    );
}

/// `(file, expected lines after the file name)` for every bad YAML/JSON file.
const BAD_FILES: &[(&str, ErrorKind, &[&str])] = &[
    // pm2's camelCase spellings (`maxMemoryRestart`) are its keys; see `unknown_keys_*` for
    // the unknown ones.
    ("bad-unknown-key.json", ErrorKind::Invalid, &[
        ":7:20: app \"api\": `instances`: `lots` is not an instance count (use a positive number, 0 or \"max\" for all CPUs, or -1 for all CPUs but one)",
    ]),
    ("bad-size.yaml", ErrorKind::Invalid, &[
        ":4:25: app \"api\": `max_memory_restart`: `300MB` is not a size: write 300M",
        ":5:19: app \"api\": `log_max_size`: `1.5T` is not a size: unknown unit `T` (use bytes, or a number with K, M or G, like 300M or 1G)",
    ]),
    ("bad-duration.yaml", ErrorKind::Invalid, &[
        ":4:17: app \"worker\": `min_uptime`: `5x` is not a duration: unknown unit `x` (use a number of milliseconds, or ms, s, m or h, like 1500, 1.5s or 2m)",
        ":5:19: app \"worker\": `kill_timeout`: -100 is not a duration: it is negative",
        ":6:20: app \"worker\": `restart_delay`: `soon` is not a duration (use a number of milliseconds, or ms, s, m or h, like 1500, 1.5s or 2m)",
        ":9:17: app \"worker\": `readiness.interval`: must be more than 0",
    ]),
    ("bad-instances.yaml", ErrorKind::Invalid, &[
        ":7:16: app \"web\": `instances`: `many` is not an instance count (use a positive number, 0 or \"max\" for all CPUs, or -1 for all CPUs but one)",
    ]),
    ("bad-type.yaml", ErrorKind::Invalid, &[
        ":4:18: app \"api\": `autorestart`: expected true or false, found a string (\"yes\")",
        ":5:19: app \"api\": `max_restarts`: expected a whole number, found a string (\"many\")",
        ":6:5: app \"api\": `env`: expected a mapping of variable names to values, found a list",
        ":7:5: app \"api\": `args`: expected a string or a list of strings, found a mapping",
        ":8:17: app \"api\": `wait_ready`: expected true or false, found a number (1)",
        ":9:26: app \"api\": `stop_exit_codes`: expected an exit code or a list of exit codes, found a string (\"two\")",
        ":10:18: app \"api\": `kill_signal`: `SIGFOO` is not a signal (use a name like SIGTERM, TERM or INT, or a number like 15)",
        ":11:11: app \"worker\": `name`: expected a string, found a number (42)",
    ]),
    ("bad-duplicate.yaml", ErrorKind::Invalid, &[
        ":6:11: app \"api\": duplicate name (first at line 2)",
        ":9:5: app \"api\": `output` and `out_file` are the same key; keep one",
    ]),
    ("bad-cycle.yaml", ErrorKind::Invalid, &[
        ":4:18: dependency cycle: a -> b -> c -> a",
        ":13:18: app \"d\": `depends_on`: no app named \"dd\" in this file, did you mean \"d\"?",
        ":13:22: dependency cycle: d -> d",
    ]),
    ("bad-top.yaml", ErrorKind::Invalid, &[":1:1: unknown key `app`, did you mean `apps`?"]),
    ("empty.yaml", ErrorKind::Invalid, &[": the file is empty; expected `apps:` with a list of apps"]),
    ("bad-syntax.yaml", ErrorKind::Syntax, &[
        ":4:9: did not find expected ',' or ']', while parsing a flow sequence at line 3 column 13",
    ]),
    // Broken for node too (pm2 reads .json as JavaScript, so a trailing comma would pass).
    ("bad-syntax.json", ErrorKind::Syntax, &[":3:32: expected value"]),
];

/// Unknown keys refused (`--strict`, `rcluster check`).
fn strict() -> LoadOptions {
    LoadOptions {
        strict: true,
        ..LoadOptions::default()
    }
}

#[test]
fn unknown_keys_are_warnings_and_strict_makes_them_errors() {
    let loaded = super::ok("bad-unknown-key.yaml", &LoadOptions::default());
    let warnings: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| {
            w.to_string()
                .replace("tests/fixtures/ecosystem/bad-unknown-key.yaml", "")
        })
        .collect();
    assert_eq!(
        warnings,
        [
            ":5:5: app \"api\": unknown key `max_memory_restar`, did you mean `max_memory_restart`?",
            ":7:5: app \"api\": unknown key `colour`",
        ]
    );
    assert_eq!(loaded.apps.len(), 1);
    assert_eq!(
        loaded.apps[0].max_memory_restart, None,
        "ignored, as pm2 does"
    );
    assert_eq!(
        errors("bad-unknown-key.yaml", &strict()),
        (ErrorKind::Invalid, warnings)
    );
}

#[test]
fn bad_files_give_exact_messages() {
    for (name, kind, expected) in BAD_FILES {
        let (got_kind, lines) = errors(name, &LoadOptions::default());
        assert_eq!(lines, *expected, "{name}");
        assert_eq!(got_kind, *kind, "{name}");
    }
}

#[test]
fn every_problem_of_a_file_at_once() {
    let missing = abs("missing.js");
    let expected = [
        format!(":3:13: app \"api\": `script`: no such file: {}", missing.display()),
        ":4:14: app \"api\": `balance`: unknown strategy `round-robbin` (one of: round-robin, shared, reuseport, proxy, least-conn); did you mean `round-robin`?".into(),
        ":5:5: app \"api\": `listen`: cannot be combined with `port`; put every address in `listen`".into(),
        ":5:28: app \"api\": `listen`: `example.com:80` is not an address (use host:port with an IP address, [::]:port, or unix:/path)".into(),
        ":7:13: app #2: `script` is empty".into(),
        ":12:13: app \"forked\": `listen`: needs cluster mode to share sockets between instances, but `exec_mode` is fork".into(),
        ":13:10: app \"forked\": `uid`: running an app as another user is not supported yet; remove it and run rcluster as that user".into(),
        ":14:5: app #4: missing `script`".into(),
        ":15:5: app #5: expected a mapping with `script`, found a string (\"just a string\")".into(),
        ":16:1: unknown key `appz`, did you mean `apps`?".into(),
    ];
    assert_eq!(
        errors("bad-many.yaml", &strict()),
        (ErrorKind::Invalid, expected.to_vec())
    );
    let (_, lenient) = errors("bad-many.yaml", &LoadOptions::default());
    assert_eq!(lenient, expected[..expected.len() - 1].to_vec());
}

#[test]
fn unreadable_and_unknown_files() {
    assert_eq!(
        errors("nope.yaml", &LoadOptions::default()),
        (
            ErrorKind::Read,
            vec![": cannot read: No such file or directory (os error 2)".to_owned()]
        )
    );
    assert_eq!(
        errors("run.sh", &LoadOptions::default()),
        (
            ErrorKind::Format,
            vec![
                ": not an ecosystem file: use a .yaml, .yml, .json, .js, .cjs or .mjs file"
                    .to_owned()
            ]
        )
    );
}
