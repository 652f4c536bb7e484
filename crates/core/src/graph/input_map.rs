//! The input map of a network: the operators before its first weighted layer that only
//! normalise or rearrange the raw input (docs/method.md, "Networks with structure").
//!
//! Data sets and VNN-LIB properties describe the *raw* input — pixels in `[0, 1]`, flat and
//! row-major over the ONNX input shape. Networks exported from PyTorch or Keras often start
//! with `(x − mean)/std` (ONNX `Sub`, `Div`, perhaps a `Transpose` or a `Reshape`) before
//! the first `Gemm`/`Conv`. Folding a division by `std` into the weights would round them,
//! so these operators are kept apart as a sequence of **box-exact** maps: each sends a box
//! to a box (elementwise affine maps act on each coordinate alone; a permutation and a zero
//! padding move coordinates). [`InputMap::map_box`] computes a box that contains the exact
//! image of a raw box (outward rounding for the arithmetic, exact for the moves); every
//! proof then runs over that box at layer 0, which is sound because it contains every
//! input layer 0 can receive from the raw box (SOUNDNESS.md, "input map").

use super::{ElementwiseKind, GraphError, Node};

/// A chain of box-exact operators from the raw input to layer 0's input.
///
/// Invariant (checked by [`InputMap::new`]): every node is an [`Node::Elementwise`],
/// [`Node::Reshape`], [`Node::Transpose`] or [`Node::Pad`], and the shapes chain.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMap {
    nodes: Vec<Node>,
}

impl InputMap {
    /// Builds the map, checking that each node is box-exact and that the shapes chain.
    /// `names` are the node labels for messages (one per node, or empty).
    pub fn new(nodes: Vec<Node>, names: &[String]) -> Result<Self, GraphError> {
        let label = |i: usize, n: &Node| match names.get(i) {
            Some(name) => format!("{} node {name}", n.op_name()),
            None => format!("{} #{i}", n.op_name()),
        };
        for (i, n) in nodes.iter().enumerate() {
            if !matches!(
                n,
                Node::Elementwise(_) | Node::Reshape(_) | Node::Transpose(_) | Node::Pad(_)
            ) {
                return Err(GraphError::Unsupported {
                    node: label(i, n),
                    what: "only Sub/Div/Mul/Add by a constant, Reshape/Flatten/Squeeze/Unsqueeze, \
                           Transpose and zero Pad may come before an input normalisation"
                        .into(),
                });
            }
            if i > 0 && nodes[i - 1].out_dims() != n.in_dims() {
                return Err(GraphError::Shape {
                    node: label(i, n),
                    what: format!(
                        "expects input shape {:?} but receives {:?}",
                        n.in_dims(),
                        nodes[i - 1].out_dims()
                    ),
                });
            }
        }
        Ok(Self { nodes })
    }

    /// The operators, raw-input side first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Whether the map has no operator (the identity).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of raw input values, or `None` for the empty map.
    pub fn input_len(&self) -> Option<usize> {
        self.nodes.first().map(|n| n.in_dims().iter().product())
    }

    /// Number of values layer 0 receives, or `None` for the empty map.
    pub fn output_len(&self) -> Option<usize> {
        self.nodes.last().map(|n| n.out_dims().iter().product())
    }

    /// Applies the map to one raw input in plain f64 (evaluation, attacks; not a proof).
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let mut v = x.to_vec();
        for n in &self.nodes {
            v = n.forward(&v);
        }
        v
    }

    /// A box containing the exact (real-arithmetic) image of the raw box `[lo, hi]`:
    /// elementwise arithmetic by [`super::Elementwise::map_box`] (each end one ulp
    /// outward), moves exactly (a permutation or zero padding sends a box to a box; padded
    /// coordinates are `[0, 0]`).
    pub fn map_box(&self, lo: &[f64], hi: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (mut l, mut h) = (lo.to_vec(), hi.to_vec());
        for n in &self.nodes {
            (l, h) = match n {
                Node::Elementwise(e) => e.map_box(&l, &h),
                Node::Reshape(_) => (l, h),
                // A 0/1 map with at most one 1 per row: each end moves alone, exactly.
                other => (other.forward(&l), other.forward(&h)),
            };
        }
        (l, h)
    }

    /// The vector–Jacobian product: given `g = ∂f/∂(mapped input)`, returns `∂f/∂(raw
    /// input)` (for gradient attacks through the map).
    pub fn pullback(&self, g: &[f64]) -> Vec<f64> {
        let mut g = g.to_vec();
        for n in self.nodes.iter().rev() {
            g = match n {
                Node::Elementwise(e) => g
                    .iter()
                    .zip(&e.c)
                    .map(|(&gi, &c)| match e.kind {
                        ElementwiseKind::Add | ElementwiseKind::Sub => gi,
                        ElementwiseKind::SubFrom => -gi,
                        ElementwiseKind::Mul => gi * c,
                        ElementwiseKind::Div => gi / c,
                    })
                    .collect(),
                Node::Reshape(_) => g,
                other => {
                    // Find where each input coordinate goes by moving the vector of
                    // (index + 1): small integers, exact in f64; padding yields 0.
                    let n_in: usize = other.in_dims().iter().product();
                    let tags: Vec<f64> = (0..n_in).map(|i| (i + 1) as f64).collect();
                    let mut gin = vec![0.0; n_in];
                    for (k, t) in other.forward(&tags).into_iter().enumerate() {
                        if t > 0.0 {
                            gin[t as usize - 1] += g[k];
                        }
                    }
                    gin
                }
            };
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Elementwise, Pad, Reshape, ReshapeKind, Transpose};
    use super::*;

    fn map() -> InputMap {
        let sub = Elementwise::new(
            ElementwiseKind::Sub,
            vec![2, 1, 2],
            vec![0.1307; 4],
            (vec![], vec![0.1307]),
        )
        .unwrap();
        let div = Elementwise::new(
            ElementwiseKind::Div,
            vec![2, 1, 2],
            vec![0.3081, 0.3081, -0.5, -0.5],
            (vec![2, 1, 1], vec![0.3081, -0.5]),
        )
        .unwrap();
        let t = Transpose::new(vec![2, 1, 2], vec![1, 2, 0]).unwrap();
        let pad = Pad::new(vec![1, 2, 2], vec![0, 1, 0], vec![0, 0, 0]).unwrap();
        let r = Reshape::new(ReshapeKind::Flatten, vec![1, 3, 2], vec![6]).unwrap();
        InputMap::new(
            vec![
                Node::Elementwise(sub),
                Node::Elementwise(div),
                Node::Transpose(t),
                Node::Pad(pad),
                Node::Reshape(r),
            ],
            &[],
        )
        .unwrap()
    }

    #[test]
    fn box_contains_every_image_and_gradient_matches_differences() {
        let m = map();
        assert_eq!((m.input_len(), m.output_len()), (Some(4), Some(6)));
        let lo = [0.0, 0.2, 0.5, 0.9];
        let hi = [1.0, 0.2, 0.75, 1.0];
        let (l, h) = m.map_box(&lo, &hi);
        for s in 0..=16 {
            let t = s as f64 / 16.0;
            let x: Vec<f64> = lo.iter().zip(&hi).map(|(a, b)| a + t * (b - a)).collect();
            let y = m.forward(&x);
            for k in 0..6 {
                assert!(
                    l[k] <= y[k] && y[k] <= h[k],
                    "{k}: {} ∉ [{}, {}]",
                    y[k],
                    l[k],
                    h[k]
                );
            }
        }
        // Padded coordinates (the first two after the pad) are exactly zero.
        assert_eq!((l[0], h[0], l[1], h[1]), (0.0, 0.0, 0.0, 0.0));
        // The map is affine: the pullback of e_k is row k of its Jacobian.
        let x = [0.3, 0.4, 0.5, 0.6];
        let y = m.forward(&x);
        for k in 0..6 {
            let mut e = vec![0.0; 6];
            e[k] = 1.0;
            let g = m.pullback(&e);
            for i in 0..4 {
                let mut xp = x;
                xp[i] += 1.0;
                let d = m.forward(&xp)[k] - y[k];
                assert!((d - g[i]).abs() < 1e-12, "∂y{k}/∂x{i}: {d} vs {}", g[i]);
            }
        }
    }

    #[test]
    fn only_box_exact_nodes() {
        let relu = Node::Relu { dims: vec![2] };
        let err = InputMap::new(vec![relu], &["r".into()]).unwrap_err();
        assert!(err.to_string().contains("Relu node r"), "{err}");
    }

    #[test]
    fn lowering_keeps_the_normalisation_before_layer_0_and_refuses_it_elsewhere() {
        use super::super::{Batch, Dense, Graph};
        let sub = || {
            Node::Elementwise(
                Elementwise::new(
                    ElementwiseKind::Sub,
                    vec![2],
                    vec![0.5, 0.25],
                    (vec![], vec![]),
                )
                .unwrap(),
            )
        };
        let dense = |w: Vec<f64>| Node::Dense(Dense::new(vec![2], 2, w, vec![0.1, -0.2]).unwrap());
        let relu = || Node::Relu { dims: vec![2] };
        let g = Graph::new(
            Batch::Fixed(1),
            vec![2],
            vec![
                sub(),
                dense(vec![1.0, -2.0, 0.5, 3.0]),
                relu(),
                dense(vec![1.0; 4]),
            ],
        )
        .unwrap();
        let net = g.lower().unwrap();
        assert_eq!(net.input_map().map(|m| m.nodes().len()), Some(1));
        assert_eq!((net.input_dim(), net.depth()), (2, 2));
        for x in [[0.0, 0.0], [1.0, 0.3], [0.7, 1.0]] {
            assert_eq!(net.forward(&x), g.forward(&x));
        }
        // The way back writes the Sub before the layers, and it lowers to the same network.
        assert_eq!(net.to_graph().unwrap().lower().unwrap(), net);
        // After a weighted operator, elementwise arithmetic is refused, naming the node.
        let g = Graph::new(
            Batch::Fixed(1),
            vec![2],
            vec![dense(vec![1.0; 4]), relu(), sub(), dense(vec![1.0; 4])],
        )
        .unwrap();
        let err = g.lower().unwrap_err().to_string();
        assert!(
            err.contains("Sub node #2") && err.contains("input normalisation"),
            "{err}"
        );
    }
}
