//! Average windows whose divisor is not a power of two (issue #14): `AveragePool` 3×3 (stride
//! 1 with pads and `count_include_pad = 0`, divisors 4, 6, 9; stride 3, divisor 9) and
//! `GlobalAveragePool` 7×7 (divisor 49), sound end to end (docs/method.md, eqs. (74)–(76)).
//!
//! The two small conv nets are built here (dyadic weights `k/256`, seeded), exported to ONNX
//! and read back. Checked: the float evaluation against a naive reference; DeepPoly's bounds
//! against the *exact rational* network output at sampled dyadic points (so a bound that
//! ignored the `1/9` rounding could be caught); `verify`, `synth robustness`, `check`
//! (VALID), a tampered certificate (INVALID), `--semantics integer` refused (exit 2), and
//! the export keeping the pooling operators.

use std::path::Path;

use certquant::bounds::DeepPoly;
use certquant::graph::{Batch, Conv2d, Dense, Graph, Node, Pool2d, PoolKind, Reshape, ReshapeKind};
use certquant::model::Network;
use certquant::onnx;
use certquant::spec::InputBox;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

mod common;
use common::{run_json as run, s};

/// `k/256` with `|k| ≤ 64·scale`, seeded.
fn dyadic(rng: &mut ChaCha8Rng, n: usize, scale: i32) -> Vec<f64> {
    (0..n)
        .map(|_| f64::from(rng.random_range(-64 * scale..=64 * scale)) / 256.0)
        .collect()
}

fn conv(rng: &mut ChaCha8Rng, shape: [usize; 3], c_out: usize, k: usize, pads: usize) -> Node {
    let w = dyadic(rng, c_out * shape[0] * k * k, 2);
    let b = dyadic(rng, c_out, 1);
    Node::Conv(Conv2d::new(shape, [k, k], [1, 1], [pads; 4], w, b).unwrap())
}

fn relu(dims: &[usize]) -> Node {
    Node::Relu {
        dims: dims.to_vec(),
    }
}

fn avg(shape: [usize; 3], k: usize, s: usize, pads: usize, cip: bool) -> Pool2d {
    Pool2d::new(PoolKind::Average, shape, [k, k], [s, s], [pads; 4], cip).unwrap()
}

fn gemm(rng: &mut ChaCha8Rng, in_dims: Vec<usize>, outputs: usize) -> Node {
    let n: usize = in_dims.iter().product();
    Node::Dense(
        Dense::new(
            in_dims,
            outputs,
            dyadic(rng, n * outputs, 2),
            dyadic(rng, outputs, 1),
        )
        .unwrap(),
    )
}

fn flatten(dims: [usize; 3]) -> Node {
    let n = dims.iter().product();
    Node::Reshape(Reshape::new(ReshapeKind::Flatten, dims.to_vec(), vec![n]).unwrap())
}

/// Net A, input `[1, 8, 8]`: Conv 2×2 (2 ch) → Relu → AveragePool 3×3 s1 pads 1
/// (`count_include_pad = 0`) → Conv 2×2 (3 ch) → Relu → AveragePool 3×3 s3 → Flatten → Gemm 3.
fn net_a() -> Graph {
    let mut rng = ChaCha8Rng::seed_from_u64(74);
    let nodes = vec![
        conv(&mut rng, [1, 8, 8], 2, 2, 0),
        relu(&[2, 7, 7]),
        Node::Pool(avg([2, 7, 7], 3, 1, 1, false)),
        conv(&mut rng, [2, 7, 7], 3, 2, 0),
        relu(&[3, 6, 6]),
        Node::Pool(avg([3, 6, 6], 3, 3, 0, true)),
        flatten([3, 2, 2]),
        gemm(&mut rng, vec![12], 3),
    ];
    Graph::new(Batch::Fixed(1), vec![1, 8, 8], nodes).unwrap()
}

/// Net B, input `[1, 8, 8]`: Conv 2×2 (4 ch) → Relu → GlobalAveragePool (7×7) → Flatten →
/// Gemm 3.
fn net_b() -> Graph {
    let mut rng = ChaCha8Rng::seed_from_u64(75);
    let mut gap = avg([4, 7, 7], 7, 1, 0, false);
    gap.global = true;
    let nodes = vec![
        conv(&mut rng, [1, 8, 8], 4, 2, 0),
        relu(&[4, 7, 7]),
        Node::Pool(gap),
        flatten([4, 1, 1]),
        gemm(&mut rng, vec![4], 3),
    ];
    Graph::new(Batch::Fixed(1), vec![1, 8, 8], nodes).unwrap()
}

/// Net C, MNIST-shaped (`[1, 28, 28]`), for BENCHMARKS.md: Conv 3×3 (6 ch) → Relu →
/// AveragePool 3×3 s3 (→ `[6, 8, 8]`) → Conv 2×2 (8 ch) → Relu → GlobalAveragePool 7×7 →
/// Flatten → Gemm 10. Seeded dyadic weights (not trained).
fn net_c() -> Graph {
    let mut rng = ChaCha8Rng::seed_from_u64(78);
    let mut gap = avg([8, 7, 7], 7, 1, 0, false);
    gap.global = true;
    let nodes = vec![
        conv(&mut rng, [1, 28, 28], 6, 3, 0),
        relu(&[6, 26, 26]),
        Node::Pool(avg([6, 26, 26], 3, 3, 0, true)),
        conv(&mut rng, [6, 8, 8], 8, 2, 0),
        relu(&[8, 7, 7]),
        Node::Pool(gap),
        flatten([8, 1, 1]),
        gemm(&mut rng, vec![8], 10),
    ];
    Graph::new(Batch::Fixed(1), vec![1, 28, 28], nodes).unwrap()
}

/// Writes nets A, B and C to `$CERTQUANT_AVGPOOL_NETS` (the BENCHMARKS.md section
/// "average windows whose divisor is not a power of two"): `cargo test --release --test
/// avgpool_inexact -- --ignored write_nets`.
#[test]
#[ignore = "writes the benchmark nets; run explicitly"]
fn write_nets() {
    let dir = std::env::var("CERTQUANT_AVGPOOL_NETS").expect("CERTQUANT_AVGPOOL_NETS");
    for (name, g) in [("a", net_a()), ("b", net_b()), ("c", net_c())] {
        let net = g.lower().unwrap();
        let path = Path::new(&dir).join(format!("avgpool_inexact_{name}.onnx"));
        onnx::export(&net, &path).unwrap();
        assert_eq!(onnx::import(&path).unwrap(), net);
    }
}

// ---------------------------------------------------------------------------------------
// Exact rational reference.

/// A rational `n/d` (`d > 0`, reduced).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Q(i128, i128);

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Q {
    fn new(n: i128, d: i128) -> Q {
        let g = gcd(n, d).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Q(s * n / g, s * d / g)
    }
    /// The exact value of a dyadic `f64` (test values are `k/2^a`, `a ≤ 16`).
    fn of(v: f64) -> Q {
        let d = 1i128 << 16;
        let n = v * d as f64;
        assert_eq!(n.fract(), 0.0, "{v} is not a multiple of 2^-16");
        Q::new(n as i128, d)
    }
    fn add(self, o: Q) -> Q {
        Q::new(self.0 * o.1 + o.0 * self.1, self.1 * o.1)
    }
    fn mul(self, o: Q) -> Q {
        Q::new(self.0 * o.0, self.1 * o.1)
    }
    fn div(self, k: usize) -> Q {
        Q::new(self.0, self.1 * k as i128)
    }
    /// Whether `self ≥ b` for the float `b`, exactly where the integers fit (else by floats,
    /// which is then unambiguous: the two differ by many orders of magnitude).
    fn ge(self, b: f64) -> bool {
        let (m, e) = decompose(b);
        let exact = if e >= 0 {
            m.checked_mul(self.1)
                .and_then(|x| x.checked_mul(1i128.checked_shl(e as u32)?))
                .map(|rhs| self.0 >= rhs)
        } else {
            1i128
                .checked_shl((-e) as u32)
                .filter(|&p| p > 0)
                .and_then(|p| self.0.checked_mul(p))
                .and_then(|lhs| m.checked_mul(self.1).map(|rhs| lhs >= rhs))
        };
        exact.unwrap_or_else(|| self.0 as f64 / self.1 as f64 >= b)
    }
    fn le(self, b: f64) -> bool {
        Q(-self.0, self.1).ge(-b)
    }
}

/// `b = m·2^e` exactly.
fn decompose(b: f64) -> (i128, i32) {
    if b == 0.0 {
        return (0, 0);
    }
    let bits = b.to_bits();
    let sign = if bits >> 63 == 1 { -1 } else { 1 };
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1 << 52) - 1)) as i128;
    let (m, e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), exp - 1075)
    };
    (sign * m, e)
}

/// The graph evaluated exactly over the rationals, node by node, with this file's own
/// loops (a naive reference independent of the lowering).
fn exact_forward(g: &Graph, x: &[f64]) -> Vec<Q> {
    let mut v: Vec<Q> = x.iter().map(|&a| Q::of(a)).collect();
    for n in g.nodes() {
        v = match n {
            Node::Conv(c) => {
                let [ci, h, w] = c.in_shape;
                let [co, ho, wo] = c.out_shape;
                let [kh, kw] = c.kernel;
                let mut out = Vec::with_capacity(co * ho * wo);
                for o in 0..co {
                    for r in 0..ho {
                        for t in 0..wo {
                            let mut acc = Q::of(c.b[o]);
                            for ch in 0..ci {
                                for p in 0..kh {
                                    for q in 0..kw {
                                        let (y, xx) = (r + p, t + q); // no pads, stride 1
                                        if y < h && xx < w {
                                            let wt = c.w[((o * ci + ch) * kh + p) * kw + q];
                                            acc = acc.add(Q::of(wt).mul(v[(ch * h + y) * w + xx]));
                                        }
                                    }
                                }
                            }
                            out.push(acc);
                        }
                    }
                }
                out
            }
            Node::Relu { .. } => v
                .iter()
                .map(|q| if q.0 < 0 { Q(0, 1) } else { *q })
                .collect(),
            Node::Pool(p) => {
                let [c_n, h, w] = p.in_shape;
                let [_, ho, wo] = p.out_shape;
                let mut out = Vec::new();
                for c in 0..c_n {
                    for r in 0..ho {
                        for t in 0..wo {
                            let mut acc = Q(0, 1);
                            let mut inside = 0;
                            for a in 0..p.kernel[0] {
                                for b in 0..p.kernel[1] {
                                    let y = (r * p.strides[0] + a).checked_sub(p.pads[0]);
                                    let xx = (t * p.strides[1] + b).checked_sub(p.pads[1]);
                                    if let (Some(y), Some(xx)) = (y, xx)
                                        && y < h
                                        && xx < w
                                    {
                                        acc = acc.add(v[(c * h + y) * w + xx]);
                                        inside += 1;
                                    }
                                }
                            }
                            let d = if p.count_include_pad {
                                p.kernel[0] * p.kernel[1]
                            } else {
                                inside
                            };
                            out.push(acc.div(d));
                        }
                    }
                }
                out
            }
            Node::Reshape(_) => v,
            Node::Dense(d) => {
                let n = d.inputs();
                (0..d.outputs())
                    .map(|o| {
                        (0..n).fold(Q::of(d.b[o]), |acc, i| {
                            acc.add(Q::of(d.w[o * n + i]).mul(v[i]))
                        })
                    })
                    .collect()
            }
            other => panic!("unexpected {}", other.op_name()),
        };
    }
    v
}

fn to_f64(q: Q) -> f64 {
    q.0 as f64 / q.1 as f64
}

/// A dyadic image `k/256`, `k ∈ [16, 240]` (so a box of radius 4/256 stays in `[0, 1]`).
fn image(rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..64)
        .map(|_| f64::from(rng.random_range(16u8..=240)) / 256.0)
        .collect()
}

#[test]
fn inexact_pools_lower_with_an_error_bound_and_evaluate_like_the_reference() {
    for (name, g) in [("A", net_a()), ("B", net_b())] {
        let net = g.lower().unwrap();
        assert!(
            !net.inexact_layers().is_empty(),
            "{name}: no layer carries an error bound"
        );
        for k in net.inexact_layers() {
            let e = net.layers()[k].coef_error().unwrap();
            assert!(
                e.max_radius() > 0.0 && e.max_radius() < 1e-15,
                "{name} layer {k}"
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let x = image(&mut rng);
            let (got, want) = (net.forward(&x), exact_forward(&g, &x));
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - to_f64(*b)).abs() <= 1e-12 * (1.0 + a.abs()),
                    "{name}: {a} vs {b:?}"
                );
            }
        }
        // Export keeps the pooling operators, and the re-import lowers to the same chain.
        let bytes = onnx::export_bytes(&net).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(if name == "A" {
            "AveragePool"
        } else {
            "GlobalAveragePool"
        }));
        let back = onnx::import_bytes(&bytes).unwrap();
        assert_eq!(back, net, "{name}");
        assert_eq!(back.inexact_layers(), net.inexact_layers());
    }
}

/// DeepPoly's bounds, computed with the coefficient error terms, contain the exact rational
/// output at sampled dyadic points of the box, and on one-point boxes.
#[test]
fn deeppoly_bounds_contain_the_exact_rational_outputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(76);
    for (name, g) in [("A", net_a()), ("B", net_b())] {
        let net = g.lower().unwrap();
        let mut checked = 0;
        for _ in 0..6 {
            let c = image(&mut rng);
            for r in [0.0, 1.0 / 256.0, 4.0 / 256.0] {
                let lo: Vec<f64> = c.iter().map(|v| v - r).collect();
                let hi: Vec<f64> = c.iter().map(|v| v + r).collect();
                let bx = InputBox::new(lo.clone(), hi.clone()).unwrap();
                let dp = DeepPoly::run(&net, &bx).unwrap();
                let out = dp.layer(net.depth() - 1);
                for _ in 0..40 {
                    // Dyadic points k/1024 of the box.
                    let x: Vec<f64> = lo
                        .iter()
                        .zip(&hi)
                        .map(|(l, h)| {
                            let steps = ((h - l) * 1024.0) as i32;
                            l + f64::from(rng.random_range(0..=steps)) / 1024.0
                        })
                        .collect();
                    for (j, y) in exact_forward(&g, &x).into_iter().enumerate() {
                        assert!(
                            y.ge(out.lo[j]) && y.le(out.hi[j]),
                            "{name}: output {j} = {y:?} outside [{}, {}]",
                            out.lo[j],
                            out.hi[j]
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 2000, "{checked}");
    }
}

/// `[n, 64]` float32 images as a `.npy` file (unlabelled: the prediction is the label).
fn write_npy(path: &Path, images: &[Vec<f64>]) {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 64), }}",
        images.len()
    );
    let pad = 64 - (10 + dict.len() + 1) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad % 64));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for x in images.iter().flatten() {
        bytes.extend((*x as f32).to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// verify, synth robustness, check (VALID), a tampered certificate (INVALID), and the
/// integer semantics refused, on both nets.
#[test]
fn inexact_pools_go_through_verify_synth_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let images: Vec<Vec<f64>> = (0..8).map(|_| image(&mut rng)).collect();
    let data = tmp.path().join("images.npy");
    write_npy(&data, &images);
    let eps = "2/256";
    for (name, g) in [("A", net_a()), ("B", net_b())] {
        let net: Network = g.lower().unwrap();
        let model = tmp.path().join(format!("net_{name}.onnx"));
        onnx::export(&net, &model).unwrap();
        let (model_s, data_s) = (s(&model), s(&data));
        let mut verified = Vec::new();
        for id in 0..images.len() {
            let id = id.to_string();
            let (code, v) = run(&[
                "verify", "--model", model_s, "--data", data_s, "--id", &id, "--eps", eps,
            ]);
            assert!(code == 0 || code == 1, "{name}: {v}");
            if v["verified"] == Value::Bool(true) {
                verified.push(id);
            }
        }
        assert!(verified.len() >= 2, "{name}: verified {verified:?}");
        let out = tmp.path().join(format!("synth_{name}"));
        let mut args = vec![
            "synth",
            "robustness",
            "--model",
            model_s,
            "--data",
            data_s,
            "--eps",
            eps,
            "--out",
            s(&out),
        ];
        for id in &verified[..2] {
            args.extend(["--id", id.as_str()]);
        }
        let (code, v) = run(&args);
        assert_eq!(code, 0, "{name}: synthesis must certify: {v}");
        eprintln!("{name}: synth {v}");
        let (cert, qnn) = (out.join("certificate.json"), out.join("qnn.onnx"));
        let check = |cert: &Path| {
            run(&[
                "check",
                "--certificate",
                s(cert),
                "--model",
                model_s,
                "--qnn",
                s(&qnn),
            ])
        };
        let (code, report) = check(&cert);
        assert_eq!(
            (code, &report["valid"]),
            (0, &Value::Bool(true)),
            "{name}: {report}"
        );
        // The QNN keeps the pooling and its error bound.
        let q = onnx::import(&qnn).unwrap();
        assert_eq!(q.inexact_layers(), net.inexact_layers(), "{name}");
        // Tampered: the first property's box widened to the whole [0, 1]^64 is not proven.
        let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&cert).unwrap()).unwrap();
        let input = &mut c["properties"][0]["box"];
        assert!(input.is_object(), "{name}: certificate layout {c}");
        let wide = |v: &mut Value, x: f64| {
            if let Some(a) = v.as_array_mut() {
                a.iter_mut().for_each(|e| *e = Value::from(x));
            }
        };
        wide(&mut input["lo"], 0.0);
        wide(&mut input["hi"], 1.0);
        let bad = tmp.path().join(format!("tampered_{name}.json"));
        std::fs::write(&bad, serde_json::to_string(&c).unwrap()).unwrap();
        let (code, report) = check(&bad);
        assert_eq!(
            (code, &report["valid"]),
            (1, &Value::Bool(false)),
            "{name}: {report}"
        );
        // One input: Algorithm 1 with MILP preimages over the widened escape rows (eq. (76)).
        let one = tmp.path().join(format!("one_{name}"));
        let (code, v) = run(&[
            "synth",
            "robustness",
            "--model",
            model_s,
            "--data",
            data_s,
            "--eps",
            eps,
            "--out",
            s(&one),
            "--id",
            &verified[0],
        ]);
        eprintln!("{name}: synth one {v}");
        assert_eq!(code, 0, "{name}: {v}");
        assert!(v["milps"].as_u64().unwrap_or(0) >= 1, "{name}: {v}");
        let (code, report) = run(&[
            "check",
            "--certificate",
            s(&one.join("certificate.json")),
            "--model",
            model_s,
            "--qnn",
            s(&one.join("qnn.onnx")),
        ]);
        assert_eq!(
            (code, &report["valid"]),
            (0, &Value::Bool(true)),
            "{name}: {report}"
        );
        // The integer and float32 semantics would compute the pool differently (a division by
        // 9 or 49 is not a shift): refused up front, exit 2, one input and a property set.
        for sem in ["integer", "float32"] {
            for ids in [["--id", verified[0].as_str()], ["--ids", "0,1"]] {
                let o = tmp.path().join(format!("{sem}_{name}"));
                let mut args = vec![
                    "synth",
                    "robustness",
                    "--model",
                    model_s,
                    "--data",
                    data_s,
                    "--eps",
                    eps,
                    "--out",
                    s(&o),
                    "--semantics",
                    sem,
                ];
                args.extend(ids);
                let o = common::run(&args);
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(o.status.code(), Some(2), "{name} {sem}: {err}");
                assert!(err.contains("power of two"), "{name} {sem}: {err}");
            }
        }
    }
}
