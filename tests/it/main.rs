//! One integration-test binary: the real `rcluster` binary against a real daemon in a temp
//! `RCLUSTER_HOME`, real child processes and real sockets on 127.0.0.1. A module per area.

mod harness;

mod cluster;
mod completion;
mod control_limits;
mod cron;
mod daemon;
mod daemon_death;
mod daemon_log;
mod describe;
mod ecosystem;
mod fork_reload;
mod generated;
mod import;
mod jlist;
mod log_disk;
mod log_events;
mod log_paths;
mod logs;
mod monit;
mod persist;
mod pm2_files;
mod processes;
mod reload;
mod restart;
mod run;
mod serve;
mod start;
mod startup;
mod targets;
mod update;
mod validation;
mod watch;
mod wrappers;
