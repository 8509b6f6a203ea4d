//! A host container's image: a local OCI archive, read and verified.
//!
//! The archive is an [OCI image layout] (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`) in an uncompressed tar file, as `ctr export` and
//! `skopeo copy … oci-archive:` write it (entry names may start with `./`).
//!
//! [`Archive::open`] checks everything *before* any blob reaches
//! containerd: containerd 1.6 only notices a corrupt blob when it unpacks
//! it, with a message that names neither the archive nor the blob. Here,
//! every blob the image needs (manifest, config, layers) must be in the tar
//! with its declared size and SHA-256, and every layer's uncompressed
//! content must have the digest the config lists for it (its diff ID).
//! Every error names the archive, and the blob when one is at fault.
//!
//! The tar is streamed, never held in memory: one pass over its headers
//! records where each blob's bytes are, then each needed blob is read once
//! from that offset. Only JSON documents (at most [`MAX_JSON_SIZE`] bytes)
//! are read into memory.
//!
//! Left out: platforms other than linux/amd64, zstd and foreign
//! (non-distributable) layers, digests other than SHA-256, and image
//! indexes nested more than one level deep. The archive is trusted not to
//! change between [`Archive::open`] and [`Archive::blob_reader`].
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os, Platform,
};
use sha2::{Digest as _, Sha256};

/// The largest JSON document (`oci-layout`, `index.json`, a manifest, an
/// index or a config) read into memory. Real ones are a few KiB.
pub const MAX_JSON_SIZE: u64 = 4 << 20;

/// The only image layout version there is.
const LAYOUT_VERSION: &str = "1.0.0";

/// The operating system of the image that is chosen.
const WANTED_OS: &str = "linux";
/// The architecture of the image that is chosen.
const WANTED_ARCH: &str = "amd64";

/// Media types of an image manifest (OCI, Docker schema 2).
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Media types of an image index (OCI, Docker manifest list).
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Media types of an image config (OCI, Docker).
const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
/// Media types of an uncompressed layer (OCI, Docker).
const TAR_LAYER_TYPES: [&str; 2] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
];
/// Media types of a tar+gzip layer (OCI, Docker).
const GZIP_LAYER_TYPES: [&str; 2] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// Annotations of an `index.json` entry that carry the image's reference,
/// in order of preference.
const REFERENCE_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

/// One content-addressed blob of the archive, as a descriptor names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The descriptor's media type, as written.
    pub media_type: String,
    /// `sha256:` followed by 64 lowercase hex digits (checked).
    pub digest: String,
    /// The blob's size in bytes (checked against the tar entry).
    pub size: u64,
}

/// What the image's config says to run (its `config` object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageProcess {
    /// `Entrypoint`, empty if absent.
    pub entrypoint: Vec<String>,
    /// `Cmd`, empty if absent.
    pub cmd: Vec<String>,
    /// `Env` (`KEY=value`), empty if absent.
    pub env: Vec<String>,
    /// `WorkingDir`, `None` if absent or empty.
    pub working_dir: Option<String>,
    /// `User`, `None` if absent or empty.
    pub user: Option<String>,
}

/// A verified OCI archive: the linux/amd64 image it holds, and where its
/// blobs are in the tar.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The archive file.
    pub path: PathBuf,
    /// Reference from index.json's manifest annotations
    /// (`io.containerd.image.name`, else
    /// `org.opencontainers.image.ref.name`), if any.
    pub reference: Option<String>,
    /// The image manifest.
    pub manifest: Blob,
    /// The image config.
    pub config: Blob,
    /// The layers, bottom first.
    pub layers: Vec<Blob>,
    /// The config's rootfs.diff_ids, one per layer, in order ("sha256:…").
    pub diff_ids: Vec<String>,
    /// What the image runs.
    pub process: ImageProcess,
    /// Where each blob's bytes are in the tar, by its 64 hex digits.
    locations: HashMap<String, Location>,
}

/// Where a regular file's bytes are in the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    /// Offset of the first data byte from the start of the tar file.
    offset: u64,
    /// The entry's size in bytes.
    size: u64,
}

/// Why an archive cannot be used. Every message names the archive; blob
/// problems also name the blob's digest.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive file does not exist.
    #[error("{path}: not found", path = path.display())]
    NotFound {
        /// The archive.
        path: PathBuf,
        /// The error from `open`.
        #[source]
        source: io::Error,
    },
    /// The archive file exists but cannot be opened.
    #[error("{path}: cannot open", path = path.display())]
    Open {
        /// The archive.
        path: PathBuf,
        /// The error from `open`.
        #[source]
        source: io::Error,
    },
    /// The tar cannot be read (I/O error or a malformed header).
    #[error("{path}: cannot read the tar", path = path.display())]
    Tar {
        /// The archive.
        path: PathBuf,
        /// The error from reading or parsing the tar.
        #[source]
        source: io::Error,
    },
    /// A file every OCI image layout has is missing.
    #[error("{path}: not an OCI archive: no {file}", path = path.display())]
    NotOci {
        /// The archive.
        path: PathBuf,
        /// `oci-layout` or `index.json`.
        file: &'static str,
    },
    /// `oci-layout` names a layout version other than 1.0.0.
    #[error(
        "{path}: oci-layout has imageLayoutVersion {version:?}, expected \"1.0.0\"",
        path = path.display()
    )]
    LayoutVersion {
        /// The archive.
        path: PathBuf,
        /// The version found (empty if the key is missing).
        version: String,
    },
    /// A JSON document is larger than [`MAX_JSON_SIZE`].
    #[error(
        "{path}: {what}: {size} bytes is too large for a JSON document (at most {MAX_JSON_SIZE})",
        path = path.display()
    )]
    JsonTooLarge {
        /// The archive.
        path: PathBuf,
        /// Which document: `index.json`, `manifest sha256:…`.
        what: String,
        /// Its size.
        size: u64,
    },
    /// A JSON document does not parse as what it should be.
    #[error("{path}: {what}: does not parse", path = path.display())]
    Json {
        /// The archive.
        path: PathBuf,
        /// Which document: `index.json`, `manifest sha256:…`.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// No image manifest for linux/amd64.
    #[error("{path}: no image manifest for linux/amd64", path = path.display())]
    NoManifest {
        /// The archive.
        path: PathBuf,
    },
    /// More than one image manifest for linux/amd64: which to run is
    /// ambiguous.
    #[error(
        "{path}: {count} image manifests for linux/amd64 ({digests}), expected one",
        path = path.display(),
        count = digests.len(),
        digests = digests.join(", ")
    )]
    ManyManifests {
        /// The archive.
        path: PathBuf,
        /// The candidates' digests.
        digests: Vec<String>,
    },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error(
        "{path}: {what} {digest:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)",
        path = path.display()
    )]
    InvalidDigest {
        /// The archive.
        path: PathBuf,
        /// What carries it: `descriptor`, `diff_id`.
        what: &'static str,
        /// The digest as written.
        digest: String,
    },
    /// A referenced blob is not a regular file of the tar.
    #[error("{path}: blob {digest}: missing from the archive", path = path.display())]
    BlobMissing {
        /// The archive.
        path: PathBuf,
        /// The blob's digest.
        digest: String,
    },
    /// A blob's size differs from its descriptor's.
    #[error(
        "{path}: blob {digest}: size is {actual} bytes, expected {expected}",
        path = path.display()
    )]
    BlobSize {
        /// The archive.
        path: PathBuf,
        /// The blob's digest.
        digest: String,
        /// The tar entry's size.
        actual: u64,
        /// The descriptor's size.
        expected: u64,
    },
    /// A blob's content does not have its digest.
    #[error(
        "{path}: blob {digest}: content has digest {actual}, expected {digest}",
        path = path.display()
    )]
    BlobDigest {
        /// The archive.
        path: PathBuf,
        /// The blob's (expected) digest.
        digest: String,
        /// The digest of its content.
        actual: String,
    },
    /// A blob's bytes cannot be read.
    #[error("{path}: blob {digest}: cannot read", path = path.display())]
    BlobRead {
        /// The archive.
        path: PathBuf,
        /// The blob's digest.
        digest: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A manifest, config or layer of a media type this crate cannot use.
    #[error(
        "{path}: {what} {digest}: media type {media_type} is not supported",
        path = path.display()
    )]
    MediaType {
        /// The archive.
        path: PathBuf,
        /// `manifest`, `config` or `layer`.
        what: &'static str,
        /// The blob's digest.
        digest: String,
        /// The media type.
        media_type: String,
    },
    /// The config is for another platform than linux/amd64.
    #[error(
        "{path}: config {digest}: image is for {os}/{arch}, expected linux/amd64",
        path = path.display()
    )]
    Platform {
        /// The archive.
        path: PathBuf,
        /// The config's digest.
        digest: String,
        /// The config's `os`.
        os: String,
        /// The config's `architecture`.
        arch: String,
    },
    /// The manifest and the config disagree on the number of layers.
    #[error(
        "{path}: manifest {digest} has {layers} layers but its config has {diff_ids} diff_ids",
        path = path.display()
    )]
    LayerCount {
        /// The archive.
        path: PathBuf,
        /// The manifest's digest.
        digest: String,
        /// Number of layers in the manifest.
        layers: usize,
        /// Number of diff IDs in the config.
        diff_ids: usize,
    },
    /// A gzip layer does not decompress.
    #[error("{path}: layer {digest}: cannot decompress", path = path.display())]
    Decompress {
        /// The archive.
        path: PathBuf,
        /// The layer's digest.
        digest: String,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// A layer's uncompressed content does not have the config's diff ID.
    #[error(
        "{path}: layer {digest}: uncompressed content has digest {actual}, expected diff_id {expected}",
        path = path.display()
    )]
    DiffId {
        /// The archive.
        path: PathBuf,
        /// The layer's digest.
        digest: String,
        /// The digest of its uncompressed content.
        actual: String,
        /// The config's diff ID for it.
        expected: String,
    },
}

impl Archive {
    /// Opens the OCI archive at `path` and verifies the linux/amd64 image
    /// in it.
    ///
    /// The tar is read once for its headers (`oci-layout` and `index.json`
    /// are read whole), then each needed blob once. Checks, in order:
    /// `oci-layout` exists with imageLayoutVersion "1.0.0"; `index.json`
    /// parses and names exactly one image manifest for linux/amd64
    /// (entries without a platform count as matching; an entry that is
    /// itself an image index is followed one level, and its linux/amd64
    /// manifests count instead); every blob referenced (index, manifest,
    /// config, layers) exists as `blobs/sha256/<hex>` with the declared
    /// size and SHA-256; the manifest and config parse; the config is for
    /// linux/amd64; layers are OCI or Docker tar or tar+gzip; there are as
    /// many layers as diff IDs; and each layer's uncompressed SHA-256 is
    /// its diff ID.
    ///
    /// # Errors
    ///
    /// The first failed check, as an [`ArchiveError`] naming `path`.
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let contents = scan(path)?;
        let index_json = contents.index_json.ok_or_else(|| ArchiveError::NotOci {
            path: path.to_owned(),
            file: "index.json",
        })?;
        let layout_json = contents.oci_layout.ok_or_else(|| ArchiveError::NotOci {
            path: path.to_owned(),
            file: "oci-layout",
        })?;
        let reader = Reader {
            path,
            locations: contents.blobs,
        };

        // 1. The layout version.
        let layout: serde_json::Value =
            serde_json::from_slice(&layout_json).map_err(|source| ArchiveError::Json {
                path: path.to_owned(),
                what: "oci-layout".to_owned(),
                source,
            })?;
        let version = layout
            .get("imageLayoutVersion")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if version != LAYOUT_VERSION {
            return Err(ArchiveError::LayoutVersion {
                path: path.to_owned(),
                version: version.to_owned(),
            });
        }

        // 2. The one linux/amd64 manifest, and the reference of the
        //    index.json entry that leads to it.
        let index: ImageIndex = parse_json(path, "index.json", &index_json)?;
        let (manifest_desc, reference) = reader.choose_manifest(&index)?;
        let manifest = blob_of(path, &manifest_desc)?;

        // 3. The manifest.
        let manifest_json = reader.read_json(&manifest, "manifest")?;
        let image_manifest: ImageManifest = parse_json(
            path,
            &format!("manifest {}", manifest.digest),
            &manifest_json,
        )?;

        // 4. The config, and what it says to run.
        let config = blob_of(path, image_manifest.config())?;
        if !CONFIG_TYPES.contains(&config.media_type.as_str()) {
            return Err(ArchiveError::MediaType {
                path: path.to_owned(),
                what: "config",
                digest: config.digest,
                media_type: config.media_type,
            });
        }
        let config_json = reader.read_json(&config, "config")?;
        let image_config: ImageConfiguration =
            parse_json(path, &format!("config {}", config.digest), &config_json)?;
        let (os, arch) = (
            image_config.os().to_string(),
            image_config.architecture().to_string(),
        );
        if os != WANTED_OS || arch != WANTED_ARCH {
            return Err(ArchiveError::Platform {
                path: path.to_owned(),
                digest: config.digest,
                os,
                arch,
            });
        }
        let diff_ids = image_config.rootfs().diff_ids().clone();
        for diff_id in &diff_ids {
            check_digest(path, "diff_id", diff_id)?;
        }
        let process = image_process(&image_config);

        // 5. The layers: supported media types, one per diff ID, and
        //    each one's content and uncompressed content.
        let layers = image_manifest
            .layers()
            .iter()
            .map(|desc| blob_of(path, desc))
            .collect::<Result<Vec<_>, _>>()?;
        for layer in &layers {
            layer_kind(path, layer)?;
        }
        if layers.len() != diff_ids.len() {
            return Err(ArchiveError::LayerCount {
                path: path.to_owned(),
                digest: manifest.digest,
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            reader.verify_layer(layer, diff_id)?;
        }

        Ok(Archive {
            path: path.to_owned(),
            reference,
            manifest,
            config,
            layers,
            diff_ids,
            process,
            locations: reader.locations,
        })
    }

    /// A reader over one blob's bytes inside the tar: the archive file,
    /// seeked to the blob's data and limited to its size.
    ///
    /// The bytes are not verified again: [`Archive::open`] did, and the
    /// archive is trusted not to change in between.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::InvalidDigest`] for a malformed digest,
    /// [`ArchiveError::BlobMissing`] if the blob is not in the archive,
    /// [`ArchiveError::BlobSize`] if its size is not `blob.size`, and an
    /// I/O error opening or seeking the archive.
    pub fn blob_reader(&self, blob: &Blob) -> Result<io::Take<File>, ArchiveError> {
        let location = locate(&self.path, &self.locations, blob)?;
        open_at(&self.path, &blob.digest, location)
    }

    /// containerd's snapshot chain IDs, one per layer: chain\[0\] =
    /// diff_ids\[0\], chain\[n\] = `"sha256:" + hex(sha256(chain[n-1] + " " +
    /// diff_ids[n]))` (the OCI image spec's ChainID).
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.diff_ids)
    }
}

/// The chain IDs of a stack of layers with `diff_ids`, bottom first.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => {
                let mut hasher = Sha256::new();
                hasher.update(parent.as_bytes());
                hasher.update(b" ");
                hasher.update(diff_id.as_bytes());
                sha256_digest(hasher)
            }
        };
        chain.push(next);
    }
    chain
}

/// What the image config says to run.
fn image_process(config: &ImageConfiguration) -> ImageProcess {
    let Some(c) = config.config() else {
        return ImageProcess::default();
    };
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    ImageProcess {
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        env: c.env().clone().unwrap_or_default(),
        working_dir: non_empty(c.working_dir()),
        user: non_empty(c.user()),
    }
}

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerKind {
    /// A plain tar: its digest is its diff ID.
    Tar,
    /// A tar compressed with gzip.
    Gzip,
}

/// The compression of `layer`, or an error for a media type that is not
/// an OCI or Docker tar or tar+gzip layer (zstd, foreign, anything else).
fn layer_kind(path: &Path, layer: &Blob) -> Result<LayerKind, ArchiveError> {
    let media_type = layer.media_type.as_str();
    if TAR_LAYER_TYPES.contains(&media_type) {
        Ok(LayerKind::Tar)
    } else if GZIP_LAYER_TYPES.contains(&media_type) {
        Ok(LayerKind::Gzip)
    } else {
        Err(ArchiveError::MediaType {
            path: path.to_owned(),
            what: "layer",
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        })
    }
}

/// The [`Blob`] a descriptor names, its digest checked.
fn blob_of(path: &Path, desc: &Descriptor) -> Result<Blob, ArchiveError> {
    let digest = desc.digest().to_string();
    check_digest(path, "descriptor digest", &digest)?;
    Ok(Blob {
        media_type: desc.media_type().to_string(),
        digest,
        size: desc.size(),
    })
}

/// The 64 hex digits of `digest` if it is `sha256:` and 64 lowercase hex
/// digits, the only form a blob's file name is built from.
fn sha256_hex(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| is_sha256_hex(hex))
}

/// Whether `hex` is 64 lowercase hex digits.
fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks that `digest` is `sha256:` and 64 lowercase hex digits.
fn check_digest(path: &Path, what: &'static str, digest: &str) -> Result<(), ArchiveError> {
    match sha256_hex(digest) {
        Some(_) => Ok(()),
        None => Err(ArchiveError::InvalidDigest {
            path: path.to_owned(),
            what,
            digest: digest.to_owned(),
        }),
    }
}

/// `sha256:` and the lowercase hex of what `hasher` was fed.
fn sha256_digest(hasher: Sha256) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hasher.finalize().iter() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Parses a JSON document of the archive.
fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    json: &[u8],
) -> Result<T, ArchiveError> {
    serde_json::from_slice(json).map_err(|source| ArchiveError::Json {
        path: path.to_owned(),
        what: what.to_owned(),
        source,
    })
}

/// Where `blob` is in the tar, checking its digest's form and its size.
fn locate(
    path: &Path,
    locations: &HashMap<String, Location>,
    blob: &Blob,
) -> Result<Location, ArchiveError> {
    let hex = sha256_hex(&blob.digest).ok_or_else(|| ArchiveError::InvalidDigest {
        path: path.to_owned(),
        what: "blob digest",
        digest: blob.digest.clone(),
    })?;
    let location = *locations
        .get(hex)
        .ok_or_else(|| ArchiveError::BlobMissing {
            path: path.to_owned(),
            digest: blob.digest.clone(),
        })?;
    if location.size != blob.size {
        return Err(ArchiveError::BlobSize {
            path: path.to_owned(),
            digest: blob.digest.clone(),
            actual: location.size,
            expected: blob.size,
        });
    }
    Ok(location)
}

/// Opens the archive at `path`, mapping a missing file to
/// [`ArchiveError::NotFound`].
fn open_file(path: &Path) -> Result<File, ArchiveError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ArchiveError::NotFound {
                path: path.to_owned(),
                source,
            }
        } else {
            ArchiveError::Open {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// A fresh reader over the bytes at `location` of the archive at `path`.
fn open_at(path: &Path, digest: &str, location: Location) -> Result<io::Take<File>, ArchiveError> {
    let mut file = open_file(path)?;
    file.seek(SeekFrom::Start(location.offset))
        .map_err(|source| ArchiveError::BlobRead {
            path: path.to_owned(),
            digest: digest.to_owned(),
            source,
        })?;
    Ok(file.take(location.size))
}

/// What the header pass found in the tar.
#[derive(Debug, Default)]
struct Contents {
    /// The `oci-layout` file's bytes.
    oci_layout: Option<Vec<u8>>,
    /// The `index.json` file's bytes.
    index_json: Option<Vec<u8>>,
    /// Regular files under `blobs/sha256/` named by 64 lowercase hex
    /// digits (the last entry wins, as when extracting the tar).
    blobs: HashMap<String, Location>,
}

/// The header pass: where the blobs are in the tar at `path`, and the
/// bytes of `oci-layout` and `index.json`. Data is skipped with seeks.
fn scan(path: &Path) -> Result<Contents, ArchiveError> {
    let tar_err = |source| ArchiveError::Tar {
        path: path.to_owned(),
        source,
    };
    let mut tar = tar::Archive::new(open_file(path)?);
    let mut contents = Contents::default();
    for entry in tar.entries_with_seek().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        // Only regular files: directories, links and devices are not
        // blobs (a link's target is not checked, so it is ignored).
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path_bytes().into_owned();
        let name = strip_dot_slash(&name);
        let size = entry.size();
        let slot = match name {
            b"oci-layout" => Some(("oci-layout", &mut contents.oci_layout)),
            b"index.json" => Some(("index.json", &mut contents.index_json)),
            _ => None,
        };
        if let Some((what, slot)) = slot {
            if size > MAX_JSON_SIZE {
                return Err(ArchiveError::JsonTooLarge {
                    path: path.to_owned(),
                    what: what.to_owned(),
                    size,
                });
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut bytes).map_err(tar_err)?;
            *slot = Some(bytes);
            continue;
        }
        let hex = name
            .strip_prefix(b"blobs/sha256/")
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .filter(|hex| is_sha256_hex(hex));
        if let Some(hex) = hex {
            let location = Location {
                offset: entry.raw_file_position(),
                size,
            };
            contents.blobs.insert(hex.to_owned(), location);
        }
    }
    Ok(contents)
}

/// The archive while it is being verified: its path and where its blobs
/// are.
#[derive(Debug)]
struct Reader<'a> {
    /// The archive's path, for errors and to reopen it.
    path: &'a Path,
    /// The blobs found by the header pass.
    locations: HashMap<String, Location>,
}

impl Reader<'_> {
    /// The one linux/amd64 image manifest of `index`, and the reference
    /// annotated on the `index.json` entry that leads to it.
    fn choose_manifest(
        &self,
        index: &ImageIndex,
    ) -> Result<(Descriptor, Option<String>), ArchiveError> {
        let mut candidates: Vec<(Descriptor, Option<String>)> = Vec::new();
        for entry in index.manifests() {
            if !platform_matches(entry.platform().as_ref()) {
                continue;
            }
            let media_type = entry.media_type().to_string();
            let reference = reference_of(entry);
            if MANIFEST_TYPES.contains(&media_type.as_str()) {
                candidates.push((entry.clone(), reference));
            } else if INDEX_TYPES.contains(&media_type.as_str()) {
                // An image index (multi-platform image): follow it one
                // level down.
                let blob = blob_of(self.path, entry)?;
                let json = self.read_json(&blob, "index")?;
                let nested: ImageIndex =
                    parse_json(self.path, &format!("index {}", blob.digest), &json)?;
                for child in nested.manifests() {
                    let child_type = child.media_type().to_string();
                    if MANIFEST_TYPES.contains(&child_type.as_str())
                        && platform_matches(child.platform().as_ref())
                    {
                        candidates.push((child.clone(), reference.clone()));
                    }
                }
            }
            // Anything else (artifacts, attestations) is not an image.
        }
        // The same manifest named twice (two tags) is one image.
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|(desc, _)| seen.insert(desc.digest().to_string()));
        match candidates.len() {
            0 => Err(ArchiveError::NoManifest {
                path: self.path.to_owned(),
            }),
            1 => Ok(candidates.remove(0)),
            _ => Err(ArchiveError::ManyManifests {
                path: self.path.to_owned(),
                digests: candidates
                    .iter()
                    .map(|(desc, _)| desc.digest().to_string())
                    .collect(),
            }),
        }
    }

    /// Reads a JSON blob whole, after checking its size against
    /// [`MAX_JSON_SIZE`], and verifies its digest.
    fn read_json(&self, blob: &Blob, what: &str) -> Result<Vec<u8>, ArchiveError> {
        if blob.size > MAX_JSON_SIZE {
            return Err(ArchiveError::JsonTooLarge {
                path: self.path.to_owned(),
                what: format!("{what} {}", blob.digest),
                size: blob.size,
            });
        }
        let location = locate(self.path, &self.locations, blob)?;
        let mut reader = HashingReader::new(open_at(self.path, &blob.digest, location)?);
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| self.blob_read(blob, source))?;
        self.check_content(blob, &reader)?;
        Ok(bytes)
    }

    /// Verifies a layer: its size and digest, and the digest of its
    /// uncompressed content against `diff_id`, in one read.
    fn verify_layer(&self, layer: &Blob, diff_id: &str) -> Result<(), ArchiveError> {
        let kind = layer_kind(self.path, layer)?;
        let location = locate(self.path, &self.locations, layer)?;
        let mut raw = HashingReader::new(open_at(self.path, &layer.digest, location)?);
        let uncompressed = match kind {
            LayerKind::Tar => {
                io::copy(&mut raw, &mut io::sink())
                    .map_err(|source| self.blob_read(layer, source))?;
                // An uncompressed layer's diff ID is its own digest.
                Ok(raw.digest())
            }
            LayerKind::Gzip => {
                let mut gunzip = HashingReader::new(MultiGzDecoder::new(&mut raw));
                let result = io::copy(&mut gunzip, &mut io::sink()).map(|_| gunzip.digest());
                // Whatever the decoder left (or did not reach after an
                // error) still counts for the compressed digest.
                io::copy(&mut raw, &mut io::sink())
                    .map_err(|source| self.blob_read(layer, source))?;
                result
            }
        };
        // A corrupt blob is reported as such, even if it also fails to
        // decompress.
        self.check_content(layer, &raw)?;
        let actual = uncompressed.map_err(|source| ArchiveError::Decompress {
            path: self.path.to_owned(),
            digest: layer.digest.clone(),
            source,
        })?;
        if actual != diff_id {
            return Err(ArchiveError::DiffId {
                path: self.path.to_owned(),
                digest: layer.digest.clone(),
                actual,
                expected: diff_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks that what `reader` read has `blob`'s digest.
    fn check_content<R>(&self, blob: &Blob, reader: &HashingReader<R>) -> Result<(), ArchiveError> {
        let actual = reader.digest();
        if actual == blob.digest {
            Ok(())
        } else {
            Err(ArchiveError::BlobDigest {
                path: self.path.to_owned(),
                digest: blob.digest.clone(),
                actual,
            })
        }
    }

    /// A read error on `blob`.
    fn blob_read(&self, blob: &Blob, source: io::Error) -> ArchiveError {
        ArchiveError::BlobRead {
            path: self.path.to_owned(),
            digest: blob.digest.clone(),
            source,
        }
    }
}

/// `name` without leading `./` (as `tar -C dir .` writes entries).
fn strip_dot_slash(mut name: &[u8]) -> &[u8] {
    while let Some(rest) = name.strip_prefix(b"./") {
        name = rest;
    }
    name
}

/// Whether a descriptor's platform is linux/amd64; no platform matches.
fn platform_matches(platform: Option<&Platform>) -> bool {
    platform.is_none_or(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
}

/// The image reference annotated on an `index.json` entry.
fn reference_of(entry: &Descriptor) -> Option<String> {
    let annotations = entry.annotations().as_ref()?;
    REFERENCE_ANNOTATIONS
        .iter()
        .find_map(|key| annotations.get(*key))
        .filter(|r| !r.is_empty())
        .cloned()
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    /// The underlying reader.
    inner: R,
    /// SHA-256 of the bytes read so far.
    hasher: Sha256,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// `sha256:` and the hex SHA-256 of the bytes read so far.
    fn digest(&self) -> String {
        sha256_digest(self.hasher.clone())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl<R> std::fmt::Debug for HashingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingReader").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    use super::*;

    const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    const REFERENCE: &str = "localhost/liftoff/control:v1";

    /// `sha256:<hex>` of `bytes`, computed here rather than with the
    /// module's helpers.
    fn digest(bytes: &[u8]) -> String {
        let hash = Sha256::digest(bytes);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// A tar holding one file, `name`, with `content` (fixed metadata, so
    /// the bytes are the same on every run).
    fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, content).unwrap();
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// One layer of a test image.
    struct Layer {
        media_type: &'static str,
        /// The blob's bytes.
        blob: Vec<u8>,
        /// The config's diff ID for it.
        diff_id: String,
    }

    /// A gzip layer holding one file.
    fn gzip_layer(name: &str, content: &[u8]) -> Layer {
        let tar = layer_tar(name, content);
        Layer {
            media_type: GZIP,
            blob: gzip(&tar),
            diff_id: digest(&tar),
        }
    }

    /// The files of an OCI archive, in tar order; names are written
    /// exactly (a `./` prefix is kept).
    #[derive(Clone, Default)]
    struct Files(Vec<(String, Vec<u8>)>);

    impl Files {
        fn put(&mut self, name: &str, bytes: Vec<u8>) {
            self.0.retain(|(n, _)| n != name);
            self.0.push((name.to_owned(), bytes));
        }

        /// Adds a blob and returns its descriptor as JSON.
        fn blob(&mut self, media_type: &str, bytes: Vec<u8>) -> serde_json::Value {
            let d = digest(&bytes);
            let size = bytes.len();
            self.put(&blob_name(&d), bytes);
            json!({"mediaType": media_type, "digest": d, "size": size})
        }

        fn get(&self, name: &str) -> Vec<u8> {
            self.0.iter().find(|(n, _)| n == name).unwrap().1.clone()
        }

        fn remove(&mut self, name: &str) {
            let before = self.0.len();
            self.0.retain(|(n, _)| n != name);
            assert_eq!(self.0.len(), before - 1, "{name} not in the archive");
        }

        /// Writes the tar (with a `blobs/sha256` directory entry, as real
        /// archives have) and returns its path.
        fn write(&self, dir: &Path) -> PathBuf {
            let path = dir.join("image.tar");
            let mut builder = tar::Builder::new(File::create(&path).unwrap());
            let mut dir_header = tar::Header::new_ustar();
            dir_header.set_entry_type(tar::EntryType::Directory);
            dir_header.set_mode(0o755);
            dir_header.set_size(0);
            builder
                .append_data(&mut dir_header, "blobs/sha256", io::empty())
                .unwrap();
            for (name, bytes) in &self.0 {
                let mut header = tar::Header::new_ustar();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                // Set the name bytes directly: `set_path` drops `./`.
                let slot = &mut header.as_old_mut().name;
                slot[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, bytes.as_slice()).unwrap();
            }
            builder.into_inner().unwrap().flush().unwrap();
            path
        }
    }

    fn blob_name(digest: &str) -> String {
        format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
    }

    /// A test image and the digests of its parts.
    struct Image {
        files: Files,
        manifest: String,
        config: String,
        layers: Vec<String>,
        diff_ids: Vec<String>,
    }

    fn config_json(diff_ids: &[String]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": ["/usr/bin/start"],
                "Cmd": ["--verbose"],
                "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
                "WorkingDir": "/home/ec2-user",
                "User": "1000:1000"
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap()
    }

    /// The manifest's JSON for `config` and `layers` descriptors.
    fn manifest_json(config: serde_json::Value, layers: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": layers
        }))
        .unwrap()
    }

    /// An image of `layers` whose config lists `diff_ids`, in an
    /// archive whose index.json has one entry with `annotations`.
    fn image_with(layers: Vec<Layer>, diff_ids: Vec<String>) -> Image {
        let mut files = Files::default();
        files.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
        let layer_digests: Vec<String> = layers.iter().map(|l| digest(&l.blob)).collect();
        let layer_descs: Vec<serde_json::Value> = layers
            .into_iter()
            .map(|l| files.blob(l.media_type, l.blob))
            .collect();
        let config = config_json(&diff_ids);
        let config_digest = digest(&config);
        let config_desc = files.blob(CONFIG, config);
        let manifest = manifest_json(config_desc, layer_descs);
        let manifest_digest = digest(&manifest);
        let mut manifest_desc = files.blob(MANIFEST, manifest);
        manifest_desc["annotations"] = json!({
            "io.containerd.image.name": REFERENCE,
            "org.opencontainers.image.ref.name": "v1"
        });
        let index = json!({"schemaVersion": 2, "manifests": [manifest_desc]});
        files.put("index.json", serde_json::to_vec(&index).unwrap());
        Image {
            files,
            manifest: manifest_digest,
            config: config_digest,
            layers: layer_digests,
            diff_ids,
        }
    }

    /// A one-layer image: a gzip layer holding `/etc/motd`.
    fn one_layer() -> Image {
        let layer = gzip_layer("etc/motd", b"welcome to the control container\n");
        let diff_ids = vec![layer.diff_id.clone()];
        image_with(vec![layer], diff_ids)
    }

    fn open(files: &Files) -> (tempfile::TempDir, Result<Archive, ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = files.write(dir.path());
        let result = Archive::open(&path);
        (dir, result)
    }

    /// Opens `files`, expecting an error, and checks that its message
    /// starts with the archive's path and contains `needles`.
    fn open_err(files: &Files, needles: &[&str]) -> ArchiveError {
        let (dir, result) = open(files);
        let err = result.expect_err("the archive should be refused");
        let message = err.to_string();
        let path = dir.path().join("image.tar");
        assert!(
            message.starts_with(&format!("{}: ", path.display())),
            "{message}"
        );
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        err
    }

    #[test]
    fn a_good_archive_opens_with_its_fields() {
        let image = one_layer();
        let (dir, result) = open(&image.files);
        let archive = result.unwrap();
        assert_eq!(archive.path, dir.path().join("image.tar"));
        assert_eq!(archive.reference.as_deref(), Some(REFERENCE));
        let manifest_size = image.files.get(&blob_name(&image.manifest)).len() as u64;
        assert_eq!(
            archive.manifest,
            Blob {
                media_type: MANIFEST.to_owned(),
                digest: image.manifest.clone(),
                size: manifest_size,
            }
        );
        assert_eq!(archive.config.digest, image.config);
        assert_eq!(archive.config.media_type, CONFIG);
        assert_eq!(archive.layers.len(), 1);
        assert_eq!(archive.layers[0].digest, image.layers[0]);
        assert_eq!(archive.layers[0].media_type, GZIP);
        assert_eq!(archive.diff_ids, image.diff_ids);
        // One layer: the chain ID is the diff ID.
        assert_eq!(archive.chain_ids(), image.diff_ids);
        assert_eq!(
            archive.process,
            ImageProcess {
                entrypoint: vec!["/usr/bin/start".to_owned()],
                cmd: vec!["--verbose".to_owned()],
                env: vec!["PATH=/usr/bin".to_owned(), "LANG=C.UTF-8".to_owned()],
                working_dir: Some("/home/ec2-user".to_owned()),
                user: Some("1000:1000".to_owned()),
            }
        );
    }

    #[test]
    fn blob_reader_returns_exactly_the_blob() {
        let image = one_layer();
        let (_dir, result) = open(&image.files);
        let archive = result.unwrap();
        for blob in [&archive.layers[0], &archive.config, &archive.manifest] {
            let mut bytes = Vec::new();
            archive
                .blob_reader(blob)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            assert_eq!(bytes, image.files.get(&blob_name(&blob.digest)));
            assert_eq!(digest(&bytes), blob.digest);
        }
    }

    #[test]
    fn blob_reader_refuses_unknown_and_malformed_blobs() {
        let (_dir, result) = open(&one_layer().files);
        let archive = result.unwrap();
        let absent = Blob {
            media_type: GZIP.to_owned(),
            digest: digest(b"not in the archive"),
            size: 18,
        };
        let err = archive.blob_reader(&absent).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::BlobMissing { digest, .. } if *digest == absent.digest),
            "{err:?}"
        );
        let traversal = Blob {
            digest: "sha256:../../../../etc/passwd".to_owned(),
            ..absent
        };
        let err = archive.blob_reader(&traversal).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::InvalidDigest { digest, .. } if *digest == traversal.digest),
            "{err:?}"
        );
    }

    #[test]
    fn a_corrupt_layer_is_refused_naming_it() {
        let mut image = one_layer();
        let name = blob_name(&image.layers[0]);
        let mut bytes = image.files.get(&name);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let corrupt = digest(&bytes);
        image.files.put(&name, bytes);
        let expected = format!(
            "blob {0}: content has digest {corrupt}, expected {0}",
            image.layers[0]
        );
        let err = open_err(&image.files, &[&expected]);
        assert!(
            matches!(&err, ArchiveError::BlobDigest { digest, actual, .. }
                if *digest == image.layers[0] && *actual == corrupt),
            "{err:?}"
        );
    }

    #[test]
    fn a_corrupt_config_is_refused_naming_it() {
        let mut image = one_layer();
        let name = blob_name(&image.config);
        let text = String::from_utf8(image.files.get(&name)).unwrap();
        // Same size, other content.
        let tampered = text.replace("--verbose", "--quietly");
        assert_ne!(text, tampered);
        image.files.put(&name, tampered.into_bytes());
        let err = open_err(
            &image.files,
            &[&format!("blob {}: content has digest", image.config)],
        );
        assert!(
            matches!(&err, ArchiveError::BlobDigest { digest, .. } if *digest == image.config),
            "{err:?}"
        );
    }

    #[test]
    fn a_truncated_blob_is_refused_with_both_sizes() {
        let mut image = one_layer();
        let name = blob_name(&image.layers[0]);
        let mut bytes = image.files.get(&name);
        let size = bytes.len() as u64;
        bytes.pop();
        image.files.put(&name, bytes);
        let expected = format!(
            "blob {}: size is {} bytes, expected {size}",
            image.layers[0],
            size - 1
        );
        let err = open_err(&image.files, &[&expected]);
        assert!(
            matches!(&err, ArchiveError::BlobSize { digest, actual, expected, .. }
                if *digest == image.layers[0] && *actual == size - 1 && *expected == size),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_blob_is_refused_naming_it() {
        let mut image = one_layer();
        image.files.remove(&blob_name(&image.layers[0]));
        let err = open_err(
            &image.files,
            &[&format!(
                "blob {}: missing from the archive",
                image.layers[0]
            )],
        );
        assert!(
            matches!(&err, ArchiveError::BlobMissing { digest, .. } if *digest == image.layers[0]),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_manifest_is_refused_naming_it() {
        let mut image = one_layer();
        image.files.remove(&blob_name(&image.manifest));
        let err = open_err(&image.files, &[&image.manifest]);
        assert!(
            matches!(&err, ArchiveError::BlobMissing { digest, .. } if *digest == image.manifest),
            "{err:?}"
        );
    }

    #[test]
    fn a_wrong_diff_id_is_refused_naming_both_digests() {
        let layer = gzip_layer("etc/motd", b"hello\n");
        let actual = layer.diff_id.clone();
        let wrong = digest(b"some other layer");
        let image = image_with(vec![layer], vec![wrong.clone()]);
        let expected = format!(
            "layer {}: uncompressed content has digest {actual}, expected diff_id {wrong}",
            image.layers[0]
        );
        let err = open_err(&image.files, &[&expected]);
        assert!(
            matches!(&err, ArchiveError::DiffId { digest, actual: a, expected: e, .. }
                if *digest == image.layers[0] && *a == actual && *e == wrong),
            "{err:?}"
        );
    }

    #[test]
    fn a_layer_that_is_not_gzip_is_refused_as_such() {
        // The blob is intact (its digest matches) but is not gzip.
        let tar = layer_tar("etc/motd", b"hi\n");
        let layer = Layer {
            media_type: GZIP,
            blob: tar.clone(),
            diff_id: digest(&tar),
        };
        let diff_ids = vec![layer.diff_id.clone()];
        let image = image_with(vec![layer], diff_ids);
        let err = open_err(
            &image.files,
            &[&format!("layer {}: cannot decompress", image.layers[0])],
        );
        assert!(matches!(err, ArchiveError::Decompress { .. }), "{err:?}");
    }

    #[test]
    fn layer_count_must_match_diff_ids() {
        let layer = gzip_layer("etc/motd", b"hello\n");
        let diff_ids = vec![layer.diff_id.clone(), layer.diff_id.clone()];
        let image = image_with(vec![layer], diff_ids);
        let err = open_err(
            &image.files,
            &["has 1 layers but its config has 2 diff_ids"],
        );
        assert!(
            matches!(
                err,
                ArchiveError::LayerCount {
                    layers: 1,
                    diff_ids: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn an_uncompressed_layer_is_accepted() {
        let tar = layer_tar("etc/motd", b"plain\n");
        let layer = Layer {
            media_type: TAR,
            blob: tar.clone(),
            diff_id: digest(&tar),
        };
        let image = image_with(vec![layer], vec![digest(&tar)]);
        let (_dir, result) = open(&image.files);
        let archive = result.unwrap();
        assert_eq!(archive.layers[0].media_type, TAR);
        assert_eq!(archive.diff_ids, vec![digest(&tar)]);
    }

    #[test]
    fn a_missing_oci_layout_is_not_an_oci_archive() {
        let mut image = one_layer();
        image.files.remove("oci-layout");
        let err = open_err(&image.files, &["not an OCI archive: no oci-layout"]);
        assert!(
            matches!(
                err,
                ArchiveError::NotOci {
                    file: "oci-layout",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_index_is_not_an_oci_archive() {
        let mut image = one_layer();
        image.files.remove("index.json");
        let err = open_err(&image.files, &["not an OCI archive: no index.json"]);
        assert!(
            matches!(
                err,
                ArchiveError::NotOci {
                    file: "index.json",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn another_layout_version_is_refused() {
        let mut image = one_layer();
        image
            .files
            .put("oci-layout", br#"{"imageLayoutVersion":"2.0.0"}"#.to_vec());
        let err = open_err(
            &image.files,
            &[r#"imageLayoutVersion "2.0.0", expected "1.0.0""#],
        );
        assert!(
            matches!(&err, ArchiveError::LayoutVersion { version, .. } if version == "2.0.0"),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_file_is_not_found_with_the_io_error_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.tar");
        let err = Archive::open(&path).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: not found", path.display()));
        let ArchiveError::NotFound { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        let source = std::error::Error::source(&err).unwrap();
        assert!(source.to_string().contains("No such file"), "{source}");
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.tar");
        std::fs::write(&path, vec![0x42; 1024]).unwrap();
        let err = Archive::open(&path).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Tar { path: p, .. } if *p == path),
            "{err:?}"
        );
    }

    /// Replaces index.json's entries with `entries`.
    fn set_index(files: &mut Files, entries: Vec<serde_json::Value>) {
        let index = json!({"schemaVersion": 2, "manifests": entries});
        files.put("index.json", serde_json::to_vec(&index).unwrap());
    }

    /// The descriptor of `image`'s manifest, with `platform` if any.
    fn manifest_desc(image: &Image, platform: Option<(&str, &str)>) -> serde_json::Value {
        let size = image.files.get(&blob_name(&image.manifest)).len();
        let mut desc = json!({"mediaType": MANIFEST, "digest": image.manifest, "size": size});
        if let Some((os, arch)) = platform {
            desc["platform"] = json!({"os": os, "architecture": arch});
        }
        desc
    }

    /// A second manifest (another config) for the image's layer, added to
    /// `image`'s files; returns its descriptor.
    fn second_manifest(image: &mut Image) -> serde_json::Value {
        let layer_name = blob_name(&image.layers[0]);
        let layer_size = image.files.get(&layer_name).len();
        let mut config: serde_json::Value =
            serde_json::from_slice(&config_json(&image.diff_ids)).unwrap();
        config["config"]["Cmd"] = json!(["--other"]);
        let config_desc = image
            .files
            .blob(CONFIG, serde_json::to_vec(&config).unwrap());
        let layer_desc = json!({"mediaType": GZIP, "digest": image.layers[0], "size": layer_size});
        let manifest = manifest_json(config_desc, vec![layer_desc]);
        image.files.blob(MANIFEST, manifest)
    }

    #[test]
    fn two_manifests_for_other_platforms_are_no_manifest() {
        let mut image = one_layer();
        let mut other = second_manifest(&mut image);
        other["platform"] = json!({"os": "linux", "architecture": "arm64"});
        let first = manifest_desc(&image, Some(("linux", "s390x")));
        set_index(&mut image.files, vec![first, other]);
        let err = open_err(&image.files, &["no image manifest for linux/amd64"]);
        assert!(matches!(err, ArchiveError::NoManifest { .. }), "{err:?}");
    }

    #[test]
    fn two_manifests_without_platform_are_ambiguous() {
        let mut image = one_layer();
        let other = second_manifest(&mut image);
        let other_digest = other["digest"].as_str().unwrap().to_owned();
        let first = manifest_desc(&image, None);
        set_index(&mut image.files, vec![first, other]);
        let err = open_err(
            &image.files,
            &[
                "2 image manifests for linux/amd64",
                &image.manifest,
                &other_digest,
            ],
        );
        assert!(
            matches!(&err, ArchiveError::ManyManifests { digests, .. }
                if *digests == vec![image.manifest.clone(), other_digest.clone()]),
            "{err:?}"
        );
    }

    #[test]
    fn the_amd64_manifest_is_chosen_among_platforms() {
        let mut image = one_layer();
        let mut other = second_manifest(&mut image);
        other["platform"] = json!({"os": "linux", "architecture": "arm64"});
        let amd64 = manifest_desc(&image, Some(("linux", "amd64")));
        set_index(&mut image.files, vec![other, amd64]);
        let (_dir, result) = open(&image.files);
        assert_eq!(result.unwrap().manifest.digest, image.manifest);
    }

    #[test]
    fn a_nested_index_is_followed_one_level() {
        let mut image = one_layer();
        let mut other = second_manifest(&mut image);
        other["platform"] = json!({"os": "linux", "architecture": "arm64"});
        let amd64 = manifest_desc(&image, Some(("linux", "amd64")));
        let nested = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [other, amd64]});
        let mut nested_desc = image
            .files
            .blob(INDEX, serde_json::to_vec(&nested).unwrap());
        nested_desc["annotations"] = json!({"org.opencontainers.image.ref.name": "v2"});
        set_index(&mut image.files, vec![nested_desc]);
        let (_dir, result) = open(&image.files);
        let archive = result.unwrap();
        assert_eq!(archive.manifest.digest, image.manifest);
        // The fallback annotation, from the index.json entry.
        assert_eq!(archive.reference.as_deref(), Some("v2"));
    }

    #[test]
    fn a_corrupt_nested_index_is_refused_naming_it() {
        let mut image = one_layer();
        let amd64 = manifest_desc(&image, Some(("linux", "amd64")));
        let nested = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [amd64]});
        let bytes = serde_json::to_vec(&nested).unwrap();
        let nested_desc = image.files.blob(INDEX, bytes.clone());
        let nested_digest = nested_desc["digest"].as_str().unwrap().to_owned();
        let mut tampered = bytes;
        tampered[0] = b' ';
        image.files.put(&blob_name(&nested_digest), tampered);
        set_index(&mut image.files, vec![nested_desc]);
        let err = open_err(
            &image.files,
            &[&format!("blob {nested_digest}: content has digest")],
        );
        assert!(
            matches!(&err, ArchiveError::BlobDigest { digest, .. } if *digest == nested_digest),
            "{err:?}"
        );
    }

    #[test]
    fn a_zstd_layer_is_refused_naming_the_media_type() {
        let layer = Layer {
            media_type: ZSTD,
            blob: b"(zstd bytes)".to_vec(),
            diff_id: digest(b"whatever"),
        };
        let diff_ids = vec![layer.diff_id.clone()];
        let image = image_with(vec![layer], diff_ids);
        let expected = format!(
            "layer {}: media type application/vnd.oci.image.layer.v1.tar+zstd is not supported",
            image.layers[0]
        );
        let err = open_err(&image.files, &[&expected]);
        assert!(
            matches!(&err, ArchiveError::MediaType { what: "layer", media_type, .. }
                if media_type == ZSTD),
            "{err:?}"
        );
    }

    #[test]
    fn a_foreign_layer_is_refused() {
        let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        let mut layer = gzip_layer("etc/motd", b"hello\n");
        layer.media_type = foreign;
        let diff_ids = vec![layer.diff_id.clone()];
        let image = image_with(vec![layer], diff_ids);
        let err = open_err(&image.files, &[foreign]);
        assert!(
            matches!(&err, ArchiveError::MediaType { media_type, .. } if media_type == foreign),
            "{err:?}"
        );
    }

    #[test]
    fn a_sha512_digest_is_refused_before_any_lookup() {
        let mut image = one_layer();
        let manifest_name = blob_name(&image.manifest);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&image.files.get(&manifest_name)).unwrap();
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        manifest["layers"][0]["digest"] = json!(sha512);
        image.files.remove(&manifest_name);
        let desc = image
            .files
            .blob(MANIFEST, serde_json::to_vec(&manifest).unwrap());
        set_index(&mut image.files, vec![desc]);
        let err = open_err(&image.files, &[&sha512, "is not a sha256 digest"]);
        assert!(
            matches!(&err, ArchiveError::InvalidDigest { digest, .. } if *digest == sha512),
            "{err:?}"
        );
    }

    #[test]
    fn an_index_with_a_malformed_digest_does_not_parse() {
        let mut image = one_layer();
        let mut desc = manifest_desc(&image, None);
        desc["digest"] = json!("sha256:../../../etc/passwd");
        set_index(&mut image.files, vec![desc]);
        let err = open_err(&image.files, &["index.json: does not parse"]);
        assert!(matches!(err, ArchiveError::Json { .. }), "{err:?}");
    }

    #[test]
    fn dot_slash_prefixed_entries_work() {
        let image = one_layer();
        let files = Files(
            image
                .files
                .0
                .iter()
                .map(|(name, bytes)| (format!("./{name}"), bytes.clone()))
                .collect(),
        );
        let (_dir, result) = open(&files);
        let archive = result.unwrap();
        assert_eq!(archive.manifest.digest, image.manifest);
        let mut bytes = Vec::new();
        archive
            .blob_reader(&archive.layers[0])
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(digest(&bytes), image.layers[0]);
    }

    #[test]
    fn three_layers_have_the_chain_ids_computed_here() {
        let layers = vec![
            gzip_layer("etc/one", b"1\n"),
            gzip_layer("etc/two", b"2\n"),
            gzip_layer("etc/three", b"3\n"),
        ];
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let image = image_with(layers, diff_ids.clone());
        let (_dir, result) = open(&image.files);
        let archive = result.unwrap();
        assert_eq!(archive.layers.len(), 3);
        assert_eq!(archive.diff_ids, diff_ids);
        let chain1 = digest(format!("{} {}", diff_ids[0], diff_ids[1]).as_bytes());
        let chain2 = digest(format!("{chain1} {}", diff_ids[2]).as_bytes());
        assert_eq!(
            archive.chain_ids(),
            vec![diff_ids[0].clone(), chain1, chain2]
        );
    }

    #[test]
    fn chain_ids_match_sha256sum() {
        // Expected values from `printf '%s %s' "$parent" "$diff_id" | sha256sum`.
        let diff_ids: Vec<String> = ["11", "22", "33"]
            .iter()
            .map(|b| format!("sha256:{}", b.repeat(32)))
            .collect();
        assert_eq!(
            chain_ids(&diff_ids),
            vec![
                diff_ids[0].clone(),
                "sha256:9932074217c35353d2e03a3f5a86549f7c67bfeb0ba53e23d69f4d4c8f7958f5"
                    .to_owned(),
                "sha256:50127c0d6b338be78246434b4bce23ecf75e505158ea0bbd15effeb162fbf3ec"
                    .to_owned(),
            ]
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn non_regular_entries_under_blobs_are_ignored() {
        // A symlink named like the layer stands in for it: it is not a
        // blob, so the layer is missing.
        let image = one_layer();
        let dir = tempfile::tempdir().unwrap();
        let mut files = image.files.clone();
        let layer_name = blob_name(&image.layers[0]);
        files.remove(&layer_name);
        let path = files.write(dir.path());
        // Append a symlink entry by rewriting the tar with it at the end.
        let mut builder = tar::Builder::new(Vec::new());
        let mut original = tar::Archive::new(File::open(&path).unwrap());
        for entry in original.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            builder.append(&header, data.as_slice()).unwrap();
        }
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, &layer_name, "/etc/passwd")
            .unwrap();
        std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
        let err = Archive::open(&path).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::BlobMissing { digest, .. } if *digest == image.layers[0]),
            "{err:?}"
        );
    }

    #[test]
    fn a_config_for_another_platform_is_refused() {
        let mut image = one_layer();
        let config_name = blob_name(&image.config);
        let mut config: serde_json::Value =
            serde_json::from_slice(&image.files.get(&config_name)).unwrap();
        config["architecture"] = json!("arm64");
        let config_desc = image
            .files
            .blob(CONFIG, serde_json::to_vec(&config).unwrap());
        let config_digest = config_desc["digest"].as_str().unwrap().to_owned();
        let layer_size = image.files.get(&blob_name(&image.layers[0])).len();
        let layer_desc = json!({"mediaType": GZIP, "digest": image.layers[0], "size": layer_size});
        let manifest = image
            .files
            .blob(MANIFEST, manifest_json(config_desc, vec![layer_desc]));
        set_index(&mut image.files, vec![manifest]);
        let err = open_err(
            &image.files,
            &[&format!("config {config_digest}: image is for linux/arm64")],
        );
        assert!(matches!(err, ArchiveError::Platform { .. }), "{err:?}");
    }
}
