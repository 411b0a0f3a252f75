//! What `monit` shows, apart from how: the last list from the daemon, each instance's CPU and
//! memory history (for the sparklines), the apps' recent log lines, the selection, the filter
//! and what an action is doing. Pure state: the feed threads (`feed`) bring messages, the keys
//! come from `run`, and `draw` reads it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::protocol::model::{AppDetail, AppSpec, InstanceView};
use crate::protocol::response::Stream;

/// Samples kept per instance: 10 minutes at the default 1 s interval.
pub const HISTORY: usize = 600;
/// Log lines kept per app.
const LOG_LINES: usize = 500;
/// Characters kept of one log line (the pane shows one screen line of it).
const LINE_CHARS: usize = 2000;
/// How long an action's outcome stays in the bottom bar.
const NOTICE_FOR: Duration = Duration::from_secs(6);

/// What the feed threads report.
pub enum Msg {
    /// A fresh list of every instance.
    List(Vec<InstanceView>),
    /// The apps' definitions (for the details pane), fetched when the set of apps changes.
    Specs(Vec<AppDetail>),
    /// Log lines of an app: `id` is None for lines from a file of several instances;
    /// `stream` None for rcluster's own records (started, exited, restarting...).
    Lines {
        app: String,
        id: Option<u32>,
        stream: Option<Stream>,
        lines: Vec<String>,
    },
    /// The daemon cannot be reached (None: it answers again).
    Unreachable(Option<String>),
    /// An action has ended: its outcome, for the bottom bar.
    Done(String),
}

/// A verb the keys ask for, on the selected app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Restart,
    Reload,
    Stop,
}

impl Verb {
    pub fn doing(self) -> &'static str {
        match self {
            Verb::Restart => "restarting",
            Verb::Reload => "reloading",
            Verb::Stop => "stopping",
        }
    }
}

/// What a key press asks of the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    Nothing,
    Quit,
    Act(Verb, String),
}

pub struct LogLine {
    pub id: Option<u32>,
    /// None: a lifecycle record of rcluster's.
    pub stream: Option<Stream>,
    pub text: String,
}

#[derive(Default)]
pub struct History {
    /// CPU in tenths of a percent (sparklines take integers).
    pub cpu: VecDeque<u64>,
    pub memory: VecDeque<u64>,
}

#[derive(Default)]
pub struct Model {
    pub instances: Vec<InstanceView>,
    pub history: HashMap<u32, History>,
    pub specs: BTreeMap<String, AppSpec>,
    pub logs: HashMap<String, VecDeque<LogLine>>,
    /// The selected instance's id (kept across refreshes, restarts and reloads).
    pub selected: Option<u32>,
    pub filter: String,
    pub editing_filter: bool,
    /// A stop waiting for `y`.
    pub confirm: Option<String>,
    pub notice: Option<(String, Instant)>,
    pub unreachable: Option<String>,
    /// Set when a message or key changed what is shown.
    pub dirty: bool,
}

impl Model {
    pub fn apply(&mut self, msg: Msg) {
        self.dirty = true;
        match msg {
            Msg::List(instances) => self.on_list(instances),
            Msg::Specs(apps) => {
                self.specs = apps
                    .into_iter()
                    .map(|app| (app.spec.name.clone(), app.spec))
                    .collect();
            }
            Msg::Lines {
                app,
                id,
                stream,
                lines,
            } => {
                let kept = self.logs.entry(app).or_default();
                for line in lines {
                    if kept.len() == LOG_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(LogLine {
                        id,
                        stream,
                        text: printable(&line),
                    });
                }
            }
            Msg::Unreachable(why) => {
                // What it ran is unknown now: no stale rows that look live.
                self.instances.clear();
                self.history.clear();
                self.unreachable = why;
            }
            Msg::Done(outcome) => self.notice = Some((outcome, Instant::now())),
        }
    }

    fn on_list(&mut self, instances: Vec<InstanceView>) {
        for inst in &instances {
            let history = self.history.entry(inst.id).or_default();
            push_capped(&mut history.cpu, (inst.cpu * 10.0).round() as u64);
            push_capped(&mut history.memory, inst.memory);
        }
        self.history
            .retain(|id, _| instances.iter().any(|i| i.id == *id));
        self.instances = instances;
        self.unreachable = None;
        self.keep_selection();
    }

    /// The rows the list shows: every instance the filter matches (name, namespace or id).
    pub fn visible(&self) -> Vec<&InstanceView> {
        let filter = self.filter.to_lowercase();
        self.instances
            .iter()
            .filter(|i| {
                filter.is_empty()
                    || i.name.to_lowercase().contains(&filter)
                    || i.namespace.to_lowercase().contains(&filter)
                    || i.id.to_string() == filter
            })
            .collect()
    }

    pub fn selected(&self) -> Option<&InstanceView> {
        let id = self.selected?;
        self.visible().into_iter().find(|i| i.id == id)
    }

    /// The selection stays on its instance while it is shown; otherwise the first row.
    fn keep_selection(&mut self) {
        let visible = self.visible();
        if !visible.iter().any(|i| Some(i.id) == self.selected) {
            self.selected = visible.first().map(|i| i.id);
        }
    }

    fn move_selection(&mut self, by: isize) {
        let visible = self.visible();
        if visible.is_empty() {
            return;
        }
        let at = visible
            .iter()
            .position(|i| Some(i.id) == self.selected)
            .unwrap_or(0);
        let last = visible.len() as isize - 1;
        let to = (at as isize + by).clamp(0, last) as usize;
        self.selected = Some(visible[to].id);
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|(_, at)| at.elapsed() < NOTICE_FOR)
            .map(|(text, _)| text.as_str())
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Asked {
        self.dirty = true;
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            return Asked::Quit;
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() && self.filter.len() < 64 => {
                    self.filter.push(c);
                }
                KeyCode::Up => self.move_selection(-1),
                KeyCode::Down => self.move_selection(1),
                _ => {}
            }
            self.keep_selection();
            return Asked::Nothing;
        }
        if let Some(app) = self.confirm.take() {
            if key.code == KeyCode::Char('y') {
                return Asked::Act(Verb::Stop, app);
            }
            self.notice = Some((format!("stop {app}: cancelled"), Instant::now()));
            return Asked::Nothing;
        }
        let app = self.selected().map(|i| i.name.clone());
        match key.code {
            KeyCode::Char('q') => return Asked::Quit,
            KeyCode::Esc if self.filter.is_empty() => return Asked::Quit,
            KeyCode::Esc => {
                self.filter.clear();
                self.keep_selection();
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::PageUp => self.move_selection(-10),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX / 2),
            KeyCode::Char('/') => self.editing_filter = true,
            KeyCode::Char('r') => return act(Verb::Restart, app),
            KeyCode::Char('R') => return act(Verb::Reload, app),
            KeyCode::Char('s') => {
                if let Some(app) = app {
                    self.confirm = Some(app);
                }
            }
            _ => {}
        }
        Asked::Nothing
    }
}

fn act(verb: Verb, app: Option<String>) -> Asked {
    app.map_or(Asked::Nothing, |app| Asked::Act(verb, app))
}

fn push_capped(samples: &mut VecDeque<u64>, value: u64) {
    if samples.len() == HISTORY {
        samples.pop_front();
    }
    samples.push_back(value);
}

/// A log line as the terminal may show it: no escape sequences or other control characters
/// (an app's colours or cursor moves would draw over the panes), tabs as spaces, not too long.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(LINE_CHARS));
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= LINE_CHARS {
            break;
        }
        match c {
            // CSI sequences (colours): ESC [ ... final byte in @..~.
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::InstanceState;

    fn instance(id: u32, name: &str) -> InstanceView {
        InstanceView {
            id,
            name: name.into(),
            namespace: "default".into(),
            instance: 0,
            pid: Some(100 + id),
            status: InstanceState::Online,
            restarts: 0,
            uptime_ms: 1000,
            cpu: 1.5,
            memory: 1 << 20,
            reason: None,
            mode: "fork".into(),
            ports: Vec::new(),
            command: "sleep 1000".into(),
            cwd: "/".into(),
            out_log: None,
            err_log: None,
            ready: true,
            accepted: 0,
            open: 0,
            unstable_restarts: 0,
            created_at: 0,
            started_at: 0,
            log_lines_dropped: 0,
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn selection_follows_its_instance_and_the_filter() {
        let mut model = Model::default();
        model.apply(Msg::List(vec![instance(0, "api"), instance(1, "worker")]));
        assert_eq!(model.selected, Some(0));
        model.on_key(key(KeyCode::Down));
        assert_eq!(model.selected, Some(1));
        model.on_key(key(KeyCode::Down));
        assert_eq!(model.selected, Some(1), "stays on the last row");
        // A refresh in another order keeps the instance selected.
        model.apply(Msg::List(vec![instance(1, "worker"), instance(0, "api")]));
        assert_eq!(model.selected, Some(1));
        model.on_key(key(KeyCode::Char('/')));
        for c in "ap".chars() {
            model.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(model.visible().len(), 1);
        assert_eq!(
            model.selected,
            Some(0),
            "the selection moves into the filter"
        );
        assert_eq!(model.on_key(key(KeyCode::Enter)), Asked::Nothing);
        assert_eq!(
            model.on_key(key(KeyCode::Char('r'))),
            Asked::Act(Verb::Restart, "api".into())
        );
        model.on_key(key(KeyCode::Esc));
        assert_eq!(model.visible().len(), 2, "Esc clears the filter");
        assert_eq!(model.on_key(key(KeyCode::Esc)), Asked::Quit);
        assert_eq!(model.on_key(key(KeyCode::Char('q'))), Asked::Quit);
    }

    #[test]
    fn stop_asks_first_and_history_is_bounded() {
        let mut model = Model::default();
        model.apply(Msg::List(vec![instance(0, "api")]));
        assert_eq!(model.on_key(key(KeyCode::Char('s'))), Asked::Nothing);
        assert_eq!(
            model.on_key(key(KeyCode::Char('y'))),
            Asked::Act(Verb::Stop, "api".into())
        );
        model.on_key(key(KeyCode::Char('s')));
        assert_eq!(model.on_key(key(KeyCode::Char('n'))), Asked::Nothing);
        assert!(model.notice().is_some_and(|n| n.contains("cancelled")));
        for _ in 0..HISTORY + 10 {
            model.apply(Msg::List(vec![instance(0, "api")]));
        }
        assert_eq!(model.history[&0].cpu.len(), HISTORY);
        assert_eq!(model.history[&0].cpu.back(), Some(&15));
        model.apply(Msg::List(Vec::new()));
        assert!(model.history.is_empty(), "gone instances leave no history");
    }

    #[test]
    fn log_lines_lose_their_escape_sequences() {
        assert_eq!(printable("\u{1b}[31mred\u{1b}[0m\tdone\r"), "red    done");
        let mut model = Model::default();
        model.apply(Msg::Lines {
            app: "api".into(),
            id: Some(0),
            stream: Some(Stream::Out),
            lines: (0..LOG_LINES + 5).map(|n| format!("line {n}")).collect(),
        });
        let kept = &model.logs["api"];
        assert_eq!(kept.len(), LOG_LINES);
        assert_eq!(kept.back().map(|l| l.text.as_str()), Some("line 504"));
    }
}
