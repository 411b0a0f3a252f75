//! The top level of an ecosystem file: where its apps are (`apps:`, pm2's `pm2:`, a top-level
//! list, or the file itself as one app), pm2's `static:` file servers, `deploy:` (noted). Keys
//! it does not know are warnings, as pm2 ignores them.

use std::path::Path;

use super::tree::{Node, Pos, Value};
use super::{first_at, keys, resolve, Ctx};
use crate::config::suggest;

/// The apps of a file: nodes of the file itself, then those made from `static:` entries.
pub struct Apps<'n> {
    pub listed: Vec<&'n Node>,
    pub statics: Vec<Node>,
}

/// The app nodes: `apps:` (or `pm2:`) of a mapping, a top-level list (pm2's JSON habit), or a
/// single app; `static:` entries as `serve` apps.
pub fn top_level<'n>(ctx: &mut Ctx, root: &'n Node, dir: &Path) -> Apps<'n> {
    let mut apps = Apps {
        listed: Vec::new(),
        statics: Vec::new(),
    };
    let entries = match &root.value {
        Value::Seq(items) if items.is_empty() => {
            ctx.error(root.pos, "the file has no apps");
            return apps;
        }
        Value::Seq(items) => {
            apps.listed = items.iter().collect();
            return apps;
        }
        Value::Map(entries) => entries,
        Value::Null => {
            ctx.error(
                None,
                "the file is empty; expected `apps:` with a list of apps",
            );
            return apps;
        }
        _ => {
            let found = root.describe();
            ctx.error(
                root.pos,
                format!("expected `apps:` with a list of apps, found {found}"),
            );
            return apps;
        }
    };
    let is_key = |k: &Node, names: &[&str]| k.as_str().is_some_and(|k| names.contains(&k));
    let has = |names: &[&str]| entries.iter().any(|(k, _)| is_key(k, names));
    let has_apps = has(&["apps"]);
    let has_pm2 = has(&["pm2"]);
    if !has_apps && !has_pm2 && !has(&["static"]) && has(&["script", "exec", "cmd", "command"]) {
        apps.listed.push(root);
        return apps;
    }
    let mut seen: Vec<(&str, Option<Pos>)> = Vec::new();
    let mut unknown = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_str() else {
            ctx.error(
                key.pos,
                format!("keys must be strings, found {}", key.describe()),
            );
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            ctx.error(
                key.pos,
                format!("`{name}` is given twice{}", first_at(*first)),
            );
            continue;
        }
        seen.push((name, key.pos));
        match name {
            // pm2 reads `apps`, else `pm2` (API.js `_startJson`).
            "pm2" if has_apps => ctx.warn(
                key.pos,
                "`pm2` ignored: the file has `apps`, which pm2 reads first",
            ),
            "apps" | "pm2" => match &value.value {
                Value::Seq(items) if items.is_empty() => {
                    ctx.error(key.pos, format!("`{name}` is empty"))
                }
                Value::Seq(items) => apps.listed.extend(items),
                Value::Map(_) => apps.listed.push(value),
                _ => {
                    let found = value.describe();
                    ctx.error(
                        value.pos.or(key.pos),
                        format!("`{name}`: expected a list of apps, found {found}"),
                    );
                }
            },
            "static" => match &value.value {
                Value::Seq(items) => {
                    for (index, entry) in items.iter().enumerate() {
                        if let Some(app) = static_app(ctx, entry, index, dir) {
                            apps.statics.push(app);
                        }
                    }
                }
                _ => {
                    let found = value.describe();
                    ctx.error(
                        value.pos.or(key.pos),
                        format!("`static`: expected a list of folders to serve, found {found}"),
                    );
                }
            },
            "deploy" => ctx.note(
                key.pos,
                "`deploy` section ignored: rcluster does not deploy",
            ),
            _ if name.starts_with("x-") => {}
            _ => {
                let mut message = suggest::unknown_key_message(name, keys::TOP_KEYS);
                if suggest::did_you_mean(name, keys::TOP_KEYS).is_none() {
                    message.push_str(" (the top level holds `apps`, `static` and `deploy`; keys starting with `x-` are free, e.g. for YAML anchors)");
                }
                unknown.push((key.pos, message));
            }
        }
    }
    let no_apps = !has_apps && !has_pm2 && !has(&["static"]);
    for (pos, message) in unknown {
        // With no apps anywhere, the unknown key (`app:`) is what is wrong, not a detail.
        if no_apps {
            ctx.error(pos, message);
        } else {
            ctx.warn(pos, message);
        }
    }
    if no_apps && ctx.problem_count() == 0 {
        ctx.error(
            root.pos,
            "no `apps:` list (and no `script:` for a single app)",
        );
    }
    apps
}

/// A `static:` entry (pm2's serve block: `{path, port, spa, basic_auth: {username, password}}`)
/// as the app pm2 makes of it: its file server (rcluster's `serve`) configured by `PM2_SERVE_*`.
fn static_app(ctx: &mut Ctx, entry: &Node, index: usize, dir: &Path) -> Option<Node> {
    let Value::Map(keys_values) = &entry.value else {
        let found = entry.describe();
        ctx.error(
            entry.pos,
            format!(
                "`static` #{}: expected a mapping like {{path: ./public, port: 8080}}, found {found}",
                index + 1
            ),
        );
        return None;
    };
    let label = format!("`static` #{}", index + 1);
    let mut ok = true;
    let mut name = None;
    let mut env: Vec<(Node, Node)> = Vec::new();
    let mut port_text = None;
    let text = |pos: Option<Pos>, s: String| Node {
        pos,
        value: Value::Str(s),
    };
    for (key, value) in keys_values {
        let Some(written) = key.as_str() else {
            ctx.error(
                key.pos,
                format!("{label}: keys must be strings, found {}", key.describe()),
            );
            ok = false;
            continue;
        };
        let at = value.pos.or(key.pos);
        let mut wrong = |ctx: &mut Ctx, expected: &str| {
            let found = value.describe();
            ctx.error(
                at,
                format!("{label}: `{written}`: expected {expected}, found {found}"),
            );
            ok = false;
        };
        match (written, &value.value) {
            ("name", Value::Str(_)) => name = Some(value.clone()),
            ("name", _) => wrong(ctx, "a string"),
            ("port", _) => {
                let number = match &value.value {
                    Value::Str(s) => s.trim().parse::<u16>().ok(),
                    Value::Int(i) => u16::try_from(*i).ok(),
                    _ => None,
                };
                match number {
                    Some(port) => {
                        port_text = Some(port.to_string());
                        env.push((
                            text(key.pos, "PM2_SERVE_PORT".into()),
                            text(at, port.to_string()),
                        ));
                    }
                    None => wrong(ctx, "a port number (0 to 65535)"),
                }
            }
            ("host", Value::Str(host)) => env.push((
                text(key.pos, crate::serve::ENV_HOST.into()),
                text(at, host.clone()),
            )),
            ("host", _) => wrong(ctx, "an IP address"),
            ("path", Value::Str(path)) => {
                let full = resolve(dir, path);
                env.push((
                    text(key.pos, "PM2_SERVE_PATH".into()),
                    text(at, full.to_string_lossy().into_owned()),
                ));
            }
            ("path", _) => wrong(ctx, "a folder"),
            ("spa", Value::Bool(spa)) => env.push((
                text(key.pos, "PM2_SERVE_SPA".into()),
                text(at, spa.to_string()),
            )),
            ("spa", _) => wrong(ctx, "true or false"),
            ("basic_auth", Value::Map(auth)) => {
                let field = |wanted: &str| {
                    auth.iter()
                        .find(|(k, _)| k.as_str() == Some(wanted))
                        .and_then(|(_, v)| v.as_str().map(|s| (s.to_owned(), v.pos)))
                };
                match (field("username"), field("password")) {
                    (Some((user, user_at)), Some((password, password_at))) => {
                        env.push((
                            text(key.pos, "PM2_SERVE_BASIC_AUTH".into()),
                            text(at, "true".into()),
                        ));
                        env.push((
                            text(key.pos, "PM2_SERVE_BASIC_AUTH_USERNAME".into()),
                            text(user_at, user),
                        ));
                        env.push((
                            text(key.pos, "PM2_SERVE_BASIC_AUTH_PASSWORD".into()),
                            text(password_at, password),
                        ));
                    }
                    _ => wrong(ctx, "{username, password}"),
                }
            }
            ("basic_auth", _) => wrong(ctx, "{username, password}"),
            ("ftp" | "directory" | "monitor", _) => {
                let why = match written {
                    "ftp" => "rcluster's serve lists no folders",
                    "monitor" => "it belongs to pm2's monitoring service (pm2.io)",
                    _ => "pm2's server does not read it either",
                };
                ctx.note(
                    key.pos,
                    format!("{label}: `{written}` has no effect in rcluster: {why}"),
                );
            }
            _ => ctx.warn(
                key.pos,
                format!(
                    "{label}: {}",
                    suggest::unknown_key_message(written, keys::STATIC_KEYS)
                ),
            ),
        }
    }
    if !ok {
        return None;
    }
    // pm2's default name.
    let name = name.unwrap_or_else(|| {
        let port = port_text.unwrap_or_else(|| crate::serve::DEFAULT_PORT.to_string());
        text(entry.pos, format!("static-page-server-{port}"))
    });
    let pos = entry.pos;
    Some(Node {
        pos,
        value: Value::Map(vec![
            (text(pos, "name".into()), name),
            (text(pos, "script".into()), text(pos, "serve".into())),
            (
                text(pos, "env".into()),
                Node {
                    pos,
                    value: Value::Map(env),
                },
            ),
        ]),
    })
}
