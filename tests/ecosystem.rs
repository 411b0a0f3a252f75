//! `rcluster::config::ecosystem::load` over the real files in `tests/fixtures/ecosystem/`: pm2's
//! shapes (its documented YAML example, JSON with string instances and `deploy`, a top-level
//! array, `ecosystem.config.js`, `increment_var` in fork mode) load into the AppSpecs asserted
//! here field by field, and every bad file gives exactly the messages asserted here, each at its
//! file:line:col. Paths are given relative, as a user types them (cargo runs tests from the
//! package root).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcluster::config::ecosystem::{load, AppExtras, ErrorKind, ExecMode, LoadOptions, Loaded};
use rcluster::config::units::available_cpus;
#[path = "ecosystem/errors.rs"]
mod errors;

use rcluster::protocol::model::{
    AppSpec, ClusterSpec, CommandSpec, ListenAddr, LogSpec, ProbeKind, ReadinessSpec, Strategy,
    WatchSpec,
};

const DIR: &str = "tests/fixtures/ecosystem";

/// The path as given to `load` (and so as messages show it).
fn rel(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// Where `load` resolves things: the fixture folder, absolute.
fn abs(name: &str) -> PathBuf {
    let dir = std::env::current_dir().expect("current dir").join(DIR);
    if name.is_empty() {
        dir
    } else {
        dir.join(name)
    }
}

fn abs_str(name: &str) -> String {
    abs(name).to_str().expect("UTF-8 fixture path").to_owned()
}

fn opts(profile: Option<&str>, only: &[&str]) -> LoadOptions {
    LoadOptions {
        profile: profile.map(str::to_owned),
        only: only.iter().map(|s| (*s).to_owned()).collect(),
        strict: false,
    }
}

fn ok(name: &str, options: &LoadOptions) -> Loaded {
    load(&rel(name), options).unwrap_or_else(|e| panic!("{name} should load, got:\n{e}"))
}

/// The error's kind and its lines, with the file prefix checked and removed (`:7:5: ...`).
fn errors(name: &str, options: &LoadOptions) -> (ErrorKind, Vec<String>) {
    let err = match load(&rel(name), options) {
        Ok(loaded) => panic!("{name} should not load, got {loaded:#?}"),
        Err(e) => e,
    };
    let prefix = rel(name).display().to_string();
    let lines = err
        .to_string()
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{line:?} lacks {prefix:?}"));
            rest.to_owned()
        })
        .collect();
    assert_eq!(
        err.problems.len(),
        err.to_string().lines().count(),
        "one line per problem"
    );
    (err.kind, lines)
}

fn notes(loaded: &Loaded, name: &str) -> Vec<String> {
    let prefix = rel(name).display().to_string();
    loaded
        .notes
        .iter()
        .map(|n| n.to_string().replacen(&prefix, "", 1))
        .collect()
}

fn exec(program: &str, args: &[&str]) -> CommandSpec {
    CommandSpec::Exec {
        program: program.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn tcp(addr: &str) -> ListenAddr {
    ListenAddr::Tcp(addr.parse::<SocketAddr>().expect("address"))
}

fn base(name: &str, command: CommandSpec) -> AppSpec {
    AppSpec {
        name: name.to_owned(),
        script: script_of(&command),
        command,
        cwd: abs(""),
        ..AppSpec::default()
    }
}

/// An app with `instances` or in cluster mode writes one file per instance, as in pm2.
fn split_logs() -> LogSpec {
    LogSpec {
        merge_logs: false,
        ..AppSpec::default().logs
    }
}

/// The script file a fixture app runs (pm2's pm_exec_path): its program or first argument
/// that is a fixture file.
fn script_of(command: &CommandSpec) -> Option<PathBuf> {
    let CommandSpec::Exec { program, args } = command else {
        return None;
    };
    std::iter::once(program)
        .chain(args)
        .map(PathBuf::from)
        .find(|p| p.starts_with(abs("")) && p.is_file())
}

fn extras(mode: ExecMode) -> AppExtras {
    AppExtras {
        exec_mode: mode,
        ..AppExtras::default()
    }
}

fn node_available() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "skipped: `node` is not on PATH, so JavaScript ecosystem files cannot be evaluated"
        );
    }
    found
}

/// Cluster mode with no declared port: the ports the program binds are shared.
fn shares_ports(mut spec: AppSpec) -> AppSpec {
    spec.cluster.discover = true;
    spec
}

#[test]
fn pm2_documented_yaml_example() {
    let loaded = ok("pm2-example.yaml", &LoadOptions::default());
    let api = shares_ports(AppSpec {
        instances: 4,
        logs: split_logs(),
        ..base("api-app", exec("node", &[&abs_str("api.js")]))
    });
    let worker = AppSpec {
        env: env(&[("NODE_ENV", "development")]),
        // `watch: true`: the app's folder, pm2's default ignores.
        watch: Some(WatchSpec {
            paths: vec![abs("")],
            ignore: vec![".*".into(), "node_modules".into()],
            ignore_regex: Vec::new(),
            extensions: Vec::new(),
            delay_ms: 0,
        }),
        ..base("worker", exec("node", &[&abs_str("worker.js")]))
    };
    assert_eq!(loaded.apps, vec![api.clone(), worker.clone()]);
    assert!(notes(&loaded, "pm2-example.yaml").is_empty());
    assert_eq!(loaded.extras["api-app"], extras(ExecMode::Cluster));
    assert_eq!(loaded.extras["worker"], extras(ExecMode::Fork));

    let production = ok("pm2-example.yaml", &opts(Some("production"), &[]));
    let worker = AppSpec {
        env: env(&[("NODE_ENV", "production")]),
        ..worker
    };
    assert_eq!(production.apps, vec![api, worker.clone()]);

    let only = ok("pm2-example.yaml", &opts(None, &["worker"]));
    assert_eq!(
        only.apps
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["worker"]
    );
    assert_eq!(only.extras.keys().collect::<Vec<_>>(), ["worker"]);
}

#[test]
fn every_key_at_once() {
    let loaded = ok("full.yaml", &LoadOptions::default());
    let web = AppSpec {
        env: env(&[
            ("DEBUG", "false"),
            ("GREETING", "hello world"),
            ("RATIO", "1.5"),
            ("RETRIES", "3"),
        ]),
        instances: 2,
        instance_var: "INSTANCE_ID".into(),
        autorestart: false,
        max_restarts: 5,
        min_uptime_ms: 2000,
        restart_delay_ms: 250,
        exp_backoff_restart_delay_ms: Some(100),
        stop_exit_codes: vec![0, 2],
        kill_signal: "SIGTERM".into(),
        kill_timeout_ms: 5000,
        max_memory_restart: Some(300 * 1024 * 1024),
        wait_ready: true,
        listen_timeout_ms: 8000,
        readiness: Some(ReadinessSpec {
            probe: ProbeKind::Http {
                path: "/health".into(),
            },
            interval_ms: 1000,
            timeout_ms: 2000,
        }),
        cron_restart: Some("0 3 * * *".into()),
        depends_on: vec!["db".into()],
        logs: LogSpec {
            out_file: Some(abs("logs/web-out.log")),
            error_file: Some("/dev/null".into()),
            log_file: Some("/dev/null".into()),
            merge_logs: false,
            time: true,
            date_format: Some("YYYY-MM-DD HH:mm Z".into()),
            json: true,
            max_size: Some(10 * 1024 * 1024),
            retain: Some(5),
            compress: true,
            rotate_daily: false,
        },
        cluster: ClusterSpec {
            listen: vec![
                tcp("127.0.0.1:8080"),
                tcp("[::1]:8080"),
                ListenAddr::Unix(abs("web.sock")),
            ],
            balance: Strategy::LeastConn,
            ..ClusterSpec::default()
        },
        ..base(
            "web",
            exec(
                "python3",
                &[&abs_str("app.py"), "--workers", "2", "--title", "my web"],
            ),
        )
    };
    let db = AppSpec {
        env: env(&[("PORT", "5432")]),
        kill_signal: "SIGTERM".into(),
        readiness: Some(ReadinessSpec {
            probe: ProbeKind::Exec {
                command: "pg_isready".into(),
            },
            interval_ms: 500,
            timeout_ms: 1000,
        }),
        ..base("db", exec("bash", &[&abs_str("run.sh")]))
    };
    let statik = shares_ports(AppSpec {
        instances: 2,
        logs: split_logs(),
        cron_restart: Some("@daily".into()),
        ..base("static", exec("python3", &["-m", "http.server", "8000"]))
    });
    let piped = AppSpec {
        env: env(&[("PORT", "8001")]),
        readiness: Some(ReadinessSpec {
            probe: ProbeKind::Tcp,
            interval_ms: 500,
            timeout_ms: 1000,
        }),
        ..base(
            "piped",
            CommandSpec::Shell {
                script: "cd /tmp && exec python3 -m http.server".into(),
            },
        )
    };
    assert_eq!(loaded.apps, vec![web, db, statik, piped]);
    assert_eq!(
        loaded.extras["web"],
        AppExtras {
            exec_mode: ExecMode::Cluster,
            restart_after_errored_ms: Some(60_000),
        }
    );
    assert_eq!(loaded.extras["db"], extras(ExecMode::Fork));
    assert_eq!(loaded.extras["static"], extras(ExecMode::Cluster));
    assert_eq!(loaded.extras["piped"], extras(ExecMode::Fork));
    assert_eq!(
        notes(&loaded, "full.yaml"),
        [
            ":41:5: app \"web\": `restart_after_errored` is not supported yet; an errored app stays errored",
            ":42:5: app \"web\": `vizion` has no effect in rcluster: rcluster does not collect version-control metadata",
            ":59:1: `deploy` section ignored: rcluster does not deploy",
        ]
    );
}

#[test]
fn json_with_string_instances_and_deploy() {
    let loaded = ok("pm2-apps.json", &LoadOptions::default());
    let api = shares_ports(AppSpec {
        env: env(&[("PORT", "3000"), ("VERBOSE", "true")]),
        instances: 2,
        logs: split_logs(),
        ..base(
            "api",
            exec("node", &["--max-old-space-size=256", &abs_str("api.js")]),
        )
    });
    let jobs = shares_ports(AppSpec {
        instances: available_cpus(),
        logs: LogSpec {
            out_file: Some("/dev/null".into()),
            error_file: Some("/dev/null".into()),
            ..AppSpec::default().logs
        },
        ..base("jobs", exec("python3", &[&abs_str("app.py")]))
    });
    assert_eq!(loaded.apps, vec![api, jobs]);
    assert_eq!(
        notes(&loaded, "pm2-apps.json"),
        [":20:3: `deploy` section ignored: rcluster does not deploy"]
    );
    assert_eq!(loaded.extras["api"], extras(ExecMode::Cluster));
    assert_eq!(loaded.extras["jobs"], extras(ExecMode::Cluster));
}

#[test]
fn top_level_json_array() {
    let loaded = ok("array.json", &LoadOptions::default());
    let worker = shares_ports(AppSpec {
        instances: available_cpus().saturating_sub(1).max(1),
        logs: split_logs(),
        ..base("worker", exec("node", &[&abs_str("worker.js")]))
    });
    let shell = AppSpec {
        autorestart: false,
        ..base(
            "shell",
            exec("bash", &[&abs_str("run.sh"), "--verbose", "3"]),
        )
    };
    assert_eq!(loaded.apps, vec![worker, shell]);
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
}

#[test]
fn fork_mode_with_increment_var() {
    let loaded = ok("fork-increment.yaml", &LoadOptions::default());
    let shards = AppSpec {
        env: env(&[("NODE_ENV", "development"), ("PORT", "4000")]),
        instances: 3,
        logs: split_logs(),
        increment_var: Some("PORT".into()),
        ..base("shards", exec("node", &[&abs_str("api.js")]))
    };
    assert_eq!(loaded.apps, vec![shards]);
    assert!(
        loaded.apps[0].cluster.listen.is_empty(),
        "fork mode shares no socket"
    );
    assert_eq!(loaded.extras["shards"], extras(ExecMode::Fork));
}

#[test]
fn single_app_file_and_paths() {
    let single = ok("single-app.yaml", &LoadOptions::default());
    let server = AppSpec {
        env: env(&[("PORT", "3100")]),
        ..base("server", exec("node", &[&abs_str("web/server.js")]))
    };
    assert_eq!(single.apps, vec![server]);

    let with_cwd = ok("cwd.yaml", &LoadOptions::default());
    let web = AppSpec {
        cwd: abs("web"),
        logs: LogSpec {
            out_file: Some(abs("web/logs/out.log")),
            error_file: Some(abs("logs/err.log")),
            ..AppSpec::default().logs
        },
        ..base("web", exec("node", &[&abs_str("web/server.js")]))
    };
    assert_eq!(with_cwd.apps, vec![web]);
}

#[test]
fn profiles_and_only() {
    let staging = ok("profiles.yaml", &opts(Some("staging"), &["api"]));
    let api = AppSpec {
        env: env(&[("NODE_ENV", "staging"), ("PORT", "3000")]),
        ..base("api-staging", exec("node", &[&abs_str("api.js")]))
    };
    assert_eq!(staging.apps, vec![api]);
    assert_eq!(staging.extras.keys().collect::<Vec<_>>(), ["api-staging"]);

    let all = ok("profiles.yaml", &opts(Some("staging"), &[]));
    assert_eq!(
        all.apps[1].depends_on,
        ["api"],
        "depends_on keeps the name as written"
    );

    let plain = ok("profiles.yaml", &LoadOptions::default());
    assert_eq!(plain.apps[0].name, "api");
    assert_eq!(
        plain.apps[0].env,
        env(&[("NODE_ENV", "development"), ("PORT", "3000")])
    );

    let unknown_profile = ok("profiles.yaml", &opts(Some("prod"), &[]));
    assert_eq!(
        notes(&unknown_profile, "profiles.yaml"),
        [": no app has `env_prod`; the apps keep their `env`"]
    );

    assert_eq!(
        errors("profiles.yaml", &opts(None, &["api", "wroker"])),
        (
            ErrorKind::Invalid,
            vec![": --only: no app named \"wroker\" in this file, did you mean \"worker\"? (apps: api, worker)".to_owned()]
        )
    );
}

#[test]
fn ecosystem_config_js() {
    if !node_available() {
        return;
    }
    let loaded = ok("ecosystem.config.js", &LoadOptions::default());
    let api = shares_ports(AppSpec {
        env: env(&[("NODE_ENV", "development"), ("PORT", "3000")]),
        instances: available_cpus(),
        logs: split_logs(),
        ..base("js-api", exec("node", &[&abs_str("api.js")]))
    });
    // `path.join(__dirname, ...)`: node reports the file's real directory.
    let real_dir = std::fs::canonicalize(abs("")).expect("fixture dir");
    let worker_js = real_dir
        .join("worker.js")
        .to_str()
        .expect("UTF-8")
        .to_owned();
    let worker = AppSpec {
        max_memory_restart: Some(200 * 1024 * 1024),
        logs: LogSpec {
            out_file: Some("/dev/null".into()),
            ..AppSpec::default().logs
        },
        ..base("js-worker", exec("node", &[&worker_js, "--queue", "mail"]))
    };
    assert_eq!(loaded.apps, vec![api, worker]);
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);

    let production = ok(
        "ecosystem.config.js",
        &opts(Some("production"), &["js-api"]),
    );
    assert_eq!(
        production.apps[0].env,
        env(&[("NODE_ENV", "production"), ("PORT", "3000")])
    );

    let esm = ok("ecosystem.config.mjs", &LoadOptions::default());
    let esm_worker = AppSpec {
        restart_delay_ms: 500,
        ..base("esm-worker", exec("node", &[&abs_str("worker.js")]))
    };
    assert_eq!(esm.apps, vec![esm_worker]);
}

#[test]
fn javascript_without_node_says_so() {
    // PATH is per process: the check runs in a copy of this test binary with an empty PATH.
    if std::env::var_os("RCLUSTER_ECOSYSTEM_TEST_NO_NODE").is_some() {
        assert_eq!(
            errors("ecosystem.config.js", &LoadOptions::default()),
            (
                ErrorKind::NeedsNode,
                vec![": evaluating a JavaScript ecosystem file needs `node` on PATH; install Node.js or convert it to ecosystem.yaml".to_owned()]
            )
        );
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    let output = Command::new(me)
        .args(["--exact", "javascript_without_node_says_so", "--nocapture"])
        .env("RCLUSTER_ECOSYSTEM_TEST_NO_NODE", "1")
        .env("PATH", "/nonexistent")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the check: {stdout}"
    );
}
