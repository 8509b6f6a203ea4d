use super::*;

const FILE: &str = "/sysroot/etc/liftoff/mounts.toml";

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// The example of docs/volumes.md.
const EXAMPLE: &str = r#"
[[volume]]
kind = "bind"
source = "/local/var"
target = "/var"

[[volume]]
kind = "tmpfs"
target = "/tmp"
mode = "1777"
size = "64m"
options = ["nosuid", "nodev"]
context = "system_u:object_r:tmp_t:s0:c1,c2"

[[volume]]
kind = "overlay"
target = "/etc"

[[volume]]
kind = "persistent"
target = "/local"
partlabel = "DATA"
options = ["nodev"]
"#;

#[test]
fn example_parses_and_plans_in_order() {
    let volumes = parse(Path::new(FILE), EXAMPLE).unwrap();
    assert_eq!(volumes.len(), 4);
    let steps = plan(
        Path::new(FILE),
        &volumes,
        Path::new("/sysroot"),
        Path::new(OVERLAY_DIR),
    )
    .unwrap();
    let tmpfs = MountSpec {
        source: "tmpfs".into(),
        target: p("/sysroot/tmp"),
        fstype: "tmpfs".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        data: Some("mode=1777,size=64m".into()),
        dir_mode: DIR_MODE,
    };
    let overlay = MountSpec {
        source: "overlay".into(),
        target: p("/sysroot/etc"),
        fstype: "overlay".into(),
        flags: MsFlags::empty(),
        data: Some(
            "lowerdir=/sysroot/etc,upperdir=/run/liftoff/overlay/etc/upper,\
             workdir=/run/liftoff/overlay/etc/work"
                .into(),
        ),
        dir_mode: DIR_MODE,
    };
    let persistent = Step::Persistent {
        device: DeviceLabel::PartLabel("DATA".into()),
        mount: MountSpec {
            source: String::new(),
            target: p("/sysroot/local"),
            fstype: "ext4".into(),
            flags: MsFlags::MS_NODEV,
            data: None,
            dir_mode: DIR_MODE,
        },
    };
    let bind = MountSpec {
        source: "/sysroot/local/var".into(),
        target: p("/sysroot/var"),
        fstype: String::new(),
        flags: MsFlags::MS_BIND,
        data: None,
        dir_mode: DIR_MODE,
    };
    let dir = |s: &str| Step::CreateDir {
        path: p(s),
        mode: DIR_MODE,
    };
    assert_eq!(
        steps,
        vec![
            Step::Mount(tmpfs),
            dir("/run/liftoff/overlay/etc/upper"),
            dir("/run/liftoff/overlay/etc/work"),
            Step::Mount(overlay),
            persistent,
            dir("/sysroot/local/var"),
            Step::Mount(bind),
            Step::MakeShared(p("/sysroot/var")),
        ]
    );
}

#[test]
fn empty_file_has_no_volumes() {
    for text in ["", "# nothing\n", "volume = []\n"] {
        assert_eq!(parse(Path::new(FILE), text).unwrap(), vec![], "{text:?}");
    }
}

fn tmpfs(target: &str) -> Volume {
    Volume::Tmpfs {
        target: p(target),
        mode: None,
        size: None,
        flags: MsFlags::empty(),
        context: None,
    }
}

fn persistent(target: &str) -> Volume {
    Volume::Persistent {
        target: p(target),
        device: DeviceLabel::Label("x".into()),
        flags: MsFlags::empty(),
        context: None,
    }
}

fn bind(source: &str, target: &str) -> Volume {
    Volume::Bind {
        source: p(source),
        target: p(target),
        context: None,
    }
}

#[test]
fn order_table() {
    let cases: Vec<(&str, Vec<Volume>, Vec<&str>)> = vec![
        (
            "as written",
            vec![tmpfs("/b"), tmpfs("/a")],
            vec!["/b", "/a"],
        ),
        (
            "parent first",
            vec![tmpfs("/a/b/c"), tmpfs("/a/b"), tmpfs("/a")],
            vec!["/a", "/a/b", "/a/b/c"],
        ),
        (
            "prefix is not a parent",
            vec![tmpfs("/ab/c"), tmpfs("/a")],
            vec!["/ab/c", "/a"],
        ),
        (
            "persistent before its binds",
            vec![
                bind("/local/var", "/var"),
                bind("/local/opt", "/opt"),
                persistent("/local"),
            ],
            vec!["/local", "/var", "/opt"],
        ),
        (
            "bind into a tmpfs after the tmpfs",
            vec![
                bind("/local/x", "/srv/x"),
                tmpfs("/srv"),
                persistent("/local"),
            ],
            vec!["/srv", "/local", "/srv/x"],
        ),
    ];
    for (name, volumes, want) in cases {
        let got: Vec<_> = order(&volumes)
            .unwrap()
            .into_iter()
            .map(|v| v.target().display().to_string())
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn cycle_is_an_error() {
    // The bind onto /data must precede /data/p (its child), but binds
    // from it.
    let volumes = vec![persistent("/data/p"), bind("/data/p/q", "/data")];
    let err = plan(
        Path::new(FILE),
        &volumes,
        Path::new("/sysroot"),
        Path::new(OVERLAY_DIR),
    )
    .unwrap_err();
    assert!(matches!(err, VolumesError::Cycle { .. }), "{err}");
    assert!(err.to_string().contains("/data/p"), "{err}");
}

/// (name, text, key, line, words the message must contain)
const ERRORS: &[(&str, &str, &str, usize, &str)] = &[
    (
        "unknown key",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\nmod = \"1777\"\n",
        "mod",
        4,
        "unknown field",
    ),
    (
        "wrong type",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\noptions = \"nosuid\"\n",
        "options",
        4,
        "invalid type",
    ),
    (
        "unknown kind",
        "[[volume]]\nkind = \"ramfs\"\ntarget = \"/tmp\"\n",
        "kind",
        2,
        "unknown variant",
    ),
    (
        "unknown top-level key",
        "volumes = 1\n",
        "volumes",
        1,
        "unknown field",
    ),
    (
        "bad toml",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = /tmp\n",
        "target",
        3,
        "",
    ),
    (
        "mode is octal",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\nmode = \"1779\"\n",
        "mode",
        4,
        "octal",
    ),
    (
        "size",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\nsize = \"lots\"\n",
        "size",
        4,
        "not a size",
    ),
    (
        "unknown option",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\noptions = [\"nosuid\", \"exec\"]\n",
        "options",
        4,
        "\"exec\"",
    ),
    (
        "relative target",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"tmp\"\n",
        "target",
        3,
        "absolute",
    ),
    (
        "dotdot",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp/../etc\"\n",
        "target",
        3,
        "..",
    ),
    (
        "root target",
        "[[volume]]\nkind = \"overlay\"\ntarget = \"/\"\n",
        "target",
        3,
        "root itself",
    ),
    (
        "comma in target",
        "[[volume]]\nkind = \"overlay\"\ntarget = \"/a,b\"\n",
        "target",
        3,
        "`,`",
    ),
    (
        "mode on a bind",
        "[[volume]]\nkind = \"bind\"\ntarget = \"/var\"\nsource = \"/l/var\"\nmode = \"755\"\n",
        "mode",
        5,
        "not a key of a bind volume",
    ),
    (
        "bind without source",
        "[[volume]]\nkind = \"bind\"\ntarget = \"/var\"\n",
        "source",
        2,
        "needs a source",
    ),
    (
        "bind not from a persistent volume",
        "[[volume]]\nkind = \"bind\"\ntarget = \"/var\"\nsource = \"/usr/var\"\n",
        "source",
        4,
        "not under a persistent",
    ),
    (
        "persistent without label",
        "[[volume]]\nkind = \"persistent\"\ntarget = \"/local\"\n",
        "partlabel",
        2,
        "needs partlabel or label",
    ),
    (
        "both labels",
        "[[volume]]\nkind = \"persistent\"\ntarget = \"/local\"\npartlabel = \"A\"\nlabel = \"A\"\n",
        "label",
        5,
        "not both",
    ),
    (
        "label too long",
        "[[volume]]\nkind = \"persistent\"\ntarget = \"/local\"\nlabel = \"0123456789abcdefg\"\n",
        "label",
        4,
        "1 to 16",
    ),
    (
        "quote in context",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\ncontext = 'a\"b'\n",
        "context",
        4,
        "`\"`",
    ),
    (
        "duplicate target",
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\n\n[[volume]]\nkind = \"overlay\"\ntarget = \"/tmp/\"\n",
        "target",
        7,
        "earlier volume",
    ),
];

#[test]
fn errors_name_file_key_and_line() {
    for (name, text, key, line, words) in ERRORS {
        let err = parse(Path::new(FILE), text).unwrap_err();
        let (got_key, got_line) = match &err {
            VolumesError::Syntax {
                key, line, path, ..
            } => {
                assert_eq!(path, Path::new(FILE), "{name}");
                (key.as_str(), *line)
            }
            VolumesError::Invalid {
                key, line, path, ..
            } => {
                assert_eq!(path, Path::new(FILE), "{name}");
                (*key, Some(*line))
            }
            VolumesError::Cycle { .. } => panic!("{name}: {err}"),
        };
        assert_eq!((got_key, got_line), (*key, Some(*line)), "{name}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{FILE}:{line}: key `{key}`")),
            "{name}: {message}"
        );
        assert!(message.contains(words), "{name}: {message}");
    }
}

#[test]
fn escape_names_one_directory() {
    for (target, want) in [
        ("/etc", "etc"),
        ("/usr/local", "usr-local"),
        ("/var/lib-x", "var-lib\\x2dx"),
    ] {
        assert_eq!(escape(Path::new(target)), want);
    }
}

#[test]
fn contexts_are_labels_for_after_the_policy_load_not_mount_options() {
    let volumes = parse(Path::new(FILE), EXAMPLE).unwrap();
    assert_eq!(
        labels(&volumes),
        [(p("/tmp"), "system_u:object_r:tmp_t:s0:c1,c2".to_owned())]
    );
    let steps = plan(
        Path::new(FILE),
        &volumes,
        Path::new("/sysroot"),
        Path::new(OVERLAY_DIR),
    )
    .unwrap();
    assert!(
        !format!("{steps:?}").contains("context="),
        "a context= mount option would be refused before the policy load: {steps:?}"
    );
}

#[test]
fn run_is_labelled_not_mounted_and_takes_only_a_context() {
    let text =
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/run\"\ncontext = \"system_u:object_r:run_t\"\n";
    let volumes = parse(Path::new(FILE), text).unwrap();
    let steps = plan(
        Path::new(FILE),
        &volumes,
        Path::new("/sysroot"),
        Path::new(OVERLAY_DIR),
    )
    .unwrap();
    assert!(steps.is_empty(), "{steps:?}");
    assert_eq!(
        labels(&volumes),
        [(p("/run"), "system_u:object_r:run_t".to_owned())]
    );
    let sized = "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/run\"\nsize = \"10m\"\n";
    let err = parse(Path::new(FILE), sized).unwrap_err().to_string();
    assert!(
        err.contains(":3:") && err.contains("only set a context"),
        "{err}"
    );
}
