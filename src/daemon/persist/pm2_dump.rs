//! The saved list's format: pm2's `dump.pm2` (what `pm2 save` writes: a JSON array with one
//! object per *instance*, pm2's `pm2_env` keys), so that pm2's tools and habits read it, with
//! rcluster's own record alongside under the key `rcluster` on each app's first entry: the
//! exact spec and the environment the app was started with. `resurrect` reads that record;
//! pm2's keys are for pm2 (`pm2 resurrect` with the file in a PM2_HOME) and for `rcluster
//! import pm2`, which reads any pm2 dump.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::protocol::model::{AppSpec, CommandSpec, InstanceState};

/// Bumped when the `rcluster` record changes incompatibly.
pub const FORMAT: u32 = 2;

/// One saved app: its spec and the base environment under its declared env (the shell's of
/// whoever started it, minus `filter_env`). `None` for lists written before environments were
/// saved: the resurrecting daemon's own environment is the base then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedApp {
    pub spec: AppSpec,
    pub base_env: Option<BTreeMap<String, String>>,
}

/// What one instance looked like when saved (pm2's `status`, `restart_time`).
#[derive(Debug, Clone, Copy)]
pub struct InstanceNow {
    pub state: InstanceState,
    pub restarts: u32,
}

/// The `rcluster` record of an app's first entry.
#[derive(Serialize, Deserialize)]
struct Record {
    format: u32,
    version: String,
    spec: AppSpec,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
}

/// The dump: every app's instances as pm2 entries, in order. `root` is the home: pm2 wants a
/// pid file path (`pm2 resurrect` fails without one), and rcluster's default log files are there.
pub fn encode(apps: &[(SavedApp, Vec<InstanceNow>)], root: &Path) -> Value {
    let mut entries = Vec::new();
    for (app, instances) in apps {
        let common = pm2_keys(app, &root.join("logs"));
        let count = app.spec.instances.max(1);
        for index in 0..count {
            let mut entry = common.clone();
            let now = instances.get(index as usize);
            entry.insert(app.spec.instance_var.clone(), json!(index));
            let pid_file = root
                .join("pids")
                .join(format!("{}-{index}.pid", app.spec.name));
            entry.insert("pm_pid_path".into(), json!(pid_file));
            entry.insert("status".into(), json!(pm2_status(now.map(|n| n.state))));
            entry.insert("restart_time".into(), json!(now.map_or(0, |n| n.restarts)));
            if !app.spec.logs.merge_logs {
                for key in ["pm_out_log_path", "pm_err_log_path"] {
                    if let Some(Value::String(path)) = entry.get(key) {
                        let per_instance = per_instance_path(Path::new(path), index);
                        entry.insert(key.into(), json!(per_instance));
                    }
                }
            }
            if index == 0 {
                let record = Record {
                    format: FORMAT,
                    version: crate::protocol::VERSION.to_owned(),
                    spec: app.spec.clone(),
                    env: app.base_env.clone(),
                };
                entry.insert(
                    "rcluster".into(),
                    serde_json::to_value(record).unwrap_or(Value::Null),
                );
            }
            entries.push(Value::Object(entry));
        }
    }
    Value::Array(entries)
}

/// The apps of a dump, and notes on entries that are not rcluster's (written by pm2).
pub fn decode(dump: &Value) -> Result<(Vec<SavedApp>, Vec<String>), String> {
    let Value::Array(entries) = dump else {
        return Err("not a list of apps (pm2's dump format is a JSON array)".into());
    };
    let mut apps: Vec<SavedApp> = Vec::new();
    let mut foreign: Vec<String> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let name = entry.get("name").and_then(Value::as_str);
        match entry.get("rcluster") {
            Some(record) => {
                let record = Record::deserialize(record)
                    .map_err(|e| format!("entry #{}: rcluster's record: {e}", i + 1))?;
                if record.format > FORMAT {
                    return Err(format!(
                        "entry #{}: written by rcluster {} in format {}; this rcluster reads format {FORMAT} (`rcluster update`?)",
                        i + 1,
                        record.version,
                        record.format
                    ));
                }
                apps.push(SavedApp {
                    spec: record.spec,
                    base_env: record.env,
                });
            }
            None => {
                let name = name.unwrap_or("(no name)").to_owned();
                if !foreign.contains(&name) {
                    foreign.push(name);
                }
            }
        }
    }
    // The other instances of an app saved by rcluster carry no record of their own.
    foreign.retain(|name| !apps.iter().any(|a| a.spec.name == *name));
    let notes = if foreign.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} app(s) of this list were saved by pm2, not rcluster ({}): skipped; `rcluster import pm2 --pm2-home DIR` starts a pm2 list",
            foreign.len(),
            foreign.join(", ")
        )]
    };
    Ok((apps, notes))
}

/// The apps a dump holds (rcluster's or pm2's entries alike), without validating them.
pub fn app_names(dump: &Value) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for entry in dump.as_array()? {
        let name = entry.get("name")?.as_str()?.to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Some(names)
}

fn pm2_status(state: Option<InstanceState>) -> &'static str {
    match state {
        Some(InstanceState::Online) => "online",
        Some(InstanceState::Launching) => "launching",
        Some(InstanceState::Stopping) => "stopping",
        Some(InstanceState::WaitingRestart) => "waiting restart",
        Some(InstanceState::Errored) => "errored",
        Some(InstanceState::Stopped) | None => "stopped",
    }
}

/// Programs pm2 names as an `exec_interpreter` (the script is their first non-flag argument).
fn is_interpreter(program: &str) -> bool {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    [
        "node", "nodejs", "python", "bun", "deno", "ruby", "perl", "php", "bash", "coffee",
    ]
    .iter()
    .any(|i| {
        name == *i
            || (name.starts_with(i)
                && name[i.len()..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// (pm_exec_path, exec_interpreter, node_args, args) as pm2 records a command.
fn pm2_command(command: &CommandSpec, cwd: &Path) -> (String, String, Vec<String>, Vec<String>) {
    let absolute = |p: &str| -> String {
        if p.contains('/') {
            cwd.join(p).to_string_lossy().into_owned()
        } else {
            p.to_owned()
        }
    };
    match command {
        CommandSpec::Exec { program, args } if is_interpreter(program) => {
            match args.iter().position(|a| !a.starts_with('-')) {
                Some(at) => (
                    cwd.join(&args[at]).to_string_lossy().into_owned(),
                    program.clone(),
                    args[..at].to_vec(),
                    args[at + 1..].to_vec(),
                ),
                None => (absolute(program), "none".into(), Vec::new(), args.clone()),
            }
        }
        CommandSpec::Exec { program, args } => {
            (absolute(program), "none".into(), Vec::new(), args.clone())
        }
        // pm2 runs a command line as `bash -c "..."` with no interpreter.
        CommandSpec::Shell { script } => (
            "/bin/sh".into(),
            "none".into(),
            Vec::new(),
            vec!["-c".into(), script.clone()],
        ),
    }
}

/// The keys every entry of an app shares (pm2's names, units and value forms).
fn pm2_keys(app: &SavedApp, logs_dir: &Path) -> Map<String, Value> {
    let spec = &app.spec;
    let (exec_path, interpreter, node_args, args) = pm2_command(&spec.command, &spec.cwd);
    let mut env: BTreeMap<String, String> = app.base_env.clone().unwrap_or_default();
    env.extend(spec.env.clone());
    let cluster = !spec.cluster.listen.is_empty() || spec.cluster.discover;
    let default_log = |suffix: &str| logs_dir.join(format!("{}-{suffix}.log", spec.name));
    let log = |declared: &Option<PathBuf>, suffix: &str| -> String {
        declared
            .clone()
            .unwrap_or_else(|| default_log(suffix))
            .to_string_lossy()
            .into_owned()
    };
    let mut m = Map::new();
    m.insert("name".into(), json!(spec.name));
    m.insert(
        "namespace".into(),
        json!(spec.namespace.as_deref().unwrap_or("default")),
    );
    m.insert("pm_exec_path".into(), json!(exec_path));
    m.insert("pm_cwd".into(), json!(spec.cwd));
    m.insert("exec_interpreter".into(), json!(interpreter));
    m.insert("node_args".into(), json!(node_args));
    m.insert("args".into(), json!(args));
    m.insert(
        "exec_mode".into(),
        json!(if cluster { "cluster_mode" } else { "fork_mode" }),
    );
    m.insert("env".into(), json!(env));
    m.insert("filter_env".into(), json!(spec.filter_env));
    m.insert("instance_var".into(), json!(spec.instance_var));
    if let Some(var) = &spec.increment_var {
        m.insert("increment_var".into(), json!(var));
    }
    m.insert("merge_logs".into(), json!(spec.logs.merge_logs));
    m.insert("autorestart".into(), json!(spec.autorestart));
    m.insert("autostart".into(), json!(spec.autostart));
    m.insert("max_restarts".into(), json!(spec.max_restarts));
    m.insert("min_uptime".into(), json!(spec.min_uptime_ms));
    m.insert("restart_delay".into(), json!(spec.restart_delay_ms));
    if let Some(delay) = spec.exp_backoff_restart_delay_ms {
        m.insert("exp_backoff_restart_delay".into(), json!(delay));
    }
    m.insert("kill_timeout".into(), json!(spec.kill_timeout_ms));
    m.insert("listen_timeout".into(), json!(spec.listen_timeout_ms));
    m.insert("wait_ready".into(), json!(spec.wait_ready));
    if let Some(limit) = spec.max_memory_restart {
        m.insert("max_memory_restart".into(), json!(limit));
    }
    if let Some(cron) = &spec.cron_restart {
        m.insert("cron_restart".into(), json!(cron));
    }
    if !spec.stop_exit_codes.is_empty() {
        m.insert("stop_exit_codes".into(), json!(spec.stop_exit_codes));
    }
    m.insert(
        "time".into(),
        json!(spec.logs.time || spec.logs.date_format.is_some()),
    );
    if let Some(format) = &spec.logs.date_format {
        m.insert("log_date_format".into(), json!(format));
    }
    if spec.logs.json {
        m.insert("log_type".into(), json!("json"));
    }
    m.insert(
        "pm_out_log_path".into(),
        json!(log(&spec.logs.out_file, "out")),
    );
    m.insert(
        "pm_err_log_path".into(),
        json!(log(&spec.logs.error_file, "error")),
    );
    if let Some(path) = &spec.logs.log_file {
        m.insert("pm_log_path".into(), json!(path));
    }
    match &spec.watch {
        Some(watch) => {
            m.insert("watch".into(), json!(watch.paths));
            m.insert("ignore_watch".into(), json!(watch.ignore));
            m.insert("watch_delay".into(), json!(watch.delay_ms));
        }
        None => {
            m.insert("watch".into(), json!(false));
        }
    }
    if let Some(user) = &spec.user {
        m.insert("uid".into(), json!(user));
    }
    if let Some(group) = &spec.group {
        m.insert("gid".into(), json!(group));
    }
    // What pm2 would otherwise try to do at resurrect: git metadata, its agent, tree-kill.
    m.insert("vizion".into(), json!(false));
    m.insert("pmx".into(), json!(false));
    m.insert("automation".into(), json!(false));
    m.insert("treekill".into(), json!(true));
    m.insert("windowsHide".into(), json!(true));
    m
}

/// `web-out.log` → `web-out-2.log`, pm2's per-instance file name.
fn per_instance_path(path: &Path, index: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}
