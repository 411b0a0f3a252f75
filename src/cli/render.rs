//! Output for people and scripts: the `list` table (comfy-table, fitted to the terminal),
//! `describe` text, and the small formatters they share.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use crate::protocol::model::{
    AppDetail, InstanceState, InstanceView, ProbeKind, Strategy, DEFAULT_NAMESPACE,
};

pub fn instances_table(instances: &[InstanceView]) -> String {
    // pm2's namespace column, only when some app has one.
    let namespaces = instances.iter().any(|i| i.namespace != DEFAULT_NAMESPACE);
    let mut header = vec!["id", "name"];
    if namespaces {
        header.push("namespace");
    }
    header.extend(["mode", "port", "pid", "uptime", "↺", "status", "cpu", "mem"]);
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for inst in instances {
        let mut row = vec![Cell::new(inst.id), Cell::new(&inst.name)];
        if namespaces {
            row.push(Cell::new(&inst.namespace));
        }
        row.extend([
            Cell::new(&inst.mode),
            Cell::new(ports(inst)),
            Cell::new(inst.pid.map_or("-".to_string(), |p| p.to_string())),
            Cell::new(if inst.status == InstanceState::Online {
                duration(inst.uptime_ms)
            } else {
                "-".into()
            }),
            Cell::new(inst.restarts),
            Cell::new(inst.status.as_str()).fg(status_color(inst.status)),
            Cell::new(format!("{}%", inst.cpu)),
            Cell::new(bytes(inst.memory)),
        ]);
        table.add_row(row);
    }
    table.to_string()
}

/// A line for each app whose log files lost lines (a full disk...), to print below the table:
/// the files do not have everything, and people should know.
pub fn log_drop_notes(instances: &[InstanceView]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = String::new();
    for inst in instances.iter().filter(|i| i.log_lines_dropped > 0) {
        if seen.contains(&inst.name.as_str()) {
            continue;
        }
        seen.push(&inst.name);
        out.push_str(&format!(
            "[rcluster] app \"{}\": {} log line(s) could not be written to its files (see `rcluster logs {}`)\n",
            inst.name.escape_debug(),
            inst.log_lines_dropped,
            inst.name.escape_debug()
        ));
    }
    out
}

/// `list -m` (pm2's --mini-list): a block of `key : value` lines per instance, no table.
pub fn instances_mini(instances: &[InstanceView]) -> String {
    let mut out = String::new();
    for inst in instances {
        let uptime = if inst.status == InstanceState::Online {
            duration(inst.uptime_ms)
        } else {
            "0".into()
        };
        let fields = [
            ("namespace", inst.namespace.clone()),
            ("pid", inst.pid.map_or("-".into(), |p| p.to_string())),
            ("id", inst.id.to_string()),
            ("status", inst.status.as_str().to_owned()),
            ("mode", inst.mode.clone()),
            ("port", ports(inst)),
            ("restarted", inst.restarts.to_string()),
            ("uptime", uptime),
            ("memory usage", bytes(inst.memory)),
            ("out log", path_or_dash(inst.out_log.as_deref())),
            ("error log", path_or_dash(inst.err_log.as_deref())),
        ];
        out.push_str(&format!("+--- {}\n", inst.name));
        for (key, value) in fields {
            out.push_str(&format!("{key} : {value}\n"));
        }
        out.push('\n');
    }
    out
}

fn path_or_dash(path: Option<&std::path::Path>) -> String {
    path.map_or("-".into(), |p| p.display().to_string())
}

fn ports(inst: &InstanceView) -> String {
    if inst.ports.is_empty() {
        "-".into()
    } else {
        inst.ports.join(" ")
    }
}

fn status_color(state: InstanceState) -> Color {
    match state {
        InstanceState::Online => Color::Green,
        InstanceState::Launching | InstanceState::WaitingRestart | InstanceState::Stopping => {
            Color::Yellow
        }
        InstanceState::Stopped => Color::Grey,
        InstanceState::Errored => Color::Red,
    }
}

/// `42s`, `5m`, `3h`, `2D`, like pm2.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}D", secs / 86_400),
    }
}

/// `12.3mb`, like pm2.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["b", "kb", "mb", "gb"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}b")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

pub fn describe(app: &AppDetail) -> String {
    let spec = &app.spec;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let mut row = |key: &str, value: String| {
        table.add_row(vec![Cell::new(key), Cell::new(value)]);
    };
    row("name", spec.name.clone());
    row("command", spec.command.display());
    row("cwd", spec.cwd.display().to_string());
    row("instances", spec.instances.to_string());
    let mode = app
        .instances
        .first()
        .map_or("fork".to_string(), |i| i.mode.clone());
    row("mode", mode);
    if !spec.cluster.listen.is_empty() {
        row(
            "listen",
            spec.cluster
                .listen
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(found) = found_ports(app) {
        row("ports", found);
    }
    row("readiness", readiness(app));
    // pm2's created_at is per instance (a restart renews it): the oldest of them.
    if let Some(at) = app
        .instances
        .iter()
        .map(|i| i.created_at)
        .filter(|at| *at > 0)
        .min()
    {
        row("created at", local_time(at));
    }
    row("autorestart", spec.autorestart.to_string());
    row("max restarts", spec.max_restarts.to_string());
    row("min uptime", format!("{} ms", spec.min_uptime_ms));
    row("restart delay", format!("{} ms", spec.restart_delay_ms));
    if let Some(backoff) = spec.exp_backoff_restart_delay_ms {
        row("exp backoff", format!("{backoff} ms"));
    }
    if !spec.stop_exit_codes.is_empty() {
        row("stop exit codes", format!("{:?}", spec.stop_exit_codes));
    }
    row("kill signal", spec.kill_signal.clone());
    row("kill timeout", format!("{} ms", spec.kill_timeout_ms));
    if let Some(limit) = spec.max_memory_restart {
        row("max memory restart", bytes(limit));
    }
    if let Some(pattern) = &spec.cron_restart {
        row("cron restart", pattern.clone());
    }
    if spec.watch.is_none() {
        row("watch", "off".into());
    }
    if let Some(watch) = &spec.watch {
        let paths: Vec<String> = watch
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        row("watch", paths.join(", "));
        let ignore: Vec<&str> = watch
            .ignore
            .iter()
            .chain(&watch.ignore_regex)
            .map(String::as_str)
            .collect();
        row("ignore watch", ignore.join(" "));
        if watch.delay_ms > 0 {
            row("watch delay", format!("{} ms", watch.delay_ms));
        }
    }
    if let Some(first) = app.instances.first() {
        row(
            "out log",
            first
                .out_log
                .as_ref()
                .map_or("(discarded)".into(), |p| p.display().to_string()),
        );
        row(
            "error log",
            first
                .err_log
                .as_ref()
                .map_or("(discarded)".into(), |p| p.display().to_string()),
        );
    }
    if let Some(dropped) = app
        .instances
        .first()
        .map(|i| i.log_lines_dropped)
        .filter(|n| *n > 0)
    {
        row(
            "log lines dropped",
            format!("{dropped} (not written: full disk or unwritable file; see `rcluster logs`)"),
        );
    }
    if !spec.env.is_empty() {
        row(
            "env",
            spec.env.keys().cloned().collect::<Vec<_>>().join(", "),
        );
    }
    let mut out = format!("app \"{}\"\n{table}\n", spec.name);
    let mut instances = Table::new();
    instances
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "id", "#", "pid", "status", "restarts", "uptime", "accepted", "open", "reason",
        ]);
    for inst in &app.instances {
        instances.add_row(vec![
            Cell::new(inst.id),
            Cell::new(inst.instance),
            Cell::new(inst.pid.map_or("-".to_string(), |p| p.to_string())),
            Cell::new(inst.status.as_str()).fg(status_color(inst.status)),
            Cell::new(inst.restarts),
            Cell::new(duration(inst.uptime_ms)),
            Cell::new(inst.accepted),
            Cell::new(inst.open),
            Cell::new(inst.reason.clone().unwrap_or_default()),
        ]);
    }
    out.push_str(&instances.to_string());
    out.push('\n');
    out
}

/// The ports the program bound that the daemon shares (pm2-style cluster mode with no
/// declared port) or holds (fork mode): `None` when the app declares its ports (the `listen`
/// row says them), or a fork app holds none.
fn found_ports(app: &AppDetail) -> Option<String> {
    let cluster = &app.spec.cluster;
    if !cluster.listen.is_empty() {
        return None;
    }
    let mut ports: Vec<&str> = Vec::new();
    for port in app.instances.iter().flat_map(|i| &i.ports) {
        if !ports.contains(&port.as_str()) {
            ports.push(port);
        }
    }
    // Fork mode: the ports the program bound, which the daemon holds across its reloads.
    if !cluster.discover {
        return (!ports.is_empty()).then(|| {
            format!(
                "{} (bound by the program, held by the daemon across reloads)",
                ports.join(", ")
            )
        });
    }
    Some(if ports.is_empty() {
        "none yet (shared once the program binds one)".into()
    } else {
        format!("{} (found when the program bound it)", ports.join(", "))
    })
}

/// What makes an instance ready (README: "Reload, readiness, scale"), and how many are.
pub fn readiness(app: &AppDetail) -> String {
    let spec = &app.spec;
    let timeout = format!("listen_timeout {} ms", spec.listen_timeout_ms);
    let signal = if spec.wait_ready {
        format!(
            "wait_ready: READY=1 on $NOTIFY_SOCKET or process.send('ready') (at most {timeout})"
        )
    } else if let Some(probe) = &spec.readiness {
        let what = match &probe.probe {
            ProbeKind::Http { path } => format!("http GET {path}"),
            ProbeKind::Tcp => "tcp connect".into(),
            ProbeKind::Exec { command } => format!("exec `{command}`"),
        };
        format!(
            "{what} probe every {} ms (timeout {} ms)",
            probe.interval_ms, probe.timeout_ms
        )
    } else if !spec.cluster.discover && spec.cluster.listen.is_empty() {
        format!("after {timeout}")
    } else {
        let how = match spec.cluster.balance {
            Strategy::RoundRobin => "listen() on the shared port",
            Strategy::Proxy | Strategy::LeastConn => "its private $PORT answers",
            Strategy::Shared | Strategy::Reuseport => "first use of its socket on fd 3",
        };
        format!("{how} (at most {timeout})")
    };
    let ready = app.instances.iter().filter(|i| i.ready).count();
    format!("{ready}/{} ready · {signal}", app.instances.len())
}

/// `2026-03-04 10:20:30 (5m ago)`, local time, from ms since the Unix epoch.
fn local_time(epoch_ms: u64) -> String {
    let Some(at) = i64::try_from(epoch_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
    else {
        return "-".into();
    };
    let ago = chrono::Utc::now()
        .signed_duration_since(at)
        .num_milliseconds()
        .max(0) as u64;
    format!(
        "{} ({} ago)",
        at.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S"),
        duration(ago)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(59_000), "59s");
        assert_eq!(duration(61_000), "1m");
        assert_eq!(duration(7_200_000), "2h");
        assert_eq!(duration(200_000_000), "2D");
        assert_eq!(bytes(512), "512b");
        assert_eq!(bytes(3 * 1024 * 1024 + 300 * 1024), "3.3mb");
    }
}
