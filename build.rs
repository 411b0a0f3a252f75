//! Build script: compiles the LD_PRELOAD library (`preload/rcluster_preload.c`) into
//! `$OUT_DIR/librcluster_preload.so`, which `src/preload.rs` embeds with `include_bytes!`.
//!
//! The C compiler is found with the `cc` crate's detection (honours `CC`, `CC_<target>`,
//! `TARGET_CC`, cross toolchains), but the shared object is linked by hand: `cc::Build` only
//! makes static archives. A compiler failure fails the build with the compiler's own output.

use std::env;
use std::path::PathBuf;

const SOURCES: &[&str] = &["preload/rcluster_preload.c"];
const OUTPUT: &str = "librcluster_preload.so";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for src in SOURCES {
        println!("cargo:rerun-if-changed={src}");
    }

    let out_dir = match env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fail("OUT_DIR is not set (build scripts run under cargo)"),
    };
    let manifest_dir = match env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fail("CARGO_MANIFEST_DIR is not set (build scripts run under cargo)"),
    };
    let output = out_dir.join(OUTPUT);

    // LD_PRELOAD is a Linux (ELF, glibc-style dynamic linker) mechanism. Elsewhere, embed an
    // empty placeholder so that the crate still builds; round-robin dealing is then unavailable.
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" {
        println!(
            "cargo:warning=rcluster: the preload library is Linux-only; target OS is {target_os:?}, embedding an empty placeholder"
        );
        if let Err(e) = std::fs::write(&output, b"") {
            fail(&format!("cannot write {}: {e}", output.display()));
        }
        return;
    }

    // `try_get_compiler` also prints `cargo:rerun-if-env-changed` for CC, CFLAGS, ...
    let compiler = match cc::Build::new().try_get_compiler() {
        Ok(c) => c,
        Err(e) => fail(&format!(
            "no C compiler found for the preload library ({e}); install gcc or clang, or set CC"
        )),
    };

    let mut cmd = compiler.to_command();
    cmd.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        "-Wextra",
        "-fvisibility=hidden",
        "-pthread",
        "-s",
        "-o",
    ]);
    cmd.arg(&output);
    for src in SOURCES {
        cmd.arg(manifest_dir.join(src));
    }
    cmd.arg("-ldl");

    let result = match cmd.output() {
        Ok(r) => r,
        Err(e) => fail(&format!(
            "could not run the C compiler {:?} for the preload library: {e}",
            compiler.path()
        )),
    };
    let stderr = String::from_utf8_lossy(&result.stderr);
    if !result.status.success() {
        fail(&format!(
            "compiling the preload library failed ({}):\n{cmd:?}\n{}{stderr}",
            result.status,
            String::from_utf8_lossy(&result.stdout)
        ));
    }
    // Surface compiler warnings: cargo hides a build script's output when it succeeds.
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning=preload: {line}");
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: rcluster build: {msg}");
    // A panic message is what cargo shows most prominently for a failed build script.
    panic!("rcluster build: {msg}");
}
