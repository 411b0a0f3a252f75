//! The supervisor loop: commands from connections, exits from the reaper and due timers, each
//! handled without waiting; then pending commands (stop, restart, delete, kill) whose instances
//! have settled are answered. Nothing here blocks except spawning a child (fork+exec).

use std::collections::{BTreeMap, HashMap, HashSet};

use std::path::PathBuf;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::time::Instant;

use super::handoff::PendingUpdate;
use super::journal::What;
use super::reload::Reload;
use super::state::{App, Instance, Intent};
use super::timers::Timers;
use super::{Cmd, LogFile, LogSources, PingInfo, Reply};
use crate::daemon::events::InstanceEvent;
use crate::daemon::logs::log_path;
use crate::daemon::logs::writer::{files_of, Followers};
use crate::daemon::process::reaper::Reaped;
use crate::paths::Home;
use crate::protocol::event::{Cause, EventKind};
use crate::protocol::model::{AppDetail, InstanceState, InstanceView, DEFAULT_NAMESPACE};
use crate::protocol::{ErrorKind, ErrorReply, Target};

/// How often an update waiting for the output streams looks again.
const UPDATE_POLL: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Stop,
    Restart,
    Delete,
    Kill,
}

/// A command waiting for its instances to settle.
pub(super) struct Op {
    pub kind: OpKind,
    pub ids: Vec<u32>,
    pub reply: Reply<Vec<InstanceView>>,
}

pub struct Supervisor {
    pub(super) home: Home,
    pub(super) apps: BTreeMap<String, App>,
    pub(super) instances: BTreeMap<u32, Instance>,
    pub(super) next_id: u32,
    /// Names each arming of an app's cron_restart or watch timer (`cron`, `watching`).
    pub(super) next_app_token: u64,
    pub(super) by_pid: HashMap<i32, u32>,
    /// Groups whose main process ended during a stop while other members lived on.
    pub(super) lingering: HashMap<i32, u32>,
    pub(super) timers: Timers,
    pub(super) ops: Vec<Op>,
    pub(super) reloads: Vec<Reload>,
    end_waiters: Vec<tokio::sync::oneshot::Sender<bool>>,
    pub(super) followers: Followers,
    /// Lifecycle records (`journal`): the daemon log, recent history, live subscribers.
    pub(super) journal: super::journal::Journal,
    pub(super) cluster: ClusterContext,
    pub(super) started: Instant,
    pub(super) exiting: bool,
    /// Agreed to by `update`: what the daemon hands to its next image.
    pub(super) update: Option<PendingUpdate>,
    /// The previous daemon ended uncleanly, and no app has been started since.
    pub(super) previous_run: Option<crate::daemon::previous_run::PreviousRun>,
}

/// What cluster mode needs from the daemon: where balancer events go, the preload library
/// and the trampoline binary.
pub struct ClusterContext {
    pub events: UnboundedSender<InstanceEvent>,
    pub preload: Option<PathBuf>,
    pub trampoline: PathBuf,
    /// The daemon's lock and control socket, for `update` (none in `rcluster run`).
    pub handoff_fds: Option<super::HandoffFds>,
}

impl Supervisor {
    pub fn new(home: Home, followers: Followers, cluster: ClusterContext) -> Supervisor {
        Supervisor {
            home,
            apps: BTreeMap::new(),
            instances: BTreeMap::new(),
            next_id: 0,
            next_app_token: 0,
            by_pid: HashMap::new(),
            lingering: HashMap::new(),
            timers: Timers::default(),
            ops: Vec::new(),
            reloads: Vec::new(),
            end_waiters: Vec::new(),
            followers,
            journal: super::journal::Journal::default(),
            cluster,
            started: Instant::now(),
            exiting: false,
            update: None,
            previous_run: None,
        }
    }

    /// The previous daemon of this home ended uncleanly (see `previous_run`).
    pub fn set_previous_run(&mut self, previous: Option<crate::daemon::previous_run::PreviousRun>) {
        self.previous_run = previous;
    }

    /// Run until a `Kill` has been answered or every handle is gone (an `update` that succeeds
    /// re-executes the daemon from in here).
    pub async fn run(
        &mut self,
        cmds: &mut mpsc::Receiver<Cmd>,
        reaped: &mut mpsc::UnboundedReceiver<Reaped>,
        instance_events: &mut mpsc::UnboundedReceiver<InstanceEvent>,
    ) {
        while !self.exiting {
            let deadline = self.timers.next_deadline();
            let updating = self.update.is_some();
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None => break,
                },
                Some(r) = reaped.recv() => self.on_reaped(r),
                Some(event) = instance_events.recv() => self.on_instance_event(event),
                () = sleep_until(deadline) => self.on_timers(Instant::now()),
                // While the output streams are handed over: look again shortly.
                () = tokio::time::sleep(UPDATE_POLL), if updating => {}
            }
            self.settle_ops();
            self.advance_reloads();
            self.answer_end_waiters();
            if self.update.is_some() {
                self.advance_update(reaped, instance_events);
            }
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Ping { reply } => {
                let _ = reply.send(PingInfo {
                    uptime_ms: self.started.elapsed().as_millis() as u64,
                    apps: self.apps.len(),
                    instances: self.instances.len(),
                });
            }
            Cmd::Start {
                apps,
                base_env,
                if_running,
                reply,
            } => self.start(apps, base_env, if_running, reply),
            Cmd::Reload {
                target,
                apps,
                parallel,
                base_env,
                reply,
            } => self.reload(&target, apps, parallel, base_env, reply, Vec::new()),
            Cmd::Scale { app, change, reply } => self.scale(&app, change, reply),
            Cmd::Save { force, reply } => {
                let _ = reply.send(self.save(force));
            }
            Cmd::Notice { reply } => {
                let saved = crate::daemon::persist::saved_apps(&self.home);
                let notice = self
                    .previous_run
                    .as_ref()
                    .map(|p| p.notice(saved.as_deref()));
                let _ = reply.send(notice);
            }
            Cmd::Resurrect { reply } => self.resurrect(reply),
            Cmd::ClearDump { reply } => {
                let _ = reply.send(self.clear_dump());
            }
            Cmd::Flush { target, reply } => {
                let _ = reply.send(self.flush_logs(&target));
            }
            Cmd::ReloadLogs { reply } => {
                let _ = reply.send(self.reopen_logs());
            }
            Cmd::Signal {
                target,
                signal,
                reply,
            } => {
                let _ = reply.send(self.send_signal(&target, &signal));
            }
            Cmd::Reset { target, reply } => {
                let _ = reply.send(self.reset_counts(&target));
            }
            Cmd::Rename {
                target,
                name,
                reply,
            } => {
                let _ = reply.send(self.rename(&target, &name));
            }
            Cmd::List { reply } => {
                let all: Vec<u32> = self.instances.keys().copied().collect();
                let _ = reply.send(self.views(&all, true));
            }
            Cmd::Describe { target, reply } => {
                let _ = reply.send(self.describe(&target));
            }
            Cmd::Stop { target, reply } => self.begin_op(OpKind::Stop, &target, reply),
            Cmd::Restart {
                target,
                apps,
                base_env,
                reply,
            } => self.restart(&target, apps, base_env, reply),
            Cmd::Delete { target, reply } => self.begin_op(OpKind::Delete, &target, reply),
            Cmd::Kill { reply } => self.begin_op(OpKind::Kill, &Target::All, reply),
            Cmd::Update { exe, client, reply } => self.begin_update(exe, client, reply),
            Cmd::WhenAllEnded { reply } => self.end_waiters.push(reply),
            Cmd::LogSources { target, reply } => {
                let _ = reply.send(self.log_sources(&target));
            }
        }
    }

    fn describe(&mut self, target: &Target) -> Result<Vec<AppDetail>, ErrorReply> {
        let ids = self.resolve(target)?;
        let mut names: Vec<String> = Vec::new();
        for id in &ids {
            if let Some(inst) = self.instances.get(id) {
                if !names.contains(&inst.app) {
                    names.push(inst.app.clone());
                }
            }
        }
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let app = self.apps.get(&name)?;
                Some((app.spec.clone(), self.ids_of(&name)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(spec, ids)| AppDetail {
                spec,
                instances: self.views(&ids, true),
            })
            .collect())
    }

    fn log_sources(&self, target: &Target) -> Result<LogSources, ErrorReply> {
        let ids = match target {
            // `logs` with no app while nothing runs is not an error: it just follows.
            Target::All => self.instances.keys().copied().collect(),
            other => self.resolve(other)?,
        };
        let mut apps: HashSet<String> = HashSet::new();
        let mut files = Vec::new();
        for id in &ids {
            if let Some(inst) = self.instances.get(id) {
                if apps.insert(inst.app.clone()) {
                    if let Some(app) = self.apps.get(&inst.app) {
                        let all: Vec<(u32, u32)> = self
                            .instances
                            .values()
                            .filter(|i| i.app == inst.app)
                            .map(|i| (i.index, i.public_id))
                            .collect();
                        let indexes: Vec<u32> = match target {
                            Target::Id(_) => vec![inst.index],
                            _ => all.iter().map(|(index, _)| *index).collect(),
                        };
                        for (stream, path) in files_of(&self.home, &app.spec, &indexes) {
                            // The id of the one instance whose lines the file holds, if so.
                            let mut writers = all.iter().filter(|(index, _)| {
                                log_path(&self.home, &app.spec, stream, *index).as_ref()
                                    == Some(&path)
                            });
                            let first = writers.next().map(|(_, id)| *id);
                            let id = first.filter(|id| writers.all(|(_, other)| other == id));
                            let logs = &app.spec.logs;
                            files.push(LogFile {
                                app: inst.app.clone(),
                                stream,
                                path,
                                id,
                                stamped: !logs.json && (logs.time || logs.date_format.is_some()),
                            });
                        }
                    }
                }
            }
        }
        let mut sources = LogSources {
            files,
            apps: if matches!(target, Target::All) {
                HashSet::new()
            } else {
                apps
            },
            // Live lines of one instance: by app and index, which a reload's new instance
            // keeps (its internal id is new).
            instance: match target {
                Target::Id(_) => ids
                    .first()
                    .and_then(|id| self.instances.get(id))
                    .map(|i| (i.app.clone(), i.index)),
                _ => None,
            },
            live: self.followers.subscribe(),
            history: Vec::new(),
            events: self.journal.subscribe(),
        };
        sources.history = self
            .journal
            .history(|event| sources.wants(&event.app, event.instance));
        Ok(sources)
    }

    /// Instance ids a target names; an unknown name or id is an error.
    pub(super) fn resolve(&self, target: &Target) -> Result<Vec<u32>, ErrorReply> {
        let by_name = |name: &str| -> Result<Vec<u32>, ErrorReply> {
            // A name that no app has may name a namespace (pm2's rule: the app wins).
            let in_namespace: Vec<&str> = self
                .apps
                .values()
                .filter(|a| a.spec.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE) == name)
                .map(|a| a.spec.name.as_str())
                .collect();
            if !self.apps.contains_key(name) && !in_namespace.is_empty() {
                return Ok(in_namespace
                    .iter()
                    .flat_map(|app| self.ids_of(app))
                    .collect());
            }
            if !self.apps.contains_key(name) {
                return Err(ErrorReply::new(
                    ErrorKind::NotFound,
                    format!("no app named \"{name}\""),
                )
                .with_hint("`rcluster list` shows the apps"));
            }
            Ok(self.ids_of(name))
        };
        match target {
            Target::All => Ok(self.instances.keys().copied().collect()),
            Target::Id(id) if self.instances.values().any(|i| i.public_id == *id) => Ok(self
                .instances
                .values()
                .filter(|i| i.public_id == *id)
                .map(|i| i.id)
                .collect()),
            Target::Id(id) => Err(ErrorReply::new(
                ErrorKind::NotFound,
                format!("no instance with id {id}"),
            )
            .with_hint("`rcluster list` shows the ids")),
            Target::Name(name) => by_name(name),
            Target::Names(names) => {
                let mut ids = Vec::new();
                for name in names {
                    ids.extend(by_name(name)?);
                }
                Ok(ids)
            }
        }
    }

    /// Ids of every instance of `app`.
    pub(super) fn ids_of(&self, app: &str) -> Vec<u32> {
        self.instances
            .values()
            .filter(|i| i.app == app)
            .map(|i| i.id)
            .collect()
    }

    /// (index, id) of the instances of `app` that count towards its size: not being deleted,
    /// not a reload's new instance; by index.
    pub(super) fn live_slots(&self, app: &str) -> Vec<(u32, u32)> {
        let mut live: Vec<(u32, u32)> = self
            .instances
            .values()
            .filter(|i| i.app == app && i.intent != Intent::Delete && !i.candidate)
            .map(|i| (i.index, i.id))
            .collect();
        live.sort_unstable();
        live
    }

    pub(super) fn views(&mut self, ids: &[u32], with_stats: bool) -> Vec<InstanceView> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(inst) = self.instances.get_mut(id) else {
                continue;
            };
            let Some(app) = self.apps.get(&inst.app) else {
                continue;
            };
            if with_stats {
                inst.refresh_stats();
            }
            out.push(inst.view(&self.home, app));
        }
        out
    }

    pub(super) fn begin_op(
        &mut self,
        kind: OpKind,
        target: &Target,
        reply: Reply<Vec<InstanceView>>,
    ) {
        match self.resolve(target) {
            Ok(ids) => self.begin_op_ids(kind, ids, reply),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    pub(super) fn begin_op_ids(
        &mut self,
        kind: OpKind,
        ids: Vec<u32>,
        reply: Reply<Vec<InstanceView>>,
    ) {
        let intent = match kind {
            OpKind::Stop | OpKind::Kill => Intent::Stop,
            OpKind::Restart => Intent::Restart,
            OpKind::Delete => Intent::Delete,
        };
        self.ops.push(Op {
            kind,
            ids: ids.clone(),
            reply,
        });
        for id in ids {
            let running = self.instances.get(&id).is_some_and(|i| {
                matches!(
                    i.state,
                    InstanceState::Online
                        | InstanceState::Launching
                        | InstanceState::WaitingRestart
                )
            });
            let event = match kind {
                OpKind::Restart => Some(EventKind::Restart),
                OpKind::Delete => Some(EventKind::Delete),
                OpKind::Stop | OpKind::Kill => running.then_some(EventKind::Stop),
            };
            if let Some(event) = event {
                self.emit(id, event, What::cause(Cause::Command));
            }
            self.begin_stop(id, intent);
        }
    }

    fn answer_end_waiters(&mut self) {
        if self.end_waiters.is_empty() || !self.ops.is_empty() || !self.reloads.is_empty() {
            return;
        }
        if !self
            .instances
            .values()
            .all(|i| i.is_settled() && i.pgid.is_none())
        {
            return;
        }
        let errored = self
            .instances
            .values()
            .any(|i| i.state == crate::protocol::model::InstanceState::Errored);
        for waiter in self.end_waiters.drain(..) {
            let _ = waiter.send(errored);
        }
    }

    fn settle_ops(&mut self) {
        let mut index = 0;
        while index < self.ops.len() {
            if !self.op_settled(&self.ops[index]) {
                index += 1;
                continue;
            }
            let op = self.ops.remove(index);
            let remaining: Vec<u32> = op
                .ids
                .iter()
                .copied()
                .filter(|id| self.instances.contains_key(id))
                .collect();
            let views = self.views(&remaining, false);
            let _ = op.reply.send(Ok(views));
            if op.kind == OpKind::Kill {
                self.exiting = true;
            }
        }
    }

    fn op_settled(&self, op: &Op) -> bool {
        op.ids.iter().all(|id| match self.instances.get(id) {
            None => true,
            Some(inst) => match op.kind {
                OpKind::Stop | OpKind::Kill => inst.is_settled(),
                OpKind::Restart => inst.intent != Intent::Restart,
                OpKind::Delete => false,
            },
        })
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
