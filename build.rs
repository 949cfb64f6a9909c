//! Embeds the OpenAPI document (`openapi/openapi.json`, hand-written and readable in the
//! repository) in the binary: parsed (a broken document fails the build), its `info.version`
//! set to the crate's, minified and gzip-compressed into `$OUT_DIR/openapi.json.gz`, with its
//! inflated length in `$OUT_DIR/openapi_len.rs` so the server can inflate it into an
//! exactly sized buffer for clients that do not accept gzip.

use std::io::Write;
use std::path::Path;

fn main() {
    const SOURCE: &str = "openapi/openapi.json";
    println!("cargo:rerun-if-changed={SOURCE}");
    let text = std::fs::read_to_string(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let mut doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    match doc.pointer_mut("/info/version") {
        Some(v) => *v = serde_json::Value::String(version),
        None => panic!("{SOURCE}: no info.version"),
    }
    let minified = serde_json::to_vec(&doc).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let gzipped = gz
        .write_all(&minified)
        .and_then(|()| gz.finish())
        .unwrap_or_else(|e| panic!("gzip: {e}"));
    let out = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    let out = Path::new(&out);
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    write("openapi.json.gz", &gzipped);
    write("openapi_len.rs", format!("{}\n", minified.len()).as_bytes());
}
