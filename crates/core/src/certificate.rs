//! The certificate: everything an independent checker needs to re-establish a certified result
//! without trusting the synthesis — the hashes of the original model and of the shipped QNN,
//! the strategy (so the QNN can be re-derived from the original), the properties (input box,
//! output condition), and what was proven (the verifier and its margins).
//!
//! A certificate may instead (or also) state that a VNN-LIB query holds: the optional
//! `vnnlib` part records the query file's hash and one split tree per region
//! ([`QueryCertificate`], docs/method.md eqs. (59), (60)). Such a certificate may be about the
//! float network itself: no strategy, and the QNN is the original model
//! ([`Certificate::is_unquantized`]).
//!
//! Boxes are stored as JSON numbers printed with shortest round-trip formatting and parsed
//! with `serde_json`'s `float_roundtrip`, so the checker sees bit-identical `f64` values.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::quant::QuantConfig;
use crate::semantics::Semantics;
use crate::spec::{InputBox, OutputSpec, Trigger};

mod query;
pub use query::{
    DisjunctRefutation, ProofNode, QueryCertificate, RefutationProof, RegionProof, Split,
};

/// The format tag written into every certificate.
pub const FORMAT: &str = "certquant-certificate/1";

/// Errors reading or writing certificates.
#[derive(Debug, Error)]
pub enum CertificateError {
    /// File could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a certificate of a supported format.
    #[error("{path}: not a valid certificate: {reason}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A model identified by content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Lower-case hex SHA-256 of the ONNX file bytes.
    pub sha256: String,
    /// Where it was read from or written to (informative only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Where a property's centre came from (informative; the box is authoritative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertySource {
    /// Data file or directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Index of the input in that data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<usize>,
    /// Raw 8-bit pixels of the centre when known (the box is `k/255 ± eps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixels: Option<Vec<u8>>,
    /// The radius as given by the user (e.g. `2/255`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps_text: Option<String>,
    /// The radius.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// Backdoor-freeness: the trigger patch (free in `[0,1]`); every other pixel is the
    /// recorded image's own value `k/255`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

/// One certified property and what was proven about it on the QNN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertifiedProperty {
    /// The input region.
    #[serde(rename = "box")]
    pub input: InputBox,
    /// The output condition.
    pub output: OutputSpec,
    /// Provenance.
    pub source: PropertySource,
    /// Proven margin on the QNN (`> 0`).
    pub margin: f64,
    /// Not-target properties proven by a combination of classes: the multipliers `λ_j ≥ 0`
    /// (one per class) with `Σ_j λ_j (y_j − y_target) > 0` over the box
    /// (`certquant_bounds::joint`). Absent when a single class suffices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipliers: Option<Vec<f64>>,
}

/// A statistical guarantee (backdoor-freeness via SPRT, Algorithm 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistical {
    /// θ.
    pub theta: f64,
    /// K.
    pub k: usize,
    /// Type-I error σ.
    pub sigma: f64,
    /// Type-II error ϱ.
    pub rho: f64,
    /// Indifference region δ.
    pub delta: f64,
    /// χ threshold ε.
    pub chi_threshold: f64,
}

/// A certificate (format [`FORMAT`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// Always [`FORMAT`].
    pub format: String,
    /// Tool name and version that wrote it.
    pub tool: String,
    /// The float model the strategy applies to.
    pub original_model: ModelRef,
    /// The shipped quantized model.
    pub qnn: ModelRef,
    /// ⟨Q, F⟩ per affine layer, input side first. Empty (omitted) only for a certificate
    /// about the float network itself: then `qnn` is `original_model` ([`Self::is_unquantized`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strategy: Vec<QuantConfig>,
    /// The arithmetic the properties are proven for: real-valued activations (the paper's,
    /// omitted from the file) or integer-only inference with the activation formats and the
    /// accumulator width (docs/method.md §17).
    #[serde(default, skip_serializing_if = "Semantics::is_real")]
    pub semantics: Semantics,
    /// The preimage `χ` per hidden layer, per property (informative: synthesis guidance).
    #[serde(default)]
    pub chi: Vec<Vec<f64>>,
    /// The verifier whose proof the certificate reports.
    pub verifier: String,
    /// The properties proven on the QNN (may be empty when `vnnlib` is present).
    #[serde(default)]
    pub properties: Vec<CertifiedProperty>,
    /// Present when the guarantee is statistical (backdoor-freeness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistical: Option<Statistical>,
    /// A VNN-LIB query proven to hold on the QNN: the file's hash and the split tree of every
    /// region ([`QueryCertificate`]; docs/method.md §16, eqs. (59), (60)). Absent in
    /// certificates of robustness/backdoor properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnnlib: Option<QueryCertificate>,
    /// A **set** of VNN-LIB queries all proven to hold on the one QNN (`synth robustness
    /// --vnnlib DIR|FILE…`, docs/method.md eq. (67)): one [`QueryCertificate`] per file, each
    /// re-proven on the QNN like `vnnlib`. Empty (omitted) otherwise; old certificates parse
    /// unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vnnlib_set: Vec<QueryCertificate>,
}

impl Certificate {
    /// Writes the certificate as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), CertificateError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| CertificateError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(|source| CertificateError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads and validates the structure of a certificate (the checker re-proves the content).
    pub fn read(path: &Path) -> Result<Self, CertificateError> {
        let bytes = std::fs::read(path).map_err(|source| CertificateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes).map_err(|reason| CertificateError::Format {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses certificate bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let c: Certificate = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if c.format != FORMAT {
            return Err(format!("unsupported format {:?}", c.format));
        }
        if c.properties.is_empty() && c.vnnlib.is_none() && c.vnnlib_set.is_empty() {
            return Err("no properties".into());
        }
        if c.strategy.is_empty() && !(c.vnnlib.is_some() && c.is_unquantized()) {
            return Err(
                "empty strategy (allowed only for a VNN-LIB certificate whose QNN is the original model)"
                    .into(),
            );
        }
        Ok(c)
    }

    /// Whether the certificate is about the float network itself: no strategy, and the QNN
    /// is the original model (same hash). Nothing is quantized; nothing is re-derived.
    pub fn is_unquantized(&self) -> bool {
        self.strategy.is_empty()
            && self
                .qnn
                .sha256
                .eq_ignore_ascii_case(&self.original_model.sha256)
    }
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let lo = vec![0.1 + 0.2, 1.0 / 3.0];
        let hi = vec![0.5, 2.0 / 3.0];
        let c = Certificate {
            format: FORMAT.into(),
            tool: "certquant test".into(),
            original_model: ModelRef {
                sha256: "00".into(),
                file: None,
            },
            qnn: ModelRef {
                sha256: "11".into(),
                file: Some("q.onnx".into()),
            },
            strategy: vec![QuantConfig::new(6, 3).unwrap()],
            semantics: Semantics::Real,
            chi: vec![vec![0.25]],
            verifier: "deeppoly".into(),
            properties: vec![CertifiedProperty {
                input: InputBox::new(lo, hi).unwrap(),
                output: OutputSpec::Robust { label: 3 },
                source: PropertySource {
                    data: None,
                    id: Some(4),
                    pixels: None,
                    eps_text: Some("2/255".into()),
                    eps: Some(2.0 / 255.0),
                    trigger: None,
                },
                margin: 0.125,
                multipliers: None,
            }],
            statistical: None,
            vnnlib: None,
            vnnlib_set: Vec::new(),
        };
        let text = serde_json::to_string(&c).unwrap();
        let back = Certificate::parse(text.as_bytes()).unwrap();
        assert_eq!(back, c);
        assert!(Certificate::parse(b"{}").is_err());
        assert!(Certificate::parse(text.replace(FORMAT, "other/1").as_bytes()).is_err());
    }
}
