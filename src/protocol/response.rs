//! Responses. Errors cross the socket as `ErrorReply { kind, message, hint }` so the CLI can
//! choose an exit code and tests can assert on the kind, not on prose.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::event::LifecycleEvent;
use super::model::{AppDetail, InstanceView};
use super::request::LogStreams;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The frame or request could not be understood.
    BadRequest,
    VersionMismatch,
    /// No app or instance matches the target.
    NotFound,
    /// The request conflicts with what runs (an app of that name exists already).
    Conflict,
    /// The app's definition is invalid.
    InvalidSpec,
    /// The OS refused (a port in use, a missing cwd...).
    Os,
    ShuttingDown,
    PermissionDenied,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

impl ErrorReply {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ErrorReply {
        self.hint = Some(hint.into());
        self
    }

    pub fn shutting_down() -> ErrorReply {
        ErrorReply::new(ErrorKind::ShuttingDown, "the daemon is shutting down")
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// A captured output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn wanted(self, streams: LogStreams) -> bool {
        matches!(
            (streams, self),
            (LogStreams::Both, _) | (LogStreams::Out, Stream::Out) | (LogStreams::Err, Stream::Err)
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reply")]
pub enum Response {
    Pong {
        pid: u32,
        version: String,
        uptime_ms: u64,
        apps: usize,
        instances: usize,
    },
    Instances {
        instances: Vec<InstanceView>,
        /// One line each for what the user should know about how it was done (an instance
        /// restarted instead of reloaded).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    Apps {
        apps: Vec<AppDetail>,
    },
    /// The last lines of one log file.
    LogTail {
        app: String,
        stream: Stream,
        file: PathBuf,
        lines: Vec<String>,
        /// The instance whose lines the file holds, when it holds one instance's only.
        #[serde(default)]
        id: Option<u32>,
        /// Its lines start with a timestamp and `: ` (`--time`, `log_date_format`).
        #[serde(default)]
        stamped: bool,
    },
    /// Live lines of one instance.
    LogLines {
        id: u32,
        app: String,
        stream: Stream,
        lines: Vec<String>,
        /// When the daemon read them (milliseconds since the Unix epoch).
        #[serde(default)]
        at_ms: u64,
    },
    /// What happened to an instance (started, exited, restarting...), past or live.
    Lifecycle(LifecycleEvent),
    /// A follower fell behind: this many records were skipped (the files have them).
    LogsDropped {
        records: u64,
    },
    Done {
        message: String,
    },
    /// Something the user should know, ahead of the answer (the CLI prints it on stderr and
    /// reads on).
    Notice {
        message: String,
    },
    /// The last response of a streamed answer.
    End,
    Error(ErrorReply),
}

impl Response {
    /// Instances with no notes.
    pub fn instances(instances: Vec<InstanceView>) -> Response {
        Response::Instances {
            instances,
            notes: Vec::new(),
        }
    }
}
