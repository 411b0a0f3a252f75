//! Verbs that act on running apps: stop, restart, delete, reload, scale, signal, reset, pid,
//! id, env, ping, kill, update (`list.rs` shows them). Targets that name ecosystem files are
//! handed to `ecosystem.rs`, the others resolved as pm2 takes them (`cli::target`).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::args::{ReloadArgs, RestartArgs, ScaleArgs, TargetArgs};
use crate::cli::client::{Client, DaemonError};
use crate::cli::cmd::ecosystem;
use crate::cli::render;
use crate::cli::target::Resolver;
use crate::paths::Home;
use crate::protocol::model::InstanceView;
use crate::protocol::{ErrorKind, Request, Response, ScaleChange, Target};

#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Stop,
    Restart,
    Delete,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Delete => "delete",
        }
    }
}

/// `stop|restart|reload|delete all` with no app: pm2 warns "No process found" and exits 1, so
/// a deploy script that expected apps learns that there were none.
fn no_process_found(verb: &str) -> Result<()> {
    bail!("no process found: `{verb} all` found no app (`rcluster ls` is empty)")
}

/// The client's environment, when the command asks for it to become the apps' base.
pub fn update_env(wanted: bool) -> Option<std::collections::BTreeMap<String, String>> {
    wanted.then(|| std::env::vars().collect())
}

pub fn act(home: &Home, verb: Verb, args: &TargetArgs, new_env: bool) -> Result<i32> {
    let opts = ecosystem::FileOptions::default_from(&args.file.only, &args.file.profile)
        .strict(args.file.strict);
    opts.check_used(args.targets.iter())?;
    let files = ecosystem::load_targets(&args.targets, &opts)?;
    let mut client = Client::connect(home)?;
    let mut resolver = Resolver::new()?;
    let mut affected = Vec::new();
    for (text, file) in args.targets.iter().zip(&files) {
        if let Some(loaded) = file {
            affected.extend(ecosystem::act(&mut client, verb, text, loaded, new_env)?);
            continue;
        }
        let target = resolver.resolve(&mut client, text)?;
        if target == Target::All && selected(&mut client, &target)?.is_empty() {
            no_process_found(verb.name())?;
        }
        let request = match verb {
            Verb::Stop => Request::Stop { target },
            Verb::Restart => Request::Restart {
                target,
                apps: Vec::new(),
                base_env: update_env(new_env),
            },
            Verb::Delete => Request::Delete { target },
        };
        affected.extend(expect_instances(client.call(&request)?)?);
    }
    if args.json {
        println!("{}", serde_json::to_string(&affected)?);
        return Ok(0);
    }
    let what = match verb {
        Verb::Stop => "stopped",
        Verb::Restart => "restarted",
        Verb::Delete => "deleted",
    };
    eprintln!("[rcluster] {what}: {}", args.targets.join(" "));
    if !affected.is_empty() {
        println!("{}", render::instances_table(&affected));
    }
    Ok(0)
}

/// pm2's `restart <id|name> --name NEW`: the app is renamed, then restarted under the new name.
pub fn rename(home: &Home, args: &RestartArgs, name: &str) -> Result<i32> {
    let [text] = args.target.targets.as_slice() else {
        bail!("--name renames one app: give one target");
    };
    if ecosystem::is_ecosystem_file(text) {
        bail!("--name renames an app, not an ecosystem file's apps: set `name` in {text}");
    }
    let mut client = Client::connect(home)?;
    let target = Resolver::new()?.resolve(&mut client, text)?;
    if let Target::Id(_) = target {
        let app = selected(&mut client, &target)?
            .into_iter()
            .next()
            .map(|i| i.name);
        if let Some(app) = app {
            let count = selected(&mut client, &Target::Name(app.clone()))?.len();
            if count > 1 {
                eprintln!(
                    "[rcluster] note: {text} is one of the {count} instances of \"{app}\": the app is renamed whole (pm2 renames that one process)"
                );
            }
        }
    }
    match client.call(&Request::Rename {
        target,
        name: name.to_owned(),
    })? {
        Response::Done { message } => eprintln!("[rcluster] {message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
    let restarted = expect_instances(client.call(&Request::Restart {
        target: Target::Name(name.to_owned()),
        apps: Vec::new(),
        base_env: update_env(args.update_env),
    })?)?;
    if args.target.json {
        println!("{}", serde_json::to_string(&restarted)?);
    } else {
        eprintln!("[rcluster] restarted: {name}");
        println!("{}", render::instances_table(&restarted));
    }
    Ok(0)
}

pub fn reload(home: &Home, args: &ReloadArgs) -> Result<i32> {
    let opts = ecosystem::FileOptions::default_from(&args.file.only, &args.file.profile)
        .strict(args.file.strict);
    opts.check_used(args.targets.iter())?;
    let files = ecosystem::load_targets(&args.targets, &opts)?;
    let mut client = Client::connect(home)?;
    let mut resolver = Resolver::new()?;
    let mut replaced = Vec::new();
    for (text, file) in args.targets.iter().zip(&files) {
        if let Some(loaded) = file {
            replaced.extend(ecosystem::reload(
                &mut client,
                loaded,
                args.parallel,
                args.update_env,
            )?);
            continue;
        }
        let target = resolver.resolve(&mut client, text)?;
        if target == Target::All && selected(&mut client, &target)?.is_empty() {
            no_process_found("reload")?;
        }
        let request = Request::Reload {
            target,
            apps: Vec::new(),
            parallel: args.parallel,
            base_env: update_env(args.update_env),
        };
        replaced.extend(expect_instances(client.call(&request)?)?);
    }
    if args.json {
        println!("{}", serde_json::to_string(&replaced)?);
    } else {
        eprintln!("[rcluster] reloaded: {}", args.targets.join(" "));
        println!("{}", render::instances_table(&replaced));
    }
    Ok(0)
}

pub fn scale(home: &Home, args: &ScaleArgs) -> Result<i32> {
    let change = ScaleChange::parse(&args.count).map_err(anyhow::Error::msg)?;
    let max = crate::config::check::MAX_INSTANCES;
    let size = match change {
        ScaleChange::To(n) => u64::from(n),
        ScaleChange::By(d) => d.unsigned_abs(),
    };
    if size > u64::from(max) {
        bail!(
            "scale {}: an app has 1 to {max} instances",
            args.count.trim()
        );
    }
    let mut client = Client::connect(home)?;
    client.call(&Request::Scale {
        app: args.app.clone(),
        change,
    })?;
    let all = expect_instances(client.call(&Request::List)?)?;
    let app: Vec<InstanceView> = all.into_iter().filter(|i| i.name == args.app).collect();
    eprintln!(
        "[rcluster] app \"{}\" now has {} instance(s)",
        args.app,
        app.len()
    );
    println!("{}", render::instances_table(&app));
    Ok(0)
}

/// Requests answered with one line of text.
pub fn simple(home: &Home, request: Request) -> Result<i32> {
    each_request(home, [request])
}

/// One request per target (an id, a name, `all`, or an ecosystem file for its apps), each
/// answered with one line of text.
pub fn each_target(
    home: &Home,
    targets: &[String],
    request: impl Fn(Target) -> Request,
) -> Result<i32> {
    let files = ecosystem::load_targets(targets, &ecosystem::FileOptions::default())?;
    let mut client = Client::connect(home)?;
    let mut resolver = Resolver::new()?;
    let mut requests = Vec::new();
    for (text, file) in targets.iter().zip(files) {
        let target = match file {
            Some(loaded) => Target::Names(loaded.apps.into_iter().map(|a| a.name).collect()),
            None => resolver.resolve(&mut client, text)?,
        };
        requests.push(request(target));
    }
    each_request_on(&mut client, requests)
}

fn each_request(home: &Home, requests: impl IntoIterator<Item = Request>) -> Result<i32> {
    each_request_on(&mut Client::connect(home)?, requests)
}

fn each_request_on(
    client: &mut Client,
    requests: impl IntoIterator<Item = Request>,
) -> Result<i32> {
    for request in requests {
        match client.call(&request)? {
            Response::Done { message } => println!("{message}"),
            other => bail!("unexpected answer from the daemon: {other:?}"),
        }
    }
    Ok(0)
}

/// pm2's `pid [app]`: the pids of the running instances of an app, an instance, or all.
pub fn pids(home: &Home, target: Option<&str>) -> Result<i32> {
    let mut client = Client::connect(home)?;
    let target = match target {
        Some(text) => Resolver::new()?.resolve(&mut client, text)?,
        None => Target::All,
    };
    let chosen = selected(&mut client, &target)?;
    if chosen.is_empty() && target != Target::All {
        bail!("no app or instance {target}");
    }
    for pid in chosen.iter().filter_map(|i| i.pid) {
        println!("{pid}");
    }
    Ok(0)
}

/// pm2's `id <name>`: the ids of the app's instances, printed as pm2 prints them (`[ 0, 1 ]`).
pub fn ids(home: &Home, target: &str) -> Result<i32> {
    let mut client = Client::connect(home)?;
    let target = Resolver::new()?.resolve(&mut client, target)?;
    let chosen = selected(&mut client, &target)?;
    let ids: Vec<String> = chosen.iter().map(|i| i.id.to_string()).collect();
    if ids.is_empty() {
        println!("[]");
    } else {
        println!("[ {} ]", ids.join(", "));
    }
    Ok(0)
}

/// One KEY=VALUE a line, as /proc/<pid>/environ has them: what the program started with,
/// rcluster's own variables (LISTEN_FDS, NODE_APP_INSTANCE, ...) included.
pub fn env(home: &Home, target: &str) -> Result<i32> {
    use std::io::Write;
    let mut client = Client::connect(home)?;
    let target = Resolver::new()?.resolve(&mut client, target)?;
    let chosen = selected(&mut client, &target)?;
    let instance = match chosen.as_slice() {
        [] => bail!("no app or instance {target}"),
        [one] => one,
        many => {
            let ids: Vec<String> = many.iter().map(|i| i.id.to_string()).collect();
            bail!(
                "{target} has {} instances: name one by its id ({})",
                many.len(),
                ids.join(", ")
            )
        }
    };
    let Some(pid) = instance.pid else {
        bail!(
            "instance {} of \"{}\" is {}: no program to read the environment of",
            instance.id,
            instance.name,
            instance.status.as_str()
        );
    };
    let environ = std::fs::read(format!("/proc/{pid}/environ"))
        .with_context(|| format!("cannot read the environment of pid {pid}"))?;
    let mut out = std::io::stdout().lock();
    for var in environ.split(|b| *b == 0).filter(|v| !v.is_empty()) {
        out.write_all(var)?;
        out.write_all(b"\n")?;
    }
    Ok(0)
}

pub fn resurrect(home: &Home) -> Result<i32> {
    let mut client = Client::connect(home)?;
    let started = expect_instances(client.call(&Request::Resurrect)?)?;
    eprintln!("[rcluster] resurrected {} instance(s)", started.len());
    println!("{}", render::instances_table(&started));
    Ok(0)
}

pub fn ping(home: &Home) -> Result<i32> {
    let mut client = Client::connect(home)?;
    if let Response::Pong {
        pid,
        version,
        uptime_ms,
        apps,
        instances,
    } = client.call(&Request::Ping)?
    {
        let started = if client.started_daemon {
            "daemon started; "
        } else {
            ""
        };
        println!(
            "pong: {started}daemon pid {pid}, rcluster {version}, up {}, {apps} app(s), {instances} instance(s)",
            render::duration(uptime_ms)
        );
    }
    Ok(0)
}

pub fn kill(home: &Home) -> Result<i32> {
    let Some(mut client) = Client::connect_existing_any_version(home)? else {
        println!("no daemon runs for {}", home.root().display());
        return Ok(0);
    };
    let stopped = expect_instances(client.call(&Request::Kill)?)?;
    // The daemon closes our connection as it exits; it is gone once its lock is free, so the
    // next command (a `start`, a fresh daemon) never meets one half shut down.
    client.wait_closed(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while home.daemon_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5)); // polling interval for the daemon's exit
    }
    println!("daemon stopped ({} instance(s) stopped)", stopped.len());
    Ok(0)
}

/// `update`: the running daemon re-executes this binary in place (same pid, apps and sockets
/// kept) and answers from its new image. With no daemon running, one is started.
pub fn update(home: &Home) -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find this rcluster binary")?;
    let Some(mut client) = Client::connect_existing_any_version(home)? else {
        let client = Client::connect(home)?;
        drop(client);
        println!(
            "no daemon was running; started rcluster {}",
            crate::protocol::VERSION
        );
        return Ok(0);
    };
    let request = Request::Update {
        exe,
        format: crate::daemon::handoff::FORMAT,
    };
    let answer = client.call(&request).map_err(|e| match e.downcast_ref::<DaemonError>() {
        // A daemon from before `update` existed cannot decode the request.
        Some(DaemonError(reply)) if reply.kind == ErrorKind::BadRequest => anyhow!(
            "the running daemon is older than `rcluster update` and cannot be replaced in place; rcluster save && rcluster kill && rcluster resurrect (the apps restart)"
        ),
        _ => e,
    })?;
    match answer {
        Response::Done { message } => println!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
    Ok(0)
}

/// The listed instances that `target` selects (for the views the CLI filters itself).
pub fn selected(client: &mut Client, target: &Target) -> Result<Vec<InstanceView>> {
    let all = expect_instances(client.call(&Request::List)?)?;
    Ok(target.select(all))
}

/// The instances of an answer; its notes (an instance restarted instead of reloaded) go to
/// stderr, one line each.
pub fn expect_instances(response: Response) -> Result<Vec<InstanceView>> {
    match response {
        Response::Instances { instances, notes } => {
            for note in notes {
                eprintln!("[rcluster] note: {note}");
            }
            Ok(instances)
        }
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}
