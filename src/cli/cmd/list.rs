//! What `list`, `jlist`, `prettylist` and `describe` print: the table, pm2's mini list, and
//! pm2's shape as JSON or Node's object notation (`pm2_list`, `inspect`), sorted as asked.

use anyhow::{bail, Context, Result};

use crate::cli::client::Client;
use crate::cli::cmd::control::expect_instances;
use crate::cli::inspect::{inspect, Js};
use crate::cli::target::Resolver;
use crate::cli::{pm2_list, render};
use crate::paths::Home;
use crate::protocol::model::{AppSpec, InstanceView};
use crate::protocol::{Request, Response, Target};

/// How `list` prints pm2's shape: JSON on one line (jlist, for scripts) or Node's object
/// notation (prettylist, as pm2 prints it).
pub enum Json {
    Compact,
    Pretty,
}

/// How `list` prints: a table, pm2's mini list, or JSON.
pub enum ListForm {
    Table,
    Mini,
    Json(Json),
}

pub fn list(home: &Home, form: ListForm, sort: Option<&str>) -> Result<i32> {
    let order = sort.map(sort_order).transpose()?;
    let mut client = Client::connect(home)?;
    let style = match form {
        ListForm::Json(style) => style,
        ListForm::Table | ListForm::Mini => {
            let mut instances = expect_instances(client.call(&Request::List)?)?;
            if let Some(order) = order {
                instances.sort_by(|a, b| ordered(order, a, b));
            }
            match form {
                ListForm::Mini => print!("{}", render::instances_mini(&instances)),
                _ => println!("{}", render::instances_table(&instances)),
            }
            print!("{}", render::log_drop_notes(&instances));
            return Ok(0);
        }
    };
    // pm2's shape needs each app's definition beside its instances.
    let response = client.call(&Request::Describe {
        target: Target::All,
    })?;
    let Response::Apps { apps } = response else {
        bail!("unexpected answer from the daemon: {response:?}");
    };
    let mut pairs: Vec<(&AppSpec, &InstanceView)> = apps
        .iter()
        .flat_map(|app| app.instances.iter().map(move |i| (&app.spec, i)))
        .collect();
    // pm2 lists by pm_id.
    pairs.sort_by_key(|(_, i)| i.id);
    if let Some(order) = order {
        pairs.sort_by(|a, b| ordered(order, a.1, b.1));
    }
    let user = pm2_list::username();
    let objects = pairs
        .into_iter()
        .map(|(spec, inst)| pm2_list::instance(spec, inst, &user));
    let list = match style {
        Json::Compact => Js::Arr(objects.collect()),
        Json::Pretty => Js::Arr(objects.map(pm2_list::without_repeats).collect()),
    };
    let text = match style {
        Json::Compact => serde_json::to_string(&list)?,
        Json::Pretty => inspect(&list),
    };
    emit(&text)?;
    Ok(0)
}

/// `text` and a newline on stdout; a reader that stopped reading (`| head`, `| grep -q`) is
/// not an error.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn ordered(
    (field, descending): (&str, bool),
    a: &InstanceView,
    b: &InstanceView,
) -> std::cmp::Ordering {
    let ordering = compare(field, a, b);
    if descending {
        ordering.reverse()
    } else {
        ordering
    }
}

/// `list --sort FIELD[:asc|desc]`: the field and whether descending.
fn sort_order(text: &str) -> Result<(&str, bool)> {
    const FIELDS: &[&str] = &[
        "name", "id", "pid", "cpu", "memory", "uptime", "restarts", "status",
    ];
    let (field, order) = text.split_once(':').unwrap_or((text, "asc"));
    let descending = match order {
        "asc" => false,
        "desc" => true,
        other => bail!("--sort {text}: the order is asc or desc, not `{other}`"),
    };
    match FIELDS.iter().find(|f| **f == field) {
        Some(field) => Ok((field, descending)),
        None => bail!("--sort {text}: sort by one of {}", FIELDS.join(", ")),
    }
}

fn compare(field: &str, a: &InstanceView, b: &InstanceView) -> std::cmp::Ordering {
    match field {
        "name" => a.name.cmp(&b.name).then(a.id.cmp(&b.id)),
        "pid" => a.pid.cmp(&b.pid),
        "cpu" => a.cpu.total_cmp(&b.cpu),
        "memory" => a.memory.cmp(&b.memory),
        "uptime" => a.uptime_ms.cmp(&b.uptime_ms),
        "restarts" => a.restarts.cmp(&b.restarts),
        "status" => format!("{:?}", a.status).cmp(&format!("{:?}", b.status)),
        _ => a.id.cmp(&b.id),
    }
}

pub fn describe(home: &Home, target: &str, json: bool) -> Result<i32> {
    let mut client = Client::connect(home)?;
    let target = Resolver::new()?.resolve(&mut client, target)?;
    let response = client.call(&Request::Describe { target })?;
    let Response::Apps { apps } = response else {
        bail!("unexpected answer from the daemon: {response:?}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&apps)?);
    } else {
        for app in &apps {
            print!("{}", render::describe(app));
        }
    }
    Ok(0)
}
