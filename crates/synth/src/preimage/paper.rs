//! The paper's engine: one MILP per layer, Problem (3) with the disjunction "some point
//! escapes" encoded by the escape binaries `η`/`ζ` of
//! [`BaseModel::require_some_escape`](super::encoding::BaseModel::require_some_escape).
//! Kept as the baseline the fast engine is measured against (`--preimage paper`).

use certquant_milp::Backend;

use super::encoding::Escape;
use super::template::LayerCtx;
use super::{ChiSource, LayerOutcome, PreimageError, PreimageOptions, safe_chi, solve_opts};

/// Solves layer `ctx.k`'s Problem (3) as one MILP: `min χ` over the template at `χ ≤ chi_max`
/// subject to "some escape condition holds"; no solution means `χ = chi_max` (capped).
///
/// (docs/method.md, eqs. (25)–(27))
pub(super) fn solve_paper(
    ctx: &LayerCtx<'_>,
    escapes: &[Escape],
    backend: &dyn Backend,
    opts: &PreimageOptions,
) -> Result<LayerOutcome, PreimageError> {
    let mut m = ctx.base_model(opts.chi_max);
    if escapes.len() == 1 {
        m.require_escape(&escapes[0]);
    } else {
        m.require_some_escape(escapes, ctx.dp.input());
    }
    let s = backend.solve(&m.p, &solve_opts(opts))?;
    Ok(match safe_chi(ctx.k, &s)? {
        None => (opts.chi_max, ChiSource::Capped, 1, 0),
        Some((chi, true)) => (chi.min(opts.chi_max), ChiSource::TimeLimitBound, 1, 0),
        Some((chi, false)) => (chi.min(opts.chi_max), ChiSource::Optimal, 1, 0),
    })
}
