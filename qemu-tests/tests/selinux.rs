//! SELinux: the repository's policy (`selinux/policy`) compiles and
//! states its wall, and liftoff loads it at the start of stage 2, enforces
//! it and re-executes itself into `init_t`.
//!
//! The host tests compile the policy with `secilc` (no root, no QEMU).
//! The guests are [`GuestRoot::selinux`] roots: the compiled policy at
//! `/etc/selinux/liftoff/policy/policy.33`, the erofs root labelled from
//! `selinux/file_contexts`, `security=selinux` on the kernel command
//! line. A oneshot unit prints `PROBE` lines to the kernel log.
//!
//! | test | guest | asserts |
//! |------|-------|---------|
//! | [`policy_compiles`] | host | secilc builds `selinux/policy` |
//! | [`a_neverallow_breach_is_refused`] | host | a copy that lets `container_t` read `secret_t` files is refused, naming the neverallow |
//! | [`file_contexts_name_policy_types`] | host | every type `selinux/file_contexts` uses is declared |
//! | [`boots_enforcing_with_pid1_in_init_t`] | default | `enforce` is 1, PID 1 and the unit run in `init_t`, the boot record has `policy-load` and `reexec`, no AVC denial; then with `enforcing=0`: refused, still 1 |
//! | [`enforcing_zero_is_honoured_when_the_image_allows_it`] | `allow_permissive = true` | with `enforcing=0`, `enforce` is 0 |
//! | [`a_container_domain_cannot_read_a_secret`] | units `container` (`selinux_type = "container_t"`) and `host` (no type) read a `secret_t` file on the root and one on a tmpfs volume that `mounts.toml` labels `secret_t`; `bogus` declares `nope_t` | `container` runs in `container_t` and gets EACCES with AVC denials (the volume's top folder is `secret_t`); `host` runs in `init_t` and reads both; `bogus` fails, naming the context and EINVAL; `/run` is labelled from its entry |
//! | [`a_broken_policy_runs_the_failure_action`] | policy.33 truncated | the load fails, naming the file; the failure action runs; the unit never runs |

use std::fs;
use std::time::Duration;

use qemu_tests::guest_root::{Guest, GuestRoot, after, expect, expect_exit, refute};
use qemu_tests::selinux::{
    self, GUEST_POLICY, GUEST_SETTINGS, PolicyError, compile_policy, policy_dir,
};

/// Kernel start to the probe's line: stage 1, the policy load, the
/// re-exec; the margin is for TCG on a loaded machine.
const BOOT: Duration = Duration::from_secs(240);
/// From the failure action to QEMU's exit.
const SHUTDOWN: Duration = Duration::from_secs(90);
/// The limit on one boot.
const RUN: Duration = Duration::from_secs(400);

/// Prints SELinux's state as PID 1's units see it, and the boot stamps
/// liftoff logged.
const PROBE_SH: &str = r#"B=/bin/busybox
probe() { echo "PROBE $*" > /dev/kmsg; }
probe "enforce=$($B cat /sys/fs/selinux/enforce)"
probe "pid1=$($B tr -d '\0' < /proc/1/attr/current)"
probe "unit=$($B tr -d '\0' < /proc/self/attr/current)"
probe "done"
"#;

const PROBE_UNIT: &str = r#"exec = ["/bin/busybox", "sh", "/etc/probe/selinux.sh"]
type = "oneshot"
stdout = "console"
stderr = "console"
"#;

/// A default SELinux guest with the probe unit.
fn guest() -> GuestRoot {
    GuestRoot::new()
        .run_timeout(RUN)
        .selinux()
        .script("/etc/probe/selinux.sh", PROBE_SH)
        .unit("probe", PROBE_UNIT)
}

fn probe<'a>(console: &'a str, key: &str) -> &'a str {
    after(console, &format!("PROBE {key}="))
        .unwrap_or_else(|| panic!("no PROBE {key}= line:\n{console}"))
}

fn build(root: GuestRoot) -> Guest {
    root.build().expect("build the guest")
}

// ---------------------------------------------------------------------
// Host: the policy itself.

#[test]
fn policy_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy.33");
    compile_policy(&policy_dir(), &out).unwrap();
    assert!(fs::metadata(&out).unwrap().len() > 1000);
}

#[test]
fn a_neverallow_breach_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("policy");
    fs::create_dir(&copy).unwrap();
    for file in selinux::cil_files(&policy_dir()).unwrap() {
        fs::copy(&file, copy.join(file.file_name().unwrap())).unwrap();
    }
    fs::write(
        copy.join("95-breach.cil"),
        "(allow container_t secret_t (file (read)))\n",
    )
    .unwrap();
    let err = compile_policy(&copy, &dir.path().join("policy.33")).unwrap_err();
    match err {
        PolicyError::Refused { stderr, .. } => {
            assert!(stderr.contains("neverallow"), "{stderr}");
            assert!(stderr.contains("95-breach.cil"), "{stderr}");
        }
        other => panic!("expected secilc to refuse the policy, got {other:?}"),
    }
}

#[test]
fn file_contexts_name_policy_types() {
    let contexts = fs::read_to_string(selinux::file_contexts()).unwrap();
    let mut cil = String::new();
    for file in selinux::cil_files(&policy_dir()).unwrap() {
        cil.push_str(&fs::read_to_string(file).unwrap());
    }
    let types = selinux::file_context_types(&contexts);
    assert!(types.contains(&"os_t"), "{types:?}");
    for ty in types {
        assert!(
            cil.contains(&format!("(type {ty})")),
            "{ty} is not declared"
        );
    }
}

// ---------------------------------------------------------------------
// QEMU: the load, the domain, the enforcing switch.

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn boots_enforcing_with_pid1_in_init_t() {
    let guest = build(guest());

    // 1. A plain boot: enforcing, PID 1 re-executed into init_t.
    let vm = guest.boot("", "enforcing").expect("start QEMU");
    expect(&vm, "PROBE done", BOOT);
    let console = vm.console();
    assert_eq!(probe(&console, "enforce"), "1", "{console}");
    assert_eq!(
        probe(&console, "pid1"),
        "system_u:system_r:init_t",
        "{console}"
    );
    assert_eq!(
        probe(&console, "unit"),
        "system_u:system_r:init_t",
        "{console}"
    );
    // Stage 2's stamps (stage 1 logs its own line first), in order.
    let stamps = console
        .lines()
        .rfind(|l| l.contains("boot stamps:") && l.contains(" units "))
        .unwrap_or_else(|| panic!("no stage 2 boot stamps:\n{console}"));
    let at = |phase: &str| {
        stamps
            .find(&format!(" {phase} "))
            .unwrap_or_else(|| panic!("no {phase} stamp in {stamps}\n{console}"))
    };
    assert!(
        at("cmdline") < at("policy-load") && at("policy-load") < at("reexec"),
        "stamps out of order: {stamps}"
    );
    assert!(at("reexec") < at("units"), "stamps out of order: {stamps}");
    refute(
        &console,
        &[
            "avc:  denied",
            "failure action",
            "Kernel panic",
            "not defined in policy",
        ],
    );
    drop(vm);

    // 2. enforcing=0 on a production image: refused, still enforcing.
    let vm = guest.boot("enforcing=0", "refused").expect("start QEMU");
    expect(&vm, "PROBE done", BOOT);
    let console = vm.console();
    assert!(console.contains("enforcing=0 refused"), "{console}");
    assert_eq!(probe(&console, "enforce"), "1", "{console}");
    refute(&console, &["failure action", "Kernel panic"]);
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn enforcing_zero_is_honoured_when_the_image_allows_it() {
    let guest = build(guest().file(GUEST_SETTINGS, "allow_permissive = true\n", 0o644));
    let vm = guest.boot("enforcing=0", "permissive").expect("start QEMU");
    expect(&vm, "PROBE done", BOOT);
    let console = vm.console();
    assert_eq!(probe(&console, "enforce"), "0", "{console}");
    assert!(console.contains("SELinux permissive"), "{console}");
    assert_eq!(
        probe(&console, "pid1"),
        "system_u:system_r:init_t",
        "{console}"
    );
    refute(&console, &["enforcing=0 refused", "failure action"]);
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn a_broken_policy_runs_the_failure_action() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.33");
    compile_policy(&policy_dir(), &policy).unwrap();
    let mut bytes = fs::read(&policy).unwrap();
    bytes.truncate(bytes.len() / 2);
    let guest = build(guest().file(GUEST_POLICY, bytes, 0o644));
    let mut vm = guest.boot("", "broken").expect("start QEMU");
    expect(&vm, "failure action", BOOT);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    assert!(
        console.contains("SELinux policy load failed")
            && console.contains("/etc/selinux/liftoff/policy/policy.33"),
        "the failure does not name the policy:\n{console}"
    );
    refute(&console, &["PROBE enforce"]);
}

/// Reads the secret and reports its own domain; `$1` names the unit.
const WALL_SH: &str = r#"B=/bin/busybox
probe() { echo "PROBE $*" > /dev/kmsg; }
probe "$1 domain=$($B tr -d '\0' < /proc/self/attr/current)"
if out=$($B cat /etc/liftoff/secrets/token 2>&1); then
    probe "$1 read=ok $out"
else
    probe "$1 read=denied $out"
fi
if out=$($B cat /secrets/token 2>&1); then
    probe "$1 volume=ok $out"
else
    probe "$1 volume=denied $out"
fi
"#;

/// A tmpfs volume whose top folder mounts.toml labels `secret_t`: liftoff
/// applies the label after the policy load.
const SECRETS_VOLUME: &str = r#"[[volume]]
kind = "tmpfs"
target = "/secrets"
mode = "0755"
context = "system_u:object_r:secret_t"

# /run is liftoff's own tmpfs: an entry only labels it.
[[volume]]
kind = "tmpfs"
target = "/run"
context = "system_u:object_r:run_t"
"#;

/// Declares a domain the policy does not have.
const BOGUS_UNIT: &str = r#"exec = ["/bin/busybox", "true"]
type = "oneshot"
selinux_type = "nope_t"
"#;

/// Puts a token on the secrets volume (in init_t, which may).
const STASH_UNIT: &str = r#"exec = ["/bin/busybox", "sh", "-c", "echo v0lume > /secrets/token"]
type = "oneshot"
stdout = "console"
stderr = "console"
"#;

/// A unit running [`WALL_SH`] as `name`, with `settings`.
fn wall_unit(name: &str, settings: &str) -> String {
    format!(
        "exec = [\"/bin/busybox\", \"sh\", \"/etc/probe/wall.sh\", \"{name}\"]\n\
         type = \"oneshot\"\nstdout = \"console\"\nstderr = \"console\"\n{settings}"
    )
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn a_container_domain_cannot_read_a_secret() {
    let guest = build(
        guest()
            .file("/etc/liftoff/secrets/token", "s3cret\n", 0o644)
            .mounts_toml(SECRETS_VOLUME)
            .unit("stash", STASH_UNIT)
            .script("/etc/probe/wall.sh", WALL_SH)
            .unit(
                "container",
                &wall_unit(
                    "container",
                    "selinux_type = \"container_t\"\nafter = [\"stash\"]\n",
                ),
            )
            .unit("host", &wall_unit("host", "after = [\"stash\"]\n"))
            .unit("bogus", BOGUS_UNIT),
    );
    let vm = guest.boot("", "wall").expect("start QEMU");
    expect(&vm, "PROBE container volume=", BOOT);
    expect(&vm, "PROBE host volume=", BOOT);
    let console = vm.console();
    assert_eq!(
        probe(&console, "container domain"),
        "system_u:system_r:container_t",
        "{console}"
    );
    let container = probe(&console, "container read");
    assert!(
        container.starts_with("denied") && container.contains("Permission denied"),
        "container_t read the secret: {container}\n{console}"
    );
    assert!(
        console.lines().any(|l| l.contains("avc:  denied")
            && l.contains("scontext=system_u:system_r:container_t")
            && l.contains("tcontext=system_u:object_r:secret_t")),
        "no AVC denial for container_t on secret_t:\n{console}"
    );
    assert_eq!(
        probe(&console, "host domain"),
        "system_u:system_r:init_t",
        "{console}"
    );
    assert_eq!(probe(&console, "host read"), "ok s3cret", "{console}");
    // The tmpfs volume took its label from mounts.toml: container_t may
    // not even search its top folder, and the AVC names the tmpfs root
    // with secret_t.
    for label in [
        "labelled /secrets system_u:object_r:secret_t",
        "labelled /run system_u:object_r:run_t",
    ] {
        assert!(console.contains(label), "no {label:?}:\n{console}");
    }
    let container = probe(&console, "container volume");
    assert!(
        container.starts_with("denied") && container.contains("Permission denied"),
        "container_t read the volume's secret: {container}\n{console}"
    );
    assert!(
        console.lines().any(|l| l.contains("avc:  denied")
            && l.contains("dev=\"tmpfs\"")
            && l.contains("scontext=system_u:system_r:container_t")
            && l.contains("tcontext=system_u:object_r:secret_t")),
        "no AVC denial for the volume's token:\n{console}"
    );
    assert_eq!(probe(&console, "host volume"), "ok v0lume", "{console}");
    // A domain the policy does not know: the unit fails to start, and the
    // reason names the context and the kernel's refusal.
    assert!(
        console.lines().any(|l| l.contains("unit bogus: failed")
            && l.contains("SELinux exec context")
            && l.contains("system_u:system_r:nope_t")
            && l.contains("Invalid argument")),
        "no clear failure for a context the policy rejects:\n{console}"
    );
    refute(&console, &["failure action", "Kernel panic"]);
}
