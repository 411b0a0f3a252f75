//! The C preload library's own decoding (fuzz/preload/harness.c): the environment's lists, a
//! message on a channel taken by the program's accept4, channel names. Needs the `preload-c`
//! feature (clang); scripts/fuzz.sh turns it on when clang is installed.
#![no_main]

use libfuzzer_sys::fuzz_target;

extern "C" {
    fn rcl_fuzz_preload(data: *const u8, size: usize) -> i32;
}

fuzz_target!(|data: &[u8]| {
    // SAFETY: the harness reads `size` bytes from `data`, a live slice, and keeps no pointer.
    unsafe {
        rcl_fuzz_preload(data.as_ptr(), data.len());
    }
});
