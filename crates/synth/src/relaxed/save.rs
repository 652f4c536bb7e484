//! Saving slow relaxed-count instances as JSON (`CERTQUANT_SAVE_COUNTS`), so that a count the
//! exact search finds hard can become a test fixture (docs/method.md, eqs. (37c), (86)).

use super::{Check, exact};

/// Environment variable naming a directory: every exact decision of the relaxed count that
/// takes longer than [`SAVE_COUNTS_SECONDS`] is written there as a JSON instance (the format of
/// `crates/synth/tests/fixtures/relaxed_count_*.json`: `limit`, `lo`, `hi`, `checks` with
/// `constant` and `coeffs`, plus the answer), so a slow instance can become a test fixture.
/// Failures to write are logged, never fatal.
pub const SAVE_COUNTS_ENV: &str = "CERTQUANT_SAVE_COUNTS";

/// Exact decisions slower than this many seconds are saved under [`SAVE_COUNTS_ENV`].
pub const SAVE_COUNTS_SECONDS: f64 = 1.0;

/// One decided count: the instance (checks over the box `[lo, hi]`, "may more than `limit`
/// fail at one x?"), the exact search's answer and its time.
#[derive(Clone, Copy)]
pub(super) struct Decided<'a> {
    pub checks: &'a [Check],
    pub limit: usize,
    pub lo: &'a [f64],
    pub hi: &'a [f64],
    pub decision: &'a exact::Decision,
    pub seconds: f64,
}

/// Writes a slow count instance to the directory named by [`SAVE_COUNTS_ENV`], if set
/// (docs/method.md, eq. (37c)); a debugging aid, no effect on the answer.
pub(super) fn save_slow_instance(c: &Decided<'_>) {
    let Some(dir) = std::env::var_os(SAVE_COUNTS_ENV) else {
        return;
    };
    if c.seconds <= SAVE_COUNTS_SECONDS {
        return;
    }
    match write_instance(std::path::Path::new(&dir), c) {
        Ok(path) => {
            tracing::info!(path = %path.display(), seconds = c.seconds, "relaxed count: instance saved")
        }
        Err(e) => tracing::warn!(error = %e, "relaxed count: cannot save instance"),
    }
}

/// Writes one count instance as JSON into `dir` (created if missing) and returns its path,
/// named by the instance's size and a hash of its content.
pub(super) fn write_instance(
    dir: &std::path::Path,
    c: &Decided<'_>,
) -> std::io::Result<std::path::PathBuf> {
    let Decided {
        checks,
        limit,
        lo,
        hi,
        decision,
        seconds,
    } = *c;
    let answer = match decision {
        exact::Decision::AtLeast { count, .. } => format!("at least {count} fail"),
        exact::Decision::Below => format!("at most {limit} fail"),
        exact::Decision::Undecided => "undecided".to_string(),
    };
    let value = serde_json::json!({
        "about": format!(
            "relaxed count instance saved by {SAVE_COUNTS_ENV}: check i fails where \
             constant + coeffs\u{b7}x < 0, x in [lo, hi]; the question is whether more than \
             `limit` fail at one x (exact search: {answer} in {seconds:.3} s)"
        ),
        "limit": limit,
        "lo": lo,
        "hi": hi,
        "checks": checks
            .iter()
            .map(|c| serde_json::json!({"constant": c.constant, "coeffs": c.coeffs}))
            .collect::<Vec<_>>(),
    });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&value.to_string(), &mut hasher);
    let path = dir.join(format!(
        "relaxed_count_{}checks_limit{limit}_{:016x}.json",
        checks.len(),
        std::hash::Hasher::finish(&hasher)
    ));
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, value.to_string())?;
    Ok(path)
}
