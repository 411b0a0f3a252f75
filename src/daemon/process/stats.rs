//! CPU and memory of a process, read from /proc when `list` asks (no background sampling, so an
//! idle daemon never wakes up).

use std::time::Instant;

/// A reading of a process's CPU time, to turn two readings into a percentage.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub at: Instant,
    pub ticks: u64,
}

/// The fields of /proc/<pid>/stat after the command name, from `state` on (proc(5)); None when
/// the process is gone. The name is in parentheses and may contain spaces: split after the last ')'.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// (total CPU ticks, resident bytes) of `pid`, or None when it is gone.
pub fn read(pid: i32) -> Option<(u64, u64)> {
    let fields = stat_fields(pid)?;
    // After the name: state(0) ... utime(11) stime(12) ... rss(21), per proc(5).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some((utime + stime, rss_pages * page_size()))
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(4096)
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

/// CPU percent between two samples (100 = one core busy).
pub fn cpu_percent(before: CpuSample, now: CpuSample) -> f64 {
    let wall = now.at.duration_since(before.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    let cpu = now.ticks.saturating_sub(before.ticks) as f64 / ticks_per_second();
    (cpu / wall * 1000.0).round() / 10.0
}
