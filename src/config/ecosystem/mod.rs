//! Ecosystem files (PRODUCT.md §7): pm2's `ecosystem.config.{yml,yaml,json,js,cjs,mjs}` and
//! rcluster's additions, turned into validated [`AppSpec`]s. Called by the CLI for
//! `start|restart|reload|stop|delete <file>` and by `rcluster run <file>`.
//!
//! Every problem in the file is reported at once, each as `file:line:col: message` (`file:
//! message` where no position is known, as for JavaScript files), and nothing is returned while
//! any exists. What the file says that has no effect here comes back as notes.
//!
//! - `tree` (YAML) and `json`: text -> nodes with positions; `js`: `.js` files through `node`.
//! - `keys`: pm2's keys, aliases and no-effect keys; `values`: typed reads with positions.
//! - `build`: one app -> `AppSpec`, with `settings` (restart policy, logs, keys not in effect
//!   yet) and `cluster` (exec mode, instances, `port`/`listen`/`balance`, readiness).
//! - `top`: where the apps are (`apps:`, pm2's `pm2:`, a list, one app) and pm2's `static:`
//!   file servers; `across`: checks across apps (names, `depends_on`, cycles, `--only`); this
//!   file: the public API and reading the file (bounded in size).
//!
//! pm2 ignores keys it does not know: so does rcluster, with a warning (did-you-mean) for each;
//! `strict` makes them problems. Wrong types and values of known keys are always problems.
//!
//! Defaults worth knowing: `cwd` is the file's folder; relative `script` and log paths resolve
//! against the app's `cwd` (as pm2 does); `exec_mode` is cluster when `instances`, `listen` or
//! `balance` is given, fork otherwise (pm2 picks cluster when `instances` is given); `port: N`
//! listens on `0.0.0.0:N` in cluster mode and, in any mode, sets `PORT` unless `env` has it;
//! `readiness` probes every 500 ms with a 1000 ms timeout unless told otherwise.

mod across;
mod build;
mod cluster;
mod depth;
mod js;
mod json;
mod keys;

pub use keys::no_effect_reason;
mod settings;
mod top;
mod tree;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::protocol::model::AppSpec;
use tree::{Node, Pos};

/// What to take from the file: `--env <profile>` and `--only a,b`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Selects `env_<profile>`, merged over `env`.
    pub profile: Option<String>,
    /// App names to keep (empty = all; the CLI splits `--only a,b`). Every name must be in the
    /// file; with `append_env_to_name`, the name before or after the suffix.
    pub only: Vec<String>,
    /// Warnings (unknown keys) are problems.
    pub strict: bool,
}

/// The largest ecosystem file read (and the most JSON a JavaScript file may evaluate to): far
/// above any real file, and what a start request can carry.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// A valid file: its apps in file order (filtered by `--only`), and notes to show the user
/// (ignored `deploy:`, keys with no effect here, features not supported yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub apps: Vec<AppSpec>,
    pub notes: Vec<Diagnostic>,
    /// What pm2 would ignore silently (unknown keys): ignored, with a did-you-mean.
    pub warnings: Vec<Diagnostic>,
    /// What the file said that `AppSpec` has no field for yet, by app name (every app has one).
    pub extras: BTreeMap<String, AppExtras>,
}

/// Per-app settings parsed and validated, waiting for a field in `AppSpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppExtras {
    pub exec_mode: ExecMode,
    pub restart_after_errored_ms: Option<u64>,
}

/// pm2's `exec_mode`. Fork: instances do not share sockets (`cluster.listen` stays empty; `port`
/// only sets `PORT`). Cluster: they do, declared (`listen`, `port`) or found by the preload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecMode {
    #[default]
    Fork,
    Cluster,
}

/// One problem or note: `file:line:col: message`, or `file:line: message`, or `file: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", self.file, self.message)
            }
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Why nothing was loaded; callers may branch on it (a missing file is not a typo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Read,
    /// The file name has no extension rcluster reads.
    Format,
    /// A JavaScript file and no `node` on PATH.
    NeedsNode,
    /// `node` could not evaluate the JavaScript file.
    Evaluate,
    /// Not YAML/JSON at all.
    Syntax,
    /// Readable, but wrong: unknown keys, bad values, duplicate names, cycles...
    Invalid,
}

/// Every problem found, one per line, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.problems))]
pub struct EcosystemError {
    pub kind: ErrorKind,
    pub problems: Vec<Diagnostic>,
    /// Unknown keys found too (they would have been ignored), to show beside the problems.
    pub warnings: Vec<Diagnostic>,
}

fn join_lines(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads, validates and resolves an ecosystem file. See the module doc.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, EcosystemError> {
    let file = path.display().to_string();
    let fail = |kind, line: Option<usize>, column, message: String| EcosystemError {
        kind,
        problems: vec![Diagnostic {
            file: file.clone(),
            line,
            column,
            message,
        }],
        warnings: Vec::new(),
    };
    let absolute = absolute(path).map_err(|e| fail(ErrorKind::Read, None, None, e))?;
    let dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .unwrap_or_default();
    let read = || read_bounded(path).map_err(|message| fail(ErrorKind::Read, None, None, message));
    let mut read_as_js = false;
    let parsed = match extension {
        "yaml" | "yml" => tree::parse_yaml(&read()?),
        "json" => {
            let text = read()?;
            // Windows editors begin files with a byte order mark; JSON has no place for it.
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            match json::parse_json(text, true) {
                Ok(root) => Ok(root),
                // Not strict JSON: pm2 reads .json files as JavaScript, so do that; if node
                // cannot either, the strict parser's message (with its line) is the better one.
                Err(strict) => match js::evaluate_expression(&absolute) {
                    Ok(json) => {
                        read_as_js = true;
                        json::parse_json(&json, false)
                    }
                    Err(_) => Err(strict),
                },
            }
        }
        "js" | "cjs" | "mjs" => match js::evaluate(&absolute) {
            Ok(json) if json.len() as u64 > MAX_FILE_BYTES => {
                let message = format!(
                    "the apps it evaluates to are too large ({} of JSON, limit {})",
                    mib(json.len() as u64),
                    mib(MAX_FILE_BYTES)
                );
                return Err(fail(ErrorKind::Read, None, None, message));
            }
            Ok(json) => json::parse_json(&json, false),
            Err(js::JsError::NoNode) => {
                let message = "evaluating a JavaScript ecosystem file needs `node` on PATH; \
                               install Node.js or convert it to ecosystem.yaml";
                return Err(fail(ErrorKind::NeedsNode, None, None, message.into()));
            }
            Err(js::JsError::Failed {
                line,
                column,
                message,
            }) => {
                return Err(fail(ErrorKind::Evaluate, line, column, message));
            }
        },
        _ => {
            let message = "not an ecosystem file: use a .yaml, .yml, .json, .js, .cjs or .mjs file";
            return Err(fail(ErrorKind::Format, None, None, message.into()));
        }
    };
    let root = parsed.map_err(|e| syntax_error(&file, e))?;
    check_tree(file, &root, read_as_js, &dir, opts)
}

/// The formats [`load_text`] reads: the ones that need no program to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Yaml,
    Json,
}

/// Validates an ecosystem document given as text, as [`load`] does a file of that format in
/// `dir` (named `file` in messages). Strict JSON only: `load` alone hands other `.json` text to
/// node. The fuzz targets (`crate::fuzzing`) come in here.
pub fn load_text(
    file: &str,
    text: &str,
    format: TextFormat,
    dir: &Path,
    opts: &LoadOptions,
) -> Result<Loaded, EcosystemError> {
    let parsed = match format {
        TextFormat::Yaml => tree::parse_yaml(text),
        TextFormat::Json => json::parse_json(text.strip_prefix('\u{feff}').unwrap_or(text), true),
    };
    let root = parsed.map_err(|e| syntax_error(file, e))?;
    check_tree(file.to_owned(), &root, false, dir, opts)
}

fn syntax_error(file: &str, e: tree::SyntaxError) -> EcosystemError {
    EcosystemError {
        kind: ErrorKind::Syntax,
        problems: vec![Diagnostic {
            file: file.to_owned(),
            line: e.pos.map(|p| p.line),
            column: e.pos.map(|p| p.column),
            message: e.message,
        }],
        warnings: Vec::new(),
    }
}

/// A parsed document's apps, checked one by one and across, resolved against `dir`.
fn check_tree(
    file: String,
    root: &Node,
    read_as_js: bool,
    dir: &Path,
    opts: &LoadOptions,
) -> Result<Loaded, EcosystemError> {
    let mut ctx = Ctx {
        file,
        problems: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    };
    if read_as_js {
        ctx.note(
            None,
            "not strict JSON (comments, trailing commas or unquoted keys): read as JavaScript, as pm2 does",
        );
    }
    let apps = top::top_level(&mut ctx, root, dir);
    let drafts: Vec<build::Draft> = apps
        .listed
        .iter()
        .copied()
        .chain(apps.statics.iter())
        .enumerate()
        .filter_map(|(index, node)| build::app(&mut ctx, node, index, opts, dir))
        .collect();
    across::check_across(&mut ctx, &drafts, opts);
    if opts.strict {
        let warnings = std::mem::take(&mut ctx.warnings);
        ctx.problems.extend(warnings);
    }
    sort(&mut ctx.problems);
    sort(&mut ctx.notes);
    sort(&mut ctx.warnings);
    if !ctx.problems.is_empty() {
        return Err(EcosystemError {
            kind: ErrorKind::Invalid,
            problems: ctx.problems,
            warnings: ctx.warnings,
        });
    }
    let keep = |d: &build::Draft| {
        opts.only.is_empty()
            || opts
                .only
                .iter()
                .any(|o| *o == d.spec.name || *o == d.base_name)
    };
    let mut loaded = Loaded {
        apps: Vec::new(),
        notes: ctx.notes,
        warnings: ctx.warnings,
        extras: BTreeMap::new(),
    };
    for draft in drafts.into_iter().filter(keep) {
        loaded.extras.insert(draft.spec.name.clone(), draft.extras);
        loaded.apps.push(draft.spec);
    }
    Ok(loaded)
}

/// The file's text, refused past [`MAX_FILE_BYTES`] before it is read whole.
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let too_large = |size: u64| {
        format!(
            "the ecosystem file is too large ({}, limit {})",
            mib(size),
            mib(MAX_FILE_BYTES)
        )
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    // A pipe or a special file says nothing of its size: read one byte past the limit.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| format!("cannot read: not UTF-8 text ({e})"))
}

/// `10.0 MiB`.
fn mib(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10) / (1 << 20);
    if tenths % 10 == 0 {
        format!("{} MiB", tenths / 10)
    } else {
        format!("{}.{} MiB", tenths / 10, tenths % 10)
    }
}

/// Problems, warnings and notes of one load.
pub(super) struct Ctx {
    file: String,
    problems: Vec<Diagnostic>,
    notes: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx {
    fn diagnostic(&self, pos: Option<Pos>, message: String) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message,
        }
    }

    pub(super) fn error(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        let d = self.diagnostic(pos, message.into());
        self.problems.push(d);
    }

    /// What pm2 ignores: a warning, or a problem when strict.
    pub(super) fn warn(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        let d = self.diagnostic(pos, message.into());
        self.warnings.push(d);
    }

    pub(super) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub(super) fn note(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        let d = self.diagnostic(pos, message.into());
        self.notes.push(d);
    }
}

/// `, first at line 3` (or nothing when the first one has no position).
pub(super) fn first_at(pos: Option<Pos>) -> String {
    pos.map(|p| format!(" (first at line {})", p.line))
        .unwrap_or_default()
}

/// File order; problems without a position last, in the order found.
fn sort(list: &mut [Diagnostic]) {
    list.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
}

/// `path` made absolute against the current directory, `.` and `..` removed lexically (as
/// node's `path.resolve`; symlinks are kept).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(normalise(path));
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot find the current directory: {e}"))?;
    Ok(normalise(&cwd.join(path)))
}

/// Resolves `written` (a path from the file) against `base`: `~/` is the home directory.
pub(super) fn resolve(base: &Path, written: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let joined = match (written.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home,
        (Some(rest), Some(home)) if rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => base.join(written),
    };
    normalise(&joined)
}

/// `.` and `..` removed lexically.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            resolve(Path::new("/srv/app"), "./logs/../out.log"),
            PathBuf::from("/srv/app/out.log")
        );
        assert_eq!(
            resolve(Path::new("/srv/app"), "/var/log/x"),
            PathBuf::from("/var/log/x")
        );
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }

    #[test]
    fn diagnostics_display() {
        let d = |line, column| Diagnostic {
            file: "e.yaml".into(),
            line,
            column,
            message: "m".into(),
        };
        assert_eq!(d(Some(7), Some(5)).to_string(), "e.yaml:7:5: m");
        assert_eq!(d(Some(7), None).to_string(), "e.yaml:7: m");
        assert_eq!(d(None, None).to_string(), "e.yaml: m");
    }
}
