//! The restart policy (PRODUCT.md §3), as a pure function of the app's spec, the instance's
//! counters and how it ended: what to do next, and why.

use std::time::Duration;

use crate::daemon::process::reaper::ExitKind;
use crate::protocol::model::AppSpec;

/// Cap of exponential backoff, and the uptime after which it starts over (pm2's values).
pub const BACKOFF_CAP_MS: u64 = 15_000;
pub const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// Per-instance memory of past crashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Restarts in a row whose run was shorter than `min_uptime`.
    pub unstable: u32,
    /// The last exponential-backoff delay (0: none yet).
    pub backoff_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restart { delay_ms: u64 },
    Stop { reason: String },
    Errored { reason: String },
}

pub fn decide(
    spec: &AppSpec,
    counters: &mut Counters,
    exit: ExitKind,
    uptime: Duration,
) -> Decision {
    if let ExitKind::Code(code) = exit {
        if spec.stop_exit_codes.contains(&code) {
            return Decision::Stop {
                reason: format!("{exit} (listed in stop_exit_codes)"),
            };
        }
    }
    if !spec.autorestart {
        return Decision::Stop {
            reason: format!("{exit} (autorestart is off)"),
        };
    }
    let unstable = uptime < Duration::from_millis(spec.min_uptime_ms);
    // 126/127 are the shell's "cannot execute"/"command not found": retrying cannot help.
    if unstable && matches!(exit, ExitKind::Code(126 | 127)) {
        let what = if exit == ExitKind::Code(127) {
            "command not found"
        } else {
            "command cannot be executed"
        };
        return Decision::Errored {
            reason: format!("{exit}: {what}"),
        };
    }
    if unstable {
        counters.unstable += 1;
        if counters.unstable > spec.max_restarts {
            return Decision::Errored {
                reason: format!(
                    "too many unstable restarts ({} in a row, each up less than min_uptime {} ms); last {exit}",
                    counters.unstable - 1,
                    spec.min_uptime_ms
                ),
            };
        }
    } else {
        counters.unstable = 0;
    }
    if uptime >= BACKOFF_RESET {
        counters.backoff_ms = 0;
    }
    let delay_ms = match spec.exp_backoff_restart_delay_ms {
        Some(first) if first > 0 => {
            counters.backoff_ms = if counters.backoff_ms == 0 {
                first
            } else {
                ((counters.backoff_ms as f64 * 1.5) as u64).min(BACKOFF_CAP_MS)
            };
            counters.backoff_ms
        }
        _ => spec.restart_delay_ms,
    };
    Decision::Restart { delay_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            max_restarts: 3,
            ..AppSpec::default()
        }
    }

    const SHORT: Duration = Duration::from_millis(10);
    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn unstable_crashes_end_errored_after_max_restarts() {
        let spec = spec();
        let mut c = Counters::default();
        for _ in 0..3 {
            assert_eq!(
                decide(&spec, &mut c, ExitKind::Code(1), SHORT),
                Decision::Restart { delay_ms: 0 }
            );
        }
        match decide(&spec, &mut c, ExitKind::Code(1), SHORT) {
            Decision::Errored { reason } => {
                assert!(reason.contains("too many unstable restarts (3"), "{reason}")
            }
            other => panic!("expected errored, got {other:?}"),
        }
    }

    #[test]
    fn a_stable_run_resets_the_count() {
        let spec = spec();
        let mut c = Counters::default();
        decide(&spec, &mut c, ExitKind::Code(1), SHORT);
        decide(&spec, &mut c, ExitKind::Code(1), SHORT);
        decide(&spec, &mut c, ExitKind::Signal(9), LONG);
        assert_eq!(c.unstable, 0);
    }

    #[test]
    fn stop_codes_and_no_autorestart_stop() {
        let mut spec = spec();
        spec.stop_exit_codes = vec![0];
        let mut c = Counters::default();
        assert!(matches!(
            decide(&spec, &mut c, ExitKind::Code(0), LONG),
            Decision::Stop { .. }
        ));
        spec.autorestart = false;
        assert!(matches!(
            decide(&spec, &mut c, ExitKind::Code(3), LONG),
            Decision::Stop { .. }
        ));
    }

    #[test]
    fn command_not_found_is_errored_at_once() {
        let mut c = Counters::default();
        let d = decide(&spec(), &mut c, ExitKind::Code(127), SHORT);
        assert!(
            matches!(d, Decision::Errored { ref reason } if reason.contains("command not found")),
            "{d:?}"
        );
    }

    #[test]
    fn exponential_backoff_grows_caps_and_resets() {
        let mut spec = spec();
        spec.max_restarts = 100;
        spec.exp_backoff_restart_delay_ms = Some(100);
        let mut c = Counters::default();
        let delays: Vec<u64> = (0..3)
            .map(|_| match decide(&spec, &mut c, ExitKind::Code(1), SHORT) {
                Decision::Restart { delay_ms } => delay_ms,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, vec![100, 150, 225]);
        for _ in 0..30 {
            decide(&spec, &mut c, ExitKind::Code(1), SHORT);
        }
        assert_eq!(c.backoff_ms, BACKOFF_CAP_MS);
        assert_eq!(
            decide(&spec, &mut c, ExitKind::Code(1), BACKOFF_RESET),
            Decision::Restart { delay_ms: 100 }
        );
    }

    #[test]
    fn restart_delay_applies() {
        let mut spec = spec();
        spec.restart_delay_ms = 250;
        let mut c = Counters::default();
        assert_eq!(
            decide(&spec, &mut c, ExitKind::Code(1), LONG),
            Decision::Restart { delay_ms: 250 }
        );
    }
}
