//! Which changed paths `watch` ignores (pm2's `ignore_watch`). A pattern without `/` is a name
//! or glob (`*`, `?`) matched against every part of the path below the watched directory; one
//! with `/` is matched against that relative path, or names a directory whose contents are all
//! ignored. `\.` is read as `.`, the one regex habit pm2 files often carry (`"\\.git"`).
//! A JavaScript RegExp (`ignore_watch: [/node_modules/]` in ecosystem.config.js, or
//! `{regexp: "/\\.log$/"}` in any file) is tested against the changed file's full path, as
//! chokidar does under pm2.

use std::path::{Path, PathBuf};

use crate::protocol::model::WatchSpec;

/// pm2's default, `/[\/\\]\.|node_modules/`: hidden files and folders, and node_modules.
pub fn default_ignore() -> Vec<String> {
    vec![".*".into(), "node_modules".into()]
}

/// A `watch` with pm2's defaults filled in: no path means the app's cwd, no ignore list means
/// `default_ignore()`. `ignore` holds names and globs, `ignore_regex` RegExp literals.
pub fn watch_spec(
    cwd: &Path,
    mut paths: Vec<PathBuf>,
    ignore: Option<(Vec<String>, Vec<String>)>,
    delay_ms: u64,
) -> WatchSpec {
    if paths.is_empty() {
        paths.push(cwd.to_path_buf());
    }
    let (ignore, ignore_regex) = ignore.unwrap_or_else(|| (default_ignore(), Vec::new()));
    WatchSpec {
        paths,
        ignore,
        ignore_regex,
        extensions: Vec::new(),
        delay_ms,
    }
}

/// A JavaScript RegExp literal (`/source/flags`) as a regex: `i`, `m` and `s` carry over, `g`,
/// `y`, `u`, `d` and `v` change nothing for a test. Err: why it cannot be used.
pub fn js_regex(literal: &str) -> Result<regex_lite::Regex, String> {
    let body = literal
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
        .filter(|(source, _)| !source.is_empty());
    let Some((source, flags)) = body else {
        return Err(format!(
            "`{literal}` is not a RegExp literal (/source/flags)"
        ));
    };
    let mut inline = String::new();
    for flag in flags.chars() {
        match flag {
            'i' | 'm' | 's' => inline.push(flag),
            'g' | 'y' | 'u' | 'd' | 'v' => {}
            other => return Err(format!("`{literal}`: unknown RegExp flag `{other}`")),
        }
    }
    let pattern = if inline.is_empty() {
        source.to_owned()
    } else {
        format!("(?{inline}){source}")
    };
    regex_lite::Regex::new(&pattern).map_err(|e| format!("`{literal}` cannot be used: {e}"))
}

/// A WatchSpec's ignore rules, compiled once.
pub struct Ignore {
    globs: Vec<String>,
    regexes: Vec<regex_lite::Regex>,
}

impl Ignore {
    /// The rules, and a message for each RegExp that does not compile (validated files never
    /// have one; such a rule is left out).
    pub fn new(spec: &WatchSpec) -> (Ignore, Vec<String>) {
        let mut problems = Vec::new();
        let regexes = spec
            .ignore_regex
            .iter()
            .filter_map(|literal| js_regex(literal).map_err(|e| problems.push(e)).ok())
            .collect();
        let ignore = Ignore {
            globs: spec.ignore.clone(),
            regexes,
        };
        (ignore, problems)
    }

    pub fn matches(&self, root: &Path, changed: &Path) -> bool {
        is_ignored(root, changed, &self.globs)
            || (!self.regexes.is_empty() && {
                let full = changed.to_string_lossy();
                self.regexes.iter().any(|re| re.is_match(&full))
            })
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

    #[test]
    fn javascript_regexps_test_the_full_path() {
        let spec = WatchSpec {
            paths: vec![PathBuf::from("/app")],
            ignore: vec!["logs".into()],
            extensions: Vec::new(),
            ignore_regex: vec![
                r"/node_modules/".into(),
                r"/(^|[\/\\])\../".into(),
                r"/\.SQLITE$/i".into(),
            ],
            delay_ms: 0,
        };
        let (rules, problems) = Ignore::new(&spec);
        assert!(problems.is_empty(), "{problems:?}");
        let root = Path::new("/app");
        assert!(rules.matches(root, Path::new("/app/node_modules/x.js")));
        assert!(rules.matches(root, Path::new("/app/src/.hidden")));
        assert!(rules.matches(root, Path::new("/app/data/db.sqlite")));
        assert!(
            rules.matches(root, Path::new("/app/logs/a.txt")),
            "globs still apply"
        );
        assert!(!rules.matches(root, Path::new("/app/src/server.js")));
        assert!(js_regex("/a/gu").is_ok());
        assert!(js_regex("/a/x").is_err_and(|e| e.contains("flag `x`")));
        assert!(js_regex("node_modules").is_err());
        assert!(js_regex("/(/").is_err_and(|e| e.contains("cannot be used")));
    }
}
