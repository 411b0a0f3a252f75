//! The supervisor's side of cluster mode: bind an app's sockets at start, refusing what cannot
//! work (round-robin for a static binary, a port in use) with a message naming the app.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{send, MsgFlags};

use super::actor::Supervisor;
use crate::abi::{
    encode_reply, send_with_fd, Bind, KIND_ADOPT, KIND_BOUND, KIND_PASS, KIND_REFUSE,
};
use crate::daemon::balancer::elf::is_static_elf;
use crate::daemon::balancer::{Balancer, BindAnswer};
use crate::daemon::process::spawn::resolve_program;
use crate::protocol::model::{AppSpec, CommandSpec, Strategy};
use crate::protocol::{ErrorKind, ErrorReply};

impl Supervisor {
    /// The preload asks about a bind: answer with the instance's channel (BOUND), a held
    /// socket (ADOPT, fork mode), an errno (REFUSE), or "bind it yourself" (PASS).
    pub(super) fn on_bind_request(&mut self, id: u32, bind: Bind, reply: OwnedFd) {
        let pass = |reply: &OwnedFd| {
            let _ = send(
                reply.as_raw_fd(),
                &encode_reply(KIND_PASS, 0),
                MsgFlags::MSG_DONTWAIT,
            );
        };
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let (app_name, index) = (inst.app.clone(), inst.index);
        let port = bind.addr.port();
        // Another app holding the port would otherwise let this one join its reuseport group.
        let other = self.apps.iter().find(|(name, app)| {
            **name != app_name && app.balancer.as_ref().is_some_and(|b| b.holds_port(port))
        });
        let answer = match other {
            Some((other, _)) => BindAnswer::Refuse(
                libc::EADDRINUSE,
                format!("cannot bind {}: app \"{other}\" holds that port", bind.addr),
            ),
            None => match self
                .apps
                .get_mut(&app_name)
                .and_then(|a| a.balancer.as_mut())
            {
                Some(balancer) => balancer.bind_request(id, index, bind),
                None => BindAnswer::Pass,
            },
        };
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let sent = match answer {
            BindAnswer::Bound(fd) => send_with_fd(
                reply.as_fd(),
                &encode_reply(KIND_BOUND, 0),
                fd.as_fd(),
                flags,
            )
            .map(|_| ()),
            BindAnswer::Adopt(fd) => send_with_fd(
                reply.as_fd(),
                &encode_reply(KIND_ADOPT, 0),
                fd.as_fd(),
                flags,
            )
            .map(|_| ()),
            BindAnswer::Refuse(errno, why) => {
                if let Some(inst) = self.instances.get_mut(&id) {
                    inst.reason = Some(why);
                }
                send(
                    reply.as_raw_fd(),
                    &encode_reply(KIND_REFUSE, errno as u32),
                    flags,
                )
                .map(|_| ())
            }
            BindAnswer::Pass => {
                pass(&reply);
                Ok(())
            }
        };
        if let Err(e) = sent {
            crate::dlog!("app {app_name}: cannot answer a bind of {}: {e}", bind.addr);
        }
    }

    /// The app's balancer: a cluster app's, or a fork-mode app's that holds its ports (None
    /// where the preload cannot reach the program: see `static_program`).
    pub(super) fn bind_cluster(&self, spec: &AppSpec) -> Result<Option<Balancer>, ErrorReply> {
        if spec.cluster.listen.is_empty() && !spec.cluster.discover {
            let Some(preload) = self.cluster.preload.clone() else {
                return Ok(None);
            };
            if static_program(spec).is_some() {
                return Ok(None);
            }
            return Ok(Some(Balancer::for_fork(
                spec,
                self.cluster.events.clone(),
                preload,
            )));
        }
        let fail = |message: String| {
            ErrorReply::new(ErrorKind::Os, format!("app \"{}\": {message}", spec.name))
        };
        if spec.cluster.balance == Strategy::RoundRobin {
            if self.cluster.preload.is_none() {
                return Err(fail("round-robin needs the preload library, which could not be installed (see the daemon log)".into()));
            }
            if let Some(resolved) = static_program(spec) {
                return Err(fail(format!(
                    "{} is statically linked, so the preload library cannot reach its bind(): \
                     use --balance shared if it takes its socket from LISTEN_FDS, or --balance proxy if it listens on $PORT",
                    resolved.display()
                )));
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

/// The app's program, when it is statically linked (no ELF interpreter): the preload library
/// cannot reach its bind().
pub(super) fn static_program(spec: &AppSpec) -> Option<std::path::PathBuf> {
    let CommandSpec::Exec { program, .. } = &spec.command else {
        return None;
    };
    // resolve_program falls back to the default PATH, as the spawn does.
    let path = spec.env.get("PATH").map(String::as_str);
    let resolved = resolve_program(program, &spec.cwd, path).ok()?;
    (is_static_elf(&resolved) == Some(true)).then_some(resolved)
}
