//! `startup` / `unstartup` (PRODUCT.md §8): the unit is what systemd accepts
//! (`systemd-analyze verify`, skipped with the reason when it is missing or cannot run here),
//! `--install`/`unstartup` write and remove it (user units, under a temp XDG_CONFIG_HOME;
//! systemctl is never run), and the unit's own ExecStart, run with its Environment= lines as
//! systemd would, resurrects the saved apps at start; its ExecStop stops everything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ecosystem::env_of;
use crate::harness::{have, path_str, run_with_deadline, wait_until, Home, BIN};

/// `systemd-analyze verify` accepts the unit with no warning at all. `--man=no`: the man page
/// named in `Documentation=` is installed by install.sh, not by cargo.
fn verify(unit: &Path) {
    if !have("systemd-analyze") {
        eprintln!("skipped systemd-analyze verify: systemd-analyze is not on PATH");
        return;
    }
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(["verify", "--man=no", path_str(unit)]);
    let out = run_with_deadline(cmd, &["systemd-analyze verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Failed to initialize manager") {
        eprintln!("skipped systemd-analyze verify: it cannot run here: {stderr}");
        return;
    }
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{stderr}\n{}",
        unit.display(),
        out.status,
        std::fs::read_to_string(unit).unwrap_or_default()
    );
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user has a name")
}

#[test]
fn startup_prints_installs_and_unstartup_removes() {
    let home = Home::new();
    let exe = std::fs::canonicalize(BIN).expect("binary");
    let user = user_name();

    let unit = home.ok(&["startup"]);
    for line in [
        format!("ExecStart={} __daemon", exe.display()),
        format!("ExecStop={} kill", exe.display()),
        format!("Environment=RCLUSTER_HOME={}", home.dir.display()),
        "Environment=RCLUSTER_RESURRECT=1".to_owned(),
        format!("User={user}"),
        "Type=simple".to_owned(),
        "Restart=on-failure".to_owned(),
        "KillMode=process".to_owned(),
        "WantedBy=multi-user.target".to_owned(),
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    // systemd wants a unit name, so the printed unit is checked under the name it would have.
    let printed = home.dir.join(format!("rcluster-{user}.service"));
    std::fs::write(&printed, &unit).expect("write");
    verify(&printed);

    let config = home.dir.join("config");
    let with_config = |args: &[&str]| {
        let mut cmd = home.command(args);
        cmd.env("XDG_CONFIG_HOME", &config);
        let out = run_with_deadline(cmd, args);
        assert!(out.status.success(), "{}", home.report(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = with_config(&["startup", "--user", "--install"]);
    let installed: PathBuf = config.join("systemd/user/rcluster.service");
    assert!(
        out.contains(&format!("wrote {}", installed.display()))
            && out.contains(
                "systemctl --user daemon-reload && systemctl --user enable rcluster.service"
            ),
        "{out}"
    );
    let text = std::fs::read_to_string(&installed).expect("unit written");
    assert!(
        !text.contains("User="),
        "a user unit runs as its user:\n{text}"
    );
    assert!(text.contains("WantedBy=default.target"), "{text}");
    verify(&installed);

    // `systemctl --user enable` would have made this link; unstartup removes both.
    let wants = config.join("systemd/user/default.target.wants");
    std::fs::create_dir_all(&wants).expect("mkdir");
    std::os::unix::fs::symlink(&installed, wants.join("rcluster.service")).expect("link");
    let out = with_config(&["unstartup", "--user"]);
    assert!(
        out.contains(&format!("removed {}", installed.display())),
        "{out}"
    );
    assert!(!installed.exists());
    assert!(std::fs::symlink_metadata(wants.join("rcluster.service")).is_err());
    let out = with_config(&["unstartup", "--user"]);
    assert!(out.contains("no unit to remove"), "{out}");
}

/// `Key=value` lines of the unit, values unquoted.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_units_exec_start_resurrects_the_saved_apps() {
    let home = Home::new();
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "keeper",
        "-i",
        "2",
        "--env-var",
        "KEPT=yes",
    ]);
    wait_until("2 keepers", || home.online_pids("keeper", 2));
    home.ok(&["save"]);
    home.ok(&["kill"]);

    let unit = home.ok(&["startup", "--user"]);
    let start = unit_values(&unit, "ExecStart");
    let stop = unit_values(&unit, "ExecStop");
    let words = |line: &str| -> Vec<String> { line.split(' ').map(str::to_owned).collect() };
    let (start, stop) = (words(&start[0]), words(&stop[0]));
    let envs: Vec<(String, String)> = unit_values(&unit, "Environment")
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let as_systemd = |argv: &[String]| {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let mut daemon = as_systemd(&start).spawn().expect("ExecStart runs");
    // Wait for its socket before any `rcluster` command, which would start a daemon itself.
    wait_until("the daemon answers", || {
        std::os::unix::net::UnixStream::connect(home.socket()).ok()
    });
    let pids = wait_until("the saved apps back", || home.online_pids("keeper", 2));
    assert_eq!(env_of(pids[0], "KEPT").as_deref(), Some("yes"));

    let out = run_with_deadline(as_systemd(&stop), &["ExecStop"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let status = wait_until("the daemon exits", || daemon.try_wait().ok().flatten());
    assert!(status.success(), "the daemon ended with {status}");
    for pid in pids {
        assert!(
            !crate::harness::pid_alive(pid as i32),
            "{pid} outlived ExecStop"
        );
    }
}

#[test]
fn pm2s_startup_command_line_is_understood() {
    let home = Home::new();
    let user = user_name();
    // `pm2 startup systemd -u deploy --hp /home/deploy --service-name web`, as deploy guides write it.
    let out = home.run(&[
        "startup",
        "systemd",
        "-u",
        &user,
        "--hp",
        "/srv/site",
        "--service-name",
        "web",
        "--wait-ip",
    ]);
    assert!(out.status.success(), "{}", home.report(&out));
    let unit = String::from_utf8_lossy(&out.stdout);
    assert!(unit.contains(&format!("User={user}")), "{unit}");
    assert!(unit.contains("After=network-online.target"), "{unit}");
    let hint = String::from_utf8_lossy(&out.stderr);
    assert!(
        hint.contains("/etc/systemd/system/web.service")
            && hint.contains(&format!(
                "startup systemd -u {user} --hp /srv/site --service-name web --wait-ip --install"
            )),
        "{hint}"
    );
    home.ok(&["startup", "ubuntu18"]);
    let err = home.fails(&["startup", "launchd"]);
    assert!(err.contains("systemd units only"), "{err}");
    let err = home.fails(&["startup", "windows"]);
    assert!(err.contains("unknown platform"), "{err}");
    let err = home.fails(&["startup", "-u", "surely-no-such-user-rcl"]);
    assert!(err.contains("no such user"), "{err}");
    // pm2's `save --force` too.
    home.ok(&["save", "--force"]);
}
