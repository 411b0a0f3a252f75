//! A balancer across `rcluster update`: the old image describes its sockets (with the dealers
//! paused and the proxy workers frozen, so nothing moves), the new one rebuilds it around the
//! same fds and starts dealing again, parked connections first.

use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use super::deal::{Pool, Slot};
use super::held::HeldExport;
use super::proxy::Backend;
use super::{channel, Balancer, HandedConn, Listener};
use crate::abi::CONN_LEN;
use crate::daemon::events::InstanceEvent;
use crate::daemon::handoff::{FdsIn, FdsOut};
use crate::protocol::model::{AppSpec, ListenAddr};

#[derive(Serialize, Deserialize)]
pub struct BalancerHandoff {
    listeners: Vec<(ListenAddr, RawFd)>,
    pools: Vec<PoolHandoff>,
    detached: Vec<(u32, Vec<SlotHandoff>)>,
    rendezvous: Vec<(u32, RawFd)>,
    reuseport: Vec<(u32, Vec<RawFd>)>,
    backends: Vec<BackendHandoff>,
    declared_ports: Vec<u16>,
    /// Proxied connections, handed over between two copies.
    #[serde(default)]
    proxied: Vec<ProxiedHandoff>,
    /// A fork-mode app's balancer (`Balancer::for_fork`).
    #[serde(default)]
    fork: bool,
    /// Held sockets of fork-mode instances, with their fds in order.
    #[serde(default)]
    held: Vec<(HeldExport, Vec<RawFd>)>,
    /// Named rendezvous listeners of instances.
    #[serde(default)]
    named: Vec<(u32, RawFd)>,
}

#[derive(Serialize, Deserialize)]
struct ProxiedHandoff {
    backend: Option<u32>,
    client: RawFd,
    upstream: Option<RawFd>,
    ended: [bool; 2],
}

#[derive(Serialize, Deserialize)]
struct PoolHandoff {
    port: u16,
    cursor: usize,
    slots: Vec<SlotHandoff>,
    parked: Vec<(RawFd, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct SlotHandoff {
    id: u32,
    daemon_end: RawFd,
    held_instance_end: RawFd,
    ready: bool,
    accepted: u64,
}

#[derive(Serialize, Deserialize)]
struct BackendHandoff {
    id: u32,
    port: u16,
    ready: bool,
    accepted: u64,
}

fn export_slot(slot: &Slot, fds: &mut FdsOut) -> SlotHandoff {
    SlotHandoff {
        id: slot.id,
        daemon_end: fds.keep(&slot.daemon_end),
        held_instance_end: fds.keep(&slot.held_instance_end),
        ready: slot.ready.load(Ordering::Acquire),
        accepted: slot.accepted.load(Ordering::Relaxed),
    }
}

fn adopt_slot(slot: SlotHandoff, fds: &mut FdsIn) -> Result<Arc<Slot>, String> {
    Ok(Arc::new(Slot {
        id: slot.id,
        daemon_end: fds.take(slot.daemon_end)?,
        held_instance_end: fds.take(slot.held_instance_end)?,
        ready: AtomicBool::new(slot.ready),
        accepted: AtomicU64::new(slot.accepted),
        gate: std::sync::Mutex::new(()),
    }))
}

impl Balancer {
    /// Describe this balancer for the next image (dealers paused, proxy workers frozen), with
    /// the proxied connections handed over (`conns`: every app's).
    pub fn export(&self, fds: &mut FdsOut, conns: &[HandedConn]) -> BalancerHandoff {
        let pools = self
            .pools
            .iter()
            .map(|(port, pool)| {
                let (slots, cursor, parked) = pool.export();
                PoolHandoff {
                    port: *port,
                    cursor,
                    slots: slots.iter().map(|s| export_slot(s, fds)).collect(),
                    parked: parked
                        .into_iter()
                        .map(|(fd, msg)| (fds.keep(&fd), msg.to_vec()))
                        .collect(),
                }
            })
            .collect();
        BalancerHandoff {
            listeners: self
                .listeners
                .iter()
                .map(|l| (l.addr.clone(), fds.keep(&*l.fd)))
                .collect(),
            pools,
            detached: self
                .detached
                .iter()
                .map(|(id, slots)| (*id, slots.iter().map(|s| export_slot(s, fds)).collect()))
                .collect(),
            rendezvous: self
                .rendezvous
                .iter()
                .map(|(id, fd)| (*id, fds.keep(fd)))
                .collect(),
            reuseport: self
                .reuseport
                .iter()
                .map(|(index, own)| (*index, own.iter().map(|fd| fds.keep(fd)).collect()))
                .collect(),
            backends: self
                .backends
                .all()
                .iter()
                .map(|b| BackendHandoff {
                    id: b.id,
                    port: b.port,
                    ready: b.ready.load(Ordering::Acquire),
                    accepted: b.accepted.load(Ordering::Relaxed),
                })
                .collect(),
            declared_ports: self.declared_ports.clone(),
            fork: self.fork,
            held: self.held.export(|fd| fds.keep(fd)),
            named: self
                .named
                .iter()
                .map(|(id, fd)| (*id, fds.keep(fd)))
                .collect(),
            proxied: conns
                .iter()
                .filter(|c| *c.app == *self.app)
                .map(|c| ProxiedHandoff {
                    backend: c.backend,
                    client: fds.keep(&c.client),
                    upstream: c.upstream.as_ref().map(|fd| fds.keep(fd)),
                    ended: c.ended,
                })
                .collect(),
        }
    }

    /// Rebuild the balancer a previous image described, and start dealing again.
    pub fn adopt(
        spec: &AppSpec,
        handoff: BalancerHandoff,
        events: UnboundedSender<InstanceEvent>,
        preload: Option<PathBuf>,
        fds: &mut FdsIn,
    ) -> Result<Balancer, String> {
        let mut listeners = Vec::new();
        for (addr, fd) in handoff.listeners {
            listeners.push(Listener {
                addr,
                fd: Arc::new(fds.take(fd)?),
            });
        }
        let mut balancer = Balancer::around(spec, listeners, events, preload);
        balancer.declared_ports = handoff.declared_ports;
        balancer.fork = handoff.fork;
        for (export, carried) in handoff.held {
            let mut own = Vec::new();
            for fd in carried {
                own.push(fds.take(fd)?);
            }
            balancer.held.adopt(export, own);
        }
        for (id, fd) in handoff.named {
            balancer.watch_named_rendezvous(id, fds.take(fd)?)?;
        }
        for carried in handoff.pools {
            let mut slots = Vec::new();
            for slot in carried.slots {
                slots.push(adopt_slot(slot, fds)?);
            }
            let mut parked = Vec::new();
            for (fd, msg) in carried.parked {
                let mut bytes = [0u8; CONN_LEN];
                if msg.len() == CONN_LEN {
                    bytes.copy_from_slice(&msg);
                }
                parked.push((fds.take(fd)?, bytes));
            }
            let pool = Arc::new(Pool::restore(slots.clone(), carried.cursor, parked));
            for slot in slots {
                let reader = channel::spawn_ready_reader(
                    slot.clone(),
                    pool.clone(),
                    balancer.events.clone(),
                )?;
                balancer.readers.entry(slot.id).or_default().push(reader);
            }
            balancer.pools.insert(carried.port, pool);
        }
        for (id, carried) in handoff.detached {
            let mut slots = Vec::new();
            for slot in carried {
                slots.push(adopt_slot(slot, fds)?);
            }
            balancer.detached.insert(id, slots);
        }
        for (id, fd) in handoff.rendezvous {
            balancer.watch_rendezvous(id, fds.take(fd)?)?;
        }
        for (index, carried) in handoff.reuseport {
            let mut own = Vec::new();
            for fd in carried {
                own.push(fds.take(fd)?);
            }
            balancer.reuseport.insert(index, own);
        }
        for backend in handoff.backends {
            balancer.backends.add(Arc::new(Backend {
                id: backend.id,
                port: backend.port,
                ready: backend.ready.into(),
                open: 0.into(),
                accepted: backend.accepted.into(),
            }));
        }
        balancer.start_accepting()?;
        for pool in balancer.pools.values() {
            pool.deal_parked();
        }
        for carried in handoff.proxied {
            let conn = HandedConn {
                app: Arc::from(balancer.app.as_str()),
                backend: carried.backend,
                client: fds.take(carried.client)?,
                upstream: carried.upstream.map(|fd| fds.take(fd)).transpose()?,
                ended: carried.ended,
            };
            balancer.resume_proxied(conn);
        }
        Ok(balancer)
    }

    /// An instance's rendezvous socket (port discovery): read its BIND requests, and keep a
    /// copy of the daemon's end for a handover.
    pub(super) fn watch_rendezvous(&mut self, id: u32, daemon_end: OwnedFd) -> Result<(), String> {
        let kept = daemon_end
            .try_clone()
            .map_err(|e| format!("cannot duplicate a rendezvous socket: {e}"))?;
        let reader = channel::spawn_rendezvous_reader(daemon_end, id, self.events.clone())?;
        self.readers.entry(id).or_default().push(reader);
        self.rendezvous.insert(id, kept);
        Ok(())
    }

    /// After adoption: whether instance `id` still waits for its private port to answer (its
    /// probe is started again with `started`).
    pub fn awaits_probe(&self, id: u32) -> bool {
        self.backends
            .get(id)
            .is_some_and(|b| !b.ready.load(Ordering::Acquire))
    }
}
