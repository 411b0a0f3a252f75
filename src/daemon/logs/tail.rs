//! The last N lines of a log file for `logs`: the start is found by reading backwards in
//! blocks (counting newlines, keeping nothing), then the lines are read forwards in chunks, so
//! `--lines 1000000` on a large file costs the daemon one block of memory, not the whole tail.
//! Reading stops at the length the file had when the tail began (the live feed has the rest).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const BLOCK: usize = 64 * 1024;
/// Lines longer than this are shown cut (the file keeps them whole): a frame stays well under
/// `MAX_FRAME` even when JSON escaping blows the text up.
pub const DISPLAY_LINE: usize = 256 * 1024;
/// A chunk (one `LogTail` frame) holds about this many bytes of lines.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNK_LINES: usize = 4096;

/// A line for display: lossy UTF-8, cut at `DISPLAY_LINE` with a note.
pub fn display_line(line: &[u8]) -> String {
    if line.len() <= DISPLAY_LINE {
        return String::from_utf8_lossy(line).into_owned();
    }
    let mut text = String::from_utf8_lossy(&line[..DISPLAY_LINE]).into_owned();
    text.push_str(&format!(
        " [rcluster: {} more bytes in the file]",
        line.len() - DISPLAY_LINE
    ));
    text
}

/// Reads the last lines of a file forwards, a chunk of lines at a time.
pub struct Tail {
    file: Option<File>,
    pos: u64,
    end: u64,
    carry: Vec<u8>,
    /// Bytes of the carried partial line that were not kept (past `DISPLAY_LINE`).
    dropped: usize,
}

/// The last `lines` lines of `path` (an absent file has none).
pub fn tail(path: &Path, lines: usize) -> std::io::Result<Tail> {
    let mut file = match super::open::open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Tail {
                file: None,
                pos: 0,
                end: 0,
                carry: Vec::new(),
                dropped: 0,
            })
        }
        Err(e) => return Err(e),
    };
    let end = file.metadata()?.len();
    let pos = start_of_last_lines(&mut file, end, lines)?;
    Ok(Tail {
        file: Some(file),
        pos,
        end,
        carry: Vec::new(),
        dropped: 0,
    })
}

/// Offset of the first of the last `lines` lines among the file's first `end` bytes.
fn start_of_last_lines(file: &mut File, end: u64, lines: usize) -> std::io::Result<u64> {
    if lines == 0 {
        return Ok(end);
    }
    let mut block = vec![0u8; BLOCK];
    let mut at = end;
    let mut seen = 0;
    // The newline that ends the last line does not start a line.
    let mut skip_last = true;
    while at > 0 {
        let from = at.saturating_sub(BLOCK as u64);
        let len = (at - from) as usize;
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block[..len])?;
        for i in (0..len).rev() {
            if block[i] != b'\n' {
                skip_last = false;
                continue;
            }
            if std::mem::take(&mut skip_last) {
                continue;
            }
            seen += 1;
            if seen == lines {
                return Ok(from + i as u64 + 1);
            }
        }
        at = from;
    }
    Ok(0)
}

impl Tail {
    /// Carry part of a line to the next block: what a display line can show, and its length.
    fn keep(&mut self, part: &[u8]) {
        let room = (DISPLAY_LINE + 1).saturating_sub(self.carry.len());
        let kept = part.len().min(room);
        self.carry.extend_from_slice(&part[..kept]);
        self.dropped += part.len() - kept;
    }

    fn take_carry(&mut self) -> String {
        let mut line = std::mem::take(&mut self.carry);
        let dropped = std::mem::take(&mut self.dropped);
        if dropped == 0 {
            return display_line(&line);
        }
        // Only the length matters past the display limit.
        let more = line.len() + dropped - DISPLAY_LINE;
        line.truncate(DISPLAY_LINE);
        let mut text = String::from_utf8_lossy(&line).into_owned();
        text.push_str(&format!(" [rcluster: {more} more bytes in the file]"));
        text
    }
}

impl Iterator for Tail {
    type Item = std::io::Result<Vec<String>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut file = self.file.take()?;
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut block = vec![0u8; BLOCK];
        let mut done = false;
        while bytes < CHUNK_BYTES && out.len() < CHUNK_LINES {
            if self.pos >= self.end {
                if !self.carry.is_empty() {
                    // A last line without a newline.
                    out.push(self.take_carry());
                }
                done = true;
                break;
            }
            let len = ((self.end - self.pos) as usize).min(BLOCK);
            if let Err(e) = file
                .seek(SeekFrom::Start(self.pos))
                .and_then(|_| file.read_exact(&mut block[..len]))
            {
                return Some(Err(e));
            }
            self.pos += len as u64;
            let mut rest = &block[..len];
            while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                let line = if self.carry.is_empty() {
                    display_line(&rest[..nl])
                } else {
                    self.keep(&rest[..nl]);
                    self.take_carry()
                };
                bytes += line.len();
                out.push(line);
                rest = &rest[nl + 1..];
            }
            self.keep(rest);
        }
        if !done {
            self.file = Some(file);
        } else if out.is_empty() {
            return None;
        }
        Some(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(path: &Path, lines: usize) -> Vec<String> {
        tail(path, lines)
            .expect("tail")
            .flat_map(|chunk| chunk.expect("chunk"))
            .collect()
    }

    #[test]
    fn tails_small_and_large_files() {
        let dir = std::env::temp_dir().join(format!("rcluster-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a.log");
        let text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write");
        assert_eq!(
            all(&path, 3),
            vec!["line 49997", "line 49998", "line 49999"]
        );
        assert_eq!(all(&path, 0), Vec::<String>::new());
        let every = all(&path, 1_000_000);
        assert_eq!(every.len(), 50_000);
        assert_eq!(every[0], "line 0");
        assert!(tail(&path, 50_000).expect("tail").count() > 1, "in chunks");
        std::fs::write(&path, "x\ny").expect("write");
        assert_eq!(all(&path, 10), vec!["x", "y"]);
        assert_eq!(all(&path, 1), vec!["y"]);
        assert!(all(&dir.join("absent"), 5).is_empty());
        let long = "z".repeat(DISPLAY_LINE + 10);
        std::fs::write(&path, format!("{long}\nend\n")).expect("write");
        let got = all(&path, 2);
        assert!(got[0].ends_with("[rcluster: 10 more bytes in the file]"));
        assert_eq!(got[1], "end");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
