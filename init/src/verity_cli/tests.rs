//! Tests of `liftoff verity`'s argument handling and output.

use super::*;

fn call(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let parser = lexopt::Parser::from_args(args.iter().map(OsString::from));
    let code = run(parser, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn format_dump_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hash = dir.path().join("hash");
    let bytes: Vec<u8> = (0..129 * 4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&data, &bytes).unwrap();
    let (d, h) = (data.to_str().unwrap(), hash.to_str().unwrap());
    let (code, out, err) = call(&[
        "format",
        d,
        h,
        "--salt=00112233",
        "--uuid",
        "12345678-1234-1234-1234-123456789abc",
    ]);
    assert_eq!(code, 0, "{err}");
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:      \t"))
        .unwrap();
    let want = format!(
        "VERITY header information for {h}\n\
         UUID:            \t12345678-1234-1234-1234-123456789abc\n\
         Hash type:       \t1\n\
         Data blocks:     \t129\n\
         Data block size: \t4096\n\
         Hash blocks:     \t3\n\
         Hash block size: \t4096\n\
         Hash algorithm:  \tsha256\n\
         Salt:            \t00112233\n\
         Root hash:      \t{root}\n\
         Hash device size: \t16384 [bytes]\n"
    );
    assert_eq!(out, want);
    let (code, dump, _) = call(&["dump", h]);
    assert_eq!(code, 0);
    assert_eq!(
        dump,
        want.replace(&format!("Root hash:      \t{root}\n"), "")
    );
    assert_eq!(call(&["verify", d, h, root]).0, 0);
    let mut wrong = root.to_owned();
    wrong.replace_range(..2, if &root[..2] == "00" { "01" } else { "00" });
    let (code, _, err) = call(&["verify", d, h, &wrong]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("root hash mismatch"), "{err}");
}

#[test]
fn usage_and_parameter_errors_exit_1() {
    struct Case {
        name: &'static str,
        args: &'static [&'static str],
        message: &'static str,
    }
    let cases = [
        Case {
            name: "no action",
            args: &[],
            message: "<action> missing",
        },
        Case {
            name: "unknown action",
            args: &["frob"],
            message: "unknown action",
        },
        Case {
            name: "format without hash device",
            args: &["format", "d"],
            message: "requires",
        },
        Case {
            name: "too many arguments",
            args: &["dump", "a", "b"],
            message: "too many",
        },
        Case {
            name: "bad number",
            args: &["--data-block-size=4k", "dump", "a"],
            message: "4k",
        },
        Case {
            name: "conflicting corruption modes",
            args: &[
                "--ignore-corruption",
                "--restart-on-corruption",
                "close",
                "x",
            ],
            message: "cannot be used together",
        },
        Case {
            name: "verify without root hash",
            args: &["verify", "a", "b"],
            message: "root_hash",
        },
        Case {
            name: "odd salt",
            args: &["format", "--salt=abc", "/dev/null", "/dev/null"],
            message: "invalid salt",
        },
        Case {
            name: "bad uuid",
            args: &["format", "--uuid=bogus", "/dev/null", "/dev/null"],
            message: "bogus",
        },
        Case {
            name: "bad hash",
            args: &["format", "--hash=md5", "/dev/null", "/dev/null"],
            message: "md5",
        },
        Case {
            name: "bad format",
            args: &["format", "--format=2", "/dev/null", "/dev/null"],
            message: "hash type 2",
        },
    ];
    for case in cases {
        let (code, _, err) = call(case.args);
        assert_eq!(code, 1, "{}: {err}", case.name);
        assert!(err.contains(case.message), "{}: {err}", case.name);
    }
    assert_eq!(call(&["--help"]).0, 0);
}

/// `format` and `dump` print exactly what veritysetup prints (the hash
/// path aside, which each tool prints as given).
#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn output_matches_veritysetup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bytes: Vec<u8> = (0..300 * 4096u32).map(|i| (i * 13 % 253) as u8).collect();
    std::fs::write(&data, &bytes).unwrap();
    let d = data.to_str().unwrap();
    let cases: [(&str, &[&str]); 6] = [
        ("defaults", &[]),
        (
            "no salt, sha512, type 0",
            &["--salt=-", "--hash=sha512", "--format=0"],
        ),
        ("upper-case hash name", &["--hash", "SHA1"]),
        ("no superblock", &["--no-superblock"]),
        ("hash offset", &["--hash-offset=8192"]),
        ("fec", &["--fec-roots=4"]),
    ];
    for (name, extra) in cases {
        let slug = name.replace([' ', ','], "_");
        let (theirs, ours) = (
            dir.path().join(format!("{slug}.vs")),
            dir.path().join(format!("{slug}.ours")),
        );
        let fec = |h: &std::path::Path| format!("--fec-device={}.fec", h.display());
        let mut args: Vec<String> = vec![
            "--salt=0011".into(),
            "--uuid=12345678-1234-1234-1234-123456789abc".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let with_fec = |h: &std::path::Path| {
            let mut a = args.clone();
            if name == "fec" {
                a.push(fec(h));
            }
            a
        };
        let vs = std::process::Command::new("veritysetup")
            .arg("format")
            .arg(d)
            .arg(&theirs)
            .args(with_fec(&theirs))
            .output()
            .unwrap();
        assert!(vs.status.success(), "{name}: {vs:?}");
        let mut ours_args = vec![
            "format".to_owned(),
            d.to_owned(),
            ours.display().to_string(),
        ];
        ours_args.extend(with_fec(&ours));
        let refs: Vec<&str> = ours_args.iter().map(String::as_str).collect();
        let (code, out, err) = call(&refs);
        assert_eq!(code, 0, "{name}: {err}");
        let want = String::from_utf8(vs.stdout)
            .unwrap()
            .replace(theirs.to_str().unwrap(), ours.to_str().unwrap());
        assert_eq!(out, want, "{name}");
        if extra.contains(&"--no-superblock") {
            continue;
        }
        let mut dump_args = vec!["dump".to_owned()];
        dump_args.extend(
            extra
                .iter()
                .filter(|a| a.starts_with("--hash-offset"))
                .map(|s| s.to_string()),
        );
        let vs = std::process::Command::new("veritysetup")
            .args(&dump_args)
            .arg(&theirs)
            .output()
            .unwrap();
        dump_args.push(ours.display().to_string());
        let refs: Vec<&str> = dump_args.iter().map(String::as_str).collect();
        let (code, out, err) = call(&refs);
        assert_eq!(code, 0, "{name}: {err}");
        let want = String::from_utf8(vs.stdout)
            .unwrap()
            .replace(theirs.to_str().unwrap(), ours.to_str().unwrap());
        assert_eq!(out, want, "{name} dump");
    }
}

#[test]
fn hex_parsing() {
    assert_eq!(parse_hex(""), Some(vec![]));
    assert_eq!(parse_hex("00aAfF"), Some(vec![0, 0xaa, 0xff]));
    assert_eq!(parse_hex("abc"), None);
    assert_eq!(parse_hex("zz"), None);
    assert_eq!(parse_hex("+1"), None);
}
