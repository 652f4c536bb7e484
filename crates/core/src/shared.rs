//! Where the tests find `../shared`, the read-only folder of benchmark models and data that
//! sits beside the repository (and beside CI's clone). It is never part of the project.
//!
//! A user without it gets the tests that need it skipped, with a message on stderr. CI sets
//! `CERTQUANT_REQUIRE_SHARED=1` (`.ci/run`), under which a missing folder fails the test
//! instead, so a green CI proves that those tests ran. `CERTQUANT_SHARED=DIR` points
//! elsewhere.

use std::path::PathBuf;

/// The environment variable under which a missing `../shared` is an error, not a skip.
pub const REQUIRE_VAR: &str = "CERTQUANT_REQUIRE_SHARED";

/// The `shared` folder if it holds `sub` (e.g. `"data/mnist"`), else `None` after printing
/// `skipped: …` — or a panic naming the path when [`REQUIRE_VAR`] is set to `1`.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("CERTQUANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let dir = root.join(sub);
    if dir.exists() {
        return Some(dir);
    }
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("{} is required ({REQUIRE_VAR}=1) but absent", dir.display());
    }
    eprintln!("skipped: {} not present", dir.display());
    None
}
