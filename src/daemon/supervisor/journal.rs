//! The one place lifecycle records are made (`Supervisor::emit`): each goes to the daemon log,
//! to a short history per app (what `logs` prints before its live lines; per app, so that an
//! app in a crash loop does not push the others' out) and to live subscribers (`logs`
//! followers now; the event stream later takes the same records from `subscribe`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use super::actor::Supervisor;
use crate::protocol::event::{Cause, EventKind, LifecycleEvent};

/// Records kept per app for `logs` to show past ones (about 200 bytes each).
const HISTORY: usize = 40;
/// Records a live subscriber may fall behind before it skips some.
const LIVE_BUFFER: usize = 256;

pub type EventFeed = broadcast::Receiver<Arc<LifecycleEvent>>;

pub struct Journal {
    live: broadcast::Sender<Arc<LifecycleEvent>>,
    /// Per app: the last records, each with its number (the order across apps).
    recent: BTreeMap<String, VecDeque<(u64, Arc<LifecycleEvent>)>>,
    next: u64,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            live: broadcast::channel(LIVE_BUFFER).0,
            recent: BTreeMap::new(),
            next: 0,
        }
    }
}

impl Journal {
    fn record(&mut self, event: LifecycleEvent) {
        crate::dlog!("{}", event.message());
        let event = Arc::new(event);
        let kept = self.recent.entry(event.app.clone()).or_default();
        if kept.len() == HISTORY {
            kept.pop_front();
        }
        kept.push_back((self.next, event.clone()));
        self.next += 1;
        // Nobody subscribed is not an error.
        let _ = self.live.send(event);
    }

    pub fn subscribe(&self) -> EventFeed {
        self.live.subscribe()
    }

    /// The kept records that `wanted` selects, oldest first.
    pub fn history(&self, wanted: impl Fn(&LifecycleEvent) -> bool) -> Vec<Arc<LifecycleEvent>> {
        let mut found: Vec<&(u64, Arc<LifecycleEvent>)> = self
            .recent
            .values()
            .flatten()
            .filter(|(_, e)| wanted(e))
            .collect();
        found.sort_unstable_by_key(|(n, _)| *n);
        found.into_iter().map(|(_, e)| e.clone()).collect()
    }

    /// An app is gone: its history goes too (the daemon log keeps it).
    pub fn forget(&mut self, app: &str) {
        self.recent.remove(app);
    }
}

/// The parts of a record that depend on what happened.
#[derive(Debug, Default)]
pub(super) struct What {
    pub pid: Option<u32>,
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub uptime_ms: Option<u64>,
    pub cause: Option<Cause>,
    pub detail: Option<String>,
}

impl What {
    pub fn cause(cause: Cause) -> What {
        What {
            cause: Some(cause),
            ..What::default()
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> What {
        self.detail = Some(detail.into());
        self
    }
}

impl Supervisor {
    /// A log file of `app` began failing or works again: a record (on the app's first
    /// instance), so that `logs` and the daemon log say it.
    pub(super) fn on_log_trouble(
        &mut self,
        app: &str,
        path: &std::path::Path,
        failing: Option<String>,
        lost: u64,
    ) {
        let Some(id) = self.ids_of(app).into_iter().min() else {
            return;
        };
        let (kind, detail) = match failing {
            Some(why) => (
                EventKind::LogsFailing,
                format!("{why}; lines are dropped and counted, the app goes on"),
            ),
            None => (
                EventKind::LogsResumed,
                format!("{}: {lost} line(s) were dropped meanwhile", path.display()),
            ),
        };
        self.emit(id, kind, What::default().detail(detail));
    }

    /// Live lifecycle records from now on (for `rcluster run`, which prints them).
    pub fn lifecycle_feed(&self) -> EventFeed {
        self.journal.subscribe()
    }

    /// Record what happened to instance `id` (the supervisor's id; the record carries the id
    /// users see). The instance's current pid is taken when `what` has none.
    pub(super) fn emit(&mut self, id: u32, kind: EventKind, what: What) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let event = LifecycleEvent {
            at_ms,
            kind,
            app: inst.app.clone(),
            id: inst.public_id,
            instance: inst.index,
            pid: what
                .pid
                .or_else(|| inst.pid.and_then(|p| u32::try_from(p).ok())),
            code: what.code,
            signal: what.signal,
            uptime_ms: what.uptime_ms,
            cause: what.cause,
            detail: what.detail,
        };
        self.journal.record(event);
    }
}
