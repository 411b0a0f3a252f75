//! What the supervisor owns: apps (a spec and its log writer) and instances (one process slot
//! each, with its lifecycle state and counters), plus their outward views.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::restart::Counters;
use crate::daemon::balancer::Balancer;
use crate::daemon::logs::{log_path, WriterMsg};
use crate::daemon::process::stats::CpuSample;
use crate::paths::Home;
use crate::protocol::model::{AppSpec, InstanceState, InstanceView};
use crate::protocol::response::Stream;

pub struct App {
    pub spec: AppSpec,
    /// The starting client's environment, the base under the app's declared env.
    pub base_env: Arc<BTreeMap<String, String>>,
    pub log_tx: mpsc::Sender<WriterMsg>,
    /// Lines its writer could not write (a full disk...).
    pub log_health: Arc<crate::daemon::logs::LogHealth>,
    /// Cluster mode: the app's listeners and how connections reach its instances.
    pub balancer: Option<Balancer>,
    /// The armed cron_restart, if the app has one.
    pub cron: Option<super::cron::CronState>,
    /// The file watcher, if the app has `watch`.
    pub watch: Option<super::watching::WatchState>,
    /// When the daemon took the app in, in ms since the Unix epoch (pm2's `created_at`).
    pub created_at: u64,
}

/// Now, in ms since the Unix epoch (wall clock, for people: `describe`'s created at).
pub fn epoch_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What should happen once an instance has fully stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Not being stopped by a command (an exit is a crash or a normal end).
    None,
    Stop,
    Restart,
    Delete,
}

pub struct Instance {
    pub id: u32,
    /// The id users see and name (`list`, `logs 0`): a reload's new instance takes the old
    /// one's, as pm2 keeps pm_id across a reload. Unique but for such a pair while both run.
    pub public_id: u32,
    pub app: String,
    pub index: u32,
    pub state: InstanceState,
    /// The main process, while it runs.
    pub pid: Option<i32>,
    /// The process group, while any member may be alive.
    pub pgid: Option<i32>,
    pub started_at: Option<Instant>,
    /// Wall-clock times for `jlist` (ms since the epoch): pm2's `created_at` (creation, or the
    /// last restart by a command) and `pm_uptime` (the program's last start; 0 before any).
    pub created_ms: u64,
    pub started_ms: u64,
    pub restarts: u32,
    pub counters: Counters,
    pub reason: Option<String>,
    /// Bumped whenever pending timers of this instance become stale.
    pub generation: u64,
    pub intent: Intent,
    pub cpu_sample: Option<CpuSample>,
    pub cpu: f64,
    pub memory: u64,
    /// Ready (see `readiness`): online and in the balancer's rotation.
    pub ready: bool,
    /// The program accepts on its managed socket (listen() seen, private port answers).
    pub listening: bool,
    /// A reload's new instance, not yet ready: an exit ends the reload instead of restarting.
    pub candidate: bool,
    /// The last sd_notify STATUS= text.
    pub status_text: Option<String>,
    /// Per-run tasks (NOTIFY_SOCKET reader, readiness probe), ended with the run.
    pub run_tasks: Vec<tokio::task::JoinHandle<()>>,
    pub notify_socket: Option<std::path::PathBuf>,
    /// Copies of the daemon's ends of NOTIFY_SOCKET and Node's channel (for `rcluster update`).
    pub notify_fd: Option<std::os::fd::OwnedFd>,
    pub node_channel: Option<std::os::fd::OwnedFd>,
    /// Draining before the stop signal (cluster apps).
    pub draining: Option<Draining>,
    /// Stopped by a `stop` command (not ended by itself): cron_restart leaves it stopped.
    pub stopped_by_command: bool,
    /// Starts in a row that failed for a shortage that passes (EMFILE...), for the backoff.
    pub spawn_retries: u32,
}

/// A graceful stop waiting for the instance's connections (see `process::conns`).
pub struct Draining {
    /// The stop signal goes at this instant at the latest.
    pub deadline: Instant,
    /// Where this instance served the app: its connections there are drained.
    pub served: crate::daemon::process::conns::Served,
    /// The last check found nothing to wait for.
    pub done_seen: bool,
}

impl Instance {
    pub fn new(id: u32, app: &str, index: u32) -> Instance {
        Instance {
            id,
            public_id: id,
            app: app.to_owned(),
            index,
            state: InstanceState::Launching,
            pid: None,
            pgid: None,
            started_at: None,
            created_ms: epoch_ms_now(),
            started_ms: 0,
            restarts: 0,
            counters: Counters::default(),
            reason: None,
            generation: 0,
            intent: Intent::None,
            cpu_sample: None,
            cpu: 0.0,
            memory: 0,
            ready: false,
            listening: false,
            candidate: false,
            status_text: None,
            run_tasks: Vec::new(),
            notify_socket: None,
            notify_fd: None,
            node_channel: None,
            draining: None,
            stopped_by_command: false,
            spawn_retries: 0,
        }
    }

    /// The run is over: its per-run tasks and sockets go.
    pub fn end_run(&mut self) {
        for task in self.run_tasks.drain(..) {
            task.abort();
        }
        if let Some(path) = self.notify_socket.take() {
            let _ = std::fs::remove_file(path);
        }
        self.notify_fd = None;
        self.node_channel = None;
        self.ready = false;
        self.listening = false;
    }

    pub fn is_settled(&self) -> bool {
        matches!(self.state, InstanceState::Stopped | InstanceState::Errored)
    }

    /// Read CPU and memory from /proc (only when asked: no background sampling).
    pub fn refresh_stats(&mut self) {
        let Some(pid) = self.pid else {
            self.cpu = 0.0;
            self.memory = 0;
            self.cpu_sample = None;
            return;
        };
        let Some((ticks, rss)) = crate::daemon::process::stats::read(pid) else {
            return;
        };
        let now = CpuSample {
            at: std::time::Instant::now(),
            ticks,
        };
        self.cpu = self.cpu_sample.map_or(0.0, |before| {
            crate::daemon::process::stats::cpu_percent(before, now)
        });
        self.cpu_sample = Some(now);
        self.memory = rss;
    }

    pub fn view(&self, home: &Home, app: &App) -> InstanceView {
        let spec = &app.spec;
        let (accepted, open) = app.balancer.as_ref().map_or((0, 0), |b| b.counts(self.id));
        let running = matches!(
            self.state,
            InstanceState::Online | InstanceState::Launching | InstanceState::Stopping
        );
        InstanceView {
            id: self.public_id,
            name: self.app.clone(),
            namespace: spec
                .namespace
                .clone()
                .unwrap_or_else(|| crate::protocol::model::DEFAULT_NAMESPACE.to_owned()),
            instance: self.index,
            pid: self.pid.and_then(|p| u32::try_from(p).ok()),
            status: self.state,
            restarts: self.restarts,
            uptime_ms: match (running, self.started_at) {
                (true, Some(at)) => at.elapsed().as_millis() as u64,
                _ => 0,
            },
            unstable_restarts: match self.state {
                // The last unstable exit was not followed by a restart.
                InstanceState::Errored => self.counters.unstable.saturating_sub(1),
                _ => self.counters.unstable,
            },
            created_at: self.created_ms,
            started_at: self.started_ms,
            cpu: self.cpu,
            memory: self.memory,
            reason: self.reason.clone(),
            mode: mode_of(spec),
            ports: match &app.balancer {
                Some(balancer) => balancer.addresses(),
                None => spec.cluster.listen.iter().map(|a| a.to_string()).collect(),
            },
            command: spec.command.display(),
            cwd: spec.cwd.clone(),
            out_log: log_path(home, spec, Stream::Out, self.index),
            err_log: log_path(home, spec, Stream::Err, self.index),
            ready: self.ready,
            accepted,
            open,
            log_lines_dropped: app.log_health.dropped(),
        }
    }
}

fn mode_of(spec: &AppSpec) -> String {
    if spec.cluster.listen.is_empty() && !spec.cluster.discover {
        "fork".into()
    } else {
        spec.cluster.balance.as_str().into()
    }
}
