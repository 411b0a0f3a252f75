//! Targets as pm2 takes them. The daemon knows ids, app names, namespaces and `all`; pm2 also
//! takes the script an app was started from (`stop app.js`, `delete ./server.py`: every app
//! whose `pm_exec_path` is that file, resolved against the current directory) and a regular
//! expression over app names (`stop /echo-[1,2]/`). This file turns those two into app names,
//! from one `describe` of every app, before the request goes to the daemon.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::client::Client;
use super::pm2_list;
use crate::protocol::model::AppSpec;
use crate::protocol::{Request, Response, Target};

/// Resolves targets against the apps the daemon has (asked once, on first need).
pub struct Resolver {
    cwd: PathBuf,
    apps: Option<Vec<AppSpec>>,
}

impl Resolver {
    pub fn new() -> Result<Resolver> {
        Ok(Resolver {
            cwd: std::env::current_dir().context("cannot read the current directory")?,
            apps: None,
        })
    }

    /// `text` as a target: `all`, an id, `/regex/`, or a name, namespace or script file.
    pub fn resolve(&mut self, client: &mut Client, text: &str) -> Result<Target> {
        if let Some(pattern) = regex_of(text) {
            let re = regex_lite::Regex::new(&pattern)
                .with_context(|| format!("{text}: not a regular expression"))?;
            let names = self.names_where(client, |spec| re.is_match(&spec.name))?;
            if names.is_empty() {
                bail!("no app name matches {text}");
            }
            return Ok(Target::Names(names));
        }
        let target = Target::parse(text);
        let Target::Name(name) = &target else {
            return Ok(target);
        };
        // pm2's getProcessIdByName: the name, or the file the app runs.
        let file = pm2_list::resolve_path(&self.cwd, name);
        let file = file.to_string_lossy();
        let names = self.names_where(client, |spec| {
            spec.name == *name || pm2_list::exec_path(spec) == file
        })?;
        Ok(match names.as_slice() {
            [] => target,
            [only] if only == name => target,
            _ => Target::Names(names),
        })
    }

    fn names_where(
        &mut self,
        client: &mut Client,
        pick: impl Fn(&AppSpec) -> bool,
    ) -> Result<Vec<String>> {
        if self.apps.is_none() {
            let response = client.call(&Request::Describe {
                target: Target::All,
            })?;
            let Response::Apps { apps } = response else {
                bail!("unexpected answer from the daemon: {response:?}");
            };
            self.apps = Some(apps.into_iter().map(|a| a.spec).collect());
        }
        let apps = self.apps.as_deref().unwrap_or_default();
        Ok(apps
            .iter()
            .filter(|spec| pick(spec))
            .map(|spec| spec.name.clone())
            .collect())
    }
}

/// pm2's regex target: `/…/` that is not a number; pm2 drops every `/` and matches the rest
/// anywhere in the name (`new RegExp(text.replace(/\//g, ''))`).
fn regex_of(text: &str) -> Option<String> {
    let is_regex = text.len() >= 2 && text.starts_with('/') && text.ends_with('/');
    is_regex.then(|| text.replace('/', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_targets_as_pm2_reads_them() {
        assert_eq!(regex_of("/echo-[1,2]/").as_deref(), Some("echo-[1,2]"));
        assert_eq!(regex_of("/"), None);
        assert_eq!(regex_of("/srv/app.js"), None);
        assert_eq!(regex_of("web"), None);
    }
}
