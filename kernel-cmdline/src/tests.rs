//! Whole-line tests: real command lines, every key's valid and invalid
//! forms with the exact message, `Rejected`, JSON, and property oracles.

use std::time::Duration;

use proptest::prelude::*;

use crate::tokenize::{quote, split_args};
use crate::*;

const BOTTLEROCKET_UUID: &str = "2e3f6c0a-5f8b-4c1a-9d2e-7b4a1c9e0f11";
const ROOT_HASH: &str = "7d5c1b3f0e2a4968b7c6d5e4f3a2b1c0aa55aa55aa55aa55d1e2f3a4b5c6d7e8";
const SALT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn bottlerocket_line() -> String {
    format!(
        "BOOT_IMAGE=/x86_64/vmlinuz root=/dev/dm-0 rootwait ro raid=noautodetect \
         random.trust_cpu=on selinux=1 enforcing=1 \
         dm-mod.create=\"root,,,ro,0 1884160 verity 1 PARTUUID={u}/PARTNROFF=1 \
         PARTUUID={u}/PARTNROFF=2 4096 4096 235520 1 sha256 {h} {s} \
         2 restart_on_corruption ignore_zero_blocks\" \
         -- systemd.log_target=journal-or-kmsg systemd.log_color=0 systemd.show_status=true\n",
        u = BOTTLEROCKET_UUID,
        h = ROOT_HASH,
        s = SALT,
    )
}

fn unknown(key: &str, value: Option<&str>) -> Param {
    Param {
        key: key.into(),
        value: value.map(Into::into),
    }
}

#[test]
fn bottlerocket_line_parses() {
    let plan = parse(&bottlerocket_line()).unwrap();
    assert_eq!(
        plan.root,
        Some(RootDevice::Path {
            path: "/dev/dm-0".into()
        })
    );
    assert_eq!(plan.root_wait, Some(RootWait::Forever));
    assert_eq!(plan.read_only, Some(true));
    assert_eq!(plan.selinux, Some(true));
    assert_eq!(plan.enforcing, Some(true));
    assert_eq!(plan.dm_create.len(), 1);
    let device = &plan.dm_create[0];
    assert_eq!(
        (
            device.name.as_str(),
            device.uuid.as_deref(),
            device.minor,
            device.read_only
        ),
        ("root", None, None, true)
    );
    assert_eq!(
        device.targets,
        vec![DmTarget {
            start_sector: 0,
            num_sectors: 1_884_160,
            target_type: "verity".into(),
            args: format!(
                "1 PARTUUID={u}/PARTNROFF=1 PARTUUID={u}/PARTNROFF=2 4096 4096 235520 1 sha256 {ROOT_HASH} {SALT} 2 restart_on_corruption ignore_zero_blocks",
                u = BOTTLEROCKET_UUID
            ),
        }]
    );
    assert_eq!(
        plan.verity,
        Some(VeritySource::DmCreate {
            devices: vec!["root".into()]
        })
    );
    assert_eq!(
        plan.unknown,
        vec![
            unknown("BOOT_IMAGE", Some("/x86_64/vmlinuz")),
            unknown("raid", Some("noautodetect")),
            unknown("random.trust_cpu", Some("on")),
        ]
    );
    assert_eq!(
        plan.init_args,
        vec![
            "systemd.log_target=journal-or-kmsg",
            "systemd.log_color=0",
            "systemd.show_status=true"
        ]
    );
    assert_eq!(plan.failure, FailurePolicy::default());
}

#[test]
fn systemd_roothash_line_parses() {
    let line = format!(
        "root=/dev/mapper/root roothash={ROOT_HASH} rootfstype=erofs ro \
         systemd.verity_root_options=restart-on-corruption,ignore-zero-blocks,hash=sha256 console=ttyS0,115200"
    );
    let plan = parse(&line).unwrap();
    let Some(VeritySource::RootHash(verity)) = &plan.verity else {
        panic!("expected a roothash verity source, got {:?}", plan.verity);
    };
    assert_eq!(verity.root_hash.as_hex(), ROOT_HASH);
    assert_eq!(
        verity.discoverable,
        DiscoverableUuids {
            data: "7d5c1b3f-0e2a-4968-b7c6-d5e4f3a2b1c0".into(),
            verity: "aa55aa55-aa55-aa55-d1e2-f3a4b5c6d7e8".into(),
        }
    );
    assert_eq!(
        verity.data,
        RootDevice::PartUuid {
            uuid: "7d5c1b3f-0e2a-4968-b7c6-d5e4f3a2b1c0".into(),
            partnroff: None
        }
    );
    assert_eq!(
        verity.hash,
        RootDevice::PartUuid {
            uuid: "aa55aa55-aa55-aa55-d1e2-f3a4b5c6d7e8".into(),
            partnroff: None
        }
    );
    assert_eq!(
        verity.options.on_corruption,
        Some(CorruptionAction::Restart)
    );
    assert!(verity.options.ignore_zero_blocks);
    assert_eq!(verity.options.hash.as_deref(), Some("sha256"));
    assert_eq!(plan.root_fstype, vec!["erofs"]);
    assert_eq!(plan.unknown, vec![unknown("console", Some("ttyS0,115200"))]);
}

#[test]
fn systemd_explicit_verity_devices() {
    let line = format!(
        "roothash={ROOT_HASH} systemd.verity_root_data=PARTLABEL=root-a systemd.verity-root-hash=/dev/vda3"
    );
    let plan = parse(&line).unwrap();
    let Some(VeritySource::RootHash(verity)) = plan.verity else {
        panic!("no verity")
    };
    assert_eq!(
        verity.data,
        RootDevice::PartLabel {
            label: "root-a".into()
        }
    );
    assert_eq!(
        verity.hash,
        RootDevice::Path {
            path: "/dev/vda3".into()
        }
    );
}

#[test]
fn debian_default_line_parses() {
    let plan = parse("BOOT_IMAGE=/boot/vmlinuz-6.1.0-26-amd64 root=UUID=3a8e6f2b-6f0c-4d7e-9b1a-2c5d8e7f9a01 ro quiet\n").unwrap();
    assert_eq!(
        plan.root,
        Some(RootDevice::Uuid {
            uuid: "3a8e6f2b-6f0c-4d7e-9b1a-2c5d8e7f9a01".into()
        })
    );
    assert!(plan.root_read_only());
    assert_eq!(plan.verity, None);
    assert_eq!(
        plan.unknown,
        vec![
            unknown("BOOT_IMAGE", Some("/boot/vmlinuz-6.1.0-26-amd64")),
            unknown("quiet", None)
        ]
    );
}

#[test]
fn empty_line_gives_defaults() {
    let plan = parse("").unwrap();
    assert_eq!(plan, BootPlan::default());
    assert_eq!(plan.device_timeout, Duration::from_secs(30));
    assert_eq!(
        plan.failure,
        FailurePolicy {
            action: FailureAction::Reboot,
            delay: Duration::from_secs(5)
        }
    );
    assert_eq!(plan.log, LogLevel::Info);
    assert_eq!(plan.verity_on_corruption, CorruptionAction::Restart);
    assert!(plan.root_read_only());
}

#[test]
fn valid_keys_table() {
    type Check = fn(&BootPlan) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        ("rw after ro wins", "ro rw", |p| {
            p.read_only == Some(false) && !p.root_read_only()
        }),
        ("ro after rw wins", "rw ro", |p| p.read_only == Some(true)),
        ("rootwait timeout", "rootwait=10", |p| {
            p.root_wait == Some(RootWait::Timeout(Duration::from_secs(10)))
        }),
        ("last rootwait wins", "rootwait=10 rootwait", |p| {
            p.root_wait == Some(RootWait::Forever)
        }),
        (
            "rootflags verbatim",
            "rootflags=noatime,data=ordered",
            |p| p.root_flags.as_deref() == Some("noatime,data=ordered"),
        ),
        ("rootfstype list", "rootfstype=erofs,ext4", |p| {
            p.root_fstype == ["erofs", "ext4"]
        }),
        ("init", "init=/sbin/liftoff", |p| {
            p.init.as_deref() == Some("/sbin/liftoff")
        }),
        ("selinux off", "selinux=0 enforcing=0", |p| {
            p.selinux == Some(false) && p.enforcing == Some(false)
        }),
        (
            "last root wins",
            "root=/dev/vda1 root=PARTLABEL=root",
            |p| {
                p.root
                    == Some(RootDevice::PartLabel {
                        label: "root".into(),
                    })
            },
        ),
        (
            "dash equals underscore",
            "dm_mod.create=\"a,,,ro,0 8 linear 8:1 0\" dm-mod.waitfor=8:1",
            |p| {
                p.dm_create.len() == 1
                    && p.dm_waitfor == [RootDevice::DevNum { major: 8, minor: 1 }]
            },
        ),
        (
            "modules accumulate without duplicates",
            "liftoff.modules=virtio_blk,dm-verity liftoff.modules=erofs,virtio_blk",
            |p| p.modules == ["virtio_blk", "dm-verity", "erofs"],
        ),
        ("boot read-ahead by default", "root=/dev/vda1", |p| {
            p.boot_read_ahead_kb == Some(DEFAULT_BOOT_READ_AHEAD_KB)
        }),
        (
            "boot read-ahead in KiB",
            "liftoff.boot_read_ahead_kb=512",
            |p| p.boot_read_ahead_kb == Some(512),
        ),
        (
            "boot read-ahead largest, dash spelling",
            "liftoff.boot-read-ahead-kb=65536",
            |p| p.boot_read_ahead_kb == Some(MAX_BOOT_READ_AHEAD_KB),
        ),
        (
            "boot read-ahead off",
            "liftoff.boot_read_ahead_kb=off",
            |p| p.boot_read_ahead_kb.is_none(),
        ),
        ("device timeout ms", "liftoff.device_timeout=1500ms", |p| {
            p.device_timeout == Duration::from_millis(1500)
        }),
        (
            "device timeout dash spelling",
            "liftoff.device-timeout=2min",
            |p| p.device_timeout == Duration::from_secs(120),
        ),
        (
            "failure policy",
            "liftoff.on_failure=halt liftoff.failure_delay=0",
            |p| {
                p.failure
                    == FailurePolicy {
                        action: FailureAction::Halt,
                        delay: Duration::ZERO,
                    }
            },
        ),
        ("corruption", "liftoff.verity.on_corruption=panic", |p| {
            p.verity_on_corruption == CorruptionAction::Panic
        }),
        ("log", "liftoff.log=trace", |p| p.log == LogLevel::Trace),
        ("unknown kept in order", "b=1 a c=\"x y\"", |p| {
            p.unknown
                == [
                    unknown("b", Some("1")),
                    unknown("a", None),
                    unknown("c", Some("x y")),
                ]
        }),
        (
            "other namespaces free",
            "Liftoff.log=loud liftoffx=1",
            |p| p.unknown.len() == 2,
        ),
        (
            "dm-create non-verity",
            "dm-mod.create=\"a,,,rw,0 8 linear 8:1 0\"",
            |p| p.verity.is_none() && p.dm_create.len() == 1,
        ),
    ];
    for (name, line, check) in cases {
        match parse(line) {
            Ok(plan) => assert!(check(&plan), "case {name}: {plan:#?}"),
            Err(rejected) => panic!("case {name}: {rejected}"),
        }
    }
}

/// Each case is a line with exactly one problem, and the message it must
/// produce, word for word.
#[test]
fn invalid_keys_table() {
    let long_hash = "ab".repeat(15);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "on_failure",
            "liftoff.on_failure=explode".into(),
            "liftoff.on_failure=\"explode\": expected one of reboot, poweroff, halt",
        ),
        (
            "log",
            "liftoff.log=loud".into(),
            "liftoff.log=\"loud\": expected one of error, warn, info, debug, trace",
        ),
        (
            "corruption",
            "liftoff.verity.on_corruption=retry".into(),
            "liftoff.verity.on_corruption=\"retry\": expected one of restart, panic, eio, ignore",
        ),
        (
            "log without value",
            "liftoff.log".into(),
            "liftoff.log: expects a value (liftoff.log=...)",
        ),
        (
            "unknown liftoff key",
            "liftoff.modules=a liftoff.modlues=b".into(),
            "liftoff.modlues: unknown liftoff key; known keys are liftoff.modules, liftoff.device_timeout, liftoff.on_failure, liftoff.failure_delay, liftoff.verity.on_corruption, liftoff.log, liftoff.boot_read_ahead_kb",
        ),
        (
            "boot read-ahead zero",
            "liftoff.boot_read_ahead_kb=0".into(),
            "liftoff.boot_read_ahead_kb=\"0\": expected a whole number of KiB from 1 to 65536, or off",
        ),
        (
            "boot read-ahead too large",
            "liftoff.boot_read_ahead_kb=65537".into(),
            "liftoff.boot_read_ahead_kb=\"65537\": expected a whole number of KiB from 1 to 65536, or off",
        ),
        (
            "boot read-ahead with a unit",
            "liftoff.boot_read_ahead_kb=2M".into(),
            "liftoff.boot_read_ahead_kb=\"2M\": expected a whole number of KiB from 1 to 65536, or off",
        ),
        (
            "boot read-ahead signed",
            "liftoff.boot_read_ahead_kb=+64".into(),
            "liftoff.boot_read_ahead_kb=\"+64\": expected a whole number of KiB from 1 to 65536, or off",
        ),
        (
            "duration syntax",
            "liftoff.failure_delay=5sec".into(),
            "liftoff.failure_delay=\"5sec\": expected a whole number with an optional unit ms, s or min (default s)",
        ),
        (
            "zero device timeout",
            "liftoff.device_timeout=0".into(),
            "liftoff.device_timeout=\"0\": must be greater than zero",
        ),
        (
            "duration overflow",
            "liftoff.device_timeout=99999999999999999999".into(),
            "liftoff.device_timeout=\"99999999999999999999\": too large",
        ),
        (
            "module charset",
            "liftoff.modules=virtio_blk,../x".into(),
            "liftoff.modules=\"virtio_blk,../x\": module \"../x\": only letters, digits, '_' and '-' are allowed",
        ),
        (
            "empty module",
            "liftoff.modules=a,,b".into(),
            "liftoff.modules=\"a,,b\": module \"\": empty module name",
        ),
        ("ro with value", "ro=1".into(), "ro=\"1\": takes no value"),
        (
            "selinux",
            "selinux=yes".into(),
            "selinux=\"yes\": expected one of 0, 1",
        ),
        (
            "enforcing",
            "enforcing=2".into(),
            "enforcing=\"2\": expected one of 0, 1",
        ),
        (
            "rootwait",
            "rootwait=-1".into(),
            "rootwait=\"-1\": expected a whole number of seconds",
        ),
        (
            "init relative",
            "init=sbin/init".into(),
            "init=\"sbin/init\": expected an absolute path",
        ),
        (
            "rootfstype item",
            "rootfstype=ext4,".into(),
            "rootfstype=\"ext4,\": item \"\" is not a valid name",
        ),
        (
            "root unknown form",
            "root=sda1".into(),
            "root=\"sda1\": expected /dev/<name>, PARTUUID=<uuid>[/PARTNROFF=<n>], PARTLABEL=<name>, LABEL=<label>, UUID=<uuid>, <major>:<minor> or a hex device number",
        ),
        (
            "root partuuid",
            "root=PARTUUID=1234".into(),
            "root=\"PARTUUID=1234\": PARTUUID must be a GPT UUID (8-4-4-4-12 hex digits) or an MBR id SSSSSSSS-PP",
        ),
        (
            "root partnroff",
            "root=PARTUUID=0002dd75-01/PARTNROFF=x".into(),
            "root=\"PARTUUID=0002dd75-01/PARTNROFF=x\": PARTNROFF must be a signed integer",
        ),
        (
            "root quotes shown",
            "root=\"/dev/x\"y".into(),
            "root=\"/dev/x\\\"y\": device path must name a node under /dev/, without quotes or spaces",
        ),
        (
            "roothash hex",
            "roothash=xyz".into(),
            "roothash=\"xyz\": expected an even number of hex digits",
        ),
        (
            "roothash short",
            format!("roothash={long_hash}"),
            "roothash=\"ababababababababababababababab\": expected 32 to 128 hex digits, got 30",
        ),
        (
            "verity option",
            format!(
                "roothash={ROOT_HASH} systemd.verity_root_options=restart-on-corruption,frobnicate"
            ),
            "systemd.verity_root_options=\"restart-on-corruption,frobnicate\": option \"frobnicate\": unknown verity option",
        ),
        (
            "verity data without roothash",
            "systemd.verity_root_data=/dev/vda2".into(),
            "systemd.verity_root_data=\"/dev/vda2\": needs roothash= to say which verity root it belongs to",
        ),
        (
            "verity data devnum",
            format!("roothash={ROOT_HASH} systemd.verity_root_data=8:2"),
            "systemd.verity_root_data=\"8:2\": expected /dev/<name>, PARTUUID=<uuid>, PARTLABEL=<name>, LABEL=<label> or UUID=<uuid>",
        ),
        (
            "two verity sources",
            format!("roothash={ROOT_HASH} dm-mod.create=\"root,,,ro,0 8 verity x\""),
            "roothash=\"7d5c1b3f0e2a4968b7c6d5e4f3a2b1c0aa55aa55aa55aa55d1e2f3a4b5c6d7e8\": conflicts with the verity device \"root\" in dm-mod.create=; use one of them",
        ),
        (
            "dm flags",
            "dm-mod.create=\"root,,,rx,0 8 linear 8:1 0\"".into(),
            "dm-mod.create=\"root,,,rx,0 8 linear 8:1 0\": device 1: flags \"rx\" must be ro or rw",
        ),
        (
            "dm target",
            "dm-mod.create=\"root,,,ro,0 8 zero x\"".into(),
            "dm-mod.create=\"root,,,ro,0 8 zero x\": device 1 target 1: type \"zero\" is not allowed by dm-init (allowed: crypt, delay, linear, snapshot-origin, striped, verity)",
        ),
        (
            "dm missing value",
            "dm-mod.create".into(),
            "dm-mod.create: expects a value (dm-mod.create=...)",
        ),
        (
            "dm waitfor",
            "dm-mod.waitfor=LABEL=x".into(),
            "dm-mod.waitfor=\"LABEL=x\": expected /dev/<name>, PARTUUID=<uuid>[/PARTNROFF=<n>], PARTLABEL=<name>, <major>:<minor> or a hex device number",
        ),
    ];
    for (name, line, expected) in cases {
        let rejected = match parse(&line) {
            Ok(plan) => panic!("case {name}: accepted {line:?} as {plan:#?}"),
            Err(rejected) => rejected,
        };
        assert_eq!(rejected.errors.len(), 1, "case {name}: {rejected}");
        assert_eq!(rejected.to_string(), expected, "case {name}");
    }
}

#[test]
fn rejected_keeps_the_valid_failure_policy() {
    let rejected = parse("liftoff.log=loud liftoff.on_failure=poweroff").unwrap_err();
    let message = rejected.to_string();
    assert!(message.contains("liftoff.log"), "{message}");
    assert!(message.contains("\"loud\""), "{message}");
    assert_eq!(rejected.failure.action, FailureAction::Poweroff);
    assert_eq!(rejected.log, LogLevel::Info);
}

#[test]
fn rejected_lists_every_error_one_per_line() {
    let rejected = parse(
        "liftoff.log=debug liftoff.on_failure=explode liftoff.failure_delay=1min root=nope liftoff.log=loud selinux=2",
    )
    .unwrap_err();
    assert_eq!(rejected.errors.len(), 4);
    assert_eq!(rejected.to_string().lines().count(), 4);
    // The last *valid* log level and the valid delay survive; the bad
    // on_failure leaves the default action.
    assert_eq!(rejected.log, LogLevel::Debug);
    assert_eq!(
        rejected.failure,
        FailurePolicy {
            action: FailureAction::Reboot,
            delay: Duration::from_secs(60)
        }
    );
    let as_error: &dyn std::error::Error = &rejected;
    assert!(
        as_error
            .to_string()
            .starts_with("liftoff.on_failure=\"explode\"")
    );
}

#[test]
fn shadowed_bad_value_is_still_an_error() {
    let rejected = parse("liftoff.log=loud liftoff.log=warn").unwrap_err();
    assert_eq!(rejected.errors.len(), 1);
    assert_eq!(rejected.log, LogLevel::Warn);
}

#[test]
fn json_is_stable_and_readable() {
    let plan = parse(&format!(
        "root=PARTUUID={BOTTLEROCKET_UUID}/PARTNROFF=1 roothash={ROOT_HASH} rootwait=5 liftoff.failure_delay=1500ms"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["root"],
        serde_json::json!({"kind": "partuuid", "uuid": BOTTLEROCKET_UUID, "partnroff": 1})
    );
    assert_eq!(json["root_wait"], serde_json::json!({"timeout": "5s"}));
    assert_eq!(
        json["failure"],
        serde_json::json!({"action": "reboot", "delay": "1500ms"})
    );
    assert_eq!(json["device_timeout"], "30s");
    assert_eq!(json["log"], "info");
    assert_eq!(json["verity"]["source"], "root_hash");
    assert_eq!(json["verity"]["root_hash"], ROOT_HASH);
    assert_eq!(
        json["verity"]["data"]["uuid"],
        "7d5c1b3f-0e2a-4968-b7c6-d5e4f3a2b1c0"
    );
    // Field order is declaration order (serde_json::Value would sort it).
    let text = serde_json::to_string(&plan).unwrap();
    let mut keys: Vec<(usize, &str)> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.as_str()))
        .collect();
    keys.sort_unstable();
    let keys: Vec<&str> = keys.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        keys,
        [
            "root",
            "root_fstype",
            "root_flags",
            "read_only",
            "root_wait",
            "init",
            "selinux",
            "enforcing",
            "verity",
            "dm_create",
            "dm_waitfor",
            "modules",
            "device_timeout",
            "failure",
            "verity_on_corruption",
            "log",
            "boot_read_ahead_kb",
            "init_args",
            "unknown"
        ]
    );
    assert!(
        serde_json::to_string_pretty(&plan)
            .unwrap()
            .contains("\"kind\": \"partuuid\"")
    );
}

#[test]
fn non_utf8_bytes_are_split_then_decoded() {
    let plan = parse_bytes(b"x=\xff\xfe root=/dev/vda1").unwrap();
    assert_eq!(plan.unknown, vec![unknown("x", Some("\u{fffd}\u{fffd}"))]);
    assert_eq!(
        plan.root,
        Some(RootDevice::Path {
            path: "/dev/vda1".into()
        })
    );
}

// ---- property oracles ----

fn param_strategy() -> impl Strategy<Value = String> {
    // Includes spaces, tabs, `-`, and `à` (whose UTF-8 holds the kernel's
    // 0xA0 "space") so quoting is exercised; never `=` or `"`.
    "[a-z0-9_.\\- \tà]{1,10}".prop_filter("not the separator", |p| p != "--")
}

fn value_strategy() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z0-9 =,:/._\t-]{0,12}")
}

/// Render `param[=value]` in one of the three quotings the kernel reads back
/// the same way: bare, value-quoted (`k="v"`) and whole-word (`"k=v"`).
fn render(param: &str, value: Option<&str>, style: u8) -> String {
    let spaced = |s: &str| s.bytes().any(tokenize::is_kernel_space);
    match (style % 3, value) {
        (1, Some(v)) if !spaced(param) => format!("{param}=\"{v}\""),
        (2, _) => match value {
            Some(v) => format!("\"{param}={v}\""),
            None => format!("\"{param}\""),
        },
        _ => quote(param, value).unwrap(),
    }
}

proptest! {
    #[test]
    fn tokenizer_round_trips(
        words in proptest::collection::vec((param_strategy(), value_strategy(), any::<u8>()), 0..8),
        init in proptest::collection::vec(("[a-z]{1,6}", value_strategy(), any::<u8>()), 0..4),
        separators in proptest::collection::vec(prop_oneof![Just(" "), Just("\t"), Just("  "), Just("\n")], 12),
    ) {
        let mut line = String::new();
        let mut sep = separators.iter().cycle();
        for (param, value, style) in &words {
            line.push_str(&render(param, value.as_deref(), *style));
            line.push_str(sep.next().unwrap());
        }
        if !init.is_empty() {
            line.push_str("--");
            for (param, value, style) in &init {
                line.push_str(sep.next().unwrap());
                line.push_str(&render(param, value.as_deref(), *style));
            }
        }
        let split = split_args(line.as_bytes());
        let got: Vec<(String, Option<String>)> = split
            .params
            .iter()
            .map(|a| (a.param.to_string(), a.value.as_ref().map(ToString::to_string)))
            .collect();
        let want: Vec<(String, Option<String>)> =
            words.iter().map(|(p, v, _)| (p.clone(), v.clone())).collect();
        prop_assert_eq!(got, want, "line {:?}", line);
        let got_init: Vec<String> = split.init_args.iter().map(tokenize::Arg::to_init_arg).collect();
        let want_init: Vec<String> = init
            .iter()
            .map(|(p, v, _)| v.as_ref().map_or_else(|| p.clone(), |v| format!("{p}={v}")))
            .collect();
        prop_assert_eq!(got_init, want_init, "line {:?}", line);
    }

    #[test]
    fn typed_keys_round_trip(
        timeout_ms in 1_u64..10_000_000,
        delay_s in 0_u64..100_000,
        modules in proptest::collection::vec("[a-z][a-z0-9_-]{0,20}", 1..6),
        log in prop_oneof![Just(LogLevel::Error), Just(LogLevel::Warn), Just(LogLevel::Info), Just(LogLevel::Debug), Just(LogLevel::Trace)],
        action in prop_oneof![Just(FailureAction::Reboot), Just(FailureAction::Poweroff), Just(FailureAction::Halt)],
        uuid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        partnroff in proptest::option::of(-64_i32..64),
        extra in proptest::collection::vec(("x\\.[a-z_]{1,8}", value_strategy()), 0..4),
    ) {
        let timeout = Duration::from_millis(timeout_ms);
        let delay = Duration::from_secs(delay_s);
        let level = serde_json::to_value(log).unwrap();
        let act = serde_json::to_value(action).unwrap();
        let root = RootDevice::PartUuid { uuid: uuid.clone(), partnroff };
        let mut line = format!(
            "root={root} liftoff.device_timeout={} liftoff.failure_delay={}s liftoff.modules={} liftoff.log={} liftoff.on_failure={}",
            liftoff::format_duration(timeout),
            delay_s,
            modules.join(","),
            level.as_str().unwrap(),
            act.as_str().unwrap(),
        );
        for (key, value) in &extra {
            line.push(' ');
            line.push_str(&quote(key, value.as_deref()).unwrap());
        }
        let plan = parse(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(plan.device_timeout, timeout);
        prop_assert_eq!(plan.failure, FailurePolicy { action, delay });
        prop_assert_eq!(plan.log, log);
        prop_assert_eq!(plan.root, Some(root));
        let mut unique: Vec<String> = Vec::new();
        for m in &modules {
            if !unique.contains(m) {
                unique.push(m.clone());
            }
        }
        prop_assert_eq!(plan.modules, unique);
        let want: Vec<Param> = extra.iter().map(|(k, v)| unknown(k, v.as_deref())).collect();
        prop_assert_eq!(plan.unknown, want);
    }

    #[test]
    fn parse_never_panics_and_json_always_works(line in "\\PC{0,200}") {
        if let Ok(plan) = parse(&line) {
            prop_assert!(serde_json::to_string(&plan).is_ok());
        }
    }
}
