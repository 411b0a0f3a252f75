//! The supervisor's side of cluster mode: bind an app's sockets at start, refusing what cannot
//! work (round-robin for a static binary, a port in use) with a message naming the app.

use super::actor::Supervisor;
use crate::daemon::balancer::elf::is_static_elf;
use crate::daemon::balancer::Balancer;
use crate::daemon::process::spawn::resolve_program;
use crate::protocol::model::{AppSpec, CommandSpec, Strategy};
use crate::protocol::{ErrorKind, ErrorReply};

impl Supervisor {
    /// The app's balancer, or None for an app without listeners.
    pub(super) fn bind_cluster(&self, spec: &AppSpec) -> Result<Option<Balancer>, ErrorReply> {
        if spec.cluster.listen.is_empty() {
            return Ok(None);
        }
        let fail = |message: String| {
            ErrorReply::new(ErrorKind::Os, format!("app \"{}\": {message}", spec.name))
        };
        if spec.cluster.balance == Strategy::RoundRobin {
            if self.cluster.preload.is_none() {
                return Err(fail("round-robin needs the preload library, which could not be installed (see the daemon log)".into()));
            }
            if let CommandSpec::Exec { program, .. } = &spec.command {
                let path = spec
                    .env
                    .get("PATH")
                    .map(String::as_str)
                    .or(Some(DEFAULT_SEARCH_PATH));
                if let Ok(resolved) = resolve_program(program, &spec.cwd, path) {
                    if is_static_elf(&resolved) == Some(true) {
                        return Err(fail(format!(
                            "{} is statically linked, so the preload library cannot reach its bind(): \
                             use --balance shared if it takes its socket from LISTEN_FDS, or --balance proxy if it listens on $PORT",
                            resolved.display()
                        )));
                    }
                }
            }
        }
        Balancer::bind(
            spec,
            self.cluster.events.clone(),
            self.cluster.preload.clone(),
        )
        .map(Some)
        .map_err(fail)
    }
}

/// Where a static-binary check looks when the app declares no PATH.
const DEFAULT_SEARCH_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
