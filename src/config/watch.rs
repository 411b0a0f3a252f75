//! Which changed paths `watch` ignores (pm2's `ignore_watch`). A pattern without `/` is a name
//! or glob (`*`, `?`) matched against every part of the path below the watched directory; one
//! with `/` is matched against that relative path, or names a directory whose contents are all
//! ignored. `\.` is read as `.`, the one regex habit pm2 files often carry (`"\\.git"`).

use std::path::{Path, PathBuf};

use crate::protocol::model::WatchSpec;

/// pm2's default, `/[\/\\]\.|node_modules/`: hidden files and folders, and node_modules.
pub fn default_ignore() -> Vec<String> {
    vec![".*".into(), "node_modules".into()]
}

/// A `watch` with pm2's defaults filled in: no path means the app's cwd, no ignore list means
/// `default_ignore()`.
pub fn watch_spec(
    cwd: &Path,
    mut paths: Vec<PathBuf>,
    ignore: Option<Vec<String>>,
    delay_ms: u64,
) -> WatchSpec {
    if paths.is_empty() {
        paths.push(cwd.to_path_buf());
    }
    WatchSpec {
        paths,
        ignore: ignore.unwrap_or_else(default_ignore),
        delay_ms,
    }
}

pub fn is_ignored(root: &Path, changed: &Path, patterns: &[String]) -> bool {
    let relative = match changed.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel,
        _ => match changed.file_name() {
            Some(name) => Path::new(name),
            None => return false,
        },
    };
    let text = relative.to_string_lossy();
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    patterns.iter().any(|raw| {
        let pattern = raw.trim().replace("\\.", ".");
        let pattern = pattern.trim_start_matches("./").trim_end_matches('/');
        if pattern.is_empty() {
            false
        } else if pattern.contains('/') {
            glob(pattern, &text) || text.starts_with(&format!("{pattern}/"))
        } else {
            parts.iter().any(|part| glob(pattern, part))
        }
    })
}

/// `*` any run of characters, `?` one character, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(changed: &str, patterns: &[&str]) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        is_ignored(Path::new("/app"), Path::new(changed), &patterns)
    }

    #[test]
    fn defaults_skip_hidden_parts_and_node_modules() {
        let defaults = default_ignore();
        let d: Vec<&str> = defaults.iter().map(String::as_str).collect();
        assert!(ignored("/app/.git/index", &d));
        assert!(ignored("/app/src/.server.js.swp", &d));
        assert!(ignored("/app/node_modules/x/index.js", &d));
        assert!(!ignored("/app/src/server.js", &d));
    }

    #[test]
    fn names_globs_and_relative_paths() {
        assert!(ignored("/app/logs/out.log", &["logs"]));
        assert!(ignored("/app/src/debug.log", &["*.log"]));
        assert!(ignored("/app/dist/a/b.js", &["dist/"]));
        assert!(ignored("/app/dist/a.js", &["./dist/*.js"]));
        assert!(ignored("/app/.git/HEAD", &["\\.git"]));
        assert!(!ignored("/app/src/logs.js", &["logs"]));
        assert!(!ignored("/app/src/app.js", &["*.log", "dist/"]));
        assert!(glob("a*b?c", "axxbyc") && !glob("a*b?c", "axxbc") && glob("*", ""));
    }
}
