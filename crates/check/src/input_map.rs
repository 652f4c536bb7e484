//! The checker's own mapping of a raw input box through a network's input map (input
//! normalisation, docs/method.md, "Networks with structure"; SOUNDNESS.md, "input map").
//!
//! A certificate states its property over *raw* inputs (pixels in `[0, 1]`); the QNN's
//! layer 0 receives `(x − mean)/std` (and perhaps a transposed or zero-padded copy). The
//! proof must run over a box that contains the exact image of the raw box. This module
//! computes one with this crate's own directed-rounding arithmetic
//! ([`crate::interval`]) — never with `certquant_core`'s `map_box` — and moves coordinates
//! for layout operators with the checker's own operator code ([`crate::lower`]).

use certquant_core::graph::{ElementwiseKind, Node};
use certquant_core::model::Network;

use crate::interval::{add_down, add_up, div_down, div_up, mul_down, mul_up, sub_down, sub_up};

/// A box over layer 0's input that contains the exact image of the raw box `[lo, hi]`
/// under `net`'s input map (the box itself when the network has none), or why none can be
/// given.
pub fn map_box(net: &Network, lo: &[f64], hi: &[f64]) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (mut l, mut h) = (lo.to_vec(), hi.to_vec());
    let Some(map) = net.input_map() else {
        return Ok((l, h));
    };
    for (i, node) in map.nodes().iter().enumerate() {
        let n_in: usize = node.in_dims().iter().product();
        if l.len() != n_in {
            return Err(format!(
                "input map node {i} ({}) takes {n_in} values, receives {}",
                node.op_name(),
                l.len()
            ));
        }
        (l, h) = match node {
            Node::Elementwise(e) => {
                if e.c.len() != n_in {
                    return Err(format!("input map node {i}: constant has the wrong length"));
                }
                let mut nl = Vec::with_capacity(n_in);
                let mut nh = Vec::with_capacity(n_in);
                for ((&a, &b), &c) in l.iter().zip(&h).zip(&e.c) {
                    if !c.is_finite() || (e.kind == ElementwiseKind::Div && c == 0.0) {
                        return Err(format!("input map node {i}: invalid constant {c}"));
                    }
                    let (x, y) = match e.kind {
                        ElementwiseKind::Add => (add_down(a, c), add_up(b, c)),
                        ElementwiseKind::Sub => (sub_down(a, c), sub_up(b, c)),
                        ElementwiseKind::SubFrom => (sub_down(c, b), sub_up(c, a)),
                        ElementwiseKind::Mul if c >= 0.0 => (mul_down(a, c), mul_up(b, c)),
                        ElementwiseKind::Mul => (mul_down(b, c), mul_up(a, c)),
                        ElementwiseKind::Div if c > 0.0 => (div_down(a, c), div_up(b, c)),
                        ElementwiseKind::Div => (div_down(b, c), div_up(a, c)),
                    };
                    nl.push(x);
                    nh.push(y);
                }
                (nl, nh)
            }
            Node::Reshape(_) | Node::Transpose(_) | Node::Pad(_) => {
                let n_out: usize = node.out_dims().iter().product();
                let (mut nl, mut nh) = (vec![0.0; n_out], vec![0.0; n_out]);
                let mut hit = vec![false; n_out];
                for k in 0..n_in {
                    let moved =
                        crate::lower::apply(node, &[(k, 1.0)], false, &mut Default::default());
                    let Some(&[(t, v)]) = moved.as_deref() else {
                        return Err(format!(
                            "input map node {i}: input {k} does not move to one place"
                        ));
                    };
                    if v != 1.0 || t >= n_out || std::mem::replace(&mut hit[t], true) {
                        return Err(format!("input map node {i}: not a permutation or padding"));
                    }
                    (nl[t], nh[t]) = (l[k], h[k]);
                }
                (nl, nh)
            }
            other => {
                return Err(format!(
                    "input map node {i} ({}) is not box-exact",
                    other.op_name()
                ));
            }
        };
        if let Some(k) = (0..l.len()).find(|&k| !(l[k].is_finite() && h[k].is_finite())) {
            return Err(format!(
                "the input map sends box entry {k} out of the finite floats"
            ));
        }
    }
    Ok((l, h))
}

/// Why the QNN's input map is not the original network's, if it is not: quantization
/// leaves the normalisation alone (docs/method.md, "Networks with structure").
pub fn compare_maps(original: &Network, qnn: &Network) -> Option<String> {
    (original.input_map() != qnn.input_map())
        .then(|| "the QNN's input normalisation differs from the original network's".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::graph::{Elementwise, InputMap, Transpose};
    use certquant_core::model::Affine;

    #[test]
    fn image_of_every_sample_is_inside() {
        let ew = |kind, c: Vec<f64>| {
            Node::Elementwise(Elementwise::new(kind, vec![2, 2], c, (vec![], vec![])).unwrap())
        };
        let map = InputMap::new(
            vec![
                ew(ElementwiseKind::Sub, vec![0.1307, 0.2, -0.3, 0.0]),
                ew(ElementwiseKind::Div, vec![0.3081, -0.7, 3.0, 1.0]),
                ew(ElementwiseKind::Mul, vec![-0.1, 0.3, 7.0, -1.0]),
                ew(ElementwiseKind::SubFrom, vec![0.1, 0.2, 0.3, 0.4]),
                ew(ElementwiseKind::Add, vec![0.1, 0.2, 0.3, 0.4]),
                Node::Transpose(Transpose::new(vec![2, 2], vec![1, 0]).unwrap()),
            ],
            &[],
        )
        .unwrap();
        let l0 = Affine::new(0, 1, 4, vec![1.0; 4], vec![0.0]).unwrap();
        let net = Network::new(vec![l0]).unwrap().with_input_map(map).unwrap();
        let (lo, hi) = ([0.0, 0.1, 0.2, 0.3], [1.0, 0.9, 0.2, 0.35]);
        let (l, h) = map_box(&net, &lo, &hi).unwrap();
        for s in 0..=32 {
            let t = f64::from(s) / 32.0;
            let x: Vec<f64> = lo.iter().zip(&hi).map(|(a, b)| a + t * (b - a)).collect();
            let y = net.input_map().unwrap().forward(&x);
            for k in 0..4 {
                assert!(
                    l[k] <= y[k] && y[k] <= h[k],
                    "{k}: {} ∉ [{}, {}]",
                    y[k],
                    l[k],
                    h[k]
                );
            }
        }
        assert!(compare_maps(&net, &net).is_none());
        let plain = Network::new(net.layers().to_vec()).unwrap();
        assert!(compare_maps(&net, &plain).is_some());
    }

    /// The checker's proof fails if the map is ignored: z = (x − 0.5)/0.25,
    /// y = [ReLU(z), 1.5]; on x ∈ [0.95, 1] class 0 holds only through the map, and on
    /// x ∈ [0.9, 1] class 1 "holds" only without it (x = 1 gives class 0).
    #[test]
    fn the_prover_maps_the_raw_box() {
        let map = InputMap::new(
            vec![
                Node::Elementwise(
                    Elementwise::new(ElementwiseKind::Sub, vec![1], vec![0.5], (vec![], vec![]))
                        .unwrap(),
                ),
                Node::Elementwise(
                    Elementwise::new(ElementwiseKind::Div, vec![1], vec![0.25], (vec![], vec![]))
                        .unwrap(),
                ),
            ],
            &[],
        )
        .unwrap();
        let l0 = Affine::new(0, 1, 1, vec![1.0], vec![0.0]).unwrap();
        let l1 = Affine::new(1, 2, 1, vec![1.0, 0.0], vec![0.0, 1.5]).unwrap();
        let net = Network::new(vec![l0, l1])
            .unwrap()
            .with_input_map(map)
            .unwrap();
        let unmapped = Network::new(net.layers().to_vec()).unwrap();
        let margin = |n: &Network, lo: f64, label: usize| {
            crate::prove::Prover::new(n, &[lo], &[1.0])
                .unwrap()
                .margin(certquant_core::spec::OutputSpec::Robust { label })
        };
        assert!(margin(&net, 0.95, 0) > 0.0);
        assert!(margin(&unmapped, 0.95, 0) <= 0.0);
        assert_eq!(net.predict(&[1.0]), 0);
        assert!(margin(&net, 0.9, 1) <= 0.0);
        assert!(margin(&unmapped, 0.9, 1) > 0.0);
    }

    /// On the `norm_*` operator fixtures, the checker's logit-difference bounds over a raw
    /// box hold at sampled points of the box (evaluated by the typed graph).
    #[test]
    fn normalised_fixtures_are_bounded_soundly() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.starts_with("norm_") && name.ends_with(".onnx")) {
                continue;
            }
            let net = certquant_core::onnx::import(&path).unwrap();
            let graph = certquant_core::onnx::import_graph(&path).unwrap();
            let n = net.input_dim();
            let lo: Vec<f64> = (0..n).map(|i| (i % 7) as f64 / 10.0).collect();
            let hi: Vec<f64> = lo.iter().map(|l| l + 0.05).collect();
            let p = crate::prove::Prover::new(&net, &lo, &hi).unwrap();
            let m = net.output_dim();
            let pairs: Vec<(usize, usize)> = (0..m)
                .flat_map(|a| (0..m).filter(move |&b| b != a).map(move |b| (a, b)))
                .collect();
            let lbs = p.logit_difference_lower_bounds(&pairs);
            for s in 0..=10 {
                let t = f64::from(s) / 10.0;
                let x: Vec<f64> = lo
                    .iter()
                    .enumerate()
                    .map(|(i, l)| l + 0.05 * if i % 2 == 0 { t } else { 1.0 - t })
                    .collect();
                let y = graph.forward(&x);
                for (&(a, b), lb) in pairs.iter().zip(&lbs) {
                    let d = y[a] - y[b];
                    assert!(
                        *lb <= d + 1e-9 * (1.0 + d.abs()),
                        "{name}: y{a} − y{b} = {d} < {lb}"
                    );
                }
            }
            checked += 1;
        }
        assert!(checked >= 4, "only {checked} normalised fixtures");
    }
}
