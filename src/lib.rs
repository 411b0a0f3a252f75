//! rcluster: a process manager in the style of pm2. The module tree is the architecture:
//! `cli` (client side) and `daemon` (server side) never import each other; both speak `protocol`.

pub mod abi;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod paths;
pub mod preload;
pub mod protocol;
pub mod run;
pub mod serve;
