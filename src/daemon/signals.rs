//! SIGTERM/SIGINT stop every app and end the daemon, like `rcluster kill`; SIGHUP is ignored so
//! a closed terminal never takes the daemon down.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

use super::supervisor::{Cmd, SupervisorHandle};

pub fn spawn_signal_handler(
    handle: SupervisorHandle,
    answered: Arc<Notify>,
) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => continue,
            }
        }
        crate::dlog!("termination signal: stopping every app");
        let _ = handle.call(|reply| Cmd::Kill { reply }).await;
        answered.notify_one();
    });
    Ok(())
}
