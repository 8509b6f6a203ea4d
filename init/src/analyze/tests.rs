//! Host tests of `liftoff analyze` over a realistic record.

use std::ffi::OsString;
use std::path::Path;

use super::cli::{Command, report};
use super::*;

/// A boot through an initramfs, with a host containerd and a host
/// container ready after boot complete, a failed unit and one never
/// started.
const RECORD: &str = r#"{
  "stage1": [
    {"phase": "start", "boottime_us": 2651000},
    {"phase": "api-filesystems", "boottime_us": 2654100},
    {"phase": "cmdline", "boottime_us": 2696000},
    {"phase": "modules", "boottime_us": 3467000},
    {"phase": "devices", "boottime_us": 6812000},
    {"phase": "verity", "boottime_us": 7204000},
    {"phase": "root-mounted", "boottime_us": 7391000},
    {"phase": "switch-root", "boottime_us": 7950000},
    {"phase": "exec", "boottime_us": 7988000}
  ],
  "stage2": [
    {"phase": "start", "boottime_us": 8131000},
    {"phase": "api-filesystems", "boottime_us": 8133500},
    {"phase": "cmdline", "boottime_us": 8150000},
    {"phase": "policy-load", "boottime_us": 8420000},
    {"phase": "reexec", "boottime_us": 8465000},
    {"phase": "units", "boottime_us": 8480000}
  ],
  "boot_complete_us": 12622000,
  "failed": ["backup"],
  "units": [
    {"name": "network", "state": "done", "started_us": 8481000, "ready_us": 8667000},
    {"name": "containerd", "state": "running", "started_us": 8668000, "ready_us": 9898000, "after": ["network"]},
    {"name": "host-containerd", "state": "running", "started_us": 8667000, "ready_us": 12571000, "after": ["network"]},
    {"name": "web", "state": "running", "started_us": 9899000, "ready_us": 10139000, "after": ["containerd", "network", "metrics"]},
    {"name": "backup", "state": "failed", "started_us": 8667000, "ready_us": null, "after": ["network"]},
    {"name": "control", "state": "running", "started_us": 12571500, "ready_us": 19694500, "after": ["host-containerd"]},
    {"name": "debug", "state": "inactive", "started_us": null, "ready_us": null, "after": ["host-containerd"]}
  ],
  "modules": [
    {"name": "virtio_blk", "start_us": 2698000, "end_us": 2760000},
    {"name": "dm_verity", "start_us": 2700000, "end_us": 2710000},
    {"name": "erofs", "start_us": 2705000, "end_us": 3400000}
  ]
}"#;

fn record() -> Record {
    parse(Path::new("boot.json"), RECORD.as_bytes()).unwrap()
}

fn record_from(json: &str) -> Record {
    parse(Path::new("boot.json"), json.as_bytes()).unwrap()
}

/// The fixture without stage 1, as when the kernel mounted the root.
fn without_stage1() -> Record {
    Record {
        stage1: Vec::new(),
        modules: Vec::new(),
        ..record()
    }
}

const TIME: &str = "\
Startup finished in 2.651s (kernel) + 5.337s (initramfs) + 4.634s (userspace) = 12.622s
boot complete at 12.622s since kernel start, degraded: 1 failed: backup

kernel:
  2.651s kernel          @2.651s

initramfs (stage 1):
     3ms api-filesystems @2.654s
    41ms cmdline         @2.696s
   771ms modules         @3.467s
  3.345s devices         @6.812s
   392ms verity          @7.204s
   187ms root-mounted    @7.391s
   559ms switch-root     @7.950s
    38ms exec            @7.988s

userspace (stage 2):
   143ms start           @8.131s
     2ms api-filesystems @8.133s
    16ms cmdline         @8.150s
   270ms policy-load     @8.420s
    45ms reexec          @8.465s
    15ms units           @8.480s
  4.142s boot-complete   @12.622s

modules (stage 1, loaded in parallel):
    62ms virtio_blk      @2.760s
    10ms dm_verity       @2.710s
   695ms erofs           @3.400s

units (time to ready, ready at):
   186ms network         @8.667s
  1.230s containerd      @9.898s
   240ms web             @10.139s
  3.904s host-containerd @12.571s
  7.123s control         @19.694s
       - backup          not ready (failed)
       - debug           not ready (inactive)
";

const BLAME: &str = "\
7.123s control
3.904s host-containerd
1.230s containerd
 240ms web
 186ms network
     - backup          not ready (failed)
     - debug           not ready (inactive)
";

const CHAIN_HEADER: &str = "\
The time when the unit became ready is printed after the \"@\" character.
The time the unit took to become ready is printed after the \"+\" character.

";

#[test]
fn time_text() {
    assert_eq!(time(&record()).render(), TIME);
}

#[test]
fn time_adds_up_and_names_each_phase_by_its_end() {
    let report = time(&record());
    assert_eq!(report.kernel_us, 2_651_000);
    assert_eq!(report.initramfs_us, Some(5_337_000));
    assert_eq!(report.userspace_us, 4_634_000);
    assert_eq!(
        report.kernel_us + report.initramfs_us.unwrap() + report.userspace_us,
        report.boot_complete_us
    );
    let modules = report.phases.iter().find(|p| p.name == "modules").unwrap();
    assert_eq!(
        (
            modules.stage,
            modules.start_us,
            modules.end_us,
            modules.duration_us
        ),
        (Stage::Initramfs, 2_696_000, 3_467_000, 771_000)
    );
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"kernel"));
    assert_eq!(names.last(), Some(&time::BOOT_COMPLETE_PHASE));
    assert_eq!(report.phases.len(), 1 + 8 + 6 + 1);
    // The phases tile the boot: each starts where the one before ended.
    for w in report.phases.windows(2) {
        assert_eq!(w[0].end_us, w[1].start_us, "{w:?}");
    }
}

#[test]
fn time_json_fields() {
    let text = report(&record(), &Command::Time, true).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["kernel_us"], 2_651_000);
    assert_eq!(json["initramfs_us"], 5_337_000);
    assert_eq!(json["userspace_us"], 4_634_000);
    assert_eq!(json["boot_complete_us"], 12_622_000);
    assert_eq!(json["failed"], serde_json::json!(["backup"]));
    assert_eq!(
        json["phases"][3],
        serde_json::json!({"stage": "initramfs", "name": "modules", "start_us": 2_696_000,
                           "end_us": 3_467_000, "duration_us": 771_000})
    );
    assert_eq!(
        json["modules"][2],
        serde_json::json!({"name": "erofs", "start_us": 2_705_000, "end_us": 3_400_000,
                           "duration_us": 695_000})
    );
    assert_eq!(
        json["units"][4],
        serde_json::json!({"name": "control", "state": "running", "started_us": 12_571_500,
                           "ready_us": 19_694_500, "time_to_ready_us": 7_123_000,
                           "failed": false})
    );
    assert_eq!(json["units"][5]["name"], "backup");
    assert_eq!(json["units"][5]["ready_us"], serde_json::Value::Null);
    assert_eq!(json["units"][5]["failed"], true);
}

#[test]
fn time_without_stage1() {
    let report = time(&without_stage1());
    assert_eq!(
        report.summary(),
        "Startup finished in 8.131s (kernel) + 4.491s (userspace) = 12.622s"
    );
    assert_eq!(report.initramfs_us, None);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    // Stage 2's `start` ends the kernel's phase.
    assert_eq!(
        names,
        [
            "kernel",
            "api-filesystems",
            "cmdline",
            "policy-load",
            "reexec",
            "units",
            "boot-complete"
        ]
    );
    let text = report.render();
    assert!(!text.contains("initramfs"), "{text}");
    assert!(!text.contains("modules"), "{text}");
}

#[test]
fn blame_text_and_json() {
    assert_eq!(blame(&record()).render(), BLAME);
    let text = report(&record(), &Command::Blame, true).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = json["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "control",
            "host-containerd",
            "containerd",
            "web",
            "network",
            "backup",
            "debug"
        ]
    );
    assert_eq!(json["units"][0]["time_to_ready_us"], 7_123_000);
    assert_eq!(json["units"][6]["state"], "inactive");
    assert_eq!(
        json["units"][6]["time_to_ready_us"],
        serde_json::Value::Null
    );
}

#[test]
fn critical_chain_to_boot_complete() {
    let chain = critical_chain(&record(), None).unwrap();
    assert_eq!(
        chain.render(),
        format!(
            "{CHAIN_HEADER}\
             host-containerd @12.571s +3.9s\n\
             └─network @8.667s +186ms\n\
             \n\
             boot complete @12.622s was degraded: 1 failed, never ready: backup\n"
        )
    );
}

#[test]
fn critical_chain_to_a_unit() {
    let chain = critical_chain(&record(), Some("control")).unwrap();
    assert_eq!(
        chain.render(),
        format!(
            "{CHAIN_HEADER}\
             control @19.694s +7.1s\n\
             └─host-containerd @12.571s +3.9s\n\
             \x20 └─network @8.667s +186ms\n\
             \n\
             boot complete @12.622s was degraded: 1 failed, never ready: backup\n"
        )
    );
    let text = report(
        &record(),
        &Command::CriticalChain(Some("control".into())),
        true,
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["boot_complete_us"], 12_622_000);
    assert_eq!(json["failed"], serde_json::json!(["backup"]));
    let names: Vec<&str> = json["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["control", "host-containerd", "network"]);
    assert_eq!(json["chain"][0]["ready_us"], 19_694_500);
    assert_eq!(json["chain"][0]["started_us"], 12_571_500);
}

#[test]
fn critical_chain_skips_prerequisites_not_in_the_record() {
    // web's `after` names `metrics`, which the record does not have; of
    // the others, containerd became ready last.
    let chain = critical_chain(&record(), Some("web")).unwrap();
    let names: Vec<&str> = chain.chain.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["web", "containerd", "network"]);
}

#[test]
fn critical_chain_of_a_unit_not_ready() {
    let chain = critical_chain(&record(), Some("backup")).unwrap();
    let text = chain.render();
    assert!(
        text.contains("backup not ready (failed)\n└─network @8.667s +186ms\n"),
        "{text}"
    );
}

#[test]
fn critical_chain_ignores_prerequisites_ready_after_the_start() {
    // `b` wants `late`, which became ready after `b` started: it did not
    // hold `b` back.
    let record = record_from(
        r#"{"boot_complete_us": 100,
            "units": [
              {"name": "early", "state": "done", "started_us": 1, "ready_us": 10},
              {"name": "late", "state": "running", "started_us": 1, "ready_us": 60},
              {"name": "b", "state": "running", "started_us": 20, "ready_us": 90,
               "after": ["late", "early"]}
            ]}"#,
    );
    let chain = critical_chain(&record, None).unwrap();
    let names: Vec<&str> = chain.chain.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["b", "early"]);
}

#[test]
fn critical_chain_terminates_on_a_cycle() {
    let record = record_from(
        r#"{"boot_complete_us": 100,
            "units": [
              {"name": "a", "state": "running", "started_us": 5, "ready_us": 50, "after": ["b", "a"]},
              {"name": "b", "state": "running", "started_us": 5, "ready_us": 40, "after": ["a", "c"]},
              {"name": "c", "state": "running", "ready_us": 30, "after": ["b", "a", "c"]}
            ]}"#,
    );
    let chain = critical_chain(&record, None).unwrap();
    let names: Vec<&str> = chain.chain.iter().map(|u| u.name.as_str()).collect();
    // The times say `b` cannot have waited for `c` (ready at 30, after
    // `b` started at 5), so the chain is a then nothing ready in time.
    assert_eq!(names, ["a"]);
    // Without start times every prerequisite ready before the unit
    // counts, and the cycle a → b → c → (a, b: already taken) ends.
    let mut untimed = record.clone();
    for u in &mut untimed.units {
        u.started_us = None;
    }
    let chain = critical_chain(&untimed, None).unwrap();
    let names: Vec<&str> = chain.chain.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let text = chain.render();
    assert!(
        text.ends_with("a @0.000s\n└─b @0.000s\n  └─c @0.000s\n"),
        "{text}"
    );
}

#[test]
fn critical_chain_of_an_unknown_unit_is_an_error() {
    let e = critical_chain(&record(), Some("nope")).unwrap_err();
    assert_eq!(e.to_string(), "unit \"nope\" is not in the boot record");
}

#[test]
fn empty_units() {
    let record = Record {
        units: Vec::new(),
        failed: Vec::new(),
        ..record()
    };
    assert_eq!(blame(&record).render(), "");
    let chain = critical_chain(&record, None).unwrap();
    assert_eq!(
        chain.render(),
        format!("{CHAIN_HEADER}no unit was ready by boot complete @12.622s\n")
    );
    let text = time(&record).render();
    assert!(!text.contains("units ("), "{text}");
    let svg = plot(&record);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(bars(&doc, "unit").len(), 0);
    assert_eq!(bars(&doc, "phase").len(), 16);
}

#[test]
fn a_minimal_record_and_null_lists() {
    for json in [
        r#"{"boot_complete_us": 5000000}"#,
        r#"{"stage1": null, "stage2": null, "boot_complete_us": 5000000, "failed": null,
            "units": null, "modules": null, "written_by": "a newer liftoff"}"#,
    ] {
        let record = record_from(json);
        let report = time(&record);
        assert_eq!(
            report.summary(),
            "Startup finished in 0us (kernel) + 5.000s (userspace) = 5.000s"
        );
        assert_eq!(report.phases.len(), 2);
        assert_eq!(blame(&record).units, []);
        assert_eq!(critical_chain(&record, None).unwrap().chain, []);
        roxmltree::Document::parse(&plot(&record)).unwrap();
    }
}

#[test]
fn null_ready_times() {
    let record = record_from(
        r#"{"stage2": [{"phase": "start", "boottime_us": 1000000}],
            "boot_complete_us": 3000000,
            "units": [
              {"name": "a", "state": "starting", "started_us": 1500000, "ready_us": null,
               "after": null},
              {"name": "b", "state": "inactive", "started_us": null, "ready_us": null},
              {"name": "c", "state": "running"}
            ]}"#,
    );
    assert_eq!(
        blame(&record).render(),
        "- a not ready (starting)\n- b not ready (inactive)\n- c not ready (running)\n"
    );
    assert_eq!(critical_chain(&record, None).unwrap().chain, []);
    let data = plot_data(&record);
    let a = data.bars.iter().find(|b| b.name == "a").unwrap();
    // Not ready: drawn from its start to boot complete.
    assert_eq!(
        (a.start_us, a.end_us, a.ready),
        (1_500_000, 3_000_000, false)
    );
    let svg = plot(&record);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let units = bars(&doc, "unit");
    assert_eq!(units.len(), 3);
    assert!(
        units
            .iter()
            .all(|r| r.attribute("class") == Some("unit not-ready"))
    );
}

#[test]
fn times_running_backwards_or_huge_do_not_panic() {
    let record = record_from(
        r#"{"stage1": [{"phase": "start", "boottime_us": 18446744073709551615},
                       {"phase": "exec", "boottime_us": 5}],
            "stage2": [{"phase": "start", "boottime_us": 3}],
            "boot_complete_us": 1,
            "units": [{"name": "x", "state": "running", "started_us": 18446744073709551615,
                       "ready_us": 0, "after": ["x"]}],
            "modules": [{"name": "m", "start_us": 9, "end_us": 2}]}"#,
    );
    let report = time(&record);
    assert_eq!(report.initramfs_us, Some(0));
    assert!(report.phases.iter().all(|p| p.duration_us <= p.end_us));
    let _ = report.render();
    let _ = blame(&record).render();
    let _ = critical_chain(&record, Some("x")).unwrap().render();
    let svg = plot(&record);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(bars(&doc, "unit").len(), 1);
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
}

/// The bars of `kind` in a plot.
fn bars<'a, 'i>(doc: &'a roxmltree::Document<'i>, kind: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("data-kind") == Some(kind))
        .collect()
}

/// Every text element's text, concatenated per element.
fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn plot_is_svg_with_a_bar_per_phase_module_and_unit() {
    let record = record();
    let svg = plot(&record);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );

    let phases = bars(&doc, "phase");
    assert_eq!(phases.len(), time(&record).phases.len());
    assert_eq!(phases.len(), 16);
    assert_eq!(phases[0].attribute("data-name"), Some("kernel"));
    assert_eq!(phases[0].attribute("class"), Some("phase kernel"));
    assert_eq!(phases[3].attribute("class"), Some("phase initramfs"));
    assert_eq!(phases[15].attribute("class"), Some("phase userspace"));
    assert_eq!(bars(&doc, "module").len(), 3);

    let units = bars(&doc, "unit");
    assert_eq!(units.len(), record.units.len());
    let names: Vec<&str> = units
        .iter()
        .map(|u| u.attribute("data-name").unwrap())
        .collect();
    // By start, the never started last.
    assert_eq!(
        names,
        [
            "network",
            "host-containerd",
            "backup",
            "containerd",
            "web",
            "control",
            "debug"
        ]
    );
    let class = |name: &str| {
        units
            .iter()
            .find(|u| u.attribute("data-name") == Some(name))
            .and_then(|u| u.attribute("class"))
    };
    assert_eq!(class("web"), Some("unit ready"));
    assert_eq!(class("backup"), Some("unit failed"));
    assert_eq!(class("debug"), Some("unit not-ready"));

    // The kernel's bar runs from the axis's zero to liftoff's start at
    // 100 px a second.
    let x: f64 = phases[0].attribute("x").unwrap().parse().unwrap();
    let width: f64 = phases[0].attribute("width").unwrap().parse().unwrap();
    assert_eq!((x, width), (20.0, 265.1));

    let texts = texts(&doc);
    for label in [
        "kernel 2.651s",
        "modules 771ms",
        "boot-complete 4.142s",
        "erofs 695ms",
        "control 7.123s",
        "backup not ready (failed)",
        "debug not started (inactive)",
        "boot complete 12.622s",
        "0s",
        "19s",
        "Startup finished in 2.651s (kernel) + 5.337s (initramfs) + 4.634s (userspace) = 12.622s",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label:?} in {texts:?}");
    }

    let complete: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("line") && n.attribute("class") == Some("boot-complete"))
        .collect();
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].attribute("x1"), Some("1282.2"));
    assert_eq!(complete[0].attribute("x1"), complete[0].attribute("x2"));
}

#[test]
fn plot_escapes_text() {
    let mut record = record();
    record.units[0].name = "a<b&\"c'>\u{1}".to_owned();
    record.units[1].after = vec![record.units[0].name.clone()];
    let svg = plot(&record);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let units = bars(&doc, "unit");
    assert_eq!(units.len(), record.units.len());
    assert!(
        units
            .iter()
            .any(|u| u.attribute("data-name") == Some("a<b&\"c'>\u{FFFD}")),
        "{svg}"
    );
    assert!(texts(&doc).iter().any(|t| t == "a<b&\"c'>\u{FFFD} 186ms"));
}

#[test]
fn plot_json_lists_the_bars() {
    let text = report(&record(), &Command::Plot, true).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["boot_complete_us"], 12_622_000);
    assert_eq!(json["end_us"], 19_694_500);
    assert_eq!(json["bars"].as_array().unwrap().len(), 16 + 3 + 7);
    assert_eq!(
        json["bars"][0],
        serde_json::json!({"kind": "phase", "name": "kernel", "stage": "kernel", "state": null,
                           "start_us": 0, "end_us": 2_651_000, "ready": true, "failed": false,
                           "label": "kernel 2.651s"})
    );
    assert_eq!(json["bars"][25]["kind"], "unit");
    assert_eq!(json["bars"][25]["name"], "debug");
    assert_eq!(json["bars"][25]["ready"], false);
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let e = parse(
        Path::new("/tmp/copy/boot.json"),
        b"{\n  \"boot_complete_us\": 1,\n  \"units\": [,]\n}",
    )
    .unwrap_err();
    assert_eq!(
        crate::failure::chain(&e),
        "/tmp/copy/boot.json: malformed boot record: expected value at line 3 column 13"
    );
    let e = parse(Path::new("boot.json"), br#"{"stage1": []}"#).unwrap_err();
    assert_eq!(
        crate::failure::chain(&e),
        "boot.json: malformed boot record: missing field `boot_complete_us` at line 1 column 14"
    );
    let e = parse(Path::new("boot.json"), b"\xff").unwrap_err();
    assert!(crate::failure::chain(&e).contains("line 1 column 1"));
}

fn call(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = crate::cli::run(args.iter().map(OsString::from), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn cli_reads_a_copied_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boot.json");
    std::fs::write(&path, RECORD).unwrap();
    let file = path.to_str().unwrap();

    let (code, out, err) = call(&["analyze", "--file", file]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, TIME, ""));
    let (code, out, _) = call(&["analyze", "time", "--file", file]);
    assert_eq!((code, out.as_str()), (0, TIME));
    let (code, out, _) = call(&["analyze", "--file", file, "blame"]);
    assert_eq!((code, out.as_str()), (0, BLAME));
    let (code, out, _) = call(&["analyze", "--file", file, "critical-chain", "control"]);
    assert_eq!(code, 0);
    assert!(out.contains("\ncontrol @19.694s +7.1s\n"), "{out}");
    let (code, out, _) = call(&["analyze", "--file", file, "--json", "blame"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["units"][0]["name"], "control");
    let (code, out, _) = call(&["analyze", "plot", "--file", file]);
    assert_eq!(code, 0);
    roxmltree::Document::parse(&out).unwrap();

    let (code, out, err) = call(&["analyze", "--file", file, "critical-chain", "nope"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "liftoff analyze: unit \"nope\" is not in the boot record\n"
    );

    std::fs::write(&path, "{\"boot_complete_us\": \"soon\"}").unwrap();
    let (code, out, err) = call(&["analyze", "--file", file]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!(
            "liftoff analyze: {file}: malformed boot record: invalid type: string \"soon\", \
             expected u64 at line 1 column 27\n"
        )
    );
}

#[test]
fn cli_missing_record() {
    let (code, out, err) = call(&["analyze", "--file", "/nonexistent/boot.json"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "liftoff analyze: /nonexistent/boot.json: cannot read: No such file or directory \
         (os error 2)\n"
    );
    // At the default place, with the hint; only on a host that has no
    // record of its own.
    if !Path::new(DEFAULT_RECORD).exists() {
        let (code, _, err) = call(&["analyze", "blame"]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "liftoff analyze: /run/liftoff/boot.json: cannot read: No such file or directory \
             (os error 2)\n\
             liftoff analyze: boot has not completed yet: liftoff writes /run/liftoff/boot.json \
             when it does (--file PATH reads a copied record)\n"
        );
    }
}

#[test]
fn cli_usage_errors_exit_2() {
    for args in [
        &["analyze", "frobnicate"][..],
        &["analyze", "blame", "extra"],
        &["analyze", "plot", "x"],
        &["analyze", "critical-chain", "a", "b"],
        &["analyze", "--file"],
        &["analyze", "--bogus"],
    ] {
        let (code, out, err) = call(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert!(err.starts_with("liftoff analyze: "), "{err}");
        assert!(err.contains("usage: liftoff analyze"), "{err}");
    }
    let (code, out, _) = call(&["analyze", "--help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: liftoff analyze"), "{out}");
    let (_, out, _) = call(&["--help"]);
    assert!(out.contains("analyze [--file PATH] [--json]"), "{out}");
}

#[test]
fn parse_words_names_the_command() {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(parse_words_ok(&words(&[])), Command::Time);
    assert_eq!(
        parse_words_ok(&words(&["critical-chain", "web"])),
        Command::CriticalChain(Some("web".into()))
    );
    assert_eq!(
        cli::parse_words(&words(&["blame", "x"])),
        Err("blame: too many arguments".to_owned())
    );
}

fn parse_words_ok(words: &[String]) -> Command {
    cli::parse_words(words).unwrap()
}
