//! The checker's own code for the float32 semantics (docs/method.md §17, eqs. (58b), (58c)).
//!
//! Under [`certquant_core::semantics::Semantics::Float32`] an affine output is the binary32
//! value `ŷ_j = W_j ẑ + b_j + e_j` with `|e_j| ≤ E_j`,
//! `E_j = γ32_{n+1}·(Σ_i |w_ji|·max|ẑ_i| + |b_j|) + 4(n+1)·2^−126` (eq. (58b)). The prover
//! adds the interval `[−E_j, E_j]` to every affine output: to a hidden layer's own rows, to
//! each back-substitution through a layer (`a_t·[−E_t, E_t]`), and to the logit differences.
//! Every `E_j` here is computed with the outward-rounded operations of [`crate::interval`],
//! from the checker's own bounds of the layer below; nothing is read from the certificate.

use certquant_core::model::{Affine, Network};

use crate::interval::{add_up, div_up, mul_up, sub_down};

/// `u = 2^−24`, binary32's unit roundoff.
const U32: f64 = 1.0 / 16_777_216.0;

/// `2^−126`: the largest error of one binary32 operation whose result underflows.
const TINY: f64 = f32::MIN_POSITIVE as f64;

/// Largest per-neuron magnitude `Σ|w||ẑ| + |b|` accepted (`2^120`), so that no binary32
/// partial sum can overflow (`f32::MAX ≈ 2^128`).
const MAX_MAGNITUDE: f64 = 1.329_227_995_784_916e36;

/// Refuses a network that binary32 cannot run as shipped: an input map, or a weight or bias
/// that is not `0` or a normal `f32` (eq. (58b)).
pub(super) fn check_network(net: &Network) -> Result<(), String> {
    if net.input_map().is_some() {
        return Err(
            "float32 semantics: the network has an input map (normalisation), which \
                    would add its own roundings"
                .into(),
        );
    }
    let bad = |v: f64| v != 0.0 && !((v as f32) as f64 == v && (v as f32).is_normal());
    for (k, layer) in net.layers().iter().enumerate() {
        for j in 0..layer.outputs() {
            if let Some((i, v)) = layer.row_entries(j).find(|&(_, v)| bad(v)) {
                return Err(format!(
                    "float32 semantics: layer {k} weight ({j}, {i}) = {v} is not a normal f32"
                ));
            }
        }
        if let Some((j, v)) = layer.bias().iter().enumerate().find(|&(_, &v)| bad(v)) {
            return Err(format!(
                "float32 semantics: layer {k} bias {j} = {v} is not a normal f32"
            ));
        }
    }
    Ok(())
}

/// Rounds the box outward onto binary32: `lo` to the largest `f32 ≤ lo`, `hi` to the smallest
/// `f32 ≥ hi`; `fl32(x)` of every `x` of the box lies in the result (rounding is monotone).
pub(super) fn round_box(lo: &mut [f64], hi: &mut [f64]) -> Result<(), String> {
    for v in lo.iter_mut() {
        let f = *v as f32;
        let f = if f as f64 > *v { f.next_down() } else { f };
        if !f.is_finite() {
            return Err("float32 semantics: the box exceeds the f32 range".into());
        }
        *v = f as f64;
    }
    for v in hi.iter_mut() {
        let f = *v as f32;
        let f = if (f as f64) < *v { f.next_up() } else { f };
        if !f.is_finite() {
            return Err("float32 semantics: the box exceeds the f32 range".into());
        }
        *v = f as f64;
    }
    Ok(())
}

/// `E_j` of eq. (58b) for every output of `layer`, given `mag[i] ≥ max|ẑ_i|` over the box,
/// rounded up throughout. Fails if a neuron could overflow or has too many terms.
pub(super) fn errors(k: usize, layer: &Affine, mag: &[f64]) -> Result<Vec<f64>, String> {
    let n = layer.inputs();
    if n + 1 > 1 << 20 {
        return Err(format!(
            "float32 semantics: layer {k} has more than 2^20 terms per sum"
        ));
    }
    let mu = mul_up((n + 1) as f64, U32);
    let gamma = div_up(mu, sub_down(1.0, mu));
    let tiny = mul_up(4.0 * (n + 1) as f64, TINY);
    (0..layer.outputs())
        .map(|j| {
            let s = layer
                .row_entries(j)
                .fold(layer.bias()[j].abs(), |acc, (i, w)| {
                    add_up(acc, mul_up(w.abs(), mag[i]))
                });
            if s.is_nan() || s > MAX_MAGNITUDE {
                return Err(format!(
                    "float32 semantics: layer {k} neuron {j} could overflow in f32 \
                     (magnitude bound {s:e})"
                ));
            }
            Ok(add_up(mul_up(gamma, s), tiny))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_bound_the_accumulation_and_refuse_overflow() {
        let l = Affine::new(0, 1, 2, vec![0.5, -0.25], vec![1.0]).unwrap();
        let e = errors(0, &l, &[2.0, 4.0]).unwrap();
        // γ32_3·(0.5·2 + 0.25·4 + 1) = 3u/(1 − 3u)·3
        assert!(e[0] >= 9.0 * U32 && e[0] < 9.1 * U32);
        assert!(errors(0, &l, &[1e37, 0.0]).is_err());
        let (mut lo, mut hi) = (vec![0.1], vec![0.1]);
        round_box(&mut lo, &mut hi).unwrap();
        assert!(lo[0] < 0.1 && hi[0] > 0.1 && lo[0] as f32 as f64 == lo[0]);
        let bad = Affine::new(0, 1, 1, vec![0.1], vec![0.0]).unwrap();
        assert!(check_network(&Network::new(vec![bad]).unwrap()).is_err());
    }
}
