//! Cluster mode (PRODUCT.md §4): the daemon owns an app's listening sockets for its whole life
//! and shares them with the instances by the app's strategy:
//! - `round-robin`: accept and deal each connection over a per-instance channel (`deal`,
//!   `channel`; unmodified programs through the preload library);
//! - `shared`: every instance gets the one socket (LISTEN_FDS), the kernel balances;
//! - `reuseport`: one SO_REUSEPORT socket per instance slot, held by the daemon;
//! - `proxy` / `least-conn`: L4 proxy to per-instance private ports (`proxy`).
//!
//! A fork-mode app (nothing shared) has a balancer too, with no listeners: it holds the ports
//! its instances bind (`held`), so that a reload swaps sockets instead of closing the port.
//!
//! The supervisor owns one `Balancer` per cluster app and calls it around each instance's life:
//! `prepare` before spawning, `started` after, `detach` before a stop and after an exit.

mod bind;
mod channel;
mod deal;
pub mod elf;
pub mod handoff;
mod held;
mod listen;
mod proxy;
mod pump;

pub use bind::BindAnswer;
pub use deal::{pause_dealers, resume_dealers};
pub use proxy::{freeze_workers, Frozen};
pub use pump::{HandedConn, HANDOVER as PROXY_HANDOVER};

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use std::net::SocketAddr;

use crate::abi::{
    format_channels, ENV_ACTIVATION_FD, ENV_CHANNELS, ENV_PRIVATE_PORTS, ENV_RENDEZVOUS_FD,
    ENV_RENDEZVOUS_NAME,
};
use crate::daemon::events::InstanceEvent;
use crate::daemon::process::conns::Served;
use crate::protocol::model::{AppSpec, ListenAddr, Strategy};
use deal::Pool;
use proxy::{Backend, Backends};

/// What an instance needs from the balancer at spawn: fds for 3.., environment, and whether
/// the `__exec` trampoline must set LISTEN_PID.
#[derive(Default)]
pub struct Prepared {
    pub fds: Vec<OwnedFd>,
    pub env: Vec<(String, String)>,
    pub needs_listen_pid: bool,
}

struct Listener {
    addr: ListenAddr,
    fd: Arc<OwnedFd>,
}

pub struct Balancer {
    app: String,
    strategy: Strategy,
    listeners: Vec<Listener>,
    /// round-robin: one pool per port.
    pools: BTreeMap<u16, Arc<Pool>>,
    readers: HashMap<u32, Vec<JoinHandle<()>>>,
    /// reuseport: each instance slot's own sockets, kept across its restarts.
    reuseport: HashMap<u32, Vec<OwnedFd>>,
    backends: Arc<Backends>,
    probes: HashMap<u32, JoinHandle<()>>,
    proxies: Vec<JoinHandle<()>>,
    events: UnboundedSender<InstanceEvent>,
    preload: Option<PathBuf>,
    /// Channels of instances out of the rotation whose processes still run.
    detached: HashMap<u32, Vec<Arc<deal::Slot>>>,
    /// Port discovery: a copy of each instance's rendezvous socket (daemon end).
    rendezvous: HashMap<u32, OwnedFd>,
    /// Declared TCP ports, in order (their channels are the LISTEN_FDS).
    declared_ports: Vec<u16>,
    discover: bool,
    private_ports: Vec<u16>,
    /// A fork-mode app: nothing is shared, the ports its instances bind are held.
    fork: bool,
    held: held::Held,
    /// Each instance's named rendezvous listener (a copy, for a handover).
    named: HashMap<u32, OwnedFd>,
}

impl Balancer {
    /// Bind every listener of the app now, so a port conflict fails the start, not an instance.
    pub fn bind(
        spec: &AppSpec,
        events: UnboundedSender<InstanceEvent>,
        preload: Option<PathBuf>,
    ) -> Result<Balancer, String> {
        let strategy = spec.cluster.balance;
        let mut listeners = Vec::new();
        for addr in &spec.cluster.listen {
            if matches!(addr, ListenAddr::Unix(_)) && strategy != Strategy::Shared {
                return Err(format!(
                    "listen {addr}: Unix sockets work with --balance shared only (the program takes them from LISTEN_FDS)"
                ));
            }
            let fd = if strategy == Strategy::Reuseport {
                listen::reserve_reuseport(addr)?
            } else {
                listen::bind_listener(addr, false)?
            };
            // Port 0 asked the kernel for one: from now on the app's address is the real one.
            let addr = match addr {
                ListenAddr::Tcp(sa) => {
                    let mut sa = *sa;
                    if let Some(port) = listen::local_port(&fd) {
                        sa.set_port(port);
                    }
                    ListenAddr::Tcp(sa)
                }
                other => other.clone(),
            };
            listeners.push(Listener {
                addr,
                fd: Arc::new(fd),
            });
        }
        let mut balancer = Balancer::around(spec, listeners, events, preload);
        for listener in &balancer.listeners {
            if let Some(port) = port_of(&listener.addr) {
                if !balancer.declared_ports.contains(&port) {
                    balancer.declared_ports.push(port);
                }
            }
        }
        balancer.start_accepting()?;
        Ok(balancer)
    }

    /// The app was renamed: new instances get their sockets under the new name.
    pub fn rename(&mut self, app: &str) {
        self.app = app.to_owned();
    }

    /// A balancer of `spec` with these listeners and nothing else yet.
    fn around(
        spec: &AppSpec,
        listeners: Vec<Listener>,
        events: UnboundedSender<InstanceEvent>,
        preload: Option<PathBuf>,
    ) -> Balancer {
        Balancer {
            app: spec.name.clone(),
            strategy: spec.cluster.balance,
            listeners,
            pools: BTreeMap::new(),
            readers: HashMap::new(),
            reuseport: HashMap::new(),
            backends: Arc::new(Backends::default()),
            probes: HashMap::new(),
            proxies: Vec::new(),
            events,
            preload,
            detached: HashMap::new(),
            rendezvous: HashMap::new(),
            declared_ports: Vec::new(),
            discover: spec.cluster.discover,
            private_ports: spec.cluster.private_ports.clone(),
            fork: false,
            held: held::Held::new(),
            named: HashMap::new(),
        }
    }

    fn start_accepting(&mut self) -> Result<(), String> {
        match self.strategy {
            Strategy::RoundRobin => {
                for listener in &self.listeners {
                    let Some(port) = port_of(&listener.addr) else {
                        continue;
                    };
                    let pool = self.pools.entry(port).or_default().clone();
                    deal::spawn_dealer(
                        listener.fd.clone(),
                        pool,
                        format!("{} {}", self.app, listener.addr),
                    )
                    .map_err(|e| format!("cannot start dealing for {}: {e}", listener.addr))?;
                }
            }
            Strategy::Proxy | Strategy::LeastConn => {
                let route = self.route();
                for listener in &self.listeners {
                    self.proxies
                        .extend(proxy::spawn_proxy(&listener.fd, &route)?);
                }
            }
            // The instances accept on these sockets themselves.
            Strategy::Shared | Strategy::Reuseport => {}
        }
        Ok(())
    }

    fn route(&self) -> proxy::Route {
        proxy::Route {
            app: Arc::from(self.app.as_str()),
            backends: self.backends.clone(),
            least_conn: self.strategy == Strategy::LeastConn,
        }
    }

    /// Go on with a proxied connection of this app that was handed over.
    pub fn resume_proxied(&self, conn: HandedConn) {
        if let Err(e) = proxy::resume(conn, &self.route()) {
            crate::dlog!("app {}: a proxied connection is lost: {e}", self.app);
        }
    }

    /// Whether the app has a listener yet (with port discovery, not before an instance binds).
    pub fn has_listeners(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// The app's addresses with real port numbers (a fork app's: those its instances hold).
    pub fn addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = self.listeners.iter().map(|l| l.addr.to_string()).collect();
        all.extend(self.held.addresses());
        all
    }

    fn first_port(&self) -> Option<u16> {
        self.listeners.iter().find_map(|l| port_of(&l.addr))
    }

    /// The address of the (first) listener on `port`.
    fn listener_addr(&self, port: u16) -> Option<SocketAddr> {
        self.listeners.iter().find_map(|l| match l.addr {
            ListenAddr::Tcp(sa) if sa.port() == port => Some(sa),
            _ => None,
        })
    }

    /// An instance → daemon socket (rendezvous or activation fd): watched here, its instance
    /// end the child's next fd, named to the library by `env`. A rendezvous can also be reached
    /// by name, from processes of the instance that did not inherit the fd (wrappers).
    fn add_report_socket(
        &mut self,
        id: u32,
        prepared: &mut Prepared,
        env: &str,
    ) -> Result<(), String> {
        let (daemon_end, instance_end) = channel::new_rendezvous()?;
        self.watch_rendezvous(id, daemon_end)?;
        let fd = 3 + prepared.fds.len();
        prepared.fds.push(instance_end);
        prepared.env.push((env.into(), fd.to_string()));
        if env == ENV_RENDEZVOUS_FD {
            let (name, listener) = channel::new_named_rendezvous()?;
            self.watch_named_rendezvous(id, listener)?;
            prepared.env.push((ENV_RENDEZVOUS_NAME.into(), name));
        }
        Ok(())
    }

    pub fn prepare(&mut self, id: u32, index: u32) -> Result<Prepared, String> {
        let mut prepared = Prepared::default();
        if self.fork {
            return self.prepare_fork(id, prepared);
        }
        // Sockets for sd_listen_fds(3): the declared listeners, first, at 3...
        let mut listen_fds = 0;
        match self.strategy {
            Strategy::RoundRobin => {
                let mut channels = Vec::new();
                let mut readers = Vec::new();
                // Declared ports first (they are the LISTEN_FDS), then discovered ones.
                let mut ports = self.declared_ports.clone();
                ports.extend(
                    self.pools
                        .keys()
                        .filter(|p| !self.declared_ports.contains(p)),
                );
                for port in ports {
                    let (Some(pool), Some(addr)) =
                        (self.pools.get(&port), self.listener_addr(port))
                    else {
                        continue;
                    };
                    let (slot, instance_end) = channel::new_channel(id, &addr)?;
                    readers.push(channel::spawn_ready_reader(
                        slot.clone(),
                        pool.clone(),
                        self.events.clone(),
                    )?);
                    pool.add(slot);
                    channels.push((port, 3 + prepared.fds.len() as i32));
                    prepared.fds.push(instance_end);
                    if self.declared_ports.contains(&port) {
                        listen_fds += 1;
                    }
                }
                self.readers.insert(id, readers);
                // Declared ports too: a process behind a wrapper that did not pass its
                // channels on asks for them there.
                self.add_report_socket(id, &mut prepared, ENV_RENDEZVOUS_FD)?;
                if !self.private_ports.is_empty() {
                    let list: Vec<String> = self.private_ports.iter().map(u16::to_string).collect();
                    prepared
                        .env
                        .push((ENV_PRIVATE_PORTS.into(), list.join(",")));
                }
                prepared
                    .env
                    .push((ENV_CHANNELS.into(), format_channels(&channels)));
            }
            Strategy::Shared => {
                for listener in &self.listeners {
                    prepared.fds.push(listen::dup(&listener.fd)?);
                }
                listen_fds = prepared.fds.len();
            }
            Strategy::Reuseport => {
                if !self.reuseport.contains_key(&index) {
                    let mut own = Vec::new();
                    for listener in &self.listeners {
                        own.push(listen::bind_listener(&listener.addr, true)?);
                    }
                    self.reuseport.insert(index, own);
                }
                for fd in self.reuseport.get(&index).into_iter().flatten() {
                    prepared.fds.push(listen::dup(fd)?);
                }
                listen_fds = prepared.fds.len();
            }
            Strategy::Proxy | Strategy::LeastConn => {
                let port = proxy::private_port()?;
                self.backends.add(Arc::new(Backend {
                    id,
                    port,
                    ready: false.into(),
                    open: 0.into(),
                    accepted: 0.into(),
                }));
                prepared.env.push(("PORT".into(), port.to_string()));
                return Ok(prepared);
            }
        }
        if let Some(lib) = &self.preload {
            prepared
                .env
                .push(("LD_PRELOAD".into(), lib.display().to_string()));
            if matches!(self.strategy, Strategy::Shared | Strategy::Reuseport) && listen_fds > 0 {
                // The library says READY here when the program takes up its sockets, so that a
                // reload need not wait listen_timeout for each instance.
                self.add_report_socket(id, &mut prepared, ENV_ACTIVATION_FD)?;
            }
        }
        if listen_fds > 0 {
            // systemd's socket-activation protocol (sd_listen_fds(3)). LISTEN_PID is set by the
            // `__exec` trampoline (the program's own pid), and by the preload library in each
            // process of a wrapper chain that forks (`npm start`).
            prepared
                .env
                .push(("LISTEN_FDS".into(), listen_fds.to_string()));
            prepared.env.push((
                "LISTEN_FDNAMES".into(),
                vec![self.app.as_str(); listen_fds].join(":"),
            ));
            prepared
                .env
                .push(("RCLUSTER_LISTEN_PID_FIX".into(), "1".into()));
            prepared.needs_listen_pid = true;
        }
        if let Some(port) = self.first_port() {
            prepared.env.push(("PORT".into(), port.to_string()));
        }
        Ok(prepared)
    }

    /// Port discovery: the instance binds `addr` itself; create (or reuse) the daemon's listener
    /// for that port and give the instance its channel. Err is the errno its bind() gets.
    fn bind_discovered(&mut self, id: u32, addr: SocketAddr) -> Result<OwnedFd, i32> {
        if !self.discover
            || self.strategy != Strategy::RoundRobin
            || self.private_ports.contains(&addr.port())
        {
            return Err(0);
        }
        let port = addr.port();
        if !self.pools.contains_key(&port) {
            let fd = listen::bind_discovered(addr).map_err(|e| {
                crate::dlog!(
                    "app {}: cannot share port {port} ({addr}): {}",
                    self.app,
                    e.desc()
                );
                e as i32
            })?;
            let pool: Arc<Pool> = Arc::default();
            let listener = Arc::new(fd);
            deal::spawn_dealer(
                listener.clone(),
                pool.clone(),
                format!("{} {addr}", self.app),
            )
            .map_err(|_| libc::EAGAIN)?;
            crate::dlog!(
                "app {}: sharing {addr}, found as its instances bind it",
                self.app
            );
            self.listeners.push(Listener {
                addr: ListenAddr::Tcp(addr),
                fd: listener,
            });
            self.pools.insert(port, pool);
        }
        let pool = self.pools.get(&port).cloned().ok_or(libc::EAGAIN)?;
        if let Some(slot) = pool.slot(id) {
            // Bound before (a second bind of the same port): the same channel again.
            return slot.held_instance_end.try_clone().map_err(|_| libc::EMFILE);
        }
        let shared = self.listener_addr(port).unwrap_or(addr);
        let (slot, instance_end) = channel::new_channel(id, &shared).map_err(|_| libc::EMFILE)?;
        let reader = channel::spawn_ready_reader(slot.clone(), pool.clone(), self.events.clone())
            .map_err(|_| libc::EMFILE)?;
        pool.add(slot);
        self.readers.entry(id).or_default().push(reader);
        Ok(instance_end)
    }

    /// Round-robin: instance `id`'s channel for `port`, where a readiness probe's connection
    /// goes (through the shared port it would reach the instances already ready). None in the
    /// other modes: proxy probes the private port, and shared/reuseport let the kernel choose.
    pub fn probe_route(&self, id: u32, port: u16) -> Option<ProbeRoute> {
        if self.strategy != Strategy::RoundRobin {
            return None;
        }
        self.pools.get(&port)?.slot(id).map(ProbeRoute)
    }

    /// The instance runs as `pid`.
    pub fn started(&mut self, id: u32, pid: u32) {
        if let Some(backend) = self.backends.get(id) {
            self.probes
                .insert(id, proxy::spawn_probe(backend, self.events.clone(), pid));
        }
    }

    /// Into the rotation: the instance gets new connections (and what was parked).
    pub fn admit(&mut self, id: u32) {
        self.held.admit(id);
        for pool in self.pools.values() {
            if let Some(slot) = pool.slot(id) {
                slot.ready.store(true, Ordering::Release);
                pool.deal_parked();
            }
        }
        if let Some(backend) = self.backends.get(id) {
            backend.ready.store(true, Ordering::Release);
        }
    }

    /// Out of rotation: no new connections; what waits in its queue goes to the others.
    pub fn detach(&mut self, id: u32) {
        self.held.detach(id);
        self.named.remove(&id);
        for pool in self.pools.values() {
            if let Some(slot) = pool.remove(id) {
                pool.drain(&slot);
                // Our end stays open while the instance lives: closing it would make its
                // channel read EOF, which the preload takes as "the daemon is gone" and ends
                // the program at once, requests in flight and all.
                self.detached.entry(id).or_default().push(slot);
            }
        }
        for reader in self.readers.remove(&id).into_iter().flatten() {
            reader.abort();
        }
        self.rendezvous.remove(&id);
        if let Some(probe) = self.probes.remove(&id) {
            probe.abort();
        }
        if let Some(backend) = self.backends.remove(id) {
            backend.ready.store(false, Ordering::Release);
        }
    }

    /// Where instance `id` serves the app: the app's own ports and Unix sockets, or its private
    /// port (proxy).
    pub fn served_by(&self, id: u32) -> Served {
        let mut served = Served::default();
        for listener in &self.listeners {
            match &listener.addr {
                ListenAddr::Tcp(addr) => served.ports.push(addr.port()),
                ListenAddr::Unix(path) => served.unix_paths.push(path.clone()),
            }
        }
        if let Some(backend) = self.backends.get(id) {
            served.ports.push(backend.port);
        }
        served.ports.extend(self.held.ports_of(id));
        served
    }

    /// The instance's processes are gone: its channels can close.
    pub fn release(&mut self, id: u32) {
        self.detached.remove(&id);
    }

    /// An instance slot is gone for good (scale down, delete): its own sockets close.
    pub fn forget_index(&mut self, index: u32) {
        self.reuseport.remove(&index);
    }

    /// (accepted, open-or-queued) connections of an instance.
    pub fn counts(&self, id: u32) -> (u64, u64) {
        if let Some(backend) = self.backends.get(id) {
            return (
                backend.accepted.load(Ordering::Relaxed),
                backend.open.load(Ordering::Relaxed),
            );
        }
        let mut accepted = 0;
        let mut queued = 0;
        for pool in self.pools.values() {
            if let Some(slot) = pool.slot(id) {
                accepted += slot.accepted.load(Ordering::Relaxed);
                queued += slot.queued();
            }
        }
        (accepted, queued)
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // Wakes the dealer threads' blocking accept (EINVAL) so they end.
        for listener in &self.listeners {
            // SAFETY: shutdown on a valid socket fd has no memory effects.
            unsafe { libc::shutdown(listener.fd.as_raw_fd(), libc::SHUT_RDWR) };
            if let ListenAddr::Unix(path) = &listener.addr {
                let _ = std::fs::remove_file(path);
            }
        }
        for task in self.proxies.drain(..) {
            task.abort();
        }
        for (_, readers) in self.readers.drain() {
            readers.into_iter().for_each(|r| r.abort());
        }
        for (_, probe) in self.probes.drain() {
            probe.abort();
        }
    }
}

fn port_of(addr: &ListenAddr) -> Option<u16> {
    match addr {
        ListenAddr::Tcp(sa) => Some(sa.port()),
        ListenAddr::Unix(_) => None,
    }
}

/// One round-robin instance's channel, for a readiness probe's connection: it must reach that
/// instance, ready or not, and no other.
#[derive(Debug)]
pub struct ProbeRoute(Arc<deal::Slot>);

impl ProbeRoute {
    pub fn hand_over(&self, fd: OwnedFd, peer: &SocketAddr) -> nix::Result<()> {
        self.0.hand_over(fd, &crate::abi::encode_conn(peer))
    }

    /// Nothing waits in the channel: the program has taken every connection handed to it.
    pub fn taken(&self) -> bool {
        self.0.queued() == 0
    }
}
