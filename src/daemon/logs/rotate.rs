//! Built-in rotation (`log_max_size`, `log_rotate_daily`, `log_retain`, `log_compress`):
//! rename and reopen, done by the app's writer between two writes, so no line is lost or
//! written twice (pm2-logrotate copies then truncates, losing what comes in between).
//!
//! Naming: `web-out.log` is the live file, `web-out.log.1` the newest rotated one, then `.2`…
//! up to `.<retain>`; with compression `web-out.log.1.gz`… A file is compressed by a helper
//! thread after the rename (so the app is not held up); the next rotation waits for it.

use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::protocol::model::LogSpec;

/// Rotated files kept when rotation is on and `log_retain` is not given.
pub const DEFAULT_RETAIN: u32 = 10;

/// When and how an app's files rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_size: Option<u64>,
    pub daily: bool,
    pub retain: u32,
    pub compress: bool,
}

impl Policy {
    pub fn of(logs: &LogSpec) -> Policy {
        Policy {
            max_size: logs.max_size.filter(|s| *s > 0),
            daily: logs.rotate_daily,
            retain: logs.retain.unwrap_or(DEFAULT_RETAIN),
            compress: logs.compress,
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_size.is_some() || self.daily
    }
}

/// `web-out.log` → `web-out.log.3` or `web-out.log.3.gz`.
pub fn rotated_path(path: &Path, k: u32, gz: bool) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    if gz {
        name.push(".gz");
    }
    PathBuf::from(name)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Move the live file to `.1`, shifting older ones up and dropping what is past `retain`. The
/// caller has closed (or will not write to) the live file and reopens it afterwards.
/// Returns the path of the new `.1` (None when `retain` is 0: the file is removed).
pub fn shift(path: &Path, retain: u32) -> io::Result<Option<PathBuf>> {
    if retain == 0 {
        remove_if_there(path)?;
        return Ok(None);
    }
    for gz in [false, true] {
        remove_if_there(&rotated_path(path, retain, gz))?;
    }
    for k in (1..retain).rev() {
        for gz in [false, true] {
            rename_if_there(&rotated_path(path, k, gz), &rotated_path(path, k + 1, gz))?;
        }
    }
    let first = rotated_path(path, 1, false);
    std::fs::rename(path, &first)?;
    Ok(Some(first))
}

/// gzip `src` into `src.gz` (through a temporary name, so a half-written archive is never
/// taken for a whole one), then remove `src`. Runs on its own thread.
pub fn spawn_compress(src: PathBuf) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("rcluster-gzip".into())
        .spawn(move || {
            if let Err(e) = compress(&src) {
                crate::dlog!("cannot compress {}: {e}; left as is", src.display());
            }
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            crate::dlog!("cannot start compression: {e}; rotated logs stay uncompressed");
            None
        }
    }
}

pub fn compress(src: &Path) -> io::Result<()> {
    let gz = {
        let mut name = src.as_os_str().to_owned();
        name.push(".gz");
        PathBuf::from(name)
    };
    let tmp = {
        let mut name = gz.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    // Never led elsewhere by a link planted in a shared directory: the rotated file is opened
    // without following one, and the archive is a new file of our own (O_EXCL).
    let mut input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)?;
    let _ = std::fs::remove_file(&tmp);
    let out = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut encoder =
        flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
    let result = io::copy(&mut input, &mut encoder)
        .and_then(|_| encoder.finish())
        .and_then(|mut w| w.flush().map(|()| w))
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all());
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rcluster-rotate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn shifts_and_keeps_retain_files() {
        let dir = dir("shift");
        let live = dir.join("web-out.log");
        for round in 1..=4 {
            std::fs::write(&live, format!("round {round}\n")).expect("write");
            shift(&live, 2).expect("shift");
        }
        assert!(!live.exists());
        let read = |k| std::fs::read_to_string(rotated_path(&live, k, false)).expect("rotated");
        assert_eq!(read(1), "round 4\n");
        assert_eq!(read(2), "round 3\n");
        assert!(!rotated_path(&live, 3, false).exists());
        std::fs::write(&live, "x\n").expect("write");
        assert_eq!(shift(&live, 0).expect("shift"), None);
        assert!(!live.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn compresses_to_gz() {
        let dir = dir("gz");
        let src = dir.join("a.log.1");
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&src, &text).expect("write");
        compress(&src).expect("compress");
        assert!(!src.exists());
        let mut got = String::new();
        flate2::read::GzDecoder::new(File::open(dir.join("a.log.1.gz")).expect("gz"))
            .read_to_string(&mut got)
            .expect("gunzip");
        assert_eq!(got, text);
        // A compressed file shifts like a plain one.
        let live = dir.join("a.log");
        std::fs::write(&live, "new\n").expect("write");
        shift(&live, 3).expect("shift");
        assert!(dir.join("a.log.2.gz").exists() && dir.join("a.log.1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
