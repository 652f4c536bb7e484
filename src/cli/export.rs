//! `certquant export c|onnx|logits`: the integer program a certificate with `--semantics
//! integer` speaks of (docs/method.md §17, eqs. (54)–(57)), as dependency-free C99, as an
//! integer-operator ONNX model, or evaluated on a data set (the reference integer logits the
//! exports must reproduce bit for bit; `scripts/issue17/compare.py` compares all three).
//!
//! The program comes from a certificate (strategy, activation formats and accumulator width;
//! the QNN's SHA-256 must match it) or, uncertified, from formats given by hand.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde::Serialize;

use certquant::certificate::{Certificate, sha256_hex};
use certquant_core::deploy::{Provenance, c::export_c};
use certquant_core::quant::QuantConfig;
use certquant_core::semantics::{
    ActFormat, DEFAULT_ACC_BITS, IntProgram, IntegerSemantics, strict_argmax,
};

use super::common::{Outcome, load_model, print_json};

/// `certquant export`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Dependency-free C99 `NAME.h` + `NAME.c`: integer weights, shifts, clamps, no floating
    /// point, no malloc; `int NAME_predict(const uint8_t pixels[], logits[])`.
    C(ExportCArgs),
    /// An ONNX model with integer operators only (uint8 pixels in, int64 logits out) that ONNX
    /// Runtime executes exactly equal to the integer program.
    Onnx(ExportOnnxArgs),
    /// The integer program's logits on a data set (the reference the exports must equal), as
    /// .npy (int64, N × classes) or .jsonl (one JSON array per input).
    Logits(ExportLogitsArgs),
}

/// Where the integer program comes from: a certificate, or formats given by hand.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("program").required(true).args(["certificate", "acts"])))]
pub struct ProgramArgs {
    /// The quantized network (ONNX, as written by `synth … --out`); its SHA-256 must match the
    /// certificate's [default with --certificate: the QNN file the certificate records,
    /// relative to the current directory].
    #[arg(long, required_unless_present = "certificate")]
    pub qnn: Option<PathBuf>,
    /// A certificate with `--semantics integer`: it gives the weight strategy, the activation
    /// formats and the accumulator width (re-check it with `certquant check`).
    #[arg(long, conflicts_with_all = ["weights", "acts", "acc_bits"])]
    pub certificate: Option<PathBuf>,
    /// UNCERTIFIED export, without a certificate: weight formats per layer, input side first,
    /// each `Q.F` (e.g. `8.4`) or just `F` (Q then the fewest bits holding the QNN's codes).
    /// Nothing has been proven about such a program; the files say so.
    #[arg(long, value_delimiter = ',', requires = "acts")]
    pub weights: Option<Vec<String>>,
    /// UNCERTIFIED export: unsigned activation formats `Q.F` (e.g. `9.8,8.5,8.5`), one for the
    /// input and one per hidden layer's output (eq. (54)).
    #[arg(long, value_delimiter = ',', requires = "weights")]
    pub acts: Option<Vec<String>>,
    /// UNCERTIFIED export: accumulator width in bits (eq. (57)).
    #[arg(long)]
    pub acc_bits: Option<u32>,
}

/// `certquant export c`.
#[derive(Debug, Args)]
pub struct ExportCArgs {
    #[command(flatten)]
    pub program: ProgramArgs,
    /// Directory for NAME.h and NAME.c (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// C identifier prefixing every symbol and naming the files.
    #[arg(long, default_value = "qnn")]
    pub name: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `certquant export onnx`.
#[derive(Debug, Args)]
pub struct ExportOnnxArgs {
    #[command(flatten)]
    pub program: ProgramArgs,
    /// The ONNX file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `certquant export logits`.
#[derive(Debug, Args)]
pub struct ExportLogitsArgs {
    #[command(flatten)]
    pub program: ProgramArgs,
    /// Raw 8-bit images: an IDX directory or file pair, or a `|u1` .npy file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output: `.npy` (int64, N × classes) or `.jsonl`.
    #[arg(long)]
    pub out: PathBuf,
    /// Only the first N inputs.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `certquant export …`.
pub fn run(cmd: &ExportCommand) -> Result<Outcome> {
    match cmd {
        ExportCommand::C(a) => export_c_cmd(a),
        ExportCommand::Onnx(a) => export_onnx_cmd(a),
        ExportCommand::Logits(a) => export_logits_cmd(a),
    }
}

/// The integer program and where it comes from.
pub struct Loaded {
    /// The program.
    pub program: IntProgram,
    /// Hashes for the generated files.
    pub provenance: Provenance,
}

/// Parses `Q.F` (or `F` alone when `allow_frac_only`) into `(Some(Q), F)` / `(None, F)`.
fn parse_format(text: &str, allow_frac_only: bool, flag: &str) -> Result<(Option<u32>, u32)> {
    let bad = || {
        anyhow::anyhow!(
            "{flag}: {text:?} is not a format; write Q.F with whole numbers (e.g. 8.4){}",
            if allow_frac_only { " or F alone" } else { "" }
        )
    };
    match text.trim().split_once('.') {
        Some((q, f)) => Ok((
            Some(q.parse().map_err(|_| bad())?),
            f.parse().map_err(|_| bad())?,
        )),
        None if allow_frac_only => Ok((None, text.trim().parse().map_err(|_| bad())?)),
        None => Err(bad()),
    }
}

/// The fewest total bits ⟨Q, F⟩ holding every weight and bias code of `layer` (F < Q ≤ 52).
fn fitting_total(layer: &certquant::model::Affine, frac: u32) -> u32 {
    let scale = (frac as f64).exp2();
    let (w, b) = layer.params();
    let big = w
        .iter()
        .chain(b)
        .map(|&v| (v * scale).abs().ceil())
        .fold(0.0f64, f64::max);
    (frac + 1..=certquant_core::quant::MAX_TOTAL_BITS)
        .find(|&q| big <= ((q - 1) as f64).exp2() - 1.0)
        .unwrap_or(certquant_core::quant::MAX_TOTAL_BITS)
}

/// Loads the QNN and builds its integer program from the certificate or the given formats.
pub fn load_program(a: &ProgramArgs) -> Result<Loaded> {
    if let Some(path) = &a.certificate {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read certificate {}", path.display()))?;
        let cert = Certificate::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a valid certificate: {e}", path.display()))?;
        let Some(sem) = cert.semantics.integer() else {
            bail!(
                "certificate {} is for the real semantics (quantized weights, real-valued activations): it proves nothing about an integer program; synthesize with --semantics integer, or export uncertified with --weights/--acts",
                path.display()
            );
        };
        let qnn_path = match (&a.qnn, &cert.qnn.file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => PathBuf::from(f),
            (None, None) => bail!(
                "certificate {} records no QNN file; pass --qnn",
                path.display()
            ),
        };
        let qnn = load_model(&qnn_path)?;
        let qnn_sha = sha256_hex(&qnn.bytes);
        if cert.qnn.sha256 != qnn_sha {
            bail!(
                "QNN {} has SHA-256 {qnn_sha}, but certificate {} is for the QNN {}",
                qnn_path.display(),
                path.display(),
                cert.qnn.sha256
            );
        }
        let program = IntProgram::new(&qnn.net, &cert.strategy, sem)
            .with_context(|| format!("certificate {}", path.display()))?;
        return Ok(Loaded {
            program,
            provenance: Provenance {
                qnn_sha256: qnn_sha,
                certificate_sha256: Some(sha256_hex(&bytes)),
            },
        });
    }
    let (Some(qnn_path), Some(weights), Some(acts)) = (&a.qnn, &a.weights, &a.acts) else {
        bail!("give --certificate, or --qnn, --weights and --acts");
    };
    let qnn = load_model(qnn_path)?;
    if let Some(k) = qnn.net.inexact_layers().first() {
        // docs/method.md eq. (74): no integer program divides by 9 or 49 exactly.
        bail!(
            "layer {k} averages over a window whose size is not a power of two; \
             it has no integer program"
        );
    }
    let qnn_sha = sha256_hex(&qnn.bytes);
    let depth = qnn.net.depth();
    if weights.len() != depth {
        bail!(
            "--weights has {} formats, the QNN has {depth} layers",
            weights.len()
        );
    }
    let strategy = weights
        .iter()
        .zip(qnn.net.layers())
        .map(|(t, l)| {
            let (q, f) = parse_format(t, true, "--weights")?;
            let q = q.unwrap_or_else(|| fitting_total(l, f));
            QuantConfig::new(q, f).with_context(|| format!("--weights {t}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let acts = acts
        .iter()
        .map(|t| {
            let (q, f) = parse_format(t, false, "--acts")?;
            ActFormat::new(q.unwrap_or(0), f).with_context(|| format!("--acts {t}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let sem = IntegerSemantics::new(acts, a.acc_bits.unwrap_or(DEFAULT_ACC_BITS))?;
    let program = IntProgram::new(&qnn.net, &strategy, &sem)?;
    Ok(Loaded {
        program,
        provenance: Provenance {
            qnn_sha256: qnn_sha,
            certificate_sha256: None,
        },
    })
}

#[derive(Serialize)]
struct CReport {
    header: String,
    source: String,
    weight_bytes: usize,
    stack_bytes: usize,
    certified: bool,
}

fn export_c_cmd(a: &ExportCArgs) -> Result<Outcome> {
    let l = load_program(&a.program)?;
    let e = export_c(&l.program, &a.name, &l.provenance)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let (h, c) = (
        a.out.join(format!("{}.h", a.name)),
        a.out.join(format!("{}.c", a.name)),
    );
    write(&h, e.header.as_bytes())?;
    write(&c, e.source.as_bytes())?;
    let certified = l.provenance.certificate_sha256.is_some();
    if a.json {
        print_json(&CReport {
            header: h.display().to_string(),
            source: c.display().to_string(),
            weight_bytes: e.weight_bytes,
            stack_bytes: e.stack_bytes,
            certified,
        })?;
    } else {
        println!(
            "wrote {} and {} ({} bytes of constant data, {} bytes of activation buffers on the stack){}",
            h.display(),
            c.display(),
            e.weight_bytes,
            e.stack_bytes,
            if certified {
                ""
            } else {
                "\nUNCERTIFIED: formats given by hand, nothing proven about this program"
            }
        );
    }
    Ok(Outcome::Proven)
}

#[derive(Serialize)]
struct OnnxReport {
    model: String,
    max_accumulator_bound: String,
    certified: bool,
}

fn export_onnx_cmd(a: &ExportOnnxArgs) -> Result<Outcome> {
    let l = load_program(&a.program)?;
    let bytes = certquant::onnx::export_int_bytes(&l.program, &l.provenance)?;
    write(&a.out, &bytes)?;
    let bound = l.program.max_accumulator_bound();
    let certified = l.provenance.certificate_sha256.is_some();
    if a.json {
        print_json(&OnnxReport {
            model: a.out.display().to_string(),
            max_accumulator_bound: bound.to_string(),
            certified,
        })?;
    } else {
        println!(
            "wrote {} (integer operators, int64 accumulation: exact; largest accumulator bound {bound}{}){}",
            a.out.display(),
            if bound < 1 << 24 {
                ", < 2^24"
            } else {
                ", ≥ 2^24: a float32 (QDQ) path would not be exact"
            },
            if certified {
                ""
            } else {
                "\nUNCERTIFIED: formats given by hand, nothing proven about this program"
            }
        );
    }
    Ok(Outcome::Proven)
}

#[derive(Serialize)]
struct LogitsReport {
    out: String,
    n: usize,
    accuracy: Option<f64>,
    ties: usize,
    logit_frac: u32,
}

fn export_logits_cmd(a: &ExportLogitsArgs) -> Result<Outcome> {
    let l = load_program(&a.program)?;
    let ds =
        certquant::data::load(&a.data).with_context(|| format!("data {}", a.data.display()))?;
    if ds.dim() != l.program.input_dim() {
        bail!(
            "data {} has inputs of size {}, but the QNN expects {}",
            a.data.display(),
            ds.dim(),
            l.program.input_dim()
        );
    }
    let n = a.limit.map_or(ds.len(), |k| k.min(ds.len()));
    if n == 0 {
        bail!("data {}: no inputs", a.data.display());
    }
    if ds.raw_pixel_bytes(0).is_none() {
        bail!(
            "data {}: the integer semantics reads raw 8-bit pixels (IDX or |u1 .npy); this data set holds floats",
            a.data.display()
        );
    }
    let logits: Vec<Vec<i64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let px = ds.raw_pixel_bytes(i).expect("raw pixels of every input");
            Ok(l.program.run_pixels(px)?)
        })
        .collect::<Result<_>>()?;
    let classes: Vec<Option<usize>> = logits.iter().map(|z| strict_argmax(z)).collect();
    let ties = classes.iter().filter(|c| c.is_none()).count();
    let accuracy = ds.labels().map(|labels| {
        let correct = classes
            .iter()
            .zip(labels)
            .filter(|(c, y)| **c == Some(**y as usize))
            .count();
        correct as f64 / n as f64
    });
    let ext = a.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match ext {
        "npy" => npy_i64(&logits, l.program.layers.last().map_or(0, |x| x.outputs())),
        "jsonl" => {
            let mut s = String::new();
            for z in &logits {
                s.push_str(&serde_json::to_string(z)?);
                s.push('\n');
            }
            s.into_bytes()
        }
        _ => bail!(
            "--out {}: the extension must be .npy or .jsonl",
            a.out.display()
        ),
    };
    write(&a.out, &bytes)?;
    if a.json {
        print_json(&LogitsReport {
            out: a.out.display().to_string(),
            n,
            accuracy,
            ties,
            logit_frac: l.program.logit_frac(),
        })?;
    } else {
        println!(
            "integer logits of {n} inputs written to {} (units of 2^-{}){}; {ties} ties",
            a.out.display(),
            l.program.logit_frac(),
            accuracy.map_or(String::new(), |acc| format!(", accuracy {acc:.4}"))
        );
    }
    Ok(Outcome::Proven)
}

/// An NPY v1.0 file of an `int64` little-endian `[rows, cols]` array.
fn npy_i64(rows: &[Vec<i64>], cols: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({}, {cols}), }}",
        rows.len()
    );
    // Magic (6) + version (2) + header length (2) + dict + padding + '\n', a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad));
    let mut out = Vec::with_capacity(10 + header.len() + rows.len() * cols * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for r in rows {
        for v in r {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Writes a file, naming it on failure.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_or_name_the_problem() {
        assert_eq!(
            parse_format("8.4", true, "--weights").unwrap(),
            (Some(8), 4)
        );
        assert_eq!(parse_format("4", true, "--weights").unwrap(), (None, 4));
        assert!(parse_format("4", false, "--acts").is_err());
        let e = parse_format("a.b", false, "--acts")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--acts") && e.contains("Q.F"), "{e}");
        assert!(parse_format("-1.2", true, "--weights").is_err());
    }

    #[test]
    fn npy_header_is_aligned_and_readable() {
        let b = npy_i64(&[vec![1, -2], vec![3, 4]], 2);
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        assert_eq!(b.len(), 10 + hl + 32);
        assert_eq!(
            i64::from_le_bytes(b[10 + hl + 8..10 + hl + 16].try_into().unwrap()),
            -2
        );
    }
}
