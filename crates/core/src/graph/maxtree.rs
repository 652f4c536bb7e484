//! Max pooling as ReLU layers (docs/method.md, "Networks with structure").
//!
//! For values `a, b ≥ 0`, `max(a, b) = relu(a) + relu(b − a)`. Max pooling after a ReLU (or
//! before one: `relu ∘ maxpool = maxpool ∘ relu`) therefore lowers exactly to a few fixed
//! affine layers with ReLU between them — a pairwise tournament per window:
//!
//! * level 0 takes the window's inputs as its values; each level pairs a window's values in
//!   order, `(v0, v1), (v2, v3), …`, and emits for a pair the two neurons `[v_a, v_b − v_a]`
//!   and for an odd last value the one neuron `[v]`, window after window (output positions
//!   in row-major `[C, H_out, W_out]` order);
//! * after the ReLU, a pair's value for the next level is the sum of its two neurons
//!   (`= max(v_a, v_b)`), a single's is its neuron;
//! * when every window has one value, [`MaxTree::sum`] maps the last level's neurons to
//!   those values (a 0/1 matrix); it becomes a fixed operator before the next weighted layer.
//!
//! The stages are fixed `±1` maps with no parameters: quantization leaves them unchanged,
//! and the bounds, the preimage MILPs (one binary per unstable ReLU: "a max needs binaries")
//! and the checker see ordinary affine layers. When one input of a pair dominates the other
//! on the whole region, its ReLU is stable and DeepPoly is exact there.
//! Padding positions of the window (ONNX pads MaxPool with −∞) are left out.

use std::sync::Arc;

use super::{Pool2d, PoolKind, SparseMap};

/// The tournament of one max pooling: one sparse map per level, and the final sum.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxTree {
    /// Level `k` maps level `k`'s input (the pooling input for `k = 0`, else the previous
    /// level's neurons after ReLU) to its neurons.
    pub levels: Vec<Arc<SparseMap>>,
    /// Maps the last level's neurons (after ReLU) — or the pooling input if there is no level
    /// — to the pooled values, `[C, H_out, W_out]` row-major.
    pub sum: Arc<SparseMap>,
}

impl MaxTree {
    /// Builds the tournament of a max pooling (`None` for an average pooling).
    pub fn new(pool: &Pool2d) -> Option<Self> {
        if pool.kind != PoolKind::Max {
            return None;
        }
        let n_in: usize = pool.in_shape.iter().product();
        // Each window's current values, as sparse rows over the current level's input.
        let mut values: Vec<Vec<Vec<(usize, f64)>>> = pool
            .windows()
            .into_iter()
            .map(|w| w.into_iter().map(|i| vec![(i, 1.0)]).collect())
            .collect();
        let mut width = n_in;
        let mut levels = Vec::new();
        while values.iter().any(|v| v.len() > 1) {
            let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
            let mut next: Vec<Vec<Vec<(usize, f64)>>> = Vec::with_capacity(values.len());
            for win in &values {
                let mut nv = Vec::with_capacity(win.len().div_ceil(2));
                for pair in win.chunks(2) {
                    let n = rows.len();
                    match pair {
                        [a, b] => {
                            rows.push(a.clone());
                            let mut d = b.clone();
                            d.extend(a.iter().map(|&(i, v)| (i, -v)));
                            rows.push(d);
                            nv.push(vec![(n, 1.0), (n + 1, 1.0)]);
                        }
                        [a] => {
                            rows.push(a.clone());
                            nv.push(vec![(n, 1.0)]);
                        }
                        _ => unreachable!("chunks of 2"),
                    }
                }
                next.push(nv);
            }
            let n_rows = rows.len();
            levels.push(Arc::new(SparseMap::from_rows(width, rows)?));
            width = n_rows;
            values = next;
        }
        let sum_rows = values
            .into_iter()
            .map(|mut v| v.pop().unwrap_or_default())
            .collect();
        Some(Self {
            levels,
            sum: Arc::new(SparseMap::from_rows(width, sum_rows)?),
        })
    }
}

/// One level of a max pooling's tournament, lowered as a fixed affine layer (no parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct MaxStage {
    /// The max pooling this level belongs to.
    pub pool: Pool2d,
    /// The level (0 = reads the pooling input).
    pub level: usize,
    /// Whether the model wrote the `Relu` after the pooling (`MaxPool → Relu`) rather than
    /// before it; export restores that order.
    pub relu_after: bool,
    /// The level's map (see [`MaxTree`]).
    pub map: Arc<SparseMap>,
}

/// The final sum of a max pooling's tournament (see [`MaxTree::sum`]), a fixed operator
/// before the next weighted layer.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxSum {
    /// The max pooling it completes.
    pub pool: Pool2d,
    /// The sum map.
    pub map: Arc<SparseMap>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates the tournament with ReLU between levels.
    fn eval(t: &MaxTree, x: &[f64]) -> Vec<f64> {
        let mut v = x.to_vec();
        for l in &t.levels {
            v = l.apply(&v).into_iter().map(|z| z.max(0.0)).collect();
        }
        t.sum.apply(&v)
    }

    #[test]
    fn the_tournament_is_max_pooling_on_non_negative_inputs() {
        let shapes = [
            ([1, 4, 4], [2, 2], [2, 2], [0; 4]),
            ([2, 5, 5], [3, 3], [1, 1], [1, 1, 1, 1]),
            ([1, 6, 6], [4, 4], [4, 4], [0; 4]),
            ([1, 3, 3], [1, 1], [1, 1], [0; 4]),
        ];
        for (k, (shape, kernel, strides, pads)) in shapes.into_iter().enumerate() {
            let p = Pool2d::new(PoolKind::Max, shape, kernel, strides, pads, false).unwrap();
            let t = MaxTree::new(&p).unwrap();
            let n: usize = shape.iter().product();
            let x: Vec<f64> = (0..n)
                .map(|i| ((i * 37 + k * 11) % 17) as f64 * 0.25)
                .collect();
            assert_eq!(eval(&t, &x), p.forward(&x), "{shape:?} {kernel:?}");
            let window = kernel[0] * kernel[1];
            assert_eq!(t.levels.len(), (window as f64).log2().ceil() as usize);
        }
    }
}
