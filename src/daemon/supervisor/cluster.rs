//! The supervisor's side of cluster mode: bind an app's sockets at start, refusing what cannot
//! work (round-robin for a static binary, a port in use) with a message naming the app.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{send, MsgFlags};

use super::actor::Supervisor;
use crate::abi::{encode_reply, send_with_fd, KIND_BOUND, KIND_PASS, KIND_REFUSE};
use crate::daemon::balancer::elf::is_static_elf;
use crate::daemon::balancer::Balancer;
use crate::daemon::process::spawn::resolve_program;
use crate::protocol::model::{AppSpec, CommandSpec, Strategy};
use crate::protocol::{ErrorKind, ErrorReply};

impl Supervisor {
    /// Port discovery: an instance binds a port; answer with its channel (BOUND), an errno
    /// (REFUSE), or "bind it yourself" (PASS).
    pub(super) fn on_bind_request(&mut self, id: u32, addr: SocketAddr, reply: OwnedFd) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let Some(balancer) = self
            .apps
            .get_mut(&inst.app)
            .and_then(|a| a.balancer.as_mut())
        else {
            let _ = send(
                reply.as_raw_fd(),
                &encode_reply(KIND_PASS, 0),
                MsgFlags::MSG_DONTWAIT,
            );
            return;
        };
        match balancer.bind_discovered(id, addr) {
            Ok(channel) => {
                let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
                if let Err(e) = send_with_fd(
                    reply.as_fd(),
                    &encode_reply(KIND_BOUND, 0),
                    channel.as_fd(),
                    flags,
                ) {
                    crate::dlog!("app {}: cannot answer a bind of {addr}: {e}", inst.app);
                }
            }
            Err(0) => {
                let _ = send(
                    reply.as_raw_fd(),
                    &encode_reply(KIND_PASS, 0),
                    MsgFlags::MSG_DONTWAIT,
                );
            }
            Err(errno) => {
                let why = nix::Error::from_raw(errno).desc();
                inst.reason = Some(format!("cannot share {addr}: {why}"));
                let _ = send(
                    reply.as_raw_fd(),
                    &encode_reply(KIND_REFUSE, errno as u32),
                    MsgFlags::MSG_DONTWAIT,
                );
            }
        }
    }

    /// The app's balancer, or None for an app without listeners.
    pub(super) fn bind_cluster(&self, spec: &AppSpec) -> Result<Option<Balancer>, ErrorReply> {
        if spec.cluster.listen.is_empty() && !spec.cluster.discover {
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
                // resolve_program falls back to the default PATH, as the spawn does.
                let path = spec.env.get("PATH").map(String::as_str);
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
