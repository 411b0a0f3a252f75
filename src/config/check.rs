//! The one validation of an `AppSpec`, whatever way it comes in (PRODUCT.md §10): the CLI runs
//! it on what flags and ecosystem files build, and the daemon runs it again on every spec that
//! enters it — start, restart/reload with new definitions, resurrect, `update`'s state record —
//! since a request or a dump may have been written by anything. Also the limits of every
//! quantity, shared by flags, files, `scale` and the daemon, and the rules for names.

use std::path::Path;

use crate::protocol::model::{AppSpec, CommandSpec, ListenAddr, ProbeKind};

/// Most instances one app may have (`-i`, `instances:`, `scale`): above any real machine's CPU
/// count, low enough that a typo (`-i 10000`) is caught before it forks that many processes.
pub const MAX_INSTANCES: u32 = 1024;

/// Longest duration any timer takes (`kill_timeout`, `listen_timeout`, `restart_delay`...): a
/// day. Past it a timer is a hang, not a setting.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// How the duration limit reads in messages.
pub const MAX_DURATION_TEXT: &str = "24h";

/// Most rotated files kept per log file (`log_retain`): each rotation renames every one.
pub const MAX_LOG_RETAIN: u32 = 1000;

/// Longest app name or namespace, in bytes: names become file names (`<name>-error-3.log.12.gz`
/// must stay under the 255-byte limit of a file name).
pub const MAX_NAME_BYTES: usize = 64;

/// What a label names, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    AppName,
    Namespace,
}

impl Label {
    fn what(self) -> &'static str {
        match self {
            Label::AppName => "app name",
            Label::Namespace => "namespace",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Label::AppName => "--name",
            Label::Namespace => "--namespace",
        }
    }
}

/// The rule every name follows, said in messages.
pub const NAME_RULE: &str = "a name is printable text: no control, bidirectional, zero-width or \
                             other invisible characters, no whitespace but single inner spaces";

/// Names become file names, CLI targets and rows of `list`: short, printable, unambiguous.
pub fn check_label(label: Label, name: &str) -> Result<(), String> {
    let what = label.what();
    let shown = name.escape_debug();
    if name.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} \"{shown}\" is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if name == "all" || name.bytes().all(|b| b.is_ascii_digit()) {
        let flag = label.flag();
        return Err(format!(
            "{what} \"{shown}\" is reserved (`all` and numbers are targets); choose another with {flag}"
        ));
    }
    if name.starts_with('.') || name.contains(['/', '\\']) {
        return Err(format!(
            "{what} \"{shown}\" may not contain path separators (`/`, `\\`) or start with a dot (names are file names)"
        ));
    }
    if let Some(c) = name.chars().find(|c| invisible(*c)) {
        let kind = kind_of(c);
        return Err(format!(
            "{what} \"{shown}\" contains U+{:04X} ({kind}): {NAME_RULE}",
            u32::from(c)
        ));
    }
    if name.starts_with(' ') || name.ends_with(' ') || name.contains("  ") {
        return Err(format!(
            "{what} \"{shown}\" has leading, trailing or doubled spaces, which `list` cannot show: {NAME_RULE}"
        ));
    }
    Ok(())
}

/// A character that `list` would not show as itself: controls, format characters (bidi
/// overrides, zero-width), whitespace other than the plain space, and blank fillers.
fn invisible(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ') || format_char(c) || filler(c)
}

fn kind_of(c: char) -> &'static str {
    match c {
        _ if c.is_control() => "a control character",
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{061C}' => "a bidirectional control",
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => "a zero-width character",
        _ if c.is_whitespace() => "whitespace other than a space",
        _ => "an invisible character",
    }
}

/// Unicode's format characters (general category Cf).
fn format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Characters drawn as nothing that are not format characters: the combining grapheme joiner,
/// variation selectors, Hangul fillers, the blank Braille pattern.
fn filler(c: char) -> bool {
    matches!(c,
        '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{2800}' | '\u{3164}' | '\u{FFA0}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// An environment variable's name as `instance_var`/`increment_var` take it.
pub fn check_var_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a variable name (letters, digits and `_`)",
            name.escape_debug()
        ))
    }
}

/// A duration within [`MAX_DURATION_MS`].
pub fn check_duration(ms: u64) -> Result<u64, String> {
    if ms > MAX_DURATION_MS {
        return Err(format!(
            "{} is too long a duration (at most {MAX_DURATION_TEXT}, {MAX_DURATION_MS} ms)",
            show_ms(ms)
        ));
    }
    Ok(ms)
}

/// `90000000 ms` as people read it (`25h`), for messages.
fn show_ms(ms: u64) -> String {
    if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else {
        format!("{ms} ms")
    }
}

/// An instance count within 1..=[`MAX_INSTANCES`].
pub fn check_instances(n: u64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n @ 1..=MAX_INSTANCES) => Ok(n),
        _ if n == 0 => Err("0 instances: an app has at least 1".into()),
        _ => Err(format!(
            "{n} instances is too many (at most {MAX_INSTANCES})"
        )),
    }
}

/// Text that goes to the OS as a C string (a path, an argument, a variable): no NUL.
fn no_nul(key: &str, text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err(format!(
            "`{key}` contains a NUL character (\\0), which no path, argument or variable can hold"
        ));
    }
    Ok(())
}

fn path_no_nul(key: &str, path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(format!(
            "`{key}` contains a NUL character (\\0), which no path can hold"
        ));
    }
    Ok(())
}

/// Every rule an app must meet to enter the daemon; the first problem, as
/// `app "<name>": <key>: <why>`.
pub fn check_spec(spec: &AppSpec) -> Result<(), String> {
    check_label(Label::AppName, &spec.name)?;
    let app = format!("app \"{}\"", spec.name);
    check_fields(spec).map_err(|e| format!("{app}: {e}"))
}

fn check_fields(spec: &AppSpec) -> Result<(), String> {
    if let Some(namespace) = &spec.namespace {
        check_label(Label::Namespace, namespace)?;
    }
    check_instances(u64::from(spec.instances)).map_err(|e| format!("`instances`: {e}"))?;
    path_no_nul("cwd", &spec.cwd)?;
    if !spec.cwd.is_absolute() {
        return Err(format!("`cwd` {} is not absolute", spec.cwd.display()));
    }
    match &spec.command {
        CommandSpec::Exec { program, args } => {
            if program.trim().is_empty() {
                return Err("`script` is empty".into());
            }
            no_nul("script", program)?;
            for arg in args {
                no_nul("args", arg)?;
            }
        }
        CommandSpec::Shell { script } => {
            if script.trim().is_empty() {
                return Err("`script` is empty".into());
            }
            no_nul("script", script)?;
        }
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!(
                "`env`: \"{}\" is not a variable name (not empty, no `=` or NUL)",
                key.escape_debug()
            ));
        }
        no_nul(&format!("env.{key}"), value)?;
    }
    check_var_name(&spec.instance_var).map_err(|e| format!("`instance_var`: {e}"))?;
    if let Some(var) = &spec.increment_var {
        check_var_name(var).map_err(|e| format!("`increment_var`: {e}"))?;
    }
    let durations = [
        ("min_uptime", Some(spec.min_uptime_ms)),
        ("restart_delay", Some(spec.restart_delay_ms)),
        (
            "exp_backoff_restart_delay",
            spec.exp_backoff_restart_delay_ms,
        ),
        ("kill_timeout", Some(spec.kill_timeout_ms)),
        ("listen_timeout", Some(spec.listen_timeout_ms)),
        ("watch_delay", spec.watch.as_ref().map(|w| w.delay_ms)),
        (
            "readiness.interval",
            spec.readiness.as_ref().map(|r| r.interval_ms),
        ),
        (
            "readiness.timeout",
            spec.readiness.as_ref().map(|r| r.timeout_ms),
        ),
    ];
    for (key, ms) in durations {
        if let Some(ms) = ms {
            check_duration(ms).map_err(|e| format!("`{key}`: {e}"))?;
        }
    }
    if let Some(readiness) = &spec.readiness {
        if readiness.interval_ms == 0 || readiness.timeout_ms == 0 {
            return Err("`readiness`: `interval` and `timeout` must be more than 0".into());
        }
        match &readiness.probe {
            ProbeKind::Http { path } => {
                if !path.starts_with('/') || path.contains(|c: char| c.is_control() || c == ' ') {
                    return Err(format!(
                        "`readiness.http`: \"{}\" is not a path like /health",
                        path.escape_debug()
                    ));
                }
            }
            ProbeKind::Exec { command } => no_nul("readiness.exec", command)?,
            ProbeKind::Tcp => {}
        }
    }
    let signal = crate::config::units::parse_signal(&spec.kill_signal)
        .map_err(|e| format!("`kill_signal`: {e}"))?;
    if signal != spec.kill_signal {
        return Err(format!(
            "`kill_signal`: write {signal}, not {}",
            spec.kill_signal
        ));
    }
    if let Some(pattern) = &spec.cron_restart {
        crate::config::cron::CronPattern::parse(pattern)
            .map_err(|e| format!("`cron_restart`: {e}"))?;
    }
    for dep in &spec.depends_on {
        check_label(Label::AppName, dep).map_err(|e| format!("`depends_on`: {e}"))?;
    }
    if spec.max_memory_restart == Some(0) {
        return Err("`max_memory_restart`: must be more than 0".into());
    }
    if spec.logs.max_size == Some(0) {
        return Err("`log_max_size`: must be more than 0".into());
    }
    if let Some(retain) = spec.logs.retain {
        check_retain(retain).map_err(|e| format!("`log_retain`: {e}"))?;
    }
    if let Some(format) = &spec.logs.date_format {
        no_nul("log_date_format", format)?;
    }
    for (key, path) in [
        ("out_file", &spec.logs.out_file),
        ("error_file", &spec.logs.error_file),
        ("log_file", &spec.logs.log_file),
    ] {
        if let Some(path) = path {
            path_no_nul(key, path)?;
        }
    }
    for addr in &spec.cluster.listen {
        if let ListenAddr::Unix(path) = addr {
            path_no_nul("listen", path)?;
        }
    }
    if let Some(watch) = &spec.watch {
        for path in &watch.paths {
            path_no_nul("watch", path)?;
        }
    }
    Ok(())
}

/// A `log_retain` within [`MAX_LOG_RETAIN`].
pub fn check_retain(retain: u32) -> Result<u32, String> {
    if retain > MAX_LOG_RETAIN {
        return Err(format!(
            "{retain} rotated files is too many (at most {MAX_LOG_RETAIN})"
        ));
    }
    Ok(retain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::{ReadinessSpec, WatchSpec};

    fn name(text: &str) -> Result<(), String> {
        check_label(Label::AppName, text)
    }

    #[test]
    fn names_that_spoof_the_list_are_refused() {
        for good in ["web-1.api", "my app", "café", "日本語", "a_b"] {
            assert_eq!(name(good), Ok(()), "{good:?}");
        }
        let err = name("abc\u{202e}gnp.exe").expect_err("bidi override");
        assert!(
            err.contains("U+202E (a bidirectional control)") && err.contains(NAME_RULE),
            "{err}"
        );
        // The name in the message is escaped, so it does not reverse the message itself.
        assert!(err.contains("abc\\u{202e}gnp.exe"), "{err}");
        for bad in [
            "",
            "all",
            "42",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "a\nb",
            "a\u{200b}b",
            "\u{2060}",
            "\u{feff}web",
            "   ",
            " web",
            "web ",
            "a  b",
            "a\u{00a0}b",
            "a\u{3000}b",
            "\u{3164}",
            "a\u{2028}b",
            &"x".repeat(65),
        ] {
            assert!(name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(name(&"é".repeat(32)).is_ok());
        assert!(name(&"é".repeat(33)).is_err(), "66 bytes");
        assert!(check_label(Label::Namespace, "a\u{202e}b")
            .expect_err("namespace")
            .starts_with("namespace"));
    }

    fn spec() -> AppSpec {
        AppSpec {
            name: "web".into(),
            command: CommandSpec::Exec {
                program: "sleep".into(),
                args: vec!["1".into()],
            },
            ..AppSpec::default()
        }
    }

    #[test]
    fn a_default_spec_passes() {
        assert_eq!(check_spec(&spec()), Ok(()));
    }

    #[test]
    fn every_bound_is_checked() {
        let cases: Vec<(AppSpec, &str)> = vec![
            (
                AppSpec {
                    name: "../../evil".into(),
                    ..spec()
                },
                "may not contain path separators",
            ),
            (
                AppSpec {
                    instances: 4_000_000_000,
                    ..spec()
                },
                "`instances`: 4000000000 instances is too many (at most 1024)",
            ),
            (
                AppSpec {
                    instances: 0,
                    ..spec()
                },
                "`instances`: 0 instances",
            ),
            (
                AppSpec {
                    listen_timeout_ms: u64::MAX,
                    ..spec()
                },
                "`listen_timeout`: 18446744073709551615 ms is too long a duration (at most 24h",
            ),
            (
                AppSpec {
                    kill_timeout_ms: 25 * 3_600_000,
                    ..spec()
                },
                "`kill_timeout`: 25h is too long",
            ),
            (
                AppSpec {
                    cwd: "relative".into(),
                    ..spec()
                },
                "`cwd` relative is not absolute",
            ),
            (
                AppSpec {
                    cwd: "/tmp\0x".into(),
                    ..spec()
                },
                "`cwd` contains a NUL character",
            ),
            (
                AppSpec {
                    command: CommandSpec::Exec {
                        program: "app\0.js".into(),
                        args: Vec::new(),
                    },
                    ..spec()
                },
                "`script` contains a NUL character",
            ),
            (
                AppSpec {
                    instance_var: "A=B".into(),
                    ..spec()
                },
                "`instance_var`",
            ),
            (
                AppSpec {
                    kill_signal: "SIGNOPE".into(),
                    ..spec()
                },
                "`kill_signal`",
            ),
            (
                AppSpec {
                    readiness: Some(ReadinessSpec {
                        probe: ProbeKind::Http {
                            path: "/h\r\nX: y".into(),
                        },
                        interval_ms: 500,
                        timeout_ms: 1000,
                    }),
                    ..spec()
                },
                "`readiness.http`",
            ),
            (
                AppSpec {
                    readiness: Some(ReadinessSpec {
                        probe: ProbeKind::Tcp,
                        interval_ms: 0,
                        timeout_ms: 1000,
                    }),
                    ..spec()
                },
                "must be more than 0",
            ),
            (
                AppSpec {
                    watch: Some(WatchSpec {
                        delay_ms: u64::MAX,
                        ..WatchSpec::default()
                    }),
                    ..spec()
                },
                "`watch_delay`",
            ),
            (
                AppSpec {
                    namespace: Some("ns\u{200d}".into()),
                    ..spec()
                },
                "namespace",
            ),
            (
                AppSpec {
                    depends_on: vec!["a/b".into()],
                    ..spec()
                },
                "`depends_on`",
            ),
        ];
        for (spec, wanted) in cases {
            let err = check_spec(&spec).expect_err(wanted);
            assert!(err.contains(wanted), "{err:?} lacks {wanted:?}");
        }
        let mut logs = spec();
        logs.logs.retain = Some(4_000_000_000);
        assert!(check_spec(&logs)
            .expect_err("retain")
            .contains("at most 1000"));
        let mut env = spec();
        env.env.insert("A=B".into(), "x".into());
        assert!(check_spec(&env).is_err());
        let mut env = spec();
        env.env.insert("A".into(), "x\0y".into());
        assert!(check_spec(&env)
            .expect_err("nul value")
            .contains("`env.A` contains a NUL"));
    }
}
