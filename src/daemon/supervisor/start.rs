//! `start`: validate every app first (names, counts, cwd, sockets), then create and spawn; an
//! app that runs already is an error, kept, or reloaded, as the request asks.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::actor::Supervisor;
use super::state::{App, Instance, Intent};
use super::Reply;
use tokio::sync::mpsc;

use crate::daemon::logs::writer::spawn_writer;
use crate::daemon::logs::{LogHealth, WriterMsg};
use crate::protocol::model::{AppSpec, InstanceState};
use crate::protocol::{ErrorKind, ErrorReply, IfRunning};

impl Supervisor {
    pub(super) fn start(
        &mut self,
        specs: Vec<AppSpec>,
        base_env: BTreeMap<String, String>,
        if_running: IfRunning,
        reply: Reply<super::Replaced>,
    ) {
        let mut fresh = Vec::new();
        let mut to_reload = Vec::new();
        let mut kept = Vec::new();
        let mut seen = HashSet::new();
        for spec in specs {
            if let Err(e) = check_spec(&spec) {
                let _ = reply.send(Err(e));
                return;
            }
            if !seen.insert(spec.name.clone()) {
                let _ = reply.send(Err(ErrorReply::new(
                    ErrorKind::InvalidSpec,
                    format!("app \"{}\" is given twice", spec.name),
                )));
                return;
            }
            match (self.apps.get(&spec.name), if_running) {
                (None, _) => fresh.push(spec),
                (Some(_), IfRunning::Fail) => {
                    let _ = reply.send(Err(ErrorReply::new(ErrorKind::Conflict, format!("app \"{}\" already exists", spec.name))
                        .with_hint("use `rcluster restart` or `rcluster reload`, or `rcluster delete` it first")));
                    return;
                }
                (Some(app), IfRunning::KeepOrReload) if app.spec == spec => kept.push(spec.name),
                (Some(_), _) => to_reload.push(spec),
            }
        }
        let started = match self.start_fresh(fresh, base_env) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let mut report = started;
        // A kept app that is stopped or errored starts again, as pm2 restarts every app of the
        // file that it knows.
        let mut again = Vec::new();
        for name in &kept {
            let ids = self.ids_of(name);
            again.extend(ids.iter().copied().filter(|id| {
                self.instances.get(id).is_some_and(|i| {
                    i.intent == Intent::None
                        && matches!(i.state, InstanceState::Stopped | InstanceState::Errored)
                })
            }));
            report.extend(ids);
        }
        for id in &again {
            if let Some(inst) = self.instances.get_mut(id) {
                // A fresh budget of unstable restarts, as after a restart command.
                inst.counters = super::restart::Counters::default();
            }
        }
        if !again.is_empty() {
            self.spawn_instances(&again);
        }
        if to_reload.is_empty() {
            let views = self.views(&report, false);
            let _ = reply.send(Ok(views.into()));
            return;
        }
        let names: Vec<String> = to_reload.iter().map(|s| s.name.clone()).collect();
        self.reload(
            &crate::protocol::Target::Names(names),
            to_reload,
            1,
            None,
            reply,
            report,
        );
    }

    /// Create and spawn apps that do not run yet, on one base environment (the starting
    /// client's); ids of their instances.
    pub(super) fn start_fresh(
        &mut self,
        specs: Vec<AppSpec>,
        base_env: BTreeMap<String, String>,
    ) -> Result<Vec<u32>, ErrorReply> {
        let base_env = Arc::new(base_env);
        let apps = specs
            .into_iter()
            .map(|spec| {
                let env = filtered_env(&base_env, &spec.filter_env);
                (spec, env)
            })
            .collect();
        self.start_apps(apps)
    }

    /// `start_fresh` with each app's own base environment (`resurrect`: the one it was saved
    /// with).
    pub(super) fn start_fresh_each(
        &mut self,
        apps: Vec<(AppSpec, BTreeMap<String, String>)>,
    ) -> Result<Vec<u32>, ErrorReply> {
        let apps = apps
            .into_iter()
            .map(|(spec, env)| {
                let env = filtered_env(&Arc::new(env), &spec.filter_env);
                (spec, env)
            })
            .collect();
        self.start_apps(apps)
    }

    fn start_apps(
        &mut self,
        apps: Vec<(AppSpec, Arc<BTreeMap<String, String>>)>,
    ) -> Result<Vec<u32>, ErrorReply> {
        let (specs, envs): (Vec<AppSpec>, Vec<_>) = apps.into_iter().unzip();
        // Whatever the way in (a request, a saved list), nothing unchecked becomes an app.
        for spec in &specs {
            check_spec(spec)?;
            check_log_files(&self.home, spec)?;
        }
        // Bind every app's sockets before starting anything: a port conflict starts nothing.
        let mut balancers = Vec::new();
        for spec in &specs {
            balancers.push(self.bind_cluster(spec)?);
        }
        // And watch what they watch: a path that cannot be watched starts nothing either.
        let mut watchers = Vec::new();
        for spec in &specs {
            watchers.push(self.open_watch(spec).map_err(|e| {
                ErrorReply::new(
                    ErrorKind::InvalidSpec,
                    format!("app \"{}\": {e}", spec.name),
                )
            })?);
        }
        let mut started = Vec::new();
        let mut to_spawn = Vec::new();
        let each = specs.into_iter().zip(envs).zip(balancers).zip(watchers);
        for (((spec, base_env), balancer), watch) in each {
            let (log_tx, log_health) = self.log_writer(&spec);
            let name = spec.name.clone();
            crate::dlog!(
                "app {name}: starting {} instance(s): {}",
                spec.instances,
                spec.command.display()
            );
            for index in 0..spec.instances {
                let id = self.next_id;
                self.next_id += 1;
                let mut inst = Instance::new(id, &name, index);
                if !spec.autostart {
                    // Added, not started (pm2's autostart: false), as if stopped by a command.
                    inst.state = crate::protocol::model::InstanceState::Stopped;
                    inst.stopped_by_command = true;
                } else {
                    to_spawn.push(id);
                }
                self.instances.insert(id, inst);
                started.push(id);
            }
            self.apps.insert(
                name.clone(),
                App {
                    spec,
                    base_env,
                    log_tx,
                    log_health,
                    balancer,
                    cron: None,
                    watch,
                    created_at: super::state::epoch_ms_now(),
                },
            );
            self.arm_cron(&name);
        }
        self.spawn_instances(&to_spawn);
        if !started.is_empty() {
            // Apps run again: the note about the previous daemon's end has served.
            self.previous_run = None;
        }
        Ok(started)
    }

    /// The app's log writer, its health counters shared with it; it reports a file that starts
    /// or stops failing as an instance event.
    pub(super) fn log_writer(&self, spec: &AppSpec) -> (mpsc::Sender<WriterMsg>, Arc<LogHealth>) {
        let health = Arc::new(LogHealth::default());
        let events = Some(self.cluster.events.clone());
        let tx = spawn_writer(
            &self.home,
            spec,
            self.followers.clone(),
            health.clone(),
            events,
        );
        (tx, health)
    }

    /// Add instances to a running app at the lowest free indexes.
    pub(super) fn add_instances(&mut self, app: &str, count: u32) -> Vec<u32> {
        let mut used: Vec<u32> = self
            .instances
            .values()
            .filter(|i| i.app == app && i.intent != Intent::Delete)
            .map(|i| i.index)
            .collect();
        used.sort_unstable();
        let mut added = Vec::new();
        let mut index = 0;
        while (added.len() as u32) < count {
            if used.binary_search(&index).is_err() {
                let id = self.next_id;
                self.next_id += 1;
                self.instances.insert(id, Instance::new(id, app, index));
                added.push(id);
            }
            index += 1;
        }
        self.spawn_instances(&added);
        added
    }
}

/// pm2's filter_env: the base environment without the variables whose names contain one of
/// `filters` (shared as is when there is nothing to filter).
pub(super) fn filtered_env(
    base: &Arc<BTreeMap<String, String>>,
    filters: &[String],
) -> Arc<BTreeMap<String, String>> {
    if filters.is_empty() {
        return base.clone();
    }
    Arc::new(
        base.iter()
            .filter(|(key, _)| !filters.iter().any(|f| key.contains(f.as_str())))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Every log file of the app can be opened (`logs::open`): a path that cannot be (a directory,
/// a missing parent it cannot create, a planted link) refuses the app, instead of every line
/// it writes being discarded.
pub(super) fn check_log_files(home: &crate::paths::Home, spec: &AppSpec) -> Result<(), ErrorReply> {
    crate::daemon::logs::open::check_paths(home, spec).map_err(|e| {
        ErrorReply::new(
            ErrorKind::InvalidSpec,
            format!("app \"{}\": {e}", spec.name),
        )
    })
}

/// The one validation (`config::check`), as the daemon answers it.
pub(super) fn check_spec(spec: &AppSpec) -> Result<(), ErrorReply> {
    crate::config::check::check_spec(spec).map_err(|e| ErrorReply::new(ErrorKind::InvalidSpec, e))
}
