//! `rcluster update` (PRODUCT.md §8): the daemon re-executes itself in place, as systemd's
//! daemon-reexec does. Same pid, so the instances stay its children (and it their reaper); the
//! file descriptors that carry the running state (control socket, lock, listeners, instance
//! channels, output pipes, parked connections) cross the exec with close-on-exec cleared, and
//! everything else is described in a state record that the new image reads from a memfd.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::balancer::handoff::BalancerHandoff;
use crate::protocol::model::{AppSpec, InstanceState};
use crate::protocol::response::Stream;

/// The state record's format: a new binary takes over only from a daemon that writes the
/// format it reads (the CLI says which in its `Update` request). Bump it when the record or the
/// channel protocol that running instances' preload libraries speak (`abi`) changes.
pub const FORMAT: u32 = 1;

/// The argument after `__daemon` that names the state record's fd.
pub const HANDOFF_ARG: &str = "--handoff";

/// What the tasks of one kind (log captures, proxied connections) give back for an update: the
/// flag they watch, what they handed over, and how many of them still run.
pub struct Handover<T> {
    flag: OnceLock<watch::Sender<bool>>,
    handed: Mutex<Vec<T>>,
    running: AtomicUsize,
}

impl<T> Handover<T> {
    pub const fn new() -> Handover<T> {
        Handover {
            flag: OnceLock::new(),
            handed: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
        }
    }

    fn flag(&self) -> &watch::Sender<bool> {
        self.flag.get_or_init(|| watch::channel(false).0)
    }

    /// Ask every task to hand over at its next clean point.
    pub fn begin(&self) {
        self.flag().send_replace(true);
    }

    /// The update did not happen: tasks go on (the caller resumes what was handed over).
    pub fn end(&self) {
        self.flag().send_replace(false);
    }

    pub fn watch(&self) -> watch::Receiver<bool> {
        self.flag().subscribe()
    }

    /// Counts a task as running until the returned guard is dropped.
    pub fn task(&'static self) -> Running<T> {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self)
    }

    /// Tasks still running (neither handed over nor ended).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Keep `item` for the update; Err(item) when the handover was called off meanwhile (the
    /// caller goes on with it). The flag is read under the lock that `take` takes after `end`
    /// cleared it, so an abandoned update leaves nothing behind, whatever thread hands over.
    pub fn hand_over(&self, item: T) -> Result<(), T> {
        let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        if !*self.flag().borrow() {
            return Err(item);
        }
        handed.push(item);
        Ok(())
    }

    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.handed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Put back what `take` gave (an exec that did not happen), for the abandon that follows.
    pub fn restore(&self, items: Vec<T>) {
        self.handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(items);
    }
}

impl<T> Default for Handover<T> {
    fn default() -> Handover<T> {
        Handover::new()
    }
}

/// A running task of a `Handover`.
pub struct Running<T: 'static>(&'static Handover<T>);

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Everything the new image needs besides the fds themselves.
#[derive(Serialize, Deserialize)]
pub struct Handoff {
    pub format: u32,
    pub from_version: String,
    /// Every fd that crossed the exec (the new image closes any it does not take).
    pub fds: Vec<RawFd>,
    pub lock: RawFd,
    pub control: RawFd,
    /// The `update` client's connection: the new image answers it.
    pub client: RawFd,
    pub uptime_ms: u64,
    pub next_id: u32,
    pub apps: Vec<AppHandoff>,
    pub instances: Vec<InstanceHandoff>,
}

#[derive(Serialize, Deserialize)]
pub struct AppHandoff {
    pub spec: AppSpec,
    pub base_env: BTreeMap<String, String>,
    pub balancer: Option<BalancerHandoff>,
    /// Absent in records from before `describe` showed it: the time of the update.
    #[serde(default)]
    pub created_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
pub struct InstanceHandoff {
    pub id: u32,
    /// Absent in records from before public ids: the id itself.
    #[serde(default)]
    pub public_id: Option<u32>,
    pub app: String,
    pub index: u32,
    pub state: InstanceState,
    pub pid: Option<i32>,
    pub pgid: Option<i32>,
    pub uptime_ms: Option<u64>,
    /// Wall-clock creation and last start (ms since the epoch); absent in older records.
    #[serde(default)]
    pub created_ms: Option<u64>,
    #[serde(default)]
    pub started_ms: Option<u64>,
    pub restarts: u32,
    pub unstable: u32,
    pub backoff_ms: u64,
    pub reason: Option<String>,
    pub status_text: Option<String>,
    pub stopped_by_command: bool,
    pub ready: bool,
    pub listening: bool,
    /// A pending restart (waiting_restart) or listen_timeout check: due in this many ms.
    pub restart_in_ms: Option<u64>,
    pub listen_check_in_ms: Option<u64>,
    pub outputs: Vec<OutputHandoff>,
    pub node_channel: Option<RawFd>,
    pub notify: Option<(PathBuf, RawFd)>,
}

#[derive(Serialize, Deserialize)]
pub struct OutputHandoff {
    pub stream: Stream,
    pub fd: RawFd,
    /// The line begun but not ended when the old image stopped reading.
    pub partial: Vec<u8>,
    pub skipping: bool,
}

/// The fds the old image keeps open across the exec.
#[derive(Default)]
pub struct FdsOut {
    kept: Vec<RawFd>,
}

impl FdsOut {
    /// `fd` is to cross the exec (its owner must keep it open until then); its number.
    pub fn keep(&mut self, fd: &impl AsRawFd) -> RawFd {
        let raw = fd.as_raw_fd();
        self.kept.push(raw);
        raw
    }

    /// Right before the exec: clear close-on-exec on every kept fd.
    pub fn release(&self) {
        for fd in &self.kept {
            set_cloexec(*fd, false);
        }
    }

    pub fn kept(&self) -> Vec<RawFd> {
        self.kept.clone()
    }

    /// The exec did not happen: nothing may leak into the instances spawned from now on.
    pub fn restore(&self) {
        for fd in &self.kept {
            set_cloexec(*fd, true);
        }
    }
}

/// The new image's side: each carried fd is taken once, back under close-on-exec.
pub struct FdsIn {
    carried: HashSet<RawFd>,
}

impl FdsIn {
    pub fn new(carried: &[RawFd]) -> FdsIn {
        FdsIn {
            carried: carried.iter().copied().collect(),
        }
    }

    pub fn take(&mut self, fd: RawFd) -> Result<OwnedFd, String> {
        if !self.carried.remove(&fd) {
            return Err(format!("fd {fd} was not handed over, or taken twice"));
        }
        // SAFETY: F_GETFD on any number is harmless; a closed fd fails.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!("fd {fd} did not cross the exec"));
        }
        set_cloexec(fd, true);
        // SAFETY: the previous image kept this fd open for us, and `carried` hands each number
        // out once, so this is its only owner.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Close what nobody took (the state that needed it was dropped).
    pub fn close_rest(self) {
        for fd in self.carried {
            // SAFETY: carried fds nobody took are owned by nothing in this image.
            unsafe { libc::close(fd) };
        }
    }
}

fn set_cloexec(fd: RawFd, on: bool) {
    // SAFETY: F_GETFD/F_SETFD take and return integers only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            let flags = if on {
                flags | libc::FD_CLOEXEC
            } else {
                flags & !libc::FD_CLOEXEC
            };
            libc::fcntl(fd, libc::F_SETFD, flags);
        }
    }
}

/// The hidden command with which a new binary checks a state record before the daemon
/// re-executes as it: the record on stdin, `ok` on stdout when it can take over from it.
pub const CHECK_ARG: &str = "__handoff-check";
const CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Write the state record to a memfd and re-execute `exe` as the daemon, once `exe` has read
/// the record and said it can take over from it (a daemon that could not read its state would
/// leave the apps unsupervised). Returns only when it did not happen (the caller then goes on as
/// before).
pub fn exec(exe: &Path, handoff: &Handoff, fds: &FdsOut) -> String {
    let json = match serde_json::to_vec(handoff) {
        Ok(json) => json,
        Err(e) => return format!("cannot write the state for the new daemon: {e}"),
    };
    if let Err(e) = check_with(exe, &json) {
        return e;
    }
    let record = match write_record(&json) {
        Ok(fd) => fd,
        Err(e) => return format!("cannot write the state for the new daemon: {e}"),
    };
    fds.release();
    let argv: Vec<CString> = [
        exe.as_os_str().as_bytes().to_vec(),
        b"__daemon".to_vec(),
        HANDOFF_ARG.as_bytes().to_vec(),
        record.as_raw_fd().to_string().into_bytes(),
    ]
    .into_iter()
    .filter_map(|arg| CString::new(arg).ok())
    .collect();
    if argv.len() != 4 {
        return format!("{} contains a NUL byte", exe.display());
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid C strings that outlive the call; the
    // environment is the process's own.
    unsafe { libc::execv(argv[0].as_ptr(), ptrs.as_ptr()) };
    let e = std::io::Error::last_os_error();
    drop(record);
    format!("cannot execute {}: {e}", exe.display())
}

/// Run `exe __handoff-check` with the record on stdin; Ok when it answers `ok`. Its exit status
/// is not waited for: the daemon's reaper takes it.
fn check_with(exe: &Path, json: &[u8]) -> Result<(), String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(exe)
        .arg(CHECK_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot execute {}: {e}", exe.display()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let json = json.to_vec();
    // On a thread, so that a binary that never answers costs a timeout, not the daemon.
    let (answered, answer) = std::sync::mpsc::channel();
    let talk = std::thread::Builder::new()
        .name("handoff check".into())
        .spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&json);
            }
            let mut said = String::new();
            if let Some(mut stdout) = stdout {
                let _ = stdout.read_to_string(&mut said);
            }
            let _ = answered.send(said);
        });
    if let Err(e) = talk {
        let _ = child.kill();
        return Err(format!("cannot check {}: {e}", exe.display()));
    }
    let answer = match answer.recv_timeout(CHECK_LIMIT) {
        Ok(answer) => answer,
        Err(_) => {
            let _ = child.kill();
            return Err(format!(
                "{} did not answer within {CHECK_LIMIT:?}",
                exe.display()
            ));
        }
    };
    match answer.trim() {
        "ok" => Ok(()),
        "" => Err(format!(
            "{} did not accept this daemon's state (is it an rcluster with `update`?)",
            exe.display()
        )),
        said => Err(format!(
            "{} cannot take over from this daemon: {said}",
            exe.display()
        )),
    }
}

/// `rcluster __handoff-check`: read a state record on stdin; `ok` if this binary can take over
/// from it, else why not. Exit code 0 either way (the answer is the line).
pub fn check_main() -> i32 {
    let mut json = Vec::new();
    let answer = match std::io::stdin().read_to_end(&mut json) {
        Err(e) => format!("cannot read the state record: {e}"),
        Ok(_) => match parse_record(&json) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e,
        },
    };
    println!("{answer}");
    0
}

fn write_record(json: &[u8]) -> std::io::Result<OwnedFd> {
    let name = c"rcluster-handoff";
    // SAFETY: a valid C string and no flags (the fd must survive the exec).
    let raw = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    file.write_all(json)?;
    file.rewind()?;
    Ok(file.into())
}

/// The new image: read the state record the old one left in fd `arg`.
pub fn read_record(arg: &str) -> Result<Handoff, String> {
    let fd: RawFd = arg
        .parse()
        .map_err(|_| format!("bad {HANDOFF_ARG} argument {arg:?}"))?;
    // SAFETY: F_GETFD on any number is harmless; a closed fd fails.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("no state record at fd {fd}"));
    }
    // SAFETY: the previous image passed this fd for us alone; we close it after reading.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut json = Vec::new();
    file.read_to_end(&mut json)
        .map_err(|e| format!("cannot read the state record: {e}"))?;
    parse_record(&json)
}

fn parse_record(json: &[u8]) -> Result<Handoff, String> {
    let handoff: Handoff =
        serde_json::from_slice(json).map_err(|e| format!("malformed state record: {e}"))?;
    if handoff.format != FORMAT {
        return Err(format!(
            "state record format {} (this binary reads {FORMAT})",
            handoff.format
        ));
    }
    Ok(handoff)
}

/// Answer the `update` client on its connection (which crossed the exec, for a success).
pub fn answer(client: OwnedFd, response: &crate::protocol::Response) {
    let mut stream = std::os::unix::net::UnixStream::from(client);
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(2)));
    let _ = crate::protocol::frame::write_frame_blocking(&mut stream, response);
}
