//! Data flows one way: `functions/*` → entry points (`lambda`, `config`, the local server) →
//! the pipeline (`http`) → `handlers` → `app` (the ports a request reaches) → the ports and
//! their adapters → `domain`. No module names a module of a layer above its own, and the
//! modules of one layer do not form a cycle. This test reads every `crate::` path in
//! `shared/src` (code, not comments), so a new upward import fails it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};

/// Each top-level module of the library and its layer, the lowest first.
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("clock", 1),
    ("logging", 1),
    ("aws", 1),
    ("metrics", 1),
    ("auth", 2),
    ("store", 2),
    ("sms", 2),
    ("push", 2),
    ("proof", 2),
    ("events", 2),
    ("secrets", 2),
    ("app", 3),
    ("handlers", 4),
    ("http", 5),
    ("config", 6),
    ("lambda", 6),
];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("module {module} has no layer in LAYERS: give it one"))
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &std::path::Path, top: Option<&str>, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let module = top.map_or(name.clone(), str::to_owned);
        if path.is_dir() {
            sources(&path, Some(&module), out);
        } else if path.extension().is_some_and(|e| e == "rs") && module != "lib" {
            out.push((module, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The top-level modules a source names through `crate::`, comments left out.
fn named_modules(source: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    // Inside a `use crate::{` group spanning lines (another crate's group names its modules,
    // not ours: `use aws_smithy_runtime_api::client::{\n    http::...` is not `crate::http`).
    let mut in_crate_group = false;
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        if let Some((_, group)) = code.split_once("crate::{") {
            match group.split_once('}') {
                // `use crate::{a::X, b};` on one line: each item's first name.
                Some((items, _)) => named.extend(
                    items
                        .split(',')
                        .map(|item| item.trim().split("::").next().unwrap_or_default())
                        .filter(|module| LAYERS.iter().any(|(name, _)| name == module))
                        .map(str::to_owned),
                ),
                None => in_crate_group = true,
            }
        } else if code.trim_start().starts_with("};") {
            in_crate_group = false;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !module.is_empty() {
                named.insert(module);
            }
        }
        // `use crate::{a::..., b::...}` across lines: the lines inside the braces.
        let trimmed = code.trim_start();
        if let Some((first, _)) = trimmed.split_once("::") {
            if in_crate_group
                && LAYERS.iter().any(|(name, _)| *name == first)
                && (line.starts_with("    ") && !line.starts_with("        "))
                && !trimmed.starts_with("crate")
            {
                named.insert(first.to_owned());
            }
        }
    }
    named
}

#[test]
fn no_module_imports_one_above_it_and_no_layer_has_a_cycle() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, None, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, source) in &files {
        for named in named_modules(source) {
            if named == *module || !LAYERS.iter().any(|(name, _)| *name == named) {
                continue;
            }
            if layer(&named) > layer(module) {
                upward.push(format!(
                    "{module} (layer {}) names {named} (layer {})",
                    layer(module),
                    layer(&named)
                ));
            }
            edges.entry(module.clone()).or_default().insert(named);
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the flow:\n{}",
        upward.join("\n")
    );
    // Within a layer: no cycle (a depth-first search from each module).
    for (start, _) in LAYERS {
        let mut stack: Vec<Vec<String>> = vec![vec![(*start).to_owned()]];
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in edges.get(last).into_iter().flatten() {
                assert!(next != start, "a cycle: {} -> {next}", path.join(" -> "));
                if !path.contains(next) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    // Every module is in the table, and the table names no module that is gone.
    let present: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();
    let listed: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    assert_eq!(present, listed);
}

/// A function binary is only its entry point: it names the library's `lambda` (to run) and
/// its route's handler (which `lambda` builds the function for), nothing else of it.
#[test]
fn function_binaries_only_call_the_entry_point() {
    let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut seen = 0;
    for entry in std::fs::read_dir(functions).unwrap() {
        let main = entry.unwrap().path().join("src/main.rs");
        let source = std::fs::read_to_string(&main).unwrap();
        for (at, _) in source.match_indices("additional_factors::") {
            let rest = &source[at + "additional_factors::".len()..];
            // `additional_factors::lambda::...`, or `additional_factors::{a::..., b}`.
            let named: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .collect(),
                None => vec![rest],
            };
            for item in named.iter().filter(|i| !i.is_empty()) {
                let module = item.split("::").next().unwrap_or_default().trim();
                assert!(
                    module == "lambda" || module == "handlers",
                    "{}: names additional_factors::{module}",
                    main.display()
                );
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 23);
}

/// The checker itself: an upward name is found in a `use crate::` line, in a nested `use`
/// group, in a one-line group and in an inline path; neither a comment nor another crate's
/// group whose items share a name with one of our modules is read.
#[test]
fn the_checker_finds_names_in_every_form() {
    let source = "use crate::{\n    http::Caller,\n    domain::x,\n};\nuse other::client::{\n    lambda::Runtime,\n    config::Builder,\n};\nuse crate::{store::Table, clock};\nfn f() { crate::app::App::new() }\n// crate::lambda::run\n";
    assert_eq!(
        named_modules(source),
        BTreeSet::from(["app", "clock", "domain", "http", "store"].map(str::to_owned))
    );
}
