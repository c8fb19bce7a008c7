//! The import layering of the source, checked: no module imports one above it, no two
//! modules import each other (directly or round a cycle), and the shell renders only what
//! the cluster and client layers hand it.
//!
//! The test reads every file under `src/`, takes the module it belongs to (its first path
//! component: `src/shell/format.rs` is in `shell`), and collects the modules it names
//! through `crate::` (and, in the binary's modules, `kv2pc::`), resolving names the
//! library re-exports at its root (`crate::Cluster` is `cluster`) from `src/lib.rs`.
//! Comments and unit tests (the item after a `#[cfg(test)]`, and `tests.rs` files) are
//! not read: a test may reach into any layer to check it. A module missing from
//! [`LAYERS`] fails the test, so a new module is placed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top to bottom. A module may import modules of its own layer or below.
const LAYERS: &[&[&str]] = &[
    // The binary: the command line over the prompt, over what both print through.
    &["cli"],
    &["repl"],
    &["printer", "exit"],
    // The user interface over the library, and the benchmark tool beside it.
    &["shell", "bench"],
    // The model checker: it explores the simulator's runs, for the shell's EXPLORE.
    &["explore"],
    &["client"],
    // One node as its own OS process: the cluster cut down to one node, over TCP.
    &["process"],
    &["cluster"],
    // The wire format and the TCP transport between node processes, which posts what
    // arrives into a node's inbox on the net.
    &["wire"],
    // Node threads (and the one-thread simulator that drives the same state machines).
    &["runtime", "sim"],
    &["context"],
    &["net"],
    // The protocol as pure state machines.
    &["node"],
    &["coordinator", "participant", "deadlock"],
    &["message"],
    &["lock", "store"],
    &["wal"],
    // The storage seam under the log: the real file system, or a disk that loses power.
    &["disk"],
    &["trace"],
    &["crash", "config"],
    // The history checker is pure: it reads histories, whoever recorded them.
    &["clock", "error", "rng", "text", "history"],
    // Value types: ids and keys, and the key ranges a scan reads.
    &["types", "keyrange"],
];

/// What the shell may import: the cluster's and the clients' API, the value types, and the
/// explorer that EXPLORE runs.
const SHELL_MAY_IMPORT: &[&str] = &[
    "shell", "cluster", "client", "config", "clock", "error", "types", "text", "history",
    "keyrange", "explore",
];

#[test]
fn no_module_imports_one_above_it() {
    let imports = imports();
    let layer = layer_of();
    let mut violations = Vec::new();
    for (module, used) in &imports {
        let Some(&own) = layer.get(module.as_str()) else {
            violations.push(format!(
                "module `{module}` is in no layer of tests/layers.rs"
            ));
            continue;
        };
        for (target, file) in used {
            match layer.get(target.as_str()) {
                None => violations.push(format!(
                    "{file} names `{target}`, which is in no layer of tests/layers.rs"
                )),
                Some(&theirs) if theirs < own => violations.push(format!(
                    "{file}: `{module}` imports `{target}`, a layer above it"
                )),
                Some(_) => {}
            }
        }
    }
    assert!(violations.is_empty(), "\n{}", violations.join("\n"));
}

#[test]
fn no_two_modules_import_each_other() {
    let graph: BTreeMap<String, BTreeSet<String>> = imports()
        .into_iter()
        .map(|(module, used)| {
            let targets = used
                .into_keys()
                .filter(|target| *target != module)
                .collect();
            (module, targets)
        })
        .collect();
    let cycles = cycles(&graph);
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_shell_renders_only_what_the_cluster_and_clients_give_it() {
    let imports = imports();
    let shell = imports.get("shell").expect("a shell module");
    let extra: Vec<String> = (shell.iter())
        .filter(|(target, _)| !SHELL_MAY_IMPORT.contains(&target.as_str()))
        .map(|(target, file)| format!("{file} imports `{target}`"))
        .collect();
    assert!(extra.is_empty(), "\n{}", extra.join("\n"));
}

/// A few hand-made lines, so the scanner itself is checked.
#[test]
fn the_scanner_reads_use_lines_groups_and_paths() {
    let roots = BTreeMap::from([("Cluster".to_string(), "cluster".to_string())]);
    let text = "use crate::lock::{KeyLocks, LockMode};\n\
                use crate::{Cluster, error::Error, net::{Mail, What}};\n\
                // use crate::wal;\n\
                let x = crate::clock::now() + kv2pc::rng::Rng::new();\n\
                #[cfg(test)]\n\
                mod tests {\n\
                    use crate::runtime::{a, b};\n\
                }\n\
                #[cfg(test)]\n\
                mod more;\n\
                fn after() { crate::types::f() }\n";
    let found: BTreeSet<String> = names(text, &roots).into_iter().collect();
    let expected = ["cluster", "clock", "error", "lock", "net", "rng", "types"];
    assert_eq!(found, expected.iter().map(|s| s.to_string()).collect());
}

/// Each module's imports, with one file that makes each.
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let roots = root_exports(&lib);
    let mut imports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).expect("a file under src");
        let Some(module) = module_of(relative) else {
            continue;
        };
        if relative.file_name().is_some_and(|name| name == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let shown = format!("src/{}", relative.display());
        let entry = imports.entry(module).or_default();
        for name in names(&text, &roots) {
            entry.entry(name).or_insert_with(|| shown.clone());
        }
    }
    imports
}

/// The module a file under `src/` belongs to; `None` for the crate roots.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(module, "lib" | "main")).then(|| module.to_string())
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("a readable directory")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// What `pub use module::{A, B};` lines in `lib.rs` make names at the root stand for.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut roots = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items
            .trim_end_matches(';')
            .trim_matches(|c| c == '{' || c == '}');
        for item in items.split(',') {
            let name = item.trim().rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                roots.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    roots
}

/// The modules a file's code names through `crate::` or `kv2pc::`.
fn names(text: &str, roots: &BTreeMap<String, String>) -> Vec<String> {
    let mut code = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            skip_item(&mut lines);
        } else if !trimmed.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    let mut found = Vec::new();
    for prefix in ["crate::", "kv2pc::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for name in path_heads(rest) {
                found.push(roots.get(&name).cloned().unwrap_or(name));
            }
        }
    }
    found
}

/// Skips the item after a `#[cfg(test)]`: a `mod tests;` line, or every line up to the
/// brace that closes the item's block.
fn skip_item<'a>(lines: &mut impl Iterator<Item = &'a str>) {
    let mut depth = 0i64;
    let mut opened = false;
    for line in lines {
        let code = line.split("//").next().unwrap_or("");
        for c in code.chars() {
            match c {
                '{' => (depth, opened) = (depth + 1, true),
                '}' => depth -= 1,
                _ => {}
            }
        }
        let attribute = line.trim_start().starts_with("#[");
        if (opened && depth <= 0) || (!opened && !attribute && code.trim_end().ends_with(';')) {
            return;
        }
    }
}

/// The first segment of each path that `rest` begins: `a::b` gives `a`, `{a, b::{c}}`
/// gives `a` and `b`.
fn path_heads(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut heads = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                heads.push(ident(group[start..index].trim()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads.push(ident(group[start..index].trim()));
                start = index + 1;
            }
            _ => {}
        }
    }
    heads.retain(|head| !head.is_empty());
    heads
}

fn layer_of() -> BTreeMap<&'static str, usize> {
    (LAYERS.iter().enumerate())
        .flat_map(|(index, modules)| modules.iter().map(move |module| (*module, index)))
        .collect()
}

/// Every cycle in `graph`, each as `a -> b -> a`, found by depth-first search.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|seen| seen == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            found.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}
