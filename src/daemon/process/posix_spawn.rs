//! Fork/exec of an instance with posix_spawn(3): glibc clones with CLONE_VM|CLONE_VFORK, so
//! nothing of the daemon is copied (a fork copies every mapping, and each of a batch's forks
//! waits for the others on the address space's lock), and the file actions, the new session and
//! the signal reset run in the child, as a fork's pre-exec code would. The call returns once
//! the program is exec'd, or with the errno of the failed exec (ENOENT, EACCES, ...).

use std::ffi::{CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::OFlag;

/// What to run and how.
pub struct Plan<'a> {
    /// The file exec'd (a resolved path).
    pub path: &'a Path,
    /// argv, argv[0] included.
    pub argv: Vec<&'a OsStr>,
    pub env: Vec<(&'a str, &'a str)>,
    pub cwd: &'a Path,
    /// Placed on fds 3, 4, ... in the child, without CLOEXEC.
    pub fds: Vec<RawFd>,
}

/// The child's pid and the read ends of its stdout and stderr pipes.
pub struct Child {
    pub pid: i32,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn cstring(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// `fd` itself, or a copy of it numbered 3 or more if it took one of the stdio numbers.
fn off_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        Ok(fd)
    } else {
        copy_at_or_above(fd.as_raw_fd(), 3)
    }
}

/// A CLOEXEC copy of `fd` numbered `lowest` or more.
fn copy_at_or_above(fd: RawFd, lowest: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own, or -1.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, lowest) };
    if copy < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh fd from fcntl, owned here.
        Ok(unsafe { OwnedFd::from_raw_fd(copy) })
    }
}

struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        let mut raw = MaybeUninit::uninit();
        // SAFETY: init fills the struct; it is only used after success.
        check(unsafe { libc::posix_spawn_file_actions_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        Ok(FileActions(unsafe { raw.assume_init() }))
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in new().
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

struct Attributes(libc::posix_spawnattr_t);

impl Attributes {
    fn new() -> io::Result<Attributes> {
        let mut raw = MaybeUninit::uninit();
        // SAFETY: as for FileActions.
        check(unsafe { libc::posix_spawnattr_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        Ok(Attributes(unsafe { raw.assume_init() }))
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in new().
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// Start `plan` in a session of its own: stdin /dev/null, stdout and stderr to new pipes,
/// every signal at its default disposition and none blocked.
pub fn spawn(plan: &Plan<'_>) -> io::Result<Child> {
    let path = cstring(plan.path.as_os_str().as_bytes(), "the program path")?;
    let argv: Vec<CString> = plan
        .argv
        .iter()
        .map(|arg| cstring(arg.as_bytes(), "an argument"))
        .collect::<io::Result<_>>()?;
    let env: Vec<CString> = plan
        .env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes(), "an environment variable"))
        .collect::<io::Result<_>>()?;
    let cwd = cstring(plan.cwd.as_os_str().as_bytes(), "the working directory")?;
    let mut argv_ptrs: Vec<*mut libc::c_char> =
        argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let mut env_ptrs: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
    env_ptrs.push(std::ptr::null_mut());

    let (stdout_read, stdout_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stderr_read, stderr_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // With fds 0-2 closed in the daemon's own process (`rcluster run <&-`), a pipe could take
    // one of them and be overwritten by the /dev/null or dup2 actions before its own.
    let stdout_write = off_stdio(stdout_write)?;
    let stderr_write = off_stdio(stderr_write)?;
    // Copies above every target number, so that no dup2 below overwrites a source still to be
    // placed; they close at exec (CLOEXEC), the targets stay open.
    let lowest = 3 + plan.fds.len() as RawFd;
    let sources: Vec<OwnedFd> = plan
        .fds
        .iter()
        .map(|fd| copy_at_or_above(*fd, lowest))
        .collect::<io::Result<_>>()?;

    let mut actions = FileActions::new()?;
    let dev_null = c"/dev/null";
    // SAFETY: every pointer is valid for the call (glibc copies the path); fds are open.
    unsafe {
        check(libc::posix_spawn_file_actions_addopen(
            &mut actions.0,
            0,
            dev_null.as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut actions.0,
            stdout_write.as_raw_fd(),
            1,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut actions.0,
            stderr_write.as_raw_fd(),
            2,
        ))?;
        for (i, source) in sources.iter().enumerate() {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions.0,
                source.as_raw_fd(),
                3 + i as RawFd,
            ))?;
        }
        check(libc::posix_spawn_file_actions_addchdir_np(
            &mut actions.0,
            cwd.as_ptr(),
        ))?;
    }

    let mut attributes = Attributes::new()?;
    // SAFETY: the sets are initialised by sigemptyset/sigfillset before use.
    unsafe {
        let mut none = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        check(libc::posix_spawnattr_setsigmask(
            &mut attributes.0,
            none.as_ptr(),
        ))?;
        // The daemon ignores SIGPIPE (Rust's runtime) and others: a program starts with none
        // of that, as under systemd.
        check(libc::posix_spawnattr_setsigdefault(
            &mut attributes.0,
            all.as_ptr(),
        ))?;
        let flags = libc::POSIX_SPAWN_SETSID
            | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
            | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
        check(libc::posix_spawnattr_setflags(&mut attributes.0, flags))?;
    }

    let mut pid: libc::pid_t = 0;
    // SAFETY: argv and envp are NUL-terminated arrays of C strings that outlive the call.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.0,
            &attributes.0,
            argv_ptrs.as_ptr(),
            env_ptrs.as_ptr(),
        )
    })?;
    // The write ends and the copies are the child's now: ours close here.
    drop((stdout_write, stderr_write, sources));
    Ok(Child {
        pid,
        stdout: stdout_read,
        stderr: stderr_read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn run(plan: &Plan<'_>) -> (i32, String, String) {
        let child = spawn(plan).expect("spawn");
        let mut out = String::new();
        std::fs::File::from(child.stdout)
            .read_to_string(&mut out)
            .expect("stdout");
        let mut err = String::new();
        std::fs::File::from(child.stderr)
            .read_to_string(&mut err)
            .expect("stderr");
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
        let code = match status {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
            other => panic!("{other:?}"),
        };
        (code, out, err)
    }

    #[test]
    fn the_child_gets_its_argv_env_cwd_session_fds_and_default_signals() {
        let (placed_read, placed_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        drop(placed_read);
        let script = "echo \"$0 $1 $GREETING $(pwd)\"; \
                      cut -d' ' -f5,6 /proc/$$/stat; \
                      [ -e /proc/self/fd/3 ] && echo fd3; \
                      [ -e /proc/self/fd/4 ] || echo no-fd4; \
                      grep -E '^Sig(Blk|Ign)' /proc/self/status >&2; \
                      read line || echo stdin-empty; exit 7";
        let plan = Plan {
            path: Path::new("/bin/sh"),
            argv: vec![
                OsStr::new("sh"),
                OsStr::new("-c"),
                OsStr::new(script),
                OsStr::new("name0"),
                OsStr::new("arg1"),
            ],
            env: vec![("GREETING", "hi"), ("PATH", "/usr/bin:/bin")],
            cwd: Path::new("/tmp"),
            fds: vec![placed_write.as_raw_fd()],
        };
        let (code, out, err) = run(&plan);
        assert_eq!(code, 7);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "name0 arg1 hi /tmp", "{out}");
        let ids: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(ids[0], ids[1], "a session and group of its own: {out}");
        assert_ne!(
            ids[0],
            nix::unistd::getsid(None).expect("sid").to_string(),
            "{out}"
        );
        assert_eq!(&lines[2..], ["fd3", "no-fd4", "stdin-empty"], "{out}");
        let mask = |name: &str| {
            err.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or_else(|| panic!("no {name} in {err}"))
        };
        assert_eq!(mask("SigBlk:"), 0, "{err}");
        // Signals 1-31 at their default. glibc leaves its two internal ones (32, 33) ignored,
        // as every posix_spawn does (Rust's Command included); a libc sets its own at start.
        assert_eq!(mask("SigIgn:") & 0x7fff_ffff, 0, "{err}");
    }

    #[test]
    fn a_missing_program_is_its_errno() {
        let plan = Plan {
            path: Path::new("/surely/not/a/program"),
            argv: vec![OsStr::new("x")],
            env: vec![],
            cwd: Path::new("/"),
            fds: vec![],
        };
        let error = spawn(&plan).err().expect("must fail");
        assert_eq!(error.raw_os_error(), Some(libc::ENOENT));
    }
}
