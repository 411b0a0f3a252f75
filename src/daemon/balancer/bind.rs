//! The daemon's answer to a program's bind() (the preload's rendezvous): the instance's channel
//! for a shared port (declared, or found as instances bind it), a held socket for a fork-mode
//! app's port, or "bind it yourself". Also what a fork-mode instance gets at spawn.

use std::os::fd::OwnedFd;

use super::held::HeldBind;
use super::{Balancer, Prepared};
use crate::abi::{Bind, ENV_RENDEZVOUS_FD};
use crate::daemon::events::InstanceEvent;
use crate::protocol::model::{AppSpec, Strategy};
use tokio::sync::mpsc::UnboundedSender;

/// How a BIND is answered (`abi::Reply`).
pub enum BindAnswer {
    /// The port is shared: the instance's channel for it.
    Bound(OwnedFd),
    /// The port is held for the instance: a listening socket to take.
    Adopt(OwnedFd),
    /// bind() fails with this errno (and why, for the instance's reason).
    Refuse(i32, String),
    /// The program binds for real.
    Pass,
}

impl Balancer {
    /// A fork-mode app's balancer: no listeners, it holds what its instances bind.
    pub fn for_fork(
        spec: &AppSpec,
        events: UnboundedSender<InstanceEvent>,
        preload: std::path::PathBuf,
    ) -> Balancer {
        let mut balancer = Balancer::around(spec, Vec::new(), events, Some(preload));
        balancer.fork = true;
        balancer
    }

    /// Whether this is a fork-mode app's balancer (see `for_fork`).
    pub fn is_fork(&self) -> bool {
        self.fork
    }

    /// A fork-mode instance gets the library and a rendezvous, nothing else.
    pub(super) fn prepare_fork(
        &mut self,
        id: u32,
        mut prepared: Prepared,
    ) -> Result<Prepared, String> {
        let Some(lib) = self.preload.clone() else {
            return Ok(prepared);
        };
        self.add_report_socket(id, &mut prepared, ENV_RENDEZVOUS_FD)?;
        prepared
            .env
            .push(("LD_PRELOAD".into(), lib.display().to_string()));
        Ok(prepared)
    }

    /// Instance `id` (slot `index`) binds `bind.addr`.
    pub fn bind_request(&mut self, id: u32, index: u32, bind: Bind) -> BindAnswer {
        let addr = bind.addr;
        if self.fork {
            return match self.held.bind(id, index, addr, bind.v6only) {
                HeldBind::Adopt(fd) => BindAnswer::Adopt(fd),
                HeldBind::Refuse(errno) => BindAnswer::Refuse(
                    errno,
                    format!(
                        "cannot bind {addr}: another instance of this app holds port {} (fork mode shares no port: use cluster mode, -i N, or give each instance its own port with increment_var)",
                        addr.port()
                    ),
                ),
                HeldBind::Pass => BindAnswer::Pass,
            };
        }
        // A shared port this instance has a channel for already (a declared port asked for by
        // a process behind a wrapper, or a second bind): the same channel again.
        if self.strategy == Strategy::RoundRobin {
            if let Some(slot) = self.pools.get(&addr.port()).and_then(|p| p.slot(id)) {
                return match slot.held_instance_end.try_clone() {
                    Ok(fd) => BindAnswer::Bound(fd),
                    Err(_) => BindAnswer::Refuse(libc::EMFILE, "out of file descriptors".into()),
                };
            }
        }
        match self.bind_discovered(id, addr) {
            Ok(channel) => BindAnswer::Bound(channel),
            Err(0) => BindAnswer::Pass,
            Err(errno) => BindAnswer::Refuse(
                errno,
                format!(
                    "cannot share {addr}: {}",
                    nix::Error::from_raw(errno).desc()
                ),
            ),
        }
    }

    /// Instance `id` listens (READY): held ports it inherited and did not bind close.
    pub fn listening(&mut self, id: u32) {
        self.held.listening(id);
    }

    /// Whether a fork-mode instance of this app holds `port`.
    pub fn holds_port(&self, port: u16) -> bool {
        self.held.holds_port(port)
    }

    /// Whether instance `id` holds a port through the daemon (a reload can then swap it).
    pub fn holds(&self, id: u32) -> bool {
        self.held.owns(id)
    }

    /// Connections waiting for instance `id` in the sockets it is leaving (see `Held::pending`).
    pub fn pending(&self, id: u32) -> u32 {
        self.held.pending(id)
    }

    /// Instance `id` is done with its ports (stopped, errored or removed; not a restart);
    /// `successor` (the live instance of its slot not listening yet, if any) inherits those it
    /// has not bound.
    pub fn retire(&mut self, id: u32, successor: Option<u32>) {
        self.held.retire(id, successor);
    }

    /// A named rendezvous listener: watched, with a copy kept for a handover.
    pub(super) fn watch_named_rendezvous(
        &mut self,
        id: u32,
        listener: OwnedFd,
    ) -> Result<(), String> {
        let kept = listener
            .try_clone()
            .map_err(|e| format!("cannot duplicate a rendezvous listener: {e}"))?;
        let task = super::channel::spawn_named_rendezvous(listener, id, self.events.clone())?;
        self.readers.entry(id).or_default().push(task);
        self.named.insert(id, kept);
        Ok(())
    }
}
