//! An HTTP request head as `rcluster serve` parses and answers it
//! (`rcluster::fuzzing::serve_head`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rcluster::fuzzing::serve_head(data));
