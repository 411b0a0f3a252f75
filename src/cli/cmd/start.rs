//! `rcluster start`: scripts, programs and command lines become apps (`start_flags` makes the
//! `AppSpec`), as pm2's `start` does: several scripts at once, a known app started again, a
//! script that runs already refused unless `-f`, a missing script refused before anything is
//! added. Ecosystem files go to `ecosystem.rs`.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::start_flags::{self, spec_from_args};
use crate::cli::args::{Cli, Command, LogsArgs, StartArgs};
use crate::cli::client::Client;
use crate::cli::cmd::control::{expect_instances, selected};
use crate::cli::render;
use crate::config::interpreter::{find_on_path, is_command_line};
use crate::paths::Home;
use crate::protocol::model::{AppSpec, InstanceState};
use crate::protocol::{IfRunning, Request, Response, Target};

pub fn run(home: &Home, args: StartArgs) -> Result<i32> {
    for (flag, key) in args.pm2_only.used() {
        eprintln!(
            "[rcluster] --{flag} has no effect in rcluster: {}",
            crate::config::ecosystem::no_effect_reason(key)
        );
    }
    if args.filter_env.iter().any(String::is_empty) {
        eprintln!(
            "[rcluster] --filter-env without a name has no effect, as in pm2 7: name what to leave out (--filter-env SECRET)"
        );
    }
    if args.uid.is_some() || args.gid.is_some() {
        bail!("--uid/--gid: running an app as another user is not supported yet; run rcluster as that user");
    }
    if args.more_scripts.is_empty() {
        return run_one(home, args);
    }
    // pm2's `start a.js b.js c.js`: one app per script, in order; the first failure stops.
    let scripts: Vec<String> = std::iter::once(args.script.clone())
        .chain(args.more_scripts.iter().cloned())
        .collect();
    if args.name.is_some() {
        bail!(
            "--name names one app, and {} scripts were given: start them one at a time to name each",
            scripts.len()
        );
    }
    if args.attach {
        bail!("--attach follows one app's logs: start one script with it");
    }
    let mut code = 0;
    for script in scripts {
        let mut one = args.clone();
        one.script = script;
        one.more_scripts.clear();
        code = code.max(run_one(home, one)?);
    }
    Ok(code)
}

fn run_one(home: &Home, args: StartArgs) -> Result<i32> {
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
        .strict(args.file.strict)
        .check_used(std::iter::once(&args.script))?;
    // Invalid flags fail before a daemon is started; a bare target may name a known app.
    let mut client = None;
    if bare(&args) {
        let mut known = Client::connect(home)?;
        let target = Target::parse(&args.script);
        if !selected(&mut known, &target)?.is_empty() {
            return start_existing(home, &mut known, &args, target);
        }
        client = Some(known);
    }
    let cwd_now = std::env::current_dir().context("cannot read the current directory")?;
    let mut spec = checked_spec(args.clone(), &cwd_now)?;
    let mut client = match client {
        Some(client) => client,
        None => Client::connect(home)?,
    };
    if spec.script.is_none() && !runnable(&args) {
        // Not a file, not a program: unless it names a known app (whose flags are for a new
        // one, so the daemon says the name is taken), there is nothing to start.
        if selected(&mut client, &Target::parse(&args.script))?.is_empty() {
            let cwd = args
                .cwd
                .as_deref()
                .map_or(cwd_now.clone(), |dir| start_flags::absolute(&cwd_now, dir));
            bail!(
                "script not found: {} (no such file, and no program `{}` on PATH)",
                start_flags::script_file(&cwd, &args.script).display(),
                args.script.trim()
            );
        }
    }
    if let Some(code) = same_script(home, &mut client, &args, &mut spec)? {
        return Ok(code);
    }
    let json = args.json;
    let attach = args.attach;
    let name = spec.name.clone();
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

/// A script that is no file can still run: a command line (the shell finds its program) or a
/// program on PATH (`start node -- app.js`).
fn runnable(args: &StartArgs) -> bool {
    let script = args.script.trim();
    is_command_line(script, args.interpreter.as_deref())
        || (!script.contains('/') && find_on_path(script).is_some())
}

/// pm2's check before starting a script: an app of the same name that runs the same file is
/// started again when it is stopped or errored; when it runs, the start is refused unless `-f`
/// asks for another copy (which rcluster names `<name>-2`, names being unique here). `Some`:
/// done, with this exit code.
fn same_script(
    home: &Home,
    client: &mut Client,
    args: &StartArgs,
    spec: &mut AppSpec,
) -> Result<Option<i32>> {
    let Some(file) = &spec.script else {
        return Ok(None);
    };
    let response = client.call(&Request::Describe {
        target: Target::All,
    })?;
    let Response::Apps { apps } = response else {
        bail!("unexpected answer from the daemon: {response:?}");
    };
    let Some(same) = apps
        .iter()
        .find(|a| a.spec.name == spec.name && a.spec.script.as_ref() == Some(file))
    else {
        return Ok(None);
    };
    let settled = same.instances.iter().all(|i| {
        matches!(
            i.status,
            InstanceState::Stopped | InstanceState::Stopping | InstanceState::Errored
        )
    });
    if settled {
        let target = Target::Name(spec.name.clone());
        return start_existing(home, client, args, target).map(Some);
    }
    if !args.pm2_only.force {
        bail!(
            "script already launched: app \"{}\" runs {} (add -f to start another copy, as in pm2, or `rcluster restart {}`)",
            spec.name,
            file.display(),
            spec.name
        );
    }
    let taken = |name: &str| apps.iter().any(|a| a.spec.name == name);
    let copy = (2..)
        .map(|n| format!("{}-{n}", spec.name))
        .find(|name| !taken(name))
        .unwrap_or_default();
    eprintln!(
        "[rcluster] -f: another copy of {} named \"{copy}\" (pm2 gives copies the same name; rcluster's names are unique, and `rcluster stop {}` acts on every copy)",
        file.display(),
        args.script.trim()
    );
    spec.name = copy;
    Ok(None)
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
fn start_existing(
    home: &Home,
    client: &mut Client,
    args: &StartArgs,
    target: Target,
) -> Result<i32> {
    let restarted = expect_instances(client.call(&Request::Restart {
        target,
        apps: Vec::new(),
        base_env: super::control::update_env(args.update_env),
    })?)?;
    if args.json {
        println!("{}", serde_json::to_string(&restarted)?);
    } else {
        eprintln!("[rcluster] started again: {} (a known app)", args.script);
        println!("{}", render::instances_table(&restarted));
    }
    if args.attach {
        return super::logs::run(home, &follow_logs(args.script.clone()));
    }
    Ok(0)
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

/// [`spec_from_args`] and the daemon's own check: a bad flag is refused here, before a daemon
/// is started.
fn checked_spec(args: StartArgs, cwd_now: &Path) -> Result<AppSpec> {
    let spec = spec_from_args(args, cwd_now)?;
    crate::config::check::check_spec(&spec).map_err(anyhow::Error::msg)?;
    Ok(spec)
}

/// The apps `rcluster run` supervises: an ecosystem file's, or one per script given.
pub fn foreground_specs(args: StartArgs) -> Result<Vec<AppSpec>> {
    let cwd_now = std::env::current_dir().context("cannot read the current directory")?;
    let mut apps = Vec::new();
    let scripts = std::iter::once(args.script.clone()).chain(args.more_scripts.iter().cloned());
    for script in scripts.collect::<Vec<_>>() {
        let mut one = args.clone();
        one.script = script;
        one.more_scripts.clear();
        if super::ecosystem::is_ecosystem_file(&one.script) {
            let options =
                super::ecosystem::FileOptions::default_from(&one.file.only, &one.file.profile)
                    .strict(one.file.strict);
            apps.extend(super::ecosystem::load_file(&one.script, &options)?.apps);
        } else {
            apps.push(checked_spec(one, &cwd_now)?);
        }
    }
    Ok(apps)
}
