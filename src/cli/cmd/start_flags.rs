//! `start`'s flags made into an `AppSpec` (same rules as ecosystem files: pm2's interpreter
//! choice, units, instance counts): `spec_from_args` for a script, `apply_flags` for the apps
//! of an ecosystem file, where a flag given on the command line overrides the file's value
//! (`start eco.json -i 2 --only api`), as pm2 means its flags to. Called by `start.rs` and
//! `ecosystem.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::cli::args::StartArgs;
use crate::config::interpreter::{command_for, command_for_file, split_words, with_source_maps};
use crate::config::units::{parse_duration_ms, parse_signal, resolve_instances, InstancesArg};
use crate::config::{parse_listen, parse_strategy};
use crate::protocol::model::{AppSpec, ListenAddr};

/// The app a script and flags define. `cwd_now` is the directory `start` runs in.
pub fn spec_from_args(args: StartArgs, cwd_now: &Path) -> Result<AppSpec> {
    let cwd = match &args.cwd {
        Some(dir) => absolute(cwd_now, dir),
        None => cwd_now.to_path_buf(),
    };
    let interpreter_args = match &args.interpreter_args {
        Some(text) => split_words(text).map_err(|e| anyhow!("--interpreter-args `{text}`: {e}"))?,
        None => Vec::new(),
    };
    // A script that names a file (relative to the app's cwd) is that file, as under pm2 and in
    // ecosystem files: `start server` runs ./server before any `server` on PATH.
    let file = script_file(&cwd, &args.script);
    // pm2's source-map support for Node apps (see `with_source_maps`).
    let source_maps = match (
        args.pm2_only.source_map_support,
        args.pm2_only.disable_source_map_support,
    ) {
        (_, true) => Some(false),
        (true, false) => Some(true),
        (false, false) => None,
    };
    let command = match file.to_str().filter(|_| file.is_file()) {
        Some(path) => with_source_maps(
            command_for_file(
                path,
                args.args.clone(),
                args.interpreter.as_deref(),
                interpreter_args,
                Vec::new(),
            ),
            &file,
            source_maps,
        ),
        None => command_for(
            &args.script,
            args.args.clone(),
            args.interpreter.as_deref(),
            interpreter_args,
            Vec::new(),
        ),
    };
    let mut spec = AppSpec {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| default_name(&args.script)),
        command,
        script: file.is_file().then_some(file),
        cwd: cwd.clone(),
        ..AppSpec::default()
    };
    apply_flags(&mut spec, &args, &cwd)?;
    Ok(spec)
}

/// `script` as a file path: absolute against `cwd`, `.` and `..` resolved as node's
/// `path.resolve` does (what pm2 compares with `pm_exec_path`).
pub fn script_file(cwd: &Path, script: &str) -> PathBuf {
    crate::config::ecosystem::normalise(&absolute(cwd, Path::new(script.trim())))
}

/// The flags that change what runs, which an ecosystem file defines: refused with a file.
pub fn command_flags(args: &StartArgs) -> Vec<&'static str> {
    [
        (args.cwd.is_some(), "--cwd"),
        (args.interpreter.is_some(), "--interpreter"),
        (args.interpreter_args.is_some(), "--interpreter-args"),
        (!args.args.is_empty(), "arguments after --"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect()
}

/// Every flag given in `args` (and only those) set on `spec`; paths relative to `base`.
pub fn apply_flags(spec: &mut AppSpec, args: &StartArgs, base: &Path) -> Result<()> {
    if let Some(name) = &args.name {
        spec.name = name.clone();
    }
    if let Some(text) = &args.instances {
        spec.instances = resolve_instances(InstancesArg::Text(text)).map_err(anyhow::Error::msg)?;
    }
    for pair in &args.env_vars {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--env-var `{pair}`: expected KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--env-var `{pair}`: the name is empty");
        }
        spec.env.insert(key.to_owned(), value.to_owned());
    }
    restart_policy(spec, args)?;
    if let Some(namespace) = &args.namespace {
        spec.namespace =
            Some(namespace.clone()).filter(|ns| ns != crate::protocol::model::DEFAULT_NAMESPACE);
    }
    if args.wait_ready {
        spec.wait_ready = true;
    }
    if let Some(var) = &args.instance_var {
        spec.instance_var = var.clone();
    }
    // A bare --filter-env filters nothing under pm2 7 (its option parser drops the value).
    let filters: Vec<String> = args
        .filter_env
        .iter()
        .filter(|name| !name.is_empty())
        .cloned()
        .collect();
    if !filters.is_empty() {
        spec.filter_env = filters;
    }
    if let Some(text) = &args.listen_timeout {
        spec.listen_timeout_ms =
            parse_duration_ms(text).map_err(|e| anyhow!("--listen-timeout: {e}"))?;
    }
    watch(spec, args)?;
    cluster(spec, args, base)?;
    logs(spec, args, base)
}

fn restart_policy(spec: &mut AppSpec, args: &StartArgs) -> Result<()> {
    let duration = |flag: &str, value: &Option<String>| -> Result<Option<u64>> {
        value
            .as_deref()
            .map(|text| parse_duration_ms(text).map_err(|e| anyhow!("--{flag}: {e}")))
            .transpose()
    };
    if args.no_autorestart {
        spec.autorestart = false;
    }
    if args.no_autostart {
        spec.autostart = false;
    }
    if let Some(n) = args.max_restarts {
        spec.max_restarts = n;
    }
    if let Some(ms) = duration("min-uptime", &args.min_uptime)? {
        spec.min_uptime_ms = ms;
    }
    if let Some(ms) = duration("restart-delay", &args.restart_delay)? {
        spec.restart_delay_ms = ms;
    }
    if let Some(ms) = duration("exp-backoff-restart-delay", &args.exp_backoff_restart_delay)? {
        spec.exp_backoff_restart_delay_ms = Some(ms);
    }
    if !args.stop_exit_codes.is_empty() {
        spec.stop_exit_codes = args.stop_exit_codes.clone();
    }
    if let Some(ms) = duration("kill-timeout", &args.kill_timeout)? {
        spec.kill_timeout_ms = ms;
    }
    if let Some(signal) = &args.kill_signal {
        spec.kill_signal = parse_signal(signal).map_err(|e| anyhow!("--kill-signal: {e}"))?;
    }
    if let Some(size) = &args.max_memory_restart {
        spec.max_memory_restart = Some(
            crate::config::units::parse_size(size)
                .map_err(|e| anyhow!("--max-memory-restart: {e}"))?,
        );
    }
    if let Some(pattern) = &args.cron_restart {
        spec.cron_restart = if crate::config::cron::is_off(pattern) {
            None
        } else {
            crate::config::cron::CronPattern::parse(pattern)
                .map_err(|e| anyhow!("--cron-restart: {e}"))?;
            Some(pattern.clone())
        };
    }
    Ok(())
}

fn watch(spec: &mut AppSpec, args: &StartArgs) -> Result<()> {
    let Some(paths) = &args.watch else {
        if !args.ignore_watch.is_empty() || args.watch_delay.is_some() {
            bail!("--ignore-watch and --watch-delay go with --watch");
        }
        return Ok(());
    };
    let paths = paths
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| spec.cwd.join(p))
        .collect();
    let ignore = (!args.ignore_watch.is_empty()).then(|| {
        let globs = args
            .ignore_watch
            .iter()
            .flat_map(|p| p.split_whitespace())
            .map(str::to_owned)
            .collect();
        (globs, Vec::new())
    });
    let delay_ms = match &args.watch_delay {
        Some(text) => parse_duration_ms(text).map_err(|e| anyhow!("--watch-delay: {e}"))?,
        None => 0,
    };
    let mut watch = crate::config::watch::watch_spec(&spec.cwd, paths, ignore, delay_ms);
    watch.extensions = args
        .ext
        .iter()
        .flat_map(|list| list.split([',', ' ']))
        .map(|e| e.trim().trim_start_matches("*.").trim_start_matches('.'))
        .filter(|e| !e.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    spec.watch = Some(watch);
    Ok(())
}

/// Listen addresses, balance and exec mode. pm2's cluster mode comes with `-i N` (N > 1) unless
/// `--exec-mode fork` says otherwise; an app with `increment_var` (one port per instance)
/// stays in fork mode.
fn cluster(spec: &mut AppSpec, args: &StartArgs, base: &Path) -> Result<()> {
    let declared = !args.ports.is_empty() || !args.listen.is_empty();
    if declared {
        spec.cluster.listen.clear();
    }
    for port in &args.ports {
        spec.cluster
            .listen
            .push(ListenAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], *port))));
    }
    for text in &args.listen {
        spec.cluster
            .listen
            .push(parse_listen(text, base).map_err(|e| anyhow!("--listen: {e}"))?);
    }
    if args.instances.is_some() || args.exec_mode.is_some() || declared {
        let cluster_mode = match args.exec_mode.as_deref() {
            None => spec.cluster.discover || (spec.instances > 1 && spec.increment_var.is_none()),
            Some("cluster" | "cluster_mode") => true,
            Some("fork" | "fork_mode") => false,
            Some(other) => {
                bail!("--exec-mode: `{other}` is not an exec mode (use fork or cluster)")
            }
        };
        if !cluster_mode && !spec.cluster.listen.is_empty() && args.exec_mode.is_some() {
            bail!("--port/--listen share sockets between instances, which needs cluster mode, not --exec-mode fork");
        }
        // pm2's cluster mode with no declared port: share what the program binds.
        spec.cluster.discover = cluster_mode && spec.cluster.listen.is_empty();
    }
    if !args.private_ports.is_empty() {
        spec.cluster.private_ports = args.private_ports.clone();
    }
    if let Some(name) = &args.balance {
        spec.cluster.balance = parse_strategy(name).map_err(|e| anyhow!("--balance: {e}"))?;
    }
    Ok(())
}

fn logs(spec: &mut AppSpec, args: &StartArgs, base: &Path) -> Result<()> {
    let logs = &mut spec.logs;
    if args.time {
        logs.time = true;
    }
    // pm2 (Common.js, God.js): with an instance count or in cluster mode, one file per
    // instance unless --merge-logs.
    let per_instance = args.instances.is_some()
        || args
            .exec_mode
            .as_deref()
            .is_some_and(|m| m.starts_with("cluster"));
    if args.merge_logs {
        logs.merge_logs = true;
    } else if args.no_merge_logs || per_instance {
        logs.merge_logs = false;
    }
    if let Some(path) = &args.out_file {
        logs.out_file = Some(absolute(base, path));
    }
    if let Some(path) = &args.error_file {
        logs.error_file = Some(absolute(base, path));
    }
    if let Some(path) = &args.log_file {
        logs.log_file = Some(absolute(base, path));
    }
    if args.disable_logs {
        logs.out_file = Some(PathBuf::from("/dev/null"));
        logs.error_file = Some(PathBuf::from("/dev/null"));
    }
    if let Some(format) = &args.log_date_format {
        logs.date_format = Some(format.clone());
    }
    if let Some(kind) = &args.log_type {
        logs.json = kind == "json";
    }
    if let Some(text) = &args.log_max_size {
        let size =
            crate::config::units::parse_size(text).map_err(|e| anyhow!("--log-max-size: {e}"))?;
        if size == 0 {
            bail!("--log-max-size: must be more than 0");
        }
        logs.max_size = Some(size);
    }
    if args.log_retain.is_some() {
        logs.retain = args.log_retain;
    }
    if args.log_compress {
        logs.compress = true;
    }
    if args.log_rotate_daily {
        logs.rotate_daily = true;
    }
    Ok(())
}

pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// pm2's default name: the script's file name without extension (`app.js` → `app`,
/// `"python3 -m http.server"` → `python3`).
pub fn default_name(script: &str) -> String {
    let first = script.split_whitespace().next().unwrap_or(script);
    Path::new(first)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "app".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_like_pm2() {
        assert_eq!(default_name("app.js"), "app");
        assert_eq!(default_name("./worker.sh"), "worker");
        assert_eq!(default_name("python3 -m http.server 8000"), "python3");
    }
}
