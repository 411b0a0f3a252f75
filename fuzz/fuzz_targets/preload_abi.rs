//! Messages of the preload ABI as the daemon receives and decodes them, fds included
//! (`rcluster::fuzzing::preload_message`; libFuzzer runs one input at a time, so the fd check
//! is on).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rcluster::fuzzing::preload_message(data, true));
