//! The OCI archive builder (qemu-tests/src/oci.rs) against its own reading
//! of the image spec: the archive is opened here with `tar`, `flate2`,
//! `sha2` and `serde_json` alone, not with the module's `verify`, and every
//! digest, size and link of the chain index → manifest → config and layer
//! is recomputed. `verify` is then checked against the same archives and
//! against damaged ones.

// The helpers below run only inside tests: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use qemu_tests::guest::DEFAULT_BUSYBOX;
use qemu_tests::oci::{
    ANNOTATION_IMAGE_NAME, Archive, ArchiveOptions, BlobKind, DEFAULT_APPLETS, DEFAULT_REFERENCE,
    DEFAULT_SCRIPT, EMPTY_DIRS, MEDIA_TYPE_LAYER, OciError, busybox_archive, corrupt_blob,
    sha256_hex, verify,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One tar entry as read back.
#[derive(Debug)]
struct Entry {
    kind: tar::EntryType,
    mode: u32,
    mtime: u64,
    uid: u64,
    gid: u64,
    link: Option<String>,
    data: Vec<u8>,
}

/// Every entry of a tar, in archive order.
fn read_tar(bytes: &[u8]) -> Vec<(String, Entry)> {
    let mut tar = tar::Archive::new(bytes);
    tar.entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap());
            let entry = Entry {
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                mtime: header.mtime().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                link,
                data,
            };
            (name, entry)
        })
        .collect()
}

/// The regular files of the outer archive, by name.
fn archive_files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    read_tar(&std::fs::read(path).unwrap())
        .into_iter()
        .filter(|(_, e)| e.kind == tar::EntryType::Regular)
        .map(|(name, e)| (name, e.data))
        .collect()
}

/// The blob a descriptor points to, after checking its size and that it
/// is a sha256 blob of the archive.
fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, desc: &Value) -> &'a [u8] {
    let digest = desc["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = &files[&format!("blobs/sha256/{hex}")];
    assert_eq!(
        desc["size"].as_u64().unwrap(),
        bytes.len() as u64,
        "{digest}"
    );
    bytes
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn build(options: &ArchiveOptions) -> (TempDir, Archive) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image.tar");
    let archive = busybox_archive(Path::new(DEFAULT_BUSYBOX), &out, options).unwrap();
    (dir, archive)
}

#[test]
fn every_blob_is_named_after_its_sha256() {
    let (_dir, archive) = build(&ArchiveOptions::default());
    let files = archive_files(&archive.path);
    let blobs: Vec<_> = files
        .keys()
        .filter_map(|n| n.strip_prefix("blobs/sha256/"))
        .collect();
    assert_eq!(blobs.len(), 3, "manifest, config, layer: {blobs:?}");
    for hex in blobs {
        assert_eq!(sha256_hex(&files[&format!("blobs/sha256/{hex}")]), hex);
    }
    let names: Vec<_> = files.keys().map(String::as_str).collect();
    assert!(
        names.contains(&"oci-layout") && names.contains(&"index.json"),
        "{names:?}"
    );
    let layout: Value = serde_json::from_slice(&files["oci-layout"]).unwrap();
    assert_eq!(layout, json!({"imageLayoutVersion": "1.0.0"}));
}

#[test]
fn index_manifest_config_and_layer_form_one_chain() {
    let options = ArchiveOptions {
        reference: "localhost/admin:latest".to_owned(),
        script: "echo hello; exec sleep 1000".to_owned(),
        ..ArchiveOptions::default()
    };
    let (_dir, archive) = build(&options);
    let files = archive_files(&archive.path);

    // index.json → the manifest, named both ways, for linux/amd64.
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    let manifest_desc = &manifests[0];
    assert_eq!(manifest_desc["mediaType"], MEDIA_TYPE_MANIFEST);
    assert_eq!(
        manifest_desc["annotations"],
        json!({
            ANNOTATION_IMAGE_NAME: "localhost/admin:latest",
            ANNOTATION_REF_NAME: "localhost/admin:latest",
        })
    );
    assert_eq!(
        manifest_desc["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(manifest_desc["digest"], archive.manifest.digest.as_str());

    // The manifest → config and one gzip layer.
    let manifest: Value = serde_json::from_slice(blob(&files, manifest_desc)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], MEDIA_TYPE_CONFIG);
    assert_eq!(manifest["config"]["digest"], archive.config.digest.as_str());
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], MEDIA_TYPE_LAYER);
    assert_eq!(layers[0]["digest"], archive.layer.digest.as_str());

    // The config: platform, command, PATH, and the diff_id of the layer
    // as decompressed here.
    let config: Value = serde_json::from_slice(blob(&files, &manifest["config"])).unwrap();
    let layer_tar = gunzip(blob(&files, &layers[0]));
    let diff_id = format!("sha256:{}", sha256_hex(&layer_tar));
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["rootfs"],
        json!({"type": "layers", "diff_ids": [diff_id.clone()]})
    );
    assert_eq!(
        config["config"]["Cmd"],
        json!(["/bin/sh", "-c", "echo hello; exec sleep 1000"])
    );
    assert_eq!(config["config"]["Env"], json!(["PATH=/bin"]));
    assert_eq!(archive.diff_id, diff_id);
    assert_eq!(archive.reference, "localhost/admin:latest");

    // The module's own reading agrees.
    assert_eq!(verify(&archive.path).unwrap(), archive);
}

#[test]
fn layer_holds_busybox_its_applets_and_empty_dirs() {
    let (_dir, archive) = build(&ArchiveOptions::default());
    let files = archive_files(&archive.path);
    let layer = read_tar(&gunzip(&files[&archive.layer.path()]));

    let names: Vec<_> = layer.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "entries are sorted");
    for (name, entry) in &layer {
        assert_eq!((entry.mtime, entry.uid, entry.gid), (0, 0, 0), "{name}");
    }
    let entries: BTreeMap<_, _> = layer.iter().map(|(n, e)| (n.as_str(), e)).collect();

    let busybox = entries["bin/busybox"];
    assert_eq!(busybox.kind, tar::EntryType::Regular);
    assert_eq!(busybox.mode, 0o755);
    assert_eq!(busybox.data, std::fs::read(DEFAULT_BUSYBOX).unwrap());

    for applet in DEFAULT_APPLETS {
        let link = entries[format!("bin/{applet}").as_str()];
        assert_eq!(link.kind, tar::EntryType::Symlink, "{applet}");
        assert_eq!(link.link.as_deref(), Some("busybox"), "{applet}");
    }
    for dir in EMPTY_DIRS.iter().chain(&["bin"]) {
        let entry = entries[format!("{dir}/").as_str()];
        assert_eq!(entry.kind, tar::EntryType::Directory, "{dir}");
        let mode = if *dir == "tmp" { 0o1777 } else { 0o755 };
        assert_eq!(entry.mode, mode, "{dir}");
    }
    assert_eq!(
        layer.len(),
        1 + DEFAULT_APPLETS.len() + EMPTY_DIRS.len() + 1,
        "nothing else: {names:?}"
    );
}

#[test]
fn building_twice_gives_identical_bytes() {
    let (_a, first) = build(&ArchiveOptions::default());
    let (_b, second) = build(&ArchiveOptions::default());
    assert_eq!(
        std::fs::read(&first.path).unwrap(),
        std::fs::read(&second.path).unwrap()
    );
    assert_eq!(first.manifest, second.manifest);
    assert_eq!(first.reference, DEFAULT_REFERENCE);

    // Another command changes the config (and so the manifest), not the
    // layer.
    let (_c, other) = build(&ArchiveOptions {
        script: "exit 3".to_owned(),
        ..ArchiveOptions::default()
    });
    assert_eq!(other.layer, first.layer);
    assert_ne!(other.config, first.config);
    assert_ne!(other.manifest, first.manifest);
}

#[test]
fn default_command_sleeps_until_sigterm() {
    let (_dir, archive) = build(&ArchiveOptions::default());
    let files = archive_files(&archive.path);
    let config: Value = serde_json::from_slice(&files[&archive.config.path()]).unwrap();
    assert_eq!(
        config["config"]["Cmd"],
        json!(["/bin/sh", "-c", DEFAULT_SCRIPT])
    );
}

#[test]
fn a_corrupt_blob_no_longer_matches_its_digest() {
    for which in [BlobKind::Layer, BlobKind::Config, BlobKind::Manifest] {
        let (_dir, archive) = build(&ArchiveOptions::default());
        let before = std::fs::read(&archive.path).unwrap();
        corrupt_blob(&archive, which).unwrap();
        let after = std::fs::read(&archive.path).unwrap();
        assert_eq!(before.len(), after.len(), "{which:?}");
        assert_eq!(
            before.iter().zip(&after).filter(|(a, b)| a != b).count(),
            1,
            "{which:?}: one byte changes"
        );

        let blob = archive.blob(which);
        let files = archive_files(&archive.path);
        let bytes = &files[&blob.path()];
        assert_eq!(bytes.len() as u64, blob.size, "{which:?}");
        assert_ne!(sha256_hex(bytes), blob.hex(), "{which:?}");

        match verify(&archive.path) {
            Err(OciError::Digest { name, .. }) => assert_eq!(name, blob.path(), "{which:?}"),
            other => panic!("{which:?}: {other:?}"),
        }
    }
}

#[test]
fn bad_applet_names_are_refused() {
    for name in ["", "busybox", "../sh", "sub/sh", ".."] {
        let dir = tempfile::tempdir().unwrap();
        let options = ArchiveOptions {
            applets: vec!["sh".to_owned(), name.to_owned()],
            ..ArchiveOptions::default()
        };
        let err = busybox_archive(
            Path::new(DEFAULT_BUSYBOX),
            &dir.path().join("image.tar"),
            &options,
        )
        .unwrap_err();
        assert!(
            matches!(err, OciError::BadApplet { .. }),
            "{name:?}: {err:?}"
        );
    }
}

#[test]
fn missing_busybox_and_missing_archive_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-busybox");
    let err = busybox_archive(
        &missing,
        &dir.path().join("image.tar"),
        &ArchiveOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no-busybox"), "{err}");

    let err = verify(&dir.path().join("no-archive.tar")).unwrap_err();
    assert!(err.to_string().contains("no-archive.tar"), "{err}");
}
