//! The one place lifecycle records are made (`Supervisor::emit`): each goes to the daemon log,
//! to a short history (what `logs` prints before its live lines) and to live subscribers
//! (`logs` followers now; the event stream later takes the same records from `subscribe`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use super::actor::Supervisor;
use crate::protocol::event::{Cause, EventKind, LifecycleEvent};

/// Records kept for `logs` to show past ones (about 200 bytes each).
const HISTORY: usize = 200;
/// Records a live subscriber may fall behind before it skips some.
const LIVE_BUFFER: usize = 256;

pub type EventFeed = broadcast::Receiver<Arc<LifecycleEvent>>;

pub struct Journal {
    live: broadcast::Sender<Arc<LifecycleEvent>>,
    recent: VecDeque<Arc<LifecycleEvent>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            live: broadcast::channel(LIVE_BUFFER).0,
            recent: VecDeque::with_capacity(16),
        }
    }
}

impl Journal {
    fn record(&mut self, event: LifecycleEvent) {
        crate::dlog!("{}", event.message());
        let event = Arc::new(event);
        if self.recent.len() == HISTORY {
            self.recent.pop_front();
        }
        self.recent.push_back(event.clone());
        // Nobody subscribed is not an error.
        let _ = self.live.send(event);
    }

    pub fn subscribe(&self) -> EventFeed {
        self.live.subscribe()
    }

    /// The kept records that `wanted` selects, oldest first.
    pub fn history(&self, wanted: impl Fn(&LifecycleEvent) -> bool) -> Vec<Arc<LifecycleEvent>> {
        self.recent.iter().filter(|e| wanted(e)).cloned().collect()
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
