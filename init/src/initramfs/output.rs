//! Write an [`Initramfs`] to a file, compressed or not, atomically.
//!
//! gzip is the default: every distribution kernel can unpack it
//! (`CONFIG_RD_GZIP`, set in Debian's), and flate2's pure-Rust backend
//! (miniz_oxide) keeps C out of the static binary. The gzip header carries
//! no file name and mtime 0, so the same archive always compresses to the
//! same bytes. `none` writes the bare cpio stream, which the kernel also
//! accepts and which boots faster under TCG, where decompression is slow.
//!
//! The file is written beside `out` under a temporary name and renamed over
//! it, so a failed build never leaves a truncated image behind.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::archive::{ArchiveError, Initramfs};

/// How the archive is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// gzip at its best ratio (level 9).
    #[default]
    Gzip,
    /// The bare newc cpio stream.
    None,
}

impl Compression {
    /// The name used on the command line and in messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::None => "none",
        }
    }

    /// The compression called `name` (`gzip` or `none`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Gzip, Self::None]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sizes of a written archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The cpio stream, before compression.
    pub archive: u64,
    /// What was stored (equal to `archive` without compression).
    pub stored: u64,
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Initramfs {
    /// Write the archive to `out`, uncompressed and atomically.
    pub fn write_to(&self, out: &Path) -> Result<(), ArchiveError> {
        self.write_compressed_to(out, Compression::None).map(|_| ())
    }

    /// The archive as bytes, compressed as asked.
    pub fn to_compressed_bytes(&self, compression: Compression) -> Result<Vec<u8>, ArchiveError> {
        let (bytes, _) = self.encode(Vec::new(), compression)?;
        Ok(bytes)
    }

    /// Write the archive to `out`, compressed as asked, atomically: into a
    /// temporary file next to it, then renamed over it.
    pub fn write_compressed_to(
        &self,
        out: &Path,
        compression: Compression,
    ) -> Result<Written, ArchiveError> {
        let output_error = |action| {
            move |source| ArchiveError::Output {
                action,
                path: out.to_path_buf(),
                source,
            }
        };
        let tmp = temporary_path(out);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(output_error("create a temporary file for"))?;
        let result =
            self.encode(BufWriter::new(file), compression)
                .and_then(|(writer, written)| {
                    let file = writer
                        .into_inner()
                        .map_err(|err| output_error("write")(err.into_error()))?;
                    file.sync_all().map_err(output_error("sync"))?;
                    fs::rename(&tmp, out).map_err(output_error("rename into place"))?;
                    Ok(written)
                });
        if result.is_err() {
            // Best effort: the error that matters is the one returned.
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// The archive through `compression` into `out`; returns `out` and the
    /// sizes.
    fn encode<W: Write>(
        &self,
        out: W,
        compression: Compression,
    ) -> Result<(W, Written), ArchiveError> {
        let mut stored = Counting {
            inner: out,
            count: 0,
        };
        let archive = match compression {
            Compression::None => {
                self.write(&mut stored)?;
                stored.count
            }
            Compression::Gzip => {
                let encoder =
                    flate2::write::GzEncoder::new(&mut stored, flate2::Compression::best());
                let mut plain = Counting {
                    inner: encoder,
                    count: 0,
                };
                self.write(&mut plain)?;
                plain
                    .inner
                    .finish()
                    .map_err(|source| ArchiveError::Compress {
                        compression: "gzip",
                        source,
                    })?;
                plain.count
            }
        };
        let written = Written {
            archive,
            stored: stored.count,
        };
        Ok((stored.inner, written))
    }
}

/// `dir/.name.tmp-<pid>`: hidden, beside `out` (so the rename stays on one
/// filesystem), and unique among concurrent builders.
fn temporary_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "initramfs".into(), |n| n.to_string_lossy());
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Reads a whole archive file back, gunzipping it if it starts with gzip's
/// magic: for tests and for the summary of `liftoff initramfs`.
pub fn read_archive(path: &Path) -> Result<Vec<u8>, ArchiveError> {
    let read_error = |source| ArchiveError::ReadSource {
        path: path.to_owned(),
        source,
    };
    let bytes = fs::read(path).map_err(read_error)?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut plain = Vec::new();
    io::copy(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain).map_err(read_error)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sample() -> Initramfs {
        Initramfs::new()
            .file("/etc/a", 0o644, "a\n")
            .file("/init", 0o755, vec![7u8; 100_000])
    }

    #[test]
    fn compression_names_round_trip() {
        for (name, want) in [
            ("gzip", Some(Compression::Gzip)),
            ("none", Some(Compression::None)),
            ("xz", None),
            ("", None),
        ] {
            assert_eq!(Compression::from_name(name), want, "{name}");
            if let Some(c) = want {
                assert_eq!(c.to_string(), name);
            }
        }
    }

    #[test]
    fn gzip_holds_the_same_archive_and_is_deterministic() {
        let plain = sample().to_bytes().unwrap();
        let gz = sample().to_compressed_bytes(Compression::Gzip).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        // mtime (bytes 4..8) is zero: nothing of the build time leaks in.
        assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
        assert!(
            gz.len() < plain.len() / 10,
            "{} vs {}",
            gz.len(),
            plain.len()
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);
        assert_eq!(gz, sample().to_compressed_bytes(Compression::Gzip).unwrap());
        assert_eq!(
            plain,
            sample().to_compressed_bytes(Compression::None).unwrap()
        );
    }

    #[test]
    fn files_are_written_atomically_with_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let plain = sample().to_bytes().unwrap();
        for compression in [Compression::Gzip, Compression::None] {
            let out = dir.path().join(format!("initrd.{compression}"));
            let written = sample().write_compressed_to(&out, compression).unwrap();
            let stored = fs::read(&out).unwrap();
            assert_eq!(written.archive, plain.len() as u64, "{compression}");
            assert_eq!(written.stored, stored.len() as u64, "{compression}");
            assert_eq!(read_archive(&out).unwrap(), plain, "{compression}");
        }
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("initrd");
        let err = Initramfs::new()
            .file_from("/a", 0o644, "/nonexistent/liftoff-test")
            .write_compressed_to(&out, Compression::Gzip)
            .unwrap_err();
        assert!(
            matches!(&err, ArchiveError::ReadSource { path, .. } if path.ends_with("liftoff-test")),
            "{err:?}"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_output_folder_is_named() {
        let err = sample()
            .write_compressed_to(Path::new("/nonexistent/dir/initrd"), Compression::Gzip)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dir/initrd"), "{err}");
    }
}
