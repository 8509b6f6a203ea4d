//! `liftoff verity format|open|close` end to end: images formatted on the
//! host, opened through device-mapper in a guest running Debian's kernel.
//!
//! liftoff as PID 1 cannot run programs yet, so the guest is busybox with
//! a script (qemu-tests/src/guest.rs) and the static liftoff as
//! `/bin/liftoff`. One boot runs every check, each printing a
//! `RESULT <key> <value>` line that the host parses:
//!
//! * (a) an intact image opens read-only and reads back whole;
//! * (b) a copy with one byte flipped in data block [`BAD_BLOCK`] fails to
//!   read exactly that block (EIO, the default corruption mode) while its
//!   neighbours read fine;
//! * (c) with FEC (`--fec-device`, 2 roots) the same flip is corrected and
//!   the whole device reads back right;
//! * (d) `liftoff verity close` removes each device and its
//!   `/dev/mapper/<name>` symlink.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qemu_tests::guest::{BusyboxGuest, EXIT_MARKER, resolve_modules};
use qemu_tests::qemu::{KERNEL_FLAG_CONSOLE, KERNEL_FLAG_PANIC};
use qemu_tests::{Vm, VmConfig};
use sha2::{Digest, Sha256};

/// The data image: 1024 blocks of 4 KiB.
const DATA_BLOCKS: usize = 1024;
const BLOCK: usize = 4096;
/// The data block the corrupted copy has one byte flipped in.
const BAD_BLOCK: usize = 700;
/// The modules the guest loads (their dependencies come along): virtio
/// over PCI for the disks, device-mapper and dm-verity (with dm-bufio and
/// reed_solomon for FEC).
const MODULES: &[&str] = &["virtio_pci", "virtio_blk", "dm-mod", "dm-verity"];
/// Boot, checks and poweroff. About 15 s wall under TCG on 2 cores; the
/// margin is for a loaded machine.
const RUN: Duration = Duration::from_secs(150);

/// The static liftoff under test (`cargo xtask test` builds it).
fn liftoff_bin() -> PathBuf {
    qemu_tests::scenario::liftoff_bin().expect(qemu_tests::scenario::MISSING_LIFTOFF_BIN)
}

/// Deterministic pseudo-random bytes (xorshift64), so a failure reproduces.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// Runs `liftoff verity format` on the host and returns the root hash it
/// prints (veritysetup's `Root hash:` line).
fn format(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(liftoff_bin())
        .current_dir(dir)
        .args(["verity", "format"])
        .args(args)
        .output()
        .expect("run liftoff verity format");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "liftoff verity format {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Root hash:"))
        .map(|hash| hash.trim().to_owned())
        .filter(|hash| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no `Root hash: <sha256 hex>` line in:\n{stdout}"))
}

/// The guest's script. Disks: vda data, vdb hash, vdc corrupted data,
/// vdd hash (FEC format), vde FEC parity.
fn script(root: &str, root_fec: &str) -> String {
    format!(
        r#"
result() {{ echo "RESULT $*"; }}
# Prints the sha256 of a whole device, or "read-error".
sum() {{ sha256sum "$1" 2>/dev/null | cut -d' ' -f1 | grep . || echo read-error; }}
# Reads one 4 KiB block with O_DIRECT (no readahead into its neighbours).
block() {{
    if out=$(dd if="$1" of=/dev/null bs={BLOCK} skip="$2" count=1 iflag=direct 2>&1); then
        echo ok
    else
        echo "fail: $out" | tr '\n' ' '
    fi
}}
# dm-N's read-only flag, through the /dev/mapper symlink.
ro() {{ cat "/sys/block/$(basename "$(readlink "/dev/mapper/$1")")/ro"; }}

# (a) intact
liftoff verity open /dev/vda a /dev/vdb {root} && result a-open ok || result a-open fail
result a-link "$(readlink /dev/mapper/a)"
result a-ro "$(ro a)"
result a-sha256 "$(sum /dev/mapper/a)"
liftoff verity close a && result a-close ok || result a-close fail
[ -e /dev/mapper/a ] && result a-gone no || result a-gone yes

# (b) one flipped byte, no FEC: EIO for that block only
liftoff verity open /dev/vdc b /dev/vdb {root} && result b-open ok || result b-open fail
result b-before "$(block /dev/mapper/b {before})"
result b-bad "$(block /dev/mapper/b {BAD_BLOCK})"
result b-after "$(block /dev/mapper/b {after})"
liftoff verity close b && result b-close ok || result b-close fail

# (c) the same flip, corrected by FEC
liftoff verity open /dev/vdc c /dev/vdd {root_fec} --fec-device /dev/vde --fec-roots 2 \
    && result c-open ok || result c-open fail
result c-bad "$(block /dev/mapper/c {BAD_BLOCK})"
result c-sha256 "$(sum /dev/mapper/c)"
liftoff verity close c && result c-close ok || result c-close fail

# (d) nothing left behind
result d-devices "$(ls /sys/block | grep -c '^dm-')"
result d-mapper "$(ls /dev/mapper | tr '\n' ' ')"
"#,
        before = BAD_BLOCK - 1,
        after = BAD_BLOCK + 1,
    )
}

/// `RESULT <key> <value>` lines, by key.
fn results(console: &str) -> BTreeMap<String, String> {
    console
        .lines()
        .filter_map(|line| line.split_once("RESULT ").map(|(_, rest)| rest))
        .map(|rest| {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            (key.to_owned(), value.trim().to_owned())
        })
        .collect()
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn format_open_read_corrupt_correct_close() {
    let started = Instant::now();
    let kernel = qemu_tests::fetch_kernel(&qemu_tests::cache_dir())
        .expect("kernel (cargo xtask test fetches it)");
    let dir = tempfile::Builder::new()
        .prefix("liftoff-verity-")
        .tempdir()
        .expect("tempdir");
    let path = |name: &str| dir.path().join(name);

    // Host: the images.
    let data = pseudo_random(DATA_BLOCKS * BLOCK);
    let expected: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(path("data.img"), &data).unwrap();
    let mut corrupt = data.clone();
    corrupt[BAD_BLOCK * BLOCK + 123] ^= 0x40;
    fs::write(path("corrupt.img"), &corrupt).unwrap();
    let root = format(dir.path(), &["data.img", "hash.img"]);
    let root_fec = format(
        dir.path(),
        &[
            "data.img",
            "hash-fec.img",
            "--fec-device",
            "fec.img",
            "--fec-roots",
            "2",
        ],
    );

    // The guest.
    let initrd = path("initramfs.cpio");
    BusyboxGuest::new(&kernel)
        .modules(MODULES)
        .binary("/bin/liftoff", liftoff_bin())
        .script(script(&root, &root_fec))
        .write_to(dir.path(), &initrd)
        .expect("busybox guest initramfs");
    let mut config = VmConfig::new(&kernel.vmlinuz, &initrd);
    config.append = format!("{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC}");
    config.disks = [
        "data.img",
        "hash.img",
        "corrupt.img",
        "hash-fec.img",
        "fec.img",
    ]
    .map(path)
    .to_vec();
    config.run_dir = Some(path("run"));
    config.timeout = RUN;
    let host_done = started.elapsed();
    let mut vm = Vm::start(&config).expect("start QEMU");
    if let Err(e) = vm.wait_for(EXIT_MARKER, RUN) {
        panic!("{e}\n--- console ---\n{}", vm.console());
    }
    if let Err(e) = vm.wait_exit(Duration::from_secs(30)) {
        panic!("{e}\n--- console ---\n{}", vm.console());
    }
    let console = vm.console();
    eprintln!(
        "verity scenario: host {:.1?}, total {:.1?}",
        host_done,
        started.elapsed()
    );

    let results = results(&console);
    let get = |key: &str| {
        results
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no RESULT {key}:\n{console}"))
    };
    let check = |key: &str, ok: &dyn Fn(&str) -> bool, what: &str| {
        let value = get(key);
        assert!(
            ok(value),
            "{key} = {value:?}, expected {what}\n--- console ---\n{console}"
        );
    };
    let is = |expected: &'static str| move |v: &str| v == expected;

    // (a)
    check("a-open", &is("ok"), "ok");
    check("a-link", &|v| v.starts_with("../dm-"), "../dm-N");
    check("a-ro", &is("1"), "a read-only device");
    check("a-sha256", &|v| v == expected, &expected);
    check("a-close", &is("ok"), "ok");
    check("a-gone", &is("yes"), "the symlink removed");
    // (b)
    check("b-open", &is("ok"), "ok");
    check("b-before", &is("ok"), "the block before the flip to read");
    check(
        "b-bad",
        &|v| v.starts_with("fail") && v.contains("Input/output error"),
        "EIO",
    );
    check("b-after", &is("ok"), "the block after the flip to read");
    check("b-close", &is("ok"), "ok");
    assert!(
        console.contains(&format!("data block {BAD_BLOCK} is corrupted")),
        "the kernel did not report block {BAD_BLOCK}:\n{console}"
    );
    // (c)
    check("c-open", &is("ok"), "ok");
    check("c-bad", &is("ok"), "FEC to correct the block");
    check("c-sha256", &|v| v == expected, &expected);
    check("c-close", &is("ok"), "ok");
    // (d)
    check("d-devices", &is("0"), "no dm devices left");
    check("d-mapper", &is("control"), "only /dev/mapper/control left");
    assert!(!console.contains("Kernel panic"), "{console}");
    assert!(!console.contains("GUEST-ERROR"), "{console}");
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn dm_verity_modules_resolve_dependencies_first() {
    let kernel = qemu_tests::fetch_kernel(&qemu_tests::cache_dir()).expect("kernel");
    let names: Vec<String> = MODULES.iter().map(|m| (*m).to_owned()).collect();
    let modules = resolve_modules(&kernel.modules_dir, &names).expect("resolve");
    let order: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    let at = |name: &str| {
        order
            .iter()
            .position(|m| *m == name)
            .unwrap_or_else(|| panic!("{name} missing from {order:?}"))
    };
    for (before, after) in [
        ("virtio", "virtio_pci"),
        ("virtio_ring", "virtio_blk"),
        ("dm_mod", "dm_bufio"),
        ("dm_bufio", "dm_verity"),
        ("reed_solomon", "dm_verity"),
    ] {
        assert!(at(before) < at(after), "{before} after {after}: {order:?}");
    }
}
