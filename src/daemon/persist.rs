//! The saved process list (`save`/`resurrect`): every app's declared spec — never the shell
//! environment of whoever started it — written atomically (temp file, fsync, rename, directory
//! fsync), with the previous list kept as `.bak`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::protocol::model::AppSpec;

const DUMP_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Dump {
    version: u32,
    rcluster: String,
    apps: Vec<AppSpec>,
}

pub fn save(path: &Path, apps: &[AppSpec]) -> Result<(), String> {
    let dump = Dump {
        version: DUMP_VERSION,
        rcluster: crate::protocol::VERSION.to_owned(),
        apps: apps.to_vec(),
    };
    let body = serde_json::to_vec_pretty(&dump)
        .map_err(|e| format!("cannot encode the process list: {e}"))?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        if path.exists() {
            fs::copy(path, path.with_extension("json.bak"))?;
        }
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

pub fn load(path: &Path) -> Result<Vec<AppSpec>, String> {
    let body = match fs::read(path) {
        Ok(body) => body,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no saved process list at {} (run `rcluster save` first)",
                path.display()
            ))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let dump: Dump = serde_json::from_slice(&body)
        .map_err(|e| format!("{} is not a process list: {e}", path.display()))?;
    if dump.version != DUMP_VERSION {
        return Err(format!(
            "{}: process list version {} is not supported (this is version {DUMP_VERSION})",
            path.display(),
            dump.version
        ));
    }
    Ok(dump.apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_a_backup() {
        let dir = std::env::temp_dir().join(format!("rcluster-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("dump.json");
        let app = AppSpec {
            name: "web".into(),
            ..AppSpec::default()
        };
        save(&path, std::slice::from_ref(&app)).expect("save");
        save(
            &path,
            &[
                app.clone(),
                AppSpec {
                    name: "api".into(),
                    ..app.clone()
                },
            ],
        )
        .expect("save again");
        assert_eq!(load(&path).expect("load").len(), 2);
        assert_eq!(load(&dir.join("dump.json.bak")).expect("backup").len(), 1);
        assert!(load(&dir.join("absent.json"))
            .expect_err("absent")
            .contains("rcluster save"));
        let _ = fs::remove_dir_all(&dir);
    }
}
