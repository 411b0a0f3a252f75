//! `watch`: an inotify instance per app, read by a task on the daemon's runtime. Directories are
//! watched one by one, never descending into ignored ones (node_modules can hold more folders
//! than the kernel's watch limit), and new folders are added as they appear. A change that is not
//! ignored (nor one of the app's own log files) is reported to the supervisor (once per batch
//! of events read), which restarts the app.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::config::watch::Ignore;
use crate::daemon::events::InstanceEvent;
use crate::protocol::model::WatchSpec;

/// Watching stops when this is dropped.
pub struct AppWatcher {
    task: JoinHandle<()>,
}

impl Drop for AppWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Tree {
    inotify: Inotify,
    app: String,
    spec: WatchSpec,
    ignore: Ignore,
    /// The app's own log files (when they live in a watched folder, each write would restart
    /// it): never reported, nor their per-instance and rotated siblings.
    skip: Vec<PathBuf>,
    /// What each watch descriptor watches, and under which of `spec.paths`.
    watched: HashMap<WatchDescriptor, (PathBuf, usize)>,
}

impl AsRawFd for Tree {
    fn as_raw_fd(&self) -> RawFd {
        self.inotify.as_fd().as_raw_fd()
    }
}

fn dir_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DONT_FOLLOW
}

fn file_mask() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DELETE_SELF
}

/// Watch `spec`'s paths for app `app`; changes arrive as `FileChanged` on `events`.
pub fn start(
    app: &str,
    spec: &WatchSpec,
    skip: Vec<PathBuf>,
    events: UnboundedSender<InstanceEvent>,
) -> Result<AppWatcher, String> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("watch: cannot start inotify: {e}"))?;
    let (ignore, problems) = Ignore::new(spec);
    for problem in problems {
        crate::dlog!("app {app}: watch: ignore_watch {problem}; left out");
    }
    let mut tree = Tree {
        inotify,
        app: app.to_owned(),
        spec: spec.clone(),
        ignore,
        skip,
        watched: HashMap::new(),
    };
    for (root_index, root) in spec.paths.iter().enumerate() {
        let meta = std::fs::metadata(root)
            .map_err(|e| format!("watch: cannot watch {}: {e}", root.display()))?;
        if meta.is_dir() {
            tree.add_dir(root, root_index)?;
        } else {
            tree.add(root, root_index, file_mask())?;
        }
    }
    // SAFETY: the inotify fd is open and owned by `tree`, which the AsyncFd owns until it is
    // dropped, so the fd stays the same and open while registered.
    let fd = unsafe { AsyncFd::register_with_interest(tree, tokio::io::Interest::READABLE) }
        .map_err(|e| format!("watch: cannot poll inotify: {e}"))?;
    let task = tokio::spawn(read_changes(fd, events));
    Ok(AppWatcher { task })
}

impl Tree {
    fn add(&mut self, path: &Path, root_index: usize, mask: AddWatchFlags) -> Result<(), String> {
        match self.inotify.add_watch(path, mask) {
            Ok(wd) => {
                self.watched.insert(wd, (path.to_path_buf(), root_index));
                Ok(())
            }
            Err(nix::Error::ENOSPC) => Err(format!(
                "watch: the inotify watch limit is reached at {} (raise fs.inotify.max_user_watches, or ignore_watch more folders)",
                path.display()
            )),
            Err(e) => Err(format!("watch: cannot watch {}: {e}", path.display())),
        }
    }

    /// `dir` and every folder below it that is not ignored (symbolic links are not followed).
    fn add_dir(&mut self, dir: &Path, root_index: usize) -> Result<(), String> {
        self.add(dir, root_index, dir_mask())?;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(()); // gone or unreadable meanwhile: nothing below to watch
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && !self.ignored(&path, root_index) {
                self.add_dir(&path, root_index)?;
            }
        }
        Ok(())
    }

    fn ignored(&self, path: &Path, root_index: usize) -> bool {
        let root = &self.spec.paths[root_index];
        self.skip.iter().any(|log| is_log_file(log, path)) || self.ignore.matches(root, path)
    }

    /// The changed path an event is about, unless it is to be left alone.
    fn changed_path(&mut self, event: &nix::sys::inotify::InotifyEvent) -> Option<PathBuf> {
        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            // Events were lost: something changed.
            return self.spec.paths.first().cloned();
        }
        if event.mask.contains(AddWatchFlags::IN_IGNORED) {
            let (path, root_index) = self.watched.remove(&event.wd)?;
            // A watched file replaced by a rename (how editors save): watch the new one.
            if self.spec.paths[root_index] == path && path.is_file() {
                return self.add(&path, root_index, file_mask()).ok().map(|()| path);
            }
            return None;
        }
        let (watched, root_index) = self.watched.get(&event.wd)?.clone();
        let path = match &event.name {
            Some(name) => watched.join(name),
            None => watched,
        };
        if self.ignored(&path, root_index) {
            return None;
        }
        let new_dir = event.mask.contains(AddWatchFlags::IN_ISDIR)
            && event
                .mask
                .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO);
        if new_dir {
            if let Err(e) = self.add_dir(&path, root_index) {
                crate::dlog!("app {}: {e}", self.app);
            }
        }
        // pm2's --ext: only files with these extensions count. A new folder is a change when
        // it already holds such a file (written before its watch was in place).
        if !self.spec.extensions.is_empty() {
            let counts = if new_dir {
                self.holds_matching_file(&path, root_index)
            } else {
                has_extension(&path, &self.spec.extensions)
            };
            if !counts {
                return None;
            }
        }
        Some(path)
    }

    /// A file with one of `--ext`'s extensions somewhere under `dir` (not in ignored parts;
    /// looks at a bounded number of entries).
    fn holds_matching_file(&self, dir: &Path, root_index: usize) -> bool {
        let mut todo = vec![dir.to_path_buf()];
        let mut budget = 10_000;
        while let Some(dir) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                budget -= 1;
                if budget == 0 {
                    return true; // too big to tell: count it
                }
                let path = entry.path();
                if self.ignored(&path, root_index) {
                    continue;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    todo.push(path);
                } else if has_extension(&path, &self.spec.extensions) {
                    return true;
                }
            }
        }
        false
    }
}

fn has_extension(path: &Path, extensions: &[String]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// `path` is `log` itself, `log` per instance (`out.log` → `out-2.log`), or a rotation of
/// either (`out.log.3`, `out-2.log.3.gz`).
fn is_log_file(log: &Path, path: &Path) -> bool {
    if log.parent() != path.parent() {
        return false;
    }
    let (Some(log_name), Some(name)) = (log.file_name(), path.file_name()) else {
        return false;
    };
    let (log_name, name) = (log_name.to_string_lossy(), name.to_string_lossy());
    let itself_or_rotated = |base: &str| name == base || name.starts_with(&format!("{base}."));
    if itself_or_rotated(&log_name) {
        return true;
    }
    let stem = log
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = log
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    let Some(rest) = name.strip_prefix(&format!("{stem}-")) else {
        return false;
    };
    let index_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    index_len > 0 && {
        let per_instance = format!("{stem}-{}{ext}", &rest[..index_len]);
        itself_or_rotated(&per_instance)
    }
}

async fn read_changes(fd: AsyncFd<Tree>, events: UnboundedSender<InstanceEvent>) {
    let mut fd = fd;
    loop {
        let Ok(mut guard) = fd.readable_mut().await else {
            return;
        };
        let read = guard.get_inner().inotify.read_events();
        let batch = match read {
            Ok(batch) => batch,
            Err(nix::Error::EAGAIN) => {
                guard.clear_ready();
                continue;
            }
            Err(e) => {
                crate::dlog!("app {}: watch stopped: {e}", guard.get_inner().app);
                return;
            }
        };
        let tree = guard.get_inner_mut();
        let mut changed = None;
        for event in &batch {
            if let Some(path) = tree.changed_path(event) {
                changed.get_or_insert(path);
            }
        }
        let Some(path) = changed else { continue };
        let report = InstanceEvent::FileChanged {
            app: tree.app.clone(),
            path,
        };
        if events.send(report).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_own_log_files_and_only_those() {
        let log = Path::new("/app/out.log");
        for own in [
            "/app/out.log",
            "/app/out.log.3",
            "/app/out-2.log",
            "/app/out-12.log.1.gz",
        ] {
            assert!(is_log_file(log, Path::new(own)), "{own}");
        }
        for other in [
            "/app/output.js",
            "/app/out-x.log",
            "/app/sub/out.log",
            "/app/out-2.txt",
        ] {
            assert!(!is_log_file(log, Path::new(other)), "{other}");
        }
    }
}
