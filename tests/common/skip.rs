//! Tests that cannot run here (no root, no peer daemon) return early through [`skip`]. libtest
//! captures what a passing test prints, so a plain `eprintln!` would vanish: instead each skip is
//! remembered and, when the test binary exits (after libtest's own `test result:` line), one
//! line names every skipped test of that binary and why. CI runs as root with every peer
//! installed, where nothing is skipped.
//!
//! Included by `common/mod.rs` and, in test files that do not use the harness, with
//! `#[path = "common/skip.rs"] mod skip;`.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Mutex, Once};

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static AT_EXIT: Once = Once::new();

/// Records that the running test is skipped for `reason`; the caller then returns.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if let Ok(mut s) = SKIPPED.lock() {
        s.push(format!("{test} ({reason})"));
    }
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` with no captured state.
        unsafe { libc::atexit(summary) };
    });
}

extern "C" fn summary() {
    let Ok(skipped) = SKIPPED.lock() else { return };
    if skipped.is_empty() {
        return;
    }
    let bin = std::env::args()
        .next()
        .and_then(|a| {
            let name = std::path::Path::new(&a)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            // Cargo names test binaries `<file>-<hash>`.
            Some(
                name.rsplit_once('-')
                    .map_or(name.clone(), |(n, _)| n.to_string()),
            )
        })
        .unwrap_or_default();
    // Written to the stderr handle directly: libtest's capture covers only the print macros.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {} test(s) in {bin}: {}",
        skipped.len(),
        skipped.join("; ")
    );
}
