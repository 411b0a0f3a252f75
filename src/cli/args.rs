//! clap definitions: pm2's verbs and aliases (PRODUCT.md §9). The completions in `completions/`
//! and man pages in `man/` are generated from these; a test catches drift.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::engine::ArgValueCompleter;

use crate::cli::complete;

#[derive(Debug, Parser)]
#[command(
    name = "rcluster",
    version,
    about = "A process manager for programs in any language: restarts, logs, and cluster mode on one port",
    long_about = None,
    propagate_version = true,
    after_help = "Targets: an instance id, an app name, a namespace, `all`, the script an app was started from (app.js), /regex/ over app names, or an ecosystem file (ecosystem.yaml, *.json, *.config.js; `-` reads one from standard input). The daemon starts on first use; its home is $RCLUSTER_HOME (default: the platform state directory)."
)]
pub struct Cli {
    /// Print error causes in full.
    #[arg(short, long, global = true, display_order = 900)]
    pub verbose: bool,

    /// pm2's flag for plain output; rcluster's is plain already.
    #[arg(long, global = true, hide = true)]
    pub no_color: bool,

    /// Nothing on stdout from commands that change things (pm2's -s); what a command is asked
    /// to show (list, logs, describe, pid...) still prints, and errors go to stderr.
    #[arg(short, long, global = true, display_order = 901)]
    pub silent: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one parsed: it halves the start-up
// of every command (jlist is polled by monitoring scripts).
#[command(defer = true)]
pub enum Command {
    /// Start a program, a script, a quoted command line, as N instances (or a known app again:
    /// its name, an id, `all`).
    Start(Box<StartArgs>),
    /// Run apps in the foreground without a daemon (pm2-runtime, for containers): output to
    /// stdout/stderr, SIGTERM/SIGINT stop them, exits when all have ended.
    Run(Box<StartArgs>),
    /// Serve a folder's files over HTTP as an app (pm2's serve): `serve dist 3000 --spa`.
    Serve(ServeArgs),
    /// List every instance (a table, or JSON for scripts).
    #[command(visible_aliases = ["ls", "ps", "status"], alias = "l")]
    List(ListArgs),
    /// Every instance as pm2's jlist shows it (pm2's keys and rcluster's), one JSON array; the
    /// same as `list --json`.
    Jlist,
    /// What jlist prints, in Node's object notation, as pm2's prettylist prints it.
    Prettylist,
    /// A live dashboard: instances with CPU and memory, the selected app's logs and details;
    /// keys to restart, reload, stop and filter; q quits (a table per refresh into a pipe).
    Monit(MonitArgs),
    /// Show everything about an app.
    #[command(visible_aliases = ["desc", "info", "show"])]
    Describe(DescribeArgs),
    /// Stop instances (the stop signal, then SIGKILL after kill_timeout).
    Stop(TargetArgs),
    /// Stop then start instances again (with an ecosystem file, its new definitions, and its apps
    /// that do not run are started: pm2's startOrRestart).
    #[command(visible_alias = "startOrRestart")]
    Restart(RestartArgs),
    /// Stop instances and forget them.
    #[command(visible_alias = "del")]
    Delete(TargetArgs),
    /// Replace instances one at a time with zero downtime (new one ready, then the old one
    /// drained); with an ecosystem file, its apps that do not run are started (pm2's
    /// startOrReload).
    #[command(
        visible_aliases = ["startOrReload", "startOrGracefulReload"],
        alias = "gracefulReload"
    )]
    Reload(ReloadArgs),
    /// Set the number of instances of an app: N, +N or -N (removals drain like a reload).
    Scale(ScaleArgs),
    /// Save the process list, to be restored by `resurrect` (and at boot, see `startup`).
    #[command(visible_alias = "dump")]
    Save(SaveArgs),
    /// Start the saved apps that do not run.
    Resurrect,
    /// Empty the saved process list (the previous one is kept as dump.pm2.bak).
    Cleardump,
    /// Empty the log files of apps.
    Flush(OptionalTargetArgs),
    /// Reopen every log file (after an external logrotate moved them).
    #[command(name = "reloadLogs", visible_alias = "reload-logs")]
    ReloadLogs,
    /// Send a signal to the main process of running instances (pm2's sendSignal).
    #[command(visible_aliases = ["sendSignal", "send-signal"])]
    Signal(SignalArgs),
    /// Set the restart counts of instances back to 0.
    Reset(InstanceTargetArgs),
    /// Print the pids of running instances, one per line.
    Pid(OptionalTargetArgs),
    /// Print the ids of an app's instances (pm2's id: `[ 0, 1 ]`).
    Id(EnvArgs),
    /// Print the environment a running instance's program started with (pm2's env).
    Env(EnvArgs),
    /// Show the last lines of app logs, then follow live lines until Ctrl-C (--nostream: exit).
    #[command(alias = "log")]
    Logs(LogsArgs),
    /// Check that the daemon answers (it is started if needed).
    Ping,
    /// Stop every app and the daemon.
    Kill,
    /// Replace the running daemon by this rcluster binary, keeping every app, pid and socket.
    #[command(alias = "updatePM2")]
    Update,
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Write a commented example ecosystem file (ecosystem.yaml).
    #[command(visible_alias = "init")]
    Ecosystem(EcosystemArgs),
    /// Check an ecosystem file without starting anything: every problem, unknown keys
    /// included (as --strict); exit status 1 if there is one.
    Check(CheckArgs),
    /// Print (or install) a systemd unit that starts rcluster at boot and resurrects the saved apps.
    Startup(StartupArgs),
    /// Remove the systemd unit installed by `startup --install`.
    Unstartup(UnstartupArgs),
    /// Start the apps another process manager saved (pm2's `pm2 save` list).
    Import(ImportArgs),
    /// Any other word: pm2's verbs that have no place here get their reason (`pm2_verbs`).
    #[command(external_subcommand)]
    Other(Vec<String>),
}

impl Command {
    /// Commands that change things: what they print is a report, which `-s` silences.
    pub fn reports_a_change(&self) -> bool {
        matches!(
            self,
            Command::Start(_)
                | Command::Serve(_)
                | Command::Stop(_)
                | Command::Restart(_)
                | Command::Delete(_)
                | Command::Reload(_)
                | Command::Scale(_)
                | Command::Save(_)
                | Command::Resurrect
                | Command::Cleardump
                | Command::Flush(_)
                | Command::ReloadLogs
                | Command::Signal(_)
                | Command::Reset(_)
                | Command::Ping
                | Command::Kill
                | Command::Update
                | Command::Ecosystem(_)
                | Command::Import(_)
        )
    }
}

// pm2 `start` flags that mean nothing here, accepted (hidden) so that commands written for pm2
// run unchanged; each used one is named with the reason (`ecosystem::no_effect_reason`).
// (Plain comments on flattened structs: a doc comment would become the about of the command
// that flattens it, as deferred subcommands are built after their own about.)
#[derive(Debug, Clone, Default, Args)]
pub struct Pm2OnlyFlags {
    // pm2's -f (see `cmd::start`).
    #[arg(
        short = 'f',
        long,
        help = "Start another copy of a script that runs already (pm2's -f; the copy is named <name>-2)"
    )]
    pub force: bool,
    #[arg(long, hide = true)]
    pub no_vizion: bool,
    #[arg(long, hide = true)]
    pub no_pmx: bool,
    #[arg(long, hide = true)]
    pub no_automation: bool,
    #[arg(long, hide = true)]
    pub no_treekill: bool,
    #[arg(long, hide = true)]
    pub disable_trace: bool,
    #[arg(long, hide = true)]
    pub source_map_support: bool,
    #[arg(long, hide = true)]
    pub disable_source_map_support: bool,
    #[arg(long, hide = true)]
    pub shutdown_with_message: bool,
    #[arg(short = 'x', long, hide = true)]
    pub execute_command: bool,
    #[arg(long, hide = true)]
    pub trace: bool,
    #[arg(long, hide = true)]
    pub v8: bool,
    #[arg(long, hide = true)]
    pub event_loop_inspector: bool,
    #[arg(long, hide = true)]
    pub deep_monitoring: bool,
    #[arg(long = "pid", hide = true, value_name = "FILE")]
    pub pid_file: Option<String>,
}

impl Pm2OnlyFlags {
    /// (flag, the ecosystem key it stands for) of each flag given.
    pub fn used(&self) -> Vec<(&'static str, &'static str)> {
        [
            (self.no_vizion, "no-vizion", "vizion"),
            (self.no_pmx, "no-pmx", "pmx"),
            (self.no_automation, "no-automation", "automation"),
            (self.no_treekill, "no-treekill", "treekill"),
            (self.disable_trace, "disable-trace", "disable_trace"),
            (
                self.shutdown_with_message,
                "shutdown-with-message",
                "shutdown_with_message",
            ),
            (self.execute_command, "execute-command", "execute_command"),
            (self.trace, "trace", "trace"),
            (self.v8, "v8", "v8"),
            (
                self.event_loop_inspector,
                "event-loop-inspector",
                "event_loop_inspector",
            ),
            (self.deep_monitoring, "deep-monitoring", "deep_monitoring"),
            (self.pid_file.is_some(), "pid", "pid_file"),
        ]
        .into_iter()
        .filter(|(given, _, _)| *given)
        .map(|(_, flag, key)| (flag, key))
        .collect()
    }
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// A program (`node`), a script (`app.js`, `./worker.sh`), a quoted command line
    /// (`"python3 -m http.server 8000"`), a known app, or an ecosystem file (`-` reads one from
    /// standard input).
    #[arg(add = ArgValueCompleter::new(complete::scripts))]
    pub script: String,

    /// More scripts: one app each, as `pm2 start a.js b.js` does.
    #[arg(value_name = "SCRIPT", add = ArgValueCompleter::new(complete::scripts))]
    pub more_scripts: Vec<String>,

    /// Arguments for the program, after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,

    /// App name (default: the script's name without extension).
    #[arg(short = 'n', long)]
    pub name: Option<String>,

    /// pm2's namespace: a group that targets may name (`restart <namespace>`).
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,

    /// Number of instances: N, `max` (all CPUs available to rcluster) or -1 (max minus one).
    #[arg(short = 'i', long, allow_hyphen_values = true, value_name = "N|max")]
    pub instances: Option<String>,

    /// Working directory (default: the current one).
    #[arg(long)]
    pub cwd: Option<PathBuf>,

    /// An environment variable for the app (repeatable).
    #[arg(long = "env-var", value_name = "KEY=VALUE")]
    pub env_vars: Vec<String>,

    /// Interpreter for the script (default: chosen by extension, as pm2 does; `none` runs it as is).
    #[arg(long)]
    pub interpreter: Option<String>,

    /// Arguments for the interpreter, before the script (`--node-args="--max-old-space-size=4096"`).
    #[arg(
        long,
        visible_alias = "node-args",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub interpreter_args: Option<String>,

    /// Do not restart instances when they exit.
    #[arg(long)]
    pub no_autorestart: bool,

    /// Add the app stopped: `rcluster start <name>` starts it later (pm2's --no-autostart).
    #[arg(long)]
    pub no_autostart: bool,

    /// Unstable restarts in a row (each up less than min-uptime) before `errored`.
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,

    /// A run shorter than this counts as unstable (e.g. 1000, 1s).
    #[arg(long, value_name = "DURATION")]
    pub min_uptime: Option<String>,

    /// Wait this long before each restart.
    #[arg(long, value_name = "DURATION")]
    pub restart_delay: Option<String>,

    /// Exponential backoff between restarts, starting at this delay (x1.5, capped at 15 s).
    #[arg(long, value_name = "DURATION")]
    pub exp_backoff_restart_delay: Option<String>,

    /// Exit codes that mean "done": no restart (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_name = "CODES"
    )]
    pub stop_exit_codes: Vec<i32>,

    /// Signal sent to the instance's process group on stop (default SIGINT, as pm2).
    #[arg(long, value_name = "SIGNAL")]
    pub kill_signal: Option<String>,

    /// Time between the stop signal and SIGKILL (default 1600 ms).
    #[arg(short = 'k', long, value_name = "DURATION")]
    pub kill_timeout: Option<String>,

    /// Ready only when the program says so: READY=1 on $NOTIFY_SOCKET (sd_notify) or Node's
    /// process.send('ready'), as pm2's wait_ready.
    #[arg(long)]
    pub wait_ready: bool,

    /// Reload an instance gracefully when its memory exceeds this size (e.g. 300M, 1G).
    #[arg(long, value_name = "SIZE")]
    pub max_memory_restart: Option<String>,

    /// Restart the app on a cron schedule, in local time ("0 3 * * *", "*/30 * * * * *",
    /// "@hourly"; 0 = off); also starts it again if it had ended by itself.
    #[arg(short = 'c', long, visible_alias = "cron", value_name = "PATTERN")]
    pub cron_restart: Option<String>,

    /// Restart the app when a file changes under its cwd, or under PATH (--watch=PATH,
    /// repeatable); hidden files and node_modules are ignored unless --ignore-watch is given.
    /// (`--watch src` after the script, as in pm2; `--watch=src` anywhere.)
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub watch: Option<Vec<String>>,

    /// With --watch: leave these alone (names, globs such as *.log, or relative paths;
    /// repeatable, or several in one value separated by spaces).
    #[arg(long, value_name = "PATTERN", action = clap::ArgAction::Append)]
    pub ignore_watch: Vec<String>,

    /// With --watch: only files with these extensions count (pm2's --ext: `js,json`).
    #[arg(long, value_name = "EXTENSIONS", requires = "watch")]
    pub ext: Option<String>,

    /// With --watch: wait this long after a change before restarting (e.g. 500ms, 1s; at least
    /// 100ms, so that one save is one restart).
    #[arg(long, value_name = "DURATION")]
    pub watch_delay: Option<String>,

    /// Name of the variable carrying the instance index (default NODE_APP_INSTANCE).
    #[arg(long, value_name = "NAME")]
    pub instance_var: Option<String>,

    /// Prefix every log line with a timestamp (pm2's format, `YYYY-MM-DDTHH:mm:ss`, local time).
    #[arg(long)]
    pub time: bool,

    /// Timestamp format for log lines (implies --time): moment tokens like
    /// `YYYY-MM-DD HH:mm:ss.SSS Z`, or strftime like `%F %T`.
    #[arg(long, value_name = "FORMAT")]
    pub log_date_format: Option<String>,

    /// `json`: write each log line as a JSON object (timestamp, app, id, instance, stream, message).
    #[arg(long, value_name = "TYPE", value_parser = ["json"])]
    pub log_type: Option<String>,

    /// Rotate a log file before it grows past this size (e.g. 10M).
    #[arg(long, value_name = "SIZE")]
    pub log_max_size: Option<String>,

    /// Rotated files kept per log file (default 10 when rotation is on).
    #[arg(long, value_name = "N")]
    pub log_retain: Option<u32>,

    /// gzip rotated log files.
    #[arg(long)]
    pub log_compress: bool,

    /// Also rotate log files at the first write after local midnight.
    #[arg(long)]
    pub log_rotate_daily: bool,

    /// One log file per instance (`<name>-out-<i>.log`): the default with -i or --exec-mode
    /// cluster, as in pm2.
    #[arg(long)]
    pub no_merge_logs: bool,

    /// One log file per app for all its instances (pm2's --merge-logs).
    #[arg(long, conflicts_with = "no_merge_logs")]
    pub merge_logs: bool,

    #[command(flatten)]
    pub pm2_only: Pm2OnlyFlags,

    /// Discard the app's output (both log files /dev/null).
    #[arg(long, conflicts_with_all = ["out_file", "error_file", "log_file"])]
    pub disable_logs: bool,

    /// After starting, follow the app's logs until Ctrl-C (pm2's --attach).
    #[arg(long)]
    pub attach: bool,

    /// When `start` names a known app (which restarts it): give it this shell's environment.
    #[arg(short = 'a', long)]
    pub update_env: bool,

    /// Run in the foreground without a daemon, as `rcluster run` (pm2's --no-daemon, the
    /// container form: `CMD rcluster start app.js --no-daemon`).
    #[arg(long)]
    pub no_daemon: bool,

    /// Leave out the variables of this shell whose names contain NAME (repeatable; pm2's
    /// --filter-env): the app does not see them, and `save` does not keep them.
    #[arg(long = "filter-env", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub filter_env: Vec<String>,

    /// pm2's uid/gid: refused with the reason (run rcluster as that user).
    #[arg(long, hide = true, value_name = "UID")]
    pub uid: Option<String>,
    #[arg(long, hide = true, value_name = "GID")]
    pub gid: Option<String>,

    /// File for standard output (`/dev/null` discards).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub out_file: Option<PathBuf>,

    /// File for standard error (`/dev/null` discards).
    #[arg(short = 'e', long = "error", value_name = "FILE")]
    pub error_file: Option<PathBuf>,

    /// File for both streams combined.
    #[arg(short = 'l', long = "log", value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Cluster mode: the daemon listens on this port (0.0.0.0:PORT) and shares it with every
    /// instance (repeatable). Port 0 picks a free port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// Cluster mode: an address to listen on: `127.0.0.1:8000`, `[::]:8000`, `unix:/path`
    /// (repeatable).
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,

    /// fork: instances do not share ports; cluster (the default with -i N > 1): every TCP port
    /// the program binds is shared, as pm2's cluster mode does, with no --port needed.
    #[arg(long, value_name = "MODE")]
    pub exec_mode: Option<String>,

    /// A port the program binds that stays each instance's own in cluster mode (repeatable).
    #[arg(long = "private-port", value_name = "PORT")]
    pub private_ports: Vec<u16>,

    /// How connections reach instances: round-robin (default), shared, reuseport, proxy, least-conn.
    #[arg(long, value_name = "STRATEGY")]
    pub balance: Option<String>,

    /// How long an instance may take to listen before it is reported (default 3000 ms).
    #[arg(long, value_name = "DURATION")]
    pub listen_timeout: Option<String>,

    #[command(flatten)]
    pub file: FileArgs,

    /// Print the started instances as JSON.
    #[arg(long)]
    pub json: bool,
}

// Which apps of an ecosystem file, with which environment profile.
#[derive(Debug, Clone, Default, Args)]
pub struct FileArgs {
    /// Ecosystem file: only these apps (comma separated).
    #[arg(long, value_delimiter = ',', value_name = "APPS")]
    pub only: Vec<String>,
    /// Ecosystem file: merge `env_<PROFILE>` over each app's `env` (app names may depend on it).
    #[arg(long = "env", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Ecosystem file: refuse unknown keys (by default they are ignored with a warning, as pm2
    /// ignores them).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The ecosystem file (ecosystem.yaml, *.json, *.config.js).
    pub path: String,
    #[command(flatten)]
    pub file: FileArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// pm2's jlist: a JSON array, one object per instance (docs/jlist.md).
    #[arg(long)]
    pub json: bool,
    /// pm2's compact list: `key : value` lines per instance, no table.
    #[arg(short, long = "mini-list", conflicts_with = "json")]
    pub mini: bool,
    /// Order by a column, pm2's way: name, id, pid, cpu, memory, uptime, restarts or status,
    /// with `:asc` (default) or `:desc` (`--sort memory:desc`).
    #[arg(long, value_name = "FIELD[:ORDER]")]
    pub sort: Option<String>,
}

#[derive(Debug, Args)]
pub struct MonitArgs {
    /// Only this app (name or instance id; the dashboard starts filtered on it); default all.
    #[arg(add = ArgValueCompleter::new(complete::apps))]
    pub target: Option<String>,
    /// Time between refreshes (e.g. 1s, 500ms); CPU % is measured over it.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,
    /// Print this many tables, one per refresh, then exit (as `top -b -n`), even on a terminal.
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// App name or instance id.
    #[arg(add = ArgValueCompleter::new(complete::apps))]
    pub target: String,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Instance ids, app names, `all`, or ecosystem files.
    #[arg(required = true, add = ArgValueCompleter::new(complete::targets))]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub file: FileArgs,
    /// Print the affected instances as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Give the restarted apps this shell's environment as their base (pm2's --update-env);
    /// otherwise they keep the one of the shell that started them.
    #[arg(short = 'a', long)]
    pub update_env: bool,
    /// Rename the app first (pm2's `restart 0 --name new`); the target names one app.
    #[arg(short = 'n', long, value_name = "NEW")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Instance ids, app names, `all`, or ecosystem files (their new definitions are applied).
    #[arg(required = true, add = ArgValueCompleter::new(complete::targets))]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub file: FileArgs,
    /// How many instances to replace at once.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub parallel: u32,
    /// Give the new instances this shell's environment as their base (pm2's --update-env).
    #[arg(short = 'a', long)]
    pub update_env: bool,
    /// Print the new instances as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The app's name.
    #[arg(add = ArgValueCompleter::new(complete::app_names))]
    pub app: String,
    /// N (exactly), +N (more) or -N (fewer).
    #[arg(allow_hyphen_values = true, value_name = "N|+N|-N")]
    pub count: String,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// A signal name or number: SIGUSR2, USR2, 12.
    pub signal: String,
    /// Instance ids, app names, `all`, or ecosystem files.
    #[arg(required = true, add = ArgValueCompleter::new(complete::targets))]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InstanceTargetArgs {
    /// Instance ids, app names, `all`, or ecosystem files.
    #[arg(required = true, add = ArgValueCompleter::new(complete::targets))]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The folder to serve (default: the current one).
    pub path: Option<PathBuf>,

    /// The port (default 8080, or $PM2_SERVE_PORT).
    #[arg(value_name = "PORT")]
    pub port_arg: Option<u16>,

    /// The port, as a flag.
    #[arg(short = 'p', long, conflicts_with = "port_arg")]
    pub port: Option<u16>,

    /// Single-page app: a path that is no file gets the homepage (pm2's --spa).
    #[arg(long)]
    pub spa: bool,

    /// The page for `/` and for --spa (default /index.html).
    #[arg(long, value_name = "PATH")]
    pub homepage: Option<String>,

    /// Ask for this user name (HTTP basic auth; with --basic-auth-password).
    #[arg(long, value_name = "USER", requires = "basic_auth_password")]
    pub basic_auth_username: Option<String>,

    /// Ask for this password (HTTP basic auth; with --basic-auth-username).
    #[arg(long, value_name = "PASSWORD", requires = "basic_auth_username")]
    pub basic_auth_password: Option<String>,

    /// The address to listen on (default: every interface, as pm2).
    #[arg(long, value_name = "IP")]
    pub host: Option<std::net::IpAddr>,

    /// App name (default: static-page-server-PORT, as pm2).
    #[arg(short = 'n', long)]
    pub name: Option<String>,

    /// pm2's namespace.
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,

    /// Number of instances, on one port: N, `max` or -1.
    #[arg(short = 'i', long, allow_hyphen_values = true, value_name = "N|max")]
    pub instances: Option<String>,

    /// Run in the foreground without a daemon, as `rcluster run` (pm2's --no-daemon).
    #[arg(long)]
    pub no_daemon: bool,

    /// Print the started instances as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// An instance id (or the name of an app of one instance).
    #[arg(add = ArgValueCompleter::new(complete::apps))]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct OptionalTargetArgs {
    /// An instance id, an app name, or `all` (the default).
    #[arg(add = ArgValueCompleter::new(complete::apps))]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// App name or instance id (default: every app).
    #[arg(add = ArgValueCompleter::new(complete::apps))]
    pub target: Option<String>,
    /// How many past lines to show per file.
    #[arg(long, default_value_t = 15)]
    pub lines: usize,
    /// Keep printing new lines as they come: the default, as in pm2 (kept for scripts).
    #[arg(short, long)]
    pub follow: bool,
    /// Print the past lines and exit, without following (pm2's flag; for scripts).
    #[arg(long, conflicts_with = "follow")]
    pub nostream: bool,
    /// Standard output only.
    #[arg(long, conflicts_with = "err")]
    pub out: bool,
    /// Standard error only.
    #[arg(long)]
    pub err: bool,
    /// Lines only: no prefixes, no headers.
    #[arg(long)]
    pub raw: bool,
    /// One JSON object per line (app, id, stream, message; timestamp for live lines).
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Prefix live lines with the time they were received.
    #[arg(long)]
    pub timestamp: bool,
}

#[derive(Debug, Args)]
pub struct EcosystemArgs {
    /// The file to write.
    #[arg(default_value = "ecosystem.yaml")]
    pub file: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StartupArgs {
    /// pm2's init system argument: `systemd` (or a systemd distribution: ubuntu, debian,
    /// centos, redhat, fedora, amazon...); rcluster writes systemd units only.
    #[arg(value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// A user unit (`systemctl --user`, ~/.config/systemd/user/rcluster.service) instead of a
    /// system unit (/etc/systemd/system/rcluster-<user>.service, needs root to install).
    #[arg(long)]
    pub user: bool,
    /// Write the unit file (default: print it).
    #[arg(long)]
    pub install: bool,
    /// Start only once the network is up (network-online.target; pm2's --wait-ip).
    #[arg(long)]
    pub wait_ip: bool,
    #[command(flatten)]
    pub unit: UnitArgs,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Save even when no app runs (an empty list over the saved one), as pm2's --force.
    #[arg(short = 'f', long)]
    pub force: bool,
}

// pm2's `startup -u deploy --hp /home/deploy --service-name web`.
#[derive(Debug, Args)]
pub struct UnitArgs {
    /// The user the daemon runs as (pm2's -u; default: you, or the user who ran sudo).
    #[arg(short = 'u', value_name = "USER", conflicts_with = "user")]
    pub run_as: Option<String>,
    /// That user's home directory (pm2's --hp; default: from the user database).
    #[arg(long = "hp", value_name = "DIR")]
    pub home_path: Option<PathBuf>,
    /// The unit's name (default rcluster-<user>, or rcluster for --user).
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnstartupArgs {
    /// pm2's init system argument (see `startup`).
    #[arg(value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Remove the user unit instead of the system unit.
    #[arg(long)]
    pub user: bool,
    #[command(flatten)]
    pub unit: UnitArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Where the list comes from.
    #[arg(value_enum)]
    pub from: ImportSource,
    /// pm2's home (default: $PM2_HOME, else ~/.pm2); the list is its dump.pm2.
    #[arg(long, value_name = "DIR")]
    pub pm2_home: Option<PathBuf>,
    /// Then save rcluster's process list, so `resurrect` and the `startup` unit bring them back.
    #[arg(long, conflicts_with = "write")]
    pub save: bool,
    /// Write the apps as an ecosystem file instead of starting them (to review, edit and keep).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportSource {
    /// pm2's saved process list (`pm2 save` writes it to $PM2_HOME/dump.pm2).
    Pm2,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
