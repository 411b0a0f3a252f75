//! `rcluster serve` (pm2's `pm2 serve`): a static file server that runs as an ordinary app, the
//! program `rcluster __serve`, so that it restarts, logs, reloads and scales (`-i N`, through the
//! preload) like any other. It is configured the way pm2's is, by `PM2_SERVE_*` variables, so a
//! pm2 ecosystem file with `script: serve` runs unchanged.
//!
//! `request` reads HTTP/1.1 requests, `files` answers them: GET and HEAD, keep-alive, ETag,
//! one byte range, pm2's SPA fallback, basic auth.

pub(crate) mod files;
pub(crate) mod request;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;

/// The hidden first argument that runs the server (`rcluster __serve`).
pub const SERVE_ARG: &str = "__serve";
/// pm2's default port for `pm2 serve`.
pub const DEFAULT_PORT: u16 = 8080;
/// The address to listen on (rcluster's own; pm2 listens on every interface).
pub const ENV_HOST: &str = "RCLUSTER_SERVE_HOST";

/// What the server serves, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub root: PathBuf,
    pub port: u16,
    pub host: Option<IpAddr>,
    pub spa: bool,
    /// The page for `/` and the SPA fallback, as a path below the root (`/index.html`).
    pub homepage: String,
    /// Basic auth: (user, password).
    pub auth: Option<(String, String)>,
}

impl Config {
    /// pm2's variables: PM2_SERVE_PATH (else the first argument, else the working directory),
    /// PM2_SERVE_PORT (else the second argument, else 8080), PM2_SERVE_SPA=true,
    /// PM2_SERVE_HOMEPAGE (/index.html), PM2_SERVE_BASIC_AUTH=true with
    /// PM2_SERVE_BASIC_AUTH_USERNAME and _PASSWORD; and RCLUSTER_SERVE_HOST.
    pub fn from_env(var: impl Fn(&str) -> Option<String>, args: &[String]) -> Result<Config> {
        let root = var("PM2_SERVE_PATH")
            .or_else(|| args.first().cloned())
            .unwrap_or_else(|| ".".into());
        let root = PathBuf::from(root);
        let root = std::path::absolute(&root)
            .with_context(|| format!("PM2_SERVE_PATH {}", root.display()))?;
        let root = root.canonicalize().with_context(|| {
            format!(
                "cannot serve {}: PM2_SERVE_PATH must name a folder",
                root.display()
            )
        })?;
        if !root.is_dir() {
            bail!("cannot serve {}: it is not a folder", root.display());
        }
        let port = match var("PM2_SERVE_PORT").or_else(|| args.get(1).cloned()) {
            Some(text) => text
                .trim()
                .parse::<u16>()
                .with_context(|| format!("PM2_SERVE_PORT `{text}` is not a port number"))?,
            None => DEFAULT_PORT,
        };
        let host = match var(ENV_HOST) {
            Some(text) if !text.trim().is_empty() => Some(
                text.trim()
                    .parse::<IpAddr>()
                    .with_context(|| format!("{ENV_HOST} `{text}` is not an IP address"))?,
            ),
            _ => None,
        };
        let homepage = var("PM2_SERVE_HOMEPAGE").unwrap_or_else(|| "/index.html".into());
        // pm2's own example writes `./index.html`.
        let homepage = format!(
            "/{}",
            homepage.trim_start_matches("./").trim_start_matches('/')
        );
        let auth = if var("PM2_SERVE_BASIC_AUTH").as_deref() == Some("true") {
            match (
                var("PM2_SERVE_BASIC_AUTH_USERNAME"),
                var("PM2_SERVE_BASIC_AUTH_PASSWORD"),
            ) {
                (Some(user), Some(password)) => Some((user, password)),
                _ => bail!(
                    "PM2_SERVE_BASIC_AUTH=true needs PM2_SERVE_BASIC_AUTH_USERNAME and PM2_SERVE_BASIC_AUTH_PASSWORD"
                ),
            }
        } else {
            None
        };
        Ok(Config {
            root,
            port,
            host,
            spa: var("PM2_SERVE_SPA").as_deref() == Some("true"),
            homepage,
            auth,
        })
    }
}

/// `rcluster __serve [PATH] [PORT]`: serve until killed. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rcluster serve: error: {e:#}");
            1
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let config = Arc::new(Config::from_env(|name| std::env::var(name).ok(), args)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the server's event loop")?;
    runtime.block_on(async move {
        let listener = bind(&config).await?;
        // pm2's line, which users look for in the logs.
        println!(
            "Exposing {} directory on port {}",
            config.root.display(),
            config.port
        );
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(request::serve_connection(stream, config.clone()));
                }
                // Out of fds, or a connection reset before it was taken: the listener is fine.
                Err(e) => {
                    eprintln!("rcluster serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

/// The given host, or every interface as pm2 (Node) does: IPv6 and IPv4 together, else IPv4.
async fn bind(config: &Config) -> Result<TcpListener> {
    let port = config.port;
    if let Some(host) = config.host {
        return TcpListener::bind(SocketAddr::new(host, port))
            .await
            .with_context(|| format!("cannot listen on {}", SocketAddr::new(host, port)));
    }
    match TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(e).with_context(|| format!("cannot listen on port {port}"))
        }
        Err(_) => TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
            .await
            .with_context(|| format!("cannot listen on port {port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(|name| vars.get(name).cloned(), &[])
    }

    #[test]
    fn pm2_variables() {
        let dir = std::env::temp_dir();
        let c = config(&[
            ("PM2_SERVE_PATH", dir.to_str().expect("test value")),
            ("PM2_SERVE_PORT", "9000"),
            ("PM2_SERVE_SPA", "true"),
            ("PM2_SERVE_HOMEPAGE", "./app.html"),
            ("PM2_SERVE_BASIC_AUTH", "true"),
            ("PM2_SERVE_BASIC_AUTH_USERNAME", "u"),
            ("PM2_SERVE_BASIC_AUTH_PASSWORD", "p:w"),
        ])
        .expect("test value");
        assert_eq!(c.root, dir.canonicalize().expect("test value"));
        assert_eq!(
            (c.port, c.spa, c.homepage.as_str()),
            (9000, true, "/app.html")
        );
        assert_eq!(c.auth, Some(("u".into(), "p:w".into())));
        let d =
            config(&[("PM2_SERVE_PATH", dir.to_str().expect("test value"))]).expect("test value");
        assert_eq!(
            (d.port, d.spa, d.homepage.as_str()),
            (8080, false, "/index.html")
        );
        assert_eq!(d.auth, None);
        // pm2's Serve.js also takes the folder and the port as arguments.
        let args = [
            dir.to_str().expect("test value").to_owned(),
            "3000".to_owned(),
        ];
        let e = Config::from_env(|_| None, &args).expect("test value");
        assert_eq!(
            (e.root, e.port),
            (dir.canonicalize().expect("test value"), 3000)
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = config(&[("PM2_SERVE_PORT", "http")]).expect_err("must fail");
        assert!(
            format!("{err:#}").contains("PM2_SERVE_PORT `http`"),
            "{err:#}"
        );
        let err = config(&[("PM2_SERVE_PATH", "/no/such/folder")]).expect_err("must fail");
        assert!(format!("{err:#}").contains("/no/such/folder"), "{err:#}");
        let err = config(&[("PM2_SERVE_BASIC_AUTH", "true")]).expect_err("must fail");
        assert!(format!("{err:#}").contains("USERNAME"), "{err:#}");
    }
}
