//! Did the previous daemon of this home stop cleanly? `<home>/daemon.run` exists while a
//! daemon runs (its pid and start time) and is removed when it stops through `kill` or a
//! termination signal. Found at start, it says the previous daemon was killed or crashed,
//! and its apps went with it: a new daemon must not look as if nothing had been running
//! (`ls` and `save` say so; `save` keeps the saved list). A daemon that comes back by itself
//! (issue #20) starts from here.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::paths::Home;

/// The daemon before this one, which did not stop cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousRun {
    pub pid: u32,
    pub started: SystemTime,
}

impl PreviousRun {
    /// What happened, in a sentence.
    pub fn what(&self) -> String {
        format!(
            "the previous daemon (pid {}, started {}) ended without `rcluster kill` (killed or crashed), and its apps with it",
            self.pid,
            crate::clock::format_utc(self.started)
        )
    }

    /// What `ls` tells the user; `saved` is the saved list's app names, if one reads.
    pub fn notice(&self, saved: Option<&[String]>) -> String {
        let what = self.what();
        match saved {
            Some(names) if !names.is_empty() => format!(
                "{what}; `rcluster resurrect` starts the saved list ({} app(s): {})",
                names.len(),
                names.join(", ")
            ),
            _ => format!("{what}; there is no saved list to resurrect"),
        }
    }
}

/// Record this daemon's run; the previous run, if it did not end cleanly.
pub fn begin(home: &Home) -> Option<PreviousRun> {
    let path = home.run_marker();
    let previous = fs::read_to_string(&path).ok().map(|text| parse(&text));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let ours = format!("{} {now}\n", std::process::id());
    if let Err(e) = write_private(&path, &ours) {
        crate::dlog!("cannot write {}: {e}", path.display());
    }
    previous
}

/// This daemon stops cleanly.
pub fn end(home: &Home) {
    let _ = fs::remove_file(home.run_marker());
}

/// A marker that does not read still means an unclean end.
fn parse(text: &str) -> PreviousRun {
    let mut words = text.split_whitespace();
    let pid = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let secs = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    PreviousRun {
        pid,
        started: UNIX_EPOCH + Duration::from_secs(secs),
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclean_end_is_found_by_the_next_daemon() {
        let dir = std::env::temp_dir().join(format!("rcluster-prev-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let home = Home::at(&dir);
        end(&home);
        assert_eq!(begin(&home), None, "a first start");
        let previous = begin(&home).expect("not ended: found");
        assert_eq!(previous.pid, std::process::id());
        end(&home);
        assert_eq!(begin(&home), None, "ended cleanly");
        let names = ["web".to_owned()];
        let notice = previous.notice(Some(&names));
        assert!(
            notice.contains("rcluster resurrect") && notice.contains("web"),
            "{notice}"
        );
        assert!(previous.notice(None).contains("no saved list"));
        let _ = fs::remove_dir_all(&dir);
    }
}
