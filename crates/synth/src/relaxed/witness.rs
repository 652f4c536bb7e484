//! The relaxed count's cheap lower bound — box vertices as witnesses — computed sparsely, for
//! layers with thousands of checks over few inputs each (a lowered convolution or pooling
//! layer: docs/method.md, eq. (79)).
//!
//! The vertex `x_c` minimising check `c` sets `x_k = lo_k` where `a_ck > 0` and `x_k = hi_k`
//! elsewhere, so it differs from the all-`hi` vertex only on `c`'s positive support. The
//! count at `x_c` is the count at `hi` corrected on the checks that read one of those inputs:
//! `O(Σ_c Σ_{k ∈ supp⁺ c} |touching(k)| · nnz)` instead of `O(m² n)` for `m` dense checks
//! (18,432 neurons over 784 inputs on `Convnet_maxpool`: 27 s per candidate before). The
//! counts are bit-identical to evaluating every check densely at every vertex (the skipped
//! terms are exact zeros), and a witness is only ever a "yes" (reject: the pessimistic side).

use super::Check;

/// The checks in sparse form: per check its non-zero coefficients, and per input the checks
/// that read it.
pub(crate) struct Sparse<'a> {
    checks: &'a [Check],
    support: Vec<Vec<u32>>,
    touching: Vec<Vec<u32>>,
}

impl<'a> Sparse<'a> {
    /// Indexes `checks` over `n` inputs (`O(m n)`).
    pub(crate) fn new(checks: &'a [Check], n: usize) -> Self {
        let support: Vec<Vec<u32>> = checks
            .iter()
            .map(|c| {
                c.coeffs
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| **a != 0.0)
                    .map(|(k, _)| k as u32)
                    .collect()
            })
            .collect();
        let mut touching = vec![Vec::new(); n];
        for (i, s) in support.iter().enumerate() {
            for &k in s {
                touching[k as usize].push(i as u32);
            }
        }
        Self {
            checks,
            support,
            touching,
        }
    }

    /// Mean number of non-zero coefficients per check (for logs).
    pub(crate) fn mean_support(&self) -> f64 {
        let total: usize = self.support.iter().map(Vec::len).sum();
        total as f64 / self.support.len().max(1) as f64
    }

    /// `g_i(x) < 0`, summing only the non-zero terms in input order (the same value as the
    /// dense sum: the skipped products are zeros).
    fn fails_at(&self, i: usize, x: &[f64]) -> bool {
        let c = &self.checks[i];
        self.support[i]
            .iter()
            .map(|&k| c.coeffs[k as usize] * x[k as usize])
            .sum::<f64>()
            + c.constant
            < 0.0
    }

    /// The largest count of failing checks (`g < 0`) at the corners `hi` and `lo` and then
    /// at the vertices `x_c` in check order, stopping at the first count above `limit` (the
    /// same answer as evaluating every check at every one of these points densely).
    pub(crate) fn vertex_witness(&self, limit: usize, lo: &[f64], hi: &[f64]) -> usize {
        let m = self.checks.len();
        let mut x = hi.to_vec();
        let base: Vec<bool> = (0..m).map(|i| self.fails_at(i, &x)).collect();
        let base_count = base.iter().filter(|&&f| f).count();
        // the two corners first: on a small box where most checks are the float-minus-
        // quantized rounding of one form, the all-`lo` corner often fails most of them
        let at_lo = (0..m).filter(|&i| self.fails_at(i, lo)).count();
        let mut witnessed = base_count.max(at_lo);
        if witnessed > limit {
            return witnessed;
        }
        let mut stamp = vec![usize::MAX; m];
        let mut affected: Vec<u32> = Vec::new();
        for (c, check) in self.checks.iter().enumerate() {
            affected.clear();
            let moved: Vec<u32> = self.support[c]
                .iter()
                .copied()
                .filter(|&k| check.coeffs[k as usize] > 0.0)
                .collect();
            for &k in &moved {
                x[k as usize] = lo[k as usize];
                for &d in &self.touching[k as usize] {
                    if stamp[d as usize] != c {
                        stamp[d as usize] = c;
                        affected.push(d);
                    }
                }
            }
            let mut count = base_count;
            for &d in &affected {
                let d = d as usize;
                count = count - usize::from(base[d]) + usize::from(self.fails_at(d, &x));
            }
            for &k in &moved {
                x[k as usize] = hi[k as usize];
            }
            witnessed = witnessed.max(count);
            if witnessed > limit {
                break;
            }
        }
        witnessed
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The dense reference: every check at every vertex (the code this replaces).
    fn dense_witness(checks: &[Check], limit: usize, lo: &[f64], hi: &[f64]) -> usize {
        let mut witnessed = 0;
        let corners = [hi.to_vec(), lo.to_vec()];
        let vertices = checks.iter().map(|c| {
            c.coeffs
                .iter()
                .zip(lo.iter().zip(hi))
                .map(|(a, (l, h))| if *a > 0.0 { *l } else { *h })
                .collect::<Vec<f64>>()
        });
        for (i, x) in corners.into_iter().chain(vertices).enumerate() {
            let fails = checks
                .iter()
                .filter(|d| {
                    d.coeffs.iter().zip(&x).map(|(a, v)| a * v).sum::<f64>() + d.constant < 0.0
                })
                .count();
            witnessed = witnessed.max(fails);
            // (the corners are both counted before the first stop, as in `vertex_witness`)
            if witnessed > limit && i >= 1 {
                break;
            }
        }
        witnessed
    }

    /// A wide sparse layer like a lowered 2×2 convolution: `m` checks over `n` inputs, each
    /// reading `w` consecutive inputs (some coefficients negative, some checks that cannot
    /// fail at `hi`).
    pub(crate) fn wide_sparse(
        seed: u64,
        m: usize,
        n: usize,
        w: usize,
    ) -> (Vec<Check>, Vec<f64>, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let lo: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..0.9)).collect();
        let hi: Vec<f64> = lo.iter().map(|l| l + rng.random_range(0.0..0.1)).collect();
        let checks = (0..m)
            .map(|i| {
                let start = (i * 7) % (n - w + 1);
                let mut coeffs = vec![0.0; n];
                for a in &mut coeffs[start..start + w] {
                    *a = rng.random_range(-1.0..1.0);
                }
                let (gmin, gmax) = certquant_bounds::arith::linear_range(&coeffs, 0.0, &lo, &hi);
                let constant = -(gmin + rng.random_range(0.05..0.95) * (gmax - gmin));
                Check {
                    max: gmax + constant,
                    coeffs,
                    constant,
                }
            })
            .collect();
        (checks, lo, hi)
    }

    /// The sparse vertex count equals the dense one on wide sparse layers, at every limit
    /// regime (early stop and full scan).
    #[test]
    fn the_sparse_vertex_count_equals_the_dense_one() {
        for seed in 0..6u64 {
            let (checks, lo, hi) = wide_sparse(seed, 400 + 50 * seed as usize, 120, 4);
            let s = Sparse::new(&checks, lo.len());
            assert!(s.mean_support() <= 4.0);
            let full = dense_witness(&checks, usize::MAX, &lo, &hi);
            assert!(full > 0, "seed {seed}");
            for limit in [0, full / 2, full - 1, full, checks.len()] {
                assert_eq!(
                    s.vertex_witness(limit, &lo, &hi),
                    dense_witness(&checks, limit, &lo, &hi),
                    "seed {seed} limit {limit}"
                );
            }
        }
    }

    /// 20,000 checks over 784 inputs (a `Convnet_maxpool`-sized layer) are counted in well
    /// under a second; the dense loop would need `m² n ≈ 3·10^11` multiplications.
    #[test]
    fn a_wide_sparse_layer_is_counted_fast() {
        let (checks, lo, hi) = wide_sparse(7, 20_000, 784, 4);
        let t = std::time::Instant::now();
        let s = Sparse::new(&checks, lo.len());
        let w = s.vertex_witness(checks.len(), &lo, &hi);
        let secs = t.elapsed().as_secs_f64();
        assert!(w > 0 && w < checks.len());
        assert!(secs < 5.0, "{secs} s");
    }
}
