//! The keys an app may have in an ecosystem file: pm2's names and aliases (pm2's
//! `lib/API/schema.json`), rcluster's own, and pm2's keys that have no effect here (accepted
//! with a note, so that a pm2 user's file runs unchanged).

/// An app key, aliases folded into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Name,
    Script,
    Args,
    Cwd,
    Instances,
    ExecMode,
    Env,
    Interpreter,
    InterpreterArgs,
    MaxMemoryRestart,
    Autorestart,
    Autostart,
    MaxRestarts,
    MinUptime,
    RestartDelay,
    ExpBackoffRestartDelay,
    KillTimeout,
    KillSignal,
    WaitReady,
    ListenTimeout,
    InstanceVar,
    IncrementVar,
    OutFile,
    ErrorFile,
    LogFile,
    MergeLogs,
    LogDateFormat,
    Time,
    LogType,
    DisableLogs,
    CronRestart,
    StopExitCodes,
    Port,
    AppendEnvToName,
    Listen,
    Balance,
    PrivatePorts,
    Readiness,
    DependsOn,
    RestartAfterErrored,
    LogMaxSize,
    LogRetain,
    LogCompress,
    LogRotateDaily,
    Watch,
    IgnoreWatch,
    WatchOptions,
    WatchDelay,
    Namespace,
    /// pm2's `filter_env`: true (none of the shell's variables), a name or a list of names.
    FilterEnv,
    /// pm2's `source_map_support` and `disable_source_map_support` (Node apps).
    SourceMapSupport,
    DisableSourceMapSupport,
    /// pm2's `uid`/`user`/`gid`: refused rather than ignored, since ignoring it would run the
    /// app as the wrong user.
    User,
    Group,
    /// A pm2 key with no effect in rcluster; the canonical name picks the note.
    NoEffect(&'static str),
}

/// Every accepted spelling, canonical name first within each key.
pub const APP_KEYS: &[(&str, Key)] = &[
    ("name", Key::Name),
    ("script", Key::Script),
    ("exec", Key::Script),
    // pm2's `verifyConfs` takes `cmd` and `command` for `script`.
    ("cmd", Key::Script),
    ("command", Key::Script),
    ("args", Key::Args),
    ("cwd", Key::Cwd),
    ("instances", Key::Instances),
    ("exec_mode", Key::ExecMode),
    ("env", Key::Env),
    ("interpreter", Key::Interpreter),
    ("exec_interpreter", Key::Interpreter),
    ("interpreter_args", Key::InterpreterArgs),
    ("node_args", Key::InterpreterArgs),
    ("interpreterArgs", Key::InterpreterArgs),
    ("max_memory_restart", Key::MaxMemoryRestart),
    ("autorestart", Key::Autorestart),
    ("autostart", Key::Autostart),
    ("max_restarts", Key::MaxRestarts),
    ("min_uptime", Key::MinUptime),
    ("restart_delay", Key::RestartDelay),
    ("exp_backoff_restart_delay", Key::ExpBackoffRestartDelay),
    ("kill_timeout", Key::KillTimeout),
    ("kill_signal", Key::KillSignal),
    ("wait_ready", Key::WaitReady),
    ("listen_timeout", Key::ListenTimeout),
    ("instance_var", Key::InstanceVar),
    ("increment_var", Key::IncrementVar),
    ("out_file", Key::OutFile),
    ("output", Key::OutFile),
    ("out", Key::OutFile),
    ("out_log", Key::OutFile),
    ("error_file", Key::ErrorFile),
    ("error", Key::ErrorFile),
    ("err", Key::ErrorFile),
    ("err_file", Key::ErrorFile),
    ("err_log", Key::ErrorFile),
    ("log_file", Key::LogFile),
    ("log", Key::LogFile),
    ("merge_logs", Key::MergeLogs),
    ("combine_logs", Key::MergeLogs),
    ("log_date_format", Key::LogDateFormat),
    ("time", Key::Time),
    ("log_type", Key::LogType),
    ("disable_logs", Key::DisableLogs),
    ("cron_restart", Key::CronRestart),
    ("cron", Key::CronRestart),
    ("stop_exit_codes", Key::StopExitCodes),
    ("port", Key::Port),
    ("append_env_to_name", Key::AppendEnvToName),
    ("listen", Key::Listen),
    ("private_ports", Key::PrivatePorts),
    ("balance", Key::Balance),
    ("readiness", Key::Readiness),
    ("depends_on", Key::DependsOn),
    ("restart_after_errored", Key::RestartAfterErrored),
    ("log_max_size", Key::LogMaxSize),
    ("log_retain", Key::LogRetain),
    ("log_compress", Key::LogCompress),
    ("log_rotate_daily", Key::LogRotateDaily),
    ("watch", Key::Watch),
    ("ignore_watch", Key::IgnoreWatch),
    ("watch_options", Key::WatchOptions),
    ("watch_delay", Key::WatchDelay),
    ("uid", Key::User),
    ("user", Key::User),
    ("gid", Key::Group),
    (
        "shutdown_with_message",
        Key::NoEffect("shutdown_with_message"),
    ),
    ("treekill", Key::NoEffect("treekill")),
    ("kill_retry_time", Key::NoEffect("kill_retry_time")),
    ("pid_file", Key::NoEffect("pid_file")),
    ("pid", Key::NoEffect("pid_file")),
    ("filter_env", Key::FilterEnv),
    ("namespace", Key::Namespace),
    ("force", Key::NoEffect("force")),
    ("source_map_support", Key::SourceMapSupport),
    ("disable_source_map_support", Key::DisableSourceMapSupport),
    ("windowsHide", Key::NoEffect("windowsHide")),
    ("name_prefix", Key::NoEffect("name_prefix")),
    ("username", Key::NoEffect("username")),
    ("install_url", Key::NoEffect("install_url")),
    ("vizion", Key::NoEffect("vizion")),
    ("pmx", Key::NoEffect("pmx")),
    ("automation", Key::NoEffect("automation")),
    ("trace", Key::NoEffect("trace")),
    ("disable_trace", Key::NoEffect("disable_trace")),
    ("v8", Key::NoEffect("v8")),
    (
        "event_loop_inspector",
        Key::NoEffect("event_loop_inspector"),
    ),
    ("deep_monitoring", Key::NoEffect("deep_monitoring")),
    ("io", Key::NoEffect("io")),
    ("post_update", Key::NoEffect("post_update")),
    ("execute_command", Key::NoEffect("execute_command")),
    ("write", Key::NoEffect("write")),
];

/// Top-level keys of a file with `apps:` (pm2 also reads `pm2:`, and `static:` for its
/// built-in file server). Keys starting with `x-` are free for YAML anchors.
pub const TOP_KEYS: &[&str] = &["apps", "pm2", "static", "deploy"];

/// Keys of a `static:` entry (pm2's `API.js` turns each into a `pm2 serve` app).
pub const STATIC_KEYS: &[&str] = &[
    "name",
    "port",
    "host",
    "path",
    "spa",
    "basic_auth",
    "ftp",
    "directory",
    "monitor",
];

/// Keys of `readiness:`.
pub const READINESS_KEYS: &[&str] = &["http", "tcp", "exec", "interval", "timeout"];

/// The key a spelling stands for; `env_<profile>` is handled by the caller. pm2 takes every
/// key in camelCase too (`maxMemoryRestart`, its `Config.schema` aliases), so this does.
pub fn lookup(written: &str) -> Option<Key> {
    let find = |wanted: &str| {
        APP_KEYS
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, key)| *key)
    };
    find(written).or_else(|| {
        let snake = snake_case(written)?;
        find(&snake)
    })
}

/// `maxMemoryRestart` -> `max_memory_restart`; `None` for a name that is not camelCase.
fn snake_case(camel: &str) -> Option<String> {
    if !camel.starts_with(|c: char| c.is_ascii_lowercase())
        || !camel.contains(|c: char| c.is_ascii_uppercase())
        || !camel.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    Some(out)
}

/// Every spelling, for "did you mean".
pub fn all_names() -> Vec<&'static str> {
    APP_KEYS.iter().map(|(name, _)| *name).collect()
}

/// Why a pm2 key does nothing here, completing "`<key>` has no effect in rcluster: ...".
pub fn no_effect_reason(canonical: &str) -> &'static str {
    match canonical {
        "shutdown_with_message" => "apps are stopped with `kill_signal`",
        "treekill" => "rcluster always signals the instance's whole process group",
        "kill_retry_time" => "rcluster sends `kill_signal` once, then SIGKILL after `kill_timeout`",
        "pid_file" => "pids are shown by `rcluster list`",
        "force" => "apps are known by name, so starting twice is not an accident",
        "windowsHide" => "it applies to Windows only",
        "name_prefix" | "username" | "install_url" => "it is internal to pm2",
        "vizion" => "rcluster does not collect version-control metadata",
        "execute_command" => "an app runs in fork mode unless `instances` asks for more",
        _ => "it belongs to pm2's monitoring service (pm2.io)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_share_a_key() {
        assert_eq!(lookup("output"), Some(Key::OutFile));
        assert_eq!(lookup("exec_interpreter"), lookup("interpreter"));
        assert_eq!(lookup("combine_logs"), Some(Key::MergeLogs));
        assert_eq!(lookup("pid"), Some(Key::NoEffect("pid_file")));
        assert_eq!(lookup("env_production"), None);
        assert_eq!(lookup("cmd"), Some(Key::Script));
        assert_eq!(lookup("command"), Some(Key::Script));
        assert_eq!(lookup("maxMemoryRestart"), Some(Key::MaxMemoryRestart));
        assert_eq!(lookup("killTimeout"), Some(Key::KillTimeout));
        assert_eq!(lookup("errFile"), Some(Key::ErrorFile));
        assert_eq!(lookup("MaxMemoryRestart"), None);
        assert_eq!(lookup("max_Memory"), None);
    }

    #[test]
    fn spellings_are_unique() {
        let names = all_names();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} listed twice");
        }
    }
}
