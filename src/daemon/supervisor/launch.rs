//! Starting instances: prepare each one (cluster fds, NOTIFY_SOCKET, Node's channel), fork/exec,
//! then record the run (pid, output capture, readiness checks). A start waits for the program's
//! exec, which on a machine busy with earlier instances booting is most of its time, so several
//! instances started together (start -i N, scale, resurrect) fork/exec from threads at once
//! while the supervisor waits for all of them.
//!
//! A start that fails for a shortage that passes (out of file descriptors, processes or
//! memory: EMFILE, ENFILE, EAGAIN, ENOMEM) is tried again with a backoff, the instance
//! `waiting-restart` meanwhile with the reason, instead of `errored` for good (issue #17.8).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::actor::Supervisor;
use super::journal::What;
use super::node_channel;
use super::readiness::{open_notify, ready_mode, spawn_probe, ReadyMode};
use super::timers::{Timer, TimerKind};
use crate::daemon::balancer::Prepared;
use crate::daemon::logs::capture::{spawn_capture, CaptureSpec};
use crate::daemon::process::spawn::{runs_node, spawn, InstanceContext, Spawned};
use crate::protocol::event::{Cause, EventKind};
use crate::protocol::model::{AppSpec, InstanceState};
use crate::protocol::response::Stream;

/// Threads forking at once for a batch of instances (each mostly waits for its exec).
const SPAWN_THREADS: usize = 64;
/// Smaller batches fork one after the other: threads would not shorten them noticeably, and
/// glibc keeps the stacks of ended threads cached, which an idle daemon would carry.
const THREADS_FROM: usize = 8;
/// Enough for posix_spawn (glibc gives the child a stack of its own; the default is 2 MiB).
const SPAWN_STACK: usize = 128 * 1024;
/// The first retry after a start failed for a passing shortage, doubled each time up to the cap.
const RETRY_FIRST_MS: u64 = 100;
const RETRY_CAP_MS: u64 = 5_000;

/// Whether a start failed for want of something the system gives back by itself.
fn passing_shortage(reason: &str) -> bool {
    use nix::errno::Errno;
    // io::Error and nix both print the system's own words for the errno.
    [Errno::EMFILE, Errno::ENFILE, Errno::EAGAIN, Errno::ENOMEM]
        .iter()
        .any(|e| reason.contains(e.desc()))
}

fn retry_delay_ms(retries: u32) -> u64 {
    RETRY_FIRST_MS
        .saturating_mul(1 << retries.min(16))
        .min(RETRY_CAP_MS)
}

/// One instance, prepared for its fork/exec.
struct Launch {
    id: u32,
    prepared: Result<Prepared, String>,
    probe_port: Option<u16>,
    mode: ReadyMode,
}

/// What one fork/exec needs, borrowed from the supervisor's state.
struct Exec<'a> {
    spec: &'a AppSpec,
    ctx: InstanceContext<'a>,
    prepared: &'a Result<Prepared, String>,
}

impl Supervisor {
    pub(super) fn spawn_instance(&mut self, id: u32) {
        self.spawn_instances(&[id]);
    }

    pub(super) fn spawn_instances(&mut self, ids: &[u32]) {
        let launches: Vec<Launch> = ids.iter().filter_map(|id| self.prepare(*id)).collect();
        let results = self.exec_all(&launches);
        for (launch, result) in launches.into_iter().zip(results) {
            self.record(launch, result);
        }
    }

    fn prepare(&mut self, id: u32) -> Option<Launch> {
        let inst = self.instances.get_mut(&id)?;
        let app = self.apps.get_mut(&inst.app)?;
        inst.state = InstanceState::Launching;
        inst.stopped_by_command = false;
        inst.end_run();
        let mode = ready_mode(app);
        let mut prepared = match app.balancer.as_mut().map(|b| b.prepare(id, inst.index)) {
            None => Ok(Prepared::default()),
            Some(result) => result,
        };
        if let (Ok(prepared), true) = (&mut prepared, app.spec.wait_ready) {
            match open_notify(
                self.home.root().join("notify"),
                id,
                self.cluster.events.clone(),
            ) {
                Ok((path, watched)) => {
                    prepared
                        .env
                        .push(("NOTIFY_SOCKET".into(), path.display().to_string()));
                    inst.notify_socket = Some(path);
                    inst.notify_fd = Some(watched.kept);
                    inst.run_tasks.push(watched.task);
                }
                Err(e) => crate::dlog!("app {}: {e}", inst.app),
            }
        }
        if let (Ok(prepared), true) = (&mut prepared, runs_node(&app.spec.command)) {
            match node_channel::open(id, self.cluster.events.clone()) {
                Ok((instance_end, watched)) => {
                    prepared
                        .env
                        .extend(node_channel::channel_env(3 + prepared.fds.len()));
                    prepared.fds.push(instance_end);
                    inst.node_channel = Some(watched.kept);
                    inst.run_tasks.push(watched.task);
                }
                Err(e) => crate::dlog!("app {}: {e}", inst.app),
            }
        }
        let probe_port = prepared
            .as_ref()
            .ok()
            .and_then(|p| {
                p.env
                    .iter()
                    .find(|(k, _)| k == "PORT")
                    .map(|(_, v)| v.clone())
            })
            .or_else(|| app.spec.env.get("PORT").cloned())
            .and_then(|p| p.parse::<u16>().ok());
        Some(Launch {
            id,
            prepared,
            probe_port,
            mode,
        })
    }

    /// Fork/exec every launch: inline for one, from up to SPAWN_THREADS threads for more.
    fn exec_all(&self, launches: &[Launch]) -> Vec<Result<Spawned, String>> {
        let execs: Vec<Option<Exec<'_>>> = launches
            .iter()
            .map(|launch| {
                let inst = self.instances.get(&launch.id)?;
                let app = self.apps.get(&inst.app)?;
                Some(Exec {
                    spec: &app.spec,
                    ctx: InstanceContext {
                        id: launch.id,
                        index: inst.index,
                        base_env: &app.base_env,
                    },
                    prepared: &launch.prepared,
                })
            })
            .collect();
        let trampoline = self.cluster.trampoline.as_path();
        let run = |exec: &Option<Exec<'_>>| -> Result<Spawned, String> {
            let exec = exec.as_ref().ok_or("the instance is gone")?;
            let prepared = exec.prepared.as_ref().map_err(Clone::clone)?;
            spawn(exec.spec, &exec.ctx, prepared, trampoline)
        };
        if execs.len() < THREADS_FROM {
            return execs.iter().map(run).collect();
        }
        let per_thread = execs.len().div_ceil(SPAWN_THREADS);
        std::thread::scope(|scope| {
            let workers: Vec<_> = execs
                .chunks(per_thread)
                .map(|chunk| {
                    let worker = std::thread::Builder::new()
                        .name("spawn".into())
                        .stack_size(SPAWN_STACK)
                        .spawn_scoped(scope, move || chunk.iter().map(run).collect::<Vec<_>>());
                    (chunk, worker)
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|(chunk, worker)| match worker {
                    Ok(worker) => worker.join().unwrap_or_else(|_| {
                        (0..chunk.len())
                            .map(|_| Err("the thread starting it failed".to_owned()))
                            .collect()
                    }),
                    // No thread to be had: this chunk forks from here.
                    Err(_) => chunk.iter().map(run).collect(),
                })
                .collect()
        })
    }

    fn record(&mut self, launch: Launch, spawned: Result<Spawned, String>) {
        let Launch {
            id,
            probe_port,
            mode,
            ..
        } = launch;
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let Some(app) = self.apps.get_mut(&inst.app) else {
            return;
        };
        if let (Some(balancer), Ok(spawned)) = (app.balancer.as_mut(), &spawned) {
            balancer.started(id, spawned.pid as u32);
        }
        if let (Some(balancer), Err(_)) = (app.balancer.as_mut(), &spawned) {
            balancer.detach(id);
            balancer.release(id);
            balancer.retire(id, None);
        }
        match spawned {
            Ok(spawned) => {
                inst.spawn_retries = 0;
                inst.pid = Some(spawned.pid);
                inst.pgid = Some(spawned.pid);
                inst.started_at = Some(Instant::now());
                inst.started_ms = super::state::epoch_ms_now();
                // Apps with an explicit readiness signal, and a reload's new instances, are
                // `launching` until ready; the others are online at once, as in pm2.
                inst.state =
                    if inst.candidate || matches!(mode, ReadyMode::Notify | ReadyMode::Probe) {
                        InstanceState::Launching
                    } else {
                        InstanceState::Online
                    };
                if let Some(readiness) = app.spec.readiness.clone() {
                    let env: Vec<(String, String)> = app
                        .spec
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let probe = spawn_probe(
                        readiness,
                        id,
                        inst.generation,
                        probe_port,
                        env,
                        self.cluster.events.clone(),
                    );
                    inst.run_tasks.push(probe);
                }
                inst.reason = None;
                inst.cpu_sample = None;
                self.by_pid.insert(spawned.pid, id);
                let name: Arc<str> = Arc::from(inst.app.as_str());
                for (fd, stream) in [(spawned.stdout, Stream::Out), (spawned.stderr, Stream::Err)] {
                    let spec = CaptureSpec {
                        id,
                        public_id: inst.public_id,
                        index: inst.index,
                        app: name.clone(),
                        stream,
                    };
                    spawn_capture(fd, spec, app.log_tx.clone());
                }
                self.emit(id, EventKind::Start, What::default());
                self.arm_listen_check(id);
                self.arm_memory_check(id);
            }
            // A reload's new instance fails the reload instead: the old one keeps serving.
            Err(reason) if passing_shortage(&reason) && !inst.candidate => {
                let delay = retry_delay_ms(inst.spawn_retries);
                inst.spawn_retries = inst.spawn_retries.saturating_add(1);
                inst.end_run();
                inst.state = InstanceState::WaitingRestart;
                inst.reason = Some(format!(
                    "cannot start: {reason}; trying again in {delay} ms (attempt {})",
                    inst.spawn_retries
                ));
                inst.pid = None;
                inst.pgid = None;
                inst.generation += 1;
                let timer = Timer {
                    id,
                    generation: inst.generation,
                    kind: TimerKind::RestartDue,
                };
                if inst.spawn_retries == 1 {
                    crate::dlog!(
                        "app {}: instance {} (id {id}) cannot start ({reason}): trying again with a backoff",
                        inst.app,
                        inst.index
                    );
                }
                self.timers
                    .arm(Instant::now() + Duration::from_millis(delay), timer);
            }
            Err(reason) => {
                inst.spawn_retries = 0;
                inst.end_run();
                inst.state = InstanceState::Errored;
                inst.reason = Some(reason.clone());
                inst.pid = None;
                inst.pgid = None;
                let what = What::cause(Cause::Spawn).detail(format!("cannot start: {reason}"));
                self.emit(id, EventKind::Errored, what);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortages_that_pass_are_told_from_lasting_failures() {
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(passing_shortage(&format!("cannot start node: {emfile}")));
        assert!(passing_shortage(&format!(
            "cannot create an instance channel: {}",
            nix::errno::Errno::EAGAIN
        )));
        assert!(!passing_shortage("no such file or directory: nodee"));
        assert_eq!(
            (0..8).map(retry_delay_ms).collect::<Vec<_>>(),
            [100, 200, 400, 800, 1600, 3200, 5000, 5000]
        );
    }
}
