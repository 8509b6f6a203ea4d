//! The error table: every check's message, line and key.

use std::path::Path;

use super::{PATH, parse_text};

/// An error case: name, file text, expected line, key, and a part of the
/// message.
type ErrorCase = (
    &'static str,
    &'static str,
    Option<usize>,
    Option<&'static str>,
    &'static str,
);

#[test]
fn errors() {
    let cases: &[ErrorCase] = &[
        // Syntax, unknown keys, wrong types.
        ("syntax", "exec = [\"/a\"]\nrestart = \n", Some(2), None, ""),
        (
            "duplicate key",
            "exec = [\"/a\"]\n\nexec = [\"/b\"]\n",
            Some(3),
            None,
            "duplicate key",
        ),
        (
            "unknown key",
            "exec = [\"/a\"]\n\nrestrat = \"always\"\n",
            Some(3),
            Some("restrat"),
            "unknown key",
        ),
        (
            "unknown key in cgroup",
            "exec = [\"/a\"]\n[cgroup]\nmemory = 1\n",
            Some(3),
            Some("cgroup.memory"),
            "unknown key",
        ),
        (
            "unknown table",
            "exec = [\"/a\"]\n[service]\n",
            Some(2),
            Some("service"),
            "unknown key",
        ),
        (
            "wrong type: exec",
            "exec = \"/usr/bin/web\"\n",
            Some(1),
            Some("exec"),
            "expected a sequence",
        ),
        (
            "wrong type: exec item",
            "exec = [\"/a\", 80]\n",
            Some(1),
            Some("exec"),
            "expected a string",
        ),
        (
            "wrong type: critical",
            "exec = [\"/a\"]\ncritical = \"yes\"\n",
            Some(2),
            Some("critical"),
            "expected a boolean",
        ),
        (
            "wrong type: burst",
            "exec = [\"/a\"]\nstart_limit_burst = \"5\"\n",
            Some(2),
            Some("start_limit_burst"),
            "expected i64",
        ),
        (
            "wrong type: environment",
            "exec = [\"/a\"]\nenvironment = { PORT = 80 }\n",
            Some(2),
            Some("environment.PORT"),
            "expected a string",
        ),
        (
            "wrong type: cgroup.delegate",
            "exec = [\"/a\"]\n[cgroup]\ndelegate = \"yes\"\n",
            Some(3),
            Some("cgroup.delegate"),
            "expected a boolean",
        ),
        (
            "wrong type: requires",
            "exec = [\"/a\"]\nrequires = \"db\"\n",
            Some(2),
            Some("requires"),
            "expected a sequence",
        ),
        // exec.
        (
            "missing exec",
            "type = \"notify\"\n",
            None,
            Some("exec"),
            "is required",
        ),
        (
            "empty exec",
            "exec = []\n",
            Some(1),
            Some("exec"),
            "must not be empty",
        ),
        (
            "relative exec",
            "\nexec = [\"web\", \"--port\"]\n",
            Some(2),
            Some("exec"),
            "\"web\" is not an absolute path",
        ),
        (
            "nul in exec",
            "exec = [\"/a\", \"x\\u0000y\"]\n",
            Some(1),
            Some("exec"),
            "NUL",
        ),
        // Enumerations.
        (
            "bad type",
            "exec = [\"/a\"]\ntype = \"forking\"\n",
            Some(2),
            Some("type"),
            "\"forking\" is not one of simple, oneshot, notify",
        ),
        (
            "bad boot",
            "exec = [\"/a\"]\nboot = \"yes\"\n",
            Some(2),
            Some("boot"),
            "is not one of wait, start, manual",
        ),
        (
            "bad restart",
            "exec = [\"/a\"]\nrestart = \"sometimes\"\n",
            Some(2),
            Some("restart"),
            "\"sometimes\" is not one of never, on-failure, always",
        ),
        (
            "bad kill_mode",
            "exec = [\"/a\"]\nkill_mode = \"mixed\"\n",
            Some(2),
            Some("kill_mode"),
            "is not one of group, process",
        ),
        (
            "bad stdout",
            "exec = [\"/a\"]\nstdout = \"journal\"\n",
            Some(2),
            Some("stdout"),
            "\"journal\" is not one of kmsg, console, null",
        ),
        (
            "bad stderr type",
            "exec = [\"/a\"]\nstderr = 2\n",
            Some(2),
            Some("stderr"),
            "\"2\" is not one of",
        ),
        (
            "stdout unknown key",
            "exec = [\"/a\"]\nstdout = { path = \"/x\" }\n",
            Some(2),
            Some("stdout.path"),
            "unknown key",
        ),
        (
            "stdout missing file",
            "exec = [\"/a\"]\nstdout = {}\n",
            Some(2),
            Some("stdout.file"),
            "is required",
        ),
        (
            "stdout relative file",
            "exec = [\"/a\"]\nstdout = { file = \"web.log\" }\n",
            Some(2),
            Some("stdout.file"),
            "not an absolute path",
        ),
        // Durations.
        (
            "bad duration",
            "exec = [\"/a\"]\nrestart_delay = \"10x\"\n",
            Some(2),
            Some("restart_delay"),
            "\"10x\" is not a duration",
        ),
        (
            "integer duration",
            "exec = [\"/a\"]\nstop_timeout = 10\n",
            Some(2),
            Some("stop_timeout"),
            "must be a string with a unit, like \"10s\", found integer",
        ),
        (
            "delay max below delay",
            "exec = [\"/a\"]\nrestart_delay = \"1min\"\nrestart_delay_max = \"10s\"\n",
            Some(3),
            Some("restart_delay_max"),
            "is less than restart_delay",
        ),
        (
            "delay above default max",
            "exec = [\"/a\"]\nrestart_delay = \"1min\"\n",
            Some(2),
            Some("restart_delay_max"),
            "is less than restart_delay",
        ),
        (
            "zero ready_timeout",
            "exec = [\"/a\"]\ntype = \"oneshot\"\nready_timeout = \"0s\"\n",
            Some(3),
            Some("ready_timeout"),
            "must be more than 0",
        ),
        (
            "watchdog on simple",
            "exec = [\"/a\"]\nwatchdog = \"10s\"\n",
            Some(2),
            Some("watchdog"),
            "only allowed with type notify",
        ),
        (
            "watchdog on oneshot",
            "exec = [\"/a\"]\ntype = \"oneshot\"\nwatchdog = \"10s\"\n",
            Some(3),
            Some("watchdog"),
            "only allowed with type notify",
        ),
        (
            "zero watchdog",
            "exec = [\"/a\"]\ntype = \"notify\"\nwatchdog = \"0s\"\n",
            Some(3),
            Some("watchdog"),
            "must be more than 0",
        ),
        (
            "ready_timeout on simple",
            "exec = [\"/a\"]\nready_timeout = \"5s\"\n",
            Some(2),
            Some("ready_timeout"),
            "only allowed with type notify or oneshot",
        ),
        (
            "bad ready_timeout",
            "exec = [\"/a\"]\ntype = \"notify\"\nready_timeout = \"forever\"\n",
            Some(3),
            Some("ready_timeout"),
            "is not a duration",
        ),
        // Numbers.
        (
            "burst zero",
            "exec = [\"/a\"]\nstart_limit_burst = 0\n",
            Some(2),
            Some("start_limit_burst"),
            "0 is not in 1..=",
        ),
        (
            "oom_score_adj too low",
            "exec = [\"/a\"]\noom_score_adj = -1001\n",
            Some(2),
            Some("oom_score_adj"),
            "-1001 is not in -1000..=1000",
        ),
        (
            "oom_score_adj too high",
            "exec = [\"/a\"]\noom_score_adj = 1001\n",
            Some(2),
            Some("oom_score_adj"),
            "1001 is not in -1000..=1000",
        ),
        // Signals.
        (
            "bad signal name",
            "exec = [\"/a\"]\nstop_signal = \"SIGFOO\"\n",
            Some(2),
            Some("stop_signal"),
            "\"SIGFOO\" is not a signal",
        ),
        (
            "signal zero",
            "exec = [\"/a\"]\nstop_signal = 0\n",
            Some(2),
            Some("stop_signal"),
            "\"0\" is not a signal",
        ),
        (
            "signal too high",
            "exec = [\"/a\"]\nstop_signal = 65\n",
            Some(2),
            Some("stop_signal"),
            "is not a signal",
        ),
        // Dependencies.
        (
            "bad name in requires",
            "exec = [\"/a\"]\nrequires = [\"db\",\n  \"../etc\"]\n",
            Some(3),
            Some("requires"),
            "\"../etc\" is not a unit name",
        ),
        (
            "self in requires",
            "exec = [\"/a\"]\nrequires = [\"web\"]\n",
            Some(2),
            Some("requires"),
            "\"web\" is this unit itself",
        ),
        (
            "self in wants",
            "exec = [\"/a\"]\nwants = [\"web\"]\n",
            Some(2),
            Some("wants"),
            "itself",
        ),
        (
            "self in after",
            "exec = [\"/a\"]\nafter = [\"web\"]\n",
            Some(2),
            Some("after"),
            "itself",
        ),
        (
            "self in before",
            "exec = [\"/a\"]\nbefore = [\"web\"]\n",
            Some(2),
            Some("before"),
            "itself",
        ),
        // Process setup.
        (
            "env name with =",
            "exec = [\"/a\"]\nenvironment = { \"A=B\" = \"c\" }\n",
            Some(2),
            Some("environment.A=B"),
            "is not an environment variable name",
        ),
        (
            "env name empty",
            "exec = [\"/a\"]\n[environment]\n\"\" = \"c\"\n",
            Some(3),
            Some("environment."),
            "is not an environment variable name",
        ),
        (
            "env reserved",
            "exec = [\"/a\"]\nenvironment = { NOTIFY_SOCKET = \"/x\" }\n",
            Some(2),
            Some("environment.NOTIFY_SOCKET"),
            "is set by liftoff",
        ),
        (
            "relative working_directory",
            "exec = [\"/a\"]\nworking_directory = \"var\"\n",
            Some(2),
            Some("working_directory"),
            "not an absolute path",
        ),
        (
            "empty user",
            "exec = [\"/a\"]\nuser = \"\"\n",
            Some(2),
            Some("user"),
            "must not be empty",
        ),
        (
            "bad capability",
            "exec = [\"/a\"]\ncapabilities = [\"CAP_NET_ADMIN\",\n \"CAP_FLY\"]\n",
            Some(3),
            Some("capabilities"),
            "\"CAP_FLY\" is not a capability",
        ),
        (
            "bad ambient capability",
            "exec = [\"/a\"]\nambient_capabilities = [\"fly\"]\n",
            Some(2),
            Some("ambient_capabilities"),
            "\"fly\" is not a capability",
        ),
        (
            "ambient not in bounding",
            "exec = [\"/a\"]\ncapabilities = [\"CAP_NET_ADMIN\"]\nambient_capabilities = [\"CAP_NET_RAW\"]\n",
            Some(3),
            Some("ambient_capabilities"),
            "CAP_NET_RAW is not in capabilities",
        ),
        (
            "unknown limit",
            "exec = [\"/a\"]\n[limits]\nfiles = 10\n",
            Some(3),
            Some("limits.files"),
            "\"files\" is not a resource limit",
        ),
        (
            "negative limit",
            "exec = [\"/a\"]\n[limits]\nnofile = -1\n",
            Some(3),
            Some("limits.nofile"),
            "expected an integer, \"infinity\" or [soft, hard], found -1",
        ),
        (
            "limit of three",
            "exec = [\"/a\"]\n[limits]\nnofile = [1, 2, 3]\n",
            Some(3),
            Some("limits.nofile"),
            "expected an integer",
        ),
        (
            "soft above hard",
            "exec = [\"/a\"]\n[limits]\nnproc = [8192, 4096]\n",
            Some(3),
            Some("limits.nproc"),
            "soft limit 8192 is above hard limit 4096",
        ),
        (
            "infinite soft, finite hard",
            "exec = [\"/a\"]\n[limits]\nnproc = [\"infinity\", 4096]\n",
            Some(3),
            Some("limits.nproc"),
            "soft limit infinity is above hard limit 4096",
        ),
        (
            "bad memory_max",
            "exec = [\"/a\"]\n[cgroup]\nmemory_max = \"512MB\"\n",
            Some(3),
            Some("cgroup.memory_max"),
            "found \"512MB\"",
        ),
        (
            "negative memory_max",
            "exec = [\"/a\"]\n[cgroup]\nmemory_max = -1\n",
            Some(3),
            Some("cgroup.memory_max"),
            "found -1",
        ),
        (
            "memory_max overflow",
            "exec = [\"/a\"]\n[cgroup]\nmemory_max = \"99999999999T\"\n",
            Some(3),
            Some("cgroup.memory_max"),
            "expected bytes",
        ),
        (
            "bad pids_max",
            "exec = [\"/a\"]\n[cgroup]\npids_max = \"100\"\n",
            Some(3),
            Some("cgroup.pids_max"),
            "expected a number or \"max\"",
        ),
    ];
    for (name, text, line, key, message) in cases {
        let Err(error) = parse_text(text) else {
            panic!("{name}: parsed");
        };
        println!("{name}: {error}");
        assert_eq!(error.line(), *line, "{name}: {error}");
        assert_eq!(error.key(), *key, "{name}: {error}");
        assert!(error.to_string().contains(message), "{name}: {error}");
        assert_eq!(error.path(), Path::new(PATH), "{name}");
        assert_eq!(error.name(), Some("web"), "{name}");
    }
}
