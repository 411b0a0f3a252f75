//! Ecosystem files on the command line (PRODUCT.md §7): `start|reload|restart|stop|delete <file>
//! [--only a,b] [--env profile]` load the file with `config::ecosystem` and act on its apps, and
//! `rcluster ecosystem` (`init`) writes a commented example. Called from `start.rs` and
//! `control.rs` when a target names a file; talks to the daemon through `Client` only.
//!
//! `start <file>` is pm2's startOrReload: an app that runs with the same definition is kept, a
//! changed one is reloaded, a missing one started, so running it twice changes nothing. Apps
//! with `depends_on` start after every instance of what they depend on is READY.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::args::{CheckArgs, EcosystemArgs, StartArgs};
use crate::cli::client::Client;
use crate::cli::cmd::control::{expect_instances, Verb};
use crate::cli::cmd::start_flags;
use crate::cli::render;
use crate::config::ecosystem::{self, ErrorKind, LoadOptions, Loaded};
use crate::paths::Home;
use crate::protocol::model::{AppSpec, InstanceState, InstanceView};
use crate::protocol::{IfRunning, Request, Response, Target};

/// The example written by `rcluster ecosystem`; tests load it with the loader.
pub const TEMPLATE: &str = include_str!("ecosystem.yaml");

/// Beyond a dependency's own `listen_timeout`: time to spawn it on a loaded machine.
const READY_MARGIN: Duration = Duration::from_secs(15);

/// Whether a target names an ecosystem file rather than an app or a script. pm2's rule
/// (`Common.isConfigFile`): `.json`, `.yml`, `.yaml`, and `.config.{js,cjs,mjs}` — a plain
/// `app.js` is a script to run. `ecosystem*.{js,cjs,mjs}` counts too. By name only, so that a
/// mistyped file is reported as missing instead of started as a program.
pub fn is_ecosystem_file(target: &str) -> bool {
    if target == STDIN {
        return true;
    }
    let Some(name) = Path::new(target).file_name() else {
        return false;
    };
    let name = name.to_string_lossy().to_lowercase();
    let script = [".js", ".cjs", ".mjs"]
        .iter()
        .any(|ext| name.ends_with(ext));
    [".json", ".yml", ".yaml"]
        .iter()
        .any(|ext| name.ends_with(ext) && name.len() > ext.len())
        || (script && (name.contains(".config.") || name.starts_with("ecosystem")))
}

/// The target that reads an ecosystem file from standard input (`cat eco.json | rcluster
/// start -`, as pm2's pipe).
pub const STDIN: &str = "-";

/// How messages name a file target (`<stdin>` for `-`).
pub fn label(file: &str) -> &str {
    if file == STDIN {
        "<stdin>"
    } else {
        file
    }
}

/// More than this on standard input is no ecosystem file (the limit of a file).
const STDIN_LIMIT: u64 = ecosystem::MAX_FILE_BYTES;

/// `--only`, `--env` and `--strict` as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    pub only: Vec<String>,
    pub profile: Option<String>,
    pub strict: bool,
}

impl FileOptions {
    pub fn default_from(only: &[String], profile: &Option<String>) -> FileOptions {
        FileOptions {
            only: only.to_vec(),
            profile: profile.clone(),
            strict: false,
        }
    }

    /// `--strict`: unknown keys are errors.
    pub fn strict(mut self, strict: bool) -> FileOptions {
        self.strict = strict;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.only.is_empty() && self.profile.is_none() && !self.strict
    }

    /// `--only`/`--env`/`--strict` mean nothing without a file among the targets.
    pub fn check_used<'t>(&self, mut targets: impl Iterator<Item = &'t String>) -> Result<()> {
        if !self.is_empty() && !targets.any(|t| is_ecosystem_file(t)) {
            bail!("--only and --env apply to ecosystem files (ecosystem.yaml, *.json, *.config.js), as does --strict, and no target is one");
        }
        Ok(())
    }
}

/// Loads `file`; prints its notes and warnings. An invalid file prints every problem, one per
/// line, and fails as a whole: nothing is done with a file that has a problem.
pub fn load_file(file: &str, opts: &FileOptions) -> Result<Loaded> {
    let options = LoadOptions {
        profile: opts.profile.clone(),
        only: opts.only.clone(),
        strict: opts.strict,
    };
    let result = if file == STDIN {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        // JSON, as pm2's pipe reads; else YAML, which also reads pm2's object literals with
        // unquoted keys. The JSON error is the one to show when neither reads it.
        let text = read_stdin()?;
        let load = |format| ecosystem::load_text("<stdin>", &text, format, &cwd, &options);
        match load(ecosystem::TextFormat::Json) {
            Err(e) if e.kind == ErrorKind::Syntax => match load(ecosystem::TextFormat::Yaml) {
                Err(yaml) if yaml.kind == ErrorKind::Syntax => Err(e),
                other => other,
            },
            other => other,
        }
    } else {
        ecosystem::load(Path::new(file), &options)
    };
    let loaded = match result {
        Ok(loaded) => loaded,
        Err(e) if e.kind == ErrorKind::Invalid => {
            for warning in &e.warnings {
                eprintln!("[rcluster] warning: {warning}");
            }
            for problem in &e.problems {
                eprintln!("{problem}");
            }
            let n = e.problems.len();
            let s = if n == 1 { "" } else { "s" };
            bail!("{}: {n} problem{s} (above); nothing was done", label(file));
        }
        Err(e) => bail!("{e}"),
    };
    for note in &loaded.notes {
        eprintln!("[rcluster] note: {note}");
    }
    for warning in &loaded.warnings {
        eprintln!("[rcluster] warning: {warning} (ignored)");
    }
    if !loaded.warnings.is_empty() {
        eprintln!("[rcluster] unknown keys are ignored, as pm2 does; --strict (or `rcluster check {file}`) refuses them");
    }
    Ok(loaded)
}

/// The ecosystem file piped in: JSON (or YAML), relative paths against the current directory.
fn read_stdin() -> Result<String> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("`-` reads an ecosystem file from standard input: `cat ecosystem.json | rcluster start -`");
    }
    let mut text = String::new();
    stdin
        .lock()
        .take(STDIN_LIMIT + 1)
        .read_to_string(&mut text)
        .context("standard input: cannot read an ecosystem file")?;
    if text.len() as u64 > STDIN_LIMIT {
        bail!(
            "standard input: the ecosystem file is too large (more than {} MiB, the limit)",
            STDIN_LIMIT >> 20
        );
    }
    Ok(text)
}

/// `rcluster start <file>` (see the module doc). Flags given beside the file override its
/// values for the apps acted on (`start eco.json -i 2 --only api`), as pm2 means them to; those
/// that change the command itself are the file's to say. Exit code 1 when an instance ended
/// `errored`.
pub fn start_from_args(home: &Home, args: &StartArgs) -> Result<i32> {
    let given = start_flags::command_flags(args);
    if !given.is_empty() {
        bail!(
            "{} cannot be used with an ecosystem file: set it in {} (the file defines what runs)",
            given.join(", "),
            args.script
        );
    }
    let opts =
        FileOptions::default_from(&args.file.only, &args.file.profile).strict(args.file.strict);
    // Validate before starting a daemon: an invalid file changes nothing.
    let mut loaded = load_file(&args.script, &opts)?;
    if args.name.is_some() && loaded.apps.len() > 1 {
        bail!(
            "--name names one app, and {} has {} ({}): pick one with --only",
            args.script,
            loaded.apps.len(),
            names(&loaded.apps).join(", ")
        );
    }
    let cwd_now = std::env::current_dir().context("cannot read the current directory")?;
    for app in &mut loaded.apps {
        start_flags::apply_flags(app, args, &cwd_now)
            .and_then(|()| crate::config::check::check_spec(app).map_err(anyhow::Error::msg))
            .with_context(|| format!("app \"{}\" of {}", app.name, args.script))?;
    }
    let mut client = Client::connect(home)?;
    let shown = start_apps(&mut client, &loaded.apps, Mode::Start)?;
    eprintln!(
        "[rcluster] {}: {}",
        label(&args.script),
        listed(&loaded.apps)
    );
    report(&shown, args.json)
}

/// Loads the targets that name files, before anything is done: one invalid file and nothing
/// happens. `None` for targets that are not files.
pub fn load_targets(targets: &[String], opts: &FileOptions) -> Result<Vec<Option<Loaded>>> {
    targets
        .iter()
        .map(|t| {
            if is_ecosystem_file(t) {
                load_file(t, opts).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect()
}

/// `reload <file>`: running apps get the file's definitions by a zero-downtime reload
/// (`--parallel` at a time), the others start.
pub fn reload(
    client: &mut Client,
    loaded: &Loaded,
    parallel: u32,
    new_env: bool,
) -> Result<Vec<InstanceView>> {
    start_apps(client, &loaded.apps, Mode::Reload { parallel, new_env })
}

/// `stop|restart|delete <file>`: the file's apps that exist. `restart` runs them with the
/// file's definitions (pm2 applies the file's env) and also starts those that do not run (as
/// pm2 does).
pub fn act(
    client: &mut Client,
    verb: Verb,
    file: &str,
    loaded: &Loaded,
    new_env: bool,
) -> Result<Vec<InstanceView>> {
    let running: BTreeSet<String> = list(client)?.into_iter().map(|i| i.name).collect();
    let (present, absent): (Vec<&AppSpec>, Vec<&AppSpec>) =
        loaded.apps.iter().partition(|a| running.contains(&a.name));
    let restart = matches!(verb, Verb::Restart);
    if present.is_empty() && !restart {
        bail!(
            "none of the apps of {file} exists ({})",
            listed(&loaded.apps)
        );
    }
    let mut affected = Vec::new();
    if !present.is_empty() {
        let target = Target::Names(present.iter().map(|a| a.name.clone()).collect());
        let request = match verb {
            Verb::Stop => Request::Stop { target },
            Verb::Restart => Request::Restart {
                target,
                apps: present.iter().map(|a| (*a).clone()).collect(),
                base_env: super::control::update_env(new_env),
            },
            Verb::Delete => Request::Delete { target },
        };
        affected = expect_instances(client.call(&request)?)?;
    }
    if restart && !absent.is_empty() {
        let missing: Vec<AppSpec> = absent.into_iter().cloned().collect();
        eprintln!(
            "[rcluster] {file}: starting {} (not running)",
            listed(&missing)
        );
        affected.extend(start_apps(client, &missing, Mode::Start)?);
    } else {
        for app in absent {
            eprintln!("[rcluster] note: app \"{}\" does not exist", app.name);
        }
    }
    Ok(affected)
}

/// Starts a loaded file's apps as `start <file>` does.
pub fn start_loaded(client: &mut Client, loaded: &Loaded) -> Result<Vec<InstanceView>> {
    start_apps(client, &loaded.apps, Mode::Start)
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Start,
    /// `new_env`: the client's environment becomes the reloaded apps' base (--update-env).
    Reload {
        parallel: u32,
        new_env: bool,
    },
}

/// Starts (or reloads) `apps` in dependency order: each group once the apps it depends on are
/// ready. The instances of every app, as the daemon last reported them.
fn start_apps(client: &mut Client, apps: &[AppSpec], mode: Mode) -> Result<Vec<InstanceView>> {
    let base_env: BTreeMap<String, String> = std::env::vars().collect();
    let mut shown = Vec::new();
    let mut ready = BTreeSet::new();
    for group in dependency_groups(apps) {
        for app in &group {
            for dep in &app.depends_on {
                if ready.insert(dep.clone()) {
                    let timeout = apps.iter().find(|a| &a.name == dep).map_or_else(
                        || listen_timeout_of(client, &app.name, dep),
                        |a| Ok(a.listen_timeout_ms),
                    )?;
                    wait_ready(client, &app.name, dep, timeout)?;
                }
            }
        }
        let running: BTreeSet<String> = match mode {
            Mode::Start => BTreeSet::new(),
            Mode::Reload { .. } => list(client)?.into_iter().map(|i| i.name).collect(),
        };
        let (reload, fresh): (Vec<AppSpec>, Vec<AppSpec>) =
            group.into_iter().partition(|a| running.contains(&a.name));
        if let Mode::Reload { parallel, new_env } = mode {
            let base_env = new_env.then(|| base_env.clone());
            for reload in batches(reload, base_env.as_ref()) {
                let request = Request::Reload {
                    target: Target::Names(names(&reload)),
                    apps: reload,
                    parallel,
                    base_env: base_env.clone(),
                };
                shown.extend(expect_instances(client.call(&request)?)?);
            }
        }
        for fresh in batches(fresh, Some(&base_env)) {
            let request = Request::Start {
                apps: fresh,
                base_env: base_env.clone(),
                if_running: IfRunning::KeepOrReload,
            };
            shown.extend(expect_instances(client.call(&request)?)?);
        }
    }
    if ready.is_empty() {
        return Ok(shown);
    }
    // The apps waited for were reported before they were ready: show them as they are now.
    let now: BTreeMap<u32, InstanceView> = list(client)?.into_iter().map(|i| (i.id, i)).collect();
    Ok(shown
        .into_iter()
        .map(|inst| now.get(&inst.id).cloned().unwrap_or(inst))
        .collect())
}

/// Instances one request may start: its answer lists them all, and must fit in one frame.
const BATCH_INSTANCES: u32 = 1024;

/// `apps` in runs that each fit in one request (half a frame, with `base_env`) and whose
/// answer fits in another: a file of thousands of apps is sent in several requests.
fn batches(apps: Vec<AppSpec>, base_env: Option<&BTreeMap<String, String>>) -> Vec<Vec<AppSpec>> {
    let budget = (crate::protocol::frame::MAX_FRAME as usize / 2)
        .saturating_sub(base_env.map_or(0, json_len));
    let mut out: Vec<Vec<AppSpec>> = Vec::new();
    let (mut bytes, mut instances) = (0usize, 0u32);
    for app in apps {
        let app_bytes = json_len(&app);
        let full = out.last().is_none_or(|run| {
            !run.is_empty()
                && (bytes.saturating_add(app_bytes) > budget
                    || instances + app.instances > BATCH_INSTANCES)
        });
        if full {
            out.push(Vec::new());
            (bytes, instances) = (0, 0);
        }
        bytes = bytes.saturating_add(app_bytes);
        instances = instances.saturating_add(app.instances);
        if let Some(run) = out.last_mut() {
            run.push(app);
        }
    }
    out
}

/// The length of `value` as JSON, the way a request carries it.
fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

/// Apps grouped so that each depends only on apps of earlier groups (or outside `apps`), in
/// file order within a group. The loader has refused cycles; should one get here anyway, the
/// rest is started as a last group rather than never.
fn dependency_groups(apps: &[AppSpec]) -> Vec<Vec<AppSpec>> {
    let inside: BTreeSet<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut left: Vec<&AppSpec> = apps.iter().collect();
    let mut groups = Vec::new();
    while !left.is_empty() {
        let (now, later): (Vec<&AppSpec>, Vec<&AppSpec>) = left.into_iter().partition(|a| {
            a.depends_on
                .iter()
                .all(|d| !inside.contains(d.as_str()) || placed.contains(d.as_str()))
        });
        if now.is_empty() {
            groups.push(later.into_iter().cloned().collect());
            break;
        }
        placed.extend(now.iter().map(|a| a.name.as_str()));
        groups.push(now.into_iter().cloned().collect());
        left = later;
    }
    groups
}

/// The `listen_timeout` of a dependency outside the file's selection (it must run already).
fn listen_timeout_of(client: &mut Client, app: &str, dep: &str) -> Result<u64> {
    let response = client.call(&Request::Describe {
        target: Target::Name(dep.to_owned()),
    });
    match response {
        Ok(Response::Apps { apps }) if !apps.is_empty() => {
            Ok(apps.iter().map(|a| a.spec.listen_timeout_ms).max().unwrap_or(0))
        }
        _ => bail!(
            "app \"{app}\" depends on \"{dep}\", which does not run: start it first (or include it in --only)"
        ),
    }
}

/// Polls until every live instance of `dep` is ready; fails at once if one is errored or all
/// are stopped, and after its `listen_timeout` plus a margin otherwise.
fn wait_ready(client: &mut Client, app: &str, dep: &str, listen_timeout_ms: u64) -> Result<()> {
    let limit = Duration::from_millis(listen_timeout_ms) + READY_MARGIN;
    let deadline = Instant::now() + limit;
    let mut nap = Duration::from_millis(10);
    let mut said = false;
    loop {
        let instances: Vec<InstanceView> = list(client)?
            .into_iter()
            .filter(|i| i.name == dep)
            .collect();
        if instances.is_empty() {
            bail!("app \"{app}\" depends on \"{dep}\", which does not run");
        }
        if let Some(bad) = instances
            .iter()
            .find(|i| i.status == InstanceState::Errored)
        {
            bail!(
                "app \"{app}\" not started: \"{dep}\" (instance {}) errored: {}",
                bad.instance,
                bad.reason.as_deref().unwrap_or("unknown reason")
            );
        }
        let live: Vec<&InstanceView> = instances
            .iter()
            .filter(|i| !matches!(i.status, InstanceState::Stopping | InstanceState::Stopped))
            .collect();
        if live.is_empty() {
            bail!("app \"{app}\" not started: \"{dep}\" is stopped (`rcluster restart {dep}`)");
        }
        if live.iter().all(|i| i.ready) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let why = live
                .iter()
                .find(|i| !i.ready)
                .map(|i| {
                    i.reason.clone().unwrap_or_else(|| {
                        format!("instance {} is {}", i.instance, i.status.as_str())
                    })
                })
                .unwrap_or_default();
            bail!(
                "app \"{app}\" not started: \"{dep}\" was not ready within {} ms: {why}",
                limit.as_millis()
            );
        }
        if !said {
            eprintln!("[rcluster] waiting for \"{dep}\" to be ready before starting \"{app}\"");
            said = true;
        }
        thread::sleep(nap); // polling interval while the dependency starts
        nap = (nap * 2).min(Duration::from_millis(100));
    }
}

fn list(client: &mut Client) -> Result<Vec<InstanceView>> {
    expect_instances(client.call(&Request::List)?)
}

fn names(apps: &[AppSpec]) -> Vec<String> {
    apps.iter().map(|a| a.name.clone()).collect()
}

/// `a, b, c` for a message; past a dozen apps, the first ones and how many more.
fn listed(apps: &[AppSpec]) -> String {
    const SHOWN: usize = 12;
    let mut text = apps
        .iter()
        .take(SHOWN)
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if apps.len() > SHOWN {
        text.push_str(&format!(" and {} more", apps.len() - SHOWN));
    }
    text
}

/// The table (or JSON) of what was started; exit code 1 if an instance is `errored`.
pub fn report(shown: &[InstanceView], json: bool) -> Result<i32> {
    // A reload reports an app's instances again: keep the latest view of each id.
    let mut by_id: BTreeMap<u32, &InstanceView> = BTreeMap::new();
    for inst in shown {
        by_id.insert(inst.id, inst);
    }
    let unique: Vec<InstanceView> = by_id.into_values().cloned().collect();
    if json {
        println!("{}", serde_json::to_string(&unique)?);
    } else {
        println!("{}", render::instances_table(&unique));
    }
    let mut code = 0;
    for inst in unique.iter().filter(|i| i.status == InstanceState::Errored) {
        eprintln!(
            "rcluster: error: app \"{}\" instance {} errored: {}",
            inst.name,
            inst.instance,
            inst.reason.as_deref().unwrap_or("unknown reason")
        );
        code = 1;
    }
    Ok(code)
}

/// `rcluster check FILE`: loads it as `start` would, unknown keys refused, and says what it
/// holds; nothing is started (no daemon is needed).
pub fn check(args: &CheckArgs) -> Result<i32> {
    let opts = FileOptions::default_from(&args.file.only, &args.file.profile).strict(true);
    let loaded = load_file(&args.path, &opts)?;
    println!(
        "{}: {} app(s), no problem: {}",
        args.path,
        loaded.apps.len(),
        listed(&loaded.apps)
    );
    Ok(0)
}

/// `rcluster ecosystem [FILE] [--force]`: writes [`TEMPLATE`].
pub fn init(args: &EcosystemArgs) -> Result<i32> {
    let file: &PathBuf = &args.file;
    let text = file.to_string_lossy();
    if !(text.ends_with(".yaml") || text.ends_with(".yml")) {
        bail!("{text}: the example is YAML; name it ecosystem.yaml (or *.yml)");
    }
    if file.exists() && !args.force {
        bail!("{text} exists already (--force overwrites it)");
    }
    std::fs::write(file, TEMPLATE).with_context(|| format!("cannot write {text}"))?;
    println!("wrote {text}: edit it, then `rcluster start {text}`");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_files_go_in_several_requests() {
        let app = |name: String, instances: u32| AppSpec {
            name,
            instances,
            ..AppSpec::default()
        };
        let many: Vec<AppSpec> = (0..10_000).map(|i| app(format!("app{i}"), 1)).collect();
        let runs = batches(many, None);
        assert_eq!(runs.iter().map(Vec::len).sum::<usize>(), 10_000);
        assert!(runs.len() >= 10, "{}", runs.len());
        for run in &runs {
            let request = Request::Start {
                apps: run.clone(),
                base_env: BTreeMap::new(),
                if_running: IfRunning::KeepOrReload,
            };
            assert!(json_len(&request) < crate::protocol::frame::MAX_FRAME as usize / 2 + 100);
            assert!(run.iter().map(|a| a.instances).sum::<u32>() <= BATCH_INSTANCES);
        }
        let wide = vec![
            app("a".into(), 1000),
            app("b".into(), 1000),
            app("c".into(), 24),
        ];
        let runs = batches(wide, None);
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2]);
        assert!(batches(Vec::new(), None).is_empty());
    }

    #[test]
    fn file_targets_follow_pm2() {
        for file in [
            "ecosystem.yaml",
            "./deploy/apps.yml",
            "pm2.JSON",
            "ecosystem.config.js",
            "/srv/app/ecosystem.config.cjs",
            "ecosystem.mjs",
            "prod.config.mjs",
        ] {
            assert!(is_ecosystem_file(file), "{file}");
        }
        for target in [
            "app.js",
            "server.mjs",
            "web",
            "3",
            "all",
            "python3 x.py",
            ".json",
            "dir/",
        ] {
            assert!(!is_ecosystem_file(target), "{target}");
        }
    }

    #[test]
    fn groups_follow_dependencies() {
        let app = |name: &str, deps: &[&str]| AppSpec {
            name: name.into(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            ..AppSpec::default()
        };
        let apps = vec![
            app("web", &["api"]),
            app("api", &["db", "cache"]),
            app("db", &[]),
            app("cache", &["elsewhere"]),
            app("cron", &[]),
        ];
        let groups: Vec<Vec<String>> = dependency_groups(&apps).iter().map(|g| names(g)).collect();
        assert_eq!(
            groups,
            vec![vec!["db", "cache", "cron"], vec!["api"], vec!["web"]]
        );
    }
}
