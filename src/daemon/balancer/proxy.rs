//! `proxy` and `least-conn`: for programs that only take a port. Each instance listens on its
//! own private loopback port (`PORT`); the daemon accepts on the public socket and copies bytes
//! both ways (L4), to the next ready instance or to the one with the fewest open connections —
//! nginx's `upstream { least_conn; }`, built in.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::listen;
use super::pump::{self, HandedConn, Pumped};
use crate::daemon::events::InstanceEvent;

/// How long a connection waits for some instance to be ready before it is closed.
const WAIT_FOR_BACKEND: Duration = Duration::from_secs(10);
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

pub struct Backend {
    pub id: u32,
    pub port: u16,
    pub ready: AtomicBool,
    pub open: AtomicU64,
    pub accepted: AtomicU64,
}

#[derive(Default)]
pub struct Backends {
    list: Mutex<Vec<Arc<Backend>>>,
    cursor: AtomicUsize,
}

impl Backends {
    pub fn add(&self, backend: Arc<Backend>) {
        if let Ok(mut list) = self.list.lock() {
            list.push(backend);
            list.sort_by_key(|b| b.id);
        }
    }

    pub fn remove(&self, id: u32) -> Option<Arc<Backend>> {
        let mut list = self.list.lock().ok()?;
        let at = list.iter().position(|b| b.id == id)?;
        Some(list.remove(at))
    }

    pub fn all(&self) -> Vec<Arc<Backend>> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn get(&self, id: u32) -> Option<Arc<Backend>> {
        self.list.lock().ok()?.iter().find(|b| b.id == id).cloned()
    }

    fn pick(&self, least_conn: bool) -> Option<Arc<Backend>> {
        let list = self.list.lock().ok()?;
        let n = list.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let ready = (0..n)
            .map(|k| &list[(start + k) % n])
            .filter(|b| b.ready.load(Ordering::Acquire));
        if least_conn {
            ready
                .min_by_key(|b| b.open.load(Ordering::Relaxed))
                .cloned()
        } else {
            ready.into_iter().next().cloned()
        }
    }
}

/// A free loopback port for an instance to listen on.
pub fn private_port() -> Result<u16, String> {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free private port: {e}"))
}

/// Proxy worker threads, started with the first proxied app: like nginx's workers, one per CPU,
/// each with its own event loop, so proxying scales past one core and never waits on the
/// supervisor's thread. Every worker accepts on the app's socket itself (no hand-off between
/// threads); a connection lives on the worker that accepted it.
struct Workers {
    handles: Vec<Handle>,
}

const MAX_WORKERS: usize = 8;

static WORKERS: OnceLock<Result<Workers, String>> = OnceLock::new();

fn workers() -> Result<&'static Workers, String> {
    WORKERS
        .get_or_init(|| {
            let count = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_WORKERS);
            let handles = (0..count)
                .map(start_worker)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Workers { handles })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn start_worker(index: usize) -> Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start proxy worker {index}: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("proxy {index}"))
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start proxy worker {index}: {e}"))?;
    Ok(handle)
}

/// Proxy workers held still for `rcluster update`; dropping this lets them go on.
pub struct Frozen {
    _release: Vec<std::sync::mpsc::Sender<()>>,
}

/// Hold every proxy worker between two steps (a task that blocks its thread), then check that
/// every proxied connection has been handed over (none may be in the middle of a copy).
pub fn freeze_workers(limit: Duration) -> Result<Frozen, String> {
    let mut frozen = Frozen {
        _release: Vec::new(),
    };
    let Some(Ok(workers)) = WORKERS.get() else {
        return Ok(frozen);
    };
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    for handle in &workers.handles {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let held = held_tx.clone();
        handle.spawn(async move {
            let _ = held.send(());
            // Blocks this worker's thread, and so every task of it, until released.
            let _ = released.recv();
        });
        frozen._release.push(release);
    }
    let deadline = std::time::Instant::now() + limit;
    for _ in &workers.handles {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        held_rx
            .recv_timeout(left)
            .map_err(|_| "a proxy worker did not pause in time".to_owned())?;
    }
    match pump::HANDOVER.running() {
        0 => Ok(frozen),
        open => Err(format!(
            "{open} proxied connection(s) were not handed over (proxy/least-conn apps)"
        )),
    }
}

/// Where an app's proxied connections go.
#[derive(Clone)]
pub struct Route {
    pub app: Arc<str>,
    pub backends: Arc<Backends>,
    pub least_conn: bool,
}

/// Serve `listener` from every proxy worker; abort the returned tasks to stop.
pub fn spawn_proxy(listener: &OwnedFd, route: &Route) -> Result<Vec<JoinHandle<()>>, String> {
    let workers = workers()?;
    let mut tasks = Vec::with_capacity(workers.handles.len());
    for handle in &workers.handles {
        let fd = listen::dup(listener)?;
        let std_listener = StdTcpListener::from(fd);
        std_listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot configure the proxy listener: {e}"))?;
        tasks.push(handle.spawn(accept_loop(std_listener, route.clone())));
    }
    Ok(tasks)
}

async fn accept_loop(listener: StdTcpListener, route: Route) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            crate::dlog!("proxy worker cannot watch the listener: {e}");
            return;
        }
    };
    let mut handover = pump::HANDOVER.watch();
    loop {
        let accepted = tokio::select! {
            biased;
            // During an update's handover new connections wait in the kernel's queue, which
            // crosses the exec with the listener.
            _ = handover.wait_for(|asked| *asked) => None,
            accepted = listener.accept() => Some(accepted),
        };
        let Some(accepted) = accepted else {
            let _ = handover.wait_for(|asked| !*asked).await;
            continue;
        };
        match accepted {
            Ok((client, _)) => {
                // Counted in the same step as the accept: a frozen worker has none uncounted.
                let open = pump::HANDOVER.task();
                let route = route.clone();
                tokio::spawn(async move {
                    let _open = open;
                    forward(client, route).await
                });
            }
            Err(e) => {
                crate::dlog!("proxy accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn forward(client: TcpStream, route: Route) {
    let _ = client.set_nodelay(true);
    let mut handover = pump::HANDOVER.watch();
    let deadline = Instant::now() + WAIT_FOR_BACKEND;
    loop {
        if *handover.borrow_and_update() {
            return hand_over(&route, None, client, None, [false, false]);
        }
        let Some(backend) = route.backends.pick(route.least_conn) else {
            if Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
            continue;
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, backend.port));
        match TcpStream::connect(addr).await {
            Ok(upstream) => {
                let _ = upstream.set_nodelay(true);
                backend.accepted.fetch_add(1, Ordering::Relaxed);
                return proxy_to(&route, &backend, client, upstream, [false, false]).await;
            }
            Err(_) => {
                // It stopped listening (crash, stop): out of rotation until its probe passes again.
                backend.ready.store(false, Ordering::Release);
                if Instant::now() > deadline {
                    return;
                }
            }
        }
    }
}

async fn proxy_to(
    route: &Route,
    backend: &Backend,
    client: TcpStream,
    upstream: TcpStream,
    ended: [bool; 2],
) {
    backend.open.fetch_add(1, Ordering::Relaxed);
    let pumped = pump::pump(client, upstream, ended).await;
    backend.open.fetch_sub(1, Ordering::Relaxed);
    if let Pumped::HandOver(client, upstream, ended) = pumped {
        hand_over(route, Some(backend.id), client, Some(upstream), ended);
    }
}

fn hand_over(
    route: &Route,
    backend: Option<u32>,
    client: TcpStream,
    upstream: Option<TcpStream>,
    ended: [bool; 2],
) {
    let owned = |stream: TcpStream| stream.into_std().map(OwnedFd::from);
    let (client, upstream) = match (owned(client), upstream.map(owned).transpose()) {
        (Ok(client), Ok(upstream)) => (client, upstream),
        (Err(e), _) | (_, Err(e)) => {
            crate::dlog!(
                "app {}: a proxied connection could not be handed over: {e}",
                route.app
            );
            return;
        }
    };
    let conn = HandedConn {
        app: route.app.clone(),
        backend,
        client,
        upstream,
        ended,
    };
    if let Err(conn) = pump::HANDOVER.hand_over(conn) {
        // The update was called off meanwhile: go on here.
        if let Err(e) = resume(conn, route) {
            crate::dlog!("app {}: a proxied connection is lost: {e}", route.app);
        }
    }
}

/// Go on with a connection handed over (by a previous image, or back after an abandoned update)
/// on one of the proxy workers.
pub fn resume(conn: HandedConn, route: &Route) -> Result<(), String> {
    let workers = workers()?;
    let index = conn.client.as_raw_fd() as usize % workers.handles.len().max(1);
    let Some(handle) = workers.handles.get(index) else {
        return Err("no proxy worker".into());
    };
    let route = route.clone();
    let open = pump::HANDOVER.task();
    handle.spawn(async move {
        let _open = open;
        let stream = |fd: OwnedFd| {
            let std = std::net::TcpStream::from(fd);
            std.set_nonblocking(true)?;
            TcpStream::from_std(std)
        };
        let client = match stream(conn.client) {
            Ok(client) => client,
            Err(e) => return crate::dlog!("app {}: a proxied connection is lost: {e}", route.app),
        };
        let backend = conn.backend.and_then(|id| route.backends.get(id));
        match (backend, conn.upstream.map(stream)) {
            // Not proxied yet: from the start.
            (_, None) => forward(client, route).await,
            (Some(backend), Some(Ok(upstream))) => {
                proxy_to(&route, &backend, client, upstream, conn.ended).await
            }
            // Its instance left the rotation meanwhile (a stop draining it): it goes on there.
            (None, Some(Ok(upstream))) => {
                if let Pumped::HandOver(client, upstream, ended) =
                    pump::pump(client, upstream, conn.ended).await
                {
                    hand_over(&route, conn.backend, client, Some(upstream), ended);
                }
            }
            (_, Some(Err(e))) => {
                crate::dlog!("app {}: a proxied connection is lost: {e}", route.app);
            }
        }
    });
    Ok(())
}

/// Poll the instance's private port until it accepts, then tell the supervisor (which admits it).
pub fn spawn_probe(
    backend: Arc<Backend>,
    events: UnboundedSender<InstanceEvent>,
    pid: u32,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, backend.port));
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                let _ = events.send(InstanceEvent::Ready {
                    id: backend.id,
                    pid,
                });
                return;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    })
}
