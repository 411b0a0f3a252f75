//! The supervisor's side of `rcluster update`: refuse while anything is in motion (a stop, a
//! reload, an instance starting: their timers and tasks are not worth carrying), have the
//! output streams handed back, then in one step that lets no other task run: pause what moves
//! connections, describe apps and instances for the next image and re-execute. In that image,
//! rebuild them from the description.

use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::actor::Supervisor;
use super::node_channel;
use super::readiness::watch_notify;
use super::restart::Counters;
use super::state::{App, Instance, Intent};
use super::timers::{Timer, TimerKind};
use super::Reply;
use crate::daemon::balancer::{self, Balancer, PROXY_HANDOVER};
use crate::daemon::events::InstanceEvent;
use crate::daemon::handoff::{
    self, AppHandoff, FdsIn, FdsOut, Handoff, InstanceHandoff, OutputHandoff,
};
use crate::daemon::logs::capture::{self, resume_capture, CaptureSpec, HandedOutput};
use crate::daemon::logs::writer;
use crate::daemon::process::reaper::Reaped;
use crate::protocol::model::InstanceState;
use crate::protocol::{ErrorKind, ErrorReply};

/// How long dealers and proxy workers get to reach a pause, and log writers to catch up.
const PAUSE_LIMIT: Duration = Duration::from_secs(2);
/// How long the output streams and proxied connections get to be handed over. Meanwhile logs
/// are not read and proxied accepts wait in the kernel: a slow reader in the middle of a large
/// answer must not hold that for long (the update is then abandoned, and says why).
const HANDOVER_LIMIT: Duration = Duration::from_secs(3);

/// The daemon's own fds that an update carries: its lock and its control socket.
#[derive(Debug, Clone, Copy)]
pub struct HandoffFds {
    pub lock: RawFd,
    pub control: RawFd,
}

/// An update under way: the captures are handing their streams over; once they all have, the
/// last step runs without yielding to any other task, and re-executes.
pub struct PendingUpdate {
    exe: PathBuf,
    /// The `update` client's connection (the new image answers it).
    client: OwnedFd,
    /// Answers only a refusal: a success is answered by the new image, on `client`.
    reply: Reply<()>,
    since: Instant,
}

impl Supervisor {
    pub(super) fn begin_update(&mut self, exe: PathBuf, client: OwnedFd, reply: Reply<()>) {
        let refusal = if self.cluster.handoff_fds.is_none() {
            Some("this supervisor has no control socket to hand over".to_owned())
        } else if self.update.is_some() {
            Some("an update is already under way".to_owned())
        } else {
            self.update_blocker()
        };
        if let Some(why) = refusal {
            let refused = ErrorReply::new(ErrorKind::Conflict, format!("cannot update now: {why}"))
                .with_hint("try again in a moment");
            let _ = reply.send(Err(refused));
            return;
        }
        crate::dlog!("update to {}: handing over", exe.display());
        capture::HANDOVER.begin();
        PROXY_HANDOVER.begin();
        self.update = Some(PendingUpdate {
            exe,
            client,
            reply,
            since: Instant::now(),
        });
    }

    /// An update under way: once every stream is handed over, take in the events already
    /// queued, pause what moves connections, describe everything and re-execute. Anything that
    /// stands in the way abandons the update, with the reason for the client.
    pub(super) fn advance_update(
        &mut self,
        reaped: &mut mpsc::UnboundedReceiver<Reaped>,
        events: &mut mpsc::UnboundedReceiver<InstanceEvent>,
    ) {
        let Some(pending) = &self.update else { return };
        if let Some(why) = self.update_blocker() {
            return self.abandon_update(format!("cannot update now: {why}"));
        }
        if capture::HANDOVER.running() > 0 || PROXY_HANDOVER.running() > 0 {
            if pending.since.elapsed() > HANDOVER_LIMIT {
                self.abandon_update(
                    "output streams or proxied connections were not handed over in time (a proxied peer that does not read holds its connection mid-copy)".into(),
                );
            }
            return;
        }
        // From here to the exec nothing else runs: what tasks queued before is taken in now (it
        // may change the state: then look again at the next turn).
        let mut took = false;
        while let Ok(r) = reaped.try_recv() {
            self.on_reaped(r);
            took = true;
        }
        while let Ok(event) = events.try_recv() {
            self.on_instance_event(event);
            took = true;
        }
        if took {
            return;
        }
        if let Err(e) = balancer::pause_dealers(PAUSE_LIMIT) {
            return self.abandon_update(format!("cannot update: {e}"));
        }
        let frozen = match balancer::freeze_workers(PAUSE_LIMIT) {
            Ok(frozen) => frozen,
            Err(e) => {
                balancer::resume_dealers();
                return self.abandon_update(format!("cannot update now: {e}"));
            }
        };
        if let Some(app) = self
            .apps
            .values()
            .find(|app| !writer::sync_blocking(&app.log_tx, PAUSE_LIMIT))
        {
            let name = app.spec.name.clone();
            balancer::resume_dealers();
            drop(frozen);
            return self
                .abandon_update(format!("the log writer of app \"{name}\" did not catch up"));
        }
        let failure = self.reexec();
        balancer::resume_dealers();
        drop(frozen);
        crate::dlog!("update failed: {failure}");
        self.abandon_update(format!(
            "update failed, the daemon goes on unchanged: {failure}"
        ));
    }

    /// Describe everything and re-execute; returns only why the exec failed.
    fn reexec(&mut self) -> String {
        let (Some(pending), Some(own)) = (&self.update, self.cluster.handoff_fds) else {
            return "no update under way".into();
        };
        let handed = capture::HANDOVER.take();
        let conns = PROXY_HANDOVER.take();
        let mut fds = FdsOut::default();
        let now = Instant::now();
        let apps = self
            .apps
            .values()
            .map(|app| AppHandoff {
                spec: app.spec.clone(),
                base_env: (*app.base_env).clone(),
                balancer: app.balancer.as_ref().map(|b| b.export(&mut fds, &conns)),
                created_at: Some(app.created_at),
            })
            .collect();
        let mut instances: Vec<InstanceHandoff> = self
            .instances
            .values()
            .map(|inst| self.export_instance(inst, &mut fds, now))
            .collect();
        for output in &handed {
            if let Some(inst) = instances.iter_mut().find(|i| i.id == output.id) {
                inst.outputs.push(OutputHandoff {
                    stream: output.stream,
                    fd: fds.keep(&output.fd),
                    partial: output.partial.clone(),
                    skipping: output.skipping,
                });
            }
        }
        let mut handoff = Handoff {
            format: handoff::FORMAT,
            from_version: crate::protocol::VERSION.to_owned(),
            fds: Vec::new(),
            lock: fds.keep(&own.lock),
            control: fds.keep(&own.control),
            client: fds.keep(&pending.client),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            next_id: self.next_id,
            apps,
            instances,
        };
        handoff.fds = fds.kept();
        crate::dlog!("update: re-executing {}", pending.exe.display());
        let failure = handoff::exec(&pending.exe, &handoff, &fds);
        fds.restore();
        // Back where `abandon_update` takes them from.
        capture::HANDOVER.restore(handed);
        PROXY_HANDOVER.restore(conns);
        failure
    }

    /// The update does not happen: the streams go back to their captures, the client hears
    /// why, and everything goes on as before.
    fn abandon_update(&mut self, why: String) {
        let Some(pending) = self.update.take() else {
            return;
        };
        crate::dlog!("update abandoned: {why}");
        capture::HANDOVER.end();
        for output in capture::HANDOVER.take() {
            self.resume_output(output);
        }
        PROXY_HANDOVER.end();
        for conn in PROXY_HANDOVER.take() {
            match self.apps.get(&*conn.app).and_then(|a| a.balancer.as_ref()) {
                Some(balancer) => balancer.resume_proxied(conn),
                None => crate::dlog!("app {}: a proxied connection is lost", conn.app),
            }
        }
        let _ = pending
            .reply
            .send(Err(ErrorReply::new(ErrorKind::Conflict, why)));
    }

    /// What keeps an update from happening now, if anything.
    fn update_blocker(&self) -> Option<String> {
        if !self.ops.is_empty() {
            return Some("a stop, restart or delete is in progress".into());
        }
        if !self.reloads.is_empty() {
            return Some("a reload is in progress".into());
        }
        if !self.lingering.is_empty() {
            return Some("the leftover processes of a stopped instance are still ending".into());
        }
        for inst in self.instances.values() {
            let what = match inst.state {
                InstanceState::Launching => Some("is starting"),
                InstanceState::Stopping => Some("is stopping"),
                _ if inst.candidate || inst.intent != Intent::None || inst.draining.is_some() => {
                    Some("is being replaced or stopped")
                }
                _ => None,
            };
            if let Some(what) = what {
                return Some(format!(
                    "instance {} of app \"{}\" (id {}) {what}",
                    inst.index, inst.app, inst.id
                ));
            }
        }
        self.apps
            .values()
            .find(|app| app.watch.as_ref().is_some_and(|w| w.is_pending()))
            .map(|app| format!("a watch restart of app \"{}\" is due", app.spec.name))
    }

    fn export_instance(&self, inst: &Instance, fds: &mut FdsOut, now: Instant) -> InstanceHandoff {
        let due_in = |kind| {
            let timer = Timer {
                id: inst.id,
                generation: inst.generation,
                kind,
            };
            self.timers
                .due_of(timer)
                .map(|at| at.saturating_duration_since(now).as_millis() as u64)
        };
        InstanceHandoff {
            id: inst.id,
            public_id: Some(inst.public_id),
            app: inst.app.clone(),
            index: inst.index,
            state: inst.state,
            pid: inst.pid,
            pgid: inst.pgid,
            uptime_ms: inst.started_at.map(|at| at.elapsed().as_millis() as u64),
            created_ms: Some(inst.created_ms),
            started_ms: Some(inst.started_ms),
            restarts: inst.restarts,
            unstable: inst.counters.unstable,
            backoff_ms: inst.counters.backoff_ms,
            reason: inst.reason.clone(),
            status_text: inst.status_text.clone(),
            stopped_by_command: inst.stopped_by_command,
            ready: inst.ready,
            listening: inst.listening,
            restart_in_ms: (inst.state == InstanceState::WaitingRestart)
                .then(|| due_in(TimerKind::RestartDue))
                .flatten(),
            listen_check_in_ms: due_in(TimerKind::ListenCheck),
            outputs: Vec::new(),
            node_channel: inst.node_channel.as_ref().map(|fd| fds.keep(fd)),
            notify: match (&inst.notify_socket, &inst.notify_fd) {
                (Some(path), Some(fd)) => Some((path.clone(), fds.keep(fd))),
                _ => None,
            },
        }
    }

    fn resume_output(&self, output: HandedOutput) {
        let Some(inst) = self.instances.get(&output.id) else {
            return;
        };
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        let spec = CaptureSpec {
            id: inst.id,
            public_id: inst.public_id,
            index: inst.index,
            app: Arc::from(inst.app.as_str()),
            stream: output.stream,
        };
        resume_capture(output, spec, app.log_tx.clone());
    }

    /// The new image: take over what the previous one described.
    pub fn adopt(&mut self, handoff: Handoff, fds: &mut FdsIn) {
        self.next_id = handoff.next_id;
        self.started = Instant::now()
            .checked_sub(Duration::from_millis(handoff.uptime_ms))
            .unwrap_or_else(Instant::now);
        for carried in handoff.apps {
            self.adopt_app(carried, fds);
        }
        for carried in handoff.instances {
            self.adopt_instance(carried, fds);
        }
    }

    fn adopt_app(&mut self, carried: AppHandoff, fds: &mut FdsIn) {
        let spec = carried.spec;
        let name = spec.name.clone();
        // The record is one more way in: the same validation as a start. An app refused here
        // is not adopted, and its instances are stopped (`adopt_instance`) rather than left
        // running unsupervised.
        if let Err(e) = crate::config::check::check_spec(&spec) {
            crate::dlog!(
                "update: app refused, its instances are stopped: {}",
                e.escape_debug()
            );
            return;
        }
        let balancer = carried.balancer.and_then(|b| {
            let events = self.cluster.events.clone();
            let preload = self.cluster.preload.clone();
            Balancer::adopt(&spec, b, events, preload, fds)
                .map_err(|e| {
                    crate::dlog!(
                        "app {name}: its sockets could not be taken over ({e}); restart it"
                    )
                })
                .ok()
        });
        // A fork-mode app handed over by an image that held no ports gets its balancer now,
        // for the instances it starts from here on.
        let balancer = match balancer {
            Some(balancer) => Some(balancer),
            None if spec.cluster.listen.is_empty() && !spec.cluster.discover => {
                self.bind_cluster(&spec).ok().flatten()
            }
            None => None,
        };
        let watch = self.open_watch(&spec).unwrap_or_else(|e| {
            crate::dlog!("app {name}: {e}");
            None
        });
        let (log_tx, log_health) = self.log_writer(&spec);
        self.apps.insert(
            name.clone(),
            App {
                spec,
                base_env: Arc::new(carried.base_env),
                log_tx,
                log_health,
                balancer,
                cron: None,
                watch,
                created_at: carried
                    .created_at
                    .unwrap_or_else(super::state::epoch_ms_now),
            },
        );
        self.arm_cron(&name);
    }

    fn adopt_instance(&mut self, carried: InstanceHandoff, fds: &mut FdsIn) {
        let id = carried.id;
        let Some(app) = self.apps.get_mut(&carried.app) else {
            crate::dlog!(
                "instance id {id}: its app {} was not handed over; stopping it",
                carried.app.escape_debug()
            );
            if let Some(pgid) = carried.pgid.filter(|p| *p > 1) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return;
        };
        let mut inst = Instance::new(id, &carried.app, carried.index);
        inst.public_id = carried.public_id.unwrap_or(id);
        inst.state = carried.state;
        inst.pid = carried.pid;
        inst.pgid = carried.pgid;
        inst.started_at = carried
            .uptime_ms
            .and_then(|ms| Instant::now().checked_sub(Duration::from_millis(ms)));
        let now_ms = super::state::epoch_ms_now();
        let since_start = carried.uptime_ms.map(|ms| now_ms.saturating_sub(ms));
        inst.started_ms = carried.started_ms.or(since_start).unwrap_or(0);
        inst.created_ms = carried.created_ms.or(since_start).unwrap_or(now_ms);
        inst.restarts = carried.restarts;
        inst.counters = Counters {
            unstable: carried.unstable,
            backoff_ms: carried.backoff_ms,
        };
        inst.reason = carried.reason;
        inst.status_text = carried.status_text;
        inst.stopped_by_command = carried.stopped_by_command;
        inst.ready = carried.ready;
        inst.listening = carried.listening;
        let events = self.cluster.events.clone();
        if let Some(fd) = carried.node_channel {
            match fds
                .take(fd)
                .and_then(|fd| node_channel::watch(fd, id, events.clone()))
            {
                Ok(watched) => {
                    inst.node_channel = Some(watched.kept);
                    inst.run_tasks.push(watched.task);
                }
                Err(e) => crate::dlog!("instance id {id}: Node channel lost: {e}"),
            }
        }
        if let Some((path, fd)) = carried.notify {
            match fds
                .take(fd)
                .and_then(|fd| watch_notify(fd, id, events.clone()))
            {
                Ok(watched) => {
                    inst.notify_socket = Some(path);
                    inst.notify_fd = Some(watched.kept);
                    inst.run_tasks.push(watched.task);
                }
                Err(e) => crate::dlog!("instance id {id}: NOTIFY_SOCKET lost: {e}"),
            }
        }
        if let (Some(balancer), Some(pid)) = (app.balancer.as_mut(), inst.pid) {
            if balancer.awaits_probe(id) {
                balancer.started(id, pid as u32);
            }
        }
        if let Some(pid) = inst.pid {
            self.by_pid.insert(pid, id);
        }
        let now = Instant::now();
        for (due_in, kind) in [
            (carried.restart_in_ms, TimerKind::RestartDue),
            (carried.listen_check_in_ms, TimerKind::ListenCheck),
        ] {
            if let Some(ms) = due_in.map(|ms| ms.min(crate::config::check::MAX_DURATION_MS)) {
                let timer = Timer {
                    id,
                    generation: inst.generation,
                    kind,
                };
                self.timers.arm(now + Duration::from_millis(ms), timer);
            }
        }
        let running = inst.pid.is_some();
        self.instances.insert(id, inst);
        for output in carried.outputs {
            match fds.take(output.fd) {
                Ok(fd) => self.resume_output(HandedOutput {
                    id,
                    stream: output.stream,
                    fd,
                    partial: output.partial,
                    skipping: output.skipping,
                }),
                Err(e) => crate::dlog!("instance id {id}: output stream lost: {e}"),
            }
        }
        if running {
            self.arm_memory_check(id);
        }
    }
}
