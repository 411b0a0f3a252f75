//! Builds fuzz/preload/harness.c (the C preload library and its harness) for the preload_c
//! target, with clang: libFuzzer's coverage instrumentation of C (`-fsanitize=fuzzer-no-link`)
//! is clang's. Only with the `preload-c` feature, which scripts/fuzz.sh turns on when it finds
//! clang (FUZZ_CLANG names it, default `clang`).

fn main() {
    println!("cargo:rerun-if-changed=preload/harness.c");
    println!("cargo:rerun-if-changed=../preload/rcluster_preload.c");
    println!("cargo:rerun-if-env-changed=FUZZ_CLANG");
    if std::env::var_os("CARGO_FEATURE_PRELOAD_C").is_none() {
        return;
    }
    let clang = std::env::var("FUZZ_CLANG").unwrap_or_else(|_| "clang".to_owned());
    cc::Build::new()
        .compiler(clang)
        .file("preload/harness.c")
        .flag("-fsanitize=address,fuzzer-no-link")
        .flag("-g")
        .opt_level(1)
        .warnings(false)
        .compile("rcluster_preload_harness");
}
