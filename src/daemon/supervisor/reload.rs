//! Rolling reload (PRODUCT.md §5) as a state machine advanced by events: for each old instance,
//! start a new one for the same index, wait until it is READY, then stop the old one (it leaves
//! the rotation first and its queue is redealt, then kill_signal, kill_timeout, SIGKILL), then
//! the next — `parallel` at a time. A new instance that exits or never gets ready aborts the
//! reload: it is removed, the old instances keep serving, and the command gets the reason.

use std::collections::VecDeque;

use super::actor::Supervisor;
use super::state::{Instance, Intent};
use super::Reply;
use crate::protocol::model::{InstanceState, InstanceView};
use crate::protocol::{ErrorKind, ErrorReply};

struct Step {
    old: u32,
    new: u32,
    promoted: bool,
}

pub(super) struct Reload {
    pending: VecDeque<u32>,
    active: Vec<Step>,
    parallel: usize,
    reply: Option<Reply<Vec<InstanceView>>>,
    /// Ids to report when done: the new instances, plus any the request started besides.
    report: Vec<u32>,
    failed: Option<String>,
}

impl Supervisor {
    /// Replace `old_ids` one by one (`parallel` at a time); answer `reply` when done.
    pub(super) fn begin_reload(
        &mut self,
        old_ids: Vec<u32>,
        parallel: u32,
        reply: Option<Reply<Vec<InstanceView>>>,
        report: Vec<u32>,
    ) {
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
                Some(_) => !reload
                    .active
                    .iter()
                    .any(|s| !s.promoted && self.instances.contains_key(&s.new)),
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
            for mut step in std::mem::take(&mut reload.active) {
                if !step.promoted {
                    match self.candidate_status(step.new) {
                        CandidateStatus::Ready => {
                            step.promoted = true;
                            progressed = true;
                            if let Some(new) = self.instances.get_mut(&step.new) {
                                new.candidate = false;
                            }
                            self.begin_stop(step.old, Intent::Delete);
                        }
                        CandidateStatus::Failed(reason) => {
                            let (app, index) = self
                                .instances
                                .get(&step.new)
                                .map(|i| (i.app.clone(), i.index))
                                .unwrap_or_default();
                            reload.failed = Some(format!(
                                "reload of app \"{app}\" stopped: the new instance {index} (id {}) {reason}; the old instances keep serving",
                                step.new
                            ));
                        }
                        CandidateStatus::Waiting => {}
                    }
                }
                if step.promoted && !self.instances.contains_key(&step.old) {
                    reload.report.push(step.new);
                    progressed = true;
                } else {
                    still_active.push(step);
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
                if let Some(new) = self.spawn_replacement(old) {
                    reload.active.push(Step {
                        old,
                        new,
                        promoted: false,
                    });
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
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
        crate::dlog!("app {app}: reloading instance {index}: id {old} -> id {id}");
        self.spawn_instance(id);
        Some(id)
    }

    fn abandon_candidates(&mut self, reload: &Reload) {
        if let Some(reason) = &reload.failed {
            crate::dlog!("{reason}");
        }
        for step in reload.active.iter().filter(|s| !s.promoted) {
            self.begin_stop(step.new, Intent::Delete);
        }
    }

    fn finish_reload(&mut self, reload: Reload) {
        let Some(reply) = reload.reply else { return };
        let answer = match reload.failed {
            Some(reason) => Err(ErrorReply::new(ErrorKind::Os, reason)),
            None => Ok(self.views(&reload.report, false)),
        };
        let _ = reply.send(answer);
    }
}

impl Reload {
    fn involves(&self, id: u32) -> bool {
        self.pending.contains(&id) || self.active.iter().any(|s| s.old == id || s.new == id)
    }
}

enum CandidateStatus {
    Waiting,
    Ready,
    Failed(String),
}
