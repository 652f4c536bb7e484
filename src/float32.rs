//! `--semantics float32` (docs/method.md §17, eqs. (58b), (58c)): the final proof of a
//! weight-quantized network under binary32 inference, and binary32 forward passes in several
//! summation orders for the attack and the tests.
//!
//! The synthesis keeps its weight search unchanged (the real semantics, eq. (1)); the
//! strategy it returns is then proven again under float32 by [`prove_float32`]. When that
//! proof fails, the result is reported `unknown` with the reason (no fallback search: the
//! accumulation errors are ~10⁻⁶ of the neuron magnitudes, so a failure means the real margin
//! itself was below that, and a finer last layer would not lift the float32 error).

use certquant_bounds::DeepPoly;
use certquant_core::model::Network;
use certquant_core::semantics::Semantics;
use certquant_core::spec::Property;

/// How a binary32 dot product is summed (a runtime may use any of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumOrder {
    /// `((b + w₀z₀) + w₁z₁) + …`, each product rounded.
    Sequential,
    /// The same from the last term down.
    Reversed,
    /// Recursive halving of the products, the bias added last (SIMD-style).
    Pairwise,
    /// Sequential with fused multiply-add (`b.mul_add`): one rounding per term.
    Fma,
}

/// Every [`SumOrder`].
pub const ORDERS: [SumOrder; 4] = [
    SumOrder::Sequential,
    SumOrder::Reversed,
    SumOrder::Pairwise,
    SumOrder::Fma,
];

/// Binary32 forward pass of `net` (no input map; the weights are cast to `f32`, exact when
/// the network passes `check_float32_weights`): the logits as `f32`.
pub fn forward_f32(net: &Network, x: &[f64], order: SumOrder) -> Vec<f32> {
    let mut z: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let depth = net.depth();
    for (k, layer) in net.layers().iter().enumerate() {
        let y: Vec<f32> = (0..layer.outputs())
            .map(|j| {
                let terms: Vec<(f32, f32)> = layer
                    .row_entries(j)
                    .map(|(i, w)| (w as f32, z[i]))
                    .collect();
                dot(&terms, layer.bias()[j] as f32, order)
            })
            .collect();
        z = if k + 1 < depth {
            y.into_iter().map(|v| v.max(0.0)).collect()
        } else {
            y
        };
    }
    z
}

/// One binary32 dot product plus bias in `order`.
pub fn dot(terms: &[(f32, f32)], bias: f32, order: SumOrder) -> f32 {
    match order {
        SumOrder::Sequential => terms.iter().fold(bias, |s, &(w, z)| s + w * z),
        SumOrder::Reversed => terms.iter().rev().fold(bias, |s, &(w, z)| s + w * z),
        SumOrder::Fma => terms.iter().fold(bias, |s, &(w, z)| w.mul_add(z, s)),
        SumOrder::Pairwise => {
            fn pair(t: &[(f32, f32)]) -> f32 {
                match t.len() {
                    0 => 0.0,
                    1 => t[0].0 * t[0].1,
                    n => pair(&t[..n / 2]) + pair(&t[n / 2..]),
                }
            }
            pair(terms) + bias
        }
    }
}

/// Accuracy of `net` run in binary32 (sequential order) on the labelled images of `data`:
/// an image counts only if its label's `f32` logit is strictly the largest (a tie is wrong,
/// as in eq. (58c)). The `qnn_accuracy` reported under `--semantics float32`.
pub fn accuracy(net: &Network, data: &certquant_core::data::Dataset) -> f64 {
    let (mut n, mut ok) = (0usize, 0usize);
    for i in 0..data.len() {
        if let (Some(x), Some(y)) = (data.image(i), data.label(i)) {
            n += 1;
            let l = forward_f32(net, x, SumOrder::Sequential);
            ok += usize::from(y < l.len() && (0..l.len()).all(|j| j == y || l[y] > l[j]));
        }
    }
    ok as f64 / n.max(1) as f64
}

/// The float32 proof of `prop` on `qnn` (eqs. (58b), (58c)): `Ok((proven, margin))`, or the
/// reason the semantics does not apply (weights not normal `f32`, an input map, overflow).
pub fn prove_float32(qnn: &Network, prop: &Property) -> Result<(bool, f64), String> {
    let dp = DeepPoly::run_semantics(qnn, &prop.input, &Semantics::Float32)
        .map_err(|e| e.to_string())?;
    dp.prove_output(prop.output).map_err(|e| e.to_string())
}

/// [`prove_float32`] for each property: `Ok(Ok(margins))` if all are proven, `Ok(Err(why))`
/// naming the first that is not, and `Err` if the semantics does not apply to `qnn` at all
/// (an input map, a weight that is not a normal `f32`, a neuron that could overflow): the
/// CLI reports the first as `unknown`, the second as an error (exit 2).
pub fn prove_all(qnn: &Network, props: &[&Property]) -> Result<Result<Vec<f64>, String>, String> {
    let mut margins = Vec::with_capacity(props.len());
    for (i, p) in props.iter().enumerate() {
        match prove_float32(qnn, p)? {
            (true, m) => margins.push(m),
            (false, m) => {
                return Ok(Err(format!(
                    "property {i}: not proven under float32 (margin {m:.3e}: the accumulation \
                     error bound outweighs the real-semantics margin)"
                )));
            }
        }
    }
    Ok(Ok(margins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_differ_on_a_rounding_tie() {
        // 1 + 2^-24 + 2^-24: sequential rounds each tie to 1, reversed is exact.
        let t = [
            (1.0f32, 1.0f32),
            (2f32.powi(-24), 1.0),
            (2f32.powi(-24), 1.0),
        ];
        assert_eq!(dot(&t, 0.0, SumOrder::Sequential), 1.0);
        assert_eq!(dot(&t, 0.0, SumOrder::Reversed), 1.0 + 2f32.powi(-23));
        assert_eq!(dot(&t, 0.0, SumOrder::Fma), 1.0);
        assert_eq!(dot(&t, 0.0, SumOrder::Pairwise), 1.0 + 2f32.powi(-23));
    }
}
