//! `rcluster import pm2` (PRODUCT.md §7, §8): pm2's saved process list (`$PM2_HOME/dump.pm2`,
//! written by `pm2 save`) turned into an ecosystem file, validated by the same loader as any
//! ecosystem file, then started (`start <file>` semantics) — or only written with `--write`.
//!
//! The dump holds one object per *instance* (pm2's `pm2_env`, with `instances` and `pm_id`
//! removed), so an app's instance count is the number of its entries. Each entry's `env` is the
//! WHOLE environment of the pm2 CLI that started it, merged with the app's declared env and ~35
//! keys of pm2's own; pm2 does not keep the declared part apart. What is kept: keys that are not
//! pm2's and whose value differs from the importing shell's (the shell's own values are the
//! base of every app's env anyway, as under pm2).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cli::args::{ImportArgs, ImportSource};
use crate::cli::client::Client;
use crate::cli::cmd::ecosystem;
use crate::config::interpreter::default_interpreter;
use crate::paths::Home;
use crate::protocol::{Request, Response};

pub fn run(home: &Home, args: &ImportArgs) -> Result<i32> {
    match args.from {
        ImportSource::Pm2 => pm2(home, args),
    }
}

fn pm2(home: &Home, args: &ImportArgs) -> Result<i32> {
    let pm2_home = match &args.pm2_home {
        Some(dir) => dir.clone(),
        None => default_pm2_home()?,
    };
    let dump = pm2_home.join("dump.pm2");
    let text = match fs::read_to_string(&dump) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no pm2 process list at {} (run `pm2 save` first, or give --pm2-home)",
            dump.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dump.display())),
    };
    let entries: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not pm2's process list", dump.display()))?;
    let shell: BTreeMap<String, String> = std::env::vars().collect();
    let converted = convert(&entries, &shell, &pm2_home);
    for note in &converted.notes {
        eprintln!("[rcluster] note: {note}");
    }
    if converted.apps.is_empty() {
        bail!("{} holds no app to import", dump.display());
    }
    let body = render(&converted.apps);

    if let Some(out) = &args.write {
        let name = out.to_string_lossy();
        if !name.ends_with(".json") {
            bail!("{name}: the converted list is JSON; name the file *.json");
        }
        write_private(out, &body)?;
        let loaded = ecosystem::load_file(&name, &ecosystem::FileOptions::default())?;
        println!(
            "wrote {name} ({} app(s) from {}): review it, then `rcluster start {name}`",
            loaded.apps.len(),
            dump.display()
        );
        return Ok(0);
    }

    // Kept in the home (it holds env values: private) so the user can look at what was run.
    home.ensure()?;
    let file = home.root().join("pm2-import.json");
    write_private(&file, &body)?;
    let name = file.to_string_lossy().into_owned();
    let loaded = ecosystem::load_file(&name, &ecosystem::FileOptions::default())?;
    let mut client = Client::connect(home)?;
    let shown = ecosystem::start_loaded(&mut client, &loaded)?;
    eprintln!(
        "[rcluster] imported from {}: {} (as an ecosystem file: {name})",
        dump.display(),
        loaded
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let code = ecosystem::report(&shown, false)?;
    if args.save {
        match client.call(&Request::Save { force: false })? {
            Response::Done { message } => eprintln!("[rcluster] {message}"),
            other => bail!("unexpected answer from the daemon: {other:?}"),
        }
    }
    Ok(code)
}

/// `$PM2_HOME`, else `~/.pm2`, as pm2 decides.
fn default_pm2_home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PM2_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let base = directories::BaseDirs::new().context("cannot find your home directory")?;
    Ok(base.home_dir().join(".pm2"))
}

fn write_private(path: &Path, body: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(body.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// One app as ecosystem keys, in the order they are written.
pub type App = Vec<(&'static str, Value)>;

#[derive(Debug, Default)]
pub struct Converted {
    pub apps: Vec<App>,
    pub notes: Vec<String>,
}

/// pm2's interpreter per extension (pm2's `lib/API/interpreter.json`): an app run with it
/// was not given one, so rcluster picks its own by extension (`python3` for `python`).
fn pm2_interpreter(script: &str) -> Option<&'static str> {
    let ext = Path::new(script).extension()?.to_str()?;
    Some(match ext {
        "sh" => "bash",
        "py" => "python",
        "rb" => "ruby",
        "php" => "php",
        "pl" => "perl",
        "js" | "cjs" | "mjs" => "node",
        "coffee" => "coffee",
        "ls" => "lsc",
        "ts" | "tsx" => "bun",
        _ => return None,
    })
}

/// Keys of pm2's that land in an app's `env` (besides the app's own name, whose value is pm2's
/// per-app env blob), and keys the shell sets for itself.
const PM2_ENV_KEYS: &[&str] = &[
    "unique_id",
    "pm_id",
    "name",
    "namespace",
    "status",
    "restart_time",
    "unstable_restarts",
    "created_at",
    "pm_uptime",
    "exit_code",
    "version",
    "node_version",
    "_pm2_version",
    "km_link",
    "vizion",
    "vizion_running",
    "automation",
    "autorestart",
    "autostart",
    "treekill",
    "pmx",
    "windowsHide",
    "username",
    "instance_var",
    "exec_mode",
    "exec_interpreter",
    "kill_retry_time",
    "merge_logs",
    "node_args",
    "filter_env",
    "watch",
    "args",
    "env",
    "NODE_APP_INSTANCE",
    "_",
    "PWD",
    "OLDPWD",
    "SHLVL",
];

const PM2_ENV_PREFIXES: &[&str] = &["PM2_", "pm_", "pm2_", "axm_"];

/// The dump's entries -> apps in first-seen order, with notes on what does not carry over.
pub fn convert(entries: &[Value], shell: &BTreeMap<String, String>, pm2_home: &Path) -> Converted {
    let mut out = Converted::default();
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            out.notes
                .push(format!("entry #{} has no name; skipped", i + 1));
            continue;
        };
        if !groups.contains_key(name) {
            order.push(name.to_owned());
        }
        groups.entry(name.to_owned()).or_default().push(entry);
    }
    for name in order {
        let Some(group) = groups.get(&name) else {
            continue;
        };
        if let Some(app) = convert_app(&name, group, shell, pm2_home, &mut out.notes) {
            out.apps.push(app);
        }
    }
    out
}

fn convert_app(
    name: &str,
    group: &[&Value],
    shell: &BTreeMap<String, String>,
    pm2_home: &Path,
    notes: &mut Vec<String>,
) -> Option<App> {
    let instance_var = group
        .first()
        .and_then(|e| e.get("instance_var"))
        .and_then(Value::as_str)
        .unwrap_or("NODE_APP_INSTANCE")
        .to_owned();
    // Instance 0 carries the base value of `increment_var`.
    let index_of = |e: &Value| {
        e.get(&instance_var)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(u64::MAX)
    };
    let entry = *group.iter().min_by_key(|e| index_of(e))?;
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(exec_path) = text("pm_exec_path") else {
        notes.push(format!(
            "app \"{name}\": no `pm_exec_path` in pm2's list; skipped"
        ));
        return None;
    };
    let mut args: Vec<String> = match entry.get("args") {
        Some(Value::Array(items)) => items.iter().map(scalar).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let interpreter = text("exec_interpreter").unwrap_or_else(|| "node".into());
    let mut app: App = vec![("name", Value::from(name))];

    // `pm2 start "cmd args"` runs `bash -c "cmd args"` with no interpreter: give back the line.
    let shell_line = interpreter == "none"
        && matches!(base_name(&exec_path), "bash" | "sh")
        && args.len() == 2
        && args[0] == "-c";
    let runs_python;
    if exec_path.ends_with("/lib/API/Serve.js") {
        // `pm2 serve`: pm2's own static file server, whose settings are PM2_SERVE_* in env.
        runs_python = false;
        app.push(("script", Value::from("serve")));
    } else if shell_line {
        let line = args.remove(1);
        runs_python = line.trim_start().starts_with("python");
        app.push(("script", Value::from(line)));
    } else {
        runs_python = interpreter.contains("python");
        app.push(("script", Value::from(exec_path.as_str())));
        if !args.is_empty() {
            app.push(("args", Value::from(args)));
        }
        let by_extension = pm2_interpreter(&exec_path);
        let implied = by_extension == Some(interpreter.as_str())
            || (by_extension == Some("python") && interpreter == "python3")
            || (interpreter == "none" && default_interpreter(&exec_path).is_none());
        if !implied {
            app.push(("interpreter", Value::from(interpreter.as_str())));
        }
    }
    if let Some(cwd) = text("pm_cwd") {
        app.push(("cwd", Value::from(cwd)));
    }
    if let Some(namespace) = text("namespace").filter(|ns| ns != "default") {
        app.push(("namespace", Value::from(namespace)));
    }
    let cluster = text("exec_mode").as_deref() == Some("cluster_mode");
    app.push((
        "exec_mode",
        Value::from(if cluster { "cluster" } else { "fork" }),
    ));
    if cluster || group.len() > 1 {
        app.push(("instances", Value::from(group.len())));
    }
    if let Some(Value::Array(node_args)) = entry.get("node_args") {
        if !node_args.is_empty() {
            let words: Vec<String> = node_args.iter().map(scalar).collect();
            app.push(("node_args", Value::from(words)));
        }
    }
    if entry.get("autorestart") == Some(&Value::Bool(false)) {
        app.push(("autorestart", Value::Bool(false)));
    }
    for key in [
        "max_restarts",
        "min_uptime",
        "restart_delay",
        "exp_backoff_restart_delay",
        "kill_timeout",
        "listen_timeout",
        "max_memory_restart",
    ] {
        if let Some(n) = entry.get(key).filter(|v| v.is_u64()) {
            app.push((key, n.clone()));
        }
    }
    if entry.get("wait_ready") == Some(&Value::Bool(true)) {
        app.push(("wait_ready", Value::Bool(true)));
    }
    if let Some(codes) = entry
        .get("stop_exit_codes")
        .filter(|v| v.is_i64() || v.is_array())
    {
        app.push(("stop_exit_codes", codes.clone()));
    }
    if let Some(cron) = text("cron_restart").filter(|c| !c.is_empty()) {
        app.push(("cron_restart", Value::from(cron)));
    }
    if instance_var != "NODE_APP_INSTANCE" {
        app.push(("instance_var", Value::from(instance_var.as_str())));
    }
    let increment_var = text("increment_var");
    if let Some(var) = &increment_var {
        app.push(("increment_var", Value::from(var.as_str())));
    }
    if entry.get("time") == Some(&Value::Bool(true)) {
        app.push(("time", Value::Bool(true)));
    }
    if let Some(format) = text("log_date_format") {
        app.push(("log_date_format", Value::from(format)));
    }
    let per_instance = entry.get("merge_logs") != Some(&Value::Bool(true));
    if !per_instance {
        app.push(("merge_logs", Value::Bool(true)));
    }
    for (pm2_key, key) in [
        ("pm_out_log_path", "out_file"),
        ("pm_err_log_path", "error_file"),
        ("pm_log_path", "log_file"),
    ] {
        if let Some(path) = text(pm2_key) {
            if let Some(declared) = declared_log(&path, pm2_home, per_instance) {
                app.push((key, Value::from(declared)));
            }
        }
    }
    match entry.get("watch") {
        Some(watch @ Value::Bool(true)) => app.push(("watch", watch.clone())),
        Some(watch @ Value::Array(paths)) if paths.iter().all(Value::is_string) => {
            app.push(("watch", watch.clone()))
        }
        _ => {}
    }
    if app.iter().any(|(key, _)| *key == "watch") {
        match entry.get("ignore_watch") {
            Some(ignore @ Value::String(_)) => app.push(("ignore_watch", ignore.clone())),
            Some(ignore @ Value::Array(items)) if items.iter().all(Value::is_string) => {
                app.push(("ignore_watch", ignore.clone()))
            }
            _ => {}
        }
        if let Some(delay) = entry.get("watch_delay").filter(|v| v.is_u64()) {
            app.push(("watch_delay", delay.clone()));
        }
    }

    let env = declared_env(name, entry, &instance_var, shell, runs_python);
    if !env.is_empty() {
        let map: serde_json::Map<String, Value> =
            env.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        app.push(("env", Value::Object(map)));
    }

    if let Some(status) = text("status").filter(|s| s != "online") {
        notes.push(format!(
            "app \"{name}\" was {status} under pm2; it is started here (as `pm2 resurrect` does)"
        ));
    }
    if entry.get("autostart") == Some(&Value::Bool(false)) {
        notes.push(format!(
            "app \"{name}\" had autostart: false under pm2; it is started here (`rcluster stop {name}` stops it)"
        ));
    }
    if let Some(user) = entry.get("uid").or_else(|| entry.get("user")).map(scalar) {
        notes.push(format!(
            "app \"{name}\" ran as user {user} under pm2; rcluster runs apps as the daemon's user"
        ));
    }
    Some(app)
}

/// The app's env as declared: see the module doc.
fn declared_env(
    name: &str,
    entry: &Value,
    instance_var: &str,
    shell: &BTreeMap<String, String>,
    runs_python: bool,
) -> BTreeMap<String, String> {
    let Some(Value::Object(env)) = entry.get("env") else {
        return BTreeMap::new();
    };
    let internal: BTreeSet<&str> = PM2_ENV_KEYS.iter().copied().collect();
    env.iter()
        .filter(|(key, _)| {
            let key = key.as_str();
            key != name
                && key != instance_var
                && !internal.contains(key)
                // `pm2 serve`'s settings are the app's own (rcluster's serve reads them).
                && (key.starts_with("PM2_SERVE_")
                    || !PM2_ENV_PREFIXES.iter().any(|p| key.starts_with(p)))
        })
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| (key.clone(), scalar(value)))
        // pm2 sets it for Python apps; rcluster does the same by itself.
        .filter(|(key, value)| !(runs_python && key == "PYTHONUNBUFFERED" && value == "1"))
        .filter(|(key, value)| shell.get(key) != Some(value))
        .collect()
}

/// A log path the app declared, or `None` for pm2's default file in its own home. pm2 appends
/// `-<pm_id>` to each instance's file unless `merge_logs` is set; that suffix is taken off.
fn declared_log(path: &str, pm2_home: &Path, per_instance: bool) -> Option<String> {
    if path == "/dev/null" || path == "NULL" {
        return Some("/dev/null".into());
    }
    if Path::new(path).starts_with(pm2_home.join("logs")) {
        return None;
    }
    if per_instance {
        let p = Path::new(path);
        let stem = p.file_stem()?.to_str()?;
        if let Some((base, id)) = stem.rsplit_once('-') {
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                let file = match p.extension().and_then(|e| e.to_str()) {
                    Some(ext) => format!("{base}.{ext}"),
                    None => base.to_owned(),
                };
                return Some(p.with_file_name(file).to_string_lossy().into_owned());
            }
        }
    }
    Some(path.to_owned())
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A JSON value as env/argument text: strings as they are, numbers and booleans as written.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The apps as an ecosystem JSON file, keys in a readable order.
pub fn render(apps: &[App]) -> String {
    let mut out = String::from("{\n  \"apps\": [\n");
    for (i, app) in apps.iter().enumerate() {
        out.push_str("    {\n");
        for (j, (key, value)) in app.iter().enumerate() {
            let value = serde_json::to_string_pretty(value)
                .unwrap_or_else(|_| "null".into())
                .replace('\n', "\n      ");
            let comma = if j + 1 < app.len() { "," } else { "" };
            out.push_str(&format!("      \"{key}\": {value}{comma}\n"));
        }
        out.push_str(if i + 1 < apps.len() {
            "    },\n"
        } else {
            "    }\n"
        });
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<Value> {
        let text = include_str!("../../../tests/fixtures/ecosystem-it/pm2/dump.pm2");
        serde_json::from_str(text).expect("fixture is JSON")
    }

    fn shell() -> BTreeMap<String, String> {
        [
            ("HOME", "/home/alice"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("SHELL", "/bin/bash"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn key<'a>(app: &'a App, name: &str) -> Option<&'a Value> {
        app.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    #[test]
    fn groups_instances_and_keeps_declared_settings() {
        let out = convert(&fixture(), &shell(), Path::new("/home/alice/.pm2"));
        let names: Vec<&str> = out
            .apps
            .iter()
            .filter_map(|a| key(a, "name")?.as_str())
            .collect();
        assert_eq!(names, vec!["api", "worker", "sleeper"]);
        let api = &out.apps[0];
        assert_eq!(key(api, "instances"), Some(&Value::from(2)));
        assert_eq!(key(api, "exec_mode"), Some(&Value::from("cluster")));
        assert_eq!(key(api, "script"), Some(&Value::from("/srv/api/server.js")));
        assert_eq!(key(api, "interpreter"), None, "node is implied by .js");
        assert_eq!(
            key(api, "max_memory_restart"),
            Some(&Value::from(314572800))
        );
        assert_eq!(
            key(api, "env"),
            Some(&serde_json::json!({"NODE_ENV": "production", "PORT": "3000"})),
            "shell, pm2 and per-instance keys dropped"
        );
        assert_eq!(key(api, "out_file"), None, "pm2's default log file");

        let worker = &out.apps[1];
        assert_eq!(key(worker, "instances"), Some(&Value::from(2)));
        assert_eq!(key(worker, "exec_mode"), Some(&Value::from("fork")));
        assert_eq!(key(worker, "interpreter"), None, "python is implied by .py");
        assert_eq!(
            key(worker, "args"),
            Some(&serde_json::json!(["--queue", "mail"]))
        );
        assert_eq!(
            key(worker, "increment_var"),
            Some(&Value::from("WORKER_PORT"))
        );
        assert_eq!(
            key(worker, "env"),
            Some(&serde_json::json!({"QUEUE": "mail", "WORKER_PORT": "7000"})),
            "instance 0's value is the base"
        );
        assert_eq!(key(worker, "autorestart"), Some(&Value::Bool(false)));
        assert_eq!(key(worker, "kill_timeout"), Some(&Value::from(3000)));
        assert_eq!(
            key(worker, "out_file"),
            Some(&Value::from("/var/log/worker.log"))
        );
        assert_eq!(key(worker, "error_file"), Some(&Value::from("/dev/null")));

        let sleeper = &out.apps[2];
        assert_eq!(key(sleeper, "script"), Some(&Value::from("sleep 1000")));
        assert_eq!(key(sleeper, "args"), None);
        assert_eq!(key(sleeper, "interpreter"), None);
        assert_eq!(key(sleeper, "env"), None);
        assert_eq!(
            out.notes,
            vec!["app \"sleeper\" was stopped under pm2; it is started here (as `pm2 resurrect` does)"]
        );
    }

    #[test]
    fn explicit_interpreters_stay() {
        let entry = serde_json::json!({
            "name": "tool", "pm_exec_path": "/opt/tool", "exec_interpreter": "/usr/bin/node",
            "pm_cwd": "/opt", "exec_mode": "fork_mode", "env": {}
        });
        let out = convert(&[entry], &BTreeMap::new(), Path::new("/p"));
        assert_eq!(
            key(&out.apps[0], "interpreter"),
            Some(&Value::from("/usr/bin/node"))
        );
    }

    #[test]
    fn watch_settings_come_along() {
        let entry = serde_json::json!({
            "name": "dev", "pm_exec_path": "/opt/dev/app.js", "pm_cwd": "/opt/dev",
            "exec_mode": "fork_mode", "env": {}, "watch": ["src"],
            "ignore_watch": ["node_modules", "*.log"], "watch_delay": 500
        });
        let out = convert(&[entry], &BTreeMap::new(), Path::new("/p"));
        let app = &out.apps[0];
        assert_eq!(key(app, "watch"), Some(&serde_json::json!(["src"])));
        assert_eq!(
            key(app, "ignore_watch"),
            Some(&serde_json::json!(["node_modules", "*.log"]))
        );
        assert_eq!(key(app, "watch_delay"), Some(&Value::from(500)));
    }

    #[test]
    fn a_namespace_comes_along_unless_it_is_pm2s_default() {
        let entry = |name: &str, namespace: &str| {
            serde_json::json!({
                "name": name, "pm_exec_path": "/opt/a.js", "exec_mode": "fork_mode",
                "env": {}, "namespace": namespace
            })
        };
        let out = convert(
            &[entry("a", "api"), entry("b", "default")],
            &BTreeMap::new(),
            Path::new("/p"),
        );
        assert_eq!(key(&out.apps[0], "namespace"), Some(&Value::from("api")));
        assert_eq!(key(&out.apps[1], "namespace"), None);
    }

    #[test]
    fn pm2_serve_becomes_rclusters_serve() {
        let entry = serde_json::json!({
            "name": "static-page-server-8080",
            "pm_exec_path": "/usr/lib/node_modules/pm2/lib/API/Serve.js",
            "exec_interpreter": "node", "exec_mode": "fork_mode", "pm_cwd": "/srv/site",
            "env": {"PM2_SERVE_PATH": "/srv/site", "PM2_SERVE_PORT": 8080,
                    "PM2_SERVE_SPA": "true", "PM2_HOME": "/root/.pm2"}
        });
        let out = convert(&[entry], &BTreeMap::new(), Path::new("/root/.pm2"));
        let app = &out.apps[0];
        assert_eq!(key(app, "script"), Some(&Value::from("serve")));
        assert_eq!(key(app, "interpreter"), None);
        assert_eq!(
            key(app, "env"),
            Some(
                &serde_json::json!({"PM2_SERVE_PATH": "/srv/site", "PM2_SERVE_PORT": "8080",
                                     "PM2_SERVE_SPA": "true"})
            )
        );
    }

    #[test]
    fn rendered_file_is_json() {
        let out = convert(&fixture(), &shell(), Path::new("/home/alice/.pm2"));
        let text = render(&out.apps);
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed["apps"][0]["name"], "api");
        assert!(text.find("\"name\"") < text.find("\"script\""), "{text}");
    }
}
