//! `jlist`, `prettylist` and `list --json`: one object per instance in pm2's shape (`pm_id`,
//! `name`, `pid`, `pm2_env.*`, `monit.*`, with pm2's meanings and value forms), rcluster's own
//! fields beside them, so that scripts written for `pm2 jlist` and for rcluster read the same
//! object. Every key is documented in docs/jlist.md. Built from `describe` answers (the spec
//! and the instance views); printed by `cmd::control`.

use std::path::{Path, PathBuf};

use super::inspect::Js;
use crate::protocol::model::{AppSpec, CommandSpec, InstanceState, InstanceView};

/// The pm2-shaped object of one instance of the app `spec`.
pub fn instance(spec: &AppSpec, view: &InstanceView, username: &str) -> Js {
    let pid = u64::from(view.pid.unwrap_or(0));
    let mut object = vec![
        ("pid".to_owned(), Js::from(pid)),
        ("name".to_owned(), Js::from(view.name.as_str())),
        ("pm2_env".to_owned(), pm2_env(spec, view, username)),
        ("pm_id".to_owned(), Js::from(view.id)),
        (
            "monit".to_owned(),
            Js::Obj(vec![
                ("memory".to_owned(), Js::from(view.memory)),
                ("cpu".to_owned(), Js::from(view.cpu)),
            ]),
        ),
    ];
    // rcluster's own fields (`list --json` before pm2's keys were added), beside pm2's.
    if let Ok(serde_json::Value::Object(own)) = serde_json::to_value(view) {
        for (key, value) in own {
            if !object.iter().any(|(k, _)| *k == key) {
                object.push((key, value.into()));
            }
        }
    }
    Js::Obj(object)
}

/// rcluster's own keys that repeat one of pm2's (`status` is `pm2_env.status`, `restarts` is
/// `restart_time`...). `jlist` keeps them (scripts written for rcluster read them); `prettylist`
/// leaves them out, so that a `grep -c "status: 'online'"` written for pm2 counts each
/// instance once.
const REPEATS: &[&str] = &[
    "id",
    "namespace",
    "status",
    "restarts",
    "unstable_restarts",
    "created_at",
    "started_at",
    "cpu",
    "memory",
    "cwd",
    "out_log",
    "err_log",
];

/// An [`instance`] object without the rcluster keys that repeat pm2's (for `prettylist`).
pub fn without_repeats(object: Js) -> Js {
    match object {
        Js::Obj(entries) => Js::Obj(
            entries
                .into_iter()
                .filter(|(k, _)| !REPEATS.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

/// pm2's spelling of a state (`waiting restart` has a space there).
pub fn pm2_status(state: InstanceState) -> &'static str {
    match state {
        InstanceState::WaitingRestart => "waiting restart",
        other => other.as_str(),
    }
}

fn pm2_env(spec: &AppSpec, view: &InstanceView, username: &str) -> Js {
    let exec = ExecParts::of(spec);
    let env = instance_env(spec, view);
    let mut out: Vec<(String, Js)> = Vec::new();
    let mut put = |key: &str, value: Js| out.push((key.to_owned(), value));
    put("name", view.name.as_str().into());
    put("namespace", view.namespace.as_str().into());
    put(
        "env",
        Js::Obj(
            env.iter()
                .map(|(k, v)| (k.clone(), v.as_str().into()))
                .collect(),
        ),
    );
    put("merge_logs", spec.logs.merge_logs.into());
    put("autostart", spec.autostart.into());
    put("autorestart", spec.autorestart.into());
    put("watch", watch(spec));
    put("instance_var", spec.instance_var.as_str().into());
    put("username", username.into());
    put("node_args", strings(&exec.node_args));
    put("args", strings(&exec.args));
    put("pm_exec_path", exec.path.as_str().into());
    put("pm_cwd", path(&spec.cwd));
    put("exec_interpreter", exec.interpreter.as_str().into());
    put(
        "exec_mode",
        if view.mode == "fork" {
            "fork_mode"
        } else {
            "cluster_mode"
        }
        .into(),
    );
    put("instances", spec.instances.into());
    if let Some(file) = spec
        .logs
        .log_file
        .as_ref()
        .filter(|p| p.as_os_str() != "/dev/null")
    {
        put("pm_log_path", path(file));
    }
    put("pm_out_log_path", log_path(view.out_log.as_deref()));
    put("pm_err_log_path", log_path(view.err_log.as_deref()));
    put("kill_timeout", spec.kill_timeout_ms.into());
    put("min_uptime", spec.min_uptime_ms.into());
    put("max_restarts", spec.max_restarts.into());
    if let Some(limit) = spec.max_memory_restart {
        put("max_memory_restart", limit.into());
    }
    if let Some(pattern) = &spec.cron_restart {
        put("cron_restart", pattern.as_str().into());
    }
    // As pm2 does, the app's environment is also spread over pm2_env (NODE_APP_INSTANCE...),
    // where it does not hide one of pm2's keys.
    let own: Vec<String> = out.iter().map(|(k, _)| k.clone()).collect();
    for (key, value) in &env {
        if !own.contains(key) && !PM2_KEYS_AFTER_ENV.contains(&key.as_str()) {
            out.push((key.clone(), value.as_str().into()));
        }
    }
    // NODE_APP_INSTANCE (the instance_var) is a number here, as in pm2.
    if let Some(entry) = out.iter_mut().find(|(k, _)| *k == spec.instance_var) {
        entry.1 = Js::from(view.instance);
    }
    let mut put = |key: &str, value: Js| out.push((key.to_owned(), value));
    put("status", pm2_status(view.status).into());
    let started = match view.started_at {
        0 => view.created_at,
        at => at,
    };
    put("pm_uptime", started.into());
    put("created_at", view.created_at.into());
    put("pm_id", view.id.into());
    put("restart_time", view.restarts.into());
    put("unstable_restarts", view.unstable_restarts.into());
    Js::Obj(out)
}

/// pm2's keys written after the environment is spread (an env var of that name does not
/// replace them).
const PM2_KEYS_AFTER_ENV: &[&str] = &[
    "status",
    "pm_uptime",
    "created_at",
    "pm_id",
    "restart_time",
    "unstable_restarts",
];

/// What `pm2_env.env` holds: the app's declared environment and the variables rcluster gives
/// each instance (README, "What an instance sees"). Not the environment of the shell that
/// started the app, which pm2 shows whole (tokens and all): `rcluster env <id>` prints what a
/// running program has.
fn instance_env(spec: &AppSpec, view: &InstanceView) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut set = |key: &str, value: String| match env.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => env.push((key.to_owned(), value)),
    };
    if let Some(var) = &spec.increment_var {
        if let Some(base) = spec.env.get(var).and_then(|v| v.trim().parse::<i64>().ok()) {
            set(var, (base + i64::from(view.instance)).to_string());
        }
    }
    set("RCLUSTER_APP", spec.name.clone());
    set("RCLUSTER_ID", view.id.to_string());
    set("RCLUSTER_INSTANCE", view.instance.to_string());
    if !spec.instance_var.is_empty() {
        set(&spec.instance_var, view.instance.to_string());
    }
    env
}

/// pm2's `watch`: false, true (the app's folder), or the paths given.
fn watch(spec: &AppSpec) -> Js {
    let Some(watch) = &spec.watch else {
        return false.into();
    };
    if watch.paths.is_empty() || watch.paths == [spec.cwd.clone()] {
        return true.into();
    }
    Js::Arr(
        watch
            .paths
            .iter()
            .map(|p| match p.strip_prefix(&spec.cwd) {
                Ok(inside) if !inside.as_os_str().is_empty() => path(inside),
                _ => path(p),
            })
            .collect(),
    )
}

/// pm2's `pm_exec_path` of an app: the script file, or the program it runs.
pub fn exec_path(spec: &AppSpec) -> String {
    ExecParts::of(spec).path
}

/// pm2's `pm_exec_path`, `exec_interpreter`, `node_args` and `args`, from the command.
struct ExecParts {
    path: String,
    interpreter: String,
    node_args: Vec<String>,
    args: Vec<String>,
}

impl ExecParts {
    fn of(spec: &AppSpec) -> ExecParts {
        let none = |path: String, args: &[String]| ExecParts {
            path,
            interpreter: "none".into(),
            node_args: Vec::new(),
            args: args.to_vec(),
        };
        match (&spec.command, &spec.script) {
            (CommandSpec::Shell { script }, _) => {
                none("/bin/sh".into(), &["-c".into(), script.clone()])
            }
            (CommandSpec::Exec { program, args }, Some(script)) => {
                let script = script.to_string_lossy().into_owned();
                if *program == script {
                    return none(script, args);
                }
                match args.iter().position(|a| *a == script) {
                    Some(at) => ExecParts {
                        path: script,
                        interpreter: program.clone(),
                        node_args: args[..at].to_vec(),
                        args: args[at + 1..].to_vec(),
                    },
                    None => ExecParts {
                        path: script,
                        interpreter: program.clone(),
                        node_args: Vec::new(),
                        args: args.clone(),
                    },
                }
            }
            (CommandSpec::Exec { program, args }, None) => {
                none(program_path(program, &spec.cwd), args)
            }
        }
    }
}

/// A program as pm2 shows it: found on PATH (`sleep` → `/usr/bin/sleep`), or made absolute.
fn program_path(program: &str, cwd: &Path) -> String {
    if program.contains('/') {
        return cwd.join(program).to_string_lossy().into_owned();
    }
    crate::config::interpreter::find_on_path(program)
        .map_or_else(|| program.to_owned(), |p| p.to_string_lossy().into_owned())
}

fn log_path(file: Option<&Path>) -> Js {
    path(file.unwrap_or(Path::new("/dev/null")))
}

fn path(p: &Path) -> Js {
    Js::Str(p.to_string_lossy().into_owned())
}

fn strings(items: &[String]) -> Js {
    Js::Arr(items.iter().map(|s| s.as_str().into()).collect())
}

/// The name of the user running this command (the daemon runs as the same user: it refuses
/// others).
pub fn username() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name)
}

/// The script a target names, made absolute as node's `path.resolve` does.
pub fn resolve_path(cwd: &Path, text: &str) -> PathBuf {
    crate::config::ecosystem::normalise(&cwd.join(text))
}
