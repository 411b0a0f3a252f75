//! The data model shared by the CLI, the daemon and saved process lists: what an app is
//! (`AppSpec`, fully resolved and validated before it reaches the daemon) and what the daemon
//! reports about it (`InstanceView`). Serde only; no behaviour.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How an instance's program is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CommandSpec {
    /// A program and its arguments, executed directly (PATH lookup when `program` has no `/`).
    Exec { program: String, args: Vec<String> },
    /// A string with shell syntax, run as `/bin/sh -c "exec <string>"` when it is a single command.
    Shell { script: String },
}

impl CommandSpec {
    /// The command as a user would type it, for `list`/`describe`.
    pub fn display(&self) -> String {
        match self {
            CommandSpec::Exec { program, args } => {
                let mut out = program.clone();
                for arg in args {
                    out.push(' ');
                    if arg.is_empty() || arg.contains(char::is_whitespace) {
                        out.push_str(&format!("{arg:?}"));
                    } else {
                        out.push_str(arg);
                    }
                }
                out
            }
            CommandSpec::Shell { script } => script.clone(),
        }
    }
}

/// Where the daemon writes an app's output. Paths are absolute; `None` = the default file in
/// `<home>/logs`; `Some("/dev/null")` discards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSpec {
    pub out_file: Option<PathBuf>,
    pub error_file: Option<PathBuf>,
    /// Combined out+err file, in addition to the two above (pm2's `log_file`).
    pub log_file: Option<PathBuf>,
    /// One file per app (true, the default) or one per instance (`<name>-out-<i>.log`).
    pub merge_logs: bool,
    /// Prefix each line with a timestamp.
    pub time: bool,
    /// strftime-like format for the timestamp (pm2's `log_date_format`); implies `time`.
    pub date_format: Option<String>,
    /// `json`: one JSON object per line.
    pub json: bool,
    /// Rotate a file before it grows past this many bytes (`log_max_size`).
    pub max_size: Option<u64>,
    /// Rotated files kept per log file (`log_retain`; default 10 when rotation is on).
    pub retain: Option<u32>,
    /// gzip rotated files (`log_compress`).
    pub compress: bool,
    /// Rotate at the first write after local midnight (`log_rotate_daily`).
    pub rotate_daily: bool,
}

/// Balancing strategy of an app's listening sockets (PRODUCT.md §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    #[default]
    RoundRobin,
    Shared,
    Reuseport,
    Proxy,
    LeastConn,
}

impl Strategy {
    pub const ALL: [(&'static str, Strategy); 5] = [
        ("round-robin", Strategy::RoundRobin),
        ("shared", Strategy::Shared),
        ("reuseport", Strategy::Reuseport),
        ("proxy", Strategy::Proxy),
        ("least-conn", Strategy::LeastConn),
    ];

    pub fn as_str(self) -> &'static str {
        Strategy::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("round-robin", |(name, _)| name)
    }
}

/// A socket address the daemon listens on for an app: `127.0.0.1:8000`, `[::]:8000`, `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "addr")]
pub enum ListenAddr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Cluster mode: sockets owned by the daemon and shared by the instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSpec {
    pub listen: Vec<ListenAddr>,
    pub balance: Strategy,
    /// Share every TCP port the program binds, found as it binds them (pm2's cluster mode with
    /// no declared port): the preload asks the daemon, which creates or reuses the listener.
    pub discover: bool,
    /// Ports the program binds that stay its own (an admin or metrics port per instance).
    pub private_ports: Vec<u16>,
}

/// A readiness probe (reload issue); stored now so files and dumps keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Http { path: String },
    Tcp,
    Exec { command: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessSpec {
    pub probe: ProbeKind,
    pub interval_ms: u64,
    pub timeout_ms: u64,
}

/// pm2's `watch`: restart the app when a file under these paths changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WatchSpec {
    /// Absolute files or directories (directories watched recursively).
    pub paths: Vec<PathBuf>,
    /// pm2's `ignore_watch`: names or globs matched against each part of a changed path below
    /// the watched directory, or a relative path (`logs/app.log`, `dist/*`). Default: names
    /// starting with a dot, and `node_modules` (pm2's default).
    pub ignore: Vec<String>,
    /// `ignore_watch` entries that are JavaScript RegExps (ecosystem.config.js), as literals
    /// (`/node_modules/i`): tested against the changed file's full path, as chokidar does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_regex: Vec<String>,
    /// pm2's `--ext js,json`: only files with these extensions (lowercase, no dot) count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// pm2's `watch_delay`: wait this long (at least 100 ms) after a change, then restart once
    /// for every change seen meanwhile.
    pub delay_ms: u64,
}

/// Everything the daemon needs to run an app. Built and validated by `config` (from CLI flags
/// or an ecosystem file); the daemon trusts its shape but still checks what touches the OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSpec {
    pub name: String,
    /// pm2's `namespace`: a group of apps that a target may name (`restart api` restarts every
    /// app of namespace `api`, unless an app is called `api`). None is pm2's `default`.
    pub namespace: Option<String>,
    pub command: CommandSpec,
    /// The script file the command runs (absolute), when the app was started from one
    /// (`app.js`, `./server.py`, `script:` in a file); pm2's `pm_exec_path`. A target may name
    /// the app by it (`rcluster stop app.js`). None for a program on PATH or a command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<PathBuf>,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// The app's declared environment (from `env`, `env_<profile>`, `--env-var`); saved as is.
    pub env: BTreeMap<String, String>,
    /// Resolved instance count (`max` and `-1` are resolved by the client).
    pub instances: u32,
    /// The variable carrying the instance index, besides `RCLUSTER_INSTANCE` (pm2: NODE_APP_INSTANCE).
    pub instance_var: String,
    /// pm2's `increment_var`: this env var gets `base + index` in each instance.
    pub increment_var: Option<String>,
    pub autorestart: bool,
    /// pm2's `autostart: false` (`--no-autostart`): the app is added stopped; `start <name>`
    /// starts it.
    pub autostart: bool,
    /// Unstable restarts (uptime < min_uptime) in a row before `errored`.
    pub max_restarts: u32,
    pub min_uptime_ms: u64,
    pub restart_delay_ms: u64,
    /// First delay of exponential backoff (×1.5 per unstable restart, capped at 15 s).
    pub exp_backoff_restart_delay_ms: Option<u64>,
    /// Exit codes that mean "done, do not restart".
    pub stop_exit_codes: Vec<i32>,
    /// Signal name sent to the instance's process group on stop (default SIGINT, as pm2).
    pub kill_signal: String,
    pub kill_timeout_ms: u64,
    pub max_memory_restart: Option<u64>,
    /// pm2's `wait_ready`: ready when the program says so (sd_notify READY=1 / process.send('ready')).
    pub wait_ready: bool,
    pub listen_timeout_ms: u64,
    pub readiness: Option<ReadinessSpec>,
    pub cron_restart: Option<String>,
    pub watch: Option<WatchSpec>,
    pub depends_on: Vec<String>,
    pub logs: LogSpec,
    pub cluster: ClusterSpec,
    /// pm2's `filter_env` (`--filter-env`): variables of the starting shell whose names contain
    /// one of these are not passed on (nor saved); `""` matches every name (`filter_env: true`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_env: Vec<String>,
    /// pm2's `uid`/`gid`: run the app as this user and group (a name or a number); the daemon
    /// must run as root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Default for AppSpec {
    fn default() -> Self {
        AppSpec {
            name: String::new(),
            namespace: None,
            command: CommandSpec::Exec {
                program: String::new(),
                args: Vec::new(),
            },
            script: None,
            cwd: PathBuf::from("/"),
            env: BTreeMap::new(),
            instances: 1,
            instance_var: "NODE_APP_INSTANCE".into(),
            increment_var: None,
            autorestart: true,
            autostart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            restart_delay_ms: 0,
            exp_backoff_restart_delay_ms: None,
            stop_exit_codes: Vec::new(),
            kill_signal: "SIGINT".into(),
            kill_timeout_ms: 1600,
            max_memory_restart: None,
            wait_ready: false,
            listen_timeout_ms: 3000,
            readiness: None,
            cron_restart: None,
            watch: None,
            depends_on: Vec::new(),
            logs: LogSpec {
                merge_logs: true,
                ..LogSpec::default()
            },
            cluster: ClusterSpec::default(),
            filter_env: Vec::new(),
            user: None,
            group: None,
        }
    }
}

/// Lifecycle state of one instance (PRODUCT.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Launching,
    Online,
    Stopping,
    Stopped,
    WaitingRestart,
    Errored,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Launching => "launching",
            InstanceState::Online => "online",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::WaitingRestart => "waiting-restart",
            InstanceState::Errored => "errored",
        }
    }
}

/// One instance as `list --json` shows it. Field names are a public contract for scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: u32,
    pub name: String,
    /// The app's namespace (pm2's; `default` when it has none).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub instance: u32,
    /// `jlist` writes pm2's 0 for "no process"; read back as None.
    #[serde(default, deserialize_with = "pid_or_zero")]
    pub pid: Option<u32>,
    pub status: InstanceState,
    pub restarts: u32,
    pub uptime_ms: u64,
    /// Restarts in a row whose previous run was shorter than min_uptime (pm2's
    /// `unstable_restarts`); at `max_restarts` the instance is errored.
    #[serde(default)]
    pub unstable_restarts: u32,
    /// When the instance was created, or last restarted by a command (pm2's `created_at`), in
    /// milliseconds since the Unix epoch.
    #[serde(default)]
    pub created_at: u64,
    /// When its program last started (pm2's `pm_uptime`), in milliseconds since the Unix epoch;
    /// kept after it stops; 0 before the first start.
    #[serde(default)]
    pub started_at: u64,
    pub cpu: f64,
    pub memory: u64,
    pub reason: Option<String>,
    pub mode: String,
    pub ports: Vec<String>,
    pub command: String,
    pub cwd: PathBuf,
    pub out_log: Option<PathBuf>,
    pub err_log: Option<PathBuf>,
    /// Ready (see README: readiness): online and, in cluster mode, receiving connections.
    #[serde(default)]
    pub ready: bool,
    /// Connections dealt to this instance, and those open now (proxy) or queued (round-robin).
    pub accepted: u64,
    pub open: u64,
    /// Lines of the app (all its instances) that could not be written to its log files (a
    /// full disk, a file that cannot be opened) since it started under this daemon.
    #[serde(default)]
    pub log_lines_dropped: u64,
}

/// `pid`: a number, null, or pm2's 0 for "no process".
fn pid_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.filter(|pid| *pid != 0))
}

/// pm2's name for the namespace of apps that declare none.
pub const DEFAULT_NAMESPACE: &str = "default";

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}

/// Everything `describe` shows: the app's spec and its instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppDetail {
    pub spec: AppSpec,
    pub instances: Vec<InstanceView>,
}
