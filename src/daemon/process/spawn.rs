//! Starting one instance: resolve the program (so a missing one is a clear `errored` reason,
//! not a restart storm), build its environment (the app's env plus documented `RCLUSTER_*`
//! variables, nothing else internal), put it in a session and process group of its own, pipe stdout/stderr to
//! the daemon. The child is never waited for here: the reaper owns every exit status.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::daemon::balancer::Prepared;
use crate::protocol::model::{AppSpec, CommandSpec};

/// Variables from the client's environment that describe rcluster's or another manager's
/// plumbing: they would be wrong inside an instance.
const NOT_INHERITED: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "NODE_APP_INSTANCE",
    "NODE_CHANNEL_FD",
    "NODE_CHANNEL_SERIALIZATION_MODE",
    "pm_id",
];

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub struct Spawned {
    pub pid: i32,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// What one instance needs to know beyond its app's spec.
pub struct InstanceContext<'a> {
    pub id: u32,
    pub index: u32,
    pub base_env: &'a BTreeMap<String, String>,
}

/// The environment an instance sees.
pub fn instance_env(spec: &AppSpec, ctx: &InstanceContext<'_>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = ctx
        .base_env
        .iter()
        .filter(|(k, _)| !k.starts_with("RCLUSTER_") && !NOT_INHERITED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(var) = &spec.increment_var {
        // pm2: the first instance keeps the declared value, the next ones add their index.
        if let Some(base) = env.get(var).and_then(|v| v.trim().parse::<i64>().ok()) {
            env.insert(var.clone(), (base + i64::from(ctx.index)).to_string());
        }
    }
    if runs_python(&spec.command) {
        // As pm2 does: a Python writing to a pipe holds 8 KiB back, so `logs -f` would stay
        // silent. An app opts out by declaring PYTHONUNBUFFERED as an empty string.
        match spec.env.get("PYTHONUNBUFFERED") {
            Some(v) if v.is_empty() => {
                env.remove("PYTHONUNBUFFERED");
            }
            Some(_) => {}
            None => {
                env.insert("PYTHONUNBUFFERED".into(), "1".into());
            }
        }
    }
    env.insert("RCLUSTER_APP".into(), spec.name.clone());
    env.insert("RCLUSTER_ID".into(), ctx.id.to_string());
    env.insert("RCLUSTER_INSTANCE".into(), ctx.index.to_string());
    if !spec.instance_var.is_empty() {
        env.insert(spec.instance_var.clone(), ctx.index.to_string());
    }
    env
}

fn runs_python(command: &CommandSpec) -> bool {
    program_name(command).starts_with("python")
}

/// `node`, `nodejs`, or a versioned `node20`: the program is Node.
pub fn runs_node(command: &CommandSpec) -> bool {
    program_name(command).starts_with("node")
}

/// The file name of the program the command runs (for a shell string, of its first word).
fn program_name(command: &CommandSpec) -> &str {
    let first = match command {
        CommandSpec::Exec { program, .. } => program.as_str(),
        CommandSpec::Shell { script } => script.split_whitespace().next().unwrap_or(""),
    };
    Path::new(first)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
}

/// Find the program the way execvp would, but against the instance's own PATH and cwd, and
/// say precisely why it cannot run.
pub fn resolve_program(
    program: &str,
    cwd: &Path,
    path_var: Option<&str>,
) -> Result<PathBuf, String> {
    if program.is_empty() {
        return Err("no program given".into());
    }
    if program.contains('/') {
        let candidate = cwd.join(program);
        return check_executable(&candidate).map(|()| candidate);
    }
    let mut denied = None;
    for dir in path_var.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(dir)
        };
        let candidate = cwd.join(dir).join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if candidate.exists() => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| format!("no such file or directory: `{program}` is not in PATH")))
}

fn check_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("no such file or directory: {} ({e})", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "permission denied: {} is not executable (chmod +x it, or set an interpreter)",
            path.display()
        ));
    }
    Ok(())
}

/// Start one instance, with the fds and variables cluster mode prepared for it (placed at fd
/// 3.. in the child, as sd_listen_fds(3) expects). `trampoline` is this binary, run as
/// `__exec` in front of the program when LISTEN_PID must name the program's own pid.
pub fn spawn(
    spec: &AppSpec,
    ctx: &InstanceContext<'_>,
    prepared: &Prepared,
    trampoline: &Path,
) -> Result<Spawned, String> {
    match std::fs::metadata(&spec.cwd) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("cwd {} is not a directory", spec.cwd.display())),
        Err(e) => return Err(format!("cwd {} does not exist ({e})", spec.cwd.display())),
    }
    let mut env = instance_env(spec, ctx);
    for (key, value) in &prepared.env {
        let merged = match (key.as_str(), env.get(key)) {
            // The app's own preloads stay, after ours.
            ("LD_PRELOAD", Some(theirs)) if !theirs.is_empty() => format!("{value}:{theirs}"),
            _ => value.clone(),
        };
        env.insert(key.clone(), merged);
    }
    let (program, argv0, args): (PathBuf, &str, Vec<&str>) = match &spec.command {
        CommandSpec::Exec { program, args } => {
            let path = resolve_program(program, &spec.cwd, env.get("PATH").map(String::as_str))?;
            (
                path,
                program.as_str(),
                args.iter().map(String::as_str).collect(),
            )
        }
        CommandSpec::Shell { script } => {
            (PathBuf::from("/bin/sh"), "sh", vec!["-c", script.as_str()])
        }
    };
    let mut command = if prepared.needs_listen_pid {
        let mut command = Command::new(trampoline);
        command
            .arg0("rcluster-exec")
            .arg("__exec")
            .arg(argv0)
            .arg(&program)
            .args(&args);
        command
    } else {
        let mut command = Command::new(&program);
        command.arg0(argv0).args(&args);
        command
    };
    if !prepared.fds.is_empty() {
        place_fds(
            &mut command,
            prepared.fds.iter().map(|fd| fd.as_raw_fd()).collect(),
        );
    }
    command
        .env_clear()
        .envs(&env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A session of its own (as pm2's fork mode, `detached: true`, and systemd services): the
    // instance leads its process group, which is what stop and kill signal, and the scheduler
    // (autogroups) gives each instance the CPU share of a separately started server instead of
    // one share for all of the daemon's children together.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| describe_spawn_error(&spec.command, &e))?;
    let pid = i32::try_from(child.id()).map_err(|_| "pid out of range".to_string())?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("spawned without output pipes".into());
    };
    // Dropping `child` neither kills nor waits: the reaper collects its exit status.
    drop(child);
    Ok(Spawned {
        pid,
        stdout: stdout.into(),
        stderr: stderr.into(),
    })
}

/// In the child, between fork and exec: put `fds` on 3, 4, ... without CLOEXEC. They are first
/// moved above any target number so that no dup2 overwrites a source still to be placed.
fn place_fds(command: &mut Command, fds: Vec<RawFd>) {
    // SAFETY: the closure runs in the forked child and only calls fcntl/dup2/close, which are
    // async-signal-safe; `fds` stay open in the parent until spawn returns.
    unsafe {
        command.pre_exec(move || {
            let high = 3 + fds.len() as RawFd + 64;
            let mut moved = [0 as RawFd; 64];
            for (i, fd) in fds.iter().enumerate().take(moved.len()) {
                let copy = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, high);
                if copy < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = copy;
            }
            for (i, copy) in moved.iter().enumerate().take(fds.len().min(64)) {
                if libc::dup2(*copy, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(*copy);
            }
            Ok(())
        });
    }
}

fn describe_spawn_error(command: &CommandSpec, e: &std::io::Error) -> String {
    let what = match command {
        CommandSpec::Exec { program, .. } => program.as_str(),
        CommandSpec::Shell { .. } => "/bin/sh",
    };
    match e.raw_os_error() {
        Some(libc::ENOENT) => format!("no such file or directory: {what}"),
        Some(libc::EACCES) => format!("permission denied: {what}"),
        Some(libc::ENOEXEC) => {
            format!("exec format error: {what} (a script needs a #! line, or set an interpreter)")
        }
        _ => format!("cannot start {what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_documented_variables_only() {
        let mut spec = AppSpec {
            name: "web".into(),
            ..AppSpec::default()
        };
        spec.env.insert("PORT".into(), "3000".into());
        spec.increment_var = Some("PORT".into());
        let base: BTreeMap<String, String> = [
            ("PATH", "/bin"),
            ("RCLUSTER_HOME", "/tmp/x"),
            ("LISTEN_FDS", "1"),
            ("HOME", "/root"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let env = instance_env(
            &spec,
            &InstanceContext {
                id: 7,
                index: 2,
                base_env: &base,
            },
        );
        assert_eq!(env.get("PORT").map(String::as_str), Some("3002"));
        assert_eq!(env.get("RCLUSTER_INSTANCE").map(String::as_str), Some("2"));
        assert_eq!(env.get("NODE_APP_INSTANCE").map(String::as_str), Some("2"));
        assert_eq!(env.get("RCLUSTER_ID").map(String::as_str), Some("7"));
        assert!(!env.contains_key("RCLUSTER_HOME"));
        assert!(!env.contains_key("LISTEN_FDS"));
        assert!(!env.contains_key("PYTHONUNBUFFERED"));
    }

    #[test]
    fn missing_program_is_named() {
        let err = resolve_program("surely-not-a-program-xyz", Path::new("/"), Some("/bin"))
            .expect_err("must fail");
        assert!(err.contains("no such file"), "{err}");
        let err = resolve_program("./nope.sh", Path::new("/tmp"), None).expect_err("must fail");
        assert!(err.contains("/tmp/./nope.sh"), "{err}");
    }
}
