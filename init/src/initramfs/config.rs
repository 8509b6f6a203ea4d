//! The initramfs config, `/etc/liftoff/initramfs.toml`: what the image
//! builder decided and stage 1 reads back.
//!
//! ```toml
//! # Written by `liftoff initramfs`; read by liftoff's stage 1.
//! kernel = "6.1.0-56-amd64"
//! modules = ["virtio_blk", "dm-verity", "erofs"]
//! ```
//!
//! * `kernel`: the release the modules were built for, the folder under
//!   `/lib/modules` that holds them and their `modules.liftoff` index.
//!   Absent when the archive holds no modules.
//! * `modules`: the names asked for at build time, in order, as given
//!   (names or exact aliases). Their dependencies are not listed: stage 1
//!   plans them again from the index, as it does for `liftoff.modules=`.
//!
//! Unknown keys are an error, so that a misspelt key is never silently
//! ignored at boot.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the config sits in the archive.
pub const CONFIG_PATH: &str = "/etc/liftoff/initramfs.toml";

/// The first line of a written config.
const HEADER: &str = "# Written by `liftoff initramfs`; read by liftoff's stage 1.\n";

/// Why a config could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not a valid config.
    #[error("invalid initramfs config {}", path.display())]
    Parse {
        /// The file (or a placeholder for text parsed from memory).
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// The config cannot be written as TOML.
    #[error("cannot write the initramfs config")]
    Render {
        #[source]
        source: toml::ser::Error,
    },
}

/// The initramfs config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitramfsConfig {
    /// The kernel release the modules were built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The modules to load at boot, as asked for.
    #[serde(default)]
    pub modules: Vec<String>,
}

impl InitramfsConfig {
    /// Parse `text`, read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The config file's text.
    pub fn render(&self) -> Result<String, ConfigError> {
        let body = toml::to_string(self).map_err(|source| ConfigError::Render { source })?;
        Ok(format!("{HEADER}{body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (name, config) in [
            ("empty", InitramfsConfig::default()),
            (
                "modules",
                InitramfsConfig {
                    kernel: Some("6.1.0-56-amd64".into()),
                    modules: vec!["virtio_blk".into(), "dm-verity".into()],
                },
            ),
        ] {
            let text = config.render().unwrap();
            assert!(text.starts_with(HEADER), "{name}: {text}");
            let back = InitramfsConfig::parse(Path::new(CONFIG_PATH), &text).unwrap();
            assert_eq!(back, config, "{name}: {text}");
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let text =
            "kernel = \"6.1.0-56-amd64\"\nmodules = [\"virtio_blk\", \"dm-verity\", \"erofs\"]\n";
        let config = InitramfsConfig::parse(Path::new(CONFIG_PATH), text).unwrap();
        assert_eq!(config.kernel.as_deref(), Some("6.1.0-56-amd64"));
        assert_eq!(config.modules, ["virtio_blk", "dm-verity", "erofs"]);
    }

    #[test]
    fn rejects_bad_configs_naming_the_file() {
        for (name, text) in [
            ("unknown key", "modulez = []\n"),
            ("wrong type", "modules = \"virtio_blk\"\n"),
            ("not toml", "modules = [\n"),
        ] {
            let err = InitramfsConfig::parse(Path::new("/etc/x.toml"), text).unwrap_err();
            assert!(err.to_string().contains("/etc/x.toml"), "{name}: {err}");
        }
    }
}
