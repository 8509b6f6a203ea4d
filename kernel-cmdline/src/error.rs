//! What can be wrong with a command line, and the [`Rejected`] value that
//! still carries the failure policy.
//!
//! Every message names the key as the operator wrote it, quotes the value
//! (Rust string syntax, so a stray `"` or control byte is visible) and says
//! why: `liftoff.on_failure="explode": expected one of reboot, poweroff, halt`.

use std::fmt;

use crate::liftoff::{FailurePolicy, LogLevel};

/// One malformed key. Variants carry the key as written and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// A key that needs `=value` was given bare.
    #[error("{key}: expects a value ({key}=...)")]
    MissingValue {
        /// The key as written.
        key: String,
    },
    /// A flag such as `ro` was given a value.
    #[error("{key}={value:?}: takes no value")]
    UnexpectedValue {
        /// The key as written.
        key: String,
        /// The value that should not be there.
        value: String,
    },
    /// A value outside a fixed set of words.
    #[error("{key}={value:?}: expected one of {expected}")]
    NotOneOf {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
        /// The accepted words, comma separated.
        expected: &'static str,
    },
    /// A `liftoff.*` key liftoff does not know (a typo in our namespace).
    #[error("{key}: unknown liftoff key; known keys are {known}")]
    UnknownLiftoffKey {
        /// The key as written.
        key: String,
        /// Its value, if any.
        value: Option<String>,
        /// The known keys, comma separated.
        known: &'static str,
    },
    /// A bad duration (`liftoff.device_timeout=`, `liftoff.failure_delay=`).
    #[error("{key}={value:?}: {reason}")]
    Duration {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
        /// Why it is not a duration.
        reason: DurationError,
    },
    /// A bad `liftoff.boot_read_ahead_kb=`.
    #[error("{key}={value:?}: expected a whole number of KiB from 1 to {max}, or off")]
    ReadAhead {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
        /// The largest value taken.
        max: u32,
    },
    /// A bad `rootwait=` timeout.
    #[error("{key}={value:?}: expected a whole number of seconds")]
    RootWait {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
    },
    /// A bad block device spec (`root=`, `systemd.verity_root_data=`, ...).
    #[error("{key}={value:?}: {reason}")]
    Device {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: DeviceError,
    },
    /// A value that must be an absolute path (`init=`).
    #[error("{key}={value:?}: expected an absolute path")]
    NotAbsolutePath {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
    },
    /// A comma list with an empty or malformed item (`rootfstype=`).
    #[error("{key}={value:?}: item {item:?} is not a valid name")]
    BadListItem {
        /// The key as written.
        key: String,
        /// The whole value.
        value: String,
        /// The offending item.
        item: String,
    },
    /// A bad kernel module name in `liftoff.modules=`.
    #[error("{key}={value:?}: module {module:?}: {reason}")]
    Module {
        /// The key as written.
        key: String,
        /// The whole value.
        value: String,
        /// The offending module name.
        module: String,
        /// What is wrong with it.
        reason: ModuleNameError,
    },
    /// A bad `roothash=`.
    #[error("{key}={value:?}: {reason}")]
    RootHash {
        /// The key as written.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: RootHashError,
    },
    /// A bad item in `systemd.verity_root_options=`.
    #[error("{key}={value:?}: option {option:?}: {reason}")]
    VerityOption {
        /// The key as written.
        key: String,
        /// The whole value.
        value: String,
        /// The offending option word.
        option: String,
        /// What is wrong with it.
        reason: VerityOptionError,
    },
    /// A `systemd.verity_root_*` key without the `roothash=` it refines.
    #[error("{key}={value:?}: needs roothash= to say which verity root it belongs to")]
    NeedsRootHash {
        /// The key as written.
        key: String,
        /// Its value.
        value: String,
    },
    /// Both `roothash=` and a verity table in `dm-mod.create=`: two
    /// descriptions of the protected root that may disagree.
    #[error(
        "roothash={root_hash:?}: conflicts with the verity device {device:?} in dm-mod.create=; use one of them"
    )]
    ConflictingVerity {
        /// The `roothash=` value.
        root_hash: String,
        /// The name of the `dm-mod.create=` device with a verity target.
        device: String,
    },
    /// A `dm-mod.create=` the kernel's dm-init would refuse.
    #[error("{key}={value:?}: {reason}")]
    DmCreate {
        /// The key as written.
        key: String,
        /// The whole value.
        value: String,
        /// What dm-init would say, with the device and target number.
        reason: DmError,
    },
    /// A `dm-mod.waitfor=` the kernel would refuse.
    #[error("{key}={value:?}: {reason}")]
    DmWaitfor {
        /// The key as written.
        key: String,
        /// The whole value.
        value: String,
        /// What is wrong with it.
        reason: DeviceError,
    },
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<digits>[ms|s|min]`.
    #[error("expected a whole number with an optional unit ms, s or min (default s)")]
    Syntax,
    /// Too large to represent.
    #[error("too large")]
    Overflow,
    /// Zero where liftoff needs a real wait.
    #[error("must be greater than zero")]
    Zero,
}

/// Why a block device spec did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// None of the accepted forms.
    #[error("expected {forms}")]
    UnknownForm {
        /// The accepted forms for this key.
        forms: &'static str,
    },
    /// `PARTUUID=` that is neither a GPT UUID nor an MBR `SSSSSSSS-PP` id.
    #[error("PARTUUID must be a GPT UUID (8-4-4-4-12 hex digits) or an MBR id SSSSSSSS-PP")]
    PartUuid,
    /// `/PARTNROFF=` that is not a signed integer.
    #[error("PARTNROFF must be a signed integer")]
    PartNrOff,
    /// `/PARTNROFF=` on a key whose consumer (udev links) cannot honour it.
    #[error("PARTNROFF is only understood by root= and dm-mod.waitfor=")]
    PartNrOffNotHere,
    /// `UUID=` with characters other than hex digits and `-`.
    #[error("UUID must be hex digits and dashes")]
    FsUuid,
    /// `PARTLABEL=` or `LABEL=` that is empty or too long.
    #[error("label must be 1 to {max} characters")]
    Label {
        /// The longest label allowed.
        max: usize,
    },
    /// `/dev/` with nothing after it, or a quote, space or NUL in it.
    #[error("device path must name a node under /dev/, without quotes or spaces")]
    Path,
    /// A `major:minor` or hex device number out of the kernel's range.
    #[error("device number out of range (major < 4096, minor < 1048576)")]
    DevNumRange,
    /// An empty item in a device list.
    #[error("empty device in list")]
    Empty,
    /// More devices than the kernel accepts.
    #[error("more than {max} devices")]
    TooMany {
        /// The kernel's limit.
        max: usize,
    },
}

/// Why a kernel module name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleNameError {
    /// Empty item, e.g. `a,,b`.
    #[error("empty module name")]
    Empty,
    /// Longer than the kernel's `MODULE_NAME_LEN - 1`.
    #[error("longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Outside `[A-Za-z0-9_-]`.
    #[error("only letters, digits, '_' and '-' are allowed")]
    Charset,
}

/// Why a `roothash=` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootHashError {
    /// Not hex, or an odd number of digits.
    #[error("expected an even number of hex digits")]
    NotHex,
    /// Too short to derive two partition UUIDs from, or longer than any hash.
    #[error("expected {min} to {max} hex digits, got {len}")]
    Length {
        /// Digits given.
        len: usize,
        /// Fewest accepted (128 bits).
        min: usize,
        /// Most accepted (512 bits).
        max: usize,
    },
    /// A half that would give the all-zero UUID, which systemd rejects.
    #[error("the first or last 128 bits are all zero, which names no partition")]
    NullUuid,
}

/// Why a verity option word is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerityOptionError {
    /// Not an option systemd-veritysetup knows (liftoff does not ignore
    /// options it cannot honour).
    #[error("unknown verity option")]
    Unknown,
    /// A flag given a value, or an option missing its `=value`.
    #[error("malformed option")]
    Malformed,
    /// `superblock=` not a boolean.
    #[error("expected a boolean (1, yes, true, on, 0, no, false, off)")]
    Boolean,
    /// `format=` not 0 or 1.
    #[error("expected 0 or 1")]
    Format,
    /// A number or size that did not parse.
    #[error("expected a number with an optional K, M, G, T, P or E suffix")]
    Number,
    /// A block size outside 512 B to 512 KiB or not a power of two.
    #[error("block size must be a power of two from 512 to 524288 bytes")]
    BlockSize,
    /// An offset not a multiple of 512.
    #[error("must be a multiple of 512")]
    Alignment,
    /// `fec-roots=` outside 2..=24.
    #[error("expected a value from 2 to 24")]
    FecRoots,
    /// `salt=` not hex, `-` or empty.
    #[error("expected hex digits, '-' (no salt) or nothing (default)")]
    Salt,
    /// `uuid=` not a UUID.
    #[error("expected a UUID")]
    Uuid,
    /// `hash=` empty or with odd characters.
    #[error("expected a hash algorithm name")]
    Hash,
    /// `fec-device=` not a device spec.
    #[error("{0}")]
    FecDevice(DeviceError),
    /// `root-hash-signature=` neither an absolute path nor `base64:...`.
    #[error("expected an absolute path or base64:<data>")]
    Signature,
    /// Two different `*-on-corruption` modes.
    #[error("conflicts with an earlier corruption mode")]
    ConflictingCorruptionMode,
}

/// What dm-init (drivers/md/dm-init.c) would refuse in `dm-mod.create=`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    /// The kernel's `charp` parameters stop at 1024 bytes (kernel/params.c
    /// `param_set_charp`), before dm-init's own 4096-byte limit applies.
    #[error("longer than the kernel's {max}-byte limit for a string parameter ({len} bytes)")]
    TooLong {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than `DM_MAX_DEVICES`.
    #[error("more than {max} devices")]
    TooManyDevices {
        /// The limit.
        max: usize,
    },
    /// More than `DM_MAX_TARGETS` in one device.
    #[error("device {device}: more than {max} targets")]
    TooManyTargets {
        /// Device number, from 1.
        device: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer than five comma-separated fields.
    #[error("device {device}: expected <name>,<uuid>,<minor>,<flags>,<table>")]
    MissingFields {
        /// Device number, from 1.
        device: usize,
    },
    /// A name the device-mapper refuses (`check_name()` in dm-ioctl.c).
    #[error(
        "device {device}: name {name:?} must be 1 to 127 bytes, without '/', and not \".\", \"..\" or \"control\""
    )]
    Name {
        /// Device number, from 1.
        device: usize,
        /// The name.
        name: String,
    },
    /// A uuid longer than `DM_UUID_LEN - 1`.
    #[error("device {device}: uuid longer than 128 bytes")]
    Uuid {
        /// Device number, from 1.
        device: usize,
    },
    /// A minor that is not a number, or one above 255 (the kernel decodes
    /// the field with `huge_decode_dev()`, so 256 would become minor 0).
    #[error("device {device}: minor {minor:?} must be empty or a number from 0 to 255")]
    Minor {
        /// Device number, from 1.
        device: usize,
        /// The field as written.
        minor: String,
    },
    /// Flags other than `ro` or `rw`.
    #[error("device {device}: flags {flags:?} must be ro or rw")]
    Flags {
        /// Device number, from 1.
        device: usize,
        /// The field as written.
        flags: String,
    },
    /// A table line without `<start> <length> <type> <args>`.
    #[error(
        "device {device} target {target}: expected <start_sector> <num_sectors> <target_type> <target_args>"
    )]
    TableFields {
        /// Device number, from 1.
        device: usize,
        /// Target number, from 1.
        target: usize,
    },
    /// A sector count that is not a kernel `kstrtoull()` number.
    #[error("device {device} target {target}: {field} {text:?} is not a number")]
    Sector {
        /// Device number, from 1.
        device: usize,
        /// Target number, from 1.
        target: usize,
        /// Which field.
        field: &'static str,
        /// The field as written.
        text: String,
    },
    /// A target type dm-init does not allow at boot.
    #[error(
        "device {device} target {target}: type {target_type:?} is not allowed by dm-init (allowed: {allowed})"
    )]
    TargetType {
        /// Device number, from 1.
        device: usize,
        /// Target number, from 1.
        target: usize,
        /// The type as written.
        target_type: String,
        /// The allowed types.
        allowed: &'static str,
    },
}

/// The answer when any key is malformed.
///
/// PID 1 cannot boot a plan with errors in it, but it must still fail the
/// way the operator asked: `failure` and `log` are what the command line
/// stated validly (the last valid occurrence), or the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Every malformed key, in command-line order (cross-key conflicts last).
    pub errors: Vec<CmdlineError>,
    /// `liftoff.on_failure=` / `liftoff.failure_delay=` as validly stated.
    pub failure: FailurePolicy,
    /// `liftoff.log=` as validly stated.
    pub log: LogLevel,
}

impl fmt::Display for Rejected {
    /// One error per line, no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}
