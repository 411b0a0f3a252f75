//! pm2's `ecosystem.config.js` (and `.cjs`/`.mjs`): the file is a program, so `node` evaluates
//! it (`require`, or `import()` for ES modules) and prints `JSON.stringify(module.exports)`; the
//! JSON is then validated like any other file. The config runs with the caller's environment and
//! working directory, as under pm2, so `process.env.X` and `__dirname` mean what they meant there.
//! The child is waited for with std::process: call this before any reaper starts.

use std::path::Path;
use std::process::{Command, Stdio};

/// Printed before the JSON, so that anything the config itself prints is skipped.
const MARK: &str = "\u{1}rcluster-ecosystem\u{1}";

const SCRIPT: &str = r#"
const MARK = '\u0001rcluster-ecosystem\u0001';
const file = process.argv[process.argv.length - 1];
// pm2 reads a .json file as a JavaScript expression: comments, trailing commas, unquoted keys.
const asExpression = process.argv[process.argv.length - 2] === '--expression';
const { pathToFileURL } = require('url');
const viaImport = () => import(pathToFileURL(file).href);
const load = async () => {
  if (asExpression) {
    const text = require('fs').readFileSync(file, 'utf8');
    return require('vm').runInThisContext('(' + text + '\n)', { filename: file, timeout: 1000 });
  }
  if (file.endsWith('.mjs')) return viaImport();
  try {
    return require(file);
  } catch (e) {
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) return viaImport();
    throw e;
  }
};
load().then((m) => {
  if (m && m[Symbol.toStringTag] === 'Module') m = m.default !== undefined ? m.default : { ...m };
  // A RegExp (ignore_watch) would print as {}: keep it as its literal.
  const json = JSON.stringify(m === undefined ? null : m,
    (k, v) => (v instanceof RegExp ? { regexp: v.toString() } : v));
  process.stdout.write('\n' + MARK + json + '\n', () => process.exit(0));
}, (e) => {
  process.stderr.write(String((e && e.stack) || e) + '\n', () => process.exit(1));
});
"#;

/// Why a JavaScript file could not be turned into JSON.
#[derive(Debug)]
pub enum JsError {
    NoNode,
    /// `line` (and `column`) when node's error names a place in the file (syntax errors do).
    Failed {
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
}

/// Evaluates the file with `node` from PATH and returns the JSON it exports.
pub fn evaluate(path: &Path) -> Result<String, JsError> {
    run(path, false)
}

/// Evaluates a `.json` file the way pm2 reads it, as one JavaScript expression (so comments,
/// trailing commas and unquoted keys pass), and returns it as strict JSON.
pub fn evaluate_expression(path: &Path) -> Result<String, JsError> {
    run(path, true)
}

fn run(path: &Path, as_expression: bool) -> Result<String, JsError> {
    let node = crate::config::interpreter::find_on_path("node").ok_or(JsError::NoNode)?;
    let mut command = Command::new(node);
    // `--` ends node's own options: what follows is the script's.
    command.arg("-e").arg(SCRIPT).arg("--");
    if as_expression {
        command.arg("--expression");
    }
    let output = command
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| JsError::Failed {
            line: None,
            column: None,
            message: format!("cannot run node: {e}"),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        if let Some((_, json)) = stdout.rsplit_once(MARK) {
            return Ok(json.trim().to_owned());
        }
    }
    Err(failure(path, &String::from_utf8_lossy(&output.stderr)))
}

/// node's report, boiled down to one line: `SyntaxError: Unexpected token ','`, with the line
/// (and the column, from node's caret) when node's first line is `<file>:<line>`.
fn failure(path: &Path, stderr: &str) -> JsError {
    let lines: Vec<&str> = stderr.lines().collect();
    // node names the file by its real path (symlinks resolved).
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let line = lines.first().and_then(|first| {
        let (name, line) = first.rsplit_once(':')?;
        let ours = Path::new(name) == path || Path::new(name) == real;
        ours.then(|| line.trim().parse::<usize>().ok()).flatten()
    });
    let column = line.and(lines.get(2)).and_then(|caret| {
        let at = caret.find('^')?;
        caret[..at]
            .trim()
            .is_empty()
            .then(|| caret[..at].chars().count() + 1)
    });
    let is_error_line = |l: &&str| {
        let head = l.split(':').next().unwrap_or_default();
        !head.is_empty() && head.ends_with("Error") && !head.contains(' ')
    };
    let summary = lines
        .iter()
        .copied()
        .find(is_error_line)
        .or_else(|| lines.iter().copied().find(|l| !l.trim().is_empty()))
        .map_or("node exited without printing the file's exports", |l| {
            l.trim()
        });
    JsError::Failed {
        line,
        column,
        message: format!("evaluating with node failed: {summary}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_keep_the_line() {
        let stderr = "/srv/eco.config.js:3\n  apps: [,\n         ^\n\nSyntaxError: Unexpected token ','\n    at x\n";
        match failure(Path::new("/srv/eco.config.js"), stderr) {
            JsError::Failed {
                line,
                column,
                message,
            } => {
                assert_eq!((line, column), (Some(3), Some(10)));
                assert_eq!(
                    message,
                    "evaluating with node failed: SyntaxError: Unexpected token ','"
                );
            }
            JsError::NoNode => panic!("not a missing node"),
        }
    }

    #[test]
    fn thrown_errors() {
        let stderr = "Error: Cannot find module 'dotenv'\nRequire stack:\n- /srv/eco.config.js\n";
        match failure(Path::new("/srv/eco.config.js"), stderr) {
            JsError::Failed {
                line,
                column,
                message,
            } => {
                assert_eq!((line, column), (None, None));
                assert_eq!(
                    message,
                    "evaluating with node failed: Error: Cannot find module 'dotenv'"
                );
            }
            JsError::NoNode => panic!("not a missing node"),
        }
    }
}
