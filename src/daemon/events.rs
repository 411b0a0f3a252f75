//! What I/O tasks (dealing channels, proxy probes, sd_notify sockets, readiness probes, file
//! watchers) report to the supervisor about an instance or an app. The supervisor decides what
//! it means (PRODUCT.md §5).

#[derive(Debug)]
pub enum InstanceEvent {
    /// The program called listen() on the managed socket (preload), or its private port answers.
    Ready { id: u32, pid: u32 },
    /// It stopped accepting (closed its listener).
    Unready { id: u32, pid: u32 },
    /// An sd_notify message on the instance's NOTIFY_SOCKET.
    Notify {
        id: u32,
        ready: bool,
        stopping: bool,
        status: Option<String>,
    },
    /// The app's readiness probe passed for this run of the instance.
    ProbePassed { id: u32, generation: u64 },
    /// A readiness probe asks where its connection to `port` must go to reach instance `id`:
    /// its round-robin channel, or None to connect to the port.
    ProbeRoute {
        id: u32,
        port: u16,
        reply: tokio::sync::oneshot::Sender<Option<crate::daemon::balancer::ProbeRoute>>,
    },
    /// A log file of app `app` began failing (`failing`: why; `lost` lines so far), or works
    /// again (`failing` None; `lost` lines were dropped meanwhile). From its writer.
    LogTrouble {
        app: String,
        path: std::path::PathBuf,
        failing: Option<String>,
        lost: u64,
    },
    /// A watched file of app `app` changed (`watch`).
    FileChanged {
        app: String,
        path: std::path::PathBuf,
    },
    /// The program binds an address (the preload's rendezvous): answer on `reply`.
    BindRequest {
        id: u32,
        bind: crate::abi::Bind,
        reply: std::os::fd::OwnedFd,
    },
}
