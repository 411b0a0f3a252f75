//! The supervisor's timers: a min-heap of deadlines. A timer carries the instance's generation
//! at arming time; a timer whose instance has moved on (generation bumped) is ignored.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// `kill_timeout` elapsed: SIGKILL the group.
    KillTimeout,
    /// A delayed restart is due.
    RestartDue,
    /// Look again whether a stopped instance's leftover group has emptied.
    LingerCheck,
    /// max_memory_restart: is the instance over its limit?
    MemoryCheck,
    /// A draining cluster instance: are its connections done?
    DrainCheck,
    /// listen_timeout elapsed: has the cluster instance taken its socket?
    ListenCheck,
    /// An app's cron_restart is due: `generation` carries the arming's token, `id` is unused.
    CronRestart,
    /// A watched app's watch_delay after a change is over (`generation`: the watch's token).
    WatchRestart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    pub id: u32,
    pub generation: u64,
    pub kind: TimerKind,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub fn arm(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// When `timer` is due, if it is armed.
    pub fn due_of(&self, timer: Timer) -> Option<Instant> {
        self.heap
            .iter()
            .filter(|Reverse((_, armed))| *armed == timer)
            .map(|Reverse((at, _))| *at)
            .min()
    }

    /// Every timer due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        while let Some(Reverse((at, timer))) = self.heap.peek() {
            if *at > now {
                break;
            }
            due.push(*timer);
            self.heap.pop();
        }
        due
    }
}
