//! What a guest with host containers holds (`docs/host-containers.md`): the
//! contract between the harness, `host-ctr` and the guest's root.
//!
//! * `host-ctr` itself, static, at [`GUEST_HOST_CTR`] (where the units
//!   `host-ctr units` generates run it);
//! * the host containers' own containerd, [`HOST_CONTAINERD`]: the same
//!   Debian binary as the system's ([`crate::containerd`]), with its own
//!   configuration ([`host_containerd_config`] at
//!   [`HOST_CONTAINERD_CONFIG_PATH`]: root `/local/host-containerd`, state
//!   `/run/host-containerd`, socket [`HOST_CONTAINERD_SOCKET`]) and unit
//!   ([`host_containerd_unit`], named [`HOST_CONTAINERD_UNIT_NAME`], which
//!   every generated host-container unit `requires`);
//! * per host container, a settings file ([`settings_toml`] at
//!   [`settings_path`]) and the OCI archive its `source` names
//!   ([`archive_path`], written by [`crate::oci::busybox_archive`]).
//!
//! [`crate::GuestRoot::with_host_containers`] stages the first two and
//! [`crate::GuestRoot::host_container`] the third.
//!
//! What it leaves out: running `host-ctr units` at boot (a scenario's
//! unit or PID 1's job) and the operator's overrides in
//! `/local/host-containers` (a scenario writes those at run time, on the
//! persistent volume).

use crate::containerd::Instance;

/// Where `host-ctr` goes on the guest: the path the generated units run
/// (`host_ctr::unit::HOST_CTR`).
pub const GUEST_HOST_CTR: &str = "/usr/bin/host-ctr";

/// Where the host containers' containerd reads its configuration
/// ([`host_containerd_config`]).
pub const HOST_CONTAINERD_CONFIG_PATH: &str = "/etc/host-containerd/config.toml";

/// The host containers' containerd's gRPC socket, which `host-ctr run`
/// talks to (`ctr --address`).
pub const HOST_CONTAINERD_SOCKET: &str = "/run/host-containerd/containerd.sock";

/// The unit of the host containers' containerd: the name every generated
/// host-container unit `requires` (`host_ctr::settings::HOST_CONTAINERD`).
pub const HOST_CONTAINERD_UNIT_NAME: &str = "host-containerd";

/// The host containers' containerd: beside the system's, with everything
/// of its own (configuration, `root` on `/local`, `state` and socket on
/// `/run`, unit), so that host containers live apart from the workload's
/// containers and outlive a restart of the system's containerd.
pub const HOST_CONTAINERD: Instance = Instance {
    unit_name: HOST_CONTAINERD_UNIT_NAME,
    description: "containerd for host containers",
    config: HOST_CONTAINERD_CONFIG_PATH,
    root: "/local/host-containerd",
    state: "/run/host-containerd",
    socket: HOST_CONTAINERD_SOCKET,
};

/// Where the image's settings files go on the guest
/// (`host_ctr::settings::IMAGE_DIR`).
pub const SETTINGS_DIR: &str = "/etc/liftoff/host-containers";

/// Where the image's host-container archives go on the guest.
pub const ARCHIVE_DIR: &str = "/usr/share/host-containers";

/// The `restart_delay` [`settings_toml`] writes: `host-ctr`'s default,
/// written out so that a scenario's timing does not move when the default
/// does.
pub const SETTINGS_RESTART_DELAY: &str = "1s";

/// The host containers' containerd's configuration, for
/// [`HOST_CONTAINERD_CONFIG_PATH`]: the system one's
/// ([`Instance::config_toml`]) with [`HOST_CONTAINERD`]'s paths.
#[must_use]
pub fn host_containerd_config() -> String {
    HOST_CONTAINERD.config_toml()
}

/// The unit file of the host containers' containerd, for
/// `/etc/liftoff/units/host-containerd.toml`: the system one's
/// ([`Instance::unit`]: notify, `kill_mode = "process"`, delegate, oom
/// -999, raised limits, restart always with a 1 s to 30 s backoff) running
/// `/usr/bin/containerd --config /etc/host-containerd/config.toml`, in
/// [`crate::containerd::SELINUX_TYPE`] when `selinux`.
#[must_use]
pub fn host_containerd_unit(selinux: bool) -> String {
    HOST_CONTAINERD.unit(selinux)
}

/// Where the image's settings file of host container `name` goes:
/// `/etc/liftoff/host-containers/NAME.toml`.
#[must_use]
pub fn settings_path(name: &str) -> String {
    format!("{SETTINGS_DIR}/{name}.toml")
}

/// Where the archive of host container `name` goes:
/// `/usr/share/host-containers/NAME.tar`, the `source` its settings name.
#[must_use]
pub fn archive_path(name: &str) -> String {
    format!("{ARCHIVE_DIR}/{name}.tar")
}

/// A settings file (`docs/host-containers.md`) for the image's
/// `/etc/liftoff/host-containers/NAME.toml`: `enabled`, `source` (an
/// absolute path, such as [`archive_path`]), `superpowered` and
/// [`SETTINGS_RESTART_DELAY`]; the description and the maximum delay keep
/// their defaults.
#[must_use]
pub fn settings_toml(source: &str, superpowered: bool, enabled: bool) -> String {
    format!(
        "# qemu-tests/src/host_containers.rs: settings_toml\n\
         enabled = {enabled}\n\
         source = {}\n\
         superpowered = {superpowered}\n\
         restart_delay = \"{SETTINGS_RESTART_DELAY}\"\n",
        toml_string(source)
    )
}

/// `text` as a TOML basic string: quoted, with `\` and `"` escaped
/// (control characters are not expected in a path and are left as they
/// are, for the parser to refuse).
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '\\' | '"') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::containerd::CONTAINERD;
    use crate::containerd::tests::{check_config, check_unit};

    #[test]
    fn the_contract_matches_host_ctr() {
        assert_eq!(GUEST_HOST_CTR, host_ctr::unit::HOST_CTR);
        assert_eq!(
            HOST_CONTAINERD_UNIT_NAME,
            host_ctr::settings::HOST_CONTAINERD
        );
        assert_eq!(SETTINGS_DIR, host_ctr::settings::IMAGE_DIR);
    }

    #[test]
    fn the_host_containerd_unit_is_one_liftoff_accepts() {
        for selinux in [false, true] {
            let unit = check_unit(&HOST_CONTAINERD, selinux);
            assert_eq!(unit.name, HOST_CONTAINERD_UNIT_NAME);
            assert_eq!(
                unit.process.argv,
                [
                    "/usr/bin/containerd",
                    "--config",
                    "/etc/host-containerd/config.toml"
                ]
            );
            assert_eq!(unit.restart_delay, Duration::from_secs(1));
            assert_eq!(unit.restart_delay_max, Duration::from_secs(30));
        }
        assert!(host_containerd_unit(true).contains("selinux_type = \"containerd_t\"\n"));
        assert!(!host_containerd_unit(false).contains("selinux_type"));
    }

    #[test]
    fn the_host_containerd_config_is_apart_from_the_system_one() {
        check_config(&HOST_CONTAINERD);
        let text = host_containerd_config();
        for line in [
            "root = \"/local/host-containerd\"",
            "state = \"/run/host-containerd\"",
            "  address = \"/run/host-containerd/containerd.sock\"",
            "  path = \"/local/host-containerd/opt\"",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // The same plugins are off; only the paths and the name differ.
        let system = CONTAINERD.config_toml();
        let differ = |a: &str, b: &str| a.lines().zip(b.lines()).filter(|(x, y)| x != y).count();
        assert_eq!(system.lines().count(), text.lines().count());
        assert_eq!(
            differ(&system, &text),
            5,
            "header, root, state, address, opt"
        );
        for path in [
            HOST_CONTAINERD.config,
            HOST_CONTAINERD.root,
            HOST_CONTAINERD.state,
            HOST_CONTAINERD.socket,
        ] {
            assert!(!path.starts_with("/etc/containerd/"), "{path}");
            assert!(
                !path.starts_with(&format!("{}/", CONTAINERD.root)),
                "{path}"
            );
            assert!(
                !path.starts_with(&format!("{}/", CONTAINERD.state)),
                "{path}"
            );
        }
    }

    #[test]
    fn settings_files_are_ones_host_ctr_accepts() {
        for (superpowered, enabled) in [(false, false), (true, true), (false, true)] {
            let path = PathBuf::from(settings_path("control"));
            let text = settings_toml(&archive_path("control"), superpowered, enabled);
            let file = host_ctr::settings::parse(&path, &text).expect("valid settings");
            let settings = host_ctr::settings::merge(Some(&file), None)
                .expect("complete settings")
                .expect("one host container");
            assert_eq!(settings.name, "control");
            assert_eq!(settings.enabled, enabled);
            assert_eq!(settings.superpowered, superpowered);
            assert_eq!(
                settings.source,
                Path::new("/usr/share/host-containers/control.tar")
            );
            assert_eq!(settings.restart_delay, Duration::from_secs(1));
            assert_eq!(settings.files, [path]);
        }
    }

    #[test]
    fn sources_are_quoted_for_toml() {
        let text = settings_toml("/a \"b\"\\c", false, true);
        let file = host_ctr::settings::parse(Path::new("x.toml"), &text).expect("valid settings");
        let settings = host_ctr::settings::merge(Some(&file), None)
            .expect("complete settings")
            .expect("one host container");
        assert_eq!(settings.source, Path::new("/a \"b\"\\c"));
    }

    #[test]
    fn guest_paths_are_the_documented_ones() {
        assert_eq!(
            settings_path("admin"),
            "/etc/liftoff/host-containers/admin.toml"
        );
        assert_eq!(
            archive_path("admin"),
            "/usr/share/host-containers/admin.tar"
        );
    }
}
