//! The supervisor: ONE task owns every app, instance and timer (`actor`). Connection tasks talk
//! to it through a cloneable `SupervisorHandle` (bounded channel + oneshot reply) and get owned
//! snapshots back, never locks; the reaper and log captures report to it through channels.

mod actor;
mod cluster;
mod commands;
mod cron;
mod handoff;
mod journal;
mod launch;
mod lifecycle;
mod node_channel;
mod readiness;
mod reload;
pub mod restart;
mod start;
mod state;
mod timers;
mod watching;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

pub use actor::{ClusterContext, Supervisor};
pub use handoff::HandoffFds;
pub use journal::EventFeed;

use crate::daemon::logs::LogRecord;
use crate::protocol::event::LifecycleEvent;
use crate::protocol::model::{AppDetail, AppSpec, InstanceView};
use crate::protocol::response::Stream;
use crate::protocol::{ErrorReply, IfRunning, ScaleChange, Target};

pub type Reply<T> = oneshot::Sender<Result<T, ErrorReply>>;

/// What `start` and `reload` answer: the instances, and a line for each one that was
/// restarted instead of reloaded (no zero-downtime path for it).
#[derive(Debug, Default)]
pub struct Replaced {
    pub instances: Vec<InstanceView>,
    pub notes: Vec<String>,
}

impl From<Vec<InstanceView>> for Replaced {
    fn from(instances: Vec<InstanceView>) -> Replaced {
        Replaced {
            instances,
            notes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PingInfo {
    pub uptime_ms: u64,
    pub apps: usize,
    pub instances: usize,
}

/// What `logs` reads: the files to tail (with the id of the one instance a file holds, if so),
/// the recent lifecycle records, and subscriptions to live lines and records with their filter.
pub struct LogSources {
    pub files: Vec<LogFile>,
    pub apps: HashSet<String>,
    pub instance: Option<(String, u32)>,
    pub live: broadcast::Receiver<Arc<LogRecord>>,
    pub history: Vec<Arc<LifecycleEvent>>,
    pub events: EventFeed,
}

/// A file `logs` tails.
pub struct LogFile {
    pub app: String,
    pub stream: Stream,
    pub path: PathBuf,
    /// The instance whose lines the file holds, when it holds one instance's only.
    pub id: Option<u32>,
    /// Its lines start with a timestamp and `: ` (`--time`, `log_date_format`).
    pub stamped: bool,
}

impl LogSources {
    /// Whether a line or record of `app`'s instance `index` is the target's.
    pub fn wants(&self, app: &str, index: u32) -> bool {
        (self.apps.is_empty() || self.apps.contains(app))
            && self
                .instance
                .as_ref()
                .is_none_or(|(a, i)| a == app && *i == index)
    }
}

pub enum Cmd {
    Ping {
        reply: oneshot::Sender<PingInfo>,
    },
    Start {
        apps: Vec<AppSpec>,
        base_env: BTreeMap<String, String>,
        if_running: IfRunning,
        reply: Reply<Replaced>,
    },
    Reload {
        target: Target,
        apps: Vec<AppSpec>,
        parallel: u32,
        base_env: Option<BTreeMap<String, String>>,
        reply: Reply<Replaced>,
    },
    Scale {
        app: String,
        change: ScaleChange,
        reply: Reply<Vec<InstanceView>>,
    },
    Save {
        force: bool,
        reply: Reply<String>,
    },
    /// The instances started, and notes on what was read.
    Resurrect {
        reply: Reply<(Vec<InstanceView>, Vec<String>)>,
    },
    /// What the user should hear before a `list` (the previous daemon's unclean end).
    Notice {
        reply: oneshot::Sender<Option<String>>,
    },
    ClearDump {
        reply: Reply<String>,
    },
    Flush {
        target: Target,
        reply: Reply<String>,
    },
    ReloadLogs {
        reply: Reply<String>,
    },
    Signal {
        target: Target,
        signal: String,
        reply: Reply<String>,
    },
    Reset {
        target: Target,
        reply: Reply<String>,
    },
    Rename {
        target: Target,
        name: String,
        reply: Reply<String>,
    },
    List {
        reply: oneshot::Sender<Vec<InstanceView>>,
    },
    Describe {
        target: Target,
        reply: Reply<Vec<AppDetail>>,
    },
    Stop {
        target: Target,
        reply: Reply<Vec<InstanceView>>,
    },
    Restart {
        target: Target,
        apps: Vec<AppSpec>,
        base_env: Option<BTreeMap<String, String>>,
        reply: Reply<Vec<InstanceView>>,
    },
    Delete {
        target: Target,
        reply: Reply<Vec<InstanceView>>,
    },
    /// Stop everything, answer, then end the supervisor (and so the daemon).
    Kill {
        reply: Reply<Vec<InstanceView>>,
    },
    /// Re-execute the daemon as `exe` once everything is quiet (`rcluster update`); `client` is
    /// the asking connection, answered by the new image (`reply` only carries a refusal).
    Update {
        exe: PathBuf,
        client: std::os::fd::OwnedFd,
        reply: Reply<()>,
    },
    /// Answer once every instance has ended for good (stopped or errored, none waiting to
    /// restart): `true` when any is errored. For `rcluster run`, which exits then.
    WhenAllEnded {
        reply: oneshot::Sender<bool>,
    },
    LogSources {
        target: Target,
        reply: Reply<LogSources>,
    },
}

#[derive(Clone)]
pub struct SupervisorHandle(mpsc::Sender<Cmd>);

impl SupervisorHandle {
    pub fn new(tx: mpsc::Sender<Cmd>) -> SupervisorHandle {
        SupervisorHandle(tx)
    }

    /// Send a command built around a fresh reply channel and wait for the answer.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Cmd,
    ) -> Result<T, ErrorReply> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(make(reply))
            .await
            .map_err(|_| ErrorReply::shutting_down())?;
        answer.await.map_err(|_| ErrorReply::shutting_down())
    }

    /// `ask` for commands whose answer is itself a Result.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, ErrorReply> {
        self.ask(make).await?
    }
}
