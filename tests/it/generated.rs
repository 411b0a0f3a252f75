//! `completions/` and `man/` are generated from the clap definitions. This test regenerates
//! them in memory and fails on drift; `RCLUSTER_BLESS=1 cargo test generated` rewrites them.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

fn expected_files() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "rcluster.bash"),
        (Shell::Zsh, "_rcluster"),
        (Shell::Fish, "rcluster.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(
            shell,
            &mut rcluster::cli::args::command(),
            "rcluster",
            &mut out,
        );
        files.push((root.join("completions").join(name), out));
    }
    let command = rcluster::cli::args::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .expect("render man page");
    files.push((root.join("man").join("rcluster.1"), page));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("rcluster-{}", sub.get_name());
        // clap wants a 'static name; leaking a few bytes in a test is fine.
        let sub = sub.clone().name(&*Box::leak(name.clone().into_boxed_str()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .expect("render man page");
        files.push((root.join("man").join(format!("{name}.1")), page));
    }
    files
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let bless = std::env::var_os("RCLUSTER_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in expected_files() {
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
