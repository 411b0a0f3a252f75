//! The man pages: `rcluster(1)` and one `rcluster-<verb>(1)` per visible subcommand, from the
//! clap definitions (clap_mangen) plus sections clap does not know: ENVIRONMENT, FILES, EXIT
//! STATUS, EXAMPLES (the README's command lines, so the pages say what the README says) and
//! SEE ALSO. No page for `help` (it is clap's, and `rcluster help start` prints the same as
//! `rcluster start --help`); a page's synopsis names `rcluster start`, the command one types.

use std::io::Write;
use std::path::Path;

use clap_mangen::Man;

/// (file name, content) of every page.
pub fn pages(readme: &str) -> Vec<(String, Vec<u8>)> {
    let examples = readme_examples(readme);
    let everyday = everyday_use(readme);
    let version = env!("CARGO_PKG_VERSION");
    let mut command = rcluster::cli::args::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();

    let mut page = Vec::new();
    let man = Man::new(command.clone()).source(format!("rcluster {version}"));
    render_head(
        &man,
        &mut page,
        command.get_after_help().map(|h| h.to_string()),
    );
    man.render_options_section(&mut page).expect("render");
    man.render_subcommands_section(&mut page).expect("render");
    section(&mut page, "EXIT STATUS", EXIT_STATUS);
    section(&mut page, "ENVIRONMENT", ENVIRONMENT);
    section(&mut page, "FILES", FILES);
    examples_section(&mut page, &everyday);
    let see_also: Vec<String> = visible(&command)
        .map(|sub| format!("\\%\\fBrcluster\\-{}\\fR(1)", esc(sub.get_name())))
        .collect();
    section(
        &mut page,
        "SEE ALSO",
        &format!("{}, pm2(1)\n", see_also.join(", ")),
    );
    man.render_version_section(&mut page).expect("render");
    pages.push(("rcluster.1".to_owned(), page));

    for sub in visible(&command) {
        let name = sub.get_name().to_owned();
        let words: Vec<String> = std::iter::once(name.clone())
            .chain(sub.get_all_aliases().map(str::to_owned))
            .collect();
        let sub = sub
            .clone()
            .display_name(format!("rcluster-{name}"))
            .bin_name(format!("rcluster {name}"));
        let man = Man::new(sub).source(format!("rcluster {version}"));
        let mut page = Vec::new();
        render_head(&man, &mut page, None);
        man.render_options_section(&mut page).expect("render");
        let mine: Vec<&Example> = examples
            .iter()
            .filter(|e| words.iter().any(|w| e.verb() == Some(w.as_str())))
            .collect();
        examples_section(&mut page, &mine.into_iter().cloned().collect::<Vec<_>>());
        section(&mut page, "SEE ALSO", "\\fBrcluster\\fR(1)\n");
        pages.push((format!("rcluster-{name}.1"), page));
    }
    pages
}

fn visible(command: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    command.get_subcommands().filter(|s| !s.is_hide_set())
}

/// Title, NAME, SYNOPSIS and DESCRIPTION, with `more` as a last paragraph of the description.
fn render_head(man: &Man, page: &mut Vec<u8>, more: Option<String>) {
    man.render_title(page).expect("render");
    man.render_name_section(page).expect("render");
    man.render_synopsis_section(page).expect("render");
    man.render_description_section(page).expect("render");
    if let Some(more) = more {
        writeln!(page, ".PP\n{}", esc(&more)).expect("write");
    }
}

fn section(page: &mut Vec<u8>, title: &str, roff: &str) {
    write!(page, ".SH {title}\n{roff}").expect("write");
}

const EXIT_STATUS: &str = "\
0 when the command did what it was asked; 1 with a one\\-line error on standard error otherwise \
(\\fB\\-v\\fR prints its causes in full). \\fBrcluster run\\fR exits 1 when an app ended errored.
";

const ENVIRONMENT: &str = "\
.TP
\\fBRCLUSTER_HOME\\fR
The daemon's home (see FILES): one daemon per home. Default: the platform state directory, \
\\fI~/.local/state/rcluster\\fR on Linux.
.PP
An instance's program sees its app's environment (the starting shell's, then \\fB\\-\\-env\\-var\\fR \
and the ecosystem file's \\fBenv\\fR) and only these besides:
.TP
\\fBRCLUSTER_APP\\fR
The app's name.
.TP
\\fBRCLUSTER_ID\\fR
The instance's id, as \\fBrcluster list\\fR shows it.
.TP
\\fBRCLUSTER_INSTANCE\\fR, \\fBNODE_APP_INSTANCE\\fR
The instance's index, 0..N\\-1 (\\fB\\-\\-instance\\-var\\fR renames the second).
.TP
\\fBPYTHONUNBUFFERED=1\\fR
For programs run with python, so that their logs are live, as pm2 does; declare it empty to opt out.
.TP
\\fBPORT\\fR, \\fBLISTEN_FDS\\fR, \\fBLISTEN_PID\\fR, \\fBLISTEN_FDNAMES\\fR
Cluster mode: the app's port, and its listening sockets from fd 3 on (systemd's socket passing, \
sd_listen_fds(3)).
.TP
\\fBNOTIFY_SOCKET\\fR
With \\fB\\-\\-wait\\-ready\\fR: where the program sends READY=1 (sd_notify(3)).
";

const FILES: &str = "\
In the home (\\fB$RCLUSTER_HOME\\fR), a directory only its owner can read (0700):
.TP
\\fIrcluster.sock\\fR
The control socket (0600); the daemon answers only its own user.
.TP
\\fIdaemon.lock\\fR
Held by the running daemon: one daemon per home.
.TP
\\fIdaemon.log\\fR
What the daemon did: starts, exits, restarts, reloads.
.TP
\\fIlogs/<name>\\-out.log\\fR, \\fIlogs/<name>\\-error.log\\fR
Each app's standard output and error (per instance, \\fI<name>\\-out\\-<i>.log\\fR, with \
\\fB\\-\\-no\\-merge\\-logs\\fR); rotated files beside them, \\fI.1\\fR, \\fI.2.gz\\fR...
.TP
\\fIdump.pm2\\fR, \\fIdump.pm2.bak\\fR
The process list \\fBrcluster save\\fR wrote (in pm2's format) and \\fBrcluster resurrect\\fR \
reads, and the one before. (\\fIdump.json\\fR: rcluster 0.1's, read while there is no \\fIdump.pm2\\fR.)
.TP
\\fIdaemon.run\\fR
Present while a daemon runs: found at start, it says the previous one did not stop cleanly.
.TP
\\fIlib/\\fR
The preload library of cluster mode, written from the binary at start.
.TP
\\fIpm2\\-import.json\\fR
The apps \\fBrcluster import pm2\\fR converted.
";

/// One command line of the README and what it does.
#[derive(Clone)]
struct Example {
    command: String,
    says: String,
}

impl Example {
    /// The verb: `stop` in `rcluster stop web`.
    fn verb(&self) -> Option<&str> {
        let mut words = self.command.split_whitespace();
        let first = words.next()?;
        let first = if first == "sudo" {
            words.next()?
        } else {
            first
        };
        (first == "rcluster").then(|| words.next()).flatten()
    }
}

fn examples_section(page: &mut Vec<u8>, examples: &[Example]) {
    if examples.is_empty() {
        return;
    }
    let mut roff = String::new();
    for example in examples {
        roff.push_str(&format!(".TP\n\\fB{}\\fR\n", esc(&example.command)));
        if !example.says.is_empty() {
            roff.push_str(&format!("{}\n", code_spans(&esc(&example.says))));
        }
    }
    section(page, "EXAMPLES", &roff);
}

/// The command lines of the README's "Everyday use" block.
fn everyday_use(readme: &str) -> Vec<Example> {
    let start = readme
        .find("## Everyday use")
        .expect("README.md has an `## Everyday use` section");
    let section = &readme[start..];
    let block = section
        .find("```sh\n")
        .and_then(|open| {
            let close = section[open + 6..].find("```")?;
            Some(&section[open..open + 6 + close + 3])
        })
        .expect("the Everyday use section has a ```sh block");
    readme_examples(block)
}

/// Every `rcluster ... # comment` line of the README's sh blocks, in order, once each; a line
/// that is only a comment continues the one before.
fn readme_examples(readme: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let (command, says) = match line.split_once(" # ") {
            Some((command, says)) => (command.trim(), says.trim()),
            None => (line.trim(), ""),
        };
        if command.is_empty() {
            if let (Some(last), Some(more)) = (out.last_mut(), line.trim().strip_prefix("# ")) {
                last.says = format!("{} {more}", last.says);
            }
            continue;
        }
        let example = Example {
            command: command.to_owned(),
            says: says.to_owned(),
        };
        if example.verb().is_some() && !out.iter().any(|e| e.command == example.command) {
            out.push(example);
        }
    }
    out
}

/// Markdown's `code` spans in bold, as man pages show what one types.
fn code_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 => format!("\\fB{part}\\fR"),
            _ => part.to_owned(),
        })
        .collect()
}

/// Plain text for roff: backslashes and hyphens escaped, no line read as a request.
fn esc(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

pub fn readme(root: &Path) -> String {
    std::fs::read_to_string(root.join("README.md")).expect("read README.md")
}
