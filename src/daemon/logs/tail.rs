//! The last N lines of a log file, read backwards in blocks so a large file costs little.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const BLOCK: u64 = 64 * 1024;

/// Up to `lines` last lines (without newlines); an absent file has none.
pub fn last_lines(path: &Path, lines: usize) -> std::io::Result<Vec<String>> {
    if lines == 0 {
        return Ok(Vec::new());
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    // Read blocks from the end until we hold lines+1 newlines (or the whole file).
    while start > 0 && buf.iter().filter(|b| **b == b'\n').count() <= lines {
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0u8; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
        start = from;
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    // The first piece may be a partial line when we did not reach the file's start.
    let skip_partial = usize::from(start > 0);
    let usable = &all[skip_partial.min(all.len())..];
    Ok(usable[usable.len().saturating_sub(lines)..]
        .iter()
        .map(|s| s.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_small_and_large_files() {
        let dir = std::env::temp_dir().join(format!("rcluster-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a.log");
        let text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write");
        let got = last_lines(&path, 3).expect("tail");
        assert_eq!(got, vec!["line 49997", "line 49998", "line 49999"]);
        assert_eq!(last_lines(&path, 0).expect("tail"), Vec::<String>::new());
        std::fs::write(&path, "x\ny").expect("write");
        assert_eq!(last_lines(&path, 10).expect("tail"), vec!["x", "y"]);
        assert!(last_lines(&dir.join("absent"), 5).expect("tail").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
