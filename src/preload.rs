//! The LD_PRELOAD library that lets unmodified servers take connections dealt by the daemon.
//!
//! `preload/rcluster_preload.c` is compiled by `build.rs` and embedded here, so the one
//! `rcluster` binary carries it. The daemon writes it to disk once with [`install`] and starts
//! instances with `LD_PRELOAD=<that path>` plus the variables described in [`crate::abi`].
//!
//! The file name carries a hash of the content (`librcluster-preload-<16 hex>.so`): a new build
//! never overwrites a library that running instances have mapped, and two builds can share a
//! directory. The hash is FNV-1a 64, chosen because it is stable across Rust versions (std's
//! `DefaultHasher` is not).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The compiled preload library (a Linux shared object; empty on other targets).
pub const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/librcluster_preload.so"));

/// FNV-1a, 64 bits: the content hash in the installed file name.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The file name [`install`] uses: `librcluster-preload-<16 hex digits of fnv1a64(LIBRARY)>.so`.
pub fn file_name() -> String {
    format!("librcluster-preload-{:016x}.so", fnv1a64(LIBRARY))
}

/// Writes [`LIBRARY`] into `dir` (created if missing) and returns the path of the file.
///
/// Does nothing if a file of that name and the right size is already there. Otherwise writes a
/// temporary file in `dir` and renames it into place, so a concurrent reader (another daemon, a
/// starting instance) never sees a partial library. Mode 0755.
pub fn install(dir: &Path) -> io::Result<PathBuf> {
    if LIBRARY.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the preload library is only built for Linux",
        ));
    }
    let name = file_name();
    let path = dir.join(&name);
    if let Ok(meta) = fs::metadata(&path) {
        if meta.is_file() && meta.len() == LIBRARY.len() as u64 {
            return Ok(path);
        }
    }
    fs::create_dir_all(dir)?;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{name}.{}.{}.{nanos}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_new(&tmp).and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

fn write_new(path: &Path) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)?;
    file.write_all(LIBRARY)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn library_is_an_elf_shared_object() {
        assert!(LIBRARY.starts_with(b"\x7fELF"), "not an ELF file");
    }

    #[test]
    fn install_writes_once_and_is_idempotent() {
        let dir = std::env::temp_dir().join(format!(
            "rcluster-preload-unit-{}-{}",
            std::process::id(),
            fnv1a64(file!().as_bytes())
        ));
        let _ = fs::remove_dir_all(&dir);
        let first = install(&dir).expect("install");
        assert_eq!(
            first.file_name().and_then(|n| n.to_str()),
            Some(&*file_name())
        );
        assert_eq!(fs::read(&first).expect("read back"), LIBRARY);
        let modified = fs::metadata(&first).and_then(|m| m.modified()).ok();
        let second = install(&dir).expect("install again");
        assert_eq!(first, second);
        assert_eq!(
            fs::metadata(&second).and_then(|m| m.modified()).ok(),
            modified
        );
        // A truncated file of that name is replaced.
        fs::write(&first, b"short").expect("truncate");
        install(&dir).expect("repair");
        assert_eq!(fs::read(&first).expect("read back"), LIBRARY);
        // No temporary files left behind.
        let leftovers = fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
