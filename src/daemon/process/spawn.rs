//! Starting one instance: resolve the program (so a missing one is a clear `errored` reason,
//! not a restart storm), build its environment (the app's env plus documented `RCLUSTER_*`
//! variables, nothing else internal), put it in a session and process group of its own, pipe
//! stdout/stderr to the daemon (the fork/exec itself is `posix_spawn`). The child is never
//! waited for here: the reaper owns every exit status.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::posix_spawn::{self, Plan};
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
    let trampoline_args;
    let (path, argv): (&Path, Vec<&OsStr>) = if prepared.needs_listen_pid {
        trampoline_args = [
            OsStr::new("rcluster-exec"),
            OsStr::new("__exec"),
            OsStr::new(argv0),
        ];
        let mut argv: Vec<&OsStr> = trampoline_args.to_vec();
        argv.push(program.as_os_str());
        argv.extend(args.iter().map(OsStr::new));
        (trampoline, argv)
    } else {
        let mut argv = vec![OsStr::new(argv0)];
        argv.extend(args.iter().map(OsStr::new));
        (&program, argv)
    };
    // A session of its own (as pm2's fork mode, `detached: true`, and systemd services): the
    // instance leads its process group, which is what stop and kill signal, and the scheduler
    // (autogroups) gives each instance the CPU share of a separately started server instead of
    // one share for all of the daemon's children together.
    let mut plan = Plan {
        path,
        argv,
        env: env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        cwd: &spec.cwd,
        fds: prepared.fds.iter().map(AsRawFd::as_raw_fd).collect(),
    };
    let mut spawned = posix_spawn::spawn(&plan);
    if spawned
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::ENOEXEC))
        && !is_elf(plan.path)
    {
        // A script without a #! line: run it with sh, as execvp(3), shells and pm2 do (an ELF
        // file for another machine stays an error: sh would only print garbage).
        let mut argv = vec![OsStr::new("sh"), plan.path.as_os_str()];
        argv.extend(plan.argv.iter().skip(1));
        plan.argv = argv;
        plan.path = Path::new("/bin/sh");
        spawned = posix_spawn::spawn(&plan);
    }
    let child = spawned.map_err(|e| describe_spawn_error(&spec.command, &e))?;
    Ok(Spawned {
        pid: child.pid,
        stdout: child.stdout,
        stderr: child.stderr,
    })
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
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
            format!("exec format error: {what} (not a program for this machine)")
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
