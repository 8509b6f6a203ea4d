//! A tiny OCI image archive for the host-container scenarios: the host's
//! static busybox in a single layer, written as an [OCI image layout] in a
//! tar, the form `ctr images import` and containerd's Go `Import` accept,
//! so that a guest can import an image with no network.
//!
//! [`busybox_archive`] writes it in these steps:
//!
//! 1. the layer: an uncompressed tar of `bin/busybox` (mode 0755), one
//!    symlink `bin/APPLET -> busybox` per applet and the empty folders
//!    [`EMPTY_DIRS`]; its sha256 is the config's `diff_id`;
//! 2. the layer blob: that tar gzip-compressed
//!    ([`MEDIA_TYPE_LAYER`], the layer type every containerd unpacks);
//! 3. the config blob: amd64, linux, `rootfs.diff_ids`, `Env PATH=/bin`
//!    and `Cmd ["/bin/sh", "-c", SCRIPT]`;
//! 4. the manifest blob: the config and layer descriptors;
//! 5. the archive: `oci-layout`, `index.json` (one manifest, named by both
//!    [`ANNOTATION_REF_NAME`] and [`ANNOTATION_IMAGE_NAME`]) and
//!    `blobs/sha256/DIGEST` for each blob.
//!
//! Everything is deterministic: every tar entry has mtime 0, uid and gid 0
//! and no owner names, entries are sorted, the gzip header has no time or
//! name, and JSON objects are written with sorted keys (oci-spec keeps
//! annotations in a `HashMap`, whose order changes from run to run). The
//! same busybox and options therefore give the same bytes and digests.
//!
//! [`corrupt_blob`] flips a byte of one blob in place, so that a scenario
//! can check that an import refuses it. Reading an archive back is left to
//! the product's own reader, `host_ctr::archive::Archive::open`: the host
//! tests (`tests/oci.rs`) check this builder's output with it, so the
//! harness and host-ctr cannot drift apart over what a valid archive is.
//!
//! What it leaves out: more than one layer or platform, zstd layers,
//! users and groups (`/etc/passwd`), image history and labels.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::OciSpecError;
use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest,
    ImageConfiguration, ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder, RootFsBuilder,
    SCHEMA_VERSION, Sha256Digest,
};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The annotation containerd's importer reads first for the image's name
/// (`images.AnnotationImageName`); `org.opencontainers.image.ref.name` is
/// its fallback, and other tools (skopeo, podman) read only that one.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// The `imageLayoutVersion` of `oci-layout`.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// The layer's media type: a gzip-compressed tar, the type registries serve
/// and every containerd version unpacks.
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The image's name when [`ArchiveOptions::reference`] is not changed.
pub const DEFAULT_REFERENCE: &str = "localhost/busybox:latest";

/// The container's default command, run by `/bin/sh -c`: sleep for ever,
/// yet exit 0 at once on SIGTERM or SIGINT. A shell that is the container's
/// PID 1 gets only the signals it has a handler for (pid_namespaces(7)),
/// and runs a trap only between commands, so it waits on a background
/// sleep (`wait` returns when a trapped signal arrives) and kills that
/// sleep before it exits: in the host PID namespace nothing else would.
pub const DEFAULT_SCRIPT: &str =
    "trap 'kill $! 2>/dev/null; exit 0' TERM INT; sleep 2147483647 & wait";

/// The busybox applets linked into `/bin` by default: a shell, and what the
/// scenarios use to look around inside the container.
pub const DEFAULT_APPLETS: &[&str] = &["cat", "id", "ls", "ps", "sh", "sleep"];

/// The empty folders of the layer: mount points the runtime fills (`proc`,
/// `sys`, `dev`), plus `tmp` (mode 1777) and `etc` for files the runtime
/// writes, such as `/etc/hosts`.
pub const EMPTY_DIRS: &[&str] = &["dev", "etc", "proc", "sys", "tmp"];

/// Where busybox goes in the layer, relative to its root.
pub const LAYER_BUSYBOX: &str = "bin/busybox";

/// What [`busybox_archive`] puts in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// The image's name, such as `localhost/admin:latest`: the value of
    /// both name annotations in `index.json`.
    pub reference: String,
    /// The shell script of the image's `Cmd` (`/bin/sh -c SCRIPT`).
    pub script: String,
    /// The applets linked to busybox in `/bin`; `sh` is needed for `Cmd`.
    pub applets: Vec<String>,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        Self {
            reference: DEFAULT_REFERENCE.to_owned(),
            script: DEFAULT_SCRIPT.to_owned(),
            applets: DEFAULT_APPLETS.iter().map(|&a| a.to_owned()).collect(),
        }
    }
}

/// One blob of an archive: its digest and size, as in its descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    /// The size in bytes.
    pub size: u64,
}

impl Blob {
    fn of(bytes: &[u8]) -> Self {
        Self {
            digest: format!("sha256:{}", sha256_hex(bytes)),
            size: bytes.len() as u64,
        }
    }

    /// The digest's hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }

    /// The blob's path inside the archive: `blobs/sha256/HEX`.
    pub fn path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

/// An archive [`busybox_archive`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archive {
    /// The archive's file.
    pub path: PathBuf,
    /// The image's name, as written in `index.json`.
    pub reference: String,
    /// The manifest blob.
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// The (compressed) layer blob.
    pub layer: Blob,
    /// The sha256 of the uncompressed layer tar (`sha256:HEX`).
    pub diff_id: String,
}

impl Archive {
    /// The blob of one kind.
    pub fn blob(&self, which: BlobKind) -> &Blob {
        match which {
            BlobKind::Manifest => &self.manifest,
            BlobKind::Config => &self.config,
            BlobKind::Layer => &self.layer,
        }
    }
}

/// Which blob [`corrupt_blob`] damages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    /// The image manifest.
    Manifest,
    /// The image config.
    Config,
    /// The layer.
    Layer,
}

/// What failed while writing or damaging an archive.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: "read", "write", "open", "seek in", "sync".
        action: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The layer could not be written or compressed in memory.
    #[error("cannot {action} the layer")]
    Layer {
        /// "write" or "compress".
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// An applet name would not make a file in `/bin` beside busybox.
    #[error("applet name {name:?} is not a plain file name other than busybox")]
    BadApplet {
        /// The name.
        name: String,
    },
    /// oci-spec refused to build a document.
    #[error("cannot build the image {what}")]
    Build {
        /// "config", "manifest", "index", "oci-layout", "descriptor".
        what: &'static str,
        #[source]
        source: OciSpecError,
    },
    /// A document could not be written as JSON.
    #[error("cannot write {name} as json")]
    Json {
        /// The file in the archive, such as `index.json`.
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// The blob [`corrupt_blob`] should damage is not in the archive.
    #[error("{} holds no {name}", archive.display())]
    Missing {
        /// The archive.
        archive: PathBuf,
        /// The blob's file, `blobs/sha256/HEX`.
        name: String,
    },
}

/// Writes an OCI archive to `out` holding one image: `busybox` (the
/// host's static busybox, such as `/bin/busybox`) in a single layer, with
/// the name, command and applets of `options`.
///
/// # Errors
///
/// [`OciError::Io`] if busybox cannot be read or `out` written,
/// [`OciError::BadApplet`] for an applet name that is empty, has a `/` or
/// is `busybox`, [`OciError::Build`] or [`OciError::Json`] if a document
/// cannot be built.
pub fn busybox_archive(
    busybox: &Path,
    out: &Path,
    options: &ArchiveOptions,
) -> Result<Archive, OciError> {
    let busybox_bytes = fs::read(busybox).map_err(|source| OciError::Io {
        action: "read",
        path: busybox.to_owned(),
        source,
    })?;

    // 1. The layer, uncompressed: its sha256 is the diff_id.
    let layer_tar = layer_tar(&busybox_bytes, &options.applets)?;
    let diff_id = format!("sha256:{}", sha256_hex(&layer_tar));

    // 2. The layer blob. Level 6 (flate2's default) is plenty for 2 MiB.
    let layer_gz = gzip(&layer_tar).map_err(|source| OciError::Layer {
        action: "compress",
        source,
    })?;
    let layer = Blob::of(&layer_gz);

    // 3. The config blob.
    let config_json = canonical_json(&image_config(&diff_id, &options.script)?, "config")?;
    let config = Blob::of(&config_json);

    // 4. The manifest blob.
    let manifest_doc = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config)?)
        .layers(vec![descriptor(MediaType::ImageLayerGzip, &layer)?])
        .build()
        .map_err(|source| OciError::Build {
            what: "manifest",
            source,
        })?;
    let manifest_json = canonical_json(&manifest_doc, "manifest")?;
    let manifest = Blob::of(&manifest_json);

    // 5. index.json and oci-layout, then the archive itself.
    let index_json = canonical_json(&image_index(&manifest, &options.reference)?, "index.json")?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version(LAYOUT_VERSION)
        .build()
        .map_err(|source| OciError::Build {
            what: "oci-layout",
            source,
        })?;
    let layout_json = canonical_json(&layout, "oci-layout")?;

    let files: BTreeMap<String, &[u8]> = BTreeMap::from([
        ("oci-layout".to_owned(), layout_json.as_slice()),
        ("index.json".to_owned(), index_json.as_slice()),
        (manifest.path(), manifest_json.as_slice()),
        (config.path(), config_json.as_slice()),
        (layer.path(), layer_gz.as_slice()),
    ]);
    write_archive(out, &files).map_err(|source| OciError::Io {
        action: "write",
        path: out.to_owned(),
        source,
    })?;

    Ok(Archive {
        path: out.to_owned(),
        reference: options.reference.clone(),
        manifest,
        config,
        layer,
        diff_id,
    })
}

/// Damages one blob of `archive` in place: flips every bit of the byte in
/// its middle, leaving its name, size and the tar headers as they were, so
/// that its content no longer matches its digest.
///
/// # Errors
///
/// [`OciError::Io`] if the archive cannot be read or written,
/// [`OciError::Missing`] if it does not hold the blob.
pub fn corrupt_blob(archive: &Archive, which: BlobKind) -> Result<(), OciError> {
    let name = archive.blob(which).path();
    let io = |action| {
        let path = archive.path.clone();
        move |source| OciError::Io {
            action,
            path,
            source,
        }
    };

    // Find where the blob's bytes start in the file: a tar stores them
    // verbatim after the entry's header.
    let mut offset = None;
    {
        let file = File::open(&archive.path).map_err(io("open"))?;
        let mut tar = tar::Archive::new(file);
        for entry in tar.entries().map_err(io("read"))? {
            let entry = entry.map_err(io("read"))?;
            if entry.path_bytes().as_ref() == name.as_bytes() {
                offset = Some(entry.raw_file_position() + entry.size() / 2);
                break;
            }
        }
    }
    let offset = offset.ok_or_else(|| OciError::Missing {
        archive: archive.path.clone(),
        name: name.clone(),
    })?;

    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&archive.path)
        .map_err(io("open"))?;
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(offset)).map_err(io("seek in"))?;
    file.read_exact(&mut byte).map_err(io("read"))?;
    byte[0] ^= 0xff;
    file.seek(SeekFrom::Start(offset)).map_err(io("seek in"))?;
    file.write_all(&byte).map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))
}

/// One entry of a deterministic tar.
enum TarEntry<'a> {
    Dir { mode: u32 },
    File { mode: u32, data: &'a [u8] },
    Symlink { target: &'a str },
}

/// The uncompressed layer: busybox, its applet links and [`EMPTY_DIRS`].
fn layer_tar(busybox: &[u8], applets: &[String]) -> Result<Vec<u8>, OciError> {
    let mut entries: BTreeMap<String, TarEntry<'_>> = BTreeMap::new();
    entries.insert("bin/".to_owned(), TarEntry::Dir { mode: 0o755 });
    for dir in EMPTY_DIRS {
        // tmp is world-writable and sticky, as on any Linux root.
        let mode = if *dir == "tmp" { 0o1777 } else { 0o755 };
        entries.insert(format!("{dir}/"), TarEntry::Dir { mode });
    }
    entries.insert(
        LAYER_BUSYBOX.to_owned(),
        TarEntry::File {
            mode: 0o755,
            data: busybox,
        },
    );
    for applet in applets {
        if applet.is_empty() || applet.contains('/') || applet == "busybox" || applet == ".." {
            return Err(OciError::BadApplet {
                name: applet.clone(),
            });
        }
        entries.insert(
            format!("bin/{applet}"),
            TarEntry::Symlink { target: "busybox" },
        );
    }
    write_tar(Vec::new(), &entries).map_err(|source| OciError::Layer {
        action: "write",
        source,
    })
}

/// Writes `entries` as a tar in name order, every header with mtime 0,
/// uid and gid 0 and no owner names.
fn write_tar<W: Write>(out: W, entries: &BTreeMap<String, TarEntry<'_>>) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    for (name, entry) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            TarEntry::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, name, io::empty())?;
            }
            TarEntry::File { mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, name, *data)?;
            }
            TarEntry::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, name, target)?;
            }
        }
    }
    tar.into_inner()
}

/// Writes the outer archive: `files` (name → content, mode 0644) and the
/// folders `blobs/` and `blobs/sha256/`, for tools that unpack it.
fn write_archive(out: &Path, files: &BTreeMap<String, &[u8]>) -> io::Result<()> {
    let mut entries: BTreeMap<String, TarEntry<'_>> = files
        .iter()
        .map(|(name, data)| (name.clone(), TarEntry::File { mode: 0o644, data }))
        .collect();
    entries.insert("blobs/".to_owned(), TarEntry::Dir { mode: 0o755 });
    entries.insert("blobs/sha256/".to_owned(), TarEntry::Dir { mode: 0o755 });
    let file = File::create(out)?;
    let mut writer = write_tar(BufWriter::new(file), &entries)?;
    writer.flush()?;
    writer.get_ref().sync_all()
}

/// The image config: amd64 linux, `PATH=/bin`, `/bin/sh -c SCRIPT`.
fn image_config(diff_id: &str, script: &str) -> Result<ImageConfiguration, OciError> {
    let build = |source| OciError::Build {
        what: "config",
        source,
    };
    let config = ConfigBuilder::default()
        .env(vec!["PATH=/bin".to_owned()])
        .cmd(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
        ])
        .build()
        .map_err(build)?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id.to_owned()])
        .build()
        .map_err(build)?;
    ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs)
        .build()
        .map_err(build)
}

/// `index.json`: the manifest for linux/amd64, with its name in both
/// annotations.
fn image_index(manifest: &Blob, reference: &str) -> Result<ImageIndex, OciError> {
    let build = |source| OciError::Build {
        what: "index",
        source,
    };
    let platform = PlatformBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .build()
        .map_err(build)?;
    let mut desc = descriptor(MediaType::ImageManifest, manifest)?;
    desc.set_platform(Some(platform));
    desc.set_annotations(Some(HashMap::from([
        (ANNOTATION_IMAGE_NAME.to_owned(), reference.to_owned()),
        (ANNOTATION_REF_NAME.to_owned(), reference.to_owned()),
    ])));
    ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![desc])
        .build()
        .map_err(build)
}

/// A descriptor of `blob`.
fn descriptor(media_type: MediaType, blob: &Blob) -> Result<Descriptor, OciError> {
    let build = |source| OciError::Build {
        what: "descriptor",
        source,
    };
    let digest: Sha256Digest = blob.hex().parse().map_err(build)?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(Digest::from(digest))
        .size(blob.size)
        .build()
        .map_err(build)
}

/// Serialises `value` with object keys sorted at every level, whatever
/// map type (or serde_json `preserve_order` feature) is behind it.
fn canonical_json<T: Serialize>(value: &T, name: &str) -> Result<Vec<u8>, OciError> {
    fn sorted(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let json = |source| OciError::Json {
        name: name.to_owned(),
        source,
    };
    let value = serde_json::to_value(value).map_err(json)?;
    serde_json::to_vec(&sorted(value)).map_err(json)
}

/// gzip with no file name and mtime 0 in the header, so the bytes depend
/// on the input alone.
fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
