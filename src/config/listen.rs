//! Cluster-mode values shared by the command line and ecosystem files: listen addresses and
//! balancing strategies.

use std::net::SocketAddr;
use std::path::Path;

use crate::protocol::model::{ListenAddr, Strategy};

/// `0.0.0.0:8080`, `[::]:8080`, `localhost:8080`, `8080`, `:8080`, `*:8080`, `unix:/run/app.sock`
/// (a relative Unix path is taken from `cwd`).
pub fn parse_listen(text: &str, cwd: &Path) -> Result<ListenAddr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("`unix:` needs a path, like unix:/run/app.sock".into());
        }
        return Ok(ListenAddr::Unix(cwd.join(path)));
    }
    let any = |port: &str| {
        port.parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
    };
    let addr = text
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| any(text))
        .or_else(|| text.strip_prefix(':').and_then(any))
        .or_else(|| text.strip_prefix("*:").and_then(any))
        .or_else(|| {
            let port = text.strip_prefix("localhost:")?.parse::<u16>().ok()?;
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        });
    addr.map(ListenAddr::Tcp).ok_or_else(|| {
        format!("`{text}` is not an address (use host:port with an IP address, [::]:port, or unix:/path)")
    })
}

pub fn parse_strategy(name: &str) -> Result<Strategy, String> {
    Strategy::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let names: Vec<&str> = Strategy::ALL.iter().map(|(n, _)| *n).collect();
            format!("unknown strategy `{name}` (one of: {})", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_strategies() {
        let cwd = Path::new("/srv");
        assert_eq!(
            parse_listen("8080", cwd),
            Ok(ListenAddr::Tcp("0.0.0.0:8080".parse().expect("addr")))
        );
        assert_eq!(
            parse_listen("[::]:80", cwd),
            Ok(ListenAddr::Tcp("[::]:80".parse().expect("addr")))
        );
        assert_eq!(
            parse_listen("unix:app.sock", cwd),
            Ok(ListenAddr::Unix("/srv/app.sock".into()))
        );
        assert!(parse_listen("nowhere:x", cwd).is_err());
        assert_eq!(parse_strategy("least-conn"), Ok(Strategy::LeastConn));
        assert!(parse_strategy("random")
            .expect_err("unknown")
            .contains("round-robin"));
    }
}
