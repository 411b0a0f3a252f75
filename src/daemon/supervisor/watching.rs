//! `watch` (pm2's): a change under the watched paths restarts the app once `watch_delay` (at
//! least `SETTLE`) has passed; changes seen meanwhile join that restart. As in pm2 it is a restart, not a reload (a
//! developer's tool: a crash of the new code shows at once), of every instance but those stopped
//! with `stop`.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::actor::Supervisor;
use super::timers::{Timer, TimerKind};
use crate::daemon::logs::log_path;
use crate::daemon::watch::AppWatcher;
use crate::protocol::model::AppSpec;
use crate::protocol::response::Stream;

/// The least wait after a first change: a save is several events (write, close, rename), read
/// in more than one batch, and must be one restart.
const SETTLE: Duration = Duration::from_millis(100);

pub struct WatchState {
    _watcher: AppWatcher,
    token: u64,
    /// A restart is armed: further changes join it.
    pending: bool,
}

impl WatchState {
    /// A restart after a change is armed.
    pub fn is_pending(&self) -> bool {
        self.pending
    }
}

impl Supervisor {
    /// Start watching what `spec` asks to watch (nothing for apps without `watch`).
    pub(super) fn open_watch(&mut self, spec: &AppSpec) -> Result<Option<WatchState>, String> {
        let Some(watch) = &spec.watch else {
            return Ok(None);
        };
        let mut own_logs: Vec<_> = [Stream::Out, Stream::Err]
            .into_iter()
            .filter_map(|stream| log_path(&self.home, spec, stream, 0))
            .collect();
        own_logs.extend(spec.logs.log_file.clone());
        let watcher =
            crate::daemon::watch::start(&spec.name, watch, own_logs, self.cluster.events.clone())?;
        self.next_app_token += 1;
        Ok(Some(WatchState {
            _watcher: watcher,
            token: self.next_app_token,
            pending: false,
        }))
    }

    /// The app's spec changed: watch what the new one says.
    pub(super) fn rewatch(&mut self, name: &str) {
        let Some(spec) = self.apps.get(name).map(|a| a.spec.clone()) else {
            return;
        };
        let state = self.open_watch(&spec).unwrap_or_else(|e| {
            crate::dlog!("app {name}: {e}");
            None
        });
        if let Some(app) = self.apps.get_mut(name) {
            app.watch = state;
        }
    }

    pub(super) fn on_file_changed(&mut self, name: &str, path: &Path) {
        let Some(app) = self.apps.get_mut(name) else {
            return;
        };
        let delay = app
            .spec
            .watch
            .as_ref()
            .map_or(SETTLE, |w| Duration::from_millis(w.delay_ms).max(SETTLE));
        let Some(state) = app.watch.as_mut().filter(|s| !s.pending) else {
            return;
        };
        state.pending = true;
        let timer = Timer {
            id: 0,
            generation: state.token,
            kind: TimerKind::WatchRestart,
        };
        crate::dlog!(
            "app {name}: change detected on {}: restarting",
            path.display()
        );
        self.timers.arm(Instant::now() + delay, timer);
    }

    pub(super) fn on_watch_due(&mut self, token: u64) {
        let Some(name) = self.apps.iter_mut().find_map(|(name, app)| {
            let state = app.watch.as_mut().filter(|s| s.token == token)?;
            state.pending = false;
            Some(name.clone())
        }) else {
            return; // re-watched or deleted since
        };
        self.restart_for_trigger(&name, false, crate::protocol::event::Cause::Watch);
    }
}
