//! The control socket's byte stream as the daemon reads it: frames, `Hello`, requests
//! (`rcluster::fuzzing::control_stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rcluster::fuzzing::control_stream(data));
