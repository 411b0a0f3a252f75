//! When is an instance READY (PRODUCT.md §5)? The strongest signal the app offers decides, in
//! this order: the program says so (`wait_ready`: sd_notify `READY=1` on NOTIFY_SOCKET, or Node's
//! `process.send('ready')`), a readiness probe passes (`readiness: http|tcp|exec`), the program
//! accepts on its managed socket (round-robin: its listen() seen by the preload; proxy: its
//! private port answers; shared and reuseport: its first use of the inherited socket, seen by the
//! preload), or else
//! `listen_timeout` has elapsed. Only a ready instance is admitted to the balancer's rotation,
//! and a reload moves on only when its new instance is ready.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::actor::Supervisor;
use super::node_channel::Watched;
use super::state::App;
use super::timers::{Timer, TimerKind};
use crate::daemon::balancer::ProbeRoute;
use crate::daemon::events::InstanceEvent;
use crate::daemon::process::spawn::runs_node;
use crate::protocol::model::{InstanceState, ProbeKind, ReadinessSpec, Strategy};

const NOT_LISTENING: &str = "not listening on";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMode {
    Notify,
    Probe,
    Listen,
    Timeout,
}

pub fn ready_mode(app: &App) -> ReadyMode {
    if app.spec.wait_ready {
        ReadyMode::Notify
    } else if app.spec.readiness.is_some() {
        ReadyMode::Probe
    } else {
        match app.balancer.as_ref() {
            // pm2's cluster mode with no port (`-i N` alone) and none bound yet: a worker that
            // never listens is ready once listen_timeout has passed, as in pm2. Once an
            // instance has bound a port, the others are ready when they listen on it too.
            Some(b) if !b.has_listeners() => ReadyMode::Timeout,
            Some(b)
                if matches!(
                    b.strategy(),
                    Strategy::RoundRobin | Strategy::Proxy | Strategy::LeastConn
                ) =>
            {
                ReadyMode::Listen
            }
            _ => ReadyMode::Timeout,
        }
    }
}

impl Supervisor {
    pub(super) fn on_instance_event(&mut self, event: InstanceEvent) {
        match event {
            InstanceEvent::Ready { id, .. } => {
                self.note(id, |inst| inst.listening = true);
                if let Some(balancer) = self
                    .instances
                    .get(&id)
                    .and_then(|inst| self.apps.get_mut(&inst.app))
                    .and_then(|app| app.balancer.as_mut())
                {
                    balancer.listening(id);
                }
                match self.mode_of(id) {
                    Some(ReadyMode::Listen) => self.mark_ready(id, "accepts connections"),
                    // shared / reuseport: the preload saw the program take up its sockets; with
                    // no preload (a static binary) listen_timeout still decides.
                    Some(ReadyMode::Timeout) => self.mark_ready(id, "took up its listening socket"),
                    _ => {}
                }
            }
            InstanceEvent::Unready { id, .. } => {
                // The balancer already took it out of the rotation and redealt its queue.
                self.note(id, |inst| {
                    inst.listening = false;
                    inst.ready = false;
                });
                crate::dlog!("instance id {id}: stopped accepting");
            }
            InstanceEvent::Notify {
                id,
                ready,
                stopping,
                status,
            } => {
                if let Some(status) = status {
                    self.note(id, |inst| inst.status_text = Some(status));
                }
                if stopping {
                    crate::dlog!("instance id {id}: says it is stopping");
                }
                if ready && self.mode_of(id) == Some(ReadyMode::Notify) {
                    self.mark_ready(id, "reported READY=1");
                }
            }
            InstanceEvent::BindRequest { id, bind, reply } => self.on_bind_request(id, bind, reply),
            InstanceEvent::FileChanged { app, path } => self.on_file_changed(&app, &path),
            InstanceEvent::LogTrouble {
                app,
                path,
                failing,
                lost,
            } => self.on_log_trouble(&app, &path, failing, lost),
            InstanceEvent::ProbeRoute { id, port, reply } => {
                let route = self
                    .instances
                    .get(&id)
                    .and_then(|inst| self.apps.get(&inst.app))
                    .and_then(|app| app.balancer.as_ref())
                    .and_then(|balancer| balancer.probe_route(id, port));
                let _ = reply.send(route);
            }
            InstanceEvent::ProbePassed { id, generation } => {
                let current = self.instances.get(&id).map(|i| i.generation);
                if current == Some(generation) && self.mode_of(id) == Some(ReadyMode::Probe) {
                    self.mark_ready(id, "passed its readiness probe");
                }
            }
        }
    }

    fn note(&mut self, id: u32, change: impl FnOnce(&mut super::state::Instance)) {
        if let Some(inst) = self.instances.get_mut(&id) {
            change(inst);
        }
    }

    pub(super) fn mode_of(&self, id: u32) -> Option<ReadyMode> {
        let inst = self.instances.get(&id)?;
        self.apps.get(&inst.app).map(ready_mode)
    }

    /// The instance is ready: online, and in the rotation.
    pub(super) fn mark_ready(&mut self, id: u32, why: &str) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.pid.is_none() || matches!(inst.state, InstanceState::Stopping) {
            return;
        }
        if !inst.ready {
            crate::dlog!(
                "app {}: instance {} (id {id}) ready: {why}",
                inst.app,
                inst.index
            );
        }
        inst.ready = true;
        if inst.state == InstanceState::Launching {
            inst.state = InstanceState::Online;
        }
        if inst
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(NOT_LISTENING))
        {
            inst.reason = None;
        }
        if let Some(balancer) = self
            .apps
            .get_mut(&inst.app)
            .and_then(|a| a.balancer.as_mut())
        {
            balancer.admit(id);
        }
    }

    /// At listen_timeout: ready by timeout for apps with no stronger signal; otherwise say
    /// what is missing (a reload's new instance is then abandoned by the reload).
    pub(super) fn arm_listen_check(&mut self, id: u32) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        let timer = Timer {
            id,
            generation: inst.generation,
            kind: TimerKind::ListenCheck,
        };
        self.timers.arm(
            Instant::now() + Duration::from_millis(app.spec.listen_timeout_ms),
            timer,
        );
    }

    pub(super) fn on_listen_check(&mut self, id: u32) {
        let Some(mode) = self.mode_of(id) else { return };
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.ready || inst.pid.is_none() || inst.state == InstanceState::Stopping {
            return;
        }
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        let timeout = app.spec.listen_timeout_ms;
        // A round-robin instance that took no channel but listens on a port itself: the preload
        // did not reach the process that bound it (it would have shared the port), so it serves
        // outside the shared port. Only where every port it binds is shared (pm2-style, no
        // declared port), but for its private ones.
        let cluster = &app.spec.cluster;
        let bypass = match (&app.balancer, inst.listening, inst.pgid) {
            (Some(b), false, Some(pgid))
                if cluster.discover && b.strategy() == Strategy::RoundRobin =>
            {
                crate::daemon::process::conns::listening_tcp(pgid)
                    .into_iter()
                    .filter(|a| !cluster.private_ports.contains(&a.port()))
                    .collect()
            }
            _ => Vec::new(),
        };
        let bypass = (!bypass.is_empty()).then(|| {
            let addrs: Vec<String> = bypass.iter().map(ToString::to_string).collect();
            format!(
                "listens on {} itself, outside the shared port: the preload library did not reach the process that bound it (a statically linked program, or a wrapper that clears LD_PRELOAD); run the program directly, or declare --port and use --balance shared or proxy",
                addrs.join(", ")
            )
        });
        if mode == ReadyMode::Timeout {
            if let Some(why) = bypass {
                crate::dlog!("app {}: instance {} (id {id}) {why}", inst.app, inst.index);
                inst.reason = Some(why);
            }
            self.mark_ready(id, "listen_timeout elapsed");
            return;
        }
        let reason = match mode {
            ReadyMode::Listen if bypass.is_some() => bypass.unwrap_or_default(),
            ReadyMode::Listen => {
                let ports = app
                    .balancer
                    .as_ref()
                    .map(|b| b.addresses().join(", "))
                    .unwrap_or_default();
                let how = match app.spec.cluster.balance {
                    Strategy::Proxy | Strategy::LeastConn => "its private $PORT",
                    _ => "the managed port",
                };
                format!(
                    "{NOT_LISTENING} {how} after {timeout} ms (app listens on {ports}): it may bind another port, or be slow to start"
                )
            }
            ReadyMode::Notify => format!(
                "no READY=1 on NOTIFY_SOCKET{} within listen_timeout ({timeout} ms)",
                if runs_node(&app.spec.command) {
                    " nor process.send('ready')"
                } else {
                    ""
                }
            ),
            _ => format!("readiness probe not passed within listen_timeout ({timeout} ms)"),
        };
        crate::dlog!(
            "app {}: instance {} (id {id}): {reason}",
            inst.app,
            inst.index
        );
        inst.reason = Some(reason);
        // pm2's wait_ready: after listen_timeout the instance is taken as ready anyway — except
        // as a reload's candidate, where not being ready means the reload stops.
        if !inst.candidate && matches!(mode, ReadyMode::Notify | ReadyMode::Probe) {
            self.mark_ready(id, "listen_timeout elapsed");
        }
    }
}

/// sd_notify: a datagram socket per instance; its messages become `Notify` events.
pub fn open_notify(
    dir: PathBuf,
    id: u32,
    events: UnboundedSender<InstanceEvent>,
) -> Result<(PathBuf, Watched), String> {
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{id}.sock"));
    let _ = std::fs::remove_file(&path);
    let socket = std::os::unix::net::UnixDatagram::bind(&path)
        .map_err(|e| format!("cannot bind NOTIFY_SOCKET {}: {e}", path.display()))?;
    Ok((path, watch_notify(socket.into(), id, events)?))
}

/// Read an instance's NOTIFY_SOCKET (bound already) until aborted.
pub fn watch_notify(
    socket: OwnedFd,
    id: u32,
    events: UnboundedSender<InstanceEvent>,
) -> Result<Watched, String> {
    let kept = socket
        .try_clone()
        .map_err(|e| format!("cannot duplicate NOTIFY_SOCKET: {e}"))?;
    let socket = std::os::unix::net::UnixDatagram::from(socket);
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("cannot watch NOTIFY_SOCKET: {e}"))?;
    let socket =
        UnixDatagram::from_std(socket).map_err(|e| format!("cannot watch NOTIFY_SOCKET: {e}"))?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]);
            let mut event = InstanceEvent::Notify {
                id,
                ready: false,
                stopping: false,
                status: None,
            };
            if let InstanceEvent::Notify {
                ready,
                stopping,
                status,
                ..
            } = &mut event
            {
                for line in text.lines() {
                    match line.split_once('=') {
                        Some(("READY", "1")) => *ready = true,
                        Some(("STOPPING", "1")) => *stopping = true,
                        Some(("STATUS", value)) => *status = Some(value.to_owned()),
                        _ => {}
                    }
                }
            }
            if events.send(event).is_err() {
                return;
            }
        }
    });
    Ok(Watched { kept, task })
}

/// Run the app's probe until it passes once for this run of the instance.
pub fn spawn_probe(
    spec: ReadinessSpec,
    id: u32,
    generation: u64,
    port: Option<u16>,
    env: Vec<(String, String)>,
    events: UnboundedSender<InstanceEvent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_millis(spec.interval_ms.max(10));
        let timeout = Duration::from_millis(spec.timeout_ms.max(10));
        loop {
            let target = ProbeTarget {
                id,
                port,
                events: &events,
            };
            let passed = tokio::time::timeout(timeout, probe_once(&spec.probe, &target, &env))
                .await
                .unwrap_or(false);
            if passed {
                let _ = events.send(InstanceEvent::ProbePassed { id, generation });
                return;
            }
            tokio::time::sleep(interval).await;
        }
    })
}

/// Where a probe connects: instance `id` on `port`.
struct ProbeTarget<'a> {
    id: u32,
    port: Option<u16>,
    events: &'a UnboundedSender<InstanceEvent>,
}

impl ProbeTarget<'_> {
    /// A connection that reaches this instance, and in round-robin mode its channel. There the
    /// shared port would deal it to an instance already ready (or hold it until one is), so the
    /// daemon makes a loopback connection and hands its far end to the instance's channel itself.
    async fn connect(&self) -> Option<(tokio::net::TcpStream, Option<ProbeRoute>)> {
        let port = self.port?;
        let (reply, route) = tokio::sync::oneshot::channel();
        let asked = self.events.send(InstanceEvent::ProbeRoute {
            id: self.id,
            port,
            reply,
        });
        let route = match asked {
            Ok(()) => route.await.ok().flatten(),
            Err(_) => None,
        };
        let Some(route) = route else {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
            return stream.ok().map(|s| (s, None));
        };
        let relay = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.ok()?;
        let near = tokio::net::TcpStream::connect(relay.local_addr().ok()?)
            .await
            .ok()?;
        let (far, peer) = relay.accept().await.ok()?;
        // The instance gets it as from accept(): a blocking socket (the fd flags byte is 0).
        let far = far.into_std().ok()?;
        far.set_nonblocking(false).ok()?;
        route.hand_over(OwnedFd::from(far), &peer).ok()?;
        Some((near, Some(route)))
    }
}

/// How often a TCP probe in round-robin mode looks whether the program took its connection.
const TAKEN_POLL: Duration = Duration::from_millis(10);

async fn probe_once(probe: &ProbeKind, target: &ProbeTarget<'_>, env: &[(String, String)]) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    match probe {
        ProbeKind::Tcp => match target.connect().await {
            None => false,
            Some((_, None)) => true,
            // A channel takes the connection whether or not the program accepts: it passes
            // once the program has taken it (and every probe connection before it) off its
            // channel, as a connect to a listening port would. The caller's timeout bounds it.
            Some((_stream, Some(route))) => loop {
                if route.taken() {
                    break true;
                }
                tokio::time::sleep(TAKEN_POLL).await;
            },
        },
        ProbeKind::Http { path } => {
            let Some((mut stream, _)) = target.connect().await else {
                return false;
            };
            let request =
                format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).await.is_err() {
                return false;
            }
            let mut head = [0u8; 16];
            let n = stream.read(&mut head).await.unwrap_or(0);
            let status = String::from_utf8_lossy(&head[..n]);
            // "HTTP/1.x 2xx" or 3xx.
            status.starts_with("HTTP/") && matches!(status.as_bytes().get(9), Some(b'2' | b'3'))
        }
        ProbeKind::Exec { command } => run_probe_command(command, env).await,
    }
}

/// Run `sh -c command` and report exit 0. The exit status arrives through a pipe written by a
/// tiny `sh` wrapper, so that the daemon's reaper stays the only waitpid caller.
async fn run_probe_command(command: &str, env: &[(String, String)]) -> bool {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;
    let wrapped = format!("{command}\necho \"rcluster-probe:$?\"");
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(wrapped)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let Ok(mut child) = child else { return false };
    let Some(stdout) = child.stdout.take() else {
        return false;
    };
    drop(child);
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(stdout.into()) else {
        return false;
    };
    let mut out = Vec::new();
    let _ = pipe.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).lines().last() == Some("rcluster-probe:0")
}
