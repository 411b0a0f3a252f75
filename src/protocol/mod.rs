//! The control protocol between the CLI and the daemon: length-delimited JSON frames, a `Hello`
//! each way first, then requests and responses. Serde only: no tokio types, no daemon types, so
//! both sides (and tests speaking raw bytes) share one definition.

pub mod event;
pub mod frame;
pub mod model;
pub mod request;
pub mod response;

use serde::{Deserialize, Serialize};

pub use request::{IfRunning, LogStreams, Request, ScaleChange, Target};
pub use response::{ErrorKind, ErrorReply, Response};

/// Bumped when a frame's shape changes incompatibly.
pub const PROTOCOL: u32 = 1;

/// The crate version, exchanged in `Hello` so a mismatch can be named.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit code of a daemon that found another one holding the home's lock (the CLI then waits
/// for the winner to answer).
pub const EXIT_DAEMON_ALREADY_RUNNING: i32 = 3;

/// Set to 1 in the daemon's environment to resurrect the saved process list at its start (the
/// systemd unit of `rcluster startup` does).
pub const RESURRECT_ENV: &str = "RCLUSTER_RESURRECT";

/// First frame each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub version: String,
}

impl Hello {
    pub fn ours() -> Hello {
        Hello {
            protocol: PROTOCOL,
            version: VERSION.to_owned(),
        }
    }

    /// `None` when the peer speaks our protocol and version.
    pub fn mismatch(&self, peer: &Hello) -> Option<String> {
        (self != peer).then(|| {
            format!(
                "version mismatch: the daemon is rcluster {} (protocol {}), this command is rcluster {} (protocol {}); \
                 stop the old daemon with `rcluster kill` (its apps stop too), then run the command again",
                peer.version, peer.protocol, self.version, self.protocol
            )
        })
    }
}
