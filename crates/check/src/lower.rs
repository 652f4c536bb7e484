//! The checker's own lowering of structured layers (docs/method.md, "Networks with
//! structure"): for every QNN layer that came from a convolution, padding, pooling or a
//! layout change, the dense matrix and bias the proof runs on are rebuilt here from the
//! layer's operators, with this crate's own code for each operator, and must equal the ones
//! the importer produced, entry for entry.
//!
//! Nothing here calls `certquant_core::graph`'s lowering: it reads only the operator
//! descriptions (kind, geometry, parameters) and evaluates the layer on unit vectors, one
//! input at a time, in exact arithmetic: every product is checked with a fused
//! multiply-add and every sum with Knuth's TwoSum, so a value that is not exact is reported
//! rather than compared.

use certquant_core::graph::{Node, Pool2d, PoolKind};
use certquant_core::model::{Affine, LayerOrigin};

use crate::interval::{Interval, div_down, div_up};

/// Exact `a + b`, or `None`.
fn add(a: f64, b: f64) -> Option<f64> {
    let s = a + b;
    let bb = s - a;
    (s.is_finite() && (a - (s - bb)) + (b - bb) == 0.0).then_some(s)
}

/// Exact `a · b`, or `None` (products below 2^-969 are not certified exact).
fn mul(a: f64, b: f64) -> Option<f64> {
    if a == 0.0 || b == 0.0 {
        return Some(0.0);
    }
    let p = a * b;
    (p.is_finite() && p.abs() >= 2f64.powi(-969) && a.mul_add(b, -p) == 0.0).then_some(p)
}

/// The tournaments [`tournament`] built for one layer, kept while its columns are re-derived
/// one input at a time (rebuilding them per column would cost the layer's width squared).
#[derive(Default)]
pub(crate) struct Tournaments(Vec<(Pool2d, usize, Built)>);

/// A built tournament: its level's columns and its final sum's (see [`tournament`]).
type Built = std::rc::Rc<(Columns, Columns)>;

impl Tournaments {
    /// [`tournament`]`(pool, level)`, built once.
    fn get(&mut self, pool: &Pool2d, level: usize) -> Option<Built> {
        if let Some((_, _, t)) = self.0.iter().find(|(p, l, _)| p == pool && *l == level) {
            return Some(t.clone());
        }
        let t = std::rc::Rc::new(tournament(pool, level)?);
        self.0.push((pool.clone(), level, t.clone()));
        Some(t)
    }
}

/// The values [`apply`] computes with: exact floats (`f64`, every operation checked exact,
/// `None` otherwise) or outward-rounded enclosures ([`Interval`], never `None`), for layers
/// whose real coefficients are not floats (an average pool over 9 or 49 values;
/// docs/method.md, eq. (74)).
pub(crate) trait Val: Copy {
    /// The value `0`.
    const ZERO: Self;
    /// The parameter `v` (an exact float).
    fn of(v: f64) -> Self;
    /// `self · c` for an exact float `c`.
    fn times(self, c: f64) -> Option<Self>;
    /// `self + o`.
    fn plus(self, o: Self) -> Option<Self>;
    /// `self / n` (an average over `n` values).
    fn over(self, n: usize) -> Option<Self>;
    /// Whether this is exactly zero (dropped from the sparse result).
    fn zero(&self) -> bool;
}

impl Val for f64 {
    const ZERO: Self = 0.0;
    fn of(v: f64) -> Self {
        v
    }
    fn times(self, c: f64) -> Option<Self> {
        mul(c, self)
    }
    fn plus(self, o: Self) -> Option<Self> {
        add(self, o)
    }
    fn over(self, n: usize) -> Option<Self> {
        if !n.is_power_of_two() {
            return None;
        }
        mul(self, 1.0 / n as f64)
    }
    fn zero(&self) -> bool {
        *self == 0.0
    }
}

impl Val for Interval {
    const ZERO: Self = Interval::ZERO;
    fn of(v: f64) -> Self {
        Interval::point(v)
    }
    fn times(self, c: f64) -> Option<Self> {
        Some(self.scale(c))
    }
    fn plus(self, o: Self) -> Option<Self> {
        Some(self + o)
    }
    fn over(self, n: usize) -> Option<Self> {
        let d = n as f64; // n is far below 2^53: exact
        Some(Interval::new(div_down(self.lo, d), div_up(self.hi, d)))
    }
    fn zero(&self) -> bool {
        self.is_zero()
    }
}

/// One operator applied to a sparse vector (`(index, value)` pairs), exactly (`f64`) or
/// enclosed ([`Interval`]).
pub(crate) fn apply<V: Val>(
    node: &Node,
    x: &[(usize, V)],
    with_bias: bool,
    cache: &mut Tournaments,
) -> Option<Vec<(usize, V)>> {
    let mut out: std::collections::BTreeMap<usize, V> = Default::default();
    let mut put = |k: usize, v: V| -> Option<()> {
        let e = out.entry(k).or_insert(V::ZERO);
        *e = e.plus(v)?;
        Some(())
    };
    match node {
        Node::Reshape(_) => return Some(x.to_vec()),
        Node::Dense(d) => {
            let n = d.in_dims.iter().product::<usize>();
            for o in 0..d.b.len() {
                for &(i, v) in x {
                    put(o, v.times(d.w[o * n + i])?)?;
                }
                if with_bias {
                    put(o, V::of(d.b[o]))?;
                }
            }
        }
        Node::Conv(c) => {
            let [ci, h, w] = c.in_shape;
            let [co, ho, wo] = c.out_shape;
            let [kh, kw] = c.kernel;
            for &(i, v) in x {
                let (ch, y, xx) = (i / (h * w), (i / w) % h, i % w);
                for o in 0..co {
                    for p in 0..kh {
                        for q in 0..kw {
                            // Output (r, s) reads input (r·sh + p − pt, s·sw + q − pl).
                            let (yy, xq) = (y + c.pads[0], xx + c.pads[1]);
                            if yy < p || xq < q {
                                continue;
                            }
                            let (ry, rx) = (yy - p, xq - q);
                            if ry % c.strides[0] != 0 || rx % c.strides[1] != 0 {
                                continue;
                            }
                            let (r, s) = (ry / c.strides[0], rx / c.strides[1]);
                            if r < ho && s < wo {
                                let k = ((o * ci + ch) * kh + p) * kw + q;
                                put((o * ho + r) * wo + s, v.times(c.w[k])?)?;
                            }
                        }
                    }
                }
            }
            if with_bias {
                for o in 0..co {
                    for k in 0..ho * wo {
                        put(o * ho * wo + k, V::of(c.b[o]))?;
                    }
                }
            }
        }
        Node::Pad(p) => {
            let out_dims = p.out_dims();
            for &(i, v) in x {
                let mut rem = i;
                let mut idx = vec![0; p.in_dims.len()];
                for k in (0..p.in_dims.len()).rev() {
                    idx[k] = rem % p.in_dims[k] + p.begin[k];
                    rem /= p.in_dims[k];
                }
                let flat = idx.iter().zip(&out_dims).fold(0, |a, (&j, &d)| a * d + j);
                put(flat, v)?;
            }
        }
        Node::Transpose(t) => {
            let out_dims = t.out_dims();
            for &(i, v) in x {
                let mut rem = i;
                let mut idx = vec![0; t.in_dims.len()];
                for k in (0..t.in_dims.len()).rev() {
                    idx[k] = rem % t.in_dims[k];
                    rem /= t.in_dims[k];
                }
                let flat = (0..out_dims.len()).fold(0, |a, k| a * out_dims[k] + idx[t.perm[k]]);
                put(flat, v)?;
            }
        }
        Node::Pool(p) if p.kind == PoolKind::Average => {
            let [_, h, w] = p.in_shape;
            let [_, ho, wo] = p.out_shape;
            let inside = |r: usize, s: usize| -> usize {
                let rows = (0..p.kernel[0])
                    .filter(|&a| {
                        (r * p.strides[0] + a)
                            .checked_sub(p.pads[0])
                            .is_some_and(|y| y < h)
                    })
                    .count();
                let cols = (0..p.kernel[1])
                    .filter(|&b| {
                        (s * p.strides[1] + b)
                            .checked_sub(p.pads[1])
                            .is_some_and(|x| x < w)
                    })
                    .count();
                rows * cols
            };
            for &(i, v) in x {
                let (ch, y, xx) = (i / (h * w), (i / w) % h, i % w);
                for r in 0..ho {
                    for s in 0..wo {
                        let (y0, x0) = (r * p.strides[0], s * p.strides[1]);
                        let (yy, xq) = (y + p.pads[0], xx + p.pads[1]);
                        if yy >= y0 && yy < y0 + p.kernel[0] && xq >= x0 && xq < x0 + p.kernel[1] {
                            let n = if p.count_include_pad {
                                p.kernel[0] * p.kernel[1]
                            } else {
                                inside(r, s)
                            };
                            put((ch * ho + r) * wo + s, v.over(n)?)?;
                        }
                    }
                }
            }
        }
        Node::MaxStage(m) => {
            let t = cache.get(&m.pool, m.level)?;
            for &(i, v) in x {
                for &(o, c) in t.0.get(i)? {
                    put(o, v.times(c)?)?;
                }
            }
        }
        Node::MaxSum(m) => {
            let t = cache.get(&m.pool, usize::MAX)?;
            for &(i, v) in x {
                for &(o, c) in t.1.get(i)? {
                    put(o, v.times(c)?)?;
                }
            }
        }
        _ => return None,
    }
    Some(out.into_iter().filter(|(_, v)| !v.zero()).collect())
}

/// Column form of a max pooling's ReLU tournament, rebuilt from the pooling geometry with
/// this crate's own code (the convention of docs/method.md, "Networks with structure"): each
/// window's values are paired in order; a pair `(a, b)` gives the neurons `a` and `b − a`, an
/// odd last value the neuron itself; after the ReLU a pair's value is the sum of its two
/// neurons. Returns, for `level`, each input's `(neuron, coefficient)` list, and for the
/// final sum each last-level neuron's `(pooled output, 1)` list.
type Columns = Vec<Vec<(usize, f64)>>;
fn tournament(pool: &Pool2d, level: usize) -> Option<(Columns, Columns)> {
    let [_, h, w] = pool.in_shape;
    let [c_n, ho, wo] = pool.out_shape;
    // Window contents, in row-major window order, as flat input indices.
    let mut values: Vec<Vec<Vec<(usize, f64)>>> = Vec::with_capacity(c_n * ho * wo);
    for c in 0..c_n {
        for r in 0..ho {
            for s in 0..wo {
                let mut win = Vec::new();
                for a in 0..pool.kernel[0] {
                    for b in 0..pool.kernel[1] {
                        let y = (r * pool.strides[0] + a).checked_sub(pool.pads[0]);
                        let x = (s * pool.strides[1] + b).checked_sub(pool.pads[1]);
                        if let (Some(y), Some(x)) = (y, x)
                            && y < h
                            && x < w
                        {
                            win.push(vec![((c * h + y) * w + x, 1.0)]);
                        }
                    }
                }
                values.push(win);
            }
        }
    }
    let mut width = pool.in_shape.iter().product::<usize>();
    let mut k = 0;
    while values.iter().any(|v| v.len() > 1) {
        let mut cols: Columns = vec![Vec::new(); width];
        let mut next = Vec::with_capacity(values.len());
        let mut n = 0usize;
        for win in &values {
            let mut nv = Vec::new();
            for pair in win.chunks(2) {
                for &(i, v) in &pair[0] {
                    cols[i].push((n, v));
                }
                if let [a, b] = pair {
                    for &(i, v) in b {
                        cols[i].push((n + 1, v));
                    }
                    for &(i, v) in a {
                        cols[i].push((n + 1, -v));
                    }
                    nv.push(vec![(n, 1.0), (n + 1, 1.0)]);
                    n += 2;
                } else {
                    nv.push(vec![(n, 1.0)]);
                    n += 1;
                }
            }
            next.push(nv);
        }
        if k == level {
            return Some((cols, Vec::new()));
        }
        values = next;
        width = n;
        k += 1;
    }
    if level != usize::MAX {
        return None;
    }
    let mut sum: Columns = vec![Vec::new(); width];
    for (o, v) in values.iter().enumerate() {
        for &(i, c) in v.first()? {
            sum[i].push((o, c));
        }
    }
    Some((Vec::new(), sum))
}

/// The layer applied to a sparse input, with or without the bias, exactly (`f64`) or
/// enclosed ([`Interval`]).
pub(crate) fn run<V: Val>(
    o: &LayerOrigin,
    x: Vec<(usize, V)>,
    with_bias: bool,
    cache: &mut Tournaments,
) -> Option<Vec<(usize, V)>> {
    let mut v = x;
    for n in &o.pre {
        v = apply(n, &v, false, cache)?;
    }
    v = apply(&o.op, &v, with_bias, cache)?;
    for n in &o.post {
        v = apply(n, &v, false, cache)?;
    }
    Some(v)
}

/// Re-derives the dense matrix and bias of every structured layer of `qnn` and compares them
/// with the ones the proof will use; returns the reasons for rejection.
pub fn check_lowering(qnn: &certquant_core::model::Network) -> Vec<String> {
    let mut reasons = Vec::new();
    for (l, layer) in qnn.layers().iter().enumerate() {
        let Some(origin) = layer.origin() else {
            continue;
        };
        if let Some(msg) = compare(origin, layer) {
            reasons.push(format!("layer {l}: {msg}"));
        }
    }
    reasons
}

fn compare(origin: &LayerOrigin, layer: &Affine) -> Option<String> {
    let (n_in, n_out) = (layer.inputs(), layer.outputs());
    let mut cache = Tournaments::default();
    // A layer with an average pool that is not exact in f64 (a divisor that is not a power
    // of two) is not compared: the prover encloses its real coefficients with the checker's
    // own interval lowering and widens its outputs (crate::inexact, docs/method.md, eq. (75)),
    // or fails the proof if it cannot.
    let enclosed = crate::inexact::has_average_pool(origin);
    let Some(bias) = run(origin, Vec::new(), true, &mut cache) else {
        if enclosed {
            return None;
        }
        return Some("its bias cannot be re-derived exactly".into());
    };
    let mut b = vec![0.0; n_out];
    for (k, v) in bias {
        if k >= n_out {
            return Some("its operators produce more outputs than the layer has".into());
        }
        b[k] = v;
    }
    if b != layer.bias() {
        return Some("the lowered bias differs from the checker's own lowering".into());
    }
    // A dense layer is compared entry by entry in place; a sparse one collects the
    // re-derived columns into rows and compares those with its stored rows, so neither side
    // is ever densified.
    let dense = layer.weights();
    let mut rows: Vec<Vec<(usize, f64)>> =
        vec![Vec::new(); if dense.is_some() { 0 } else { n_out }];
    for i in 0..n_in {
        let Some(col) = run(origin, vec![(i, 1.0)], false, &mut cache) else {
            if enclosed {
                return None;
            }
            return Some(format!(
                "input {i}: the column cannot be re-derived exactly"
            ));
        };
        let Some(w) = dense else {
            for (o, v) in col {
                if o >= n_out {
                    return Some("its operators produce more outputs than the layer has".into());
                }
                rows[o].push((i, v));
            }
            continue;
        };
        let mut it = col.into_iter().peekable();
        for o in 0..n_out {
            let want = match it.peek() {
                Some(&(k, v)) if k == o => {
                    it.next();
                    v
                }
                _ => 0.0,
            };
            if w[o * n_in + i] != want {
                return Some(format!(
                    "weight [{o}, {i}] is {:?} but the checker's own lowering gives {want:?}",
                    w[o * n_in + i]
                ));
            }
        }
        if it.next().is_some() {
            return Some("its operators produce more outputs than the layer has".into());
        }
    }
    for (o, want) in rows.iter().enumerate() {
        let mut have = layer.row_entries(o);
        let mut want = want.iter();
        loop {
            match (have.next(), want.next()) {
                (None, None) => break,
                (h, w) if h == w.copied() => {}
                (h, w) => {
                    return Some(format!(
                        "row {o}: stored entry {h:?} but the checker's own lowering gives {:?}",
                        w.copied()
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every lowerable operator fixture re-derives exactly with the checker's own code.
    #[test]
    fn fixtures_re_derive_exactly() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "onnx") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            let Ok(net) = certquant_core::onnx::import_bytes(&bytes) else {
                continue;
            };
            let structured = net.layers().iter().filter(|l| l.origin().is_some()).count();
            assert_eq!(
                check_lowering(&net),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
            checked += structured;
        }
        assert!(checked >= 15, "only {checked} structured layers");
    }

    /// Structured layers stored sparse re-derive exactly too, and a changed entry of a
    /// sparse layer is found.
    #[test]
    fn sparse_layers_are_compared_entry_by_entry() {
        use certquant_core::graph::SparseMap;
        use certquant_core::model::Affine;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx");
        let (mut checked, mut caught) = (0, 0);
        for entry in std::fs::read_dir(&dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "onnx") {
                continue;
            }
            let Ok(net) = certquant_core::onnx::import_bytes(&std::fs::read(&path).unwrap()) else {
                continue;
            };
            for (l, layer) in net.layers().iter().enumerate() {
                let Some(origin) = layer.origin() else {
                    continue;
                };
                if layer.coef_error().is_some() {
                    // Not compared: enclosed by the prover (crate::inexact).
                    continue;
                }
                let sparse = layer.to_sparse();
                assert!(sparse.is_sparse());
                assert_eq!(
                    compare(origin, &sparse),
                    None,
                    "{} layer {l}",
                    path.display()
                );
                checked += 1;
                // Move the first stored entry by a quarter.
                let rows: Vec<Vec<(usize, f64)>> = (0..sparse.outputs())
                    .map(|j| sparse.row_entries(j).collect())
                    .collect();
                let Some(j) = rows.iter().position(|r| !r.is_empty()) else {
                    continue;
                };
                let mut bad = rows.clone();
                bad[j][0].1 += 0.25;
                let map = SparseMap::from_rows(sparse.inputs(), bad).unwrap();
                let origin_arc = std::sync::Arc::new(origin.clone());
                let tampered =
                    Affine::new_sparse(l, map, sparse.bias().to_vec(), origin_arc).unwrap();
                let msg = compare(origin, &tampered).expect("tampering is found");
                assert!(msg.contains(&format!("row {j}")), "{msg}");
                caught += 1;
            }
        }
        assert!(checked >= 15 && caught >= 15, "{checked} {caught}");
    }

    #[test]
    fn inexact_operations_are_refused() {
        assert_eq!(add(1.0, 2f64.powi(-60)), None);
        assert_eq!(mul(0.1, 3.0), None);
        assert_eq!(mul(0.5, 3.0), Some(1.5));
    }
}
