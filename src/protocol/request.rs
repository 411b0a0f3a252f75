//! Requests: one variant per CLI verb. Targets are resolved by the daemon (ids and names);
//! ecosystem files are read by the CLI and arrive as app names or specs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::AppSpec;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verb")]
pub enum Request {
    Ping,
    /// Start new apps. `base_env` is the client's environment, the base under each app's
    /// declared env (as pm2 does); it is kept in memory only, never saved.
    Start {
        apps: Vec<AppSpec>,
        base_env: BTreeMap<String, String>,
    },
    List,
    Describe {
        target: Target,
    },
    Stop {
        target: Target,
    },
    Restart {
        target: Target,
    },
    Delete {
        target: Target,
    },
    /// Stop every app and end the daemon.
    Kill,
    Logs {
        target: Target,
        lines: usize,
        follow: bool,
        streams: LogStreams,
    },
}

impl Request {
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
            Request::Logs { .. } => "logs",
        }
    }
}
