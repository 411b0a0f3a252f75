//! Turning what users write (command-line flags, pm2-style ecosystem files) into validated
//! `AppSpec`s: the one validation and the limits (`check`), units and counts (`units`), pm2's interpreter choice (`interpreter`), cron
//! patterns (`cron`), did-you-mean (`suggest`), cluster values (`listen`), what `watch` ignores
//! (`watch`), and the files themselves (`ecosystem`).

pub mod check;
pub mod cron;
pub mod ecosystem;
pub mod interpreter;
pub mod listen;
pub mod suggest;
pub mod units;
pub mod watch;

pub use listen::{parse_listen, parse_strategy};
