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
