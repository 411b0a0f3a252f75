//! `rcluster start`: turn the command line into a validated `AppSpec` (same rules as ecosystem
//! files: pm2's interpreter choice, units, instance counts) and ask the daemon to run it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::args::{Cli, Command, LogsArgs, StartArgs};
use crate::cli::client::Client;
use crate::cli::cmd::control::{expect_instances, selected};
use crate::cli::render;
use crate::config::interpreter::{command_for, command_for_file, split_words};
use crate::config::units::{parse_duration_ms, parse_signal, resolve_instances, InstancesArg};
use crate::paths::Home;
use std::net::SocketAddr;

use crate::config::{parse_listen, parse_strategy};
use crate::protocol::model::{AppSpec, InstanceState, ListenAddr};
use crate::protocol::{IfRunning, Request, Target};

pub fn run(home: &Home, args: StartArgs) -> Result<i32> {
    for (flag, key) in args.pm2_only.used() {
        eprintln!(
            "[rcluster] --{flag} has no effect in rcluster: {}",
            crate::config::ecosystem::no_effect_reason(key)
        );
    }
    if args.uid.is_some() || args.gid.is_some() {
        bail!("--uid/--gid: running an app as another user is not supported yet; run rcluster as that user");
    }
    if super::ecosystem::is_ecosystem_file(&args.script) {
        return super::ecosystem::start_from_args(home, &args);
    }
    // `pm2 start app.js --env production` runs (pm2 ignores the flag for a script): say so.
    if let Some(profile) = &args.file.profile {
        eprintln!(
            "[rcluster] --env {profile} has no effect on a script: it picks an ecosystem file's env_{profile} (set variables with --env-var KEY=VALUE)"
        );
    }
    super::ecosystem::FileOptions::default_from(&args.file.only, &None)
        .check_used(std::iter::once(&args.script))?;
    // Invalid flags fail before a daemon is started; a bare target may name a known app.
    let mut client = None;
    if bare(&args) {
        let mut known = Client::connect(home)?;
        if let Some(code) = start_existing(home, &mut known, &args)? {
            return Ok(code);
        }
        client = Some(known);
    }
    let cwd_now = std::env::current_dir().context("cannot read the current directory")?;
    let json = args.json;
    let attach = args.attach;
    let spec = checked_spec(args, &cwd_now)?;
    let name = spec.name.clone();
    let mut client = match client {
        Some(client) => client,
        None => Client::connect(home)?,
    };
    let started = expect_instances(client.call(&Request::Start {
        apps: vec![spec],
        base_env: std::env::vars().collect(),
        if_running: IfRunning::Fail,
    })?)?;
    if json {
        println!("{}", serde_json::to_string(&started)?);
    } else {
        println!("{}", render::instances_table(&started));
    }
    let errored: Vec<_> = started
        .iter()
        .filter(|i| i.status == InstanceState::Errored)
        .collect();
    for inst in &errored {
        eprintln!(
            "rcluster: error: app \"{}\" instance {} errored: {}",
            inst.name,
            inst.instance,
            inst.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    if !errored.is_empty() {
        return Ok(1);
    }
    if attach {
        return super::logs::run(home, &follow_logs(name));
    }
    Ok(0)
}

/// pm2's --attach: the app's logs, recent lines then live ones, until Ctrl-C.
fn follow_logs(app: String) -> LogsArgs {
    LogsArgs {
        target: Some(app),
        lines: 15,
        follow: true,
        nostream: false,
        out: false,
        err: false,
        raw: false,
        json: false,
        timestamp: false,
    }
}

/// pm2's `start <name|id|all>` of apps the daemon has: a restart, which starts stopped
/// instances (`stop api` then `start api`). Only for a bare target (see `bare`): with any flag
/// that defines an app, or arguments, it is a new app (and a name already taken is an error).
fn start_existing(home: &Home, client: &mut Client, args: &StartArgs) -> Result<Option<i32>> {
    let target = Target::parse(&args.script);
    if selected(client, &target)?.is_empty() {
        return Ok(None);
    }
    let restarted = expect_instances(client.call(&Request::Restart {
        target,
        apps: Vec::new(),
        base_env: super::control::update_env(args.update_env),
    })?)?;
    if args.json {
        println!("{}", serde_json::to_string(&restarted)?);
    } else {
        eprintln!("[rcluster] restarted: {}", args.script);
        println!("{}", render::instances_table(&restarted));
    }
    if args.attach {
        return super::logs::run(home, &follow_logs(args.script.clone())).map(Some);
    }
    Ok(Some(0))
}

/// Whether `start` was given its script and nothing that defines an app (the spec is the one a
/// bare `rcluster start <script>` makes).
fn bare(args: &StartArgs) -> bool {
    use clap::Parser;
    let Ok(cli) = Cli::try_parse_from(["rcluster", "start", args.script.as_str()]) else {
        return false;
    };
    let Command::Start(bare) = cli.command else {
        return false;
    };
    let cwd = Path::new("/");
    match (
        spec_from_args(args.clone(), cwd),
        spec_from_args(*bare, cwd),
    ) {
        (Ok(given), Ok(bare)) => given == bare,
        _ => false,
    }
}

/// The apps `rcluster run` supervises: an ecosystem file's, or one from the command line.
pub fn foreground_specs(args: StartArgs) -> Result<Vec<AppSpec>> {
    if super::ecosystem::is_ecosystem_file(&args.script) {
        let options =
            super::ecosystem::FileOptions::default_from(&args.file.only, &args.file.profile);
        return Ok(super::ecosystem::load_file(&args.script, &options)?.apps);
    }
    let cwd_now = std::env::current_dir().context("cannot read the current directory")?;
    Ok(vec![checked_spec(args, &cwd_now)?])
}

pub fn spec_from_args(args: StartArgs, cwd_now: &Path) -> Result<AppSpec> {
    let defaults = AppSpec::default();
    let cwd = match &args.cwd {
        Some(dir) => absolute(cwd_now, dir),
        None => cwd_now.to_path_buf(),
    };
    let interpreter_args = match &args.interpreter_args {
        Some(text) => {
            split_words(text).map_err(|e| anyhow::anyhow!("--interpreter-args `{text}`: {e}"))?
        }
        None => Vec::new(),
    };
    // A script that names a file (relative to the app's cwd) is that file, as under pm2 and in
    // ecosystem files: `start server` runs ./server before any `server` on PATH.
    let file: PathBuf = absolute(&cwd, Path::new(args.script.trim()))
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect();
    let command = match file.to_str().filter(|_| file.is_file()) {
        Some(path) => command_for_file(
            path,
            args.args.clone(),
            args.interpreter.as_deref(),
            interpreter_args,
            Vec::new(),
        ),
        None => command_for(
            &args.script,
            args.args.clone(),
            args.interpreter.as_deref(),
            interpreter_args,
            Vec::new(),
        ),
    };
    let name = match args.name {
        Some(name) => name,
        None => default_name(&args.script),
    };
    let instances = match &args.instances {
        Some(text) => resolve_instances(InstancesArg::Text(text)).map_err(anyhow::Error::msg)?,
        None => 1,
    };
    let mut env = BTreeMap::new();
    for pair in &args.env_vars {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--env-var `{pair}`: expected KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--env-var `{pair}`: the name is empty");
        }
        env.insert(key.to_owned(), value.to_owned());
    }
    let duration = |flag: &str, value: &Option<String>, default: u64| -> Result<u64> {
        match value {
            Some(text) => parse_duration_ms(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}")),
            None => Ok(default),
        }
    };
    let mut spec = AppSpec {
        name,
        command,
        cwd: cwd.clone(),
        env,
        instances,
        autorestart: !args.no_autorestart,
        autostart: !args.no_autostart,
        max_restarts: args.max_restarts.unwrap_or(defaults.max_restarts),
        min_uptime_ms: duration("min-uptime", &args.min_uptime, defaults.min_uptime_ms)?,
        restart_delay_ms: duration(
            "restart-delay",
            &args.restart_delay,
            defaults.restart_delay_ms,
        )?,
        exp_backoff_restart_delay_ms: match &args.exp_backoff_restart_delay {
            Some(_) => Some(duration(
                "exp-backoff-restart-delay",
                &args.exp_backoff_restart_delay,
                0,
            )?),
            None => None,
        },
        stop_exit_codes: args.stop_exit_codes.clone(),
        kill_timeout_ms: duration("kill-timeout", &args.kill_timeout, defaults.kill_timeout_ms)?,
        ..defaults
    };
    if let Some(signal) = &args.kill_signal {
        spec.kill_signal =
            parse_signal(signal).map_err(|e| anyhow::anyhow!("--kill-signal: {e}"))?;
    }
    spec.wait_ready = args.wait_ready;
    spec.namespace = args
        .namespace
        .clone()
        .filter(|ns| ns != crate::protocol::model::DEFAULT_NAMESPACE);
    if let Some(size) = &args.max_memory_restart {
        spec.max_memory_restart = Some(
            crate::config::units::parse_size(size)
                .map_err(|e| anyhow::anyhow!("--max-memory-restart: {e}"))?,
        );
    }
    if let Some(pattern) = args
        .cron_restart
        .filter(|p| !crate::config::cron::is_off(p))
    {
        crate::config::cron::CronPattern::parse(&pattern)
            .map_err(|e| anyhow::anyhow!("--cron-restart: {e}"))?;
        spec.cron_restart = Some(pattern);
    }
    if let Some(paths) = &args.watch {
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
            Some(text) => crate::config::units::parse_duration_ms(text)
                .map_err(|e| anyhow::anyhow!("--watch-delay: {e}"))?,
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
    } else if !args.ignore_watch.is_empty() || args.watch_delay.is_some() {
        anyhow::bail!("--ignore-watch and --watch-delay go with --watch");
    }
    if let Some(var) = args.instance_var {
        spec.instance_var = var;
    }
    if let Some(text) = &args.listen_timeout {
        spec.listen_timeout_ms =
            parse_duration_ms(text).map_err(|e| anyhow::anyhow!("--listen-timeout: {e}"))?;
    }
    for port in &args.ports {
        spec.cluster
            .listen
            .push(ListenAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], *port))));
    }
    for text in &args.listen {
        spec.cluster
            .listen
            .push(parse_listen(text, &cwd).map_err(|e| anyhow::anyhow!("--listen: {e}"))?);
    }
    let cluster_mode = match args.exec_mode.as_deref() {
        None => instances > 1,
        Some("cluster" | "cluster_mode") => true,
        Some("fork" | "fork_mode") => false,
        Some(other) => bail!("--exec-mode: `{other}` is not an exec mode (use fork or cluster)"),
    };
    if !cluster_mode && !spec.cluster.listen.is_empty() && args.exec_mode.is_some() {
        bail!("--port/--listen share sockets between instances, which needs cluster mode, not --exec-mode fork");
    }
    // pm2's cluster mode with no declared port: share what the program binds.
    spec.cluster.discover = cluster_mode && spec.cluster.listen.is_empty();
    spec.cluster.private_ports = args.private_ports.clone();
    if let Some(name) = &args.balance {
        spec.cluster.balance =
            parse_strategy(name).map_err(|e| anyhow::anyhow!("--balance: {e}"))?;
    }
    spec.logs.time = args.time;
    // pm2 (Common.js, God.js): with an instance count or in cluster mode, one file per
    // instance unless --merge-logs.
    let per_instance = args.instances.is_some()
        || args
            .exec_mode
            .as_deref()
            .is_some_and(|m| m.starts_with("cluster"));
    spec.logs.merge_logs = args.merge_logs || (!args.no_merge_logs && !per_instance);
    spec.logs.out_file = args.out_file.map(|p| absolute(&cwd, &p));
    spec.logs.error_file = args.error_file.map(|p| absolute(&cwd, &p));
    spec.logs.log_file = args.log_file.map(|p| absolute(&cwd, &p));
    if args.disable_logs {
        spec.logs.out_file = Some(PathBuf::from("/dev/null"));
        spec.logs.error_file = Some(PathBuf::from("/dev/null"));
    }
    spec.logs.date_format = args.log_date_format;
    spec.logs.json = args.log_type.as_deref() == Some("json");
    if let Some(text) = &args.log_max_size {
        let size = crate::config::units::parse_size(text)
            .map_err(|e| anyhow::anyhow!("--log-max-size: {e}"))?;
        if size == 0 {
            bail!("--log-max-size: must be more than 0");
        }
        spec.logs.max_size = Some(size);
    }
    spec.logs.retain = args.log_retain;
    spec.logs.compress = args.log_compress;
    spec.logs.rotate_daily = args.log_rotate_daily;
    Ok(spec)
}

/// [`spec_from_args`] and the daemon's own check: a bad flag is refused here, before a daemon
/// is started.
fn checked_spec(args: StartArgs, cwd_now: &Path) -> Result<AppSpec> {
    let spec = spec_from_args(args, cwd_now)?;
    crate::config::check::check_spec(&spec).map_err(anyhow::Error::msg)?;
    Ok(spec)
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// pm2's default name: the script's file name without extension (`app.js` → `app`,
/// `"python3 -m http.server"` → `python3`).
fn default_name(script: &str) -> String {
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
