//! cron_restart (pm2's): at each time the app's pattern matches, its instances are replaced —
//! a cluster app's by a rolling graceful reload (no connection lost, as for max_memory_restart),
//! a fork app's by a restart — and instances that had ended by themselves (a periodic job with
//! autorestart off, an errored one) start again. An instance stopped with `stop` stays stopped.
//! Times are wall-clock local times; the timer runs on the monotonic clock, so a due time is
//! checked against the wall clock again when it fires.

use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::time::Instant;

use super::actor::Supervisor;
use super::journal::What;
use super::state::Intent;
use super::timers::{Timer, TimerKind};
use crate::config::cron::CronPattern;
use crate::protocol::event::{Cause, EventKind};
use crate::protocol::model::InstanceState;

pub struct CronState {
    token: u64,
    due: DateTime<Local>,
}

impl Supervisor {
    /// (Re)arm `app`'s cron_restart from its spec: the next match after now.
    pub(super) fn arm_cron(&mut self, app: &str) {
        self.arm_cron_after(app, Local::now());
    }

    fn arm_cron_after(&mut self, name: &str, after: DateTime<Local>) {
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        app.cron = None;
        let Some(expr) = app.spec.cron_restart.as_deref() else {
            return;
        };
        let pattern = match CronPattern::parse(expr) {
            Ok(pattern) => pattern,
            Err(e) => {
                crate::dlog!("app {name}: cron_restart ignored: {e}");
                return;
            }
        };
        let Some(due) = pattern.next_after(&after) else {
            crate::dlog!("app {name}: cron_restart `{expr}` never matches again");
            return;
        };
        self.next_app_token += 1;
        let token = self.next_app_token;
        app.cron = Some(CronState { token, due });
        self.arm_cron_timer(token, due);
    }

    fn arm_cron_timer(&mut self, token: u64, due: DateTime<Local>) {
        let wait = (due - Local::now()).to_std().unwrap_or(Duration::ZERO);
        let timer = Timer {
            id: 0,
            generation: token,
            kind: TimerKind::CronRestart,
        };
        self.timers.arm(Instant::now() + wait, timer);
    }

    pub(super) fn on_cron(&mut self, token: u64) {
        let Some((name, due)) = self.apps.iter().find_map(|(name, app)| {
            app.cron
                .as_ref()
                .filter(|c| c.token == token)
                .map(|c| (name.clone(), c.due))
        }) else {
            return; // re-armed or removed since
        };
        if Local::now() < due {
            // The wall clock was set back while we waited: wait for the real time.
            self.arm_cron_timer(token, due);
            return;
        }
        let pattern = self
            .apps
            .get(&name)
            .and_then(|a| a.spec.cron_restart.clone());
        crate::dlog!(
            "app {name}: cron_restart `{}` is due: restarting",
            pattern.unwrap_or_default()
        );
        self.restart_for_trigger(&name, true, Cause::Cron);
        // From the due time, not from now: a tick is never taken twice.
        self.arm_cron_after(&name, due.max(Local::now()));
    }

    /// Replace the app's instances for a trigger (cron_restart, watch): a cluster app's live
    /// instances by a rolling graceful reload when `graceful`, otherwise by a restart; instances
    /// that ended by themselves start again; those stopped with `stop` stay stopped.
    pub(super) fn restart_for_trigger(&mut self, name: &str, graceful: bool, cause: Cause) {
        let graceful = graceful
            && self
                .apps
                .get(name)
                .and_then(|a| a.balancer.as_ref())
                .is_some_and(|b| !b.is_fork());
        let mut live = Vec::new();
        let mut ended = Vec::new();
        for id in self.ids_of(name) {
            let Some(inst) = self.instances.get(&id) else {
                continue;
            };
            if inst.intent != Intent::None || inst.candidate {
                continue; // already being stopped, restarted or reloaded
            }
            match inst.state {
                InstanceState::Online | InstanceState::Launching => live.push(id),
                InstanceState::Stopped if inst.stopped_by_command => {}
                InstanceState::Stopped | InstanceState::Errored => ended.push(id),
                _ => {}
            }
        }
        for id in live.iter().chain(&ended) {
            self.emit(*id, EventKind::Restart, What::cause(cause));
        }
        if graceful && !live.is_empty() {
            self.begin_reload(live, 1, None, Vec::new());
        } else {
            ended.extend(live);
        }
        for id in ended {
            self.begin_stop(id, Intent::Restart);
        }
    }
}
