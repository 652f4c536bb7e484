//! The crate graph is the trust boundary (ARCHITECTURE.md): the independent checker must not be
//! able to call the synthesis' DeepPoly, quantizer, solver or search. `cargo tree` is asked, for
//! every kind of dependency edge (normal, build and dev), what `certquant-check` can reach.

use std::process::Command;

/// Every package `cargo tree` lists for `package` (all edge kinds, deduplicated names).
fn reachable(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal,build,dev",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_checker_reaches_neither_bounds_nor_synthesis() {
    let deps = reachable("certquant-check");
    assert!(deps.iter().any(|d| d == "certquant-core"), "{deps:?}");
    for banned in [
        "certquant-bounds",
        "certquant-synth",
        "certquant-milp",
        "certquant",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "certquant-check must not depend on {banned}: {deps:?}"
        );
    }
}

#[test]
fn library_crates_link_no_plotting_progress_or_cli() {
    for lib in [
        "certquant-core",
        "certquant-bounds",
        "certquant-check",
        "certquant-synth",
        "certquant-milp",
    ] {
        let deps = reachable(lib);
        // (anyhow is reachable through prost-derive, a proc-macro: not a choice of ours)
        for banned in ["plotters", "indicatif", "clap", "tracing-subscriber"] {
            assert!(
                !deps.iter().any(|d| d == banned),
                "{lib} must not depend on {banned}"
            );
        }
    }
}

#[test]
fn the_bounds_crate_does_not_reach_the_solver_or_the_search() {
    let deps = reachable("certquant-bounds");
    for banned in ["certquant-synth", "certquant-milp", "coin_cbc", "cbc-src"] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "certquant-bounds must not depend on {banned}: {deps:?}"
        );
    }
}
