//! Processes: spawning an instance (`spawn`, with the `exec` trampoline), the one place that reaps (`reaper`), signalling
//! process groups (`kill`) and reading /proc figures (`stats`).

pub mod conns;
pub mod exec;
pub mod fds;
pub mod kill;
pub mod reaper;
pub mod spawn;
pub mod stats;
