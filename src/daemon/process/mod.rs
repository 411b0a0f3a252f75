//! Processes: spawning an instance (`spawn` over `posix_spawn`, with the `exec` trampoline),
//! the one place that reaps (`reaper`), signalling process groups (`kill`), reading /proc
//! figures (`stats`) and a draining instance's connections (`conns`).

pub mod conns;
pub mod exec;
pub mod fds;
pub mod kill;
pub mod posix_spawn;
pub mod reaper;
pub mod spawn;
pub mod stats;
