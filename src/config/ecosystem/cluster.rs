//! How an app's instances share sockets: `exec_mode` (pm2's rules), `instances`, `port`,
//! `listen`, `balance`, and the `readiness` probe that tells when an instance may take them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use super::keys::Key;
use super::tree::Value;
use super::values::{whole, App, Field};
use super::{normalise, ExecMode};
use crate::config::listen::{parse_listen, parse_strategy};
use crate::config::suggest::{did_you_mean, unknown_key_message};
use crate::config::units::{self, InstancesArg};
use crate::protocol::model::{AppSpec, ListenAddr, ProbeKind, ReadinessSpec, Strategy};

/// pm2's `exec_mode`; unset, cluster when `instances` is given (as pm2 decides) or `listen` or
/// `balance` (which only mean something in cluster mode), fork otherwise.
pub fn exec_mode(app: &mut App<'_, '_>) -> ExecMode {
    if let Some(f) = app.get(Key::ExecMode) {
        match app.string_of(&f).as_deref() {
            Some("fork" | "fork_mode") => return ExecMode::Fork,
            Some("cluster" | "cluster_mode") => return ExecMode::Cluster,
            Some(other) => app.bad(
                &f,
                format!("`{other}` is not an exec mode (use fork or cluster)"),
            ),
            None => {}
        }
    }
    if [Key::Instances, Key::Listen, Key::Balance]
        .iter()
        .any(|k| app.get(*k).is_some())
    {
        ExecMode::Cluster
    } else {
        ExecMode::Fork
    }
}

/// `instances`: a number, `"2"`, `"max"`, `0` or `-1`, resolved against the CPUs here.
pub fn instances(app: &mut App<'_, '_>, f: &Field<'_>) -> Option<u32> {
    let arg = match (&f.value.value, whole(f.value)) {
        (Value::Str(s), _) => InstancesArg::Text(s),
        (_, Some(n)) => InstancesArg::Number(i64::try_from(n).unwrap_or(i64::MAX)),
        _ => {
            app.wrong_type(f, "a number or \"max\"");
            return None;
        }
    };
    units::resolve_instances(arg)
        .map_err(|e| app.bad(f, e))
        .ok()
}

/// `port`, `listen`, `balance` -> `spec.cluster` and `PORT`.
pub fn cluster(
    app: &mut App<'_, '_>,
    spec: &mut AppSpec,
    env: &mut BTreeMap<String, String>,
    mode: ExecMode,
    cwd: &Path,
) {
    let port = app.get(Key::Port).and_then(|f| {
        let number = match &f.value.value {
            Value::Str(s) => s.trim().parse::<i128>().ok(),
            _ => whole(f.value),
        };
        let port = number.and_then(|n| u16::try_from(n).ok());
        if port.is_none() {
            app.bad(
                &f,
                format!(
                    "expected a port number (0 to 65535), found {}",
                    f.value.describe()
                ),
            );
        }
        port
    });
    let listen = app.get(Key::Listen).map(|f| {
        let items = match &f.value.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![f.value],
        };
        let mut out: Vec<ListenAddr> = Vec::new();
        for item in items {
            let text = match &item.value {
                Value::Str(s) => s.trim().to_owned(),
                Value::Int(i) => i.to_string(),
                _ => {
                    app.wrong_type(
                        &Field { value: item, ..f },
                        "an address like \"0.0.0.0:8080\" or a list of them",
                    );
                    continue;
                }
            };
            let parsed = parse_listen(&text, cwd).map(|addr| match addr {
                ListenAddr::Unix(path) => ListenAddr::Unix(normalise(&path)),
                tcp => tcp,
            });
            match parsed {
                Ok(addr) if out.contains(&addr) => app.bad(
                    &Field { value: item, ..f },
                    format!("`{text}` is listed twice"),
                ),
                Ok(addr) => out.push(addr),
                Err(e) => app.bad(&Field { value: item, ..f }, e),
            }
        }
        out
    });
    if let Some(f) = app.get(Key::Balance) {
        if let Some(name) = app.string_of(&f) {
            match parse_strategy(&name) {
                Ok(strategy) => spec.cluster.balance = strategy,
                Err(e) => {
                    let names: Vec<&str> = Strategy::ALL.iter().map(|(n, _)| *n).collect();
                    let hint = did_you_mean(&name, &names)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    app.bad(&f, format!("{e}{hint}"));
                }
            }
        }
    }
    if let (Some(_), Some(f)) = (port, app.get(Key::Listen)) {
        app.bad(
            &f,
            "cannot be combined with `port`; put every address in `listen`",
        );
    }
    if mode == ExecMode::Fork {
        for key in [Key::Listen, Key::Balance] {
            if let Some(f) = app.get(key) {
                app.bad(&f, "needs cluster mode to share sockets between instances, but `exec_mode` is fork");
            }
        }
    } else if let Some(listen) = listen {
        spec.cluster.listen = listen;
    } else if let Some(port) = port {
        spec.cluster.listen = vec![ListenAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], port)))];
    } else {
        // pm2's cluster mode with no declared port: share whatever the program binds.
        spec.cluster.discover = true;
    }
    if let Some(f) = app.get(Key::PrivatePorts) {
        let items = match &f.value.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![f.value],
        };
        for item in items {
            match whole(item).and_then(|n| u16::try_from(n).ok()) {
                Some(port) => spec.cluster.private_ports.push(port),
                None => app.wrong_type(
                    &Field { value: item, ..f },
                    "a port number or a list of them",
                ),
            }
        }
    }
    // pm2 passes `port` to the app as PORT; 0 means "any", which only the daemon learns.
    if let Some(port) = port.filter(|p| *p != 0) {
        env.entry("PORT".into()).or_insert_with(|| port.to_string());
    }
}

/// `readiness: {http: /health, interval: 1s, timeout: 2s}`, `{tcp: true}`, `{exec: "cmd"}`.
pub fn readiness(app: &mut App<'_, '_>, f: &Field<'_>, known: &[&str]) -> Option<ReadinessSpec> {
    let Value::Map(entries) = &f.value.value else {
        app.wrong_type(f, "a mapping like {http: /health}");
        return None;
    };
    let mut spec = ReadinessSpec {
        probe: ProbeKind::Tcp,
        interval_ms: 500,
        timeout_ms: 1000,
    };
    let mut probes = 0;
    let mut ok = true;
    for (key, value) in entries {
        let Some(name) = key.as_str() else {
            app.error(
                key.pos,
                format!(
                    "`readiness`: keys must be strings, found {}",
                    key.describe()
                ),
            );
            ok = false;
            continue;
        };
        let sub = Field {
            written: name,
            parent: Some(f.written),
            key_pos: key.pos,
            value,
        };
        let probe = match name {
            "http" => app.string_of(&sub).and_then(|path| {
                let good = path.starts_with('/');
                if !good {
                    app.bad(
                        &sub,
                        format!("`{path}` is not a path; write it like /health"),
                    );
                }
                good.then_some(ProbeKind::Http { path })
            }),
            "tcp" => match app.bool_of(&sub) {
                Some(true) => Some(ProbeKind::Tcp),
                // `tcp: false` asks for no probe; another key may still give one.
                Some(false) => continue,
                None => None,
            },
            "exec" => app
                .string_of(&sub)
                .map(|command| ProbeKind::Exec { command }),
            "interval" | "timeout" => {
                match app.duration_of(&sub) {
                    Some(0) => {
                        app.bad(&sub, "must be more than 0");
                        ok = false;
                    }
                    Some(ms) if name == "interval" => spec.interval_ms = ms,
                    Some(ms) => spec.timeout_ms = ms,
                    None => ok = false,
                }
                continue;
            }
            _ => {
                app.warn(
                    key.pos,
                    format!("`readiness`: {}", unknown_key_message(name, known)),
                );
                continue;
            }
        };
        match probe {
            Some(probe) => {
                probes += 1;
                spec.probe = probe;
            }
            None => ok = false,
        }
    }
    match probes {
        1 if ok => Some(spec),
        0 if ok => {
            app.bad(f, "needs one of `http`, `tcp` or `exec`");
            None
        }
        n if n > 1 => {
            app.bad(f, "give one of `http`, `tcp` or `exec`, not several");
            None
        }
        _ => None,
    }
}
