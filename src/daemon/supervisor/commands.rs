//! Commands that reshape running apps: reload (with new definitions from a file), scale, the
//! saved process list (save, resurrect, cleardump) and log file maintenance (flush, reopen).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::actor::{OpKind, Supervisor};
use super::restart::Counters;
use super::state::Intent;
use super::Reply;
use crate::daemon::persist;
use crate::protocol::model::{AppSpec, InstanceState, InstanceView};
use crate::protocol::{ErrorKind, ErrorReply, ScaleChange, Target};

impl Supervisor {
    /// Reload the target's instances; `apps` may bring new definitions for its apps, and
    /// `base_env` a new base environment (see `update_base_env`).
    pub(super) fn reload(
        &mut self,
        target: &Target,
        apps: Vec<AppSpec>,
        parallel: u32,
        base_env: Option<BTreeMap<String, String>>,
        reply: Reply<super::Replaced>,
        report: Vec<u32>,
    ) {
        let ids = match self.resolve(target) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.update_base_env(&ids, base_env);
        let mut extra = report;
        match self.redefine(apps, "a reload keeps the sockets") {
            Ok(added) => extra.extend(added),
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        }
        let ids = self.not_being_stopped(ids);
        self.begin_reload(ids, parallel, Some(reply), extra);
    }

    /// pm2's --update-env: `env` becomes the base environment of the apps of instances `ids`,
    /// for the instances started from now on.
    fn update_base_env(&mut self, ids: &[u32], env: Option<BTreeMap<String, String>>) {
        let Some(env) = env else {
            return;
        };
        let env = Arc::new(env);
        let names: BTreeSet<String> = ids
            .iter()
            .filter_map(|id| self.instances.get(id).map(|i| i.app.clone()))
            .collect();
        for name in names {
            if let Some(app) = self.apps.get_mut(&name) {
                app.base_env = super::start::filtered_env(&env, &app.spec.filter_env);
            }
        }
    }

    /// Restart the target's instances; `apps` may bring new definitions for its apps, and
    /// `base_env` a new base environment.
    pub(super) fn restart(
        &mut self,
        target: &Target,
        apps: Vec<AppSpec>,
        base_env: Option<BTreeMap<String, String>>,
        reply: Reply<Vec<InstanceView>>,
    ) {
        let ids = match self.resolve(target) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.update_base_env(&ids, base_env);
        match self.redefine(apps, "a restart keeps the sockets") {
            Ok(added) => {
                let mut ids = self.not_being_stopped(ids);
                // Started with the new definition already: reported, not restarted again.
                ids.retain(|id| !added.contains(id));
                self.begin_op_ids(OpKind::Restart, ids, reply);
                if let Some(op) = self.ops.last_mut() {
                    op.ids.extend(added);
                }
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn not_being_stopped(&self, ids: Vec<u32>) -> Vec<u32> {
        ids.into_iter()
            .filter(|id| {
                self.instances
                    .get(id)
                    .is_some_and(|i| i.intent == Intent::None)
            })
            .collect()
    }

    /// Give running apps new definitions (from an ecosystem file): all or none. Instance count
    /// changes are applied at once: surplus instances go (as in scale down), missing ones start
    /// with the new definition (their ids are returned). Listen addresses and balance cannot
    /// change while the app runs (`why` says what keeps them).
    fn redefine(&mut self, apps: Vec<AppSpec>, why: &str) -> Result<Vec<u32>, ErrorReply> {
        for spec in &apps {
            super::start::check_spec(spec)?;
            super::start::check_log_files(&self.home, spec)?;
        }
        let apps: Vec<AppSpec> = apps
            .into_iter()
            .filter(|spec| self.apps.contains_key(&spec.name))
            .collect();
        if let Some(spec) = apps.iter().find(|spec| {
            self.apps
                .get(&spec.name)
                .is_some_and(|a| a.spec.cluster != spec.cluster)
        }) {
            return Err(ErrorReply::new(
                ErrorKind::InvalidSpec,
                format!(
                    "app \"{}\": its listen addresses or balance changed; {why}, so `rcluster delete {}` and start it again to change them",
                    spec.name, spec.name
                ),
            ));
        }
        let mut added = Vec::new();
        for spec in apps {
            let Some(app) = self.apps.get_mut(&spec.name) else {
                continue;
            };
            let wanted = spec.instances;
            let name = spec.name.clone();
            crate::daemon::logs::writer::respec(&app.log_tx, &spec);
            app.spec = spec;
            self.arm_cron(&name);
            self.rewatch(&name);
            let mut live = self.live_slots(&name);
            if live.len() as u32 > wanted {
                for (_, id) in live.split_off(wanted as usize) {
                    self.begin_stop(id, Intent::Delete);
                }
            } else if (live.len() as u32) < wanted {
                added.extend(self.add_instances(&name, wanted - live.len() as u32));
            }
        }
        Ok(added)
    }

    pub(super) fn scale(
        &mut self,
        name: &str,
        change: ScaleChange,
        reply: Reply<Vec<InstanceView>>,
    ) {
        if !self.apps.contains_key(name) {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorKind::NotFound,
                format!("no app named \"{name}\""),
            )));
            return;
        }
        let mut live = self.live_slots(name);
        let current = live.len() as i64;
        let wanted = match change {
            ScaleChange::To(n) => Some(i64::from(n)),
            ScaleChange::By(d) => current.checked_add(d),
        };
        let max = crate::config::check::MAX_INSTANCES;
        let Some(wanted) = wanted.filter(|w| (1..=i64::from(max)).contains(w)) else {
            let asked = match change {
                ScaleChange::To(n) => n.to_string(),
                ScaleChange::By(d) => format!(
                    "{current} {} {}",
                    if d < 0 { '-' } else { '+' },
                    d.unsigned_abs()
                ),
            };
            let _ = reply.send(Err(ErrorReply::new(
                ErrorKind::InvalidSpec,
                format!("app \"{name}\" cannot have {asked} instances: an app has 1 to {max}; `rcluster delete {name}` removes it"),
            )));
            return;
        };
        if let Some(app) = self.apps.get_mut(name) {
            app.spec.instances = wanted as u32;
        }
        crate::dlog!("app {name}: scaling from {current} to {wanted} instance(s)");
        if wanted >= current {
            self.add_instances(name, (wanted - current) as u32);
            let ids = self.ids_of(name);
            let views = self.views(&ids, false);
            let _ = reply.send(Ok(views));
        } else {
            // Removals drain like a reload: out of the rotation, queue redealt, then stopped.
            let surplus: Vec<u32> = live
                .split_off(wanted as usize)
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            self.begin_op_ids(OpKind::Delete, surplus, reply);
        }
    }

    /// `save`: every app, with the environment it was started with. An empty list never
    /// replaces a saved one unless forced (pm2's `save --force`): a fresh daemon after a crash
    /// runs nothing, and its `save` would erase what the crashed one ran.
    pub(super) fn save(&mut self, force: bool) -> Result<String, ErrorReply> {
        let path = self.home.dump();
        if self.apps.is_empty() && !force {
            let saved = persist::saved_apps(&self.home);
            let kept = match &saved {
                Some(names) if names.is_empty() => {
                    return Ok(format!(
                        "nothing saved: no app runs ({} holds an empty list already)",
                        path.display()
                    ))
                }
                Some(names) => format!(
                    "the saved list ({} app(s): {}) is kept (`rcluster resurrect` starts it; `rcluster save --force` saves an empty list)",
                    names.len(),
                    names.join(", ")
                ),
                None if path.exists() || self.home.legacy_dump().exists() => format!(
                    "{} is kept as it is (`rcluster save --force` saves an empty list)",
                    path.display()
                ),
                None => "there is no saved list (`rcluster save --force` saves an empty one)"
                    .to_owned(),
            };
            let previous = self
                .previous_run
                .as_ref()
                .map(|p| format!("{}; ", p.what()))
                .unwrap_or_default();
            return Ok(format!("nothing saved: {previous}no app runs, and {kept}"));
        }
        let apps: Vec<(persist::SavedApp, Vec<persist::InstanceNow>)> = self
            .apps
            .iter()
            .map(|(name, app)| {
                let mut slots: Vec<(u32, persist::InstanceNow)> = self
                    .instances
                    .values()
                    .filter(|i| i.app == *name && i.intent != Intent::Delete && !i.candidate)
                    .map(|i| {
                        let now = persist::InstanceNow {
                            state: i.state,
                            restarts: i.restarts,
                        };
                        (i.index, now)
                    })
                    .collect();
                slots.sort_by_key(|(index, _)| *index);
                let saved = persist::SavedApp {
                    spec: app.spec.clone(),
                    base_env: Some((*app.base_env).clone()),
                };
                (saved, slots.into_iter().map(|(_, now)| now).collect())
            })
            .collect();
        persist::save(&self.home, &apps).map_err(|e| ErrorReply::new(ErrorKind::Os, e))?;
        if force {
            self.previous_run = None;
        }
        Ok(format!("saved {} app(s) to {}", apps.len(), path.display()))
    }

    /// `resurrect`: start the saved apps that do not run, each with the environment it was
    /// saved with; also notes for the user (a fallback to the backup, skipped entries).
    pub(super) fn resurrect(&mut self, reply: Reply<(Vec<InstanceView>, Vec<String>)>) {
        let loaded = match persist::load(&self.home) {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = reply.send(Err(ErrorReply::new(ErrorKind::Os, e)));
                return;
            }
        };
        for note in &loaded.notes {
            crate::dlog!("resurrect: {note}");
        }
        // A saved list is a file anyone with the user's rights may have edited: each app is
        // checked as a start request is, and one bad app does not keep the others down.
        let mut refused = Vec::new();
        let missing: Vec<persist::SavedApp> = loaded
            .apps
            .into_iter()
            .filter(|s| !self.apps.contains_key(&s.spec.name))
            .filter(|s| match crate::config::check::check_spec(&s.spec) {
                Ok(()) => true,
                Err(e) => {
                    crate::dlog!("resurrect: refused: {}", e.escape_debug());
                    refused.push(e);
                    false
                }
            })
            .collect();
        crate::dlog!("resurrecting {} app(s)", missing.len());
        // A list saved without environments: the daemon's own is the base.
        let own: BTreeMap<String, String> = std::env::vars().collect();
        let started = missing.len();
        let apps = missing
            .into_iter()
            .map(|saved| (saved.spec, saved.base_env.unwrap_or_else(|| own.clone())))
            .collect();
        let answer = self
            .start_fresh_each(apps)
            .map(|ids| (self.views(&ids, false), loaded.notes));
        if refused.is_empty() || answer.is_err() {
            let _ = reply.send(answer);
            return;
        }
        let path = self.home.dump();
        let message = format!(
            "{}: {} saved app(s) refused, {started} resurrected: {}",
            path.display(),
            refused.len(),
            refused.join("; ")
        );
        let _ = reply.send(Err(ErrorReply::new(ErrorKind::InvalidSpec, message)));
    }

    pub(super) fn clear_dump(&mut self) -> Result<String, ErrorReply> {
        persist::clear(&self.home).map_err(|e| ErrorReply::new(ErrorKind::Os, e))
    }

    pub(super) fn flush_logs(&mut self, target: &Target) -> Result<String, ErrorReply> {
        let ids = self.resolve(target)?;
        let mut flushed = 0;
        for (_, app) in self.apps.iter().filter(|(name, _)| {
            ids.iter()
                .any(|id| self.instances.get(id).is_some_and(|i| &i.app == *name))
        }) {
            flushed += crate::daemon::logs::writer::flush(&app.log_tx);
        }
        Ok(format!("flushed the logs of {flushed} app(s)"))
    }

    /// pm2's sendSignal: `signal` to the main process of each running instance of the target
    /// (the program decides what it means: SIGUSR2 to reopen logs, SIGHUP to reread its
    /// configuration...). A crash it causes is handled like any other.
    pub(super) fn send_signal(
        &mut self,
        target: &Target,
        signal: &str,
    ) -> Result<String, ErrorReply> {
        let invalid = |e: String| ErrorReply::new(ErrorKind::InvalidSpec, e);
        let name = crate::config::units::parse_signal(signal).map_err(invalid)?;
        let signal = crate::config::units::signal_number(&name)
            .and_then(|n| Signal::try_from(n).ok())
            .ok_or_else(|| invalid(format!("{name} cannot be sent here")))?;
        let ids = self.resolve(target)?;
        let mut sent = 0;
        for id in ids {
            let Some(inst) = self.instances.get(&id) else {
                continue;
            };
            let running = matches!(inst.state, InstanceState::Online | InstanceState::Launching);
            let (Some(pid), true) = (inst.pid, running) else {
                continue;
            };
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) => sent += 1,
                // It ended meanwhile: the reaper reports it.
                Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => crate::dlog!("app {}: cannot send {name} to pid {pid}: {e}", inst.app),
            }
        }
        if sent == 0 {
            return Err(ErrorReply::new(
                ErrorKind::NotFound,
                format!("{target}: no running instance to send {name} to"),
            ));
        }
        Ok(format!("sent {name} to {sent} instance(s)"))
    }

    /// pm2's reset: the target's restart counts back to 0 (and the window of unstable
    /// restarts with them).
    pub(super) fn reset_counts(&mut self, target: &Target) -> Result<String, ErrorReply> {
        let ids = self.resolve(target)?;
        for id in &ids {
            if let Some(inst) = self.instances.get_mut(id) {
                inst.restarts = 0;
                inst.counters = Counters::default();
                // pm2's reset starts the unstable-restart window over from now.
                inst.created_ms = super::state::epoch_ms_now();
            }
        }
        Ok(format!(
            "reset the restart counts of {} instance(s)",
            ids.len()
        ))
    }

    /// pm2's `restart <id|name> --name NEW`: the app takes the new name, with its instances, log
    /// files (`<new>-out.log` from now on), watcher and cron; the CLI restarts it next, so its
    /// programs see the new RCLUSTER_APP. pm2 renames one process; an app is renamed whole.
    pub(super) fn rename(&mut self, target: &Target, name: &str) -> Result<String, ErrorReply> {
        let invalid = |e: String| ErrorReply::new(ErrorKind::InvalidSpec, e);
        let ids = self.resolve(target)?;
        let mut apps: Vec<String> = ids
            .iter()
            .filter_map(|id| self.instances.get(id).map(|i| i.app.clone()))
            .collect();
        apps.sort();
        apps.dedup();
        let [old] = apps.as_slice() else {
            return Err(invalid(format!(
                "--name renames one app, and {target} names {} ({})",
                apps.len(),
                apps.join(", ")
            )));
        };
        let old = old.clone();
        if old == name {
            return Ok(format!("app \"{name}\" keeps its name"));
        }
        crate::config::check::check_label(crate::config::check::Label::AppName, name)
            .map_err(invalid)?;
        if self.apps.contains_key(name) {
            return Err(ErrorReply::new(
                ErrorKind::Conflict,
                format!("cannot rename \"{old}\": an app named \"{name}\" exists already"),
            ));
        }
        let Some(mut app) = self.apps.remove(&old) else {
            return Err(invalid(format!("no app named \"{old}\"")));
        };
        app.spec.name = name.to_owned();
        crate::daemon::logs::writer::respec(&app.log_tx, &app.spec);
        if let Some(balancer) = app.balancer.as_mut() {
            balancer.rename(name);
        }
        for inst in self.instances.values_mut().filter(|i| i.app == old) {
            inst.app = name.to_owned();
        }
        self.apps.insert(name.to_owned(), app);
        self.arm_cron(name);
        self.rewatch(name);
        crate::dlog!("app {old}: renamed \"{name}\"");
        Ok(format!("app \"{old}\" is now \"{name}\""))
    }

    pub(super) fn reopen_logs(&mut self) -> Result<String, ErrorReply> {
        for app in self.apps.values() {
            crate::daemon::logs::writer::reopen(&app.log_tx);
        }
        Ok(format!(
            "reopening the log files of {} app(s)",
            self.apps.len()
        ))
    }
}
