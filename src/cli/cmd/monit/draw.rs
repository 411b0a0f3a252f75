//! How `monit` looks: pm2 monit's four panes (the instances, the selected app's logs, the
//! selected instance's CPU and memory over the last minutes, the app's details) and a bar with
//! the keys. A terminal too small for four panes gets the list alone.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState, Wrap};
use ratatui::Frame;

use super::model::Model;
use crate::cli::render;
use crate::protocol::model::{AppDetail, InstanceState, InstanceView};
use crate::protocol::response::Stream;

/// The list's width besides the name: borders, the selection mark, the other columns and the
/// spaces between them.
const LIST_CHROME: u16 = 2 + 2 + 3 + 9 + 3 + 6 + 8 + 5;
/// Below this, only the list and the keys.
const MIN_WIDTH: u16 = 70;
const MIN_HEIGHT: u16 = 16;

pub fn frame(frame: &mut Frame, model: &Model) {
    let [body, bar] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    keys_bar(frame, bar, model);
    if body.width < MIN_WIDTH || body.height < MIN_HEIGHT {
        instance_list(frame, body, model);
        return;
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
    // The list as wide as its longest name needs (within reason), the logs the rest.
    let longest = model.instances.iter().map(|i| i.name.chars().count()).max();
    let list_width =
        (longest.unwrap_or(0).clamp(6, 24) as u16 + LIST_CHROME).min(body.width * 3 / 5);
    let [list, logs] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Fill(1)]).areas(top);
    let [metrics, details] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Fill(1)]).areas(bottom);
    instance_list(frame, list, model);
    log_pane(frame, logs, model);
    metrics_pane(frame, metrics, model);
    details_pane(frame, details, model);
}

fn status_color(state: InstanceState) -> Color {
    match state {
        InstanceState::Online => Color::Green,
        InstanceState::Launching | InstanceState::WaitingRestart | InstanceState::Stopping => {
            Color::Yellow
        }
        InstanceState::Stopped => Color::DarkGray,
        InstanceState::Errored => Color::Red,
    }
}

fn titled(title: String) -> Block<'static> {
    Block::bordered()
        .title(Span::styled(
            title,
            Style::new().add_modifier(Modifier::BOLD),
        ))
        .border_style(Style::new().fg(Color::Cyan))
}

fn instance_list(frame: &mut Frame, area: Rect, model: &Model) {
    let visible = model.visible();
    let title = match (&model.filter, visible.len(), model.instances.len()) {
        (f, shown, all) if !f.is_empty() => format!(" Instances · /{f} · {shown} of {all} "),
        (_, _, all) => format!(" Instances · {all} "),
    };
    let rows = visible.iter().map(|inst| {
        Row::new(vec![
            Cell::from(inst.id.to_string()),
            Cell::from(inst.name.clone()),
            Cell::from(Span::styled(
                match inst.status {
                    InstanceState::WaitingRestart => "waiting",
                    other => other.as_str(),
                },
                Style::new().fg(status_color(inst.status)),
            )),
            Cell::from(inst.restarts.to_string()),
            Cell::from(format!("{:.1}%", inst.cpu)),
            Cell::from(render::bytes(inst.memory)),
        ])
    });
    // The pid is in the details pane: the name gets the room.
    let header = Row::new(["id", "name", "status", "↺", "cpu", "mem"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(3),
        Constraint::Length(6),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(titled(title))
        .row_highlight_style(
            Style::new()
                .bg(Color::Indexed(238))
                .add_modifier(Modifier::BOLD),
        )
        .highlight_symbol("▶ ");
    let mut state = TableState::default();
    state.select(visible.iter().position(|i| Some(i.id) == model.selected));
    frame.render_stateful_widget(table, area, &mut state);
    if let Some(why) = &model.unreachable {
        let inner = area.inner(ratatui::layout::Margin::new(1, 1));
        let note = Paragraph::new(format!("daemon: {why}")).style(Style::new().fg(Color::Red));
        let last = Rect {
            y: inner.y + inner.height.saturating_sub(1),
            height: 1.min(inner.height),
            ..inner
        };
        frame.render_widget(note, last);
    }
}

fn log_pane(frame: &mut Frame, area: Rect, model: &Model) {
    let app = model.selected().map(|i| i.name.clone());
    let title = match &app {
        Some(app) => format!(" {app} · logs "),
        None => " logs ".into(),
    };
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .as_ref()
        .and_then(|app| model.logs.get(app))
        .map(|kept| {
            let skip = kept.len().saturating_sub(height);
            kept.iter()
                .skip(skip)
                .map(|line| {
                    let prefix = match (line.stream, line.id) {
                        (None, _) => "rcluster".to_string(),
                        (_, Some(id)) => format!("{id}|"),
                        (_, None) => "  ".to_string(),
                    };
                    let style = match line.stream {
                        Some(Stream::Err) => Style::new().fg(Color::Red),
                        Some(Stream::Out) => Style::new(),
                        None => Style::new().fg(Color::Yellow),
                    };
                    Line::from(vec![
                        Span::styled(format!("{prefix} "), Style::new().fg(Color::DarkGray)),
                        Span::styled(line.text.clone(), style),
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    frame.render_widget(Paragraph::new(lines).block(titled(title)), area);
}

fn metrics_pane(frame: &mut Frame, area: Rect, model: &Model) {
    let selected = model.selected();
    let title = match selected {
        Some(inst) => format!(" {} {} · metrics ", inst.id, inst.name),
        None => " metrics ".into(),
    };
    let block = titled(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(inst) = selected else {
        return;
    };
    let Some(history) = model.history.get(&inst.id) else {
        return;
    };
    let [cpu_label, cpu_line, memory_label, memory_line] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    let width = inner.width as usize;
    let last = |samples: &std::collections::VecDeque<u64>| -> Vec<u64> {
        samples
            .iter()
            .skip(samples.len().saturating_sub(width))
            .copied()
            .collect()
    };
    let cpu = last(&history.cpu);
    let memory = last(&history.memory);
    let peak_cpu = cpu.iter().copied().max().unwrap_or(0);
    let peak_memory = memory.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Paragraph::new(format!(
            "cpu {:.1}% · peak {:.1}%",
            inst.cpu,
            peak_cpu as f64 / 10.0
        )),
        cpu_label,
    );
    // At least 10% full scale, so that an idle process draws a flat line, not noise.
    frame.render_widget(
        Sparkline::default()
            .data(&cpu)
            .max(peak_cpu.max(100))
            .style(Style::new().fg(Color::Green)),
        cpu_line,
    );
    frame.render_widget(
        Paragraph::new(format!(
            "mem {} · peak {}",
            render::bytes(inst.memory),
            render::bytes(peak_memory)
        )),
        memory_label,
    );
    frame.render_widget(
        Sparkline::default()
            .data(&memory)
            .max(peak_memory.max(1))
            .style(Style::new().fg(Color::Magenta)),
        memory_line,
    );
}

fn details_pane(frame: &mut Frame, area: Rect, model: &Model) {
    let Some(inst) = model.selected() else {
        frame.render_widget(titled(" details ".into()), area);
        return;
    };
    let siblings: Vec<InstanceView> = model
        .instances
        .iter()
        .filter(|i| i.name == inst.name)
        .cloned()
        .collect();
    let key = |k: &'static str| Span::styled(format!("{k:<12}"), Style::new().fg(Color::Cyan));
    let mut rows: Vec<Line> = vec![
        Line::from(vec![
            key("instance"),
            Span::raw(format!(
                "{} of {} · id {} · pid {}",
                inst.instance,
                siblings.len(),
                inst.id,
                inst.pid.map_or("-".into(), |p| p.to_string())
            )),
        ]),
        Line::from(vec![
            key("status"),
            Span::styled(
                inst.status.as_str(),
                Style::new().fg(status_color(inst.status)),
            ),
            Span::raw(match inst.status {
                InstanceState::Online => format!(" {}", render::duration(inst.uptime_ms)),
                _ => String::new(),
            }),
            Span::raw(if inst.ready {
                " · ready"
            } else {
                " · not ready"
            }),
        ]),
        Line::from(vec![key("command"), Span::raw(inst.command.clone())]),
        Line::from(vec![key("cwd"), Span::raw(inst.cwd.display().to_string())]),
        Line::from(vec![
            key("ports"),
            Span::raw(if inst.ports.is_empty() {
                "-".into()
            } else {
                inst.ports.join(" ")
            }),
        ]),
        Line::from(vec![key("strategy"), Span::raw(inst.mode.clone())]),
        Line::from(vec![key("connections"), Span::raw(connections(inst))]),
        Line::from(vec![
            key("restarts"),
            Span::raw(match &inst.reason {
                Some(reason) => format!("{} · last: {reason}", inst.restarts),
                None => inst.restarts.to_string(),
            }),
        ]),
    ];
    if let Some(spec) = model.specs.get(&inst.name) {
        let detail = AppDetail {
            spec: spec.clone(),
            instances: siblings,
        };
        rows.push(Line::from(vec![
            key("readiness"),
            Span::raw(render::readiness(&detail)),
        ]));
    }
    let title = format!(" {} · details ", inst.name);
    frame.render_widget(
        Paragraph::new(rows)
            .wrap(Wrap { trim: false })
            .block(titled(title)),
        area,
    );
}

/// Dealt, and queued (round-robin: waiting in the instance's channel) or open (proxy modes).
fn connections(inst: &InstanceView) -> String {
    match inst.mode.as_str() {
        "fork" => "-".into(),
        "proxy" | "least-conn" => format!("{} dealt · {} open", inst.accepted, inst.open),
        "round-robin" => format!("{} dealt · {} queued", inst.accepted, inst.open),
        _ => format!("{} dealt", inst.accepted),
    }
}

fn keys_bar(frame: &mut Frame, area: Rect, model: &Model) {
    let key = |k: &'static str| Span::styled(k, Style::new().fg(Color::Black).bg(Color::Cyan));
    let line = if model.editing_filter {
        Line::from(vec![
            key(" / "),
            Span::raw(format!(" {}▏", model.filter)),
            Span::styled(
                "   Enter keep · Esc clear",
                Style::new().fg(Color::DarkGray),
            ),
        ])
    } else if let Some(app) = &model.confirm {
        Line::from(vec![Span::styled(
            format!(" stop {app}? y to stop, any other key to cancel "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        )])
    } else {
        const KEYS: [(&str, &str); 6] = [
            (" ↑↓ ", " select "),
            (" r ", " restart "),
            (" R ", " reload "),
            (" s ", " stop "),
            (" / ", " filter "),
            (" q ", " quit "),
        ];
        // A narrow terminal gets the keys with one-letter hints, `quit` still spelled out.
        let full: usize = KEYS.iter().map(|(k, w)| k.chars().count() + w.len()).sum();
        let narrow = full > area.width as usize;
        let mut spans = Vec::new();
        for (k, word) in KEYS {
            spans.push(key(k));
            spans.push(Span::raw(match (narrow, k) {
                (false, _) | (true, " q ") => word.to_owned(),
                (true, _) => String::from(" "),
            }));
        }
        if let Some(notice) = model.notice() {
            spans.push(Span::styled(
                format!("  {notice}"),
                Style::new().add_modifier(Modifier::BOLD),
            ));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
