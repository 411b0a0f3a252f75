//! The supervisor's side of cluster mode: bind an app's sockets at start (refusing what cannot
//! work, such as round-robin for a static binary), and track which instances accept.

use std::time::Duration;

use tokio::time::Instant;

use super::actor::Supervisor;
use super::timers::{Timer, TimerKind};
use crate::daemon::balancer::elf::is_static_elf;
use crate::daemon::balancer::{Balancer, BalancerEvent};
use crate::daemon::process::spawn::resolve_program;
use crate::protocol::model::{AppSpec, CommandSpec, InstanceState, Strategy};
use crate::protocol::{ErrorKind, ErrorReply};

impl Supervisor {
    /// The app's balancer, or None for an app without listeners.
    pub(super) fn bind_cluster(&self, spec: &AppSpec) -> Result<Option<Balancer>, ErrorReply> {
        if spec.cluster.listen.is_empty() {
            return Ok(None);
        }
        let fail = |message: String| {
            ErrorReply::new(ErrorKind::Os, format!("app \"{}\": {message}", spec.name))
        };
        if spec.cluster.balance == Strategy::RoundRobin {
            if self.cluster.preload.is_none() {
                return Err(fail("round-robin needs the preload library, which could not be installed (see the daemon log)".into()));
            }
            if let CommandSpec::Exec { program, .. } = &spec.command {
                let path = spec
                    .env
                    .get("PATH")
                    .map(String::as_str)
                    .or(Some(DEFAULT_SEARCH_PATH));
                if let Ok(resolved) = resolve_program(program, &spec.cwd, path) {
                    if is_static_elf(&resolved) == Some(true) {
                        return Err(fail(format!(
                            "{} is statically linked, so the preload library cannot reach its bind(): \
                             use --balance shared if it takes its socket from LISTEN_FDS, or --balance proxy if it listens on $PORT",
                            resolved.display()
                        )));
                    }
                }
            }
        }
        Balancer::bind(
            spec,
            self.cluster.events.clone(),
            self.cluster.preload.clone(),
        )
        .map(Some)
        .map_err(fail)
    }

    pub(super) fn on_balancer_event(&mut self, event: BalancerEvent) {
        let (id, ready) = match event {
            BalancerEvent::Ready { id, .. } => (id, true),
            BalancerEvent::Unready { id, .. } => (id, false),
        };
        if let Some(inst) = self.instances.get_mut(&id) {
            if inst.ready != ready {
                crate::dlog!(
                    "app {}: instance {} (id {id}) {}",
                    inst.app,
                    inst.index,
                    if ready {
                        "accepts connections"
                    } else {
                        "stopped accepting"
                    }
                );
            }
            inst.ready = ready;
            if ready
                && inst
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(NOT_LISTENING))
            {
                inst.reason = None;
            }
        }
    }

    /// After listen_timeout, say so if a cluster instance still has not taken its socket.
    pub(super) fn arm_listen_check(&mut self, id: u32) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        if !matches!(
            app.balancer.as_ref().map(|b| b.strategy()),
            Some(Strategy::RoundRobin | Strategy::Proxy | Strategy::LeastConn)
        ) {
            return;
        }
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
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.ready || inst.state != InstanceState::Online {
            return;
        }
        let Some(app) = self.apps.get(&inst.app) else {
            return;
        };
        let ports = app
            .balancer
            .as_ref()
            .map(|b| b.addresses().join(", "))
            .unwrap_or_default();
        let how = match app.spec.cluster.balance {
            Strategy::Proxy | Strategy::LeastConn => "its private $PORT",
            _ => "the managed port",
        };
        let reason = format!(
            "{NOT_LISTENING} {how} after {} ms (app listens on {ports}): it may bind another port, or be slow to start",
            app.spec.listen_timeout_ms
        );
        crate::dlog!(
            "app {}: instance {} (id {id}): {reason}",
            inst.app,
            inst.index
        );
        inst.reason = Some(reason);
    }
}

const NOT_LISTENING: &str = "not listening on";
/// Where a static-binary check looks when the app declares no PATH.
const DEFAULT_SEARCH_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
