//! The modules' layering, read from the source: no top-level module reaches, directly or through others, one that reaches it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each top-level module of `src/` names of the others (`crate::x`, `crate::{x, y}`),
/// leaving out comments and test code.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // Test code may reach anything; so may the test-only files.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        if relative.ends_with("contract.rs") {
            continue;
        }
        let named = graph.entry(top.clone()).or_default();
        // Whole statements, so a `use crate::{…}` over several lines is read as one.
        let code = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join(" ");
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let names = match rest.strip_prefix('{') {
                Some(group) => top_level_names(group),
                None => vec![rest],
            };
            for name in names {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    named.insert(name);
                }
            }
        }
    }
    graph
}

/// The names at the top of a `{…}` group, up to its closing brace: `api, headers}` gives `api`
/// and `headers`; `a::{b, c}, d}` gives `a::{b, c}` and `d`.
fn top_level_names(group: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(&group[start..i]);
                return names;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

#[test]
fn a_grouped_import_over_lines_names_each_module() {
    assert_eq!(top_level_names("api, headers};"), ["api", " headers"]);
    assert_eq!(top_level_names("a::{b, c}, d} x"), ["a::{b, c}", " d"]);
}

/// A path from `from` back to itself, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_module_reaches_back_into_one_that_reaches_it() {
    let graph = imports();
    assert!(
        graph.contains_key("api") && graph.contains_key("ui"),
        "read the source: {graph:?}"
    );
    assert!(
        graph["server"].contains("ui"),
        "the reader sees imports: {graph:?}"
    );
    for module in graph.keys() {
        if let Some(cycle) = cycle_through(&graph, module) {
            panic!("an import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_api_and_the_pages_never_reach_the_router() {
    let graph = imports();
    for module in ["api", "ui", "state", "store", "bridge"] {
        assert!(
            !graph[module].contains("server"),
            "{module} imports server: {:?}",
            graph[module]
        );
    }
    assert!(!graph["api"].contains("ui"), "the API never uses the pages");
}
