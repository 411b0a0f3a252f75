//! A bound on a server's connections against clients that connect and then say nothing, or
//! trickle a request a byte at a time (issue #17.8, #17.10): at most so many connections open,
//! and at most so many *waiting* for a request at once. A new connection beyond either limit
//! pushes out the one that has waited longest (a real client sends its request as soon as it
//! connects, so it is never the one); connections being answered are never pushed out. Used by
//! the daemon's control socket (`daemon::server`) and by `serve`; each bounds the time to a
//! whole request itself. Single-runtime, so a plain mutex.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// (most connections open, most waiting for a request), asked at each connection: a limit that
/// follows the process's descriptor limit sees it change (prlimit).
pub type Limits = Box<dyn Fn() -> (usize, usize) + Send + Sync>;

#[derive(Clone)]
pub struct Gate(Arc<Inner>);

struct Inner {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    open: usize,
    /// Connections waiting for a request, the longest-waiting first.
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// A connection the gate let in; it counts until dropped.
pub struct Admitted(Gate);

/// A connection waiting for its next request; leaves the queue when dropped.
pub struct Waiting {
    gate: Gate,
    id: u64,
    pushed_out: oneshot::Receiver<()>,
}

/// The process's soft limit on open descriptors now.
pub fn descriptor_limit() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft).unwrap_or(usize::MAX)
}

impl Gate {
    pub fn new(limits: impl Fn() -> (usize, usize) + Send + Sync + 'static) -> Gate {
        Gate(Arc::new(Inner {
            limits: Box::new(limits),
            state: Mutex::new(State::default()),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; were it poisoned, the queue is still whole.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection: in, or `Err(open)` when as many as the limit are open and none waits
    /// for a request (none can be pushed out to make room).
    pub fn admit(&self) -> Result<Admitted, usize> {
        let (max_open, _) = (self.0.limits)();
        let mut state = self.state();
        if state.open >= max_open {
            match state.waiting.pop_front() {
                Some((_, push)) => {
                    let _ = push.send(());
                }
                None => return Err(state.open),
            }
        }
        state.open += 1;
        Ok(Admitted(self.clone()))
    }

    /// The connection now waits for a request.
    pub fn wait(&self) -> Waiting {
        let (_, max_waiting) = (self.0.limits)();
        let mut state = self.state();
        let id = state.next;
        state.next += 1;
        let (push, pushed_out) = oneshot::channel();
        state.waiting.push_back((id, push));
        while state.waiting.len() > max_waiting.max(1) {
            if let Some((_, push)) = state.waiting.pop_front() {
                let _ = push.send(());
            }
        }
        Waiting {
            gate: self.clone(),
            id,
            pushed_out,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state().open
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.open = state.open.saturating_sub(1);
    }
}

impl Waiting {
    /// `read`'s result, or `None` if the connection is pushed out first.
    pub async fn unless_pushed_out<T>(&mut self, read: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = read => Some(done),
            _ = &mut self.pushed_out => None,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let id = self.id;
        self.gate
            .state()
            .waiting
            .retain(|(waiting, _)| *waiting != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_waiting_is_pushed_out_first() {
        let gate = Gate::new(|| (100, 3));
        let mut first = gate.wait();
        let mut second = gate.wait();
        let rest: Vec<Waiting> = (0..2).map(|_| gate.wait()).collect();
        let never = std::future::pending::<()>;
        assert_eq!(first.unless_pushed_out(never()).await, None);
        assert_eq!(second.unless_pushed_out(async { 7 }).await, Some(7));
        assert_eq!(gate.state().waiting.len(), 3);
        drop((second, rest));
        assert!(gate.state().waiting.is_empty());
    }

    #[tokio::test]
    async fn a_full_gate_pushes_out_a_waiting_connection_or_refuses() {
        let gate = Gate::new(|| (2, 10));
        let a = gate.admit().expect("room");
        let mut a_waits = gate.wait();
        let _b = gate.admit().expect("room");
        // Full: the new one is let in, the waiting one goes.
        let c = gate.admit().expect("room made");
        assert_eq!(
            a_waits
                .unless_pushed_out(std::future::pending::<()>())
                .await,
            None
        );
        drop((a_waits, a));
        // Full again, and nobody waits: refused.
        assert_eq!(gate.admit().err(), Some(2));
        drop(c);
        assert_eq!(gate.open(), 1);
    }
}
