//! Units shared by CLI flags and ecosystem files: durations (`1500`, `1.5s`, `300ms`, `2m`, `1h`),
//! sizes in pm2's notation (`300M`, `1G`, `512K`, bare bytes), instance counts (`4`, `"max"`, `-1`)
//! and signal names (`SIGTERM`, `TERM`, `15`). Pure functions; errors are one-line messages that
//! callers prefix with the flag or key they came from.

use crate::config::check::{MAX_DURATION_MS, MAX_DURATION_TEXT, MAX_INSTANCES};

/// Parses a duration into milliseconds. A bare number is milliseconds (pm2's convention);
/// units: `ms`, `s`, `m`, `h`; a fraction is allowed (`1.5s`) and rounded to the millisecond.
/// At most [`MAX_DURATION_MS`], the one limit of every duration.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    const UNITS: &str = "use a number of milliseconds, or ms, s, m or h, like 1500, 1.5s or 2m";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("an empty string is not a duration ({UNITS})"));
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` is not a duration: it is negative"));
    }
    let (number, unit) = split_number(s);
    let per_unit: u128 = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ if number.is_empty() => return Err(format!("`{s}` is not a duration ({UNITS})")),
        _ => {
            return Err(format!(
                "`{s}` is not a duration: unknown unit `{unit}` ({UNITS})"
            ))
        }
    };
    let value =
        scaled(number, per_unit).ok_or_else(|| format!("`{s}` is not a duration ({UNITS})"))?;
    match u64::try_from(value) {
        Ok(ms) if ms <= MAX_DURATION_MS => Ok(ms),
        _ => Err(format!(
            "`{s}` is too long a duration (at most {MAX_DURATION_TEXT})"
        )),
    }
}

/// Parses a size in bytes the way pm2's `max_memory_restart` does: bare bytes, or a number with
/// `K`, `M` or `G` (binary multiples, as pm2 computes them). `300MB` is refused with a hint, since
/// pm2 refuses it too and a silent reading as bytes would be a disaster.
pub fn parse_size(text: &str) -> Result<u64, String> {
    const UNITS: &str = "use bytes, or a number with K, M or G, like 300M or 1G";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("an empty string is not a size ({UNITS})"));
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` is not a size: it is negative"));
    }
    let (number, unit) = split_number(s);
    if number.is_empty() {
        return Err(format!("`{s}` is not a size ({UNITS})"));
    }
    let per_unit: u128 = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => {
            let letter = unit.chars().next().map(|c| c.to_ascii_uppercase());
            return Err(match letter {
                Some('B') => format!("`{s}` is not a size: write {number} (bytes need no unit)"),
                Some(c @ ('K' | 'M' | 'G')) => format!("`{s}` is not a size: write {number}{c}"),
                _ => format!("`{s}` is not a size: unknown unit `{unit}` ({UNITS})"),
            });
        }
    };
    let value = scaled(number, per_unit).ok_or_else(|| format!("`{s}` is not a size ({UNITS})"))?;
    u64::try_from(value).map_err(|_| format!("`{s}` is too large a size"))
}

/// An instance count as written: a number from a file or a flag, or a string (`"2"`, `"max"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstancesArg<'a> {
    Number(i64),
    Text(&'a str),
}

/// The number of CPUs this process may use (cgroup quota and affinity aware), at least 1.
pub fn available_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// Resolves an instance count against [`available_cpus`]: `0` and `"max"` = all CPUs, `-1` = all
/// but one (at least 1), as pm2 does; at most [`MAX_INSTANCES`] (`max` on a larger machine
/// is that many).
pub fn resolve_instances(arg: InstancesArg<'_>) -> Result<u32, String> {
    resolve_instances_for(arg, available_cpus())
}

/// [`resolve_instances`] with the CPU count given, for tests and callers that already know it.
pub fn resolve_instances_for(arg: InstancesArg<'_>, cpus: u32) -> Result<u32, String> {
    const HINT: &str =
        "use a positive number, 0 or \"max\" for all CPUs, or -1 for all CPUs but one";
    let cpus = cpus.clamp(1, MAX_INSTANCES);
    let number = match arg {
        InstancesArg::Number(n) => n,
        InstancesArg::Text(text) => {
            let t = text.trim();
            if t.eq_ignore_ascii_case("max") {
                return Ok(cpus);
            }
            t.parse::<i64>()
                .map_err(|_| format!("`{t}` is not an instance count ({HINT})"))?
        }
    };
    match number {
        0 => Ok(cpus),
        // pm2: all CPUs but |n|, and at least one (`-i -100` on 8 CPUs is 1).
        n if n < 0 => Ok(u32::try_from(i64::from(cpus) + n).unwrap_or(0).max(1)),
        n => crate::config::check::check_instances(n.unsigned_abs()),
    }
}

/// Signals a stop signal may name, with their numbers on this platform.
const SIGNALS: &[(&str, libc::c_int)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGSYS", libc::SIGSYS),
];

/// Normalises a signal to its `SIG` name: `SIGTERM`, `TERM`, `term` and `15` all give `SIGTERM`.
pub fn parse_signal(text: &str) -> Result<String, String> {
    let t = text.trim();
    let found = if let Ok(number) = t.parse::<libc::c_int>() {
        SIGNALS.iter().find(|(_, n)| *n == number)
    } else {
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        SIGNALS.iter().find(|(name, _)| &name[3..] == bare)
    };
    found.map(|(name, _)| (*name).to_owned()).ok_or_else(|| {
        format!("`{t}` is not a signal (use a name like SIGTERM, TERM or INT, or a number like 15)")
    })
}

/// The number of a signal name as [`parse_signal`] returns it (`"SIGTERM"` -> 15).
pub fn signal_number(name: &str) -> Option<libc::c_int> {
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
}

/// Splits `12.5ms` into (`12.5`, `ms`): the leading digits and dot, then the rest.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// `number × per_unit`, exactly, rounded half up: `"1.5"` × 1000 = 1500. `None` when `number` is
/// not digits with at most one dot, or the result overflows.
fn scaled(number: &str, per_unit: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits_only(int) || !digits_only(frac) {
        return None;
    }
    // Digits past the 30th cannot change a result that fits in u64; dropping them keeps 10^n finite.
    let frac = &frac[..frac.len().min(30)];
    let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let whole = int_value.checked_mul(per_unit)?;
    if frac.is_empty() {
        return Some(whole);
    }
    let denominator = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    let numerator = frac.parse::<u128>().ok()?.checked_mul(per_unit)?;
    let part = (numerator + denominator / 2) / denominator;
    whole.checked_add(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1500"), Ok(1500));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1500));
        assert_eq!(parse_duration_ms("300ms"), Ok(300));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms(" 0 "), Ok(0));
        assert_eq!(parse_duration_ms(".5s"), Ok(500));
        assert_eq!(parse_duration_ms("0.0005s"), Ok(1));
    }

    #[test]
    fn bad_durations() {
        assert_eq!(
            parse_duration_ms("5x"),
            Err(
                "`5x` is not a duration: unknown unit `x` (use a number of milliseconds, \
                 or ms, s, m or h, like 1500, 1.5s or 2m)"
                    .into()
            )
        );
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("s").is_err());
        assert!(parse_duration_ms("1.2.3s").is_err());
        assert!(parse_duration_ms("1 s").is_err());
        assert_eq!(
            parse_duration_ms("-5s"),
            Err("`-5s` is not a duration: it is negative".into())
        );
        assert_eq!(
            parse_duration_ms("99999999999999999999h"),
            Err("`99999999999999999999h` is too long a duration (at most 24h)".into())
        );
        assert_eq!(parse_duration_ms("24h"), Ok(MAX_DURATION_MS));
        assert!(parse_duration_ms("18446744073709551615").is_err());
        assert!(parse_duration_ms("86400001").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("300M"), Ok(300 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(
            parse_size("300MB"),
            Err("`300MB` is not a size: write 300M".into())
        );
        assert_eq!(
            parse_size("1gb"),
            Err("`1gb` is not a size: write 1G".into())
        );
        assert_eq!(
            parse_size("2KiB"),
            Err("`2KiB` is not a size: write 2K".into())
        );
        assert_eq!(
            parse_size("300B"),
            Err("`300B` is not a size: write 300 (bytes need no unit)".into())
        );
        assert_eq!(
            parse_size("3T"),
            Err(
                "`3T` is not a size: unknown unit `T` (use bytes, or a number with K, M or G, \
                 like 300M or 1G)"
                    .into()
            )
        );
        assert!(parse_size("M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn instances() {
        use InstancesArg::{Number, Text};
        assert_eq!(resolve_instances_for(Number(3), 8), Ok(3));
        assert_eq!(resolve_instances_for(Number(0), 8), Ok(8));
        assert_eq!(resolve_instances_for(Text("max"), 8), Ok(8));
        assert_eq!(resolve_instances_for(Text("MAX"), 8), Ok(8));
        assert_eq!(resolve_instances_for(Number(-1), 8), Ok(7));
        assert_eq!(resolve_instances_for(Number(-1), 1), Ok(1));
        assert_eq!(resolve_instances_for(Text("2"), 8), Ok(2));
        assert_eq!(resolve_instances_for(Text("-1"), 4), Ok(3));
        assert_eq!(resolve_instances_for(Number(-3), 8), Ok(5));
        assert_eq!(resolve_instances_for(Text("-100"), 8), Ok(1));
        assert_eq!(resolve_instances_for(Number(i64::MIN), 8), Ok(1));
        assert!(resolve_instances_for(Text("many"), 8).is_err());
        assert!(resolve_instances_for(Number(i64::from(MAX_INSTANCES) + 1), 8).is_err());
        assert_eq!(resolve_instances_for(Text("max"), 5000), Ok(MAX_INSTANCES));
        assert!(resolve_instances(Text("max")).is_ok_and(|n| n >= 1));
    }

    #[test]
    fn signals() {
        for spelling in ["SIGTERM", "TERM", "term", "sigterm", " 15 "] {
            assert_eq!(
                parse_signal(spelling),
                Ok("SIGTERM".to_owned()),
                "{spelling}"
            );
        }
        assert_eq!(parse_signal("INT"), Ok("SIGINT".to_owned()));
        assert_eq!(parse_signal("9"), Ok("SIGKILL".to_owned()));
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("").is_err());
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("TERM"), None);
    }
}
