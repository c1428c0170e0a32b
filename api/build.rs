//! Embeds the patient app (`api/app/`) in the binary: writes the table of its files,
//! each with its media type and its bytes (`include_bytes!`), for `http::app`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("app");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for path in &files {
        let name = path
            .strip_prefix(&root)
            .expect("under app/")
            .to_str()
            .expect("a UTF-8 file name")
            .replace('\\', "/");
        let Some(media_type) = media_type(&name) else {
            panic!("api/app/{name}: no media type is known for this file's extension");
        };
        writeln!(
            table,
            "    ({name:?}, {media_type:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("app_files.rs");
    std::fs::write(out, table).expect("write the table of the app's files");
}

/// Every file under `dir`, recursively.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // editors' and systems' hidden files are not the app's
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The media type a browser needs for each kind of file the app has.
fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => return None,
    })
}
