//! `rcluster run` (pm2-runtime): the supervisor in the foreground, for containers and
//! Kubernetes. No daemon, no socket: the apps' output goes to this process's stdout/stderr
//! with `id|name |` prefixes, SIGTERM/SIGINT stop every app gracefully, orphans are reaped (also
//! as PID 1, where the kernel gives them to us), and the exit comes when every app has ended —
//! non-zero if one ended errored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, mpsc};

use crate::daemon::logs::LogRecord;
use crate::daemon::process::reaper;
use crate::daemon::supervisor::{ClusterContext, Cmd, Supervisor, SupervisorHandle};
use crate::paths::Home;
use crate::protocol::model::AppSpec;
use crate::protocol::response::Stream;
use crate::protocol::IfRunning;

/// Records the printer may fall behind before it skips (and says so).
const PRINT_BUFFER: usize = 256;

pub fn main(mut specs: Vec<AppSpec>) -> Result<i32> {
    reaper_fds();
    // A private, throw-away home: sockets for sd_notify, the preload library.
    let home = Home::at(std::env::temp_dir().join(format!("rcluster-run-{}", std::process::id())));
    home.ensure()?;
    for spec in &mut specs {
        // Output goes to our stdout/stderr; files only where the app asks for them.
        let discard = Some(PathBuf::from("/dev/null"));
        spec.logs.out_file = spec.logs.out_file.take().or_else(|| discard.clone());
        spec.logs.error_file = spec.logs.error_file.take().or(discard);
    }
    if std::process::id() != 1 {
        reaper::become_subreaper().context("cannot become a child subreaper")?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(supervise(home.clone(), specs));
    drop(runtime);
    crate::daemon::logs::writer::wait_for_writers(std::time::Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(home.root());
    code
}

/// Inherited fds stay ours, not the apps' (see `process::fds`).
fn reaper_fds() {
    crate::daemon::process::fds::cloexec_inherited();
}

async fn supervise(home: Home, specs: Vec<AppSpec>) -> Result<i32> {
    let (reaped_tx, reaped_rx) = mpsc::unbounded_channel();
    reaper::spawn_reaper(reaped_tx).context("cannot watch SIGCHLD")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let handle = SupervisorHandle::new(cmd_tx);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let followers = broadcast::channel(PRINT_BUFFER).0;
    let printer = tokio::spawn(print_records(followers.subscribe()));
    let cluster = ClusterContext {
        events: events_tx,
        preload: crate::preload::install(&home.lib_dir()).ok(),
        trampoline: std::env::current_exe().context("cannot find the rcluster executable")?,
        handoff_fds: None,
    };
    let mut supervisor = Supervisor::new(home, followers, cluster);
    let lifecycle = tokio::spawn(print_lifecycle(supervisor.lifecycle_feed()));
    let supervisor = tokio::spawn(async move {
        let (mut cmd_rx, mut reaped_rx, mut events_rx) = (cmd_rx, reaped_rx, events_rx);
        supervisor
            .run(&mut cmd_rx, &mut reaped_rx, &mut events_rx)
            .await;
    });

    let base_env: BTreeMap<String, String> = std::env::vars().collect();
    let started = handle
        .call(|reply| Cmd::Start {
            apps: specs,
            base_env,
            if_running: IfRunning::Fail,
            reply,
        })
        .await;
    let code = match started {
        Err(e) => {
            eprintln!("rcluster: error: {e}");
            1
        }
        Ok(instances) => {
            eprintln!(
                "[rcluster] running {} instance(s) in the foreground",
                instances.instances.len()
            );
            let ended = handle.ask(|reply| Cmd::WhenAllEnded { reply });
            tokio::select! {
                errored = ended => match errored {
                    Ok(true) => {
                        report_errored(&handle).await;
                        1
                    }
                    _ => 0,
                },
                _ = term.recv() => 0,
                _ = int.recv() => 0,
            }
        }
    };
    // Stop what still runs (graceful: kill_signal, kill_timeout, SIGKILL), then end.
    let _ = handle.call(|reply| Cmd::Kill { reply }).await;
    let _ = supervisor.await;
    // The printer ends when the last writer is gone; bound the wait for late lines.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), printer).await;
    let _ = lifecycle.await;
    Ok(code)
}

/// Lifecycle records on stderr, as `logs` shows them (pm2-runtime prints its `PM2 log:` lines).
async fn print_lifecycle(mut events: crate::daemon::supervisor::EventFeed) {
    loop {
        match events.recv().await {
            Ok(event) => eprintln!("{:<12}| {}", "rcluster", event.message()),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn report_errored(handle: &SupervisorHandle) {
    let Ok(instances) = handle.ask(|reply| Cmd::List { reply }).await else {
        return;
    };
    for inst in instances
        .iter()
        .filter(|i| i.status == crate::protocol::model::InstanceState::Errored)
    {
        eprintln!(
            "rcluster: error: app \"{}\" instance {} errored: {}",
            inst.name,
            inst.instance,
            inst.reason.as_deref().unwrap_or("unknown reason")
        );
    }
}

async fn print_records(mut records: broadcast::Receiver<std::sync::Arc<LogRecord>>) {
    loop {
        match records.recv().await {
            Ok(record) => {
                let text = String::from_utf8_lossy(&record.data);
                let prefix = format!("{}|{:<10}|", record.id, record.app);
                let mut out: Vec<u8> = Vec::with_capacity(record.data.len() + 16);
                for line in text.lines() {
                    let _ = writeln!(out, "{prefix} {line}");
                }
                let written = match record.stream {
                    Stream::Out => std::io::stdout().write_all(&out),
                    Stream::Err => std::io::stderr().write_all(&out),
                };
                if written.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                eprintln!("[rcluster] {n} log records skipped: the output is slower than the apps");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
