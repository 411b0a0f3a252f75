//! `completions/` and `man/` are generated from the clap definitions. This test regenerates
//! them in memory and fails on drift; `RCLUSTER_BLESS=1 cargo test generated` rewrites them
//! (and removes pages of commands that are gone). The man pages also take the README's command
//! lines as EXAMPLES: after editing those, bless again.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

mod man;

fn expected_files() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "rcluster.bash"),
        (Shell::Zsh, "_rcluster"),
        (Shell::Fish, "rcluster.fish"),
    ] {
        let out = rcluster::cli::complete::registration(shell).expect("a completion script");
        files.push((root.join("completions").join(name), out));
    }
    for (name, page) in man::pages(&man::readme(root)) {
        files.push((root.join("man").join(name), page));
    }
    files
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let bless = std::env::var_os("RCLUSTER_BLESS").is_some();
    let mut stale = Vec::new();
    let expected = expected_files();
    // A page of a command that is gone (or of clap's `help`) is stale too.
    let pages = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("man"))
        .expect("read man/")
        .filter_map(|entry| entry.ok().map(|e| e.path()));
    for page in pages {
        if !expected.iter().any(|(path, _)| *path == page) {
            if bless {
                std::fs::remove_file(&page).expect("remove a stale page");
            } else {
                stale.push(page.display().to_string());
            }
        }
    }
    for (path, content) in expected {
        if std::fs::read(&path).ok().as_deref() == Some(content.as_slice()) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &content).expect("write generated file");
        } else {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are out of date: {stale:?}\nrun `RCLUSTER_BLESS=1 cargo test generated` and commit them"
    );
}

/// What a reader of `man rcluster` meets: pages for every command listed and none for `help`,
/// synopses with the command one types, and the sections a man page has.
#[test]
fn man_pages_read_well() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let read = |name: &str| {
        std::fs::read_to_string(man.join(name)).unwrap_or_else(|e| panic!("man/{name}: {e}"))
    };
    let top = read("rcluster.1");
    for section in [
        "EXAMPLES",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(
            top.contains(&format!(".SH {section}\n")),
            "no {section} in rcluster(1)"
        );
    }
    assert!(top.contains("RCLUSTER_HOME") && top.contains("NODE_APP_INSTANCE"));
    assert!(top.contains("daemon.lock") && top.contains("dump.pm2"));
    assert!(
        top.contains("rcluster logs web \\-\\-lines 50"),
        "README's everyday use"
    );
    assert!(
        !top.contains("rcluster\\-help"),
        "a page for `help` is listed"
    );
    // Every `rcluster-x(1)` named anywhere exists.
    for named in top.split("rcluster\\-").skip(1) {
        let page = named.split(['(', '\\']).next().unwrap_or_default();
        assert!(
            man.join(format!("rcluster-{page}.1")).exists(),
            "rcluster(1) names rcluster-{page}(1), which does not exist"
        );
    }
    let start = read("rcluster-start.1");
    let synopsis = start
        .split(".SH SYNOPSIS\n")
        .nth(1)
        .and_then(|s| s.lines().next())
        .expect("a synopsis");
    assert!(synopsis.starts_with("\\fBrcluster start\\fR"), "{synopsis}");
    assert!(start.contains(".SH EXAMPLES") && start.contains("rcluster start app.js \\-i max"));
    assert!(!man.join("rcluster-help.1").exists());
    // groff's own warnings (bad requests, unknown escapes), where groff is installed.
    if std::process::Command::new("groff")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("groff not installed: pages not rendered");
        return;
    }
    for entry in std::fs::read_dir(&man).expect("read man/") {
        let page = entry.expect("man/ entry").path();
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output()
            .expect("run groff");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.is_empty(),
            "{}: {warnings}",
            page.display()
        );
    }
}
