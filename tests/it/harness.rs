//! Test harness: `Home` (a temp RCLUSTER_HOME whose Drop stops the daemon and SIGKILLs every
//! process group the test saw), `rc` to run the real binary with a deadline, and `wait_until`
//! to poll for a condition (never sleep as synchronisation).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use rcluster::protocol::model::{InstanceState, InstanceView};

pub const BIN: &str = env!("CARGO_BIN_EXE_rcluster");

/// Generous: CI is a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    let mut nap = Duration::from_millis(5);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        thread::sleep(nap); // polling interval, not synchronisation
        nap = (nap * 2).min(Duration::from_millis(100));
    }
}

pub struct Home {
    pub dir: PathBuf,
    /// Process groups of every instance the test has seen, with the start time of their
    /// leader then: killed on drop unless the number has gone to another process since.
    groups: RefCell<BTreeSet<(i32, Option<String>)>>,
}

impl Home {
    pub fn new() -> Home {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rcit-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test home");
        Home {
            dir,
            groups: RefCell::new(BTreeSet::new()),
        }
    }

    /// A scratch directory for the test's own files (scripts, cwd).
    pub fn work(&self) -> PathBuf {
        let work = self.dir.join("work");
        std::fs::create_dir_all(&work).expect("create work dir");
        work
    }

    pub fn write_script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.work().join(name);
        std::fs::write(&path, body).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RCLUSTER_HOME", &self.dir)
            .env_remove("RCLUSTER_INSTANCE")
            .current_dir(self.work())
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_with_deadline(self.command(args), args)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rcluster {args:?} failed\n{}",
            self.report(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a command that must fail; its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "rcluster {args:?} should have failed\n{}",
            self.report(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The daemon's log so far.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn report(&self, out: &Output) -> String {
        let log = self.daemon_log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        format!(
            "status: {}\nstdout:\n{}\nstderr:\n{}\ndaemon log (last lines, newest first):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        )
    }

    pub fn list(&self) -> Vec<InstanceView> {
        let out = self.ok(&["jlist"]);
        let list: Vec<InstanceView> = serde_json::from_str(&out).expect("jlist is JSON");
        let mut groups = self.groups.borrow_mut();
        for inst in &list {
            if let Some(pid) = inst.pid {
                let pid = pid as i32;
                if !groups.iter().any(|(seen, _)| *seen == pid) {
                    groups.insert((pid, start_time(pid)));
                }
            }
        }
        list
    }

    pub fn app(&self, name: &str) -> Vec<InstanceView> {
        self.list().into_iter().filter(|i| i.name == name).collect()
    }

    /// The pids of `name` once exactly `n` of its instances are online.
    pub fn online_pids(&self, name: &str, n: usize) -> Option<Vec<u32>> {
        let app = self.app(name);
        let pids: Vec<u32> = app
            .iter()
            .filter(|i| i.status == InstanceState::Online)
            .filter_map(|i| i.pid)
            .collect();
        (app.len() == n && pids.len() == n).then_some(pids)
    }

    pub fn wait_status(&self, name: &str, status: InstanceState) -> Vec<InstanceView> {
        wait_until(&format!("{name} {}", status.as_str()), || {
            let app = self.app(name);
            (!app.is_empty() && app.iter().all(|i| i.status == status)).then_some(app)
        })
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("daemon.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("rcluster.sock")
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(name)
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_file(name)).unwrap_or_default()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let daemon = self.daemon_pid();
        let _ = run_with_deadline(self.command(&["kill"]), &["kill"]);
        if let Some(pid) = daemon.filter(|p| *p > 1) {
            if pid_alive(pid) && is_our_daemon(pid, &self.dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        for (pgid, started) in self.groups.borrow().iter() {
            // pid_max can be small (32768): once a group's last member is gone its number may
            // lead another test's group. A live leader with another start time is not ours.
            let now = start_time(*pgid);
            if now.is_some() && now != *started {
                continue;
            }
            let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Field 22 of /proc/<pid>/stat: when the process started (None when there is none).
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// A daemon, and this home's (the pid may have gone to another test's daemon since).
fn is_our_daemon(pid: i32, home: &Path) -> bool {
    let daemon = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("__daemon"))
        .unwrap_or(false);
    let wanted = format!("RCLUSTER_HOME={}", home.display());
    daemon
        && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
            env.split(|b| *b == 0)
                .any(|entry| entry == wanted.as_bytes())
        })
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie is not alive for our purposes.
    rcluster::daemon::process::stats::stat_fields(pid)
        .is_some_and(|fields| fields.first().map(String::as_str) != Some("Z"))
}

/// Run a command, killing it if it outlives the deadline (a hung daemon must fail the test,
/// not hang it).
pub fn run_with_deadline(mut cmd: Command, args: &[&str]) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rcluster");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait rcluster") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rcluster {args:?} did not finish within 60 s");
        }
        thread::sleep(Duration::from_millis(2)); // polling interval for the child's exit
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// (pid, state, ppid, pgrp) of every process, from /proc/<pid>/stat.
fn processes() -> Vec<(i32, char, i32, i32)> {
    use rcluster::daemon::process::stats::stat_fields;
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<i32>().ok());
        let state = fields.first().and_then(|f| f.chars().next());
        if let (Some(state), Some(ppid), Some(pgrp)) = (state, number(1), number(2)) {
            out.push((pid, state, ppid, pgrp));
        }
    }
    out
}

/// Pids in process group `pgid`, zombies excluded.
pub fn group_members(pgid: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.1 != 'Z' && p.3 == pgid)
        .map(|p| p.0)
        .collect()
}

/// Zombie children of `parent`.
pub fn zombie_children(parent: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.1 == 'Z' && p.2 == parent)
        .map(|p| p.0)
        .collect()
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A port that was free a moment ago on 127.0.0.1 (the kernel picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 GET with `Connection: close`; the response body.
pub fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body))
            if (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"))
                && declared_length(head).is_none_or(|n| n == body.len()) =>
        {
            Ok(body.to_owned())
        }
        _ => Err(std::io::Error::other(format!("bad response: {text:?}"))),
    }
}

/// The Content-Length a response head declares, if any (a shorter body is a cut answer).
pub fn declared_length(head: &str) -> Option<usize> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The repository's test fixtures.
pub fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether a program is on PATH (tests that need one skip with a printed reason otherwise).
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// A node_modules folder with Express 5 in it, if there is one: `RCLUSTER_TEST_NODE_PATH`,
/// the entries of `NODE_PATH`, or `target/test-node/node_modules` (where `.ci/run` installs it).
/// Tests that need it skip with a printed reason otherwise.
pub fn express_modules() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    for var in ["RCLUSTER_TEST_NODE_PATH", "NODE_PATH"] {
        if let Some(paths) = std::env::var_os(var) {
            candidates.extend(std::env::split_paths(&paths));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-node/node_modules"));
    candidates.into_iter().find(|dir| {
        std::fs::read_to_string(dir.join("express/package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|pkg| pkg["version"].as_str().map(|v| v.starts_with("5.")))
            .unwrap_or(false)
    })
}
