//! `rcluster serve [PATH] [PORT]` (pm2's serve): the built-in static file server (`src/serve`,
//! run as `rcluster __serve`) started as an ordinary app named `static-page-server-PORT`, as
//! pm2 names it, and configured by pm2's `PM2_SERVE_*` variables.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::cli::args::{Cli, Command, ServeArgs, StartArgs};
use crate::serve::{DEFAULT_PORT, ENV_HOST, SERVE_ARG};

/// The `start` that `serve` stands for.
pub fn start_args(args: &ServeArgs) -> Result<StartArgs> {
    let exe = std::env::current_exe().context("cannot find the rcluster binary to serve with")?;
    let folder = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = std::path::absolute(&folder)
        .with_context(|| format!("cannot serve {}", folder.display()))?;
    if !root.is_dir() {
        bail!("cannot serve {}: no such folder", root.display());
    }
    let port = match (args.port.or(args.port_arg), std::env::var("PM2_SERVE_PORT")) {
        (Some(port), _) => port,
        (None, Ok(text)) => text
            .trim()
            .parse()
            .with_context(|| format!("PM2_SERVE_PORT `{text}` is not a port number"))?,
        (None, Err(_)) => DEFAULT_PORT,
    };
    let text = |p: &std::path::Path| {
        p.to_str()
            .map(str::to_owned)
            .with_context(|| format!("{} is not valid UTF-8", p.display()))
    };
    let mut argv: Vec<String> = vec!["rcluster".into(), "start".into(), text(&exe)?];
    let mut flag = |name: &str, value: String| {
        argv.push(name.into());
        argv.push(value);
    };
    flag("--interpreter", "none".into());
    flag(
        "--name",
        args.name
            .clone()
            .unwrap_or_else(|| format!("static-page-server-{port}")),
    );
    flag("--cwd", text(&root)?);
    flag("--env-var", format!("PM2_SERVE_PATH={}", text(&root)?));
    flag("--env-var", format!("PM2_SERVE_PORT={port}"));
    if args.spa {
        flag("--env-var", "PM2_SERVE_SPA=true".into());
    }
    if let Some(page) = &args.homepage {
        flag("--env-var", format!("PM2_SERVE_HOMEPAGE={page}"));
    }
    if let (Some(user), Some(password)) = (&args.basic_auth_username, &args.basic_auth_password) {
        flag("--env-var", "PM2_SERVE_BASIC_AUTH=true".into());
        flag("--env-var", format!("PM2_SERVE_BASIC_AUTH_USERNAME={user}"));
        flag(
            "--env-var",
            format!("PM2_SERVE_BASIC_AUTH_PASSWORD={password}"),
        );
    }
    if let Some(host) = args.host {
        flag("--env-var", format!("{ENV_HOST}={host}"));
    }
    if let Some(n) = &args.instances {
        flag("--instances", n.clone());
    }
    if let Some(namespace) = &args.namespace {
        flag("--namespace", namespace.clone());
    }
    if args.json {
        argv.push("--json".into());
    }
    argv.push("--".into());
    argv.push(SERVE_ARG.into());
    let cli = Cli::try_parse_from(&argv).context("cannot make the app for serve")?;
    match cli.command {
        Command::Start(start) => Ok(*start),
        _ => bail!("cannot make the app for serve"),
    }
}
