//! pm2 verbs that rcluster has no use for (modules, pm2.io, deploy, actions): each gets the
//! reason and what to do instead, rather than "unrecognized subcommand". Any other unknown
//! word gets the closest verb.

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::cli::args::Cli;
use crate::config::suggest::did_you_mean;

const ROTATION: &str = "log rotation is built in: --log-max-size 10M, --log-retain 10, --log-compress, --log-rotate-daily (log_max_size, log_retain, log_compress, log_rotate_daily in an ecosystem file)";

fn reason(verb: &str, rest: &[String]) -> Option<String> {
    let names_logrotate = rest.iter().any(|w| w.contains("logrotate"));
    Some(match verb {
        "install" | "uninstall" | "module:install" | "module:uninstall" if names_logrotate => {
            format!("rcluster has no modules; pm2-logrotate's job is rcluster's own: {ROTATION}")
        }
        "install" | "uninstall" | "module:install" | "module:uninstall" | "module:generate"
        | "module:update" | "module:publish" => {
            "rcluster has no modules (pm2 modules are Node packages run inside pm2)".to_owned()
        }
        "set" | "unset" | "get" | "conf" | "config" if names_logrotate => {
            format!("rcluster has no module settings; {ROTATION}")
        }
        "set" | "unset" | "get" | "conf" | "config" => {
            "rcluster has no global settings: everything is set per app (`rcluster start --help`, or an ecosystem file)".to_owned()
        }
        "link" | "unlink" | "plus" | "login" | "register" | "logout" | "open" | "monitor"
        | "unmonitor" => "rcluster does not connect to pm2.io (PM2 Plus)".to_owned(),
        "deploy" => "rcluster does not deploy; keep `pm2 deploy`, or your CI, for that".to_owned(),
        "trigger" | "sendDataToProcessId" => {
            "rcluster has no custom actions (@pm2/io's); `rcluster signal` sends a signal".to_owned()
        }
        "inspect" => "give node --inspect through --node-args (or node_args)".to_owned(),
        "report" => "`rcluster describe`, `rcluster logs` and $RCLUSTER_HOME/daemon.log tell what pm2 report gathers".to_owned(),
        "dashboard" | "dash" => "`rcluster monit` shows each instance's CPU and memory live".to_owned(),
        "autoinstall" | "cleanup" | "backward" | "forward" | "pull" => {
            format!("pm2's `{verb}` has no counterpart in rcluster")
        }
        _ => return None,
    })
}

/// Always an error: the reason for a pm2 verb, else the closest rcluster verb.
pub fn refuse(words: &[String]) -> Result<i32> {
    let Some((verb, rest)) = words.split_first() else {
        bail!("no command given; `rcluster --help` lists them");
    };
    if let Some(reason) = reason(verb, rest) {
        bail!("`{verb}`: {reason}");
    }
    let cli = Cli::command();
    let mut known: Vec<&str> = Vec::new();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        known.push(sub.get_name());
        known.extend(sub.get_visible_aliases());
    }
    match did_you_mean(verb, &known) {
        Some(close) => bail!("unknown command `{verb}`, did you mean `{close}`?"),
        None => bail!("unknown command `{verb}`; `rcluster --help` lists them"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(words: &[&str]) -> String {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        format!("{:#}", refuse(&words).expect_err("always an error"))
    }

    #[test]
    fn pm2_verbs_get_their_reason_and_typos_the_closest_verb() {
        assert!(message(&["install", "pm2-logrotate"]).contains("--log-max-size"));
        assert!(message(&["set", "pm2-logrotate:max_size", "10M"]).contains("--log-max-size"));
        assert!(message(&["install", "pm2-server-monit"]).contains("no modules"));
        assert!(message(&["link", "a", "b"]).contains("pm2.io"));
        assert!(message(&["deploy", "production"]).contains("does not deploy"));
        assert_eq!(
            message(&["restrat", "api"]),
            "unknown command `restrat`, did you mean `restart`?"
        );
        assert!(message(&["zzzz"]).contains("rcluster --help"));
    }
}
