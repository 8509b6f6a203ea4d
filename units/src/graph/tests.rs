//! Tests of the dependency checks: named cases, and a property test against
//! a slow but obvious oracle.

use std::path::Path;

use proptest::prelude::*;

use super::*;

/// A unit called `name` with dependencies given as `(key, other)` pairs.
fn unit(name: &str, deps: &[(&str, &str)]) -> Unit {
    let path = format!("/etc/liftoff/units/{name}.toml");
    let mut unit = crate::file::parse(Path::new(&path), "exec = [\"/bin/true\"]\n").unwrap();
    for &(key, other) in deps {
        let list = match key {
            "requires" => &mut unit.requires,
            "wants" => &mut unit.wants,
            "after" => &mut unit.after,
            "before" => &mut unit.before,
            _ => panic!("no such key {key}"),
        };
        list.push(other.to_owned());
    }
    unit
}

fn named(broken: &[(UnitName, String)]) -> Vec<(&str, &str)> {
    broken
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect()
}

#[test]
fn check_cases() {
    struct Case {
        name: &'static str,
        units: Vec<Unit>,
        unloadable: &'static [&'static str],
        broken: Vec<(&'static str, &'static str)>,
    }
    let cases = vec![
        Case {
            name: "no units",
            units: vec![],
            unloadable: &[],
            broken: vec![],
        },
        Case {
            name: "requires a missing unit",
            units: vec![unit("a", &[("requires", "x")]), unit("b", &[])],
            unloadable: &[],
            broken: vec![("a", "requires \"x\", which does not exist")],
        },
        Case {
            name: "requires a unit whose file failed to load",
            units: vec![unit("a", &[("requires", "db")])],
            unloadable: &["db"],
            broken: vec![("a", "requires \"db\", whose file failed to load")],
        },
        Case {
            name: "transitive",
            units: vec![
                unit("a", &[("requires", "b")]),
                unit("b", &[("requires", "c")]),
                unit("c", &[("requires", "x")]),
                unit("d", &[("wants", "c")]),
            ],
            unloadable: &[],
            broken: vec![
                (
                    "a",
                    "requires \"b\", which cannot start (\"c\": requires \"x\", which does not exist)",
                ),
                (
                    "b",
                    "requires \"c\", which cannot start (\"c\": requires \"x\", which does not exist)",
                ),
                ("c", "requires \"x\", which does not exist"),
            ],
        },
        Case {
            name: "cycle of one",
            units: vec![unit("a", &[("after", "a")])],
            unloadable: &[],
            broken: vec![("a", "dependency cycle: a → a")],
        },
        Case {
            name: "cycle of two: requires and wants both order",
            units: vec![
                unit("a", &[("requires", "b")]),
                unit("b", &[("wants", "a")]),
            ],
            unloadable: &[],
            broken: vec![
                ("a", "dependency cycle: a → b → a"),
                ("b", "dependency cycle: b → a → b"),
            ],
        },
        Case {
            name: "cycle of three through before",
            units: vec![
                unit("a", &[("after", "b")]),
                unit("b", &[("after", "c")]),
                unit("c", &[]),
                unit("z", &[("before", "c")]),
                unit("aa", &[("before", "c")]),
            ]
            .into_iter()
            .map(|mut u| {
                if u.name == "a" {
                    u.before.push("c".to_owned());
                }
                u
            })
            .collect(),
            unloadable: &[],
            broken: vec![
                ("a", "dependency cycle: a → b → c → a"),
                ("b", "dependency cycle: b → c → a → b"),
                ("c", "dependency cycle: c → a → b → c"),
            ],
        },
        Case {
            name: "before and after the same way round are no cycle",
            units: vec![unit("a", &[("before", "b")]), unit("b", &[("after", "a")])],
            unloadable: &[],
            broken: vec![],
        },
        Case {
            name: "two independent cycles",
            units: vec![
                unit("a", &[("after", "b")]),
                unit("b", &[("after", "a")]),
                unit("c", &[("requires", "d")]),
                unit("d", &[("requires", "c")]),
                unit("e", &[("requires", "f")]),
                unit("f", &[]),
            ],
            unloadable: &[],
            broken: vec![
                ("a", "dependency cycle: a → b → a"),
                ("b", "dependency cycle: b → a → b"),
                ("c", "dependency cycle: c → d → c"),
                ("d", "dependency cycle: d → c → d"),
            ],
        },
        Case {
            name: "wanting or following a cycle member is fine, requiring it is not",
            units: vec![
                unit("a", &[("requires", "b")]),
                unit("b", &[("requires", "a")]),
                unit("w", &[("wants", "a")]),
                unit("o", &[("after", "b")]),
                unit("r", &[("requires", "b")]),
                unit("rr", &[("requires", "r")]),
            ],
            unloadable: &[],
            broken: vec![
                ("a", "dependency cycle: a → b → a"),
                ("b", "dependency cycle: b → a → b"),
                (
                    "r",
                    "requires \"b\", which cannot start (\"b\": dependency cycle: b → a → b)",
                ),
                (
                    "rr",
                    "requires \"r\", which cannot start (\"b\": dependency cycle: b → a → b)",
                ),
            ],
        },
        Case {
            name: "a cycle member with a missing requirement names it",
            units: vec![
                unit("a", &[("requires", "b"), ("requires", "x")]),
                unit("b", &[("requires", "a")]),
            ],
            unloadable: &[],
            broken: vec![
                ("a", "requires \"x\", which does not exist"),
                ("b", "dependency cycle: b → a → b"),
            ],
        },
        Case {
            name: "diamond",
            units: vec![
                unit("top", &[("requires", "left"), ("requires", "right")]),
                unit("left", &[("requires", "bottom")]),
                unit("right", &[("requires", "bottom"), ("after", "left")]),
                unit("bottom", &[]),
            ],
            unloadable: &[],
            broken: vec![],
        },
        Case {
            name: "wants, after and before of missing units are ignored",
            units: vec![unit(
                "a",
                &[("wants", "x"), ("after", "y"), ("before", "z")],
            )],
            unloadable: &["x"],
            broken: vec![],
        },
    ];
    for case in cases {
        let unloadable: Vec<String> = case.unloadable.iter().map(|s| s.to_string()).collect();
        let broken = check(&case.units, &unloadable);
        assert_eq!(named(&broken), case.broken, "{}", case.name);
    }
}

#[test]
fn warnings_name_missing_soft_dependencies() {
    let units = vec![
        unit(
            "a",
            &[
                ("wants", "x"),
                ("after", "b"),
                ("before", "y"),
                ("requires", "z"),
            ],
        ),
        unit("b", &[("after", "w")]),
    ];
    assert_eq!(
        warnings(&units),
        [
            "unit \"a\": wants \"x\", which does not exist; ignored",
            "unit \"a\": before \"y\", which does not exist; ignored",
            "unit \"b\": after \"w\", which does not exist; ignored",
        ]
    );
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    let n = 20_000;
    let template = unit("u", &[]);
    let mut units: Vec<Unit> = (0..n)
        .map(|i| Unit {
            name: format!("u{i}"),
            requires: vec![format!("u{}", i + 1)],
            ..template.clone()
        })
        .collect();
    // Close the chain into one big cycle.
    units[n - 1].requires = vec!["u0".to_owned()];
    let broken = check(&units, &[]);
    assert_eq!(broken.len(), n);
    assert_eq!(
        broken[0].1,
        "dependency cycle: u0 → u1 → u2 → u3 → u4 → u5 → u6 → u7 → … → u19999 → u0 (20000 units)"
    );
    assert_eq!(
        broken[5].1,
        "dependency cycle: u5 → u6 → u7 → u8 → u9 → u10 → u11 → u12 → … → u4 → u5 (20000 units)"
    );
}

/// A unit list over names `u0..u{n}` and an `x` that never exists.
fn arbitrary_units() -> impl Strategy<Value = Vec<Unit>> {
    let n = 7usize;
    let edge = (0..4usize, 0..=n);
    proptest::collection::vec(proptest::collection::vec(edge, 0..4), 1..n).prop_map(move |lists| {
        let count = lists.len();
        lists
            .into_iter()
            .enumerate()
            .map(|(i, edges)| {
                let deps: Vec<(&str, String)> = edges
                    .into_iter()
                    .map(|(key, target)| {
                        let key = ["requires", "wants", "after", "before"][key];
                        let target = if target < count {
                            format!("u{target}")
                        } else {
                            "x".to_owned()
                        };
                        (key, target)
                    })
                    .collect();
                let deps: Vec<(&str, &str)> = deps.iter().map(|(k, t)| (*k, t.as_str())).collect();
                unit(&format!("u{i}"), &deps)
            })
            .collect()
    })
}

/// Which units are broken, the slow way: reachability by Floyd–Warshall,
/// then requirements to a fixed point.
fn oracle(units: &[Unit]) -> Vec<bool> {
    let n = units.len();
    let index = |name: &str| units.iter().position(|u| u.name == name);
    let mut reach = vec![vec![false; n]; n];
    for (u, unit) in units.iter().enumerate() {
        for d in unit.requires.iter().chain(&unit.wants).chain(&unit.after) {
            if let Some(d) = index(d) {
                reach[u][d] = true;
            }
        }
        for b in &unit.before {
            if let Some(b) = index(b) {
                reach[b][u] = true;
            }
        }
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if reach[i][k] && reach[k][j] {
                    reach[i][j] = true;
                }
            }
        }
    }
    let mut broken: Vec<bool> = (0..n)
        .map(|u| reach[u][u] || units[u].requires.iter().any(|r| index(r).is_none()))
        .collect();
    loop {
        let mut changed = false;
        for u in 0..n {
            if !broken[u]
                && units[u]
                    .requires
                    .iter()
                    .any(|r| index(r).is_some_and(|d| broken[d]))
            {
                broken[u] = true;
                changed = true;
            }
        }
        if !changed {
            return broken;
        }
    }
}

proptest! {
    #[test]
    fn check_agrees_with_the_oracle(units in arbitrary_units()) {
        let expected: Vec<&str> = units
            .iter()
            .zip(oracle(&units))
            .filter(|(_, broken)| *broken)
            .map(|(u, _)| u.name.as_str())
            .collect();
        let broken = check(&units, &[]);
        let got: Vec<&str> = broken.iter().map(|(n, _)| n.as_str()).collect();
        prop_assert_eq!(got, expected);
        for (name, reason) in &broken {
            // A cycle shown for a unit starts and ends with it.
            if let Some(cycle) = reason.strip_prefix("dependency cycle: ") {
                let prefix = format!("{name} → ");
                let suffix = format!(" → {name}");
                prop_assert!(cycle.starts_with(&prefix), "{}", reason);
                prop_assert!(cycle.ends_with(&suffix), "{}", reason);
            }
        }
    }
}
