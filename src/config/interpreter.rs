//! How a pm2 `script` becomes a command: the interpreter pm2 picks by extension (`.js` -> node,
//! `.py` -> python3, `.sh` -> bash, ...), an explicit `interpreter` (`none` = run the file itself),
//! and command-line strings (`"python3 -m http.server 8000"`), which are split into a program and
//! arguments when they have no shell syntax, so that the program is exec'd directly and
//! `LISTEN_PID` is its own pid (PRODUCT.md, Corrections), and run by the shell otherwise.
//! Used by the ecosystem loader and by `rcluster start "cmd string"`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::protocol::model::CommandSpec;

/// The interpreter pm2 would pick for a script file by its extension, `None` to run it directly.
/// pm2 says `python`; `python3` is what exists on current systems. TypeScript runs with bun as
/// under pm2, or with node (its type stripping) when there is no bun.
pub fn default_interpreter(script: &str) -> Option<&'static str> {
    let ext = Path::new(script).extension()?.to_str()?;
    Some(match ext {
        "js" | "cjs" | "mjs" => "node",
        "py" => "python3",
        "sh" => "bash",
        "rb" => "ruby",
        "php" => "php",
        "pl" => "perl",
        "coffee" => "coffee",
        "ls" => "lsc",
        "ts" | "tsx" if find_on_path("bun").is_some() => "bun",
        "ts" | "tsx" => "node",
        _ => return None,
    })
}

/// An executable file called `name` in a directory of $PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How to run a script file with no interpreter by extension and no exec bit (`bin/www` out of a
/// zip): the interpreter its `#!` line names (as the kernel reads it: a program and at most one
/// argument), else node if it is text, as pm2 does; `None` for an executable or binary file, which
/// runs (or fails) as it is.
fn unexecutable_script(path: &Path) -> Option<Vec<String>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 != 0 {
        return None;
    }
    let mut head = [0u8; 512];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let head = &head[..n];
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = std::str::from_utf8(line).ok()?.trim();
        let (program, arg) = match line.split_once([' ', '\t']) {
            Some((program, arg)) => (program, arg.trim()),
            None => (line, ""),
        };
        if program.is_empty() {
            return None;
        }
        // `#!/usr/bin/env node`: the program itself, found on PATH as env would find it (so
        // that a Node program is seen as one: its IPC channel, `process.send('ready')`).
        if Path::new(program).file_name().is_some_and(|n| n == "env")
            && !arg.is_empty()
            && !arg.starts_with('-')
            && !arg.contains([' ', '\t'])
        {
            return Some(vec![arg.to_owned()]);
        }
        let mut words = vec![program.to_owned()];
        if !arg.is_empty() {
            words.push(arg.to_owned());
        }
        return Some(words);
    }
    (!head.contains(&0)).then(|| vec!["node".to_owned()])
}

/// Whether `script` is a command line (`"python3 -m http.server 8000"`) rather than a file: it
/// has whitespace and no interpreter other than `none` was asked for.
pub fn is_command_line(script: &str, interpreter: Option<&str>) -> bool {
    matches!(interpreter, None | Some("none")) && script.trim().contains([' ', '\t', '\n'])
}

/// The command for a pm2 app: see the module doc. `node_args` then `interpreter_args` go between
/// the interpreter and the script; `args` after the script.
pub fn command_for(
    script: &str,
    args: Vec<String>,
    interpreter: Option<&str>,
    interpreter_args: Vec<String>,
    node_args: Vec<String>,
) -> CommandSpec {
    if !is_command_line(script, interpreter) {
        return command_for_file(script, args, interpreter, interpreter_args, node_args);
    }
    match split_command_line(script) {
        Some(mut words) if !words.is_empty() => {
            let program = words.remove(0);
            words.extend(args);
            CommandSpec::Exec {
                program,
                args: words,
            }
        }
        _ => {
            let mut line = script.trim().to_owned();
            for arg in &args {
                line.push(' ');
                line.push_str(&shell_quote(arg));
            }
            CommandSpec::Shell { script: line }
        }
    }
}

/// [`command_for`] for a script known to be a file (a path with spaces stays one path).
pub fn command_for_file(
    script: &str,
    args: Vec<String>,
    interpreter: Option<&str>,
    interpreter_args: Vec<String>,
    node_args: Vec<String>,
) -> CommandSpec {
    let chosen = match interpreter.map(str::trim) {
        Some("none") => None,
        Some(explicit) if !explicit.is_empty() => Some(explicit),
        _ => default_interpreter(script),
    };
    let Some(chosen) = chosen else {
        if interpreter.is_none() {
            if let Some(mut words) = unexecutable_script(Path::new(script)) {
                let program = words.remove(0);
                words.extend(interpreter_args);
                words.push(script.to_owned());
                words.extend(args);
                return CommandSpec::Exec {
                    program,
                    args: words,
                };
            }
        }
        return CommandSpec::Exec {
            program: script.to_owned(),
            args,
        };
    };
    // `interpreter: "/usr/bin/env python3"` names a program and its first arguments.
    let mut words = split_words(chosen).unwrap_or_else(|_| vec![chosen.to_owned()]);
    if words.is_empty() {
        words.push(chosen.to_owned());
    }
    let program = words.remove(0);
    words.extend(node_args);
    words.extend(interpreter_args);
    words.push(script.to_owned());
    words.extend(args);
    CommandSpec::Exec {
        program,
        args: words,
    }
}

/// Node's flag for source-mapped stack traces (pm2 turns source maps on for Node apps).
pub const SOURCE_MAPS: &str = "--enable-source-maps";

/// Source-mapped stack traces for a Node app, as pm2 gives them: when `node` runs `script` and
/// a `<script>.map` lies beside it (a transpiled build), or when asked (`Some(true)`, pm2's
/// `source_map_support`), `--enable-source-maps` goes before the script; `Some(false)` (pm2's
/// `disable_source_map_support`) leaves the command alone, as does a flag already there.
pub fn with_source_maps(command: CommandSpec, script: &Path, wanted: Option<bool>) -> CommandSpec {
    let CommandSpec::Exec { program, mut args } = command else {
        return command;
    };
    let is_node = Path::new(&program)
        .file_name()
        .is_some_and(|n| n == "node" || n == "nodejs");
    let at = args.iter().position(|a| Path::new(a) == script);
    let mut map = script.as_os_str().to_owned();
    map.push(".map");
    let wanted = wanted.unwrap_or_else(|| Path::new(&map).is_file());
    if let (true, true, Some(at)) = (is_node, wanted, at) {
        let given = args[..at]
            .iter()
            .any(|a| a == SOURCE_MAPS || a == "--no-enable-source-maps");
        if !given {
            args.insert(0, SOURCE_MAPS.to_owned());
        }
    }
    CommandSpec::Exec { program, args }
}

/// Splits a command line into words with the shell's quoting rules (`'…'`, `"…"`, `\`), or `None`
/// when it needs a shell: pipes, redirections, `;`, `&`, expansions (`$`, `` ` ``, globs, `~`,
/// braces), comments, a newline, leading `VAR=value` assignments or a shell builtin such as `cd`;
/// also `None` for an empty line or an unterminated quote (the shell will say what is wrong).
/// A leading `exec` is dropped: the program is exec'd anyway.
pub fn split_command_line(line: &str) -> Option<Vec<String>> {
    let words = lex(line, true).ok()?;
    let first = words.first()?;
    if !first.quoted && is_assignment(&first.text) {
        return None;
    }
    if !first.quoted && SHELL_WORDS.contains(&first.text.as_str()) {
        return None;
    }
    let mut words: Vec<String> = words.into_iter().map(|w| w.text).collect();
    if words.len() > 1 && words[0] == "exec" && !words[1].starts_with('-') {
        words.remove(0);
    }
    Some(words)
}

/// Splits a string into words with the shell's quoting rules and nothing else: `*`, `$` or `;` are
/// plain characters. For pm2's `args: "--port 80 --name 'my app'"`, which no shell sees.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    lex(text, false).map(|words| words.into_iter().map(|w| w.text).collect())
}

/// Quotes `arg` for `sh` when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Builtins and keywords: a command line starting with one of these is shell code.
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "alias", "bg", "break", "case", "cd", "continue", "do", "done", "elif", "else",
    "esac", "eval", "exit", "export", "fg", "fi", "for", "function", "if", "jobs", "local", "read",
    "readonly", "return", "select", "set", "shift", "source", "then", "trap", "ulimit", "umask",
    "unset", "until", "wait", "while",
];

/// Characters that make an unquoted command line shell code.
const SHELL_SYNTAX: &str = "|&;<>()$`*?[]{}~#\n";

struct Word {
    text: String,
    /// Whether any part of the word was quoted or escaped (`'cd'` is not the builtin).
    quoted: bool,
}

/// The shell's word splitting and quote removal. With `strict`, shell syntax is an error (the
/// caller wants to know that a shell is needed); without, it is literal text.
fn lex(text: &str, strict: bool) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' if !(strict && c == '\n') => {
                words.extend(current.take());
            }
            '\'' => {
                let word = current.get_or_insert_with(new_word);
                word.quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => word.text.push(inner),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let word = current.get_or_insert_with(new_word);
                word.quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$' | '`') if strict => return Err("expansion".into()),
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(escaped @ ('$' | '`' | '"' | '\\')) => word.text.push(escaped),
                            Some(other) => {
                                word.text.push('\\');
                                word.text.push(other);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(inner) => word.text.push(inner),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                let word = current.get_or_insert_with(new_word);
                word.quoted = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(escaped) => word.text.push(escaped),
                    None => return Err("a backslash ends the string".into()),
                }
            }
            _ if strict && SHELL_SYNTAX.contains(c) => return Err("shell syntax".into()),
            _ => current.get_or_insert_with(new_word).text.push(c),
        }
    }
    words.extend(current);
    Ok(words)
}

fn new_word() -> Word {
    Word {
        text: String::new(),
        quoted: false,
    }
}

/// `NAME=value`, the shell's variable assignment.
fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(program: &str, args: &[&str]) -> CommandSpec {
        CommandSpec::Exec {
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn files_without_the_exec_bit_run_like_pm2_runs_them() {
        let dir = std::env::temp_dir().join(format!("rcl-interp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let write = |name: &str, body: &[u8], mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, body).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path.to_str().expect("utf-8").to_owned()
        };
        let www = write("www", b"#!/usr/bin/env node\nrequire('x')\n", 0o644);
        assert_eq!(
            command_for_file(&www, strings(&["-p"]), None, Vec::new(), Vec::new()),
            exec("node", &[&www, "-p"]),
            "the program `#!/usr/bin/env` names"
        );
        let bash = write("job", b"#!/bin/bash -e\nsleep 1\n", 0o644);
        assert_eq!(
            command_for_file(&bash, Vec::new(), None, Vec::new(), Vec::new()),
            exec("/bin/bash", &["-e", &bash]),
            "the #! line's program and its one argument"
        );
        let plain = write("server", b"console.log(1)\n", 0o644);
        assert_eq!(
            command_for_file(&plain, Vec::new(), None, Vec::new(), Vec::new()),
            exec("node", &[&plain]),
            "pm2 runs a text file with node"
        );
        let runnable = write("tool", b"#!/bin/sh\necho\n", 0o755);
        assert_eq!(
            command_for_file(&runnable, Vec::new(), None, Vec::new(), Vec::new()),
            exec(&runnable, &[]),
            "an executable runs as it is"
        );
        let binary = write("blob", b"\x7fELF\x02\x01\x00\x00", 0o644);
        assert_eq!(
            command_for_file(&binary, Vec::new(), None, Vec::new(), Vec::new()),
            exec(&binary, &[]),
            "a binary without the exec bit fails as it is, with its own error"
        );
        assert_eq!(
            command_for_file(&plain, Vec::new(), Some("none"), Vec::new(), Vec::new()),
            exec(&plain, &[]),
            "interpreter: none is obeyed"
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(default_interpreter("a.coffee"), Some("coffee"));
        assert!(matches!(default_interpreter("a.ts"), Some("bun" | "node")));
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn interpreters_by_extension() {
        let cases = [
            ("/a/app.js", "node"),
            ("/a/app.cjs", "node"),
            ("/a/app.mjs", "node"),
            ("/a/app.py", "python3"),
            ("/a/run.sh", "bash"),
            ("/a/app.rb", "ruby"),
            ("/a/index.php", "php"),
            ("/a/tool.pl", "perl"),
        ];
        for (script, interpreter) in cases {
            assert_eq!(
                command_for(script, strings(&["x"]), None, vec![], vec![]),
                exec(interpreter, &[script, "x"]),
                "{script}"
            );
        }
    }

    #[test]
    fn node_and_interpreter_args_go_before_the_script() {
        assert_eq!(
            command_for(
                "/a/app.js",
                strings(&["--port", "80"]),
                None,
                strings(&["--trace-warnings"]),
                strings(&["--max-old-space-size=512"]),
            ),
            exec(
                "node",
                &[
                    "--max-old-space-size=512",
                    "--trace-warnings",
                    "/a/app.js",
                    "--port",
                    "80"
                ]
            )
        );
    }

    #[test]
    fn explicit_interpreter_wins_and_none_runs_the_file() {
        assert_eq!(
            command_for("/a/app.js", vec![], Some("bun"), vec![], vec![]),
            exec("bun", &["/a/app.js"])
        );
        assert_eq!(
            command_for(
                "/a/app.py",
                vec![],
                Some("/usr/bin/env python3.12"),
                vec![],
                vec![]
            ),
            exec("/usr/bin/env", &["python3.12", "/a/app.py"])
        );
        assert_eq!(
            command_for("/a/app.js", strings(&["a"]), Some("none"), vec![], vec![]),
            exec("/a/app.js", &["a"])
        );
        assert_eq!(
            command_for(
                "/usr/bin/server",
                strings(&["-v"]),
                None,
                strings(&["ignored"]),
                vec![]
            ),
            exec("/usr/bin/server", &["-v"])
        );
        assert_eq!(
            command_for("gunicorn", vec![], None, vec![], vec![]),
            exec("gunicorn", &[])
        );
    }

    #[test]
    fn source_maps_for_transpiled_node_apps() {
        let dir = std::env::temp_dir().join(format!("rcluster-maps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let built = dir.join("app.js");
        let plain = dir.join("plain.js");
        std::fs::write(dir.join("app.js.map"), "{}").expect("map");
        let node = |script: &Path, node_args: &[&str]| CommandSpec::Exec {
            program: "node".into(),
            args: node_args
                .iter()
                .map(|a| (*a).to_owned())
                .chain([script.to_string_lossy().into_owned(), "--port".into()])
                .collect(),
        };
        let mapped = with_source_maps(node(&built, &["--max-old-space-size=512"]), &built, None);
        assert_eq!(
            mapped,
            node(&built, &[SOURCE_MAPS, "--max-old-space-size=512"])
        );
        assert_eq!(
            with_source_maps(node(&plain, &[]), &plain, None),
            node(&plain, &[])
        );
        assert_eq!(
            with_source_maps(node(&plain, &[]), &plain, Some(true)),
            node(&plain, &[SOURCE_MAPS])
        );
        assert_eq!(
            with_source_maps(node(&built, &[]), &built, Some(false)),
            node(&built, &[])
        );
        let once = node(&built, &[SOURCE_MAPS]);
        assert_eq!(with_source_maps(once.clone(), &built, None), once);
        let python = CommandSpec::Exec {
            program: "python3".into(),
            args: vec![built.to_string_lossy().into_owned()],
        };
        assert_eq!(with_source_maps(python.clone(), &built, None), python);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            command_for("python3 -m http.server 8000", vec![], None, vec![], vec![]),
            exec("python3", &["-m", "http.server", "8000"])
        );
        assert_eq!(
            command_for("node server.js", strings(&["--x"]), None, vec![], vec![]),
            exec("node", &["server.js", "--x"])
        );
        assert_eq!(
            command_for("exec gunicorn app:app", vec![], None, vec![], vec![]),
            exec("gunicorn", &["app:app"])
        );
        assert_eq!(
            command_for("cd /srv && ./run", strings(&["a b"]), None, vec![], vec![]),
            CommandSpec::Shell {
                script: "cd /srv && ./run 'a b'".into()
            }
        );
        assert_eq!(
            command_for_file("/my app/server.js", vec![], None, vec![], vec![]),
            exec("node", &["/my app/server.js"])
        );
    }

    #[test]
    fn splitting() {
        assert_eq!(
            split_command_line(r#"python3 -c 'print("a b")' "x y" z\ w"#),
            Some(strings(&["python3", "-c", r#"print("a b")"#, "x y", "z w"]))
        );
        assert_eq!(
            split_command_line("echo '$HOME'"),
            Some(strings(&["echo", "$HOME"]))
        );
        assert_eq!(
            split_command_line(r#"a "" b"#),
            Some(strings(&["a", "", "b"]))
        );
        assert_eq!(split_command_line("'cd' x"), Some(strings(&["cd", "x"])));
        assert_eq!(split_command_line("  "), None);
    }

    #[test]
    fn shell_syntax_needs_a_shell() {
        for line in [
            "a | b",
            "a && b",
            "a; b",
            "a > log",
            "a < in",
            "(a)",
            "echo $HOME",
            "echo \"$HOME\"",
            "echo `date`",
            "ls *.js",
            "ls ?",
            "ls [ab]",
            "echo {a,b}",
            "ls ~",
            "a # comment",
            "a\nb",
            "PORT=80 node app.js",
            "cd /srv",
            "export A=1",
            "source env.sh",
            "unterminated 'quote",
            "trailing \\",
        ] {
            assert_eq!(split_command_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn words_for_args() {
        assert_eq!(
            split_words("--glob *.js --name 'my app' $HOME"),
            Ok(strings(&["--glob", "*.js", "--name", "my app", "$HOME"]))
        );
        assert_eq!(split_words(""), Ok(vec![]));
        assert!(split_words("'open").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("plain-arg_1.txt"), "plain-arg_1.txt");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
