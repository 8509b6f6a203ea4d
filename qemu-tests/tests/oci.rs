//! The OCI archive builder (qemu-tests/src/oci.rs) against the product's
//! reader, `host_ctr::archive::Archive::open`: what the builder writes must
//! open there, with the digests, sizes, diff ID, reference and command the
//! builder reported, and what `corrupt_blob` damages must be refused there
//! with the error naming the damaged blob. The harness thus has no reader
//! of its own that could drift from host-ctr's.
//!
//! What `Archive::open` does not look at is read here with `tar`, `flate2`
//! and `serde_json` alone: which files the archive holds, both name
//! annotations and the platform in `index.json`, the layer's entries, and
//! that building twice gives the same bytes.

// The helpers below run only inside tests: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use host_ctr::archive::{self as product, ArchiveError};
use qemu_tests::guest::DEFAULT_BUSYBOX;
use qemu_tests::oci::{
    ANNOTATION_IMAGE_NAME, Archive, ArchiveOptions, Blob, BlobKind, DEFAULT_APPLETS,
    DEFAULT_REFERENCE, DEFAULT_SCRIPT, EMPTY_DIRS, LAYOUT_VERSION, MEDIA_TYPE_LAYER, OciError,
    busybox_archive, corrupt_blob, sha256_hex,
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

/// A blob the builder reported, as `Archive::open` reports it.
fn as_opened(media_type: &str, blob: &Blob) -> product::Blob {
    product::Blob {
        media_type: media_type.to_owned(),
        digest: blob.digest.clone(),
        size: blob.size,
    }
}

/// The single layer of an opened archive, uncompressed, read through the
/// product's reader.
fn layer_tar(opened: &product::Archive) -> Vec<u8> {
    let [layer] = opened.layers.as_slice() else {
        panic!("one layer: {:?}", opened.layers);
    };
    let mut layer_gz = Vec::new();
    opened
        .blob_reader(layer)
        .unwrap()
        .read_to_end(&mut layer_gz)
        .unwrap();
    gunzip(&layer_gz)
}

#[test]
fn the_product_opens_the_archive_as_built() {
    let custom = ArchiveOptions {
        reference: "localhost/admin:latest".to_owned(),
        script: "echo hello; exec sleep 1000".to_owned(),
        ..ArchiveOptions::default()
    };
    for options in [ArchiveOptions::default(), custom] {
        let name = options.reference.as_str();
        let (_dir, archive) = build(&options);
        let opened =
            product::Archive::open(&archive.path).unwrap_or_else(|err| panic!("{name}: {err}"));

        assert_eq!(
            opened.manifest,
            as_opened(MEDIA_TYPE_MANIFEST, &archive.manifest),
            "{name}"
        );
        assert_eq!(
            opened.config,
            as_opened(MEDIA_TYPE_CONFIG, &archive.config),
            "{name}"
        );
        assert_eq!(
            opened.layers,
            [as_opened(MEDIA_TYPE_LAYER, &archive.layer)],
            "{name}"
        );
        // Archive::open checked the layer against this diff ID; it is
        // also the builder's, and the sha256 of the layer as read here.
        assert_eq!(opened.diff_ids, [archive.diff_id.as_str()], "{name}");
        assert_eq!(
            archive.diff_id,
            format!("sha256:{}", sha256_hex(&layer_tar(&opened))),
            "{name}"
        );
        assert_eq!(archive.reference, options.reference, "{name}");
        assert_eq!(opened.reference.as_deref(), Some(name));
        assert_eq!(
            opened.process,
            product::ImageProcess {
                cmd: vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    options.script.clone()
                ],
                env: vec!["PATH=/bin".to_owned()],
                ..product::ImageProcess::default()
            },
            "{name}"
        );
    }
}

#[test]
fn the_defaults_name_the_image_and_sleep_until_sigterm() {
    let (_dir, archive) = build(&ArchiveOptions::default());
    let opened = product::Archive::open(&archive.path).unwrap();
    assert_eq!(opened.reference.as_deref(), Some(DEFAULT_REFERENCE));
    assert_eq!(opened.process.cmd, ["/bin/sh", "-c", DEFAULT_SCRIPT]);
}

#[test]
fn the_archive_holds_the_layout_the_index_and_three_blobs() {
    let (_dir, archive) = build(&ArchiveOptions::default());
    let files = archive_files(&archive.path);
    let mut expected = vec![
        "index.json".to_owned(),
        "oci-layout".to_owned(),
        archive.manifest.path(),
        archive.config.path(),
        archive.layer.path(),
    ];
    expected.sort_unstable();
    let names: Vec<_> = files.keys().cloned().collect();
    assert_eq!(names, expected, "nothing else");
    let layout: Value = serde_json::from_slice(&files["oci-layout"]).unwrap();
    assert_eq!(layout, json!({"imageLayoutVersion": LAYOUT_VERSION}));
}

#[test]
fn the_index_names_the_image_both_ways_for_linux_amd64() {
    // Archive::open takes the first name annotation it finds and lets an
    // entry without a platform through; containerd reads the first name,
    // skopeo and podman the second.
    let (_dir, archive) = build(&ArchiveOptions {
        reference: "localhost/admin:latest".to_owned(),
        ..ArchiveOptions::default()
    });
    let files = archive_files(&archive.path);
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], archive.manifest.digest.as_str());
    assert_eq!(
        manifests[0]["annotations"],
        json!({
            ANNOTATION_IMAGE_NAME: "localhost/admin:latest",
            ANNOTATION_REF_NAME: "localhost/admin:latest",
        })
    );
    assert_eq!(
        manifests[0]["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    let manifest: Value = serde_json::from_slice(&files[&archive.manifest.path()]).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
}

#[test]
fn layer_holds_busybox_its_applets_and_empty_dirs() {
    let (_dir, archive) = build(&ArchiveOptions::default());
    let opened = product::Archive::open(&archive.path).unwrap();
    let layer = read_tar(&layer_tar(&opened));

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
fn the_product_refuses_a_corrupt_blob_naming_it() {
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

        // The blob keeps its name and size; its content no longer has its
        // digest.
        let blob = archive.blob(which);
        let files = archive_files(&archive.path);
        let bytes = &files[&blob.path()];
        assert_eq!(bytes.len() as u64, blob.size, "{which:?}");
        let damaged = format!("sha256:{}", sha256_hex(bytes));
        assert_ne!(damaged, blob.digest, "{which:?}");

        match product::Archive::open(&archive.path) {
            Err(ArchiveError::BlobDigest {
                path,
                digest,
                actual,
            }) => {
                assert_eq!(path, archive.path, "{which:?}");
                assert_eq!(digest, blob.digest, "{which:?}");
                assert_eq!(actual, damaged, "{which:?}");
            }
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

    let missing = dir.path().join("no-archive.tar");
    match product::Archive::open(&missing) {
        Err(ArchiveError::NotFound { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}
