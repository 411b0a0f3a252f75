//! Fork mode's held ports: the listening sockets of apps that share nothing (one instance of a
//! server that binds its own port, pm2's commonest setup), created and kept by the daemon so
//! that a reload is a swap, not an outage.
//!
//! When a fork-mode program binds a TCP port, the preload asks the daemon (rendezvous); the
//! daemon binds that address with `SO_REUSEPORT`, listens, and hands the program the socket
//! (ADOPT), which it then uses as its own: it accepts straight from the kernel, so the daemon
//! costs nothing per connection. The daemon keeps its copy, so the port stays open while the
//! instance restarts (connections wait in the queue instead of being refused).
//!
//! A reload's new instance binds the same address and gets a second socket in the same
//! reuseport group. Which socket the kernel gives new connections is steered with a classic BPF
//! program on the group (`SO_ATTACH_REUSEPORT_CBPF`: "return index k", no privilege needed):
//! always the socket of the instance admitted last (ready), so the old instance keeps the port
//! until the new one listens, then gets nothing new; its own queue empties as it accepts, its
//! connections drain (`process::conns`), and once it is gone its socket leaves the group. The
//! kernel keeps a group's sockets in an array in the order they listened, and fills a hole with
//! the last one; `socks` mirrors it, which holds because only the daemon adds sockets (its own
//! listen) and only the daemon removes them (shutdown, which takes a socket out of the group at
//! once whoever else holds a copy).
//!
//! A port belongs to one instance slot (index), as in pm2's fork mode: another slot's bind of it
//! is refused with EADDRINUSE, what the kernel would have said.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use super::listen;

pub struct Held {
    groups: Vec<Group>,
    /// Instances in the rotation (ready, not stopping), with when they were admitted: the
    /// socket of the one admitted last serves its address. By instance, not by socket, so that
    /// a socket created or inherited after its instance was admitted serves at once.
    rotation: HashMap<u32, u64>,
    admissions: u64,
}

struct Group {
    addr: SocketAddr,
    /// The instance slot the port belongs to.
    index: u32,
    /// The kernel's order of the reuseport group (see the module comment).
    socks: Vec<HeldSocket>,
    /// What the attached steering program returns, if one is attached.
    steering: Option<usize>,
}

struct HeldSocket {
    owner: u32,
    fd: OwnedFd,
    /// Passed to its owner by a predecessor (`retire`) and not bound by it yet: it closes when
    /// the owner listens without having bound its address (a new version on another port).
    inherited: bool,
}

/// How a bind of a held address is answered.
pub enum HeldBind {
    /// Take this listening socket.
    Adopt(OwnedFd),
    /// bind() fails with this errno.
    Refuse(i32),
    /// The program binds for real (the daemon could not, e.g. a privileged port).
    Pass,
}

/// A held socket across `rcluster update`: the group's address and slot, the socket's owner,
/// its admission, and whether it is the steering target.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HeldExport {
    pub addr: SocketAddr,
    pub index: u32,
    pub steering: Option<usize>,
    pub socks: Vec<(u32, Option<u64>)>,
}

impl Held {
    pub fn new() -> Held {
        Held {
            groups: Vec::new(),
            rotation: HashMap::new(),
            admissions: 0,
        }
    }

    /// Whether a held socket of this app listens on `port` (any address).
    pub fn holds_port(&self, port: u16) -> bool {
        self.groups.iter().any(|g| g.addr.port() == port)
    }

    /// Whether instance `id` holds a socket: it bound its port through the daemon.
    pub fn owns(&self, id: u32) -> bool {
        self.groups
            .iter()
            .any(|g| g.socks.iter().any(|s| s.owner == id))
    }

    /// The held addresses (for `list`).
    pub fn addresses(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.addr.to_string()).collect()
    }

    /// The ports instance `id` serves on (its connections there are drained on a stop).
    pub fn ports_of(&self, id: u32) -> Vec<u16> {
        self.groups
            .iter()
            .filter(|g| g.socks.iter().any(|s| s.owner == id))
            .map(|g| g.addr.port())
            .collect()
    }

    /// Instance `id` (slot `index`) binds `addr`.
    pub fn bind(&mut self, id: u32, index: u32, addr: SocketAddr, v6only: bool) -> HeldBind {
        if self
            .groups
            .iter()
            .any(|g| g.addr.port() == addr.port() && g.index != index)
        {
            return HeldBind::Refuse(libc::EADDRINUSE);
        }
        let position = self.groups.iter().position(|g| g.addr == addr);
        if let Some(group) = position.map(|p| &mut self.groups[p]) {
            if let Some(own) = group.socks.iter_mut().find(|s| s.owner == id) {
                // The same instance binds again (a restart, or another process of it), or takes
                // up the socket its predecessor left it.
                own.inherited = false;
                return match own.fd.try_clone() {
                    Ok(fd) => HeldBind::Adopt(fd),
                    Err(_) => HeldBind::Pass,
                };
            }
        }
        let fd = match listen::bind_held(addr, v6only) {
            Ok(fd) => fd,
            Err(e) => {
                crate::dlog!(
                    "cannot hold {addr} for instance id {id}: {e}; it binds the port itself"
                );
                return HeldBind::Pass;
            }
        };
        let group = match position {
            Some(p) => &mut self.groups[p],
            None => {
                self.groups.push(Group {
                    addr,
                    index,
                    socks: Vec::new(),
                    steering: None,
                });
                let last = self.groups.len() - 1;
                &mut self.groups[last]
            }
        };
        // Steer before the new socket joins: it gets nothing unless its instance serves.
        group.steer(&self.rotation, true);
        if let Err(e) = listen::start_listening(&fd) {
            crate::dlog!(
                "cannot listen on {addr} for instance id {id}: {e}; it binds the port itself"
            );
            return HeldBind::Pass;
        }
        let copy = match fd.try_clone() {
            Ok(copy) => copy,
            Err(_) => return HeldBind::Pass,
        };
        group.socks.push(HeldSocket {
            owner: id,
            fd,
            inherited: false,
        });
        // An instance admitted before it bound (it took longer than listen_timeout) serves now.
        group.steer(&self.rotation, false);
        HeldBind::Adopt(copy)
    }

    /// Instance `id` is ready: its sockets get the new connections.
    pub fn admit(&mut self, id: u32) {
        self.admissions += 1;
        self.rotation.insert(id, self.admissions);
        self.resteer(id);
    }

    /// Instance `id` leaves the rotation (a stop, or its exit).
    pub fn detach(&mut self, id: u32) {
        if self.rotation.remove(&id).is_some() {
            self.resteer(id);
        }
    }

    /// Connections waiting in instance `id`'s sockets that it still has to accept because
    /// another socket now serves (a reload's old instance): its stop waits for them. A socket
    /// that still serves its port (a stop or restart of the only instance) is not counted.
    pub fn pending(&self, id: u32) -> u32 {
        self.groups
            .iter()
            .map(|g| {
                let target = g.target(&self.rotation);
                g.socks
                    .iter()
                    .enumerate()
                    .filter(|(i, s)| s.owner == id && Some(*i) != target)
                    .map(|(_, s)| accept_queue(&s.fd))
                    .sum::<u32>()
            })
            .sum()
    }

    /// Instance `id` is done with its sockets (stopped, errored, deleted; not a restart).
    /// `successor` is a live instance of the same slot (a reload's new one) that does not listen
    /// yet: where it has no socket of its own for an address, the socket passes to it, queue
    /// and all, so the port never closes while it comes up. Otherwise the socket leaves its
    /// group, and the port closes if nothing else holds it.
    pub fn retire(&mut self, id: u32, successor: Option<u32>) {
        self.rotation.remove(&id);
        for group in &mut self.groups {
            let heir = successor.filter(|s| !group.socks.iter().any(|k| k.owner == *s));
            if let Some(heir) = heir {
                if let Some(sock) = group.socks.iter_mut().find(|s| s.owner == id) {
                    sock.owner = heir;
                    sock.inherited = true;
                }
            }
            while let Some(i) = group.socks.iter().position(|s| s.owner == id) {
                let sock = group.socks.swap_remove(i);
                let waiting = accept_queue(&sock.fd);
                if waiting > 0 && !group.socks.is_empty() {
                    crate::dlog!(
                        "{}: {waiting} connection(s) still queued for instance id {id} are reset",
                        group.addr
                    );
                }
                // SAFETY: shutdown on a socket fd we own; takes it out of the reuseport group
                // at once, even if a leftover process still holds a copy.
                unsafe { libc::shutdown(sock.fd.as_raw_fd(), libc::SHUT_RDWR) };
                // The kernel moved its last socket into the hole, as swap_remove did: what the
                // attached program returns may now name another socket.
                group.steering = None;
            }
            group.steer(&self.rotation, false);
        }
        self.groups.retain(|g| !g.socks.is_empty());
    }

    /// Instance `id` listens: a socket it inherited and has not bound is for an address its
    /// program no longer uses (a new version on another port), so it closes rather than hold
    /// connections no one accepts.
    pub fn listening(&mut self, id: u32) {
        for group in &mut self.groups {
            if let Some(i) = group
                .socks
                .iter()
                .position(|s| s.owner == id && s.inherited)
            {
                let sock = group.socks.swap_remove(i);
                crate::dlog!(
                    "{}: instance id {id} listens elsewhere: the port it inherited closes",
                    group.addr
                );
                // SAFETY: shutdown on a socket fd we own (see `retire`).
                unsafe { libc::shutdown(sock.fd.as_raw_fd(), libc::SHUT_RDWR) };
                group.steering = None;
                group.steer(&self.rotation, false);
            }
        }
        self.groups.retain(|g| !g.socks.is_empty());
    }

    /// Steer again the groups where instance `id` has a socket.
    fn resteer(&mut self, id: u32) {
        for group in &mut self.groups {
            if group.socks.iter().any(|s| s.owner == id) {
                group.steer(&self.rotation, false);
            }
        }
    }

    /// Describe the held sockets for the next image; their fds go in `keep` order.
    pub fn export(&self, mut keep: impl FnMut(&OwnedFd) -> i32) -> Vec<(HeldExport, Vec<i32>)> {
        self.groups
            .iter()
            .map(|g| {
                let fds = g.socks.iter().map(|s| keep(&s.fd)).collect();
                let export = HeldExport {
                    addr: g.addr,
                    index: g.index,
                    steering: g.steering,
                    socks: g
                        .socks
                        .iter()
                        .map(|s| (s.owner, self.rotation.get(&s.owner).copied()))
                        .collect(),
                };
                (export, fds)
            })
            .collect()
    }

    /// Take over the held sockets a previous image described.
    pub fn adopt(&mut self, export: HeldExport, fds: Vec<OwnedFd>) {
        let socks: Vec<HeldSocket> = export
            .socks
            .iter()
            .zip(fds)
            .map(|(&(owner, _), fd)| HeldSocket {
                owner,
                fd,
                inherited: false,
            })
            .collect();
        for &(owner, admitted) in &export.socks {
            if let Some(admission) = admitted {
                self.rotation.insert(owner, admission);
                self.admissions = self.admissions.max(admission);
            }
        }
        self.groups.push(Group {
            addr: export.addr,
            index: export.index,
            socks,
            steering: export.steering,
        });
    }
}

impl Group {
    /// The socket that should get new connections: that of the instance admitted last; with
    /// none in the rotation (every instance starting or stopping), the first, which the kernel
    /// has had longest.
    fn target(&self, rotation: &HashMap<u32, u64>) -> Option<usize> {
        self.socks
            .iter()
            .enumerate()
            .filter_map(|(i, s)| rotation.get(&s.owner).map(|a| (*a, i)))
            .max()
            .map(|(_, i)| i)
            .or((!self.socks.is_empty()).then_some(0))
    }

    /// Make the group's steering program return the target. A lone socket needs none, unless
    /// another is `joining`: then it must be in place before that one listens.
    fn steer(&mut self, rotation: &HashMap<u32, u64>, joining: bool) {
        let Some(target) = self.target(rotation) else {
            return;
        };
        if self.steering == Some(target) || (self.socks.len() < 2 && !joining) {
            return;
        }
        let Some(first) = self.socks.first() else {
            return;
        };
        match attach_steering(&first.fd, target) {
            Ok(()) => self.steering = Some(target),
            Err(e) => crate::dlog!(
                "{}: cannot steer new connections (SO_ATTACH_REUSEPORT_CBPF: {e}); the kernel spreads them over the instances' sockets",
                self.addr
            ),
        }
    }
}

/// Attach "return `index`" as the reuseport group's socket selector (socket(7),
/// SO_ATTACH_REUSEPORT_CBPF): a classic BPF program's result is an index into the group.
fn attach_steering(fd: &OwnedFd, index: usize) -> nix::Result<()> {
    let mut program = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: u32::try_from(index).unwrap_or(u32::MAX),
    }];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, both alive for the call; the kernel copies them.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// Connections in a listening socket's accept queue (TCP_INFO's `tcpi_unacked` is the queue
/// length for a listener).
fn accept_queue(fd: &OwnedFd) -> u32 {
    // SAFETY: tcp_info is plain data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return 0;
    }
    info.tcpi_unacked
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::FromRawFd;

    fn listener_of(fd: OwnedFd) -> TcpListener {
        // SAFETY: a listening TCP socket we own.
        let listener = unsafe { TcpListener::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        listener.set_nonblocking(true).expect("nonblocking");
        listener
    }

    fn adopt(held: &mut Held, id: u32, addr: SocketAddr) -> TcpListener {
        match held.bind(id, 0, addr, false) {
            HeldBind::Adopt(fd) => listener_of(fd),
            HeldBind::Refuse(e) => panic!("refused: {e}"),
            HeldBind::Pass => panic!("passed"),
        }
    }

    /// Connect `n` times; how many each listener got.
    fn spread(addr: SocketAddr, listeners: &[&TcpListener], n: usize) -> Vec<usize> {
        let clients: Vec<TcpStream> = (0..n)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let counts = listeners
            .iter()
            .map(|l| std::iter::from_fn(|| l.accept().ok()).count())
            .collect();
        drop(clients);
        counts
    }

    #[test]
    fn new_connections_go_to_the_instance_admitted_last() {
        let free = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let mut held = Held::new();
        let old = adopt(&mut held, 1, addr);
        held.admit(1);
        assert_eq!(spread(addr, &[&old], 20), [20]);
        // A reload's new instance: nothing until it is admitted, then everything.
        let new = adopt(&mut held, 2, addr);
        assert_eq!(spread(addr, &[&old, &new], 40), [40, 0]);
        held.admit(2);
        held.detach(1);
        assert_eq!(spread(addr, &[&old, &new], 40), [0, 40]);
        // The old one goes; the new one keeps the port, then a third comes.
        held.retire(1, Some(2));
        assert_eq!(spread(addr, &[&new], 10), [10]);
        let third = adopt(&mut held, 3, addr);
        assert_eq!(spread(addr, &[&new, &third], 30), [30, 0]);
        held.admit(3);
        assert_eq!(spread(addr, &[&new, &third], 30), [0, 30]);
        // The same instance binding again gets its own socket back.
        let again = adopt(&mut held, 3, addr);
        let mut client = TcpStream::connect(addr).expect("connect");
        client.write_all(b"x").expect("write");
        let (mut conn, _) = loop {
            if let Ok(c) = again.accept() {
                break c;
            }
        };
        conn.set_nonblocking(false).expect("blocking");
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).expect("read");
        assert_eq!(&byte, b"x");
        assert_eq!(held.ports_of(3), [addr.port()]);
        assert!(held.owns(3) && !held.owns(1));
    }

    #[test]
    fn a_successor_that_has_not_bound_yet_inherits_the_socket() {
        let free = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let mut held = Held::new();
        let old = adopt(&mut held, 1, addr);
        held.admit(1);
        drop(old);
        // The old instance is gone before its successor (id 2) binds: the port stays open, and
        // what arrives meanwhile waits for it.
        held.retire(1, Some(2));
        let early = TcpStream::connect(addr).expect("the port stays open");
        let new = adopt(&mut held, 2, addr);
        let got = std::iter::from_fn(|| new.accept().ok()).count();
        assert_eq!(got, 1, "the connection that waited is the successor's");
        drop(early);
        assert!(held.owns(2));
        // Bound: a listen of its own closes nothing.
        held.listening(2);
        assert!(held.holds_port(addr.port()));
    }

    #[test]
    fn an_inherited_port_the_successor_does_not_bind_closes_once_it_listens() {
        let free = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let mut held = Held::new();
        drop(adopt(&mut held, 1, addr));
        held.retire(1, Some(2));
        assert!(held.holds_port(addr.port()), "kept for the successor");
        // The new version listens on another port: the old one is not left holding connections.
        held.listening(2);
        assert!(!held.holds_port(addr.port()));
        assert_eq!(
            TcpStream::connect(addr).map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn an_instance_admitted_before_it_binds_serves_once_it_does() {
        let free = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let mut held = Held::new();
        let old = adopt(&mut held, 1, addr);
        held.admit(1);
        // The new instance was taken as ready (listen_timeout) before it bound, and the old one
        // is draining: once the new one binds, new connections are its.
        held.admit(2);
        held.detach(1);
        let new = adopt(&mut held, 2, addr);
        assert_eq!(spread(addr, &[&old, &new], 30), [0, 30]);
        assert_eq!(held.pending(1), 0);
    }

    #[test]
    fn another_slot_is_refused_and_a_retired_port_closes() {
        let free = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let mut held = Held::new();
        let first = adopt(&mut held, 1, addr);
        assert!(matches!(
            held.bind(2, 1, addr, false),
            HeldBind::Refuse(libc::EADDRINUSE)
        ));
        drop(first);
        held.retire(1, None);
        assert!(!held.holds_port(addr.port()));
        assert_eq!(
            TcpStream::connect(addr).map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
    }
}
