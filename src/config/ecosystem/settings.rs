//! Per-app settings that are plain values: restart policy, logs, and the keys read now whose
//! effect comes later (`restart_after_errored`) or never (pm2-only keys, noted).

use std::path::{Path, PathBuf};

use super::keys::{self, Key};
use super::tree::{Node, Value};
use super::values::{whole, App, Field};
use super::{resolve, AppExtras};
use crate::config::check::{check_label, Label};
use crate::config::units;
use crate::protocol::model::AppSpec;

/// pm2's restart keys (defaults from `AppSpec::default`, which are pm2's), `kill_signal`,
/// `max_memory_restart`, `cron_restart`, `stop_exit_codes`.
pub fn restart_policy(app: &mut App<'_, '_>, spec: &mut AppSpec) {
    let d = AppSpec::default();
    spec.autorestart = app.bool(Key::Autorestart).unwrap_or(d.autorestart);
    spec.autostart = app.bool(Key::Autostart).unwrap_or(d.autostart);
    if let Some(f) = app.get(Key::Namespace) {
        spec.namespace = app
            .string_of(&f)
            .filter(|ns| ns != crate::protocol::model::DEFAULT_NAMESPACE)
            .filter(|ns| match check_label(Label::Namespace, ns) {
                Ok(()) => true,
                Err(e) => {
                    app.bad(&f, e);
                    false
                }
            });
    }
    spec.max_restarts = app.count(Key::MaxRestarts).unwrap_or(d.max_restarts);
    spec.min_uptime_ms = app.duration(Key::MinUptime).unwrap_or(d.min_uptime_ms);
    spec.restart_delay_ms = app
        .duration(Key::RestartDelay)
        .unwrap_or(d.restart_delay_ms);
    // pm2 documents 0 as "off".
    spec.exp_backoff_restart_delay_ms = app
        .duration(Key::ExpBackoffRestartDelay)
        .filter(|ms| *ms > 0);
    spec.kill_timeout_ms = app.duration(Key::KillTimeout).unwrap_or(d.kill_timeout_ms);
    spec.listen_timeout_ms = app
        .duration(Key::ListenTimeout)
        .unwrap_or(d.listen_timeout_ms);
    spec.wait_ready = app.bool(Key::WaitReady).unwrap_or(d.wait_ready);
    spec.max_memory_restart = app.size(Key::MaxMemoryRestart);
    if let Some(f) = app.get(Key::KillSignal) {
        let parsed = match &f.value.value {
            Value::Str(s) => units::parse_signal(s),
            Value::Int(i) => units::parse_signal(&i.to_string()),
            _ => Err(format!(
                "expected a signal name or number, found {}",
                f.value.describe()
            )),
        };
        match parsed {
            Ok(signal) => spec.kill_signal = signal,
            Err(e) => app.bad(&f, e),
        }
    }
    if let Some(f) = app.get(Key::CronRestart) {
        spec.cron_restart = app
            .string_of(&f)
            .filter(|c| !crate::config::cron::is_off(c))
            .filter(|c| match crate::config::cron::CronPattern::parse(c) {
                Ok(_) => true,
                Err(e) => {
                    app.bad(&f, e);
                    false
                }
            });
    }
    if let Some(f) = app.get(Key::StopExitCodes) {
        let items = match &f.value.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![f.value],
        };
        for item in items {
            match whole(item).map(i32::try_from) {
                Some(Ok(code)) => spec.stop_exit_codes.push(code),
                _ => app.wrong_type(
                    &Field { value: item, ..f },
                    "an exit code or a list of exit codes",
                ),
            }
        }
    }
}

/// Log files, `merge_logs`, timestamps, `log_type`, `disable_logs`, rotation.
pub fn logs(app: &mut App<'_, '_>, spec: &mut AppSpec, cwd: &Path) {
    spec.logs.out_file = log_path(app, Key::OutFile, cwd);
    spec.logs.error_file = log_path(app, Key::ErrorFile, cwd);
    spec.logs.log_file = log_path(app, Key::LogFile, cwd);
    if app.bool(Key::DisableLogs) == Some(true) {
        spec.logs.out_file = Some(PathBuf::from("/dev/null"));
        spec.logs.error_file = Some(PathBuf::from("/dev/null"));
        spec.logs.log_file = None;
    }
    // pm2 (Common.js prepareAppConf, God.js): an app with `instances`, or in cluster mode,
    // writes one file per instance unless `merge_logs` says otherwise.
    let cluster_mode = app
        .get(Key::ExecMode)
        .is_some_and(|f| matches!(&f.value.value, Value::Str(s) if s.starts_with("cluster")));
    let per_instance = app.get(Key::Instances).is_some() || cluster_mode;
    spec.logs.merge_logs = app.bool(Key::MergeLogs).unwrap_or(!per_instance);
    spec.logs.time = app.bool(Key::Time).unwrap_or(false);
    spec.logs.date_format = app.string(Key::LogDateFormat);
    if let Some(f) = app.get(Key::LogType) {
        match app.string_of(&f).as_deref() {
            Some("json") => spec.logs.json = true,
            Some(other) => app.bad(
                &f,
                format!("`{other}` is not a log type (the one type is `json`)"),
            ),
            None => {}
        }
    }
    spec.logs.max_size = app.size(Key::LogMaxSize);
    spec.logs.retain =
        app.count(Key::LogRetain)
            .and_then(|n| match crate::config::check::check_retain(n) {
                Ok(n) => Some(n),
                Err(e) => {
                    if let Some(f) = app.get(Key::LogRetain) {
                        app.bad(&f, e);
                    }
                    None
                }
            });
    spec.logs.compress = app.bool(Key::LogCompress).unwrap_or(false);
    spec.logs.rotate_daily = app.bool(Key::LogRotateDaily).unwrap_or(false);
}

/// pm2's `watch` (true: the cwd; a path or a list of paths, relative to the cwd), `ignore_watch`
/// and `watch_delay`.
pub fn watch(app: &mut App<'_, '_>, spec: &mut AppSpec, cwd: &Path) {
    let Some(f) = app.get(Key::Watch) else {
        return;
    };
    let paths: Option<Vec<PathBuf>> = match &f.value.value {
        Value::Bool(false) => return,
        Value::Bool(true) => Some(Vec::new()),
        Value::Str(s) if s.trim().is_empty() => Some(Vec::new()),
        Value::Str(s) => Some(vec![resolve(cwd, s)]),
        Value::Seq(items) => items
            .iter()
            .map(|i| i.as_str().map(|s| resolve(cwd, s)))
            .collect(),
        _ => None,
    };
    let Some(paths) = paths else {
        app.wrong_type(&f, "true, false, a path or a list of paths");
        return;
    };
    let delay_ms = app.duration(Key::WatchDelay).unwrap_or(0);
    let ignore = app.get(Key::IgnoreWatch).and_then(|f| {
        let items: Vec<&Node> = match &f.value.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![f.value],
        };
        let (mut globs, mut regexes) = (Vec::new(), Vec::new());
        for item in items {
            match ignore_pattern(item) {
                Some(Ok(Pattern::Glob(glob))) => globs.push(glob),
                Some(Ok(Pattern::Regex(literal))) => regexes.push(literal),
                Some(Err(message)) => {
                    app.bad(&f, message);
                    return None;
                }
                None => {
                    app.wrong_type(&f, "a pattern, a RegExp, or a list of them");
                    return None;
                }
            }
        }
        Some((globs, regexes))
    });
    spec.watch = Some(crate::config::watch::watch_spec(
        cwd, paths, ignore, delay_ms,
    ));
}

enum Pattern {
    Glob(String),
    /// A JavaScript RegExp literal, checked.
    Regex(String),
}

/// One `ignore_watch` entry: a string, or `{regexp: "/source/flags"}` (how a RegExp of an
/// ecosystem.config.js arrives). None: neither.
fn ignore_pattern(item: &Node) -> Option<Result<Pattern, String>> {
    match &item.value {
        Value::Str(s) => Some(Ok(Pattern::Glob(s.clone()))),
        Value::Map(entries) => match entries.as_slice() {
            [(key, value)] if key.as_str() == Some("regexp") => {
                let literal = value.as_str()?;
                Some(
                    crate::config::watch::js_regex(literal)
                        .map(|_| Pattern::Regex(literal.to_owned())),
                )
            }
            _ => None,
        },
        _ => None,
    }
}

/// A log file: `NULL` and `/dev/null` discard (pm2); relative paths are under the app's cwd.
fn log_path(app: &mut App<'_, '_>, key: Key, cwd: &Path) -> Option<PathBuf> {
    let f = app.get(key)?;
    match &f.value.value {
        Value::Bool(false) if key == Key::LogFile => None,
        Value::Bool(true) if key == Key::LogFile => {
            app.bad(
                &f,
                "give a path (pm2's `true` means a file in pm2's own folder)",
            );
            None
        }
        // YAML reads an unquoted `NULL` as null: that user meant pm2's "NULL" too.
        Value::Null if key != Key::LogFile => Some(PathBuf::from("/dev/null")),
        Value::Str(s) if s == "NULL" || s == "/dev/null" => Some(PathBuf::from("/dev/null")),
        _ => app.string_of(&f).map(|s| resolve(cwd, &s)),
    }
}

/// Keys read and checked whose effect is not there yet (noted, kept in `extras`), pm2 keys with
/// no effect here (noted), and `uid`/`gid` (refused).
pub fn not_yet(app: &mut App<'_, '_>, extras: &mut AppExtras) {
    extras.restart_after_errored_ms = app.duration(Key::RestartAfterErrored);
    if let (Some(_), Some(f)) = (
        extras.restart_after_errored_ms,
        app.get(Key::RestartAfterErrored),
    ) {
        app.note(
            f.key_pos,
            "`restart_after_errored` is not supported yet; an errored app stays errored",
        );
    }
    if let Some(f) = app.get(Key::WatchOptions) {
        if matches!(f.value.value, Value::Map(_)) {
            app.note(
                f.key_pos,
                "`watch_options` (chokidar's options) has no effect; `ignore_watch` and `watch_delay` do",
            );
        } else {
            app.wrong_type(&f, "a mapping");
        }
    }
    for key in [Key::User, Key::Group] {
        if let Some(f) = app.get(key) {
            let message = "running an app as another user is not supported yet; remove it and run rcluster as that user";
            app.bad(&f, message);
        }
    }
    let ignored: Vec<Field<'_>> = app
        .fields
        .iter()
        .filter(|(k, _)| matches!(k, Key::NoEffect(_)))
        .map(|(_, f)| *f)
        .collect();
    for f in ignored {
        if let Some(Key::NoEffect(canonical)) = keys::lookup(f.written) {
            let reason = keys::no_effect_reason(canonical);
            app.note(
                f.key_pos,
                format!("`{}` has no effect in rcluster: {reason}", f.written),
            );
        }
    }
}
