//! `startup` and `unstartup` (PRODUCT.md §8): a systemd unit that runs the daemon in the
//! foreground at boot (`rcluster __daemon`, `Type=simple`) with `RCLUSTER_RESURRECT=1`, so it
//! brings back the list of `rcluster save`. `startup` prints the unit, `--install` writes it;
//! enabling it is left to `systemctl`, whose commands are printed. No daemon is contacted.
//!
//! A system unit (`/etc/systemd/system/rcluster-<user>.service`, `User=<user>`) starts at boot;
//! a user unit (`--user`, `~/.config/systemd/user/rcluster.service`) starts with the user's
//! systemd, at boot only with `loginctl enable-linger`.

use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::args::{StartupArgs, UnitArgs, UnstartupArgs};
use crate::paths::Home;
use crate::protocol::EXIT_DAEMON_ALREADY_RUNNING;

/// The daemon resurrects the saved list at start when this is `1` (`daemon::RESURRECT_ENV`;
/// spelled here because the CLI does not link against the daemon's modules).
use crate::protocol::RESURRECT_ENV;

/// Where system units written by hand go (`systemd.unit(5)`).
const SYSTEM_DIR: &str = "/etc/systemd/system";

/// The unit's file and how it is installed.
struct Location {
    /// `--user`.
    user_unit: bool,
    dir: PathBuf,
    /// `rcluster.service` or `rcluster-<user>.service`.
    name: String,
    /// The target whose `.wants/` holds the enabled unit.
    wanted_by: &'static str,
}

impl Location {
    fn find(user_unit: bool, user: &str, service_name: Option<&str>) -> Result<Location> {
        let name = |default: String| match service_name {
            Some(name) if name.ends_with(".service") => name.to_owned(),
            Some(name) => format!("{name}.service"),
            None => default,
        };
        if let Some(bad) = service_name.filter(|n| n.is_empty() || n.contains(['/', '\0'])) {
            bail!("--service-name `{bad}`: not a unit name");
        }
        if user_unit {
            Ok(Location {
                user_unit,
                dir: user_config_dir()?.join("systemd").join("user"),
                name: name("rcluster.service".into()),
                wanted_by: "default.target",
            })
        } else {
            Ok(Location {
                user_unit,
                dir: PathBuf::from(SYSTEM_DIR),
                name: name(format!("rcluster-{user}.service")),
                wanted_by: "multi-user.target",
            })
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    fn systemctl(&self) -> &'static str {
        if self.user_unit {
            "systemctl --user"
        } else {
            "systemctl"
        }
    }
}

/// `$XDG_CONFIG_HOME`, else `~/.config`: where the user's systemd reads units from.
fn user_config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return Ok(dir);
        }
    }
    let base = directories::BaseDirs::new().context("cannot find your home directory")?;
    Ok(base.home_dir().join(".config"))
}

/// pm2's platform argument: systemd, or a distribution pm2 starts with systemd. Other init
/// systems are refused by name.
fn check_platform(platform: Option<&str>) -> Result<()> {
    let Some(platform) = platform else {
        return Ok(());
    };
    let name = platform.to_ascii_lowercase();
    let systemd = [
        "systemd",
        "linux",
        "ubuntu",
        "debian",
        "centos",
        "redhat",
        "rhel",
        "fedora",
        "amazon",
        "oracle",
        "arch",
        "archlinux",
        "suse",
        "opensuse",
        "rocky",
        "almalinux",
    ];
    let others = [
        "upstart",
        "launchd",
        "darwin",
        "macos",
        "openrc",
        "alpine",
        "gentoo",
        "rcd",
        "freebsd",
        "rcd-openbsd",
        "openbsd",
        "systemv",
        "sysvinit",
        "chkconfig",
        "smf",
        "sunos",
        "solaris",
    ];
    // pm2 takes versioned names too (ubuntu16, centos7).
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if systemd.contains(&base) {
        Ok(())
    } else if others.contains(&base) {
        bail!("rcluster writes systemd units only; `{platform}` starts services another way")
    } else {
        bail!("unknown platform `{platform}`: rcluster writes systemd units (`startup systemd`)")
    }
}

/// The user the daemon runs as and, when it is not the current user, their home directory:
/// `-u NAME` (pm2's, with `--hp DIR`), else the one who ran `sudo` when run as root by sudo (the
/// unit is for them), else the current user.
fn unit_user(unit: &UnitArgs) -> Result<(String, Option<PathBuf>)> {
    if let Some(name) = &unit.run_as {
        let found = nix::unistd::User::from_name(name)
            .with_context(|| format!("cannot look up user {name}"))?;
        let Some(found) = found else {
            bail!("-u {name}: no such user");
        };
        let home = unit.home_path.clone().unwrap_or(found.dir);
        return Ok((found.name, Some(home)));
    }
    let (name, home) = current_unit_user()?;
    Ok((name, unit.home_path.clone().or(home)))
}

fn current_unit_user() -> Result<(String, Option<PathBuf>)> {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        if let Some(name) = std::env::var("SUDO_USER")
            .ok()
            .filter(|n| !n.is_empty() && n != "root")
        {
            let found = nix::unistd::User::from_name(&name)
                .with_context(|| format!("cannot look up user {name}"))?;
            return Ok((name, found.map(|u| u.dir)));
        }
    }
    match nix::unistd::User::from_uid(euid) {
        Ok(Some(user)) => Ok((user.name, None)),
        _ => match std::env::var("USER") {
            Ok(name) if !name.is_empty() => Ok((name, None)),
            _ => bail!("cannot find the name of user {euid}"),
        },
    }
}

/// The daemon's home as the unit must name it: `RCLUSTER_HOME` if set; under sudo without it,
/// the sudo user's default home (root's would be the wrong one).
fn unit_home(home: &Home, sudo_home_dir: Option<&Path>) -> PathBuf {
    let explicit = std::env::var_os(crate::paths::HOME_ENV).is_some_and(|v| !v.is_empty());
    match sudo_home_dir {
        // `directories`' state dir on Linux when XDG_STATE_HOME is not set.
        Some(dir) if !explicit => dir.join(".local/state/rcluster"),
        _ => home.root().to_path_buf(),
    }
}

pub fn startup(home: &Home, args: &StartupArgs) -> Result<i32> {
    check_platform(args.platform.as_deref())?;
    let exe = std::env::current_exe().context("cannot find the rcluster executable")?;
    let (user, sudo_home_dir) = unit_user(&args.unit)?;
    let location = Location::find(args.user, &user, args.unit.service_name.as_deref())?;
    let unit_home = unit_home(home, sudo_home_dir.as_deref());
    let path_env = std::env::var("PATH").ok();
    let unit = render_unit(&UnitSpec {
        exe: &exe,
        home: &unit_home,
        user: (!args.user).then_some(user.as_str()),
        path: path_env.as_deref(),
        wanted_by: location.wanted_by,
        wait_network: args.wait_ip,
    });
    let file = location.path();
    if !args.install {
        // The same command with --install, flags as given.
        let mut flags = String::new();
        for (flag, value) in [
            ("", args.platform.clone()),
            (" -u", args.unit.run_as.clone()),
            (
                " --hp",
                args.unit
                    .home_path
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
            (" --service-name", args.unit.service_name.clone()),
        ] {
            if let Some(value) = value {
                flags.push_str(&format!("{flag} {value}"));
            }
        }
        if args.user {
            flags.push_str(" --user");
        }
        if args.wait_ip {
            flags.push_str(" --wait-ip");
        }
        print!("{unit}");
        eprintln!(
            "[rcluster] this is the unit for {}; `rcluster startup{flags} --install` writes it{}",
            file.display(),
            if args.user || nix::unistd::geteuid().is_root() {
                String::new()
            } else {
                format!(
                    " (as root: sudo env RCLUSTER_HOME={} PATH=\"$PATH\" {} startup{flags} --install)",
                    unit_home.display(),
                    exe.display()
                )
            }
        );
        return Ok(0);
    }
    if let Err(e) = fs::create_dir_all(&location.dir) {
        return Err(denied_hint(e, &location, &unit_home, &exe))
            .with_context(|| format!("cannot create {}", location.dir.display()));
    }
    if let Err(e) = fs::write(&file, &unit) {
        return Err(denied_hint(e, &location, &unit_home, &exe))
            .with_context(|| format!("cannot write {}", file.display()));
    }
    let systemctl = location.systemctl();
    println!("wrote {}", file.display());
    println!("to start rcluster at boot, run:");
    println!(
        "  {systemctl} daemon-reload && {systemctl} enable {}",
        location.name
    );
    println!(
        "then `rcluster kill` (if a daemon runs) and `{systemctl} start {}`; `rcluster save` keeps the list it restores",
        location.name
    );
    if args.user {
        println!("user units start at boot only when lingering: loginctl enable-linger {user}");
    }
    Ok(0)
}

/// A permission error says how to get the permission.
fn denied_hint(e: std::io::Error, location: &Location, home: &Path, exe: &Path) -> anyhow::Error {
    if e.kind() == IoKind::PermissionDenied && !location.user_unit {
        anyhow::Error::new(e).context(format!(
            "a system unit needs root: sudo env RCLUSTER_HOME={} PATH=\"$PATH\" {} startup --install (or use --user)",
            home.display(),
            exe.display()
        ))
    } else {
        e.into()
    }
}

pub fn unstartup(args: &UnstartupArgs) -> Result<i32> {
    check_platform(args.platform.as_deref())?;
    let (user, _) = unit_user(&args.unit)?;
    let location = Location::find(args.user, &user, args.unit.service_name.as_deref())?;
    let file = location.path();
    match fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == IoKind::NotFound => {
            println!("no unit to remove: {} does not exist", file.display());
            return Ok(0);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
    }
    // What `systemctl disable` removes; it cannot once the unit file is gone.
    let wants = location
        .dir
        .join(format!("{}.wants", location.wanted_by))
        .join(&location.name);
    if fs::symlink_metadata(&wants).is_ok() {
        fs::remove_file(&wants).with_context(|| format!("cannot remove {}", wants.display()))?;
    }
    let systemctl = location.systemctl();
    println!("removed {}", file.display());
    println!(
        "run `{systemctl} daemon-reload`; a daemon running now keeps running (`rcluster kill` stops it and its apps)"
    );
    Ok(0)
}

/// What the unit says.
pub struct UnitSpec<'a> {
    pub exe: &'a Path,
    pub home: &'a Path,
    /// `User=` of a system unit; `None` for a user unit.
    pub user: Option<&'a str>,
    /// The PATH apps are started with (systemd's default has no ~/.local/bin, nvm, pyenv...).
    pub path: Option<&'a str>,
    pub wanted_by: &'a str,
    /// `After=network-online.target` (pm2's --wait-ip).
    pub wait_network: bool,
}

/// The unit file's text (`systemd.service(5)`).
pub fn render_unit(spec: &UnitSpec<'_>) -> String {
    let exe = quote(&spec.exe.to_string_lossy());
    let mut out = String::new();
    out.push_str(
        "# Written by `rcluster startup`: runs the rcluster daemon and, at start, the apps\n",
    );
    out.push_str("# of `rcluster save`. `rcluster unstartup` removes it.\n");
    out.push_str("[Unit]\n");
    match spec.user {
        Some(user) => out.push_str(&format!(
            "Description=rcluster process manager for {}\n",
            escape_percent(user)
        )),
        None => out.push_str("Description=rcluster process manager\n"),
    }
    out.push_str("Documentation=man:rcluster(1)\n");
    if spec.wait_network {
        // pm2's --wait-ip: apps that need the network up (addresses assigned) at start.
        out.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    } else if spec.user.is_some() {
        out.push_str("After=network.target\n");
    }
    out.push_str("\n[Service]\nType=simple\n");
    if let Some(user) = spec.user {
        out.push_str(&format!("User={}\n", escape_percent(user)));
    }
    let mut env = vec![
        format!("{}={}", crate::paths::HOME_ENV, spec.home.to_string_lossy()),
        format!("{RESURRECT_ENV}=1"),
    ];
    if let Some(path) = spec.path.filter(|p| !p.is_empty()) {
        env.push(format!("PATH={path}"));
    }
    for assignment in env {
        out.push_str(&format!("Environment={}\n", quote(&assignment)));
    }
    out.push_str(&format!("ExecStart={exe} __daemon\n"));
    out.push_str(&format!("ExecStop={exe} kill\n"));
    out.push_str("Restart=on-failure\n");
    out.push_str(&format!(
        "# {EXIT_DAEMON_ALREADY_RUNNING}: another daemon holds this home; restarting would not help.\n"
    ));
    out.push_str(&format!(
        "RestartPreventExitStatus={EXIT_DAEMON_ALREADY_RUNNING}\n"
    ));
    out.push_str(
        "# The daemon stops its apps itself (kill_signal, then SIGKILL after kill_timeout).\n",
    );
    out.push_str("KillMode=process\n");
    out.push_str(&format!("\n[Install]\nWantedBy={}\n", spec.wanted_by));
    out
}

/// `%` starts a specifier in unit files (`systemd.unit(5)`).
fn escape_percent(text: &str) -> String {
    text.replace('%', "%%")
}

/// A word of a unit file line: double-quoted (C escapes) when it has blanks or quotes.
fn quote(text: &str) -> String {
    let text = escape_percent(text);
    if !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return text;
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_unit() {
        let unit = render_unit(&UnitSpec {
            exe: Path::new("/usr/local/bin/rcluster"),
            home: Path::new("/home/al ice/.local/state/rcluster"),
            user: Some("alice"),
            path: Some("/usr/bin:/bin"),
            wanted_by: "multi-user.target",
            wait_network: true,
        });
        for line in [
            "User=alice",
            "Type=simple",
            "Environment=\"RCLUSTER_HOME=/home/al ice/.local/state/rcluster\"",
            "Environment=RCLUSTER_RESURRECT=1",
            "Environment=PATH=/usr/bin:/bin",
            "ExecStart=/usr/local/bin/rcluster __daemon",
            "ExecStop=/usr/local/bin/rcluster kill",
            "Restart=on-failure",
            "KillMode=process",
            "WantedBy=multi-user.target",
            "After=network-online.target",
            "Wants=network-online.target",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
        }
    }

    #[test]
    fn user_unit_has_no_user_line() {
        let unit = render_unit(&UnitSpec {
            exe: Path::new("/opt/rc 1/rcluster"),
            home: Path::new("/h/100%"),
            user: None,
            path: None,
            wanted_by: "default.target",
            wait_network: false,
        });
        assert!(!unit.contains("User="), "{unit}");
        assert!(!unit.contains("PATH="), "{unit}");
        assert!(
            unit.contains("ExecStart=\"/opt/rc 1/rcluster\" __daemon\n"),
            "{unit}"
        );
        assert!(
            unit.contains("Environment=RCLUSTER_HOME=/h/100%%\n"),
            "{unit}"
        );
        assert!(unit.contains("WantedBy=default.target\n"), "{unit}");
    }
}
