//! Tests of unit file parsing and loading: named, table-driven cases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod errors;

use super::*;
use crate::unit::{Boot, Cgroup, KillMode, Kind, Limit, Output, Process, Restart, SelinuxLabel};

const PATH: &str = "/etc/liftoff/units/web.toml";
/// The smallest valid unit file.
const MIN: &str = "exec = [\"/usr/bin/web\"]\n";

fn parse_text(text: &str) -> Result<Unit, FileError> {
    parse(Path::new(PATH), text)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn limit(soft: Option<u64>, hard: Option<u64>) -> Limit {
    Limit { soft, hard }
}

#[test]
fn defaults_of_a_simple_unit() {
    let unit = parse_text(MIN).unwrap();
    let expected = Unit {
        name: "web".to_owned(),
        source: PathBuf::from(PATH),
        description: None,
        kind: Kind::Simple,
        boot: Boot::Wait,
        requires: vec![],
        wants: vec![],
        after: vec![],
        before: vec![],
        restart: Restart::OnFailure,
        restart_delay: ms(100),
        restart_delay_max: secs(30),
        start_limit_burst: 5,
        start_limit_interval: secs(10),
        critical: false,
        ready_timeout: None,
        watchdog: None,
        stop_signal: libc::SIGTERM,
        stop_timeout: secs(10),
        kill_mode: KillMode::Group,
        process: Process {
            argv: vec!["/usr/bin/web".to_owned()],
            environment: BTreeMap::new(),
            working_directory: None,
            user: None,
            group: None,
            supplementary_groups: vec![],
            capabilities: None,
            ambient_capabilities: vec![],
            no_new_privileges: false,
            limits: BTreeMap::new(),
            oom_score_adj: None,
            cgroup: Cgroup::default(),
            stdout: Output::Kmsg,
            stderr: Output::Kmsg,
            selinux: None,
        },
    };
    assert_eq!(unit, expected);
}

#[test]
fn defaults_that_depend_on_the_type() {
    type Check = fn(&Unit) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        ("simple: on-failure", "", |u| {
            u.restart == Restart::OnFailure
        }),
        ("simple: no ready timeout", "", |u| {
            u.ready_timeout.is_none()
        }),
        ("oneshot: never restarts", "type = \"oneshot\"", |u| {
            u.restart == Restart::Never
        }),
        ("oneshot: ready timeout 90s", "type = \"oneshot\"", |u| {
            u.ready_timeout == Some(secs(90))
        }),
        ("notify: on-failure", "type = \"notify\"", |u| {
            u.restart == Restart::OnFailure
        }),
        ("notify: ready timeout 90s", "type = \"notify\"", |u| {
            u.ready_timeout == Some(secs(90))
        }),
        ("notify: no watchdog", "type = \"notify\"", |u| {
            u.watchdog.is_none()
        }),
    ];
    for (name, extra, check) in cases {
        let unit = parse_text(&format!("{MIN}{extra}\n")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(check(&unit), "{name}: {unit:#?}");
    }
}

#[test]
fn every_field() {
    type Check = fn(&Unit) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        ("description", "description = \"a web server\"", |u| {
            u.description.as_deref() == Some("a web server")
        }),
        ("type simple", "type = \"simple\"", |u| {
            u.kind == Kind::Simple
        }),
        ("type oneshot", "type = \"oneshot\"", |u| {
            u.kind == Kind::Oneshot
        }),
        ("type notify", "type = \"notify\"", |u| {
            u.kind == Kind::Notify
        }),
        ("boot wait", "boot = \"wait\"", |u| u.boot == Boot::Wait),
        ("boot start", "boot = \"start\"", |u| u.boot == Boot::Start),
        ("boot manual", "boot = \"manual\"", |u| {
            u.boot == Boot::Manual
        }),
        ("requires", "requires = [\"db\", \"cache@1\"]", |u| {
            u.requires == ["db", "cache@1"]
        }),
        ("wants", "wants = [\"log_shipper\"]", |u| {
            u.wants == ["log_shipper"]
        }),
        ("after", "after = [\"net.online\"]", |u| {
            u.after == ["net.online"]
        }),
        ("before", "before = [\"ui\"]", |u| u.before == ["ui"]),
        ("restart never", "restart = \"never\"", |u| {
            u.restart == Restart::Never
        }),
        (
            "restart on-failure",
            "type = \"oneshot\"\nrestart = \"on-failure\"",
            |u| u.restart == Restart::OnFailure,
        ),
        ("restart always", "restart = \"always\"", |u| {
            u.restart == Restart::Always
        }),
        ("restart_delay", "restart_delay = \"250ms\"", |u| {
            u.restart_delay == ms(250)
        }),
        ("restart_delay zero", "restart_delay = \"0s\"", |u| {
            u.restart_delay.is_zero()
        }),
        ("restart_delay_max", "restart_delay_max = \"2min\"", |u| {
            u.restart_delay_max == secs(120)
        }),
        (
            "restart_delay equal to max",
            "restart_delay = \"1s\"\nrestart_delay_max = \"1s\"",
            |u| u.restart_delay == u.restart_delay_max,
        ),
        ("start_limit_burst", "start_limit_burst = 1", |u| {
            u.start_limit_burst == 1
        }),
        (
            "start_limit_interval zero turns the limit off",
            "start_limit_interval = \"0s\"",
            |u| u.start_limit_interval.is_zero(),
        ),
        (
            "start_limit_interval",
            "start_limit_interval = \"1h 30min\"",
            |u| u.start_limit_interval == secs(5400),
        ),
        ("critical", "critical = true", |u| u.critical),
        (
            "ready_timeout",
            "type = \"notify\"\nready_timeout = \"5s\"",
            |u| u.ready_timeout == Some(secs(5)),
        ),
        (
            "ready_timeout infinity",
            "type = \"oneshot\"\nready_timeout = \"infinity\"",
            |u| u.ready_timeout.is_none(),
        ),
        ("watchdog", "type = \"notify\"\nwatchdog = \"10s\"", |u| {
            u.watchdog == Some(secs(10))
        }),
        ("stop_signal full name", "stop_signal = \"SIGINT\"", |u| {
            u.stop_signal == libc::SIGINT
        }),
        (
            "stop_signal short lower-case",
            "stop_signal = \"quit\"",
            |u| u.stop_signal == libc::SIGQUIT,
        ),
        ("stop_signal number", "stop_signal = 1", |u| {
            u.stop_signal == libc::SIGHUP
        }),
        ("stop_signal realtime number", "stop_signal = 40", |u| {
            u.stop_signal == 40
        }),
        ("stop_timeout", "stop_timeout = \"90s\"", |u| {
            u.stop_timeout == secs(90)
        }),
        ("kill_mode group", "kill_mode = \"group\"", |u| {
            u.kill_mode == KillMode::Group
        }),
        ("kill_mode process", "kill_mode = \"process\"", |u| {
            u.kill_mode == KillMode::Process
        }),
        ("exec with arguments", "", |u| {
            u.process.argv == ["/usr/bin/web"]
        }),
        (
            "environment",
            "environment = { LANG = \"C\", EMPTY = \"\", PATH = \"/opt/bin\" }",
            |u| {
                let env = &u.process.environment;
                env.len() == 3
                    && env["LANG"] == "C"
                    && env["EMPTY"].is_empty()
                    && env["PATH"] == "/opt/bin"
            },
        ),
        (
            "working_directory",
            "working_directory = \"/var/lib/web\"",
            |u| u.process.working_directory.as_deref() == Some(Path::new("/var/lib/web")),
        ),
        ("user, group", "user = \"web\"\ngroup = \"1000\"", |u| {
            u.process.user.as_deref() == Some("web") && u.process.group.as_deref() == Some("1000")
        }),
        (
            "supplementary_groups",
            "supplementary_groups = [\"audio\", \"44\"]",
            |u| u.process.supplementary_groups == ["audio", "44"],
        ),
        (
            "capabilities normalised",
            "capabilities = [\"net_bind_service\", \"CAP_NET_ADMIN\", \"Sys_Admin\"]",
            |u| {
                u.process.capabilities.as_deref()
                    == Some(
                        &[
                            "CAP_NET_BIND_SERVICE".to_owned(),
                            "CAP_NET_ADMIN".to_owned(),
                            "CAP_SYS_ADMIN".to_owned(),
                        ][..],
                    )
            },
        ),
        ("capabilities empty drops all", "capabilities = []", |u| {
            u.process.capabilities.as_deref() == Some(&[][..])
        }),
        (
            "ambient within bounding",
            "capabilities = [\"CAP_NET_BIND_SERVICE\"]\nambient_capabilities = [\"net_bind_service\"]",
            |u| u.process.ambient_capabilities == ["CAP_NET_BIND_SERVICE"],
        ),
        (
            "ambient without bounding",
            "ambient_capabilities = [\"CAP_NET_RAW\"]",
            |u| {
                u.process.ambient_capabilities == ["CAP_NET_RAW"]
                    && u.process.capabilities.is_none()
            },
        ),
        ("no_new_privileges", "no_new_privileges = true", |u| {
            u.process.no_new_privileges
        }),
        ("oom_score_adj", "oom_score_adj = -1000", |u| {
            u.process.oom_score_adj == Some(-1000)
        }),
        (
            "stdout console, stderr null",
            "stdout = \"console\"\nstderr = \"null\"",
            |u| u.process.stdout == Output::Console && u.process.stderr == Output::Null,
        ),
        ("stdout kmsg", "stdout = \"kmsg\"", |u| {
            u.process.stdout == Output::Kmsg
        }),
        (
            "stderr file",
            "stderr = { file = \"/var/log/web.log\" }",
            |u| u.process.stderr == Output::File(PathBuf::from("/var/log/web.log")),
        ),
        (
            "limits",
            "[limits]\nnofile = 1048576\nnproc = [4096, 8192]\ncore = \"infinity\"\nmemlock = [65536, \"infinity\"]",
            |u| {
                let l = &u.process.limits;
                l.len() == 4
                    && l["nofile"] == limit(Some(1_048_576), Some(1_048_576))
                    && l["nproc"] == limit(Some(4096), Some(8192))
                    && l["core"] == limit(None, None)
                    && l["memlock"] == limit(Some(65536), None)
            },
        ),
        (
            "cgroup",
            "[cgroup]\nmemory_max = \"512M\"\npids_max = 100\ndelegate = true",
            |u| {
                u.process.cgroup
                    == Cgroup {
                        memory_max: Some(512 << 20),
                        pids_max: Some(100),
                        delegate: true,
                    }
            },
        ),
        (
            "cgroup bytes and max",
            "[cgroup]\nmemory_max = 4096\npids_max = \"max\"",
            |u| {
                u.process.cgroup
                    == Cgroup {
                        memory_max: Some(4096),
                        pids_max: None,
                        delegate: false,
                    }
            },
        ),
        ("cgroup memory max", "[cgroup]\nmemory_max = \"max\"", |u| {
            u.process.cgroup.memory_max.is_none()
        }),
        ("cgroup sizes", "[cgroup]\nmemory_max = \"2k\"", |u| {
            u.process.cgroup.memory_max == Some(2048)
        }),
        ("cgroup tera", "[cgroup]\nmemory_max = \"1T\"", |u| {
            u.process.cgroup.memory_max == Some(1 << 40)
        }),
        (
            "selinux_context",
            "selinux_context = \"system_u:system_r:web_t:s0\"",
            |u| {
                u.process.selinux
                    == Some(SelinuxLabel::Context(
                        "system_u:system_r:web_t:s0".to_owned(),
                    ))
            },
        ),
        (
            "selinux_context without MLS",
            "selinux_context = \"system_u:system_r:web_t\"",
            |u| {
                u.process.selinux
                    == Some(SelinuxLabel::Context("system_u:system_r:web_t".to_owned()))
            },
        ),
        (
            "selinux_context with a range",
            "selinux_context = \"system_u:system_r:web_t:s0-s0:c0.c1023\"",
            |u| {
                u.process.selinux
                    == Some(SelinuxLabel::Context(
                        "system_u:system_r:web_t:s0-s0:c0.c1023".to_owned(),
                    ))
            },
        ),
        ("selinux_type", "selinux_type = \"web_t\"", |u| {
            u.process.selinux == Some(SelinuxLabel::Type("web_t".to_owned()))
        }),
        (
            "selinux_type from a CIL block",
            "selinux_type = \"container.process\"",
            |u| u.process.selinux == Some(SelinuxLabel::Type("container.process".to_owned())),
        ),
    ];
    for (name, extra, check) in cases {
        let unit = parse_text(&format!("{MIN}{extra}\n")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(check(&unit), "{name}: {unit:#?}");
    }
}

#[test]
fn exec_keeps_every_argument() {
    let unit = parse_text("exec = [\"/usr/bin/web\", \"--port\", \"80\", \"\"]\n").unwrap();
    assert_eq!(unit.process.argv, ["/usr/bin/web", "--port", "80", ""]);
}

#[test]
fn names() {
    let cases: &[(&str, bool)] = &[
        ("web", true),
        ("getty@tty1", true),
        ("a-b_c.d", true),
        ("9", true),
        ("", false),
        (".hidden", false),
        ("..", false),
        ("a/b", false),
        ("a b", false),
        ("é", false),
        (&"x".repeat(NAME_MAX), true),
        (&"x".repeat(NAME_MAX + 1), false),
    ];
    for (name, valid) in cases {
        assert_eq!(is_valid_name(name), *valid, "{name:?}");
    }
}

#[test]
fn error_display() {
    let text = "description = \"x\"\nexec = [\"/a\"]\n\n\n\n\nrestart = \"sometimes\"\n";
    let error = parse_text(text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/liftoff/units/web.toml:7: key \"restart\": \"sometimes\" is not one of never, on-failure, always"
    );
    assert!(matches!(error.kind(), FileErrorKind::NotOneOf { .. }));

    let error = parse_text("").unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/liftoff/units/web.toml: key \"exec\": is required"
    );
}

#[test]
fn error_source_is_not_repeated() {
    let error = parse_text("exec = [\"/a\"]\nstop_timeout = \"10 parsecs\"\n").unwrap_err();
    let source = std::error::Error::source(&error).unwrap();
    assert!(
        !error.to_string().contains(&source.to_string()),
        "{error} / {source}"
    );
}

#[test]
fn bad_file_names() {
    let cases: &[(&str, &str)] = &[
        ("hidden", "/etc/liftoff/units/.web.toml"),
        ("space", "/etc/liftoff/units/my web.toml"),
        ("no file name", "/"),
        ("dot dot", "/etc/liftoff/units/..toml"),
    ];
    for (name, path) in cases {
        let error = parse(Path::new(path), MIN).unwrap_err();
        assert!(
            matches!(error.kind(), FileErrorKind::BadName(_)),
            "{name}: {error}"
        );
        assert_eq!(error.name(), None, "{name}");
        assert_eq!(error.key(), None, "{name}");
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn load_reads_dirs_in_order_and_reports_duplicates() {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    let run = root.path().join("run");
    std::fs::create_dir(&etc).unwrap();
    std::fs::create_dir(&run).unwrap();
    write(&etc, "web.toml", "exec = [\"/usr/bin/web\"]\n");
    write(&etc, "db.toml", "exec = [\"/usr/bin/db\"]\n");
    write(&etc, "broken.toml", "exec = [\"/a\"]\nbogus = 1\n");
    write(&etc, "README.md", "not a unit");
    write(&run, "web.toml", "exec = [\"/tmp/web\"]\n");
    write(&run, "broken.toml", "exec = [\"/a\"]\n");
    write(&run, "gen.toml", "exec = [\"/usr/bin/gen\"]\n");
    let missing = root.path().join("missing");

    let loaded = load(&[etc.clone(), run.clone(), missing]);

    let names: Vec<&str> = loaded.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["db", "web", "gen"]);
    assert_eq!(
        loaded.units[1].process.argv,
        ["/usr/bin/web"],
        "the first definition stays"
    );
    assert_eq!(loaded.units[1].source, etc.join("web.toml"));

    let messages: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(
        messages[0],
        format!(
            "{}:2: key \"bogus\": unknown key",
            etc.join("broken.toml").display()
        )
    );
    assert_eq!(
        messages[1],
        format!(
            "{}: unit \"broken\" is already defined by {}",
            run.join("broken.toml").display(),
            etc.join("broken.toml").display()
        ),
        "a broken first definition still keeps its name"
    );
    assert_eq!(
        messages[2],
        format!(
            "{}: unit \"web\" is already defined by {}",
            run.join("web.toml").display(),
            etc.join("web.toml").display()
        )
    );
    assert_eq!(loaded.unloadable(), ["broken"]);
}

#[test]
fn load_reports_an_unreadable_directory_and_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let not_a_dir = root.path().join("units");
    write(root.path(), "units", "a file where a directory should be");
    let good = root.path().join("good");
    std::fs::create_dir(&good).unwrap();
    write(&good, "a.toml", MIN);

    let loaded = load(&[not_a_dir.clone(), good]);

    assert_eq!(loaded.units.len(), 1);
    assert_eq!(loaded.errors.len(), 1);
    let error = &loaded.errors[0];
    assert!(matches!(error.kind(), FileErrorKind::ReadDir(_)), "{error}");
    assert_eq!(error.path(), not_a_dir);
    assert_eq!(error.name(), None);
    assert!(loaded.unloadable().is_empty());
}

#[test]
fn load_reports_an_unreadable_file() {
    let root = tempfile::tempdir().unwrap();
    // A directory named like a unit file cannot be read as one.
    std::fs::create_dir(root.path().join("odd.toml")).unwrap();
    write(root.path(), "bad-utf8.toml", "");
    std::fs::write(root.path().join("bad-utf8.toml"), b"exec = [\"/\xff\"]\n").unwrap();

    let loaded = load(&[root.path().to_path_buf()]);

    assert!(loaded.units.is_empty());
    let kinds: Vec<(&str, bool)> = loaded
        .errors
        .iter()
        .map(|e| {
            (
                e.name().unwrap_or(""),
                matches!(e.kind(), FileErrorKind::ReadFile(_)),
            )
        })
        .collect();
    assert_eq!(kinds, [("bad-utf8", true), ("odd", true)]);
    assert_eq!(loaded.unloadable(), ["bad-utf8", "odd"]);
}

#[test]
fn empty_and_missing_dirs_load_nothing() {
    let root = tempfile::tempdir().unwrap();
    let loaded = load(&[root.path().to_path_buf(), root.path().join("nope")]);
    assert!(loaded.units.is_empty());
    assert!(loaded.errors.is_empty());
}

/// Every TOML example in docs/units.md parses (with an `exec` added to the
/// fragments), and the full example means what the page says.
#[test]
fn docs_examples_parse() {
    let page = include_str!("../../../docs/units.md");
    let blocks: Vec<&str> = page
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert!(blocks.len() >= 2, "{blocks:?}");
    for block in &blocks {
        let text = if block.contains("exec = ") {
            block.to_string()
        } else {
            format!("{MIN}{block}")
        };
        let path = Path::new("/etc/liftoff/units/containerd.toml");
        parse(path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
    let example = parse(
        Path::new("/etc/liftoff/units/containerd.toml"),
        blocks.last().unwrap(),
    )
    .unwrap();
    assert_eq!(example.kind, Kind::Notify);
    assert_eq!(example.kill_mode, KillMode::Process);
    assert!(example.critical && example.process.cgroup.delegate);
    assert_eq!(
        example.process.limits["nofile"],
        limit(Some(1_048_576), Some(1_048_576))
    );
}
