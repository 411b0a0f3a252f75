//! One module per verb family; `dispatch` routes a parsed command line to it.

mod control;
mod ecosystem;
pub use ecosystem::is_ecosystem_file;
mod import;
mod list;
mod log_view;
mod logs;
mod monit;
mod pm2_verbs;
pub mod serve;
pub mod start;
pub mod start_flags;
mod startup;

use std::io::Write;

use anyhow::{Context, Result};

use super::args::{Cli, Command};
use crate::paths::Home;
use crate::protocol::{Request, Target};

pub fn dispatch(cli: Cli, home: &Home) -> Result<i32> {
    match cli.command {
        Command::Start(args) => start::run(home, *args),
        Command::Serve(args) => start::run(home, serve::start_args(&args)?),
        // Handled by `cli::run` before a home is needed.
        Command::Run(args) => start::foreground_specs(*args).map(|_| 0),
        Command::List(args) => {
            let form = match (args.json, args.mini) {
                (true, _) => list::ListForm::Json(list::Json::Compact),
                (false, true) => list::ListForm::Mini,
                (false, false) => list::ListForm::Table,
            };
            list::list(home, form, args.sort.as_deref())
        }
        Command::Jlist => list::list(home, list::ListForm::Json(list::Json::Compact), None),
        Command::Prettylist => list::list(home, list::ListForm::Json(list::Json::Pretty), None),
        Command::Monit(args) => monit::run(home, &args),
        Command::Describe(args) => list::describe(home, &args.target, args.json),
        Command::Stop(args) => control::act(home, control::Verb::Stop, &args, false),
        Command::Restart(args) => match &args.name {
            Some(name) => control::rename(home, &args, name),
            None => control::act(home, control::Verb::Restart, &args.target, args.update_env),
        },
        Command::Delete(args) => control::act(home, control::Verb::Delete, &args, false),
        Command::Logs(args) => logs::run(home, &args),
        Command::Reload(args) => control::reload(home, &args),
        Command::Scale(args) => control::scale(home, &args),
        Command::Save(args) => control::simple(home, Request::Save { force: args.force }),
        Command::Resurrect => control::resurrect(home),
        Command::Cleardump => control::simple(home, Request::ClearDump),
        Command::Flush(args) => match &args.target {
            Some(text) => control::each_target(home, std::slice::from_ref(text), |target| {
                Request::Flush { target }
            }),
            None => control::simple(
                home,
                Request::Flush {
                    target: Target::All,
                },
            ),
        },
        Command::ReloadLogs => control::simple(home, Request::ReloadLogs),
        Command::Signal(args) => {
            crate::config::units::parse_signal(&args.signal).map_err(anyhow::Error::msg)?;
            control::each_target(home, &args.targets, |target| Request::Signal {
                target,
                signal: args.signal.clone(),
            })
        }
        Command::Reset(args) => {
            control::each_target(home, &args.targets, |target| Request::Reset { target })
        }
        Command::Pid(args) => control::pids(home, args.target.as_deref()),
        Command::Id(args) => control::ids(home, &args.target),
        Command::Env(args) => control::env(home, &args.target),
        Command::Ping => control::ping(home),
        Command::Kill => control::kill(home),
        Command::Update => control::update(home),
        Command::Ecosystem(args) => ecosystem::init(&args),
        Command::Check(args) => ecosystem::check(&args),
        Command::Startup(args) => startup::startup(home, &args),
        Command::Unstartup(args) => startup::unstartup(&args),
        Command::Import(args) => import::run(home, &args),
        Command::Other(words) => pm2_verbs::refuse(&words),
        Command::Completions(args) => {
            let out = super::complete::registration(args.shell)?;
            std::io::stdout()
                .write_all(&out)
                .context("cannot write completions")?;
            Ok(0)
        }
    }
}
