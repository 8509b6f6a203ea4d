use std::fs;

use super::*;

const IMAGE: &str = "/etc/liftoff/host-containers/admin.toml";
const LOCAL: &str = "/local/host-containers/admin.toml";

fn file(path: &str, text: &str) -> SettingsFile {
    parse(Path::new(path), text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn full_file() {
    let f = file(
        IMAGE,
        r#"
enabled = true
source = "/usr/share/host-containers/admin.tar"
superpowered = true
description = "admin container"
restart_delay = "2s"
restart_delay_max = "1min"
"#,
    );
    let settings = merge(Some(&f), None).unwrap().unwrap();
    assert_eq!(
        settings,
        Settings {
            name: "admin".into(),
            enabled: true,
            source: "/usr/share/host-containers/admin.tar".into(),
            superpowered: true,
            description: Some("admin container".into()),
            restart_delay: Duration::from_secs(2),
            restart_delay_max: Duration::from_secs(60),
            files: vec![IMAGE.into()],
        }
    );
}

#[test]
fn defaults() {
    let f = file(IMAGE, "source = \"/a.tar\"\n");
    let settings = merge(Some(&f), None).unwrap().unwrap();
    assert!(!settings.enabled);
    assert!(!settings.superpowered);
    assert_eq!(settings.description, None);
    assert_eq!(settings.restart_delay, DEFAULT_RESTART_DELAY);
    assert_eq!(settings.restart_delay_max, DEFAULT_RESTART_DELAY_MAX);
}

#[test]
fn override_replaces_key_by_key() {
    let image = file(
        IMAGE,
        "enabled = true\nsource = \"/a.tar\"\nsuperpowered = true\ndescription = \"admin\"\n",
    );
    let local = file(LOCAL, "superpowered = false\nrestart_delay = \"5s\"\n");
    let settings = merge(Some(&image), Some(&local)).unwrap().unwrap();
    assert!(settings.enabled, "kept from the image");
    assert!(!settings.superpowered, "replaced by the override");
    assert_eq!(settings.source, Path::new("/a.tar"));
    assert_eq!(settings.description.as_deref(), Some("admin"));
    assert_eq!(settings.restart_delay, Duration::from_secs(5));
    assert_eq!(settings.files, [Path::new(IMAGE), Path::new(LOCAL)]);
}

#[test]
fn override_can_turn_off_and_change_source() {
    let image = file(IMAGE, "enabled = true\nsource = \"/a.tar\"\n");
    let local = file(LOCAL, "enabled = false\nsource = \"/local/b.tar\"\n");
    let settings = merge(Some(&image), Some(&local)).unwrap().unwrap();
    assert!(!settings.enabled);
    assert_eq!(settings.source, Path::new("/local/b.tar"));
}

#[test]
fn override_alone_needs_a_source() {
    let local = file("/local/host-containers/mine.toml", "enabled = true\n");
    let error = merge(None, Some(&local)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/local/host-containers/mine.toml: key \"source\": is required"
    );
    assert_eq!(error.name(), Some("mine"));
    let local = file(
        "/local/host-containers/mine.toml",
        "enabled = true\nsource = \"/local/mine.tar\"\n",
    );
    let settings = merge(None, Some(&local)).unwrap().unwrap();
    assert!(settings.enabled);
}

#[test]
fn no_file_no_settings() {
    assert_eq!(merge(None, None).unwrap(), None);
}

#[test]
fn different_names_are_refused() {
    let image = file(IMAGE, "source = \"/a.tar\"\n");
    let local = file("/local/host-containers/other.toml", "enabled = true\n");
    let error = merge(Some(&image), Some(&local)).unwrap_err();
    assert!(matches!(
        error.kind(),
        SettingsErrorKind::DifferentNames { .. }
    ));
}

#[test]
fn delay_max_below_delay_names_the_key_written() {
    for (name, image, local, expected) in [
        (
            "max in the override",
            "source = \"/a.tar\"\nrestart_delay = \"10s\"\n",
            "restart_delay_max = \"5s\"\n",
            "/local/host-containers/admin.toml:1: key \"restart_delay_max\": 5s is less than restart_delay (10s)",
        ),
        (
            "delay above the default maximum",
            "source = \"/a.tar\"\n",
            "\nrestart_delay = \"2min\"\n",
            "/local/host-containers/admin.toml:2: key \"restart_delay\": 30s is less than restart_delay (120s)",
        ),
        (
            "max in the image, delay in the override",
            "source = \"/a.tar\"\nrestart_delay_max = \"3s\"\n",
            "restart_delay = \"4s\"\n",
            "/etc/liftoff/host-containers/admin.toml:2: key \"restart_delay_max\": 3s is less than restart_delay (4s)",
        ),
    ] {
        let image = file(IMAGE, image);
        let local = file(LOCAL, local);
        let error = merge(Some(&image), Some(&local)).unwrap_err();
        assert_eq!(error.to_string(), expected, "{name}");
    }
}

#[test]
fn errors_name_file_line_and_key() {
    for (name, path, text, expected) in [
        (
            "unknown key",
            IMAGE,
            "source = \"/a.tar\"\nprivileged = true\n",
            "/etc/liftoff/host-containers/admin.toml:2: key \"privileged\": unknown key",
        ),
        (
            "wrong type",
            LOCAL,
            "\n\nenabled = \"yes\"\n",
            "/local/host-containers/admin.toml:3: key \"enabled\": invalid type: string \"yes\", expected a boolean",
        ),
        (
            "source not a string",
            IMAGE,
            "source = 5\n",
            "/etc/liftoff/host-containers/admin.toml:1: key \"source\": invalid type: integer `5`, expected a string",
        ),
        (
            "relative source",
            IMAGE,
            "enabled = true\nsource = \"admin.tar\"\n",
            "/etc/liftoff/host-containers/admin.toml:2: key \"source\": \"admin.tar\" is not an absolute path",
        ),
        (
            "nul in source",
            IMAGE,
            "source = \"/a\\u0000.tar\"\n",
            "/etc/liftoff/host-containers/admin.toml:1: key \"source\": \"/a\\0.tar\" contains a NUL byte",
        ),
        (
            "duration without unit",
            IMAGE,
            "restart_delay = 10\n",
            "/etc/liftoff/host-containers/admin.toml:1: key \"restart_delay\": a duration must be a string with a unit, like \"10s\", found integer",
        ),
        (
            "bad duration",
            IMAGE,
            "restart_delay_max = \"soon\"\n",
            "/etc/liftoff/host-containers/admin.toml:1: key \"restart_delay_max\": \"soon\" is not a duration like \"100ms\", \"10s\" or \"2min\"",
        ),
        (
            "a table where a key goes",
            IMAGE,
            "source = \"/a.tar\"\n[superpowered]\nyes = true\n",
            "/etc/liftoff/host-containers/admin.toml:2: key \"superpowered\": invalid type: map, expected a boolean",
        ),
        (
            "syntax",
            IMAGE,
            "source = \"/a.tar\"\nenabled = \n",
            "/etc/liftoff/host-containers/admin.toml:2: ",
        ),
        (
            "bad name",
            "/etc/liftoff/host-containers/.hidden.toml",
            "",
            "/etc/liftoff/host-containers/.hidden.toml: \".hidden\" is not a host container name",
        ),
        (
            "reserved name",
            "/etc/liftoff/host-containers/host-containerd.toml",
            "",
            "/etc/liftoff/host-containers/host-containerd.toml: \"host-containerd\" is reserved",
        ),
    ] {
        let error = parse(Path::new(path), text).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{name}: {error}");
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), text).unwrap();
}

#[test]
fn load_merges_by_name_and_a_bad_file_costs_its_container_only() {
    let root = tempfile::tempdir().unwrap();
    let image = root.path().join("image");
    let local = root.path().join("local");
    write(
        &image,
        "admin.toml",
        "enabled = true\nsource = \"/a.tar\"\n",
    );
    write(
        &image,
        "control.toml",
        "enabled = true\nsource = \"/c.tar\"\n",
    );
    write(&image, "README", "not a settings file");
    // A broken override does not fall back to the image's file.
    write(&local, "admin.toml", "enabled = nope\n");
    write(&local, "extra.toml", "source = \"/e.tar\"\n");
    write(&local, "orphan.toml", "enabled = true\n");
    let loaded = load(&image, &local);
    let names: Vec<&str> = loaded.settings.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["control", "extra"]);
    let errors: Vec<(Option<&str>, Option<&str>)> =
        loaded.errors.iter().map(|e| (e.name(), e.key())).collect();
    assert_eq!(
        errors,
        [(Some("admin"), None), (Some("orphan"), Some("source"))]
    );
}

#[test]
fn load_missing_directories_is_empty() {
    let root = tempfile::tempdir().unwrap();
    let loaded = load(&root.path().join("a"), &root.path().join("b"));
    assert!(loaded.settings.is_empty());
    assert!(loaded.errors.is_empty());
}

#[test]
fn load_an_unlistable_override_directory_costs_every_container() {
    let root = tempfile::tempdir().unwrap();
    let image = root.path().join("image");
    write(
        &image,
        "admin.toml",
        "enabled = true\nsource = \"/a.tar\"\n",
    );
    // A file where the directory should be: listing it fails (ENOTDIR).
    let local = root.path().join("local");
    fs::write(&local, "").unwrap();
    let loaded = load(&image, &local);
    assert!(loaded.settings.is_empty());
    assert_eq!(loaded.errors.len(), 1);
    assert!(matches!(
        loaded.errors[0].kind(),
        SettingsErrorKind::ReadDir(_)
    ));
    assert_eq!(loaded.errors[0].name(), None);
}

#[test]
fn load_an_unlistable_image_directory_keeps_standalone_overrides() {
    let root = tempfile::tempdir().unwrap();
    let image = root.path().join("image");
    fs::write(&image, "").unwrap();
    let local = root.path().join("local");
    write(&local, "mine.toml", "enabled = true\nsource = \"/m.tar\"\n");
    let loaded = load(&image, &local);
    assert_eq!(loaded.settings.len(), 1);
    assert_eq!(loaded.errors.len(), 1);
}

#[test]
fn load_reports_an_unreadable_file() {
    let root = tempfile::tempdir().unwrap();
    let image = root.path().join("image");
    // Not UTF-8: read_to_string fails.
    fs::create_dir_all(&image).unwrap();
    fs::write(image.join("admin.toml"), b"source = \"\xff\"\n").unwrap();
    let loaded = load(&image, &root.path().join("local"));
    assert!(loaded.settings.is_empty());
    assert!(matches!(
        loaded.errors[0].kind(),
        SettingsErrorKind::ReadFile(_)
    ));
    assert_eq!(loaded.errors[0].name(), Some("admin"));
}

#[test]
fn settings_serialize_durations_as_text() {
    let f = file(IMAGE, "source = \"/a.tar\"\nrestart_delay = \"1500ms\"\n");
    let settings = merge(Some(&f), None).unwrap().unwrap();
    let json = serde_json::to_value(&settings).unwrap();
    assert_eq!(json["restart_delay"], "1s 500ms");
    assert_eq!(json["restart_delay_max"], "30s");
}
