//! Lifecycle records: what happened to an instance (started, exited, restarting and why,
//! errored and why, stopped, deleted, reload steps). The supervisor makes each one in one place
//! (`daemon::journal`); `logs` shows them beside the apps' lines, as `pm2 logs` shows its
//! `PM2 | App [web:0] exited with code [1]` lines, and the daemon log keeps them. Serde only.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// When it happened: milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub kind: EventKind,
    pub app: String,
    /// The instance's id as `list` shows it, and its index in the app.
    pub id: u32,
    pub instance: u32,
    /// The instance's main process (a reload's new one for reload steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How it exited: an exit code, or the signal that killed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// How long the process ran (exits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    /// Why (for restarts, stops, errors and reloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The rest in words: an errored reason, the changed file, a restart delay, the pid that
    /// leaves in a reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The program runs (fork/exec done): `pid`.
    Start,
    /// The main process ended: `code` or `signal`.
    Exit,
    /// It will run again: `cause` (crash, watch, memory, cron, command).
    Restart,
    /// A command stops it.
    Stop,
    /// A command removes it (it stops first).
    Delete,
    /// It will not run again by itself: `cause` and `detail` say why.
    Errored,
    /// A reload starts a new instance for this index.
    ReloadStart,
    /// The new instance is ready and takes the traffic; the old one leaves (`detail`).
    ReloadReady,
    /// The new instance failed; the old one keeps serving (`detail`).
    ReloadFailed,
    /// A log file of the app cannot be written (a full disk...): its lines are dropped and
    /// counted (`detail` says which file and why).
    LogsFailing,
    /// The log file is written again (`detail`: how many lines were dropped meanwhile).
    LogsResumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// It exited by itself.
    Crash,
    /// A watched file changed.
    Watch,
    /// It used more than max_memory_restart.
    Memory,
    /// Its cron_restart time came.
    Cron,
    /// A user's command (restart, stop, delete, reload, scale, kill).
    Command,
    /// Too many unstable restarts in a row.
    Unstable,
    /// Its program could not be started.
    Spawn,
    /// A reload: its new instance did not become ready, or the instance has no zero-downtime
    /// path and is restarted instead.
    Reload,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Crash => "crash",
            Cause::Watch => "watch",
            Cause::Memory => "memory",
            Cause::Cron => "cron",
            Cause::Command => "command",
            Cause::Unstable => "unstable",
            Cause::Spawn => "spawn",
            Cause::Reload => "reload",
        }
    }
}

impl LifecycleEvent {
    /// pm2's `process_event` status for this record (`pm2 logs --json`): `online`, `exit`,
    /// `restart`, `stop`, `delete`, `restart overlimit`, `reload`.
    pub fn pm2_status(&self) -> &'static str {
        match self.kind {
            EventKind::Start => "online",
            EventKind::Exit => "exit",
            EventKind::Restart => "restart",
            EventKind::Stop => "stop",
            EventKind::Delete => "delete",
            EventKind::Errored if self.cause == Some(Cause::Unstable) => "restart overlimit",
            EventKind::Errored => "errored",
            EventKind::ReloadStart | EventKind::ReloadReady | EventKind::ReloadFailed => "reload",
            EventKind::LogsFailing => "log failing",
            EventKind::LogsResumed => "log resumed",
        }
    }

    /// The record in words, in pm2's frame: `App [web:0] exited with code 1`. Client strings
    /// (the app name, details) are escaped so that a line stays one line.
    pub fn message(&self) -> String {
        let mut text = format!("App [{}:{}] ", self.app.escape_debug(), self.id);
        let pid = match (self.pid, self.uptime_ms) {
            (Some(pid), Some(up)) => format!(" (pid {pid}, up {up} ms)"),
            (Some(pid), None) => format!(" (pid {pid})"),
            (None, _) => String::new(),
        };
        let cause = self.cause.map(Cause::as_str).unwrap_or("command");
        let body = match self.kind {
            EventKind::Start => format!("started{pid}"),
            EventKind::Exit => match (&self.signal, self.code) {
                (Some(signal), _) => format!("killed by signal {signal}{pid}"),
                (None, Some(code)) => format!("exited with code {code}{pid}"),
                (None, None) => format!("exited{pid}"),
            },
            EventKind::Restart => format!("restarting ({cause})"),
            EventKind::Stop => "stopping".to_owned(),
            EventKind::Delete => "deleting".to_owned(),
            EventKind::Errored => "errored".to_owned(),
            EventKind::ReloadStart => format!("reload: starting a new instance ({cause})"),
            EventKind::ReloadReady => format!("reload: new instance ready{pid}"),
            EventKind::ReloadFailed => "reload stopped".to_owned(),
            EventKind::LogsFailing => "cannot write its logs".to_owned(),
            EventKind::LogsResumed => "writes its logs again".to_owned(),
        };
        text.push_str(&body);
        if let Some(detail) = &self.detail {
            text.push_str(": ");
            text.push_str(&detail.escape_debug().to_string());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> LifecycleEvent {
        LifecycleEvent {
            at_ms: 0,
            kind,
            app: "web".into(),
            id: 3,
            instance: 0,
            pid: Some(42),
            code: None,
            signal: None,
            uptime_ms: None,
            cause: None,
            detail: None,
        }
    }

    #[test]
    fn reads_as_pm2_lines_do() {
        let exit = LifecycleEvent {
            code: Some(1),
            ..event(EventKind::Exit)
        };
        assert_eq!(exit.message(), "App [web:3] exited with code 1 (pid 42)");
        let killed = LifecycleEvent {
            signal: Some("SIGKILL".into()),
            uptime_ms: Some(1500),
            ..event(EventKind::Exit)
        };
        assert_eq!(
            killed.message(),
            "App [web:3] killed by signal SIGKILL (pid 42, up 1500 ms)"
        );
        let errored = LifecycleEvent {
            cause: Some(Cause::Unstable),
            detail: Some("too many unstable restarts (16)".into()),
            ..event(EventKind::Errored)
        };
        assert_eq!(
            errored.message(),
            "App [web:3] errored: too many unstable restarts (16)"
        );
        assert_eq!(errored.pm2_status(), "restart overlimit");
        let forged = LifecycleEvent {
            app: "a\nApp [x:0] online".into(),
            ..event(EventKind::Stop)
        };
        assert!(!forged.message().contains('\n'));
    }
}
