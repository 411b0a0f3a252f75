//! An instance's life (its start is `launch`): exit (crash → restart policy), stop (signal the group, SIGKILL
//! after kill_timeout, wait for the whole group to be gone), and what follows a stop.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::actor::Supervisor;
use super::journal::What;
use super::restart::{decide, Counters, Decision};
use super::state::{Draining, Intent};
use super::timers::{Timer, TimerKind};
use crate::daemon::process::conns::drain;
use crate::daemon::process::kill::{group_alive, parse_signal, signal_group};
use crate::daemon::process::reaper::{ExitKind, Reaped};
use crate::protocol::event::{Cause, EventKind};
use crate::protocol::model::InstanceState;

/// `SIGKILL` for 9 (the number when the name is unknown).
fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_owned())
}

/// How often an instance with max_memory_restart has its memory read (pm2: 30 s).
const MEMORY_CHECK: Duration = Duration::from_secs(5);

/// How often a draining instance's open connections are counted.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

/// How often a stopped instance's leftover group is looked at, besides every reap.
const LINGER_CHECK: Duration = Duration::from_millis(100);

impl Supervisor {
    /// Begin stopping an instance; `intent` says what follows once its group is gone.
    pub(super) fn begin_stop(&mut self, id: u32, intent: Intent) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.intent != Intent::Delete {
            inst.intent = intent;
        }
        match (inst.state, inst.pgid) {
            (InstanceState::Stopping, _) => {}
            (InstanceState::Online | InstanceState::Launching, Some(_)) => {
                let Some(app) = self.apps.get_mut(&inst.app) else {
                    return;
                };
                // Out of rotation first: what waits in its queue goes to the others, so a
                // graceful stop loses no connection.
                let served = app.balancer.as_mut().map(|balancer| {
                    let served = balancer.served_by(id);
                    balancer.detach(id);
                    served
                });
                inst.end_run();
                inst.state = InstanceState::Stopping;
                inst.generation += 1;
                if let Some(served) = served {
                    // Let requests in flight on connections it was dealt finish first (up to
                    // kill_timeout), then signal.
                    let wait = Duration::from_millis(app.spec.kill_timeout_ms);
                    inst.draining = Some(Draining {
                        deadline: Instant::now() + wait,
                        served,
                        done_seen: false,
                    });
                    let timer = Timer {
                        id,
                        generation: inst.generation,
                        kind: TimerKind::DrainCheck,
                    };
                    self.timers.arm(Instant::now(), timer);
                } else {
                    self.send_stop_signal(id);
                }
            }
            _ => self.finish_stop(id),
        }
    }

    pub(super) fn arm_memory_check(&mut self, id: u32) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let limited = self
            .apps
            .get(&inst.app)
            .is_some_and(|a| a.spec.max_memory_restart.is_some());
        if limited {
            let timer = Timer {
                id,
                generation: inst.generation,
                kind: TimerKind::MemoryCheck,
            };
            self.timers.arm(Instant::now() + MEMORY_CHECK, timer);
        }
    }

    /// Over max_memory_restart: replace the instance by a graceful reload (new one ready, then
    /// the old one drained), as PRODUCT.md §3 asks, rather than a blunt restart.
    fn on_memory_check(&mut self, timer: Timer, now: Instant) {
        let Some(inst) = self.instances.get(&timer.id) else {
            return;
        };
        let Some(limit) = self
            .apps
            .get(&inst.app)
            .and_then(|a| a.spec.max_memory_restart)
        else {
            return;
        };
        let (Some(pid), InstanceState::Online) = (inst.pid, inst.state) else {
            return;
        };
        let rss = crate::daemon::process::stats::read(pid).map_or(0, |(_, rss)| rss);
        if rss > limit && !inst.candidate && inst.intent == Intent::None {
            let what = What::cause(Cause::Memory)
                .detail(format!("uses {rss} bytes, over max_memory_restart {limit}"));
            self.emit(timer.id, EventKind::Restart, what);
            self.begin_reload(vec![timer.id], 1, None, Vec::new());
        } else {
            self.timers.arm(now + MEMORY_CHECK, timer);
        }
    }

    /// kill_signal to the group now, SIGKILL after kill_timeout.
    fn send_stop_signal(&mut self, id: u32) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        inst.draining = None;
        if let Some(pgid) = inst.pgid {
            signal_group(pgid, parse_signal(&app.spec.kill_signal));
        }
        let timer = Timer {
            id,
            generation: inst.generation,
            kind: TimerKind::KillTimeout,
        };
        self.timers.arm(
            Instant::now() + Duration::from_millis(app.spec.kill_timeout_ms),
            timer,
        );
    }

    /// While draining: signal once its connections are done or the wait is over.
    fn on_drain_check(&mut self, timer: Timer, now: Instant) {
        // Connections still queued in a held socket it is leaving (a fork app's reload) are
        // its to accept: nothing else would.
        let queued = self
            .instances
            .get(&timer.id)
            .and_then(|inst| self.apps.get(&inst.app))
            .and_then(|app| app.balancer.as_ref())
            .map_or(0, |b| b.pending(timer.id));
        let Some(inst) = self.instances.get_mut(&timer.id) else {
            return;
        };
        let (Some(pgid), Some(draining)) = (inst.pgid, inst.draining.as_mut()) else {
            return;
        };
        let left = drain(pgid, &draining.served).unwrap_or_default();
        let done = left.is_done() && queued == 0;
        // Done twice in a row, a check apart: a connection the program was accepting during
        // the first look shows up by the second.
        if (done && draining.done_seen) || now >= draining.deadline {
            if !done {
                crate::dlog!(
                    "app {}: instance {} (id {}) still had {} connection(s) open, {} busy, {queued} queued, at kill_timeout: signalling it anyway",
                    inst.app,
                    inst.index,
                    timer.id,
                    left.open,
                    left.busy
                );
            }
            self.send_stop_signal(timer.id);
        } else {
            draining.done_seen = done;
            self.timers.arm(now + DRAIN_CHECK, timer);
        }
    }

    /// The instance's group is gone: do what the stop was for.
    fn finish_stop(&mut self, id: u32) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let restarting = inst.intent == Intent::Restart;
        if let Some(balancer) = self
            .apps
            .get_mut(&inst.app)
            .and_then(|a| a.balancer.as_mut())
        {
            balancer.release(id);
        }
        // A restart keeps its held ports: connections wait for the next run.
        if !restarting {
            self.retire_ports(id);
        }
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        inst.generation += 1;
        // A restart of an instance that was not running (stopped, errored, waiting to restart:
        // `begin_stop` came straight here) starts it: pm2 does not count that.
        let was_running = inst.state == InstanceState::Stopping;
        inst.pid = None;
        inst.pgid = None;
        let intent = std::mem::replace(&mut inst.intent, Intent::None);
        match intent {
            Intent::Stop | Intent::None => {
                inst.state = InstanceState::Stopped;
                inst.stopped_by_command = intent == Intent::Stop;
            }
            Intent::Restart => {
                if was_running {
                    inst.restarts += 1;
                }
                inst.created_ms = super::state::epoch_ms_now();
                inst.counters = Counters::default();
                self.spawn_instance(id);
            }
            Intent::Delete => {
                let app = inst.app.clone();
                let index = inst.index;
                self.instances.remove(&id);
                if let Some(balancer) = self.apps.get_mut(&app).and_then(|a| a.balancer.as_mut()) {
                    balancer.forget_index(index);
                }
                if !self.instances.values().any(|i| i.app == app) {
                    // Dropping the App drops its log sender; the writer ends after the captures.
                    self.apps.remove(&app);
                    self.journal.forget(&app);
                    crate::dlog!("app {}: deleted", app.escape_debug());
                    // Give the freed buffers of its instances back to the system: an idle
                    // daemon should not keep the peak of its busiest moment.
                    // SAFETY: malloc_trim only walks the allocator's own free lists.
                    unsafe { libc::malloc_trim(0) };
                }
            }
        }
    }

    pub(super) fn on_reaped(&mut self, reaped: Reaped) {
        match self.by_pid.remove(&reaped.pid) {
            Some(id) => self.on_main_exit(id, reaped.exit),
            // An orphaned grandchild: maybe the last member of a group we are waiting on.
            None => self.check_lingering(),
        }
    }

    fn on_main_exit(&mut self, id: u32, exit: ExitKind) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let uptime = inst.started_at.map_or(Duration::ZERO, |at| at.elapsed());
        let (code, signal) = match exit {
            ExitKind::Code(code) => (Some(code), None),
            ExitKind::Signal(sig) => (None, Some(signal_name(sig))),
        };
        let what = What {
            code,
            signal,
            uptime_ms: Some(uptime.as_millis() as u64),
            ..What::default()
        };
        self.emit(id, EventKind::Exit, what);
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        inst.pid = None;
        inst.end_run();
        if let Some(balancer) = self
            .apps
            .get_mut(&inst.app)
            .and_then(|a| a.balancer.as_mut())
        {
            // Its main process is gone: the channels can close.
            balancer.detach(id);
            balancer.release(id);
        }
        let pgid = inst.pgid;
        if inst.state == InstanceState::Stopping {
            match pgid {
                Some(pgid) if group_alive(pgid) => {
                    self.lingering.insert(pgid, id);
                    let timer = Timer {
                        id,
                        generation: inst.generation,
                        kind: TimerKind::LingerCheck,
                    };
                    self.timers.arm(Instant::now() + LINGER_CHECK, timer);
                }
                _ => self.finish_stop(id),
            }
            return;
        }
        // An exit nobody asked for. Leftovers of its group would keep ports and pipes: kill them
        // (systemd's KillMode=mixed does the same once the main process is gone).
        if let Some(pgid) = pgid.filter(|p| group_alive(*p)) {
            signal_group(pgid, Signal::SIGKILL);
        }
        inst.pgid = None;
        if inst.candidate {
            // A reload's new instance: no restart; the reload sees it and stops.
            inst.state = InstanceState::Errored;
            inst.reason = Some(format!("{exit} before it was ready"));
            self.retire_ports(id);
            return;
        }
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        let max_restarts = app.spec.max_restarts;
        let decision = decide(&app.spec, &mut inst.counters, exit, uptime);
        if !matches!(decision, Decision::Restart { .. }) {
            self.retire_ports(id);
        }
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        match decision {
            Decision::Restart { delay_ms: 0 } => {
                inst.restarts += 1;
                self.emit(id, EventKind::Restart, What::cause(Cause::Crash));
                self.spawn_instance(id);
            }
            Decision::Restart { delay_ms } => {
                inst.state = InstanceState::WaitingRestart;
                inst.reason = Some(format!("{exit}; restarting in {delay_ms} ms"));
                inst.generation += 1;
                let timer = Timer {
                    id,
                    generation: inst.generation,
                    kind: TimerKind::RestartDue,
                };
                self.timers
                    .arm(Instant::now() + Duration::from_millis(delay_ms), timer);
                let what = What::cause(Cause::Crash).detail(format!("in {delay_ms} ms"));
                self.emit(id, EventKind::Restart, what);
            }
            Decision::Stop { reason } => {
                inst.state = InstanceState::Stopped;
                inst.reason = Some(reason);
            }
            Decision::Errored { reason } => {
                let cause = if inst.counters.unstable > max_restarts {
                    Cause::Unstable
                } else {
                    Cause::Spawn
                };
                inst.state = InstanceState::Errored;
                inst.reason = Some(reason.clone());
                self.emit(id, EventKind::Errored, What::cause(cause).detail(reason));
            }
        }
    }

    /// Instance `id` will not run again by itself (stopped, errored, removed): the ports it
    /// holds close, as they would have without rcluster — unless a live instance of the same
    /// slot (a reload's new one, still coming up: not listening yet) takes them over.
    pub(super) fn retire_ports(&mut self, id: u32) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let successor = self
            .instances
            .values()
            .find(|i| {
                i.app == inst.app
                    && i.index == inst.index
                    && i.id != id
                    && i.intent == Intent::None
                    && i.pid.is_some()
                    && !i.listening
            })
            .map(|i| i.id);
        if let Some(balancer) = self
            .apps
            .get_mut(&inst.app)
            .and_then(|a| a.balancer.as_mut())
        {
            balancer.retire(id, successor);
        }
    }

    fn check_lingering(&mut self) {
        let gone: Vec<(i32, u32)> = self
            .lingering
            .iter()
            .filter(|(pgid, _)| !group_alive(**pgid))
            .map(|(pgid, id)| (*pgid, *id))
            .collect();
        for (pgid, id) in gone {
            self.lingering.remove(&pgid);
            self.finish_stop(id);
        }
    }

    pub(super) fn on_timers(&mut self, now: Instant) {
        for timer in self.timers.take_due(now) {
            match timer.kind {
                TimerKind::CronRestart => {
                    self.on_cron(timer.generation);
                    continue;
                }
                TimerKind::WatchRestart => {
                    self.on_watch_due(timer.generation);
                    continue;
                }
                _ => {}
            }
            let Some(inst) = self.instances.get_mut(&timer.id) else {
                continue;
            };
            if inst.generation != timer.generation {
                continue;
            }
            match timer.kind {
                TimerKind::KillTimeout if inst.state == InstanceState::Stopping => {
                    if let Some(pgid) = inst.pgid {
                        crate::dlog!(
                            "app {}: instance {} did not stop within kill_timeout; SIGKILL",
                            inst.app,
                            inst.index
                        );
                        signal_group(pgid, Signal::SIGKILL);
                    }
                    // The exit (or the group's emptying) finishes the stop.
                    let recheck = Timer {
                        kind: TimerKind::LingerCheck,
                        ..timer
                    };
                    self.timers.arm(now + LINGER_CHECK, recheck);
                }
                TimerKind::RestartDue if inst.state == InstanceState::WaitingRestart => {
                    // A start tried again (a passing shortage) is not another restart.
                    if inst.spawn_retries == 0 {
                        inst.restarts += 1;
                    }
                    self.spawn_instance(timer.id);
                }
                TimerKind::ListenCheck => self.on_listen_check(timer.id),
                TimerKind::MemoryCheck => self.on_memory_check(timer, now),
                TimerKind::DrainCheck if inst.state == InstanceState::Stopping => {
                    self.on_drain_check(timer, now)
                }
                TimerKind::LingerCheck if inst.state == InstanceState::Stopping => {
                    match inst.pgid {
                        Some(pgid) if inst.pid.is_none() && !group_alive(pgid) => {
                            self.lingering.remove(&pgid);
                            self.finish_stop(timer.id);
                        }
                        _ => self.timers.arm(now + LINGER_CHECK, timer),
                    }
                }
                _ => {}
            }
        }
    }
}
