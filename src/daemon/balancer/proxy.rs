//! `proxy` and `least-conn`: for programs that only take a port. Each instance listens on its
//! own private loopback port (`PORT`); the daemon accepts on the public socket and copies bytes
//! both ways (L4), to the next ready instance or to the one with the fewest open connections —
//! nginx's `upstream { least_conn; }`, built in.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::listen;
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

fn workers() -> Result<&'static Workers, String> {
    static WORKERS: OnceLock<Result<Workers, String>> = OnceLock::new();
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

/// Serve `listener` from every proxy worker; abort the returned tasks to stop.
pub fn spawn_proxy(
    listener: &OwnedFd,
    backends: Arc<Backends>,
    least_conn: bool,
) -> Result<Vec<JoinHandle<()>>, String> {
    let workers = workers()?;
    let mut tasks = Vec::with_capacity(workers.handles.len());
    for handle in &workers.handles {
        let fd = listen::dup(listener)?;
        let std_listener = StdTcpListener::from(fd);
        std_listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot configure the proxy listener: {e}"))?;
        let backends = backends.clone();
        tasks.push(handle.spawn(accept_loop(std_listener, backends, least_conn)));
    }
    Ok(tasks)
}

async fn accept_loop(listener: StdTcpListener, backends: Arc<Backends>, least_conn: bool) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            crate::dlog!("proxy worker cannot watch the listener: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(forward(client, backends.clone(), least_conn));
            }
            Err(e) => {
                crate::dlog!("proxy accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn forward(mut client: TcpStream, backends: Arc<Backends>, least_conn: bool) {
    let _ = client.set_nodelay(true);
    let deadline = Instant::now() + WAIT_FOR_BACKEND;
    loop {
        let Some(backend) = backends.pick(least_conn) else {
            if Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
            continue;
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, backend.port));
        match TcpStream::connect(addr).await {
            Ok(mut upstream) => {
                let _ = upstream.set_nodelay(true);
                backend.accepted.fetch_add(1, Ordering::Relaxed);
                backend.open.fetch_add(1, Ordering::Relaxed);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                backend.open.fetch_sub(1, Ordering::Relaxed);
                return;
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
