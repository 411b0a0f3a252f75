//! Rolling reload (PRODUCT.md §5) as a state machine advanced by events: for each old instance,
//! start a new one for the same index, wait until it is READY, then stop the old one (it leaves
//! the rotation first and its queue is redealt, then kill_signal, kill_timeout, SIGKILL), then
//! the next — `parallel` at a time. A new instance that exits or never gets ready aborts the
//! reload: it is removed, the old instances keep serving, and the command gets the reason.
//!
//! Where no zero-downtime path exists for an instance — a fork-mode program that holds no port
//! through the daemon (a static binary the preload cannot reach, a program that binds none, or
//! one still starting) — it is restarted instead (stop, then start), as pm2 reloads a fork app,
//! and the reply says so in a note. A reload that no command waits for (max_memory_restart,
//! cron_restart) restarts the old instances if their replacement fails: they must go anyway.

use std::collections::VecDeque;

use super::actor::Supervisor;
use super::cluster::static_program;
use super::journal::What;
use super::state::{Instance, Intent};
use super::{Replaced, Reply};
use crate::protocol::event::{Cause, EventKind};
use crate::protocol::model::InstanceState;
use crate::protocol::{ErrorKind, ErrorReply};

enum Step {
    /// A new instance for the old one's slot; once it is ready the old one goes.
    Swap { old: u32, new: u32, promoted: bool },
    /// No zero-downtime path: the instance is restarted in place.
    Restart { id: u32 },
}

/// What happens when a new instance fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnFailure {
    /// The reload stops; the old instances keep serving (a command, which reports the reason).
    KeepOld,
    /// The old instances are restarted (max_memory_restart, cron_restart: they must go).
    Restart,
}

pub(super) struct Reload {
    pending: VecDeque<u32>,
    active: Vec<Step>,
    parallel: usize,
    reply: Option<Reply<Replaced>>,
    /// Ids to report when done: the new instances, plus any the request started besides.
    report: Vec<u32>,
    failed: Option<String>,
    on_failure: OnFailure,
    /// One line per instance restarted instead of reloaded.
    notes: Vec<String>,
}

impl Supervisor {
    /// Replace `old_ids` one by one (`parallel` at a time); answer `reply` when done.
    pub(super) fn begin_reload(
        &mut self,
        old_ids: Vec<u32>,
        parallel: u32,
        reply: Option<Reply<Replaced>>,
        report: Vec<u32>,
    ) {
        let on_failure = match reply {
            Some(_) => OnFailure::KeepOld,
            None => OnFailure::Restart,
        };
        let old_ids: Vec<u32> = old_ids
            .into_iter()
            .filter(|id| {
                self.instances
                    .get(id)
                    .is_some_and(|i| !i.candidate && i.intent == Intent::None)
            })
            .filter(|id| !self.reloads.iter().any(|r| r.involves(*id)))
            .collect();
        self.reloads.push(Reload {
            pending: old_ids.into(),
            active: Vec::new(),
            parallel: parallel.max(1) as usize,
            reply,
            report,
            failed: None,
            on_failure,
            notes: Vec::new(),
        });
    }

    /// Move every reload forward; called after each event the supervisor handles.
    pub(super) fn advance_reloads(&mut self) {
        let mut index = 0;
        while index < self.reloads.len() {
            let mut reload = self.reloads.remove(index);
            if reload.failed.is_none() {
                self.advance(&mut reload);
                if reload.failed.is_some() {
                    self.abandon_candidates(&reload);
                }
            }
            // A failed reload answers once its new instances are gone, so the caller sees the
            // app exactly as before.
            let finished = match reload.failed {
                Some(_) => !reload.active.iter().any(|s| match s {
                    Step::Swap {
                        new,
                        promoted: false,
                        ..
                    } => self.instances.contains_key(new),
                    _ => false,
                }),
                None => reload.pending.is_empty() && reload.active.is_empty(),
            };
            if finished {
                self.finish_reload(reload);
            } else {
                self.reloads.insert(index, reload);
                index += 1;
            }
        }
    }

    fn advance(&mut self, reload: &mut Reload) {
        loop {
            let mut progressed = false;
            let mut still_active = Vec::new();
            for step in std::mem::take(&mut reload.active) {
                match self.advance_step(step, reload) {
                    (Some(step), moved) => {
                        progressed |= moved;
                        still_active.push(step);
                    }
                    (None, _) => progressed = true,
                }
            }
            reload.active = still_active;
            if reload.failed.is_some() {
                return;
            }
            while reload.active.len() < reload.parallel {
                let Some(old) = reload.pending.pop_front() else {
                    break;
                };
                if let Some(step) = self.begin_step(old, reload) {
                    reload.active.push(step);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// One step forward: the step if it goes on (and whether it moved), None once done.
    fn advance_step(&mut self, step: Step, reload: &mut Reload) -> (Option<Step>, bool) {
        match step {
            Step::Restart { id } => {
                let done = self
                    .instances
                    .get(&id)
                    .is_none_or(|i| i.intent != Intent::Restart);
                if done {
                    reload.report.push(id);
                    return (None, true);
                }
                (Some(step), false)
            }
            Step::Swap {
                old,
                new,
                mut promoted,
            } => {
                let mut moved = false;
                if !promoted {
                    match self.candidate_status(new) {
                        CandidateStatus::Ready => {
                            promoted = true;
                            moved = true;
                            if let Some(inst) = self.instances.get_mut(&new) {
                                inst.candidate = false;
                            }
                            self.emit_reload_ready(old, new);
                            self.begin_stop(old, Intent::Delete);
                        }
                        CandidateStatus::Failed(reason) => {
                            let (app, index) = self
                                .instances
                                .get(&new)
                                .map(|i| (i.app.clone(), i.index))
                                .unwrap_or_default();
                            let keeps = match reload.on_failure {
                                OnFailure::KeepOld => "the old instances keep serving",
                                OnFailure::Restart => "the old instances are restarted instead",
                            };
                            reload.failed = Some(format!(
                                "reload of app \"{app}\" stopped: the new instance {index} (id {new}) {reason}; {keeps}"
                            ));
                        }
                        CandidateStatus::Waiting => {}
                    }
                }
                if promoted && !self.instances.contains_key(&old) {
                    reload.report.push(new);
                    return (None, true);
                }
                (Some(Step::Swap { old, new, promoted }), moved)
            }
        }
    }

    /// Start replacing `old`: a new instance beside it, or, where no zero-downtime path exists,
    /// a restart (with a note). None when the old one is gone.
    fn begin_step(&mut self, old: u32, reload: &mut Reload) -> Option<Step> {
        if let Some(why) = self.no_zero_downtime(old) {
            let inst = self.instances.get(&old)?;
            let note = format!(
                "app \"{}\" instance {}: restarted (stop, then start), as pm2 reloads a fork app: {why}",
                inst.app, inst.index
            );
            reload.notes.push(note);
            let what = What::cause(Cause::Reload).detail(format!("no zero-downtime path: {why}"));
            self.emit(old, EventKind::Restart, what);
            self.begin_stop(old, Intent::Restart);
            return Some(Step::Restart { id: old });
        }
        let new = self.spawn_replacement(old)?;
        Some(Step::Swap {
            old,
            new,
            promoted: false,
        })
    }

    /// Why instance `id` cannot be replaced without a gap, if it cannot: a fork-mode program
    /// whose port the daemon does not hold would find it taken by the old one.
    fn no_zero_downtime(&self, id: u32) -> Option<String> {
        let inst = self.instances.get(&id)?;
        let app = self.apps.get(&inst.app)?;
        let spec = &app.spec;
        if !spec.cluster.listen.is_empty() || spec.cluster.discover {
            return None; // cluster mode: the daemon owns the sockets
        }
        match &app.balancer {
            Some(balancer) if balancer.holds(id) => None,
            Some(_) if !inst.ready => Some("it was still starting".into()),
            Some(_) => Some(
                "it holds no TCP port through rcluster (it binds none, or binds it where the preload library cannot see)"
                    .into(),
            ),
            None => Some(match static_program(spec) {
                Some(path) => format!(
                    "{} is statically linked, so rcluster cannot hold its port across the swap",
                    path.display()
                ),
                None => "the preload library is not available (see the daemon log)".into(),
            }),
        }
    }

    fn candidate_status(&self, id: u32) -> CandidateStatus {
        let Some(inst) = self.instances.get(&id) else {
            return CandidateStatus::Failed("is gone".into());
        };
        if inst.ready && inst.pid.is_some() {
            return CandidateStatus::Ready;
        }
        match inst.state {
            InstanceState::Errored | InstanceState::Stopped => {
                CandidateStatus::Failed(inst.reason.clone().unwrap_or_else(|| "ended".into()))
            }
            // A reason on a candidate that still runs: it missed its readiness deadline.
            _ if inst.reason.is_some() => {
                CandidateStatus::Failed(inst.reason.clone().unwrap_or_default())
            }
            _ => CandidateStatus::Waiting,
        }
    }

    /// A new instance for the old one's index; None when the old one is gone.
    fn spawn_replacement(&mut self, old: u32) -> Option<u32> {
        let (app, index, public_id, restarts) = {
            let inst = self.instances.get(&old)?;
            (inst.app.clone(), inst.index, inst.public_id, inst.restarts)
        };
        let id = self.next_id;
        self.next_id += 1;
        let mut fresh = Instance::new(id, &app, index);
        fresh.candidate = true;
        fresh.public_id = public_id;
        // pm2 counts a reload as a restart of the id (↺ + 1).
        fresh.restarts = restarts.saturating_add(1);
        self.instances.insert(id, fresh);
        let old_pid = self.instances.get(&old).and_then(|i| i.pid);
        let what = What::default().detail(match old_pid {
            Some(pid) => format!("it replaces pid {pid} once ready"),
            None => "it replaces a stopped instance".to_owned(),
        });
        self.emit(id, EventKind::ReloadStart, what);
        self.spawn_instance(id);
        Some(id)
    }

    fn abandon_candidates(&mut self, reload: &Reload) {
        for step in &reload.active {
            if let Step::Swap {
                old,
                new,
                promoted: false,
            } = *step
            {
                let reason = reload.failed.clone().unwrap_or_default();
                let what = What::cause(Cause::Reload).detail(reason);
                self.emit(new, EventKind::ReloadFailed, what);
                self.begin_stop(new, Intent::Delete);
                if reload.on_failure == OnFailure::Restart {
                    self.begin_stop(old, Intent::Restart);
                }
            }
        }
    }

    fn emit_reload_ready(&mut self, old: u32, new: u32) {
        let detail = match self.instances.get(&old).and_then(|i| i.pid) {
            Some(pid) => format!("pid {pid} leaves"),
            None => "the old instance is gone".to_owned(),
        };
        self.emit(new, EventKind::ReloadReady, What::default().detail(detail));
    }

    fn finish_reload(&mut self, reload: Reload) {
        let Some(reply) = reload.reply else { return };
        let answer = match reload.failed {
            Some(reason) => Err(ErrorReply::new(ErrorKind::Os, reason)),
            None => Ok(Replaced {
                instances: self.views(&reload.report, false),
                notes: reload.notes,
            }),
        };
        let _ = reply.send(answer);
    }
}

impl Reload {
    fn involves(&self, id: u32) -> bool {
        self.pending.contains(&id)
            || self.active.iter().any(|s| match *s {
                Step::Swap { old, new, .. } => old == id || new == id,
                Step::Restart { id: restarted } => restarted == id,
            })
    }
}

enum CandidateStatus {
    Waiting,
    Ready,
    Failed(String),
}
