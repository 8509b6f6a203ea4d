//! Compressed modules, decompressed in user space with pure-Rust decoders
//! (liftoff is linked statically; no liblzma or libzstd).
//!
//! kbuild compresses with `xz --check=crc32 --lzma2=dict=1MiB` or
//! `zstd -T0` (scripts/Makefile.modinst). The kernel decompresses by
//! itself only when `finit_module(2)` gets `MODULE_INIT_COMPRESSED_FILE`
//! and the kernel has `CONFIG_MODULE_DECOMPRESS` (commit b1ae6dc41eaa,
//! "module: add in-kernel support for decompressing"). Debian 12's 6.1
//! builds with `CONFIG_MODULE_COMPRESS_NONE=y` and so without it, and a
//! compressed tree must load on any kernel: liftoff reads the file,
//! decompresses it here and hands the image to `init_module(2)`. The
//! module signature sits inside the compressed payload (kbuild signs
//! before it compresses), so signature checks still apply.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// How a module file is compressed, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.ko`: loaded with `finit_module(2)` straight from the file.
    None,
    /// `.ko.xz`.
    Xz,
    /// `.ko.zst`.
    Zstd,
    /// `.ko.gz`: recognised so that the error names it, not decoded.
    Gzip,
}

impl Compression {
    /// The suffixes of module files, longest match first.
    const SUFFIXES: [(&'static str, Self); 4] = [
        (".ko.xz", Self::Xz),
        (".ko.zst", Self::Zstd),
        (".ko.gz", Self::Gzip),
        (".ko", Self::None),
    ];

    /// Split a module file name into its stem and compression:
    /// `dm-verity.ko.xz` → (`dm-verity`, [`Compression::Xz`]); `None` for
    /// anything that is not a module file.
    #[must_use]
    pub fn split_file_name(file_name: &str) -> Option<(&str, Self)> {
        Self::SUFFIXES.iter().find_map(|(suffix, compression)| {
            file_name
                .strip_suffix(suffix)
                .filter(|stem| !stem.is_empty())
                .map(|stem| (stem, *compression))
        })
    }

    /// The file-name suffix, for the index file and messages.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Self::None => ".ko",
            Self::Xz => ".ko.xz",
            Self::Zstd => ".ko.zst",
            Self::Gzip => ".ko.gz",
        }
    }
}

/// Why a compressed module could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// The xz stream is corrupt or truncated.
    #[error("cannot decompress {} (xz)", path.display())]
    Xz {
        /// The module file.
        path: PathBuf,
        #[source]
        source: lzma_rs::error::Error,
    },
    /// A zstd frame header is corrupt.
    #[error("cannot decompress {} (zstd frame header)", path.display())]
    ZstdFrame {
        /// The module file.
        path: PathBuf,
        #[source]
        source: ruzstd::decoding::errors::FrameDecoderError,
    },
    /// A zstd frame's data is corrupt or truncated.
    #[error("cannot decompress {} (zstd data)", path.display())]
    ZstdData {
        /// The module file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// gzip-compressed modules are not supported.
    #[error("{} is gzip-compressed; liftoff reads xz, zstd or uncompressed modules", path.display())]
    Gzip {
        /// The module file.
        path: PathBuf,
    },
}

/// The uncompressed image of `bytes`, read from `path` (named in errors).
/// [`Compression::None`] returns the bytes as they are.
pub fn decompress(
    path: &Path,
    compression: Compression,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, CompressError> {
    match compression {
        Compression::None => Ok(bytes),
        Compression::Xz => {
            // Modules are a few MiB at most; 4x is a fair first guess.
            let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
            lzma_rs::xz_decompress(&mut bytes.as_slice(), &mut out).map_err(|source| {
                CompressError::Xz {
                    path: path.to_owned(),
                    source,
                }
            })?;
            Ok(out)
        }
        Compression::Zstd => {
            let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
            let mut input = bytes.as_slice();
            // `zstd` may write several frames; decode until the input ends.
            while !input.is_empty() {
                let mut frame =
                    ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|source| {
                        CompressError::ZstdFrame {
                            path: path.to_owned(),
                            source,
                        }
                    })?;
                frame
                    .read_to_end(&mut out)
                    .map_err(|source| CompressError::ZstdData {
                        path: path.to_owned(),
                        source,
                    })?;
            }
            Ok(out)
        }
        Compression::Gzip => Err(CompressError::Gzip {
            path: path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for (name, want) in [
            ("dm-verity.ko", Some(("dm-verity", Compression::None))),
            ("ext4.ko.xz", Some(("ext4", Compression::Xz))),
            ("erofs.ko.zst", Some(("erofs", Compression::Zstd))),
            ("overlay.ko.gz", Some(("overlay", Compression::Gzip))),
            (".ko", None),
            ("modules.order", None),
            ("ext4.ko.bak", None),
            ("README", None),
        ] {
            assert_eq!(Compression::split_file_name(name), want, "{name}");
        }
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn round_trips() {
        let plain = sample();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut plain.as_slice(), &mut xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            plain.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let mut two_frames = zst.clone();
        two_frames.extend_from_slice(&zst);
        let doubled: Vec<u8> = plain.iter().chain(plain.iter()).copied().collect();
        let path = Path::new("m.ko");
        for (name, compression, bytes, want) in [
            ("none", Compression::None, plain.clone(), &plain),
            ("xz", Compression::Xz, xz, &plain),
            ("zstd", Compression::Zstd, zst, &plain),
            ("zstd, two frames", Compression::Zstd, two_frames, &doubled),
        ] {
            let got = decompress(path, compression, bytes).unwrap();
            assert!(got == *want, "{name}");
        }
    }

    #[test]
    fn corrupt_input_names_the_file() {
        let path = Path::new("/lib/modules/v/kernel/x.ko.xz");
        for (compression, want) in [
            (
                Compression::Xz,
                "cannot decompress /lib/modules/v/kernel/x.ko.xz (xz)",
            ),
            (
                Compression::Zstd,
                "cannot decompress /lib/modules/v/kernel/x.ko.xz (zstd frame header)",
            ),
            (
                Compression::Gzip,
                "/lib/modules/v/kernel/x.ko.xz is gzip-compressed; liftoff reads xz, zstd or uncompressed modules",
            ),
        ] {
            let err =
                decompress(path, compression, b"garbage, not compressed".to_vec()).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }
}
