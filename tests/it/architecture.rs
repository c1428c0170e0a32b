//! The crate graph is domain <- fhir-mapping <- api <- tests, and the inner crates do no IO.

use std::path::Path;

fn dependencies(krate: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let manifest: toml::Table = text.parse().expect("valid TOML");
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

const IO_CRATES: &[&str] = &[
    "actix-web",
    "actix-rt",
    "tokio",
    "diesel",
    "diesel_migrations",
    "libsqlite3-sys",
    "pq-sys",
    "reqwest",
    "tracing-subscriber",
    "clap",
    "uuid",
];

#[test]
fn domain_depends_on_nothing_of_ours_and_does_no_io() {
    let deps = dependencies("domain");
    for forbidden in ["fhir-mapping", "api", "fhirbolt", "serde_json"]
        .iter()
        .chain(IO_CRATES)
    {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "domain depends on {forbidden}"
        );
    }
}

#[test]
fn fhir_mapping_depends_only_on_domain_and_does_no_io() {
    let deps = dependencies("fhir-mapping");
    assert!(deps.iter().any(|d| d == "domain"));
    for forbidden in ["api"].iter().chain(IO_CRATES) {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "fhir-mapping depends on {forbidden}"
        );
    }
}

#[test]
fn api_does_not_depend_on_tests() {
    let deps = dependencies("api");
    assert!(deps.iter().any(|d| d == "fhir-mapping"));
    assert!(!deps.iter().any(|d| d == "tests"));
}

/// The README's `cargo run --release` must start the server: the workspace runs its
/// default member, which has the one binary.
#[test]
fn cargo_run_starts_the_server() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
    let manifest: toml::Table = text.parse().expect("valid TOML");
    let defaults = manifest["workspace"]
        .get("default-members")
        .and_then(|d| d.as_array())
        .map(|d| d.iter().filter_map(|m| m.as_str()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(defaults, ["api"]);
    let api = std::fs::read_to_string(root.join("api/Cargo.toml")).expect("api manifest");
    let api: toml::Table = api.parse().expect("valid TOML");
    let bins: Vec<&str> = api
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|b| b.iter().filter_map(|b| b.get("name")?.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(bins, ["hep-server"], "one binary, the server");
    assert!(!root.join("api/src/bin").exists());
}

/// The floors of `api/src`, top to bottom (ARCHITECTURE.md, "Floors"): a module
/// imports only modules of the floors below its own, or of its own module tree (a
/// parent and its children). A module's floor is that of the longest prefix listed.
const FLOORS: &[&[&str]] = &[
    &["server"],
    &["http"],
    &["operations", "clinics", "transaction", "health", "metrics"],
    &["service"],
    &["referrals", "outcomes", "monitoring"],
    &["sessions", "subscriptions::delivery"],
    &["commit"],
    &["subscriptions"],
    &["export", "audit", "search"],
    &["auth"],
    &["search::parsing", "patch"],
    &["error", "telemetry"],
    &["config"],
    &["db", "clock"],
];

/// Modules that may name actix-web's request types (`HttpRequest`, `ServiceRequest`,
/// extractors, middleware): the HTTP floor and the server that builds it.
const REQUEST_TYPES_ALLOWED: &[&str] = &["server", "http"];

/// The one module that writes versions (`store::write_version`).
const COMMIT: &str = "commit";

/// The module path of a file of `src` (`db/store.rs` -> `db::store`, `http/mod.rs` ->
/// `http`), `None` for the crate root and the binary.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    let module = parts.join("::");
    (!module.is_empty() && module != "lib" && module != "main").then_some(module)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file that counts: its unit tests (from `#[cfg(test)]`) and comments
/// left out.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split(" //").next().unwrap_or(line));
        code.push('\n');
    }
    code
}

/// The paths a piece of code names from `anchor` (`crate::` or `super::`), braces of
/// `use` lists expanded: `crate::db::{Db, store::Key}` gives `db::Db`, `db::store::Key`.
fn paths_after(code: &str, anchor: &str) -> Vec<String> {
    fn read(chars: &[char], mut i: usize, prefix: &str, out: &mut Vec<String>) -> usize {
        let mut path = prefix.to_string();
        loop {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if i > start {
                if !path.is_empty() && !path.ends_with("::") {
                    path.push_str("::");
                }
                path.extend(&chars[start..i]);
            }
            if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
                i += 2;
                path.push_str("::");
                if chars.get(i) == Some(&'{') {
                    i += 1;
                    loop {
                        while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                            i += 1;
                        }
                        match chars.get(i) {
                            Some('}') => return i + 1,
                            None => return i,
                            _ => i = read(chars, i, &path, out),
                        }
                    }
                }
                continue;
            }
            // `self` in a list names the module itself
            let path = path.trim_end_matches("::self").trim_end_matches("::");
            out.push(path.to_string());
            // skip what follows a name in a list (` as x`)
            while i < chars.len() && !matches!(chars[i], ',' | '}' | ';' | '(' | ')') {
                if chars[i] == ' ' && !path.is_empty() {
                    i += 1;
                    continue;
                }
                if !(chars[i].is_alphanumeric() || chars[i] == '_') {
                    break;
                }
                i += 1;
            }
            return i;
        }
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(anchor) {
        let before = rest[..at].chars().last();
        let after = &rest[at + anchor.len()..];
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            let chars: Vec<char> = after.chars().collect();
            read(&chars, 0, "", &mut out);
        }
        rest = after;
    }
    out
}

/// The import graph of the modules of `src`: each module, the modules it names.
fn import_graph(
    src: &Path,
) -> (
    std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    std::collections::BTreeMap<String, String>,
) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut code = std::collections::BTreeMap::new();
    for f in &files {
        if let Some(m) = module_of(src, f) {
            let text = std::fs::read_to_string(f).expect("readable source file");
            code.insert(m, code_of(&text));
        }
    }
    let modules: std::collections::BTreeSet<String> = code.keys().cloned().collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|p| modules.contains(p))
    };
    let mut graph = std::collections::BTreeMap::new();
    for (m, text) in &code {
        let mut targets = std::collections::BTreeSet::new();
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        let named = paths_after(text, "crate::").into_iter().chain(
            paths_after(text, "super::").into_iter().map(|p| {
                if parent.is_empty() {
                    p
                } else {
                    format!("{parent}::{p}")
                }
            }),
        );
        for path in named {
            if let Some(t) = resolve(&path)
                && &t != m
            {
                targets.insert(t);
            }
        }
        graph.insert(m.clone(), targets);
    }
    (graph, code)
}

fn floor_of(module: &str) -> usize {
    let mut best: Option<(usize, usize)> = None;
    for (floor, prefixes) in FLOORS.iter().enumerate() {
        for p in *prefixes {
            let matches = module == *p || module.starts_with(&format!("{p}::"));
            if matches && best.is_none_or(|(len, _)| p.len() > len) {
                best = Some((p.len(), floor));
            }
        }
    }
    best.map_or_else(
        || panic!("`{module}` is on no floor: add it to FLOORS and ARCHITECTURE.md"),
        |(_, f)| f,
    )
}

fn same_tree(a: &str, b: &str) -> bool {
    let root = |m: &str| m.split("::").next().unwrap_or(m).to_string();
    root(a) == root(b)
}

/// Every rule of the floors broken by the modules of `src`.
fn floor_violations(src: &Path) -> Vec<String> {
    let (graph, code) = import_graph(src);
    let mut broken = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            let (f, t) = (floor_of(from), floor_of(to));
            if t < f || (t == f && !same_tree(from, to)) {
                broken.push(format!("`{from}` (floor {f}) imports `{to}` (floor {t})"));
            }
        }
    }
    for (module, text) in &code {
        if module != COMMIT && text.contains("write_version(") && module != "db::store" {
            broken.push(format!("`{module}` writes a version; only `{COMMIT}` does"));
        }
        let allowed = REQUEST_TYPES_ALLOWED
            .iter()
            .any(|a| module == a || module.starts_with(&format!("{a}::")));
        // the request side of actix-web: requests, their extractors and middleware
        let request_types = [
            "HttpRequest",
            "HttpMessage",
            "FromRequest",
            "dev",
            "web",
            "middleware",
        ];
        let named = paths_after(text, "actix_web::");
        if !allowed
            && let Some(t) = named.iter().find(|p| {
                request_types
                    .iter()
                    .any(|r| p.as_str() == *r || p.starts_with(&format!("{r}::")))
            })
        {
            broken.push(format!("`{module}` names the actix request type `{t}`"));
        }
    }
    // no cycle between module trees either (a parent and its children excepted)
    for (from, targets) in &graph {
        for to in targets {
            if !same_tree(from, to) && reaches(&graph, to, from) {
                broken.push(format!("`{from}` and `{to}` import each other"));
            }
        }
    }
    broken
}

fn reaches(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    from: &str,
    to: &str,
) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        if m == to {
            return true;
        }
        if seen.insert(m.clone()) {
            todo.extend(graph.get(&m).into_iter().flatten().cloned());
        }
    }
    false
}

fn api_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src")
}

#[test]
fn api_modules_stay_on_their_floors() {
    let broken = floor_violations(&api_src());
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The check sees what it must: an import upward, a second writer of versions and a
/// request type below `http`, each added to a copy of the sources, fail it.
#[test]
fn the_floor_check_fails_on_a_forbidden_import() {
    let cases = [
        (
            "db/store.rs",
            "use crate::http::AppState;\n",
            "imports `http`",
        ),
        (
            "search/mod.rs",
            "use crate::service::Scope;\n",
            "imports `service`",
        ),
        (
            "sessions.rs",
            "fn w(c: &mut crate::db::AnyConnection) { let _ = crate::db::store::write_version(c, todo!()); }\n",
            "writes a version",
        ),
        (
            "auth/mod.rs",
            "fn f(_: &actix_web::HttpRequest) {}\n",
            "actix request type",
        ),
    ];
    for (file, added, expected) in cases {
        let copy = tempfile::tempdir().expect("temporary directory");
        copy_tree(&api_src(), copy.path());
        let path = copy.path().join(file);
        let text = std::fs::read_to_string(&path).expect("source file");
        std::fs::write(&path, format!("{added}{text}")).expect("write the copy");
        let broken = floor_violations(copy.path());
        assert!(
            broken.iter().any(|b| b.contains(expected)),
            "adding `{added}` to {file} went unseen: {broken:?}"
        );
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("readable directory") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("directory");
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn import_paths_are_read_with_their_lists() {
    let code = "use crate::db::{AnyConnection, Db, store::{self, Key}};\nlet x = crate::clock::now();\nuse super::AppState;";
    let mut crate_paths = paths_after(code, "crate::");
    crate_paths.sort();
    assert_eq!(
        crate_paths,
        [
            "clock::now",
            "db::AnyConnection",
            "db::Db",
            "db::store",
            "db::store::Key"
        ]
    );
    assert_eq!(paths_after(code, "super::"), ["AppState"]);
}

/// The import graph and what breaks the floors, printed for a review (`HEP_ARCH_SRC`
/// names another source tree): `cargo test -p tests --test it import_graph -- --ignored
/// --nocapture`.
#[test]
#[ignore = "prints the import graph for a review"]
fn print_import_graph() {
    let src = std::env::var("HEP_ARCH_SRC").map_or_else(|_| api_src(), Into::into);
    let (graph, _) = import_graph(&src);
    let edges: usize = graph.values().map(|t| t.len()).sum();
    for (from, targets) in &graph {
        let names: Vec<&str> = targets.iter().map(String::as_str).collect();
        println!("{from} -> {}", names.join(" "));
    }
    let broken = floor_violations(&src);
    for b in &broken {
        println!("broken: {b}");
    }
    println!(
        "{} modules, {edges} imports, {} broken rules",
        graph.len(),
        broken.len()
    );
}
