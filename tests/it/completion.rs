//! The completion scripts in `completions/`, loaded into real shells: bash (COMPREPLY), fish
//! (`complete -C`) and zsh (the script's function, with compsys's `_describe` recording what it
//! is given), against a real daemon. fish and zsh tests skip with a message when the shell is
//! not installed (.ci/run installs them).

use std::path::Path;
use std::process::Command;

use crate::harness::{have, path_str, wait_until, Home, BIN};

/// PATH with the rcluster under test first: the scripts call `rcluster`.
fn path_with_rcluster() -> String {
    let dir = Path::new(BIN).parent().expect("the binary's directory");
    format!(
        "{}:{}",
        path_str(dir),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn completions(name: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(name);
    path_str(&file).to_owned()
}

/// What bash offers for the command line `words` (the last word is the one being completed).
fn bash(home: &Home, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"source {script}
COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}; COMP_TYPE=9
_clap_complete_rcluster rcluster "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script = completions("rcluster.bash"),
        words = quoted.join(" "),
    );
    shell(home, "bash", &["--norc", "--noprofile", "-c", &script])
}

fn shell(home: &Home, shell: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(shell)
        .args(args)
        .env("PATH", path_with_rcluster())
        .env("RCLUSTER_HOME", &home.dir)
        .current_dir(home.work())
        .output()
        .expect("run the shell");
    assert!(
        out.status.success(),
        "{shell} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn scene(home: &Home) {
    let work = home.work();
    std::fs::write(work.join("ecosystem.yaml"), "apps: []\n").expect("write");
    std::fs::write(work.join("notes.txt"), "").expect("write");
    std::fs::write(work.join("server.py"), "").expect("write");
    std::fs::create_dir_all(work.join("deploy")).expect("mkdir");
}

#[test]
fn bash_completes_app_names_ids_and_ecosystem_files() {
    let home = Home::new();
    scene(&home);
    home.ok(&["start", "sleep 1000", "--name", "web", "-i", "2"]);
    home.ok(&["start", "sleep 1000", "--name", "worker"]);
    wait_until("3 online", || {
        home.online_pids("web", 2)
            .and_then(|_| home.online_pids("worker", 1))
    });
    let offered = bash(&home, &["rcluster", "stop", ""]);
    for wanted in [
        "all",
        "web",
        "worker",
        "0",
        "1",
        "2",
        "ecosystem.yaml",
        "deploy/",
    ] {
        assert!(
            offered.contains(&wanted.to_owned()),
            "{wanted} in {offered:?}"
        );
    }
    assert!(
        !offered.iter().any(|o| o == "notes.txt" || o == "server.py"),
        "{offered:?}"
    );
    assert_eq!(bash(&home, &["rcluster", "logs", "w"]), ["web", "worker"]);
    assert_eq!(bash(&home, &["rcluster", "reload", "wo"]), ["worker"]);
    assert_eq!(bash(&home, &["rcluster", "scale", ""]), ["web", "worker"]);
    // start: scripts (any file) and known apps.
    let offered = bash(&home, &["rcluster", "start", ""]);
    assert!(offered.contains(&"server.py".to_owned()) && offered.contains(&"web".to_owned()));
    // Subcommands and flags still complete.
    assert!(bash(&home, &["rcluster", "sca"]).contains(&"scale".to_owned()));
    // A subcommand's name beside its aliases (clap's engine keeps only the first in order).
    let offered = bash(&home, &["rcluster", "de"]);
    for wanted in ["delete", "del", "describe", "desc"] {
        assert!(
            offered.contains(&wanted.to_owned()),
            "{wanted} in {offered:?}"
        );
    }
    assert!(!bash(&home, &["rcluster", "st"]).contains(&"list".to_owned()));
    assert!(bash(&home, &["rcluster", "stop", "--on"]).contains(&"--only".to_owned()));
}

#[test]
fn completing_starts_no_daemon() {
    let home = Home::new();
    scene(&home);
    let offered = bash(&home, &["rcluster", "stop", ""]);
    assert_eq!(offered, ["ecosystem.yaml", "deploy/"], "files only");
    // No app to name: only the flags are left to offer.
    let offered = bash(&home, &["rcluster", "logs", ""]);
    assert!(offered.iter().all(|o| o.starts_with('-')), "{offered:?}");
    assert!(!home.socket().exists(), "a daemon was started to complete");
    assert_eq!(home.daemon_pid(), None);
}

#[test]
fn fish_and_zsh_complete_app_names() {
    let home = Home::new();
    scene(&home);
    home.ok(&["start", "sleep 1000", "--name", "api"]);
    wait_until("online", || home.online_pids("api", 1));
    if have("fish") {
        let script = format!(
            "source {}; complete -C 'rcluster stop '",
            completions("rcluster.fish")
        );
        let offered = shell(&home, "fish", &["--no-config", "-c", &script]);
        let values: Vec<&str> = offered
            .iter()
            .map(|l| l.split('\t').next().unwrap_or_default())
            .collect();
        for wanted in ["api", "all", "0", "ecosystem.yaml"] {
            assert!(values.contains(&wanted), "fish: {wanted} in {offered:?}");
        }
        assert!(
            offered.iter().any(|l| l.starts_with("api\t")),
            "fish shows what a name is: {offered:?}"
        );
    } else {
        eprintln!("skipped: fish is not installed (.ci/run installs it)");
    }
    if have("zsh") {
        // compsys itself needs a terminal; its `_describe` records what the script gives it.
        let script = format!(
            r#"compdef() {{ : }}
_describe() {{ print -rl -- "${{(@P)3}}" }}
source {}
words=(rcluster logs a); CURRENT=3
_clap_dynamic_completer_rcluster"#,
            completions("_rcluster")
        );
        let offered = shell(&home, "zsh", &["-f", "-c", &script]);
        assert!(
            offered.iter().any(|l| l.starts_with("api:")),
            "zsh: {offered:?}"
        );
        // Installed on $fpath (install.sh), the file is the function compinit autoloads: its
        // first call completes too.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
        let script = format!(
            r#"compdef() {{ : }}
_describe() {{ print -rl -- "${{(@P)3}}" }}
fpath=({} $fpath); autoload -Uz _rcluster
words=(rcluster describe ""); CURRENT=3
_rcluster"#,
            path_str(&dir)
        );
        let offered = shell(&home, "zsh", &["-f", "-c", &script]);
        assert!(
            offered.iter().any(|l| l.starts_with("api:")),
            "zsh from fpath: {offered:?}"
        );
    } else {
        eprintln!("skipped: zsh is not installed (.ci/run installs it)");
    }
}
