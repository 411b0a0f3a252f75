//! Requests: one variant per CLI verb. Targets are resolved by the daemon (ids and names);
//! ecosystem files are read by the CLI and arrive as app names or specs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{AppSpec, InstanceView};

/// What a verb acts on: every app, one instance id, or an app name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    All,
    Id(u32),
    Name(String),
    /// Several app names at once (the apps of an ecosystem file).
    Names(Vec<String>),
}

impl Target {
    /// `all`, a number (an instance id), or an app name.
    pub fn parse(text: &str) -> Target {
        if text == "all" {
            Target::All
        } else if let Ok(id) = text.parse::<u32>() {
            Target::Id(id)
        } else {
            Target::Name(text.to_owned())
        }
    }

    /// Whether a listed instance is one of the target's (for views the CLI filters itself).
    pub fn selects(&self, instance: &InstanceView) -> bool {
        match self {
            Target::All => true,
            Target::Id(id) => instance.id == *id,
            Target::Name(name) => instance.name == *name,
            Target::Names(names) => names.contains(&instance.name),
        }
    }

    /// The instances of `all` this target names: as `selects`, where a name that no app has
    /// names a namespace (pm2's rule, as the daemon resolves targets).
    pub fn select(&self, all: Vec<InstanceView>) -> Vec<InstanceView> {
        let names: Vec<&String> = match self {
            Target::Name(name) => vec![name],
            Target::Names(names) => names.iter().collect(),
            _ => return all.into_iter().filter(|i| self.selects(i)).collect(),
        };
        let app_named = |name: &String| all.iter().any(|i| i.name == *name);
        let wanted: Vec<(bool, &String)> = names.iter().map(|n| (app_named(n), *n)).collect();
        let picks = |i: &InstanceView| {
            wanted.iter().any(|(is_app, name)| match is_app {
                true => i.name == **name,
                false => i.namespace == **name,
            })
        };
        let keep: Vec<bool> = all.iter().map(picks).collect();
        all.into_iter()
            .zip(keep)
            .filter_map(|(i, keep)| keep.then_some(i))
            .collect()
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Id(id) => write!(f, "{id}"),
            Target::Name(name) => f.write_str(name),
            Target::Names(names) => f.write_str(&names.join(",")),
        }
    }
}

/// Which of an app's streams `logs` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStreams {
    #[default]
    Both,
    Out,
    Err,
}

/// `start` of an app whose name runs already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfRunning {
    /// An error (the command line's `start`).
    #[default]
    Fail,
    /// Nothing if its definition is unchanged, a reload with the new one otherwise (pm2's
    /// startOrReload, for `start ecosystem.yaml`).
    KeepOrReload,
    /// Always a reload (`reload ecosystem.yaml`).
    Reload,
}

/// `scale app N`, `+N`, `-N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleChange {
    To(u32),
    By(i64),
}

impl ScaleChange {
    pub fn parse(text: &str) -> Result<ScaleChange, String> {
        let bad = || format!("`{text}` is not an instance count: use N, +N or -N");
        if let Some(rest) = text.strip_prefix('+') {
            rest.parse::<i64>().map(ScaleChange::By).map_err(|_| bad())
        } else if text.starts_with('-') {
            text.parse::<i64>().map(ScaleChange::By).map_err(|_| bad())
        } else {
            text.parse::<u32>().map(ScaleChange::To).map_err(|_| bad())
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verb")]
pub enum Request {
    Ping,
    /// Start new apps. `base_env` is the client's environment, the base under each app's
    /// declared env (as pm2 does); it is kept in memory only, never saved.
    Start {
        apps: Vec<AppSpec>,
        base_env: BTreeMap<String, String>,
        /// What to do with an app of the same name that runs already.
        #[serde(default)]
        if_running: IfRunning,
    },
    List,
    Describe {
        target: Target,
    },
    Stop {
        target: Target,
    },
    /// Stop and start the target's instances. `apps` carries new definitions (from an
    /// ecosystem file) for apps of the target; empty = keep them.
    Restart {
        target: Target,
        #[serde(default)]
        apps: Vec<AppSpec>,
        /// pm2's --update-env: the client's environment becomes the base of the target's apps.
        #[serde(default)]
        base_env: Option<BTreeMap<String, String>>,
    },
    Delete {
        target: Target,
    },
    /// Stop every app and end the daemon.
    Kill,
    /// Replace the daemon by the program at `exe` in place (same pid; apps, sockets and logs
    /// kept). Like `Kill`, a daemon of another version takes it.
    Update {
        exe: std::path::PathBuf,
        /// The state-record format the new binary reads (`daemon::handoff::FORMAT`).
        format: u32,
    },
    /// Zero-downtime replacement of instances, one (or `parallel`) at a time. `apps` carries
    /// new definitions (from an ecosystem file) for apps of the target; empty = keep them.
    Reload {
        target: Target,
        #[serde(default)]
        apps: Vec<AppSpec>,
        parallel: u32,
        /// As for `Restart`.
        #[serde(default)]
        base_env: Option<BTreeMap<String, String>>,
    },
    Scale {
        app: String,
        change: ScaleChange,
    },
    /// Write the process list (every app's spec and environment) to the dump file; `force`
    /// writes an empty list over a saved one.
    Save {
        #[serde(default)]
        force: bool,
    },
    /// Start the apps of the dump file that do not run.
    Resurrect,
    /// Remove the dump file.
    ClearDump,
    /// Empty the log files of the target's apps.
    Flush {
        target: Target,
    },
    /// Reopen every log file (after an external logrotate moved them).
    ReloadLogs,
    /// Send a signal to the target's running instances (their main process, as pm2's
    /// sendSignal does). `signal` is a name or number, checked by the daemon.
    Signal {
        target: Target,
        signal: String,
    },
    /// Zero the target's restart counts (pm2's reset).
    Reset {
        target: Target,
    },
    /// Give the target's app a new name (pm2's `restart <id> --name NEW`; the CLI restarts it
    /// next). The target must name one app.
    Rename {
        target: Target,
        name: String,
    },
    Logs {
        target: Target,
        lines: usize,
        follow: bool,
        streams: LogStreams,
    },
}

impl Request {
    /// A daemon that works answers these at once (nothing waits for an app): the CLI bounds
    /// the wait for their answer, and for the daemon's hello before any request.
    pub fn answers_at_once(&self) -> bool {
        matches!(
            self,
            Request::Ping
                | Request::List
                | Request::Describe { .. }
                | Request::Save { .. }
                | Request::ClearDump
                | Request::Flush { .. }
                | Request::ReloadLogs
                | Request::Signal { .. }
                | Request::Reset { .. }
                | Request::Rename { .. }
        )
    }

    /// The verb, for the daemon log (never the payload: it may carry env values).
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Start { .. } => "start",
            Request::List => "list",
            Request::Describe { .. } => "describe",
            Request::Stop { .. } => "stop",
            Request::Restart { .. } => "restart",
            Request::Delete { .. } => "delete",
            Request::Kill => "kill",
            Request::Update { .. } => "update",
            Request::Logs { .. } => "logs",
            Request::Reload { .. } => "reload",
            Request::Scale { .. } => "scale",
            Request::Save { .. } => "save",
            Request::Resurrect => "resurrect",
            Request::ClearDump => "cleardump",
            Request::Flush { .. } => "flush",
            Request::ReloadLogs => "reloadLogs",
            Request::Signal { .. } => "signal",
            Request::Reset { .. } => "reset",
            Request::Rename { .. } => "rename",
        }
    }
}
