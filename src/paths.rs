//! `Home`: where one daemon keeps its socket, lock, logs and saved state. `RCLUSTER_HOME` wins;
//! otherwise the platform state directory from `directories`. The directory is private (0700)
//! because it holds the control socket and every app's logs (PRODUCT.md §1, §10).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

pub const HOME_ENV: &str = "RCLUSTER_HOME";

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolve the home from the environment without touching the disk.
    pub fn from_env() -> anyhow::Result<Home> {
        if let Some(dir) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            let root = if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()
                    .context("cannot read the current directory")?
                    .join(dir)
            };
            return Ok(Home { root });
        }
        let dirs = directories::ProjectDirs::from("", "", "rcluster")
            .context("cannot find a home directory for rcluster; set RCLUSTER_HOME")?;
        let root = dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf();
        Ok(Home { root })
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("rcluster.sock")
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }

    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn lib_dir(&self) -> PathBuf {
        self.root.join("lib")
    }

    /// The saved process list, in pm2's format and under pm2's name (`save`, `resurrect`).
    pub fn dump(&self) -> PathBuf {
        self.root.join("dump.pm2")
    }

    /// The saved list of rcluster before 0.2 (read by `resurrect` when there is no dump.pm2).
    pub fn legacy_dump(&self) -> PathBuf {
        self.root.join("dump.json")
    }

    /// Present while a daemon runs: found at start, it says the previous one did not stop
    /// cleanly (`daemon::previous_run`).
    pub fn run_marker(&self) -> PathBuf {
        self.root.join("daemon.run")
    }

    /// Whether a daemon holds this home's lock (it may be starting, serving or shutting down).
    pub fn daemon_running(&self) -> bool {
        let Ok(file) = fs::File::open(self.lock()) else {
            return false;
        };
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
            Ok(_released_on_drop) => false,
            Err((_, errno)) => errno == nix::errno::Errno::EWOULDBLOCK,
        }
    }

    /// Create the home (0700) and its subdirectories; tighten a pre-existing home that other
    /// users could read, since it will hold the control socket and logs.
    pub fn ensure(&self) -> anyhow::Result<()> {
        create_private_dir(&self.root)?;
        let meta = fs::metadata(&self.root)
            .with_context(|| format!("cannot inspect {}", self.root.display()))?;
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            bail!(
                "{} belongs to another user (uid {}); choose another RCLUSTER_HOME",
                self.root.display(),
                meta.uid()
            );
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private", self.root.display()))?;
        }
        create_private_dir(&self.logs_dir())?;
        create_private_dir(&self.lib_dir())?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}
