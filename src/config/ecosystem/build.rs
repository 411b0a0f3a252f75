//! One app of an ecosystem file -> `AppSpec`: keys and aliases folded, each value checked,
//! paths resolved, the command chosen (`interpreter.rs`), `env_<profile>` merged, exec mode and
//! `port`/`listen` turned into `cluster`. Problems and notes go to the load's `Ctx`.

use std::collections::BTreeMap;
use std::path::Path;

use super::cluster::{cluster, exec_mode, instances, readiness};
use super::keys::{self, Key};
use super::settings::{logs, not_yet, restart_policy, watch};
use super::tree::{Node, Pos, Value};
use super::values::{App, Field};
use super::{first_at, resolve, AppExtras, Ctx, LoadOptions};
use crate::config::check::{check_label, Label};
use crate::config::interpreter::{
    command_for, command_for_file, default_interpreter, is_command_line, with_source_maps,
};
use crate::config::suggest::unknown_key_message;
use crate::protocol::model::{AppSpec, CommandSpec};

/// An app read from the file, with what the checks across apps need.
pub struct Draft {
    pub spec: AppSpec,
    pub extras: AppExtras,
    /// The name before `append_env_to_name`.
    pub base_name: String,
    pub name_pos: Option<Pos>,
    /// The app's first key.
    pub pos: Option<Pos>,
    pub depends: Vec<(String, Option<Pos>)>,
    /// Whether it has `env_<selected profile>`.
    pub has_profile: bool,
}

/// Reads app number `index` (0-based). `None` when the node is not a mapping at all.
pub fn app(
    ctx: &mut Ctx,
    node: &Node,
    index: usize,
    opts: &LoadOptions,
    dir: &Path,
) -> Option<Draft> {
    let Value::Map(entries) = &node.value else {
        let found = node.describe();
        ctx.error(
            node.pos,
            format!(
                "app #{}: expected a mapping with `script`, found {found}",
                index + 1
            ),
        );
        return None;
    };
    let problems_before = ctx.problem_count();
    let mut app = App {
        ctx,
        label: label(entries, index),
        fields: BTreeMap::new(),
    };
    let profiles = collect(&mut app, entries);

    let cwd = match app.get(Key::Cwd) {
        Some(f) => app.string_of(&f).map(|c| resolve(dir, &c)).filter(|p| {
            let exists = p.is_dir();
            if !exists {
                app.bad(&f, format!("no such directory: {}", p.display()));
            }
            exists
        }),
        None => Some(dir.to_path_buf()),
    };
    let cwd = cwd.unwrap_or_else(|| dir.to_path_buf());
    let explicit_name = app.string(Key::Name);
    if let (Some(name), Some(f)) = (&explicit_name, app.get(Key::Name)) {
        if let Err(e) = check_label(Label::AppName, name) {
            app.bad(&f, e);
        }
    }
    let interpreter = app.string(Key::Interpreter);
    let args = app.words(Key::Args).unwrap_or_default();
    let interpreter_args = app.words(Key::InterpreterArgs).unwrap_or_default();
    let script = match app.get(Key::Script) {
        Some(f) => app.string_of(&f).map(|s| (s, f)),
        None => {
            app.error(node.pos, "missing `script`");
            None
        }
    };
    // pm2's pm_exec_path: targets may name the app by its file (`stop app.js`).
    let script_file = script
        .as_ref()
        .map(|(s, _)| resolve(&cwd, s.trim()))
        .filter(|p| p.is_file());
    let command = script.and_then(|(s, f)| {
        command(
            &mut app,
            &f,
            &s,
            &cwd,
            interpreter.as_deref(),
            args,
            interpreter_args,
        )
    });

    let mut spec = AppSpec {
        cwd: cwd.clone(),
        script: script_file,
        ..AppSpec::default()
    };
    let mut base_name = explicit_name.unwrap_or_default();
    if let Some((command, default_name)) = command {
        spec.command = command;
        if base_name.is_empty() {
            if let Err(e) = check_label(Label::AppName, &default_name) {
                app.error(node.pos, format!("{e}; set `name`"));
            }
            base_name = default_name;
        }
    }
    spec.name = match (app.bool(Key::AppendEnvToName), &opts.profile) {
        (Some(true), Some(profile)) => format!("{base_name}-{profile}"),
        _ => base_name.clone(),
    };

    // Environment: `env`, then the selected `env_<profile>` over it.
    let mut env = app
        .get(Key::Env)
        .and_then(|f| app.env_of(&f))
        .unwrap_or_default();
    let mut has_profile = false;
    for (profile, field) in &profiles {
        if let Some(vars) = app.env_of(field) {
            if opts.profile.as_deref() == Some(profile.as_str()) {
                has_profile = true;
                env.extend(vars);
            }
        }
    }

    restart_policy(&mut app, &mut spec);
    logs(&mut app, &mut spec, &cwd);
    watch(&mut app, &mut spec, &cwd);
    if let Some(var) = var_name(&mut app, Key::InstanceVar) {
        spec.instance_var = var;
    }
    spec.increment_var = var_name(&mut app, Key::IncrementVar);

    let mut extras = AppExtras {
        exec_mode: exec_mode(&mut app),
        ..AppExtras::default()
    };
    spec.instances = app
        .get(Key::Instances)
        .and_then(|f| instances(&mut app, &f))
        .unwrap_or(1);
    cluster(&mut app, &mut spec, &mut env, extras.exec_mode, &cwd);
    if let (Some(var), Some(f)) = (&spec.increment_var, app.get(Key::IncrementVar)) {
        if let Some(value) = env.get(var).filter(|v| v.trim().parse::<i64>().is_err()) {
            app.bad(
                &f,
                format!("`{var}` is {value:?} in `env`, not a number to count up from"),
            );
        }
    }
    spec.env = env;
    spec.readiness = app
        .get(Key::Readiness)
        .and_then(|f| readiness(&mut app, &f, keys::READINESS_KEYS));
    spec.filter_env = match app.get(Key::FilterEnv).map(|f| &f.value.value) {
        // pm2: `true` keeps none of the starting shell's variables ("" is in every name).
        Some(Value::Bool(true)) => vec![String::new()],
        Some(Value::Bool(false)) | None => Vec::new(),
        Some(_) => app
            .names(Key::FilterEnv)
            .map(|names| names.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default(),
    };
    let depends = app.names(Key::DependsOn).unwrap_or_default();
    spec.depends_on = depends.iter().map(|(n, _)| n.clone()).collect();
    not_yet(&mut app, &mut extras);
    // The daemon's own check, so that the file is refused here, with a position, rather than
    // there; only for an app with no problem found yet (it would report that one again).
    if app.ctx.problem_count() == problems_before {
        if let Err(e) = crate::config::check::check_spec(&spec) {
            app.ctx.error(node.pos, e);
        }
    }
    Some(Draft {
        extras,
        base_name,
        name_pos: app.get(Key::Name).and_then(|f| f.pos()),
        pos: node.pos,
        depends,
        has_profile,
        spec,
    })
}

/// `app "api"` from `name` or the script, else `app #N`.
fn label(entries: &[(Node, Node)], index: usize) -> String {
    let value_of = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .and_then(|(_, v)| v.as_str())
    };
    if let Some(name) = value_of("name").filter(|n| !n.trim().is_empty()) {
        return format!("app {name:?}");
    }
    let script = value_of("script").or_else(|| value_of("exec"));
    match script.map(|s| default_name(s, is_command_line(s, None))) {
        Some(name) if !name.is_empty() => format!("app {name:?}"),
        _ => format!("app #{}", index + 1),
    }
}

/// Folds keys and aliases into `app.fields`; returns the `env_<profile>` fields.
fn collect<'n>(app: &mut App<'_, 'n>, entries: &'n [(Node, Node)]) -> Vec<(String, Field<'n>)> {
    let known = keys::all_names();
    let mut profiles: Vec<(String, Field<'n>)> = Vec::new();
    for (key, value) in entries {
        let Some(written) = key.as_str() else {
            app.error(
                key.pos,
                format!("keys must be strings, found {}", key.describe()),
            );
            continue;
        };
        let field = Field {
            written,
            parent: None,
            key_pos: key.pos,
            value,
        };
        if let Some(profile) = written.strip_prefix("env_") {
            if let Some((_, first)) = profiles.iter().find(|(p, _)| p == profile) {
                let first = first_at(first.key_pos);
                app.error(key.pos, format!("`{written}` is given twice{first}"));
            } else if profile.is_empty() {
                app.error(
                    key.pos,
                    "`env_` needs a profile name, like `env_production`",
                );
            } else {
                profiles.push((profile.to_owned(), field));
            }
            continue;
        }
        let Some(canonical) = keys::lookup(written) else {
            app.warn(key.pos, unknown_key_message(written, &known));
            continue;
        };
        if let Some(first) = app.fields.get(&canonical) {
            let message = if first.written == written {
                format!("`{written}` is given twice{}", first_at(first.key_pos))
            } else {
                format!(
                    "`{written}` and `{}` are the same key; keep one",
                    first.written
                )
            };
            app.error(key.pos, message);
            continue;
        }
        app.fields.insert(canonical, field);
    }
    profiles
}

/// The command and the name it suggests (the script's stem, or the program's name). A script
/// that names an existing file is that file, even with spaces in its path.
fn command(
    app: &mut App<'_, '_>,
    f: &Field<'_>,
    script: &str,
    cwd: &Path,
    interpreter: Option<&str>,
    args: Vec<String>,
    interpreter_args: Vec<String>,
) -> Option<(CommandSpec, String)> {
    let path = resolve(cwd, script.trim());
    let is_file = path.is_file();
    if script.trim() == "serve" && !is_file {
        // pm2's built-in static file server (configured by PM2_SERVE_* in env): rcluster's own.
        let exe = match std::env::current_exe() {
            Ok(exe) => exe.to_string_lossy().into_owned(),
            Err(e) => {
                app.bad(
                    f,
                    format!("cannot find the rcluster binary to serve with: {e}"),
                );
                return None;
            }
        };
        let mut serve_args = vec![crate::serve::SERVE_ARG.to_owned()];
        serve_args.extend(args);
        let command = CommandSpec::Exec {
            program: exe,
            args: serve_args,
        };
        return Some((command, "serve".to_owned()));
    }
    if !is_file && is_command_line(script, interpreter) {
        let command = command_for(script, args, interpreter, interpreter_args, Vec::new());
        return Some((command, default_name(script, true)));
    }
    let runs_itself = interpreter == Some("none")
        || (interpreter.is_none() && default_interpreter(script).is_none());
    let program = if is_file {
        let Some(text) = path.to_str() else {
            app.bad(f, format!("{} is not valid UTF-8", path.display()));
            return None;
        };
        text.to_owned()
    } else if runs_itself && !script.contains('/') {
        // A program found on PATH at start (`script: gunicorn`), as pm2's `which` fallback.
        script.trim().to_owned()
    } else {
        app.bad(f, format!("no such file: {}", path.display()));
        return None;
    };
    let command = command_for_file(&program, args, interpreter, interpreter_args, Vec::new());
    let source_maps = match (
        app.bool(Key::SourceMapSupport),
        app.bool(Key::DisableSourceMapSupport),
    ) {
        (_, Some(true)) => Some(false),
        (Some(true), _) => Some(true),
        _ => None,
    };
    let command = with_source_maps(command, Path::new(&program), source_maps);
    Some((command, default_name(script, false)))
}

/// pm2's default name: the script's file name without extension (`./api/server.js` -> `server`);
/// for a command line, its program's (`python3 -m http.server` -> `python3`).
fn default_name(script: &str, command_line: bool) -> String {
    let script = script.trim();
    let stem = if command_line {
        let first = script.split_whitespace().next().unwrap_or_default();
        Path::new(first).file_name()
    } else {
        Path::new(script).file_stem()
    };
    stem.map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An environment variable's name (`instance_var`, `increment_var`).
fn var_name(app: &mut App<'_, '_>, key: Key) -> Option<String> {
    let f = app.get(key)?;
    let name = app.string_of(&f)?;
    match crate::config::check::check_var_name(&name) {
        Ok(()) => Some(name),
        Err(e) => {
            app.bad(&f, e);
            None
        }
    }
}
