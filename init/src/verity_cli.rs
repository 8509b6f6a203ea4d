//! `liftoff verity`: a drop-in for cryptsetup's `veritysetup` 2.6 in image
//! builds and by hand: the same actions, positional arguments, option names
//! (`--option=value` and `--option value`), output and exit codes, with a
//! parallel hash tree underneath (the `verity` crate).
//!
//! Exit codes, as veritysetup's: 0 success; 1 wrong or missing parameters,
//! a refused value, an I/O failure, or a wrong root hash; 2 a data or hash
//! block that does not verify (veritysetup's "no permission"), or no
//! permission for device-mapper; 3 out of memory; 4 no such device; 5 the
//! device is busy or exists. Usage errors exit 1 too, like veritysetup (and
//! unlike the other liftoff commands, which use 2).
//!
//! Not supported: `status`, `--root-hash-signature`, `--deferred`, and
//! loop devices: `open` needs block devices (veritysetup would attach
//! regular files to loop devices itself).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use verity::dump::{FecLines, Header};
use verity::fec::{self, FecArea, FecParams};
use verity::format::{self, FecOptions, FormatOptions};
use verity::geometry::{Geometry, GeometryParams};
use verity::superblock::Uuid;
use verity::table::{CorruptionMode, TableFec, TableOptions, VerityTable};
use verity::verify::{self, Corruption, ExplicitParams, VerifyError, VerifyOptions};
use verity::{Algorithm, HashType};

/// The usage text of `liftoff verity`.
pub const USAGE: &str = "\
usage: liftoff verity [options] <action> <action-specific>

A veritysetup-compatible dm-verity tool: same actions, options, output and
on-disk format (byte for byte), with the hash tree built on every core.

  format <data_device> <hash_device>
  verify <data_device> <hash_device> <root_hash>
  open <data_device> <name> <hash_device> <root_hash>
  close <name>
  dump <hash_device>

Options (veritysetup's defaults):
  --hash, -h NAME          sha1, sha256 (default) or sha512
  --format N               1 (default, normal) or 0 (original Chrome OS)
  --data-block-size BYTES  4096; a power of two, 512 to 524288
  --hash-block-size BYTES  4096; same range
  --data-blocks N          default: the whole blocks of the data device
  --hash-offset BYTES      where the hash area starts (a multiple of the
                           hash block size)
  --salt, -s HEX           default 32 random bytes; - for none
  --uuid UUID              default random
  --no-superblock          no superblock; give the parameters on every call
  --fec-device PATH        write (format) or use (open) FEC parity
  --fec-offset BYTES       where the parity starts
  --fec-roots N            parity bytes per codeword, 2 (default) to 24
  --root-hash-file PATH    read (open, verify) or write (format) the root hash
  --ignore-corruption, --restart-on-corruption, --panic-on-corruption,
  --ignore-zero-blocks, --check-at-most-once, --use-tasklets   (open)
  --threads N              hashing threads (default: one per core)

Exit: 0 ok, 1 bad parameters or wrong root hash, 2 a block does not verify,
3 out of memory, 4 no such device, 5 device busy.
";

const EXIT_FAILURE: i32 = 1;
const EXIT_CORRUPT: i32 = 2;

/// Everything on the command line.
#[derive(Debug, Default)]
struct Args {
    positionals: Vec<OsString>,
    hash: Option<String>,
    hash_type: Option<u32>,
    data_block_size: Option<u32>,
    hash_block_size: Option<u32>,
    data_blocks: Option<u64>,
    hash_offset: u64,
    salt: Option<String>,
    uuid: Option<String>,
    no_superblock: bool,
    fec_device: Option<PathBuf>,
    fec_offset: u64,
    fec_roots: Option<u32>,
    root_hash_file: Option<PathBuf>,
    ignore_corruption: bool,
    restart_on_corruption: bool,
    panic_on_corruption: bool,
    ignore_zero_blocks: bool,
    check_at_most_once: bool,
    use_tasklets: bool,
    threads: Option<usize>,
}

/// A failed action: the message lines and the exit code.
struct Failure {
    code: i32,
    lines: Vec<String>,
}

impl Failure {
    fn new(code: i32, line: impl Into<String>) -> Self {
        Failure {
            code,
            lines: vec![line.into()],
        }
    }

    /// An error with its chain of causes, exit code `code`.
    fn chain(code: i32, e: &dyn std::error::Error) -> Self {
        let mut line = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let _ = write!(line, ": {s}");
            source = s.source();
        }
        Failure::new(code, line)
    }
}

fn number<T: std::str::FromStr>(parser: &mut lexopt::Parser, name: &str) -> Result<T, String> {
    let value = parser.value().map_err(|e| e.to_string())?;
    let text = value.to_string_lossy();
    text.parse()
        .map_err(|_| format!("invalid value {text:?} for --{name}: expected a number"))
}

fn string(parser: &mut lexopt::Parser, name: &str) -> Result<String, String> {
    parser
        .value()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|v| format!("value {v:?} for --{name} is not UTF-8"))
}

impl Args {
    fn parse(mut parser: lexopt::Parser) -> Result<Option<Args>, String> {
        use lexopt::prelude::*;
        let mut a = Args::default();
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            match arg {
                Long("help") => return Ok(None),
                Long("hash") | Short('h') => a.hash = Some(string(&mut parser, "hash")?),
                Long("format") => a.hash_type = Some(number(&mut parser, "format")?),
                Long("data-block-size") => {
                    a.data_block_size = Some(number(&mut parser, "data-block-size")?)
                }
                Long("hash-block-size") => {
                    a.hash_block_size = Some(number(&mut parser, "hash-block-size")?)
                }
                Long("data-blocks") => a.data_blocks = Some(number(&mut parser, "data-blocks")?),
                Long("hash-offset") => a.hash_offset = number(&mut parser, "hash-offset")?,
                Long("salt") | Short('s') => a.salt = Some(string(&mut parser, "salt")?),
                Long("uuid") => a.uuid = Some(string(&mut parser, "uuid")?),
                Long("no-superblock") => a.no_superblock = true,
                Long("fec-device") => {
                    a.fec_device = Some(parser.value().map_err(|e| e.to_string())?.into())
                }
                Long("fec-offset") => a.fec_offset = number(&mut parser, "fec-offset")?,
                Long("fec-roots") => a.fec_roots = Some(number(&mut parser, "fec-roots")?),
                Long("root-hash-file") => {
                    a.root_hash_file = Some(parser.value().map_err(|e| e.to_string())?.into())
                }
                Long("ignore-corruption") => a.ignore_corruption = true,
                Long("restart-on-corruption") => a.restart_on_corruption = true,
                Long("panic-on-corruption") => a.panic_on_corruption = true,
                Long("ignore-zero-blocks") => a.ignore_zero_blocks = true,
                Long("check-at-most-once") => a.check_at_most_once = true,
                Long("use-tasklets") => a.use_tasklets = true,
                Long("threads") => a.threads = Some(number(&mut parser, "threads")?),
                // Accepted for compatibility; liftoff prints the same either way.
                Long("verbose") | Short('v') | Long("debug") => {}
                Value(v) => a.positionals.push(v),
                other => return Err(other.unexpected().to_string()),
            }
        }
        let modes = [
            a.ignore_corruption,
            a.restart_on_corruption,
            a.panic_on_corruption,
        ];
        if modes.iter().filter(|m| **m).count() > 1 {
            return Err(
                "--ignore-corruption, --restart-on-corruption and --panic-on-corruption cannot be used together"
                    .into(),
            );
        }
        Ok(Some(a))
    }

    fn algorithm(&self) -> Result<Algorithm, Failure> {
        match &self.hash {
            None => Ok(Algorithm::Sha256),
            Some(name) => name.parse().map_err(|e| Failure::chain(EXIT_FAILURE, &e)),
        }
    }

    fn hash_type(&self) -> Result<HashType, Failure> {
        HashType::from_number(self.hash_type.unwrap_or(1))
            .map_err(|e| Failure::chain(EXIT_FAILURE, &e))
    }

    fn salt(&self) -> Result<Option<Vec<u8>>, Failure> {
        match self.salt.as_deref() {
            None => Ok(None),
            Some("-") => Ok(Some(Vec::new())),
            Some(hex) => parse_hex(hex).map(Some).ok_or_else(|| {
                Failure::new(
                    EXIT_FAILURE,
                    format!("invalid salt {hex:?}: expected hex digits or -"),
                )
            }),
        }
    }

    /// The parameters `--no-superblock` uses.
    fn explicit(&self) -> Result<ExplicitParams, Failure> {
        Ok(ExplicitParams {
            hash_type: self.hash_type()?,
            algorithm: self.algorithm()?,
            data_block_size: self.data_block_size.unwrap_or(format::DEFAULT_BLOCK_SIZE),
            hash_block_size: self.hash_block_size.unwrap_or(format::DEFAULT_BLOCK_SIZE),
            data_blocks: self.data_blocks,
            salt: self.salt()?.unwrap_or_default(),
        })
    }

    /// The root hash from the positional at `index` or `--root-hash-file`.
    fn root_hash(&self, index: usize) -> Result<Vec<u8>, Failure> {
        let text = match (&self.root_hash_file, self.positionals.get(index)) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| {
                    Failure::new(
                        EXIT_FAILURE,
                        format!("cannot read root hash file {}: {e}", path.display()),
                    )
                })?
                .trim()
                .to_owned(),
            (None, Some(text)) => text.to_string_lossy().into_owned(),
            (None, None) => {
                return Err(Failure::new(
                    EXIT_FAILURE,
                    "command requires <root_hash> or --root-hash-file option as argument",
                ));
            }
        };
        parse_hex(&text)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Failure::new(EXIT_FAILURE, format!("invalid root hash string {text:?}")))
    }
}

/// Bytes from hex digits (either case), `None` for odd lengths or non-hex.
fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Runs `liftoff verity …` (the arguments after `verity`); returns the
/// exit status.
pub fn run(parser: lexopt::Parser, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let args = match Args::parse(parser) {
        Ok(Some(args)) => args,
        Ok(None) => {
            let _ = out.write_all(USAGE.as_bytes());
            return 0;
        }
        Err(message) => return usage_error(err, &message),
    };
    let Some(action) = args
        .positionals
        .first()
        .map(|a| a.to_string_lossy().into_owned())
    else {
        return usage_error(err, "argument <action> missing");
    };
    let (needed, shape) = match action.as_str() {
        "format" => (2, "<data_device> <hash_device>"),
        "verify" => (2, "<data_device> <hash_device> <root_hash>"),
        "open" | "create" => (3, "<data_device> <name> <hash_device> <root_hash>"),
        "close" | "remove" => (1, "<name>"),
        "dump" => (1, "<hash_device>"),
        _ => return usage_error(err, &format!("unknown action {action:?}")),
    };
    let given = args.positionals.len() - 1;
    let most = needed + usize::from(matches!(action.as_str(), "verify" | "open" | "create"));
    if given < needed {
        return usage_error(err, &format!("{action}: requires {shape} as arguments"));
    }
    if given > most {
        return usage_error(
            err,
            &format!("{action}: too many arguments (expected {shape})"),
        );
    }
    let path = |i: usize| PathBuf::from(&args.positionals[i]);
    let result = match action.as_str() {
        "format" => format_action(&args, &path(1), &path(2), out, err),
        "verify" => verify_action(&args, &path(1), &path(2)),
        // veritysetup's old `create <name> <data> <hash> <root>` order.
        "create" => open_action(&args, &path(2), &args.positionals[1], &path(3), 4),
        "open" => open_action(&args, &path(1), &args.positionals[2], &path(3), 4),
        "close" | "remove" => close_action(&args.positionals[1]),
        _ => dump_action(&args, &path(1), out),
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            for line in failure.lines {
                let _ = writeln!(err, "liftoff verity: {line}");
            }
            failure.code
        }
    }
}

fn usage_error(err: &mut impl Write, message: &str) -> i32 {
    let _ = writeln!(err, "liftoff verity: {message}\n\n{USAGE}");
    EXIT_FAILURE
}

fn format_action(
    args: &Args,
    data: &Path,
    hash: &Path,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    let uuid = match &args.uuid {
        None => None,
        Some(text) => Some(
            text.parse::<Uuid>()
                .map_err(|e| Failure::chain(EXIT_FAILURE, &e))?,
        ),
    };
    let roots = fec_roots(args)?;
    let opts = FormatOptions {
        hash_type: args.hash_type()?,
        algorithm: args.algorithm()?,
        data_block_size: args.data_block_size.unwrap_or(format::DEFAULT_BLOCK_SIZE),
        hash_block_size: args.hash_block_size.unwrap_or(format::DEFAULT_BLOCK_SIZE),
        data_blocks: args.data_blocks,
        hash_offset: args.hash_offset,
        salt: args.salt()?,
        uuid,
        superblock: !args.no_superblock,
        fec: args.fec_device.clone().map(|device| FecOptions {
            device,
            offset: args.fec_offset,
            roots,
        }),
        threads: args.threads,
        read_mode: Default::default(),
    };
    let report =
        format::format(data, hash, &opts).map_err(|e| Failure::chain(exit_code(&e), &e))?;
    let header = Header {
        hash_path: hash,
        // veritysetup prints the UUID and the algorithm as they were given.
        uuid: report
            .uuid
            .map(|u| args.uuid.clone().unwrap_or_else(|| u.to_string())),
        hash_type: opts.hash_type,
        geometry: &report.geometry,
        algorithm: args
            .hash
            .clone()
            .unwrap_or_else(|| opts.algorithm.to_string()),
        fec: report.fec.map(|l| FecLines {
            roots,
            rs_blocks: l.parity_bytes / u64::from(opts.data_block_size),
            on_hash_device: same_file(args.fec_device.as_deref(), Some(hash)),
            offset: args.fec_offset,
        }),
        salt: &report.salt,
        root_hash: Some(&report.root_hash),
    };
    let _ = out.write_all(header.render().as_bytes());
    if report.geometry.data_block_size() > verity::sys::page_size() {
        let _ = out.flush();
        let _ = writeln!(
            err,
            "WARNING: Kernel cannot activate device if data block size exceeds page size ({}).",
            verity::sys::page_size()
        );
    }
    if let Some(path) = &args.root_hash_file {
        std::fs::write(path, verify::hex(&report.root_hash)).map_err(|e| {
            Failure::new(
                EXIT_FAILURE,
                format!("cannot write root hash file {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

fn fec_roots(args: &Args) -> Result<u8, Failure> {
    let roots = args
        .fec_roots
        .unwrap_or(u32::from(format::DEFAULT_FEC_ROOTS));
    u8::try_from(roots)
        .ok()
        .filter(|r| (fec::MIN_ROOTS..=fec::MAX_ROOTS).contains(r))
        .ok_or_else(|| {
            Failure::new(
                EXIT_FAILURE,
                format!("invalid number of parity bytes {roots} (expected 2 to 24)"),
            )
        })
}

fn same_file(a: Option<&Path>, b: Option<&Path>) -> bool {
    match (a.map(std::fs::metadata), b.map(std::fs::metadata)) {
        (Some(Ok(a)), Some(Ok(b))) => format::same_device(&a, &b),
        _ => false,
    }
}

fn verify_action(args: &Args, data: &Path, hash: &Path) -> Result<(), Failure> {
    let root = args.root_hash(3)?;
    let opts = VerifyOptions {
        hash_offset: args.hash_offset,
        no_superblock: if args.no_superblock {
            Some(args.explicit()?)
        } else {
            None
        },
        threads: args.threads,
        read_mode: Default::default(),
    };
    match verify::verify(data, hash, &root, &opts) {
        Ok(_) => Ok(()),
        Err(VerifyError::Corrupt {
            corruptions, total, ..
        }) => {
            let mut lines: Vec<String> = corruptions.iter().map(ToString::to_string).collect();
            if total > corruptions.len() as u64 {
                lines.push(format!("… and {} more", total - corruptions.len() as u64));
            }
            let blocks = corruptions
                .iter()
                .any(|c| !matches!(c, Corruption::RootHash { .. }));
            lines.push(if blocks {
                "verification of data area failed".into()
            } else {
                "verification of root hash failed".into()
            });
            Err(Failure {
                code: if blocks { EXIT_CORRUPT } else { EXIT_FAILURE },
                lines,
            })
        }
        Err(e) => Err(Failure::chain(exit_code(&e), &e)),
    }
}

fn open_action(
    args: &Args,
    data: &Path,
    name: &OsString,
    hash: &Path,
    root_index: usize,
) -> Result<(), Failure> {
    let name = name
        .to_str()
        .ok_or_else(|| Failure::new(EXIT_FAILURE, format!("device name {name:?} is not UTF-8")))?;
    let root = args.root_hash(root_index)?;
    let (hash_type, algorithm, dbs, hbs, data_blocks, salt) = if args.no_superblock {
        let p = args.explicit()?;
        let blocks = match p.data_blocks {
            Some(n) if n > 0 => n,
            _ => data_size(data)? / u64::from(p.data_block_size.max(1)),
        };
        (
            p.hash_type,
            p.algorithm,
            p.data_block_size,
            p.hash_block_size,
            blocks,
            p.salt,
        )
    } else {
        let sb = verify::read_superblock(hash, args.hash_offset)
            .map_err(|e| Failure::chain(exit_code(&e), &e))?;
        (
            sb.hash_type,
            sb.algorithm,
            sb.data_block_size,
            sb.hash_block_size,
            sb.data_blocks,
            sb.salt,
        )
    };
    if root.len() != algorithm.digest_size() {
        return Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "invalid root hash: {} bytes, {algorithm} digests have {}",
                root.len(),
                algorithm.digest_size()
            ),
        ));
    }
    let geometry = Geometry::new(GeometryParams {
        hash_type,
        algorithm,
        data_block_size: dbs,
        hash_block_size: hbs,
        data_blocks,
        hash_offset: args.hash_offset,
        superblock: !args.no_superblock,
    })
    .map_err(|e| Failure::chain(EXIT_FAILURE, &e))?;
    let fec = match &args.fec_device {
        None => None,
        Some(device) => {
            let roots = fec_roots(args)?;
            let covered = fec::CoveredDevices {
                data,
                data_blocks,
                hash,
                hash_start_block: geometry.tree_start_block(),
                hash_blocks: geometry.tree_blocks(),
                block_size: dbs,
            };
            let fail = |e: fec::FecError| Failure::chain(EXIT_FAILURE, &e);
            let areas = fec::areas_for(&covered, device, args.fec_offset).map_err(fail)?;
            let layout = fec::layout(
                &areas,
                &FecParams {
                    roots,
                    block_size: dbs,
                },
            )
            .map_err(fail)?;
            Some(TableFec {
                device: device.to_string_lossy().into_owned(),
                roots,
                blocks: layout.blocks,
                start: fec::fec_start(args.fec_offset, dbs).map_err(fail)?,
            })
        }
    };
    let corruption = if args.ignore_corruption {
        Some(CorruptionMode::Ignore)
    } else if args.restart_on_corruption {
        Some(CorruptionMode::Restart)
    } else if args.panic_on_corruption {
        Some(CorruptionMode::Panic)
    } else {
        None
    };
    let table = VerityTable {
        hash_type,
        data_device: data.to_string_lossy().into_owned(),
        hash_device: hash.to_string_lossy().into_owned(),
        data_block_size: dbs,
        hash_block_size: hbs,
        data_blocks,
        hash_start_block: geometry.tree_start_block(),
        algorithm,
        root_digest: root,
        salt,
        options: TableOptions {
            corruption,
            ignore_zero_blocks: args.ignore_zero_blocks,
            check_at_most_once: args.check_at_most_once,
            try_verify_in_tasklet: args.use_tasklets,
            fec,
            root_hash_sig_key_desc: None,
        },
    };
    verity::dm::open(name, &table)
        .map(drop)
        .map_err(|e| Failure::chain(dm_exit_code(&e), &e))
}

fn close_action(name: &OsString) -> Result<(), Failure> {
    let name = name
        .to_str()
        .ok_or_else(|| Failure::new(EXIT_FAILURE, format!("device name {name:?} is not UTF-8")))?;
    verity::dm::close(name).map_err(|e| Failure::chain(dm_exit_code(&e), &e))
}

fn data_size(path: &Path) -> Result<u64, Failure> {
    std::fs::File::open(path)
        .and_then(|f| verity::tree::device_size(&f))
        .map_err(|e| {
            Failure::new(
                io_exit_code(&e),
                format!("cannot find the size of {}: {e}", path.display()),
            )
        })
}

fn dump_action(args: &Args, hash: &Path, out: &mut impl Write) -> Result<(), Failure> {
    let sb = verify::read_superblock(hash, args.hash_offset).map_err(|e| {
        let mut f = Failure::chain(exit_code(&e), &e);
        f.lines.push(format!(
            "device {} is not a valid verity device",
            hash.display()
        ));
        f
    })?;
    let geometry = Geometry::new(GeometryParams {
        hash_type: sb.hash_type,
        algorithm: sb.algorithm,
        data_block_size: sb.data_block_size,
        hash_block_size: sb.hash_block_size,
        data_blocks: sb.data_blocks,
        hash_offset: args.hash_offset,
        superblock: true,
    })
    .map_err(|e| Failure::chain(EXIT_FAILURE, &e))?;
    let fec = match &args.fec_device {
        // Like veritysetup, FEC lines only when the block sizes allow FEC.
        Some(device) if sb.data_block_size == sb.hash_block_size => {
            let roots = fec_roots(args)?;
            let bs = geometry.data_block_size();
            let on_hash_device = same_file(Some(device), Some(hash));
            // veritysetup's VERITY_FEC_blocks: the hash device up to the FEC
            // offset (same device) or to its end, from the tree's start.
            let end = if on_hash_device {
                args.fec_offset
            } else {
                data_size(hash)?
            };
            let hash_len = ((end / bs).saturating_sub(geometry.tree_start_block())) * bs;
            let areas = [
                FecArea {
                    path: hash,
                    offset: 0,
                    len: geometry.data_bytes(),
                },
                FecArea {
                    path: hash,
                    offset: geometry.tree_offset(),
                    len: hash_len,
                },
            ];
            let params = FecParams {
                roots,
                block_size: sb.data_block_size,
            };
            let layout =
                fec::layout(&areas, &params).map_err(|e| Failure::chain(EXIT_FAILURE, &e))?;
            Some(FecLines {
                roots,
                rs_blocks: layout.parity_bytes / bs,
                on_hash_device,
                offset: args.fec_offset,
            })
        }
        _ => None,
    };
    let header = Header {
        hash_path: hash,
        uuid: Some(sb.uuid.to_string()),
        hash_type: sb.hash_type,
        geometry: &geometry,
        algorithm: sb.algorithm.to_string(),
        fec,
        salt: &sb.salt,
        root_hash: None,
    };
    let _ = out.write_all(header.render().as_bytes());
    Ok(())
}

fn io_exit_code(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind;
    match e.raw_os_error() {
        Some(libc::EBUSY | libc::EEXIST) => 5,
        Some(libc::ENODEV | libc::ENOTBLK | libc::ENXIO) => 4,
        Some(libc::ENOMEM) => 3,
        Some(libc::EPERM | libc::EACCES) => 2,
        _ if e.kind() == ErrorKind::OutOfMemory => 3,
        _ => EXIT_FAILURE,
    }
}

/// veritysetup's exit code for an error: that of the first I/O error in
/// its chain, else 1.
fn exit_code(e: &(dyn std::error::Error + 'static)) -> i32 {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io_exit_code(io);
        }
        cur = err.source();
    }
    EXIT_FAILURE
}

fn dm_exit_code(e: &verity::dm::DmError) -> i32 {
    exit_code(e)
}

#[cfg(test)]
mod tests;
