//! Shell completion that knows your apps. The scripts in `completions/` (and `rcluster
//! completions SHELL`) call `RCLUSTER_COMPLETE=<shell> rcluster -- <words>` at each TAB
//! (clap_complete's dynamic completion), so subcommands and flags come from the same clap
//! definitions as the parser, and where a target goes this module adds what the daemon runs:
//! app names, instance ids, namespaces, `all`, and ecosystem files. A daemon is asked only if
//! one runs (no daemon is started to complete a word), and briefly: with none, or a slow one,
//! names complete to nothing and files still complete.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Shells, Zsh};
use clap_complete::Shell;

use crate::cli::client::Client;
use crate::paths::Home;
use crate::protocol::model::{InstanceView, DEFAULT_NAMESPACE};
use crate::protocol::{Request, Response};

/// The variable the completion scripts set (not clap's default `COMPLETE`, which is too common
/// a name to leave an rcluster command line at the mercy of).
pub const VAR: &str = "RCLUSTER_COMPLETE";

/// The longest a completion waits for the daemon.
const PATIENCE: Duration = Duration::from_millis(500);

/// A target of stop, restart, reload, delete, signal, reset: `all`, app names, ids,
/// namespaces, ecosystem files.
pub fn targets(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut out = running(current, true);
    out.extend(files(current, |path| {
        crate::cli::cmd::is_ecosystem_file(&path.to_string_lossy())
    }));
    out
}

/// `start`'s first word: a script or program file, an ecosystem file, or an app that runs
/// already (which `start` restarts, as pm2 does).
pub fn scripts(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut out = running(current, false);
    out.extend(files(current, |_| true));
    out
}

/// One app or instance (describe, logs, monit, pid, env, id, flush).
pub fn apps(current: &OsStr) -> Vec<CompletionCandidate> {
    running(current, false)
}

/// An app's name alone (scale).
pub fn app_names(current: &OsStr) -> Vec<CompletionCandidate> {
    running(current, false)
        .into_iter()
        .filter(|c| {
            !c.get_value()
                .to_string_lossy()
                .starts_with(|ch: char| ch.is_ascii_digit())
        })
        .collect()
}

/// What the running daemon knows that starts with `current`: names, ids (with their app in
/// the help), namespaces and `all` when `with_all`.
fn running(current: &OsStr, with_all: bool) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    if current.contains('/') {
        return Vec::new();
    }
    let instances = list().unwrap_or_default();
    let mut out = Vec::new();
    let mut add = |value: String, help: String| {
        if value.starts_with(current.as_ref())
            && !out
                .iter()
                .any(|c: &CompletionCandidate| c.get_value() == value.as_str())
        {
            out.push(CompletionCandidate::new(value).help(Some(help.into())));
        }
    };
    if with_all && !instances.is_empty() {
        add("all".into(), "every app".into());
    }
    for inst in &instances {
        let count = instances.iter().filter(|i| i.name == inst.name).count();
        add(
            inst.name.clone(),
            format!("app, {count} instance(s), {}", inst.status.as_str()),
        );
    }
    for inst in &instances {
        add(
            inst.id.to_string(),
            format!("{} #{}, {}", inst.name, inst.instance, inst.status.as_str()),
        );
    }
    if with_all {
        for inst in instances
            .iter()
            .filter(|i| i.namespace != DEFAULT_NAMESPACE)
        {
            add(inst.namespace.clone(), "namespace".into());
        }
    }
    out
}

/// The daemon's list, if a daemon of this version runs and answers in time.
fn list() -> Option<Vec<InstanceView>> {
    let home = Home::from_env().ok()?;
    if !home.socket().exists() {
        return None;
    }
    let mut client = Client::connect_existing_within(&home, PATIENCE).ok()??;
    match client.call(&Request::List).ok()? {
        Response::Instances { instances, .. } => Some(instances),
        _ => None,
    }
}

/// Files under the word typed so far that `keep` accepts, and directories to go into.
fn files(current: &OsStr, keep: fn(&Path) -> bool) -> Vec<CompletionCandidate> {
    // Directories that `keep` refuses still come (after the files), to go into.
    PathCompleter::any()
        .filter(move |path: &Path| !path.is_dir() && keep(path))
        .complete(current)
}

/// The shells `RCLUSTER_COMPLETE` may name, each answering with values first (below).
pub fn shells() -> Shells<'static> {
    Shells(&[
        &ValuesFirst { inner: &Bash },
        &ValuesFirst { inner: &Zsh },
        &ValuesFirst { inner: &Fish },
        &Elvish,
        &Powershell,
    ])
}

/// clap's engine offers every flag beside the values of an empty word (`rcluster stop <TAB>`
/// would list --only --env --json --verbose... among the apps). As most completions do, flags
/// come once a `-` is typed: this drops them from an answer that has anything else in it.
struct ValuesFirst {
    inner: &'static dyn EnvCompleter,
}

impl EnvCompleter for ValuesFirst {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn is(&self, name: &str) -> bool {
        self.inner.is(name)
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.inner
            .write_registration(var, name, bin, completer, buf)
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        let shell = self.inner.name();
        // The word being completed: bash and zsh pass its index, fish completes the last.
        let index = match shell {
            "fish" => args.len().saturating_sub(1),
            _ => std::env::var("_CLAP_COMPLETE_INDEX")
                .ok()
                .and_then(|i| i.parse().ok())
                .unwrap_or(0),
        };
        let current = args
            .get(index)
            .map(|w| w.to_string_lossy().into_owned())
            .unwrap_or_default();
        let commands = (index == 1).then(|| command_names(cmd, &current));
        let mut answer = Vec::new();
        self.inner
            .write_complete(cmd, args, current_dir, &mut answer)?;
        // One candidate per item: bash's are separated by the IFS its script passes, the
        // others' by newlines (`value`, `value:help`, `value<TAB>help`).
        let separator = match self.inner.name() {
            "bash" => std::env::var("_CLAP_IFS")
                .ok()
                .and_then(|ifs| ifs.bytes().next())
                .unwrap_or(b'\n'),
            _ => b'\n',
        };
        let items: Vec<&[u8]> = answer.split(|b| *b == separator).collect();
        let flag = |item: &[u8]| item.first() == Some(&b'-');
        let values = items.iter().any(|item| !item.is_empty() && !flag(item));
        let mut kept: Vec<Vec<u8>> = items
            .into_iter()
            .filter(|item| !(values && flag(item)))
            .map(<[u8]>::to_vec)
            .collect();
        if let Some(commands) = commands {
            kept = with_command_names(kept, &commands, shell);
        }
        buf.write_all(&kept.join(&separator))
    }
}

/// Each visible subcommand's words (its name, then its visible aliases) that start with
/// `current`.
fn command_names(cmd: &clap::Command, current: &str) -> Vec<Vec<String>> {
    cmd.get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| {
            std::iter::once(sub.get_name())
                .chain(sub.get_visible_aliases())
                .filter(|word| word.starts_with(current))
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// clap's engine keeps one candidate per subcommand, the alphabetically first of its name and
/// aliases: `rcluster de<TAB>` offered `del` and `desc` but not `delete` and `describe`. The
/// subcommand's other words go back in beside the one kept, with the same help.
fn with_command_names(items: Vec<Vec<u8>>, commands: &[Vec<String>], shell: &str) -> Vec<Vec<u8>> {
    // Where an item's value ends: zsh `value:help`, fish `value<TAB>help`, bash the item.
    let value_end = |item: &[u8]| -> usize {
        let stop = match shell {
            "zsh" => b':',
            "fish" => b'\t',
            _ => return item.len(),
        };
        item.iter().position(|b| *b == stop).unwrap_or(item.len())
    };
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(items.len());
    for item in items {
        let (value, rest) = item.split_at(value_end(&item));
        let words = commands
            .iter()
            .find(|words| words.iter().any(|w| w.as_bytes() == value));
        for word in words.into_iter().flatten() {
            let present = |o: &Vec<u8>| o.get(..value_end(o)) == Some(word.as_bytes());
            if word.as_bytes() != value && !out.iter().any(present) {
                let mut named = word.as_bytes().to_vec();
                named.extend_from_slice(rest);
                out.push(named);
            }
        }
        out.push(item);
    }
    out
}

/// The script that registers completion for `shell`: what `completions/` holds and
/// `rcluster completions SHELL` prints. It calls `rcluster` (from PATH) at each TAB.
pub fn registration(shell: Shell) -> anyhow::Result<Vec<u8>> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::PowerShell => &Powershell,
        other => anyhow::bail!("no completion script for {other}"),
    };
    let mut out = Vec::new();
    completer.write_registration(VAR, "rcluster", "rcluster", "rcluster", &mut out)?;
    if shell == Shell::Zsh {
        out.extend_from_slice(ZSH_FROM_FPATH.as_bytes());
    }
    Ok(out)
}

/// Installed as `_rcluster` on $fpath, compinit runs the file as the completion function
/// itself, the first time: it registers the function above, which would only answer from the
/// next TAB on.
const ZSH_FROM_FPATH: &str = r#"
# Loaded from $fpath as _rcluster: complete this first TAB too.
if [[ ${funcstack[1]} == _rcluster ]]; then
    _clap_dynamic_completer_rcluster "$@"
fi
"#;
