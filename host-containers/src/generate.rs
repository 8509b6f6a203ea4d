//! The boot-time generator: reads the settings of every host container and
//! writes a unit file for each enabled one, so that liftoff supervises it
//! like any unit. This is the I/O shell around [`crate::settings::load`]
//! and [`crate::unit::unit_for`].

use std::io;
use std::path::{Path, PathBuf};

use crate::settings::{self, SettingsError};
use crate::unit::unit_for;

/// What went wrong while generating the host containers' units.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A bad settings file or directory (its message names file, line and
    /// key); it costs its host container, or every one for an unreadable
    /// override directory.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The unit directory could not be created; nothing was written.
    #[error("cannot create the unit directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// One unit file could not be written (or moved into place); the other
    /// units are still written.
    #[error("cannot write the unit file {}", path.display())]
    WriteUnit {
        /// The unit file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// One unit file written by [`generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedUnit {
    /// The unit's name, which is the host container's.
    pub name: String,
    /// The file written: `OUT_DIR/NAME.toml`.
    pub path: PathBuf,
}

/// What [`generate`] did.
#[derive(Debug, Default)]
pub struct Generated {
    /// The units written, one per enabled host container, by name.
    pub units: Vec<GeneratedUnit>,
    /// The host containers with good settings that are not enabled (no
    /// unit), by name.
    pub disabled: Vec<String>,
    /// One error per bad settings file, unreadable directory or unit file
    /// that could not be written; the other host containers still got
    /// their units.
    pub errors: Vec<GenerateError>,
}

/// Reads the settings in `image_dir` and the overrides in `local_dir`
/// (see [`settings::load`]), and writes `out_dir/NAME.toml` for every
/// enabled host container (meant for `/run/liftoff/units`, before stage 2
/// reads its units). A unit named like a unit that the image ships in
/// `/etc/liftoff/units` is refused by liftoff when it loads the units (the
/// shipped one stays).
///
/// Each file is written to `NAME.toml.tmp` and renamed into place, so a
/// reader never sees half a unit. Files left by an earlier run for host
/// containers that are now disabled are not removed: `/run` starts empty at
/// every boot.
///
/// # Errors
///
/// Only when `out_dir` cannot be created. Problems with one host container
/// are in [`Generated::errors`].
pub fn generate(
    image_dir: &Path,
    local_dir: &Path,
    out_dir: &Path,
) -> Result<Generated, GenerateError> {
    let loaded = settings::load(image_dir, local_dir);
    let mut generated = Generated {
        errors: loaded.errors.into_iter().map(GenerateError::from).collect(),
        ..Generated::default()
    };
    std::fs::create_dir_all(out_dir).map_err(|source| GenerateError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    for settings in loaded.settings {
        if !settings.enabled {
            generated.disabled.push(settings.name);
            continue;
        }
        let path = out_dir.join(format!("{}.toml", settings.name));
        match write_atomically(&path, &unit_for(&settings)) {
            Ok(()) => generated.units.push(GeneratedUnit {
                name: settings.name,
                path,
            }),
            Err(source) => generated
                .errors
                .push(GenerateError::WriteUnit { path, source }),
        }
    }
    Ok(generated)
}

/// Writes `text` to `path` through a temporary file in the same directory
/// (`path` + `.tmp`, which liftoff ignores: it reads `*.toml` only) and a
/// rename, so the file is either the old one or the whole new one.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        // Best effort: a leftover .tmp file is ignored by liftoff anyway.
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn writes_a_unit_per_enabled_container_and_reports_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let image = root.path().join("etc");
        let local = root.path().join("local");
        let out = root.path().join("run/liftoff/units");
        write(
            &image,
            "admin.toml",
            "source = \"/usr/share/host-containers/admin.tar\"\nsuperpowered = true\n",
        );
        write(
            &image,
            "control.toml",
            "enabled = true\nsource = \"/usr/share/host-containers/control.tar\"\n",
        );
        write(&image, "broken.toml", "enabled = true\nsource = 5\n");
        // The operator turns admin on and adds a container of their own.
        write(&local, "admin.toml", "enabled = true\n");
        write(
            &local,
            "mine.toml",
            "enabled = true\nsource = \"/local/archives/mine.tar\"\n",
        );
        write(&local, "off.toml", "source = \"/local/archives/off.tar\"\n");
        // The persistent storage folder next to the overrides is ignored.
        fs::create_dir_all(local.join("admin")).unwrap();

        let generated = generate(&image, &local, &out).unwrap();

        let names: Vec<&str> = generated.units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "control", "mine"]);
        assert_eq!(generated.disabled, ["off"]);
        assert_eq!(generated.errors.len(), 1, "{:?}", generated.errors);
        let error = generated.errors[0].to_string();
        assert!(
            error.starts_with(&format!(
                "{}:2: key \"source\"",
                image.join("broken.toml").display()
            )),
            "{error}"
        );

        let mut files: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["admin.toml", "control.toml", "mine.toml"]);

        // Everything written is a unit file liftoff loads.
        let loaded = units::file::load(std::slice::from_ref(&out));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let admin = loaded.units.iter().find(|u| u.name == "admin").unwrap();
        assert_eq!(
            admin.process.argv[3..],
            [
                "admin",
                "--source",
                "/usr/share/host-containers/admin.tar",
                "--superpowered"
            ]
        );
        assert_eq!(admin.source, out.join("admin.toml"));
    }

    #[test]
    fn missing_directories_generate_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("units");
        let generated = generate(
            &root.path().join("no-image"),
            &root.path().join("no-local"),
            &out,
        )
        .unwrap();
        assert!(generated.units.is_empty());
        assert!(generated.disabled.is_empty());
        assert!(generated.errors.is_empty());
        assert!(out.is_dir());
    }

    #[test]
    fn rewrites_an_existing_unit() {
        let root = tempfile::tempdir().unwrap();
        let image = root.path().join("etc");
        let out = root.path().join("units");
        write(&out, "control.toml", "stale");
        write(
            &image,
            "control.toml",
            "enabled = true\nsource = \"/c.tar\"\n",
        );
        let generated = generate(&image, &root.path().join("local"), &out).unwrap();
        assert_eq!(generated.units.len(), 1);
        let text = fs::read_to_string(out.join("control.toml")).unwrap();
        assert!(text.contains("\"--source\", \"/c.tar\""), "{text}");
        assert!(!out.join("control.toml.tmp").exists());
    }

    #[test]
    fn an_out_dir_that_cannot_be_created_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        fs::write(&file, "").unwrap();
        let error = generate(root.path(), root.path(), &file.join("units")).unwrap_err();
        assert!(matches!(error, GenerateError::CreateDir { .. }), "{error}");
    }
}
