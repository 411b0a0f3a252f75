//! A YAML ecosystem file through the CLI's whole check (`rcluster::fuzzing::ecosystem_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcluster::config::ecosystem::TextFormat;

fuzz_target!(|data: &[u8]| rcluster::fuzzing::ecosystem_text(data, TextFormat::Yaml));
