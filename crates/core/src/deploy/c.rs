//! `certquant export c`: the integer program (docs/method.md §17, eqs. (54)–(57)) as a
//! dependency-free C99 header/source pair.
//!
//! The generated `NAME.c` uses nothing but `<stdint.h>`: no floating point, no `malloc`, no
//! other library call. Its one entry point, `int NAME_predict(const uint8_t
//! pixels[NAME_INPUTS], <acc> logits[NAME_CLASSES])`, takes the raw 8-bit pixels and
//!
//! * maps each pixel `k` to its input code through a 256-entry table computed with
//!   [`crate::semantics::ActFormat::pixel_code`] (`⌊k·2^F/255⌉`, clamped: eq. (54) on `k/255`);
//! * per layer accumulates `β·2^{F^a} + Σ w·α` (eq. (56)) in `int32_t` (`int64_t` when the
//!   certificate's accumulator width exceeds 32 bits) — eq. (57) bounds every partial sum,
//!   so no addition overflows in any order; weight codes are stored in the smallest of
//!   `int8_t`/`int16_t`/`int32_t`/`int64_t` holding the layer's codes, dense row-major or, when
//!   smaller, as compressed rows (structured layers);
//! * requantizes every hidden layer by the plan of [`super::Requant`]: `a ≤ 0` gives 0
//!   (monotonicity of `shr_even`), so only positive values are ever shifted and C99's
//!   implementation-defined `>>` of negative values never occurs; ties go to even;
//! * writes the last layer's accumulators as the integer logits and returns the unique
//!   largest class, or −1 on a tie (a tie is a violation, eq. (55)).
//!
//! The header comment states the semantics, every format, the bytes of constant data (weights,
//! biases, indices, the pixel table) and of the two activation buffers on the stack, and the
//! certificate's hash.

use std::fmt::Write as _;

use super::{
    DeployError, Provenance, Requant, check_name, requant_plan, signed_bytes, unsigned_bytes,
};
use crate::semantics::{IntLayer, IntProgram};

/// The generated files and their sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CExport {
    /// Contents of `NAME.h`.
    pub header: String,
    /// Contents of `NAME.c`.
    pub source: String,
    /// Bytes of constant data in `NAME.c` (weight codes, biases, row indices, pixel table).
    pub weight_bytes: usize,
    /// Bytes of the activation buffers `NAME_predict` keeps on the stack.
    pub stack_bytes: usize,
}

/// C name of a signed integer type of `bytes` bytes.
fn signed_type(bytes: usize) -> &'static str {
    match bytes {
        1 => "int8_t",
        2 => "int16_t",
        4 => "int32_t",
        _ => "int64_t",
    }
}

/// C name of an unsigned integer type of `bytes` bytes.
fn unsigned_type(bytes: usize) -> &'static str {
    match bytes {
        1 => "uint8_t",
        2 => "uint16_t",
        4 => "uint32_t",
        _ => "uint64_t",
    }
}

/// A C integer literal of a value stored in a type of `bytes` bytes (`INT64_C` for 64-bit
/// values, so no literal depends on the width of `long`).
fn literal(v: i128, bytes: usize) -> String {
    if bytes == 8 {
        format!("INT64_C({v})")
    } else {
        v.to_string()
    }
}

/// Appends `static const TYPE NAME DIMS = { … };`, sixteen values a line.
fn array(out: &mut String, ty: &str, name: &str, dims: &str, values: &[i128], bytes: usize) {
    let _ = writeln!(out, "static const {ty} {name}{dims} = {{");
    for chunk in values.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|&v| literal(v, bytes)).collect();
        let _ = writeln!(out, "    {},", line.join(", "));
    }
    out.push_str("};\n");
}

/// How one layer's weights are stored.
enum Storage {
    /// `[outputs][inputs]`, zeros included.
    Dense,
    /// Compressed rows: `row[outputs + 1]`, `col[nnz]`, `w[nnz]`.
    Csr {
        /// Bytes of a row pointer.
        ptr: usize,
        /// Bytes of a column index.
        col: usize,
    },
}

/// The storage of a layer with weight codes of `wb` bytes: compressed rows when that takes
/// fewer bytes than the dense matrix (and the layer has a non-zero weight).
fn storage(l: &IntLayer, wb: usize) -> (Storage, usize) {
    let nnz = l.codes.len();
    let dense = l.outputs() * l.inputs * wb;
    let ptr = unsigned_bytes(nnz as u128);
    let col = unsigned_bytes(l.inputs.saturating_sub(1) as u128);
    let csr = (l.outputs() + 1) * ptr + nnz * (col + wb);
    if nnz > 0 && csr < dense {
        (Storage::Csr { ptr, col }, csr)
    } else {
        (Storage::Dense, dense)
    }
}

/// Generates `NAME.h` and `NAME.c` for `program` (see the module documentation).
pub fn export_c(
    program: &IntProgram,
    name: &str,
    provenance: &Provenance,
) -> Result<CExport, DeployError> {
    check_name(name)?;
    let plan = requant_plan(program)?;
    let upper = name.to_ascii_uppercase();
    let acc_bytes = if program.acc_bits > 32 { 8 } else { 4 };
    let acc_t = signed_type(acc_bytes);
    let inputs = program.input_dim();
    let classes = program.layers.last().map_or(0, IntLayer::outputs);
    let a0 = program.input_format();
    let code_bytes = |max: i64| unsigned_bytes(max as u128);

    let mut body = String::new();
    let mut weight_bytes = 0usize;
    let mut layer_notes = Vec::new();
    // The pixel table.
    let pix_bytes = code_bytes(a0.max_code());
    let table: Vec<i128> = (0..=255u8).map(|k| a0.pixel_code(k) as i128).collect();
    let _ = writeln!(
        body,
        "/* eq. (54) on the pixel k/255 with A_0 = <{}, {}>: round(k * 2^{} / 255), half to even, clamped at {}. */",
        a0.total(),
        a0.frac(),
        a0.frac(),
        a0.max_code()
    );
    array(
        &mut body,
        unsigned_type(pix_bytes),
        &format!("{name}_pixel_code"),
        "[256]",
        &table,
        pix_bytes,
    );
    weight_bytes += 256 * pix_bytes;

    // Constant data per layer.
    let mut storages = Vec::new();
    for (k, l) in program.layers.iter().enumerate() {
        let lo = l.codes.iter().copied().min().unwrap_or(0) as i128;
        let hi = l.codes.iter().copied().max().unwrap_or(0) as i128;
        let wb = signed_bytes(lo, hi).min(8);
        let (st, bytes) = storage(l, wb);
        weight_bytes += bytes + l.outputs() * acc_bytes;
        let (n_out, n_in) = (l.outputs(), l.inputs);
        let _ = writeln!(
            body,
            "\n/* layer {k}: {n_in} -> {n_out}, weight codes of <{}, {}> ({}), bias codes times 2^{} (F^a of the input). */",
            l.weight.total(),
            l.weight.frac(),
            match st {
                Storage::Dense => "dense, row-major [out * in]".to_string(),
                Storage::Csr { .. } => format!("compressed rows, {} non-zero", l.codes.len()),
            },
            l.input.frac()
        );
        match st {
            Storage::Dense => {
                let mut w = vec![0i128; n_out * n_in];
                for i in 0..n_out {
                    for e in l.row_ptr[i]..l.row_ptr[i + 1] {
                        w[i * n_in + l.cols[e]] = l.codes[e] as i128;
                    }
                }
                array(
                    &mut body,
                    signed_type(wb),
                    &format!("{name}_w{k}"),
                    &format!("[{}]", n_out * n_in),
                    &w,
                    wb,
                );
            }
            Storage::Csr { ptr, col } => {
                let rows: Vec<i128> = l.row_ptr.iter().map(|&p| p as i128).collect();
                let cols: Vec<i128> = l.cols.iter().map(|&c| c as i128).collect();
                let w: Vec<i128> = l.codes.iter().map(|&c| c as i128).collect();
                array(
                    &mut body,
                    unsigned_type(ptr),
                    &format!("{name}_row{k}"),
                    &format!("[{}]", n_out + 1),
                    &rows,
                    ptr,
                );
                array(
                    &mut body,
                    unsigned_type(col),
                    &format!("{name}_col{k}"),
                    &format!("[{}]", cols.len()),
                    &cols,
                    col,
                );
                array(
                    &mut body,
                    signed_type(wb),
                    &format!("{name}_w{k}"),
                    &format!("[{}]", w.len()),
                    &w,
                    wb,
                );
            }
        }
        let bias: Vec<i128> = l
            .bias
            .iter()
            .map(|&b| (b as i128) << l.input.frac())
            .collect();
        array(
            &mut body,
            acc_t,
            &format!("{name}_b{k}"),
            &format!("[{n_out}]"),
            &bias,
            acc_bytes,
        );
        layer_notes.push(format!(
            " *   layer {k}: {n_in} -> {n_out}, weights <Q={}, F={}> as {}{}, input codes <Q^a={}, F^a={}>, {}",
            l.weight.total(),
            l.weight.frac(),
            signed_type(wb),
            match st {
                Storage::Dense => " (dense)".to_string(),
                Storage::Csr { .. } => format!(" (compressed rows, {} non-zero)", l.codes.len()),
            },
            l.input.total(),
            l.input.frac(),
            match (l.output, l.shift()) {
                (Some(o), Some(s)) => format!("output <Q^a={}, F^a={}>, shift s = {s}", o.total(), o.frac()),
                _ => format!(
                    "output: the integer logits (scale 2^-{})",
                    l.weight.frac() + l.input.frac()
                ),
            }
        ));
        storages.push((st, wb));
    }

    // Requantization helpers (only those used, so -Wunused-function stays quiet).
    let uses = |f: fn(&Requant) -> bool| plan.iter().flatten().any(f);
    let mut helpers = String::new();
    if uses(|r| matches!(r, Requant::Right { .. })) {
        let _ = writeln!(
            helpers,
            "\n/* clamp(shr_even(a, s), 0, max) for s >= 1 (eq. (56)). shr_even is monotone and maps 0 to 0,\n * so a <= 0 gives 0 and only positive values are shifted (>> of a negative value is\n * implementation-defined in C99). q = floor(a / 2^s), r = a - q*2^s; q + 1 when r is above half\n * of 2^s, or exactly half and q is odd (ties to even). */\nstatic int64_t {name}_shr_even(int64_t a, unsigned s, int64_t max)\n{{\n    int64_t q, r;\n    if (a <= 0) return 0;\n    q = a >> s;\n    r = a - (q << s);\n    if (r + (q & 1) > ((int64_t)1 << (s - 1))) q += 1;\n    return q < max ? q : max;\n}}"
        );
    }
    if uses(|r| matches!(r, Requant::Left { .. })) {
        let _ = writeln!(
            helpers,
            "\n/* clamp(a * 2^t, 0, max) for s = -t <= 0 (eq. (56)); a > (max >> t) saturates, so the product\n * never exceeds max. */\nstatic int64_t {name}_shl_sat(int64_t a, unsigned t, int64_t max)\n{{\n    if (a <= 0) return 0;\n    if (a > (max >> t)) return max;\n    return a << t;\n}}"
        );
    }

    // The predict function.
    let depth = program.layers.len();
    let hidden: Vec<(usize, usize)> = program.layers[..depth - 1]
        .iter()
        .map(|l| {
            (
                l.outputs(),
                code_bytes(l.output.map_or(1, |o| o.max_code())),
            )
        })
        .collect();
    let buf_len = hidden.iter().map(|h| h.0).max().unwrap_or(0);
    let buf_bytes = hidden.iter().map(|h| h.1).max().unwrap_or(1);
    let buf_t = unsigned_type(buf_bytes);
    let buffers = hidden.len().min(2);
    let stack_bytes = buffers * buf_len * buf_bytes;
    let logit_t = acc_t;
    let mut f = String::new();
    let _ = writeln!(
        f,
        "\nint {name}_predict(const uint8_t pixels[{upper}_INPUTS], {logit_t} logits[{upper}_CLASSES])\n{{"
    );
    for b in 0..buffers {
        let _ = writeln!(f, "    {buf_t} buf{b}[{buf_len}];");
    }
    f.push_str("    long i, best;\n    int tie;\n");
    let mut any_j = false;
    let mut layers_code = String::new();
    for (k, l) in program.layers.iter().enumerate() {
        let (st, _) = &storages[k];
        let input = |idx: &str| {
            if k == 0 {
                format!("({acc_t}){name}_pixel_code[pixels[{idx}]]")
            } else {
                format!("({acc_t})buf{}[{idx}]", (k - 1) % 2)
            }
        };
        let target = match plan[k] {
            Some(_) => format!("buf{}[i]", k % 2),
            None => "logits[i]".to_string(),
        };
        let _ = writeln!(layers_code, "    /* layer {k} */");
        let _ = writeln!(layers_code, "    for (i = 0; i < {}; ++i) {{", l.outputs());
        let _ = writeln!(layers_code, "        {acc_t} acc = {name}_b{k}[i];");
        match st {
            Storage::Dense => {
                any_j = true;
                let _ = writeln!(
                    layers_code,
                    "        for (j = 0; j < {n}; ++j) acc += ({acc_t}){name}_w{k}[i * {n}L + j] * {x};",
                    n = l.inputs,
                    x = input("j")
                );
            }
            Storage::Csr { .. } => {
                any_j = true;
                let _ = writeln!(
                    layers_code,
                    "        for (j = {name}_row{k}[i]; j < {name}_row{k}[i + 1]; ++j) acc += ({acc_t}){name}_w{k}[j] * {};",
                    input(&format!("{name}_col{k}[j]"))
                );
            }
        }
        let value = match plan[k] {
            Some(Requant::Right { shift, max }) => {
                format!(
                    "({buf_t}){name}_shr_even(acc, {shift}u, {})",
                    literal(max as i128, 8)
                )
            }
            Some(Requant::Left { shift, max }) => {
                format!(
                    "({buf_t}){name}_shl_sat(acc, {shift}u, {})",
                    literal(max as i128, 8)
                )
            }
            Some(Requant::Zero) => {
                "0; /* s >= accumulator width: shr_even gives 0 */\n        (void)acc".to_string()
            }
            None => "acc".to_string(),
        };
        let _ = writeln!(layers_code, "        {target} = {value};\n    }}");
    }
    if any_j {
        f.push_str("    long j;\n");
    }
    f.push_str(&layers_code);
    let _ = writeln!(
        f,
        "    /* the unique largest logit, -1 on a tie (eq. (55)) */\n    best = 0;\n    tie = 0;\n    for (i = 1; i < {upper}_CLASSES; ++i) {{\n        if (logits[i] > logits[best]) {{\n            best = i;\n            tie = 0;\n        }} else if (logits[i] == logits[best]) {{\n            tie = 1;\n        }}\n    }}\n    return tie ? -1 : (int)best;\n}}"
    );

    let mut formats = String::new();
    for note in &layer_notes {
        formats.push_str(note);
        formats.push('\n');
    }
    let comment = format!(
        "/* {name} — integer-only inference generated by certquant {version} (docs/method.md §17).\n *\n * {prov}\n *\n * Semantics (eqs. (54)-(57)): the input pixel k/255 becomes the code round(k * 2^F / 255)\n * (half to even, clamped) of the input format; every layer accumulates\n * acc = beta * 2^(F^a_in) + sum_j w_ij * a_j exactly in {acc_t} ({acc_bits}-bit accumulators, eq. (57)\n * proven for every input, so no partial sum overflows); a hidden layer's output code is\n * clamp(shr_even(acc, s), 0, 2^Q^a - 1) with shr_even rounding half to even; the logits are the\n * last layer's accumulators, compared as integers (a tie is no class).\n *\n * Formats:\n *   input: {n_in} pixels, codes <Q^a={q0}, F^a={f0}>\n{formats} *\n * Constant data (weights, biases, indices, pixel table): {weight_bytes} bytes.\n * Stack: {stack_bytes} bytes of activation buffers in {name}_predict (plus a few scalars).\n * No floating point, no malloc, nothing but <stdint.h>.\n */\n",
        version = env!("CARGO_PKG_VERSION"),
        prov = provenance.describe(),
        acc_bits = program.acc_bits,
        n_in = inputs,
        q0 = a0.total(),
        f0 = a0.frac(),
    );
    let header = format!(
        "{comment}#ifndef {upper}_H\n#define {upper}_H\n\n#include <stdint.h>\n\n/* Inputs (raw 8-bit pixels) and classes. */\n#define {upper}_INPUTS {inputs}\n#define {upper}_CLASSES {classes}\n/* The logits are integers in units of 2^-{upper}_LOGIT_FRAC. */\n#define {upper}_LOGIT_FRAC {lf}\n\n/* The type of a logit. */\ntypedef {logit_t} {name}_logit_t;\n\n/* Runs the integer program on raw pixels: writes the integer logits, returns the class with the\n * unique largest logit, or -1 on a tie. */\nint {name}_predict(const uint8_t pixels[{upper}_INPUTS], {logit_t} logits[{upper}_CLASSES]);\n\n#endif /* {upper}_H */\n",
        lf = program.logit_frac(),
    );
    let source = format!("{comment}\n#include \"{name}.h\"\n\n{body}{helpers}{f}");
    Ok(CExport {
        header,
        source,
        weight_bytes,
        stack_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Affine, Network};
    use crate::quant::QuantConfig;
    use crate::semantics::{ActFormat, IntegerSemantics};

    fn program(acc_bits: u32) -> IntProgram {
        let l0 = Affine::new(
            0,
            3,
            2,
            vec![0.75, -0.5, 0.25, 1.0, 0.0, 0.0],
            vec![0.25, -0.25, 0.0],
        )
        .unwrap();
        let l1 = Affine::new(1, 2, 3, vec![1.0, -0.5, 0.5, 0.5, 0.0, 1.0], vec![0.0, 0.5]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let s = vec![
            QuantConfig::new(4, 2).unwrap(),
            QuantConfig::new(3, 1).unwrap(),
        ];
        let sem = IntegerSemantics::new(
            vec![ActFormat::new(9, 8).unwrap(), ActFormat::new(5, 3).unwrap()],
            acc_bits,
        )
        .unwrap();
        IntProgram::new(&net, &s, &sem).unwrap()
    }

    fn prov() -> Provenance {
        Provenance {
            qnn_sha256: "ab".repeat(32),
            certificate_sha256: Some("cd".repeat(32)),
        }
    }

    #[test]
    fn header_states_formats_sizes_and_hash() {
        let e = export_c(&program(32), "tiny", &prov()).unwrap();
        assert!(
            e.header
                .contains(&format!("certificate sha256 {}", "cd".repeat(32)))
        );
        assert!(e.header.contains("#define TINY_INPUTS 2"));
        assert!(e.header.contains("#define TINY_CLASSES 2"));
        assert!(e.header.contains(
            "int tiny_predict(const uint8_t pixels[TINY_INPUTS], int32_t logits[TINY_CLASSES]);"
        ));
        // Pixel table uint16 (9-bit codes): 512 bytes; layer 0 dense 3×2 int8 + 3 int32 biases;
        // layer 1 2×3 int8 + 2 int32 biases.
        assert_eq!(e.weight_bytes, 512 + 6 + 12 + 6 + 8);
        // One hidden layer of 3 codes of 5 bits: one uint8 buffer.
        assert_eq!(e.stack_bytes, 3);
        assert!(e.header.contains(&format!("{} bytes", e.weight_bytes)));
        for forbidden in ["float ", "double", "malloc(", "#include <"] {
            assert!(!e.source.contains(forbidden), "{forbidden} in the source");
        }
        assert!(e.source.contains("tiny_shr_even"));
        // Uncertified exports say so.
        let u = Provenance {
            certificate_sha256: None,
            ..prov()
        };
        let e = export_c(&program(64), "tiny", &u).unwrap();
        assert!(e.header.contains("UNCERTIFIED"));
        assert!(e.header.contains("int64_t logits[TINY_CLASSES]"));
        assert!(e.source.contains("INT64_C("));
        assert!(export_c(&program(32), "9lives", &prov()).is_err());
    }
}
