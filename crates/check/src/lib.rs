//! The independent certificate checker: re-establishes everything a [`Certificate`] claims
//! from the certificate, the original model and the shipped QNN alone, without trusting the
//! synthesis.
//!
//! What is checked ([`check_certificate`]):
//! 1. **Identity.** The SHA-256 of the original model bytes and of the QNN bytes equal the
//!    certificate's hashes.
//! 2. **Derivation.** The QNN is exactly the quantization of the original network under the
//!    certificate's strategy: every layer's `Q − F` follows the integer-bit rule of the method,
//!    and every weight and bias of the QNN equals `clamp(round(v·2^F), −2^(Q−1), 2^(Q−1)−1)·2^−F`
//!    of the original value `v` ([`quant`], exact integer arithmetic; docs/method.md, eq. (44)).
//! 3. **Statement.** Every property's box is well formed, fits the network, and contains the
//!    exact rational region `k/255 ± eps` recorded in its source (for a backdoor property: the
//!    recorded image with the trigger patch free over `[0,1]`); its output class exists
//!    ([`region`]; docs/method.md, eq. (45)).
//! 4. **Proof.** Every property is proven again on the shipped QNN by the checker's own bound
//!    propagation ([`prove`]), and the re-proven margin is reported. A not-target property that
//!    no single class proves may carry multipliers `λ ≥ 0`; the checker then re-proves
//!    `Σ_j λ_j (y_j − y_target) > 0` with its own interval arithmetic (the multipliers are
//!    only a hint: a wrong one fails the proof, it cannot fake one; docs/method.md,
//!    eqs. (46), (47)).
//!
//! Under the integer semantics (docs/method.md §17) step 4 proves the integer program
//! (eqs. (54)–(58)) and [`semantics`] first checks its formats, that there is no input map,
//! and that no accumulator can overflow (eq. (57)), with its own integer arithmetic.
//! Under the float32 semantics (eqs. (58b), (58c)) step 4 proves the binary32 network with
//! [`prove::Prover::float32`]: weights must be normal `f32`s, no input map, the box rounded
//! outward onto `f32`, every affine output widened by its accumulation error.
//!
//! A certificate about a VNN-LIB query (its `vnnlib` part) is checked against the query file
//! as well ([`check_certificate_with_query`], [`query`]): its hash, the exact cover of every
//! region by the recorded split tree, and every recorded refutation re-proven
//! (docs/method.md, eqs. (59), (60)). Such a certificate may have no strategy only when the QNN
//! is the original model itself (nothing to re-derive).
//!
//! The certificate is valid iff all four hold for every property. A statistical guarantee
//! (backdoor-freeness by SPRT) cannot be re-derived from the certificate; its parameters are
//! echoed in the report, and its per-property proofs are checked like any other.
//!
//! # Why it is independent
//! A checker that reused the synthesis' code would repeat its bugs. This module shares no
//! arithmetic with the trusted synthesis path: it does not call `certquant-bounds` (the
//! synthesis DeepPoly, which keeps point coefficients and moves a-priori rounding-error bounds
//! into the constants) nor `certquant_bounds::quantize` (the synthesis quantizer, which rounds in
//! floating point). It uses a different soundness technique — interval coefficients with every
//! operation rounded outward by `next_down`/`next_up` ([`interval`]) — and re-derives the
//! quantization from the bit patterns of the weights with integer shifts. What it does share
//! is the input side: the data types ([`Network`], [`Certificate`]), the ONNX importer that
//! turns the bytes into networks (the hashes tie those bytes to the certificate), and SHA-256.
//!
//! # Why every bound is sound
//! See [`interval`] (each float operation is followed by one step outward, which bounds the
//! exact result under any rounding mode) and [`prove`] (the back-substitution invariant: the
//! exact real coefficients of a valid linear bound always lie in the computed intervals).

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

pub mod inexact;
pub mod input_map;
pub mod interval;
pub mod linear_spec;
pub mod lower;
pub mod prove;
pub mod quant;
pub mod query;
pub mod region;
pub mod semantics;

use serde::Serialize;
use thiserror::Error;

use certquant_core::certificate::{Certificate, FORMAT, Statistical, sha256_hex};
use certquant_core::model::Network;
use certquant_core::spec::OutputSpec;

/// Why a check could not even start: the inputs cannot be read or parsed. (A readable but
/// wrong certificate is not an error: it yields a [`CheckReport`] with `valid = false`.)
///
/// The underlying cause is exposed as the error's `source()` (print the chain, e.g. with
/// anyhow's `{:#}`, to see it).
#[derive(Debug, Error)]
pub enum CheckError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate is not a certificate of a supported format.
    #[error("{path}: not a valid certificate: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A model file is not a supported ONNX MLP.
    #[error("model {path}")]
    Model {
        /// The file.
        path: String,
        /// The cause.
        source: certquant_core::onnx::OnnxError,
    },
}

/// The outcome of re-proving one property on the QNN.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyCheck {
    /// Index of the property in the certificate.
    pub index: usize,
    /// Whether the statement checks passed and the output condition was re-proven.
    pub proven: bool,
    /// The re-proven margin (`> 0` iff the output condition holds on the whole box): for
    /// robustness the least lower bound of `y_label − y_j`, for not-target the largest lower
    /// bound of `y_j − y_target`. `NaN` (JSON `null`) when no proof was attempted.
    pub margin: f64,
    /// The margin the certificate claims (informative; not required to match).
    pub claimed_margin: f64,
    /// Whether the box is well formed and contains the claimed region.
    pub region_ok: bool,
}

/// The checker's verdict on a certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// `true` iff every check passed (then `reasons` is empty).
    pub valid: bool,
    /// Why the certificate is rejected, one line per problem.
    pub reasons: Vec<String>,
    /// Per property: the re-proof.
    pub properties: Vec<PropertyCheck>,
    /// The certificate's statistical parameters, echoed (not re-checkable from the
    /// certificate alone).
    pub statistical: Option<Statistical>,
    /// The re-proof of a VNN-LIB query (certificates with a `vnnlib` part only;
    /// [`query`], docs/method.md eqs. (59), (60)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<query::QueryCheck>,
    /// The re-proof of every query of a VNN-LIB query set (`vnnlib_set`, one per file, in
    /// the certificate's order; docs/method.md eq. (67)).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_set: Vec<query::QueryCheck>,
}

/// Reads and parses a certificate file.
pub fn read_certificate(path: &std::path::Path) -> Result<Certificate, CheckError> {
    let bytes = std::fs::read(path).map_err(|source| CheckError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Certificate::parse(&bytes).map_err(|reason| CheckError::Certificate {
        path: path.display().to_string(),
        reason,
    })
}

/// Reads an ONNX model file: the network and the file's bytes (which are what is hashed).
pub fn read_model(path: &std::path::Path) -> Result<(Network, Vec<u8>), CheckError> {
    let bytes = std::fs::read(path).map_err(|source| CheckError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let net = parse_model(&bytes, &path.display().to_string())?;
    Ok((net, bytes))
}

/// Imports ONNX model bytes; `name` identifies them in the error.
pub fn parse_model(bytes: &[u8], name: &str) -> Result<Network, CheckError> {
    certquant_core::onnx::import_bytes(bytes).map_err(|source| CheckError::Model {
        path: name.to_string(),
        source,
    })
}

/// Checks `cert` against the original model and the shipped QNN (both as parsed networks and
/// as the bytes they were parsed from). See the module documentation for what is checked.
///
/// Never fails: every problem becomes a reason in the report. The checks are
/// docs/method.md, eqs. (44), (45), (46), (47); under the integer semantics also (54)–(58),
/// under the float32 semantics (58b), (58c). A certificate about a VNN-LIB query needs the
/// file: see [`check_certificate_with_query`].
pub fn check_certificate(
    cert: &Certificate,
    original: &Network,
    original_bytes: &[u8],
    qnn: &Network,
    qnn_bytes: &[u8],
) -> CheckReport {
    check_certificate_with_query(cert, original, original_bytes, qnn, qnn_bytes, None)
}

/// [`check_certificate`], plus the VNN-LIB file's bytes for a certificate with a `vnnlib`
/// part: its hash, cover and refutations are re-proven on the QNN ([`query`]; eqs. (59),
/// (60)). Such a certificate is invalid without the file.
pub fn check_certificate_with_query(
    cert: &Certificate,
    original: &Network,
    original_bytes: &[u8],
    qnn: &Network,
    qnn_bytes: &[u8],
    query_bytes: Option<&[u8]>,
) -> CheckReport {
    check_certificate_with_queries(
        cert,
        original,
        original_bytes,
        qnn,
        qnn_bytes,
        query_bytes,
        &[],
    )
}

/// [`check_certificate_with_query`], plus the bytes of every file of a VNN-LIB query set
/// (`cert.vnnlib_set`, same order): each is checked like the single query — hash, cover and
/// every refutation re-proven on the QNN (docs/method.md eqs. (59), (60), (67)). The
/// certificate is invalid unless every file of the set is given and proven.
pub fn check_certificate_with_queries(
    cert: &Certificate,
    original: &Network,
    original_bytes: &[u8],
    qnn: &Network,
    qnn_bytes: &[u8],
    query_bytes: Option<&[u8]>,
    set_bytes: &[&[u8]],
) -> CheckReport {
    let mut reasons = Vec::new();
    if cert.format != FORMAT {
        reasons.push(format!(
            "unsupported certificate format {:?} (expected {FORMAT:?})",
            cert.format
        ));
    }

    // 1. Identity.
    let h = sha256_hex(original_bytes);
    if !h.eq_ignore_ascii_case(&cert.original_model.sha256) {
        reasons.push(format!(
            "original model hash mismatch: the file has sha256 {h}, the certificate says {}",
            cert.original_model.sha256
        ));
    }
    let h = sha256_hex(qnn_bytes);
    if !h.eq_ignore_ascii_case(&cert.qnn.sha256) {
        reasons.push(format!(
            "QNN hash mismatch: the file has sha256 {h}, the certificate says {}",
            cert.qnn.sha256
        ));
    }

    // 2. Derivation, and the checker's own lowering of structured layers.
    if cert.strategy.is_empty() && (cert.vnnlib.is_some() || !cert.vnnlib_set.is_empty()) {
        // nothing quantized: the QNN must be the original model itself (same bytes)
        if !cert.is_unquantized() {
            reasons
                .push("no strategy, but the QNN's hash differs from the original model's".into());
        }
    } else {
        reasons.extend(check_derivation(cert, original, qnn));
    }
    reasons.extend(lower::check_lowering(qnn));
    reasons.extend(input_map::compare_maps(original, qnn));

    // 2b. The integer semantics: formats, no input map, eq. (57) (`None`: real semantics).
    let formats = semantics::check_integer_semantics(cert, original, qnn);
    if let Err(r) = &formats {
        reasons.extend(r.iter().cloned());
    }

    // 3 + 4. Statement and proof, per property.
    if cert.properties.is_empty() && cert.vnnlib.is_none() && cert.vnnlib_set.is_empty() {
        reasons.push("the certificate has no properties".into());
    }
    let mut properties = Vec::with_capacity(cert.properties.len());
    for (index, prop) in cert.properties.iter().enumerate() {
        let mut local = region::check_input_region(prop, qnn.input_dim());
        let region_ok = local.is_empty();
        local.extend(region::check_output(prop.output, qnn.output_dim()));
        let mut margin = f64::NAN;
        if local.is_empty() {
            let (lo, hi) = (prop.input.lo(), prop.input.hi());
            let prover = match &formats {
                Ok(None) if cert.semantics.is_float32() => prove::Prover::float32(qnn, lo, hi),
                Ok(None) => prove::Prover::new(qnn, lo, hi),
                Ok(Some(f)) => prove::Prover::with_formats(qnn, lo, hi, f),
                Err(_) => Err("the integer semantics is rejected (see above)".into()),
            };
            match prover {
                Ok(p) => {
                    margin = p.margin(prop.output);
                    if let (OutputSpec::NotTarget { target }, Some(lambda), false) =
                        (prop.output, &prop.multipliers, margin > 0.0)
                    {
                        margin = p.difference_combination_lower_bound(target, lambda);
                    }
                    let positive = margin > 0.0; // false for NaN
                    if !positive {
                        local.push(format!(
                            "the output condition {:?} is not proven on the QNN: re-proven \
                             margin {margin:?} (the certificate claims {:?})",
                            prop.output, prop.margin
                        ));
                    }
                }
                Err(e) => local.push(format!("no proof: {e}")),
            }
        }
        let proven = local.is_empty();
        reasons.extend(local.into_iter().map(|r| format!("property {index}: {r}")));
        properties.push(PropertyCheck {
            index,
            proven,
            margin,
            claimed_margin: prop.margin,
            region_ok,
        });
    }

    // 3 + 4 for a VNN-LIB query: the file by hash, the cover and every refutation.
    let query = cert.vnnlib.as_ref().map(|q| {
        if !cert.semantics.is_real() {
            reasons.push("a VNN-LIB query is certified for real-valued semantics only".into());
        }
        match query_bytes {
            Some(bytes) => {
                let (r, check) = query::check_query_certificate(q, bytes, qnn);
                reasons.extend(r.into_iter().map(|r| format!("VNN-LIB query: {r}")));
                check
            }
            None => {
                reasons.push("the certificate is about a VNN-LIB query: its file is needed".into());
                query::QueryCheck {
                    file: q.file.clone(),
                    hash_ok: false,
                    regions: Vec::new(),
                }
            }
        }
    });

    // 3 + 4 for a VNN-LIB query set: every file, as the single query above.
    if !cert.vnnlib_set.is_empty() && !cert.semantics.is_real() {
        reasons.push("a VNN-LIB query set is certified for real-valued semantics only".into());
    }
    if set_bytes.len() != cert.vnnlib_set.len() {
        reasons.push(format!(
            "the certificate is about {} VNN-LIB file(s) of a query set, {} given",
            cert.vnnlib_set.len(),
            set_bytes.len()
        ));
    }
    let query_set = cert
        .vnnlib_set
        .iter()
        .zip(set_bytes)
        .enumerate()
        .map(|(i, (q, bytes))| {
            let (r, check) = query::check_query_certificate(q, bytes, qnn);
            let name = q.file.as_deref().unwrap_or("(unnamed)");
            reasons.extend(
                r.into_iter()
                    .map(|r| format!("VNN-LIB set file {i} ({name}): {r}")),
            );
            check
        })
        .collect();

    CheckReport {
        valid: reasons.is_empty(),
        reasons,
        properties,
        statistical: cert.statistical.clone(),
        query,
        query_set,
    }
}

/// Step 2: strategy shape, the integer-bit rule, and the parameter-by-parameter comparison
/// (docs/method.md, eqs. (4), (44)).
fn check_derivation(cert: &Certificate, original: &Network, qnn: &Network) -> Vec<String> {
    let mut reasons = Vec::new();
    if cert.strategy.len() != original.depth() {
        reasons.push(format!(
            "the strategy has {} layer configs, the original network {} affine layers",
            cert.strategy.len(),
            original.depth()
        ));
        return reasons;
    }
    let mut strategy = Vec::with_capacity(cert.strategy.len());
    for (l, (cfg, layer)) in cert.strategy.iter().zip(original.layers()).enumerate() {
        let (total, frac) = (cfg.total(), cfg.frac());
        // The certificate type enforces these on parsing; re-check what the arithmetic needs.
        if !(1..=52).contains(&total) || frac >= total {
            reasons.push(format!(
                "layer {l}: invalid config ⟨Q={total}, F={frac}⟩ (need 1 ≤ Q ≤ 52, F < Q)"
            ));
            return reasons;
        }
        let int = quant::integer_bits(layer);
        if total - frac != int {
            reasons.push(format!(
                "layer {l}: ⟨Q={total}, F={frac}⟩ has {} integer bits, but the layer's weights \
                 need exactly {int} (m = max |round(v)| rule)",
                total - frac
            ));
        }
        strategy.push((total, frac));
    }
    reasons.extend(quant::compare_qnn(original, &strategy, qnn));
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::certificate::{CertifiedProperty, ModelRef, PropertySource};
    use certquant_core::model::Affine;
    use certquant_core::quant::QuantConfig;
    use certquant_core::spec::{InputBox, OutputSpec};

    /// A 4-3-2 network that clearly prefers class 0 near the centre 0.5.
    fn net() -> Network {
        let l0 = Affine::new(
            0,
            3,
            4,
            vec![
                0.8, 0.3, -0.2, 0.1, //
                -0.4, 0.6, 0.2, 0.3, //
                0.2, -0.1, 0.7, -0.3,
            ],
            vec![0.1, -0.05, 0.2],
        )
        .unwrap();
        let l1 = Affine::new(
            1,
            2,
            3,
            vec![1.3, 0.2, 0.9, -0.6, 0.4, -0.3],
            vec![0.3, -0.2],
        )
        .unwrap();
        // float32 values, as an ONNX file would hold them
        let f32ify = |l: &Affine| l.map_params(|v| v as f32 as f64).unwrap();
        Network::new(vec![f32ify(&l0), f32ify(&l1)]).unwrap()
    }

    fn setup() -> (Certificate, Network, Vec<u8>, Network, Vec<u8>) {
        let orig = net();
        let strategy = vec![
            QuantConfig::new(10, 8).unwrap(),
            QuantConfig::new(10, 8).unwrap(),
        ];
        let q = Network::new(
            orig.layers()
                .iter()
                .zip(&strategy)
                .map(|(l, c)| {
                    l.map_params(|v| quant::quantize(v, c.total(), c.frac()))
                        .unwrap()
                })
                .collect(),
        )
        .unwrap();
        let ob = certquant_core::onnx::export_bytes(&orig).unwrap();
        let qb = certquant_core::onnx::export_bytes(&q).unwrap();
        // export goes through float32; re-import so the networks are what the bytes hold
        let orig = certquant_core::onnx::import_bytes(&ob).unwrap();
        let pixels = vec![128u8, 100, 140, 127];
        let x: Vec<f64> = pixels.iter().map(|&k| k as f64 / 255.0).collect();
        let eps = 2.0 / 255.0;
        let cert = Certificate {
            format: FORMAT.into(),
            tool: "test".into(),
            original_model: ModelRef {
                sha256: sha256_hex(&ob),
                file: None,
            },
            qnn: ModelRef {
                sha256: sha256_hex(&qb),
                file: None,
            },
            strategy,
            semantics: Default::default(),
            chi: vec![],
            verifier: "test".into(),
            properties: vec![CertifiedProperty {
                input: InputBox::linf_ball(&x, eps).unwrap(),
                output: OutputSpec::Robust { label: 0 },
                source: PropertySource {
                    data: None,
                    id: Some(0),
                    pixels: Some(pixels),
                    eps_text: Some("2/255".into()),
                    eps: Some(eps),
                    trigger: None,
                },
                margin: 0.5,
                multipliers: None,
            }],
            statistical: None,
            vnnlib: None,
            vnnlib_set: Vec::new(),
        };
        (cert, orig, ob, q, qb)
    }

    #[test]
    fn a_correct_certificate_is_valid() {
        let (cert, o, ob, q, qb) = setup();
        // sanity: the integer-bit rule gives the configs used above
        assert_eq!(quant::integer_bits(&o.layers()[0]), 2);
        assert_eq!(quant::integer_bits(&o.layers()[1]), 2);
        let r = check_certificate(&cert, &o, &ob, &q, &qb);
        assert!(r.valid, "{:?}", r.reasons);
        assert!(r.properties[0].proven && r.properties[0].margin > 0.0);
    }

    #[test]
    fn each_kind_of_tampering_is_caught() {
        let (cert, o, ob, q, qb) = setup();
        // hash of the original
        let mut ob2 = ob.clone();
        ob2.push(0);
        let r = check_certificate(&cert, &o, &ob2, &q, &qb);
        assert!(!r.valid && r.reasons[0].contains("original model hash"));
        // a weight of the QNN (hash updated)
        let l = &q.layers()[1];
        let mut w = l.weights().expect("dense").to_vec();
        w[4] += 1.0 / 256.0;
        let q2 = q
            .with_layer(1, Affine::new(1, 2, 3, w, l.bias().to_vec()).unwrap())
            .unwrap();
        let qb2 = certquant_core::onnx::export_bytes(&q2).unwrap();
        let mut c2 = cert.clone();
        c2.qnn.sha256 = sha256_hex(&qb2);
        let r = check_certificate(&c2, &o, &ob, &q2, &qb2);
        assert!(!r.valid);
        assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
        assert!(
            r.reasons[0].contains("layer 1 weight [1, 1]"),
            "{:?}",
            r.reasons
        );
        // the integer bits of a config
        let mut c3 = cert.clone();
        c3.strategy[0] = QuantConfig::new(11, 8).unwrap();
        let r = check_certificate(&c3, &o, &ob, &q, &qb);
        assert!(
            r.reasons.iter().any(|s| s.contains("integer bits")),
            "{:?}",
            r.reasons
        );
        // the label
        let mut c4 = cert.clone();
        c4.properties[0].output = OutputSpec::Robust { label: 1 };
        let r = check_certificate(&c4, &o, &ob, &q, &qb);
        assert!(!r.valid && !r.properties[0].proven && r.properties[0].margin < 0.0);
        // an out-of-range class
        let mut c5 = cert.clone();
        c5.properties[0].output = OutputSpec::NotTarget { target: 2 };
        let r = check_certificate(&c5, &o, &ob, &q, &qb);
        assert!(r.reasons[0].contains("out of range"), "{:?}", r.reasons);
        // the radius claimed without widening the box
        let mut c6 = cert.clone();
        c6.properties[0].source.eps = Some(3.0 / 255.0);
        let r = check_certificate(&c6, &o, &ob, &q, &qb);
        assert!(!r.valid && !r.properties[0].region_ok);
        // statistical parameters are echoed
        let mut c7 = cert.clone();
        c7.statistical = Some(Statistical {
            theta: 0.9,
            k: 5,
            sigma: 0.05,
            rho: 0.05,
            delta: 0.05,
            chi_threshold: 0.01,
        });
        let r = check_certificate(&c7, &o, &ob, &q, &qb);
        assert!(r.valid && r.statistical == c7.statistical);
    }

    #[test]
    fn not_target_is_proven_per_class() {
        let (mut cert, o, ob, q, qb) = setup();
        cert.properties[0].output = OutputSpec::NotTarget { target: 1 };
        let r = check_certificate(&cert, &o, &ob, &q, &qb);
        assert!(r.valid, "{:?}", r.reasons);
        cert.properties[0].output = OutputSpec::NotTarget { target: 0 };
        let r = check_certificate(&cert, &o, &ob, &q, &qb);
        assert!(!r.valid);
    }
}
