//! The dependency graph: which units can never start, and why.
//!
//! In liftoff `requires` and `wants` imply ordering (the dependency is ready,
//! or for `wants` ready or failed, before the unit starts), `after` orders
//! only, and `before` is `after` declared on the other side. So a unit
//! "waits for" every unit it requires, wants or is after, and for every unit
//! that is before it. A cycle of "waits for" can never start: every unit in
//! it is broken. A `requires` naming a unit that does not exist is broken,
//! and anything that requires a broken unit is broken too. `wants`, `after`
//! and `before` naming a missing unit are only warnings.
//!
//! Pure: [`check`] and [`warnings`] look at [`Unit`]s only. The cycle search
//! is Tarjan's strongly connected components, iterative so that a long chain
//! of units cannot overflow PID 1's stack.

use std::collections::{BTreeMap, VecDeque};

use crate::unit::{Unit, UnitName};

/// The units that can never start, each with a reason naming the units
/// involved, in the order of `units`. `unloadable` lists the names whose
/// files failed to load ([`crate::file::Loaded::unloadable`]), to tell "does
/// not exist" from "failed to load".
///
/// Reasons:
/// - `requires "x", which does not exist` (or `…, whose file failed to load`);
/// - `dependency cycle: a → b → c → a`, each arrow reading "waits for";
/// - `requires "b", which cannot start ("c": <c's reason>)`, where `c` is
///   where the trouble starts (it may be `b` itself).
pub fn check(units: &[Unit], unloadable: &[String]) -> Vec<(UnitName, String)> {
    let graph = Graph::new(units);
    let mut broken: Vec<Option<Broken>> = vec![None; units.len()];

    // 1. A requirement that does not exist.
    for (i, unit) in units.iter().enumerate() {
        let missing = unit
            .requires
            .iter()
            .find(|r| !graph.index.contains_key(r.as_str()));
        if let Some(missing) = missing {
            let why = if unloadable.contains(missing) {
                "whose file failed to load"
            } else {
                "which does not exist"
            };
            broken[i] = Some(Broken::root(i, format!("requires {missing:?}, {why}")));
        }
    }

    // 2. Every member of a cycle (a unit that waits for itself is a cycle of
    //    one). One shortest cycle is found per component and shown, rotated,
    //    for each unit on it; the other members get a cycle of their own.
    //    That keeps a long ring linear rather than quadratic.
    for component in graph.components() {
        let Some(&first) = component.first() else {
            continue;
        };
        if component.len() == 1 && !graph.waits_for[first].contains(&first) {
            continue;
        }
        let shared = graph.cycle_through(first, &component);
        // The last element repeats the first.
        let ring = shared.split_last().map_or(&[][..], |(_, ring)| ring);
        let on_ring: BTreeMap<usize, usize> =
            ring.iter().enumerate().map(|(at, &u)| (u, at)).collect();
        for &member in &component {
            if broken[member].is_some() {
                continue;
            }
            let shown = match on_ring.get(&member) {
                Some(&at) => show_cycle(units, ring, at),
                None => {
                    let own = graph.cycle_through(member, &component);
                    let own = own.split_last().map_or(&[][..], |(_, ring)| ring);
                    show_cycle(units, own, 0)
                }
            };
            let text = format!("dependency cycle: {shown}");
            broken[member] = Some(Broken::root(member, text));
        }
    }

    // 3. Whatever requires a broken unit, breadth first so that each unit
    //    names its nearest broken requirement.
    let mut queue: VecDeque<usize> = (0..units.len()).filter(|&i| broken[i].is_some()).collect();
    while let Some(i) = queue.pop_front() {
        let Some(origin) = broken[i].as_ref().map(|b| b.origin) else {
            continue;
        };
        let Some(root_text) = broken[origin].as_ref().map(|b| b.text.clone()) else {
            continue;
        };
        for &dependent in &graph.required_by[i] {
            if broken[dependent].is_none() {
                let text = format!(
                    "requires {:?}, which cannot start ({:?}: {root_text})",
                    units[i].name, units[origin].name
                );
                broken[dependent] = Some(Broken { text, origin });
                queue.push_back(dependent);
            }
        }
    }

    units
        .iter()
        .zip(broken)
        .filter_map(|(unit, broken)| broken.map(|b| (unit.name.clone(), b.text)))
        .collect()
}

/// One line per `wants`, `after` or `before` entry that names a unit that
/// does not exist: harmless (the entry is ignored) but worth a log line.
pub fn warnings(units: &[Unit]) -> Vec<String> {
    let graph = Graph::new(units);
    let mut warnings = Vec::new();
    for unit in units {
        for (key, list) in [
            ("wants", &unit.wants),
            ("after", &unit.after),
            ("before", &unit.before),
        ] {
            for missing in list
                .iter()
                .filter(|n| !graph.index.contains_key(n.as_str()))
            {
                warnings.push(format!(
                    "unit {:?}: {key} {missing:?}, which does not exist; ignored",
                    unit.name
                ));
            }
        }
    }
    warnings
}

/// The most units [`show_cycle`] names before cutting the middle out.
const CYCLE_SHOWN: usize = 8;

/// The cycle `ring` read from position `start` round to it again:
/// `a → b → c → a`. A long cycle shows its first units, `…`, and its last
/// two, so that a ring of thousands of units stays one readable line.
fn show_cycle(units: &[Unit], ring: &[usize], start: usize) -> String {
    let len = ring.len();
    if len == 0 {
        return String::new();
    }
    let name = |k: usize| units[ring[(start + k) % len]].name.as_str();
    // The cycle has len + 1 entries: it returns to its start.
    if len < CYCLE_SHOWN + 2 {
        return (0..=len).map(name).collect::<Vec<_>>().join(" → ");
    }
    let head: Vec<&str> = (0..CYCLE_SHOWN).map(name).collect();
    format!(
        "{} → … → {} → {} ({len} units)",
        head.join(" → "),
        name(len - 1),
        name(len)
    )
}

/// Why a unit cannot start.
#[derive(Debug, Clone)]
struct Broken {
    /// The reason, as [`check`] returns it.
    text: String,
    /// The unit where the trouble starts: this one, or the end of its chain
    /// of broken requirements.
    origin: usize,
}

impl Broken {
    /// A unit broken for a reason of its own.
    fn root(origin: usize, text: String) -> Self {
        Broken { text, origin }
    }
}

/// The units as indices, with their "waits for" and "required by" edges
/// between existing units.
#[derive(Debug)]
struct Graph<'a> {
    /// Unit name to index (the first unit of that name).
    index: BTreeMap<&'a str, usize>,
    /// `waits_for[u]`: the units `u` starts after.
    waits_for: Vec<Vec<usize>>,
    /// `required_by[d]`: the units whose `requires` names `d`.
    required_by: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    fn new(units: &'a [Unit]) -> Self {
        let mut index = BTreeMap::new();
        for (i, unit) in units.iter().enumerate() {
            index.entry(unit.name.as_str()).or_insert(i);
        }
        let mut waits_for = vec![Vec::new(); units.len()];
        let mut required_by = vec![Vec::new(); units.len()];
        for (u, unit) in units.iter().enumerate() {
            let deps = unit.requires.iter().chain(&unit.wants).chain(&unit.after);
            for &d in deps.filter_map(|name| index.get(name.as_str())) {
                waits_for[u].push(d);
            }
            for &b in unit
                .before
                .iter()
                .filter_map(|name| index.get(name.as_str()))
            {
                waits_for[b].push(u);
            }
            for &d in unit
                .requires
                .iter()
                .filter_map(|name| index.get(name.as_str()))
            {
                required_by[d].push(u);
            }
        }
        for edges in waits_for.iter_mut().chain(required_by.iter_mut()) {
            edges.sort_unstable();
            edges.dedup();
        }
        Graph {
            index,
            waits_for,
            required_by,
        }
    }

    /// The strongly connected components of "waits for" (Tarjan, with an
    /// explicit stack), each sorted by index.
    fn components(&self) -> Vec<Vec<usize>> {
        let n = self.waits_for.len();
        let mut order: Vec<Option<usize>> = vec![None; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut components = Vec::new();
        let mut next = 0;
        for root in 0..n {
            if order[root].is_some() {
                continue;
            }
            // (node, position of the next edge to follow)
            let mut calls = vec![(root, 0)];
            order[root] = Some(next);
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&(v, edge)) = calls.last() {
                if let Some(&w) = self.waits_for[v].get(edge) {
                    if let Some(call) = calls.last_mut() {
                        call.1 += 1;
                    }
                    match order[w] {
                        None => {
                            order[w] = Some(next);
                            low[w] = next;
                            next += 1;
                            stack.push(w);
                            on_stack[w] = true;
                            calls.push((w, 0));
                        }
                        Some(w_order) if on_stack[w] => low[v] = low[v].min(w_order),
                        Some(_) => {}
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if order[v] == Some(low[v]) {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    component.sort_unstable();
                    components.push(component);
                }
            }
        }
        components
    }

    /// A shortest cycle from `member` back to itself inside `component`
    /// (breadth first), as `[member, …, member]`.
    fn cycle_through(&self, member: usize, component: &[usize]) -> Vec<usize> {
        let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([member]);
        while let Some(v) = queue.pop_front() {
            for &w in &self.waits_for[v] {
                if w == member {
                    // Walk back from `v` to `member` (the root, which has no
                    // parent), then read it forwards and close the cycle.
                    let mut path = vec![v];
                    let mut at = v;
                    while let Some(&p) = parent.get(&at) {
                        path.push(p);
                        at = p;
                    }
                    path.reverse();
                    path.push(member);
                    return path;
                }
                if component.binary_search(&w).is_ok() && w != member && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        // Unreachable for a member of a cyclic component; show it alone.
        vec![member, member]
    }
}

#[cfg(test)]
mod tests;
