//! The saved process list (`save`/`resurrect`/`cleardump`): `<home>/dump.pm2` in pm2's format
//! (`pm2_dump`), private (0600 in the 0700 home) since it holds the apps' environments.
//!
//! Nothing is lost: the list is written to a temp file, fsynced and renamed over the old one;
//! the old one becomes `dump.pm2.bak` by a hard link renamed into place first, so at every
//! instant both names hold a whole list. A damaged `dump.pm2` is never deleted: `resurrect`
//! falls back to the `.bak` and says so. Temp files a killed save left behind are removed.
//! `dump.json`, the list of rcluster before 0.2, is read when there is no dump.pm2.

pub mod pm2_dump;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

pub use pm2_dump::{InstanceNow, SavedApp};

use crate::paths::Home;
use crate::protocol::model::AppSpec;

/// What `resurrect` read, and from where.
pub struct Loaded {
    pub apps: Vec<SavedApp>,
    /// What the user should know: a fallback to the backup, an old format, skipped entries.
    pub notes: Vec<String>,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub fn backup_of(dump: &Path) -> PathBuf {
    with_suffix(dump, ".bak")
}

/// Temp files of a save that was killed midway (this daemon holds the home's lock, so no
/// other save is under way).
pub fn remove_stale_temps(home: &Home) {
    let dump = home.dump();
    let legacy = home.legacy_dump();
    for stale in [
        with_suffix(&dump, ".tmp"),
        with_suffix(&backup_of(&dump), ".tmp"),
        legacy.with_extension("json.tmp"),
    ] {
        match fs::remove_file(&stale) {
            Ok(()) => crate::dlog!("removed {}, left by an interrupted save", stale.display()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => crate::dlog!("cannot remove {}: {e}", stale.display()),
        }
    }
}

/// Write the list atomically, the previous one becoming the backup.
pub fn save(home: &Home, apps: &[(SavedApp, Vec<InstanceNow>)]) -> Result<(), String> {
    let dump = home.dump();
    let body = serde_json::to_vec_pretty(&pm2_dump::encode(apps, home.root()))
        .map_err(|e| format!("cannot encode the process list: {e}"))?;
    write_atomically(&dump, &body).map_err(|e| format!("cannot write {}: {e}", dump.display()))
}

fn write_atomically(dump: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = with_suffix(dump, ".tmp");
    let result = (|| {
        write_synced(&tmp, body)?;
        keep_backup(dump)?;
        fs::rename(&tmp, dump)?;
        sync_dir(dump)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_synced(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(body)?;
    file.sync_all()
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// The current list becomes the backup, in one rename: a hard link to it (no copy that a kill
/// could cut short), renamed over the old backup. A list that does not read (damaged from
/// outside) does not replace a good backup.
fn keep_backup(dump: &Path) -> std::io::Result<()> {
    let current = match fs::read(dump) {
        Ok(current) => current,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if serde_json::from_slice::<Value>(&current).is_err() {
        crate::dlog!(
            "{} does not read as a list; the backup is kept as it was",
            dump.display()
        );
        return Ok(());
    }
    let backup = backup_of(dump);
    let tmp = with_suffix(&backup, ".tmp");
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(dump, &tmp).is_err() {
        // A filesystem without hard links: a synced copy, renamed into place all the same.
        write_synced(&tmp, &current)?;
    }
    fs::rename(&tmp, &backup)
}

/// How many apps the current list holds (`None`: no list, or one that does not read).
pub fn saved_apps(home: &Home) -> Option<Vec<String>> {
    for path in [home.dump(), home.legacy_dump()] {
        match fs::read(&path) {
            Ok(body) => {
                let value: Value = serde_json::from_slice(&body).ok()?;
                return match value {
                    Value::Array(_) => pm2_dump::app_names(&value),
                    legacy => Some(
                        legacy_apps(legacy)
                            .ok()?
                            .into_iter()
                            .map(|a| a.spec.name)
                            .collect(),
                    ),
                };
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(_) => return None,
        }
    }
    None
}

/// The saved list: dump.pm2, else its backup (when dump.pm2 is missing or does not read),
/// else the dump.json of an earlier rcluster.
pub fn load(home: &Home) -> Result<Loaded, String> {
    let dump = home.dump();
    let backup = backup_of(&dump);
    let mut notes = Vec::new();
    let first = match read_list(&dump) {
        Ok(Some(loaded)) => return Ok(with_notes(loaded, notes)),
        Ok(None) => None,
        Err(e) => Some(e),
    };
    match read_list(&backup) {
        Ok(Some(loaded)) => {
            notes.push(match &first {
                Some(cause) => format!(
                    "{cause}; the list was read from its backup {} instead (the damaged file is left as it is)",
                    backup.display()
                ),
                None => format!(
                    "no {}; the list was read from its backup {}",
                    dump.display(),
                    backup.display()
                ),
            });
            return Ok(with_notes(loaded, notes));
        }
        Ok(None) => {}
        Err(e) => {
            if let Some(cause) = first {
                return Err(format!("{cause}, and its backup: {e}"));
            }
            return Err(e);
        }
    }
    if let Some(cause) = first {
        return Err(cause);
    }
    let legacy = home.legacy_dump();
    for path in [legacy.clone(), legacy.with_extension("json.bak")] {
        match fs::read(&path) {
            Ok(body) => {
                let value: Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("{} is not a process list: {e}", path.display()))?;
                let apps = legacy_apps(value).map_err(|e| format!("{}: {e}", path.display()))?;
                notes.push(format!(
                    "read {}, the list of an earlier rcluster (without the apps' environments); `rcluster save` writes {} from now on",
                    path.display(),
                    dump.display()
                ));
                return Ok(Loaded { apps, notes });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    Err(format!(
        "no saved process list at {} (run `rcluster save` first)",
        dump.display()
    ))
}

fn with_notes(mut loaded: Loaded, mut notes: Vec<String>) -> Loaded {
    notes.append(&mut loaded.notes);
    loaded.notes = notes;
    loaded
}

/// `Ok(None)`: no such file.
fn read_list(path: &Path) -> Result<Option<Loaded>, String> {
    let body = match fs::read(path) {
        Ok(body) => body,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{} is damaged ({e})", path.display()))?;
    let (apps, notes) =
        pm2_dump::decode(&value).map_err(|e| format!("{} is damaged ({e})", path.display()))?;
    Ok(Some(Loaded { apps, notes }))
}

/// rcluster 0.1's `dump.json`: `{"version": 1, "rcluster": "...", "apps": [AppSpec...]}`.
fn legacy_apps(value: Value) -> Result<Vec<SavedApp>, String> {
    #[derive(Deserialize)]
    struct Legacy {
        version: u32,
        apps: Vec<AppSpec>,
    }
    let legacy = Legacy::deserialize(value).map_err(|e| format!("not a process list: {e}"))?;
    if legacy.version != 1 {
        return Err(format!(
            "process list version {} is not supported",
            legacy.version
        ));
    }
    Ok(legacy
        .apps
        .into_iter()
        .map(|spec| SavedApp {
            spec,
            base_env: None,
        })
        .collect())
}

/// pm2's cleardump: an empty list (the previous one kept as the backup).
pub fn clear(home: &Home) -> Result<String, String> {
    let dump = home.dump();
    write_atomically(&dump, b"[]\n")
        .map_err(|e| format!("cannot write {}: {e}", dump.display()))?;
    Ok(format!(
        "cleared the saved list {} (the previous one is kept as {})",
        dump.display(),
        backup_of(&dump).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::InstanceState;

    fn home(tag: &str) -> Home {
        let dir =
            std::env::temp_dir().join(format!("rcluster-persist-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        Home::at(dir)
    }

    fn saved(name: &str, instances: u32) -> (SavedApp, Vec<InstanceNow>) {
        let spec = AppSpec {
            name: name.into(),
            instances,
            command: crate::protocol::model::CommandSpec::Exec {
                program: "node".into(),
                args: vec![
                    "--max-old-space-size=64".into(),
                    "app.js".into(),
                    "-v".into(),
                ],
            },
            cwd: "/srv/web".into(),
            ..AppSpec::default()
        };
        let env = [("PORT".to_owned(), "3000".to_owned())].into();
        let now = InstanceNow {
            state: InstanceState::Online,
            restarts: 2,
        };
        (
            SavedApp {
                spec,
                base_env: Some(env),
            },
            vec![now; instances as usize],
        )
    }

    #[test]
    fn round_trip_keeps_specs_envs_and_a_backup() {
        let home = home("round");
        save(&home, &[saved("web", 1)]).expect("save");
        save(&home, &[saved("web", 2), saved("api", 1)]).expect("save again");
        let loaded = load(&home).expect("load");
        assert_eq!(loaded.apps.len(), 2);
        assert_eq!(loaded.apps[0], saved("web", 2).0);
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
        let backup: Value =
            serde_json::from_slice(&fs::read(backup_of(&home.dump())).expect("backup"))
                .expect("json");
        assert_eq!(pm2_dump::app_names(&backup), Some(vec!["web".to_owned()]));
        assert!(!with_suffix(&home.dump(), ".tmp").exists());
        let _ = fs::remove_dir_all(home.root());
    }

    #[test]
    fn pm2_keys_are_pm2s() {
        let home = home("keys");
        save(&home, &[saved("web", 2)]).expect("save");
        let dump: Value =
            serde_json::from_slice(&fs::read(home.dump()).expect("dump")).expect("json");
        let entries = dump.as_array().expect("an array, as pm2 writes");
        assert_eq!(entries.len(), 2, "one entry per instance, as pm2");
        let e = &entries[1];
        assert_eq!(e["name"], "web");
        assert_eq!(e["pm_exec_path"], "/srv/web/app.js");
        assert_eq!(e["exec_interpreter"], "node");
        assert_eq!(
            e["node_args"],
            serde_json::json!(["--max-old-space-size=64"])
        );
        assert_eq!(e["args"], serde_json::json!(["-v"]));
        assert_eq!(e["pm_cwd"], "/srv/web");
        assert_eq!(e["exec_mode"], "fork_mode");
        assert_eq!(e["env"]["PORT"], "3000");
        assert_eq!(e["NODE_APP_INSTANCE"], 1);
        assert_eq!(e["status"], "online");
        assert_eq!(e["restart_time"], 2);
        assert!(entries[0].get("rcluster").is_some() && e.get("rcluster").is_none());
        let _ = fs::remove_dir_all(home.root());
    }

    #[test]
    fn a_damaged_list_falls_back_to_its_backup() {
        let home = home("damaged");
        save(&home, &[saved("web", 1)]).expect("save");
        save(&home, &[saved("web", 1), saved("api", 1)]).expect("save");
        fs::write(home.dump(), b"[{\"name\": \"we").expect("tear it");
        let loaded = load(&home).expect("load from the backup");
        assert_eq!(loaded.apps.len(), 1);
        assert!(loaded.notes[0].contains("damaged"), "{:?}", loaded.notes);
        assert!(home.dump().exists(), "the damaged file is left for a look");
        // A save now keeps the good backup rather than the damaged list.
        save(&home, &[saved("db", 1)]).expect("save");
        let backup = fs::read_to_string(backup_of(&home.dump())).expect("backup");
        assert!(backup.contains("\"web\""), "{backup}");
        let _ = fs::remove_dir_all(home.root());
    }

    #[test]
    fn an_earlier_rclusters_list_is_read() {
        let home = home("legacy");
        let legacy = serde_json::json!({
            "version": 1, "rcluster": "0.1.0",
            "apps": [{"name": "old", "command": {"kind": "shell", "script": "sleep 9"}}]
        });
        fs::write(home.legacy_dump(), legacy.to_string()).expect("write");
        let loaded = load(&home).expect("load");
        assert_eq!(loaded.apps[0].spec.name, "old");
        assert_eq!(loaded.apps[0].base_env, None);
        assert!(
            loaded.notes[0].contains("earlier rcluster"),
            "{:?}",
            loaded.notes
        );
        assert_eq!(saved_apps(&home), Some(vec!["old".to_owned()]));
        assert!(load(&Home::at(home.root().join("absent")))
            .err()
            .is_some_and(|e| e.contains("rcluster save")));
        let _ = fs::remove_dir_all(home.root());
    }

    #[test]
    fn pm2s_own_entries_are_named_not_run() {
        let text = include_str!("../../../tests/fixtures/ecosystem-it/pm2/dump.pm2");
        let (apps, notes) =
            pm2_dump::decode(&serde_json::from_str(text).expect("json")).expect("decode");
        assert!(apps.is_empty());
        assert!(notes[0].contains("import pm2"), "{notes:?}");
    }
}
