//! Is a program statically linked? A static executable (Go, musl-static) has no PT_INTERP
//! program header, ignores LD_PRELOAD, and so cannot take round-robin dealing
//! (SOCKET-PASSING.md §5): it needs `shared` (LISTEN_FDS) or `proxy` (PORT).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const PT_INTERP: u32 = 3;

/// `Some(true)` static ELF, `Some(false)` dynamic ELF, `None` not an ELF file (a script...).
pub fn is_static_elf(path: &Path) -> Option<bool> {
    let mut file = File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).ok()?;
    if &header[..4] != b"\x7fELF" {
        return None;
    }
    let is_64 = header[4] == 2;
    let little = header[5] == 1;
    let u16_at = |b: &[u8], at: usize| -> u16 {
        let bytes = [b[at], b[at + 1]];
        if little {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        }
    };
    let u32_at = |b: &[u8], at: usize| -> u32 {
        let bytes = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    let u64_at = |b: &[u8], at: usize| -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&b[at..at + 8]);
        if little {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        }
    };
    let (phoff, phentsize, phnum) = if is_64 {
        (
            u64_at(&header, 0x20),
            u16_at(&header, 0x36),
            u16_at(&header, 0x38),
        )
    } else {
        (
            u64::from(u32_at(&header, 0x1c)),
            u16_at(&header, 0x2a),
            u16_at(&header, 0x2c),
        )
    };
    if phentsize < 4 || phnum > 512 {
        return None;
    }
    let mut entry = vec![0u8; usize::from(phentsize)];
    for i in 0..u64::from(phnum) {
        file.seek(SeekFrom::Start(phoff + i * u64::from(phentsize)))
            .ok()?;
        file.read_exact(&mut entry).ok()?;
        if u32_at(&entry, 0) == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_dynamic_from_scripts() {
        assert_eq!(is_static_elf(Path::new("/bin/sh")), Some(false));
        let script = std::env::temp_dir().join(format!("rcluster-elf-{}.sh", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\n").expect("write");
        assert_eq!(is_static_elf(&script), None);
        let _ = std::fs::remove_file(&script);
    }
}
