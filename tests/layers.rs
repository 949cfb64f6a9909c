//! The layering of `src/`, checked on the source text (`cargo test --test layers`).
//!
//! Every top-level module belongs to one layer; a module may name (`crate::x`) only modules of
//! its own layer or below, so import cycles can only be inside a layer:
//!
//! ```text
//!  root     cli, lib, main                 command line; the module list
//!  service  app, api                       composition (builds the services, starts and
//!                                          stops the tasks) and HTTP/WebSocket: the
//!                                          contract's envelope and errors
//!  domain   auth, users, wireguard, ipam,  operations, rules, engines, their own error
//!           bgp, rpki, logs, system,       enums; the store (SQL) reads and writes their
//!           monitor, store                 rows and pure types
//!  bus      changes                        the change bus
//!  base     sync, time, fsutil, input,     helpers with no knowledge of the rest
//!           error, config, logging, testutil
//! ```
//!
//! Besides, domain code never names the API's error type or the `App`: a domain operation
//! takes its store, engine and config section and fails with its own error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "sync", "time", "fsutil", "input", "error", "config", "logging", "testutil",
        ],
    ),
    ("bus", &["changes"]),
    (
        "domain",
        &[
            "auth",
            "backup",
            "users",
            "wireguard",
            "ipam",
            "bgp",
            "rpki",
            "logs",
            "system",
            "monitor",
            "store",
        ],
    ),
    ("service", &["app", "api"]),
    ("root", &["cli", "lib", "main"]),
];

/// Names domain code must not use (outside comments).
const API_NAMES: &[&str] = &["ApiError", "ApiResult", "App"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments), so that a
/// doc mentioning `crate::api` or `App` is not an import.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = match l.find("//") {
            // Not inside a string literal such as "http://": good enough for this tree,
            // where `//` in code appears only in string literals holding URLs.
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        };
        (!code.trim().is_empty()).then(|| (i + 1, code.to_string()))
    })
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Top-level modules named as `crate::x` or `crate::{x, y::…}` on a line.
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| is_ident(c) && c != '$') {
            continue; // `foo_crate::`, not ours
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn names_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn violations() -> BTreeMap<String, Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let domain = layer_of("auth");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let module = top_module(&src, &file);
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let Some(layer) = layer_of(&module) else {
            found
                .entry(rel)
                .or_default()
                .push(format!("module `{module}` has no layer in tests/layers.rs"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in code_lines(&text) {
            for target in crate_refs(&line) {
                match layer_of(&target) {
                    Some(l) if l > layer => found.entry(rel.clone()).or_default().push(format!(
                        "{rel}:{n}: {} module `{module}` names {} module `crate::{target}`",
                        LAYERS[layer].0, LAYERS[l].0
                    )),
                    _ => {}
                }
            }
            if Some(layer) == domain {
                for w in API_NAMES.iter().filter(|w| names_word(&line, w)) {
                    found
                        .entry(rel.clone())
                        .or_default()
                        .push(format!("{rel}:{n}: domain code names `{w}`"));
                }
            }
        }
    }
    found
}

#[test]
fn modules_name_only_their_own_layer_or_below() {
    let report: Vec<String> = violations().into_values().flatten().collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_checker_sees_imports_and_names() {
    assert_eq!(
        crate_refs("use crate::{api::request, store::X}; let a = $crate::app::App;"),
        ["api", "store", "app"]
    );
    assert!(crate_refs("use some_crate::api;").is_empty());
    assert!(names_word("fn f(app: &App)", "App"));
    assert!(!names_word("fn f(app: &AppState)", "App"));
    let code: Vec<_> = code_lines("//! crate::api\nlet x = 1; // App\n").collect();
    assert_eq!(code, [(2, "let x = 1; ".to_string())]);
}
