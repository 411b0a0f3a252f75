//! Opening log files without being led elsewhere. A declared file may sit in a directory other
//! users can write (`/tmp`, a shared folder): there, someone could plant a symbolic link to a
//! file rcluster's user can write (its output would be appended to it) or a file of their own
//! (they would read the app's output). So, as the kernel's `protected_symlinks` and
//! `protected_regular` do (often off) and as systemd and logrotate do:
//! - in such a directory the file is opened with `O_NOFOLLOW`, must belong to rcluster's user
//!   and have a single link;
//! - a symbolic link on the way there, in such a directory, is followed only when it belongs to
//!   rcluster's user or to the directory's owner.
//!
//! Elsewhere (the home's `logs/`, `/var/log/app`, `/dev/stdout` for `rcluster run`) links are
//! followed as usual. The writer opens every file through here, at start (`check_paths`: a
//! path that cannot be opened refuses the app with its cause) and at every reopen.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::protocol::model::AppSpec;
use crate::protocol::response::Stream;

/// Why a log file was not opened.
#[derive(Debug)]
pub enum OpenError {
    /// The OS refused (no such directory, permission denied, is a directory, disk full...).
    Os(PathBuf, io::Error),
    /// A link in a directory others can write, not owned by us or by the directory's owner.
    PlantedLink { link: PathBuf, owner: u32 },
    /// The file itself is a link in a shared directory.
    LinkedFile(PathBuf),
    /// The file belongs to another user, in a shared directory.
    ForeignFile { path: PathBuf, owner: u32 },
    /// The file has other names (hard links), in a shared directory.
    HardLinked { path: PathBuf, links: u64 },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let me = nix::unistd::geteuid().as_raw();
        match self {
            OpenError::Os(path, e) => write!(f, "cannot open log file {}: {}", path.display(), describe(e)),
            OpenError::PlantedLink { link, owner } => write!(
                f,
                "log file path goes through {}, a symbolic link of uid {owner} in a directory other users can write; rcluster (uid {me}) does not follow it",
                link.display()
            ),
            OpenError::LinkedFile(path) => write!(
                f,
                "log file {} is a symbolic link in a directory other users can write; rcluster does not follow it (give the link's target, or another directory)",
                path.display()
            ),
            OpenError::ForeignFile { path, owner } => write!(
                f,
                "log file {} belongs to uid {owner}, not to rcluster's user (uid {me}), in a directory other users can write: its owner could read or replace the output; remove it or choose another path",
                path.display()
            ),
            OpenError::HardLinked { path, links } => write!(
                f,
                "log file {} has {links} names (hard links) in a directory other users can write; rcluster writes only to a file of its own",
                path.display()
            ),
        }
    }
}

/// An OS error in words, without Rust's `(os error N)`.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    };
    text.to_lowercase()
}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> io::Error {
        match e {
            OpenError::Os(_, e) => e,
            other => io::Error::new(io::ErrorKind::PermissionDenied, other.to_string()),
        }
    }
}

/// A directory other users may write (world-writable, or sticky like /tmp).
fn shared(dir: &Path) -> Option<std::fs::Metadata> {
    let meta = std::fs::metadata(dir).ok()?;
    (meta.mode() & 0o1002 != 0).then_some(meta)
}

/// The kernel's `protected_symlinks` rule on every component of `path`'s parent: a link in a
/// shared directory is followed only if it is ours or the directory owner's.
fn check_links_on_the_way(path: &Path) -> Result<(), OpenError> {
    let me = nix::unistd::geteuid().as_raw();
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    for component in parent.ancestors() {
        let (Some(dir), Ok(meta)) = (component.parent(), std::fs::symlink_metadata(component))
        else {
            continue;
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        if let Some(dir_meta) = shared(dir) {
            if meta.uid() != me && meta.uid() != dir_meta.uid() {
                return Err(OpenError::PlantedLink {
                    link: component.to_owned(),
                    owner: meta.uid(),
                });
            }
        }
    }
    Ok(())
}

/// Open `path` for appending (created 0600 if missing, with its missing directories).
pub fn open_append(path: &Path) -> Result<File, OpenError> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    open_checked(path, true)
}

/// Open an existing `path` for writing (to truncate it); None when it does not exist.
pub fn open_existing(path: &Path) -> Result<Option<File>, OpenError> {
    match open_checked(path, false) {
        Err(OpenError::Os(_, e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

/// Open `path` for reading (`logs` tails): the same rules, so a planted link shows nothing.
pub fn open_read(path: &Path) -> io::Result<File> {
    check_links_on_the_way(path)?;
    let guarded = path.parent().and_then(shared).is_some();
    let mut options = OpenOptions::new();
    options.read(true);
    if guarded {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if guarded && e.kind() != io::ErrorKind::NotFound => {
            return Err(diagnose(path, e).into())
        }
        Err(e) => return Err(e),
    };
    if guarded {
        check_own(&file, path)?;
    }
    Ok(file)
}

fn open_checked(path: &Path, create: bool) -> Result<File, OpenError> {
    check_links_on_the_way(path)?;
    let guarded = path.parent().and_then(shared).is_some();
    let mut options = OpenOptions::new();
    options.append(true).create(create).mode(0o600);
    if guarded {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        // O_NOFOLLOW refuses a link with ELOOP, or EACCES with O_CREAT in a sticky directory.
        Err(e) if guarded => return Err(diagnose(path, e)),
        Err(e) => return Err(OpenError::Os(path.to_owned(), e)),
    };
    if guarded {
        check_own(&file, path)?;
    }
    Ok(file)
}

/// Why a file in a shared directory could not be opened: a link or someone else's file is said
/// so; anything else is the OS's reason.
fn diagnose(path: &Path, e: io::Error) -> OpenError {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => OpenError::LinkedFile(path.to_owned()),
        Ok(meta) if meta.uid() != nix::unistd::geteuid().as_raw() => OpenError::ForeignFile {
            path: path.to_owned(),
            owner: meta.uid(),
        },
        _ => OpenError::Os(path.to_owned(), e),
    }
}

/// In a shared directory: the file is ours, with one name.
fn check_own(file: &File, path: &Path) -> Result<(), OpenError> {
    let meta = file
        .metadata()
        .map_err(|e| OpenError::Os(path.to_owned(), e))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(OpenError::ForeignFile {
            path: path.to_owned(),
            owner: meta.uid(),
        });
    }
    if meta.is_file() && meta.nlink() > 1 {
        return Err(OpenError::HardLinked {
            path: path.to_owned(),
            links: meta.nlink(),
        });
    }
    Ok(())
}

/// Every file `spec` writes, opened once now: the first that cannot be, with its cause (for
/// `start`: refusing the app beats discarding every line it will write).
pub fn check_paths(home: &crate::paths::Home, spec: &AppSpec) -> Result<(), String> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for index in 0..spec.instances {
        for stream in [Stream::Out, Stream::Err] {
            paths.extend(super::log_path(home, spec, stream, index));
        }
    }
    paths.extend(
        spec.logs
            .log_file
            .clone()
            .filter(|p| p.as_os_str() != "/dev/null"),
    );
    paths.sort();
    paths.dedup();
    for path in paths {
        open_append(&path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_words() {
        let e = io::Error::from_raw_os_error(libc::EISDIR);
        assert_eq!(describe(&e), "is a directory");
        let e = OpenError::Os(PathBuf::from("/tmp"), e);
        assert_eq!(e.to_string(), "cannot open log file /tmp: is a directory");
    }
}
