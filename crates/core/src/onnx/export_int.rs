//! `certquant export onnx`: the integer program of docs/method.md §17 as an ONNX model with
//! integer operators only, which ONNX Runtime executes exactly equal to
//! [`IntProgram::run_pixels`].
//!
//! # Form (opset 13, IR version 8)
//!
//! * input `pixels`: `uint8 [N, inputs]` (the raw pixels, row-major), `Cast` to `int64`, then
//!   `Gather` from the 256-entry `int64` table of [`crate::semantics::ActFormat::pixel_code`]
//!   (eq. (54) on `k/255`);
//! * per layer `k`: weight codes stored in the smallest of `int8`/`int16`/`int32`/`int64` and
//!   `Cast` to `int64`; a dense layer is `MatMul(a, W_k)` with `W_k` `[in, out]`; a structured
//!   (sparse) layer, when that is smaller, is a padded row list: `Gather(a, idx_k, axis = 1)`,
//!   `Mul` by the codes `[out, K]`, `ReduceSum` over `K`; then `Add` of the bias codes times
//!   `2^{F^a}` — all in `int64`, exact because eq. (57) bounds every partial sum by
//!   `2^{b_acc − 1} − 1 ≤ 2^63 − 1`;
//! * requantization of a hidden layer (eq. (56), the plan of [`crate::deploy::Requant`]):
//!   `Clip(acc, 0)` (shr_even is monotone, so a negative accumulator gives 0), `q = Div(a, 2^s)`
//!   (floor on non-negative values), `r = a − q·2^s`, `q += (r + Mod(q, 2) > 2^{s−1})` (ties to
//!   even), `Clip(q, 0, 2^{Q^a} − 1)`; a left shift (`s ≤ 0`) is `Clip(a, 0, (M >> t) + 1)·2^t`
//!   clipped to `M`;
//! * output `logits`: `int64 [N, classes]`, the last layer's accumulators (scale
//!   `2^{−(F_d + F^a_{d−1})}`).
//!
//! # Why not the float or 8-bit paths
//!
//! A QDQ model (`DequantizeLinear` → float `MatMul` → `QuantizeLinear`) accumulates in float32,
//! whose 24-bit significand holds every accumulator exactly only while
//! [`IntProgram::max_accumulator_bound`] `< 2^24`, and ONNX Runtime's kernels may reorder the
//! sum or fuse multiply-adds; `MatMulInteger`/`ConvInteger` take 8-bit operands only. Neither is
//! exact for every certified program, so this export uses the `int64` operators above, which
//! are. The model carries the semantics and provenance in its `metadata_props`.

use prost::Message;

use super::proto;
use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use crate::deploy::{DeployError, Provenance, Requant, requant_plan, signed_bytes};
use crate::graph::Batch;
use crate::semantics::{IntLayer, IntProgram};

/// An ONNX integer tensor of `bytes`-byte signed elements (or `uint8`/`int64` explicitly).
fn int_tensor(name: &str, dims: &[usize], values: &[i128], ty: DataType) -> proto::TensorProto {
    let size = match ty {
        DataType::Int8 | DataType::Uint8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 => 4,
        _ => 8,
    };
    let mut raw = Vec::with_capacity(values.len() * size);
    for &v in values {
        raw.extend_from_slice(&(v as i64).to_le_bytes()[..size]);
    }
    proto::TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(ty as i32),
        name: Some(name.into()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// The ONNX type of the smallest signed integer of `bytes` bytes.
fn signed_type(bytes: usize) -> DataType {
    match bytes {
        1 => DataType::Int8,
        2 => DataType::Int16,
        4 => DataType::Int32,
        _ => DataType::Int64,
    }
}

/// Builds nodes and initializers with fresh names.
struct Builder {
    nodes: Vec<proto::NodeProto>,
    init: Vec<proto::TensorProto>,
}

impl Builder {
    /// Appends a node with one output and returns that output's name.
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        out: String,
        attribute: Vec<proto::AttributeProto>,
    ) -> String {
        self.nodes.push(proto::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: Some(out.clone()),
            op_type: Some(op.into()),
            attribute,
            ..Default::default()
        });
        out
    }

    /// An `int64` scalar initializer.
    fn scalar(&mut self, name: String, v: i64) -> String {
        self.init
            .push(int_tensor(&name, &[], &[v as i128], DataType::Int64));
        name
    }

    /// Weight codes stored small and cast to `int64`.
    fn codes(&mut self, name: String, dims: &[usize], values: &[i128]) -> String {
        let lo = values.iter().copied().min().unwrap_or(0);
        let hi = values.iter().copied().max().unwrap_or(0);
        let ty = signed_type(signed_bytes(lo, hi).min(8));
        self.init.push(int_tensor(&name, dims, values, ty));
        if ty == DataType::Int64 {
            name
        } else {
            let out = format!("{name}_i64");
            self.node(
                "Cast",
                &[&name],
                out,
                vec![int_attr("to", DataType::Int64 as i64)],
            )
        }
    }
}

/// An integer attribute.
fn int_attr(name: &str, v: i64) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// The accumulation `Σ w·a` of layer `k` (before the bias): dense `MatMul` or a padded row list,
/// whichever stores fewer bytes.
fn accumulate(b: &mut Builder, k: usize, l: &IntLayer, a: &str) -> String {
    let (n_out, n_in) = (l.outputs(), l.inputs);
    let width = (0..n_out)
        .map(|i| l.row_ptr[i + 1] - l.row_ptr[i])
        .max()
        .unwrap_or(0);
    let lo = l.codes.iter().copied().min().unwrap_or(0) as i128;
    let hi = l.codes.iter().copied().max().unwrap_or(0) as i128;
    let wb = signed_bytes(lo, hi).min(8);
    let ib = if n_in <= i32::MAX as usize { 4 } else { 8 };
    if width > 0 && n_out * width * (wb + ib) < n_out * n_in * wb {
        let mut idx = vec![0i128; n_out * width];
        let mut w = vec![0i128; n_out * width];
        for i in 0..n_out {
            for (slot, e) in (l.row_ptr[i]..l.row_ptr[i + 1]).enumerate() {
                idx[i * width + slot] = l.cols[e] as i128;
                w[i * width + slot] = l.codes[e] as i128;
            }
        }
        let idx_name = format!("idx{k}");
        let ity = if ib == 4 {
            DataType::Int32
        } else {
            DataType::Int64
        };
        b.init
            .push(int_tensor(&idx_name, &[n_out, width], &idx, ity));
        let wn = b.codes(format!("W{k}"), &[n_out, width], &w);
        let g = b.node(
            "Gather",
            &[a, &idx_name],
            format!("gather{k}"),
            vec![int_attr("axis", 1)],
        );
        let m = b.node("Mul", &[&g, &wn], format!("prod{k}"), vec![]);
        let axes = format!("axes{k}");
        b.init.push(int_tensor(&axes, &[1], &[2], DataType::Int64));
        b.node(
            "ReduceSum",
            &[&m, &axes],
            format!("sum{k}"),
            vec![int_attr("keepdims", 0)],
        )
    } else {
        let mut w = vec![0i128; n_in * n_out];
        for i in 0..n_out {
            for e in l.row_ptr[i]..l.row_ptr[i + 1] {
                w[l.cols[e] * n_out + i] = l.codes[e] as i128;
            }
        }
        let wn = b.codes(format!("W{k}"), &[n_in, n_out], &w);
        b.node("MatMul", &[a, &wn], format!("matmul{k}"), vec![])
    }
}

/// Eq. (56)'s requantization of layer `k`'s accumulators `acc` (see the module documentation).
fn requantize(b: &mut Builder, k: usize, acc: &str, plan: Requant) -> String {
    let zero = b.scalar(format!("zero{k}"), 0);
    match plan {
        Requant::Zero => b.node("Clip", &[acc, &zero, &zero], format!("a{}", k + 1), vec![]),
        Requant::Left { shift, max } => {
            let cap = b.scalar(format!("cap{k}"), (max >> shift) + 1);
            let c = b.node("Clip", &[acc, &zero, &cap], format!("pos{k}"), vec![]);
            let p = b.scalar(format!("pow{k}"), 1i64 << shift);
            let m = b.node("Mul", &[&c, &p], format!("shl{k}"), vec![]);
            let mx = b.scalar(format!("max{k}"), max);
            b.node("Clip", &[&m, &zero, &mx], format!("a{}", k + 1), vec![])
        }
        Requant::Right { shift, max } => {
            let big = b.scalar(format!("big{k}"), i64::MAX);
            let pos = b.node("Clip", &[acc, &zero, &big], format!("pos{k}"), vec![]);
            let d = b.scalar(format!("pow{k}"), 1i64 << shift);
            let q = b.node("Div", &[&pos, &d], format!("floor{k}"), vec![]);
            let qd = b.node("Mul", &[&q, &d], format!("floord{k}"), vec![]);
            let r = b.node("Sub", &[&pos, &qd], format!("rem{k}"), vec![]);
            let two = b.scalar(format!("two{k}"), 2);
            let odd = b.node(
                "Mod",
                &[&q, &two],
                format!("odd{k}"),
                vec![int_attr("fmod", 0)],
            );
            let ro = b.node("Add", &[&r, &odd], format!("remodd{k}"), vec![]);
            let half = b.scalar(format!("half{k}"), 1i64 << (shift - 1));
            let up = b.node("Greater", &[&ro, &half], format!("up{k}"), vec![]);
            let up64 = b.node(
                "Cast",
                &[&up],
                format!("up{k}_i64"),
                vec![int_attr("to", DataType::Int64 as i64)],
            );
            let rounded = b.node("Add", &[&q, &up64], format!("round{k}"), vec![]);
            let mx = b.scalar(format!("max{k}"), max);
            b.node(
                "Clip",
                &[&rounded, &zero, &mx],
                format!("a{}", k + 1),
                vec![],
            )
        }
    }
}

/// Value info of a `[N, n]` tensor of element type `ty`.
fn value_info(name: &str, n: usize, ty: DataType) -> proto::ValueInfoProto {
    super::export::value_info(name, &Batch::Symbolic("N".into()), &[n], ty)
}

/// The integer ONNX model of `program` (see the module documentation for its form).
pub fn model_proto_int(
    program: &IntProgram,
    provenance: &Provenance,
) -> Result<proto::ModelProto, DeployError> {
    let plan = requant_plan(program)?;
    let mut b = Builder {
        nodes: Vec::new(),
        init: Vec::new(),
    };
    let a0 = program.input_format();
    let table: Vec<i128> = (0..=255u8).map(|k| a0.pixel_code(k) as i128).collect();
    b.init
        .push(int_tensor("pixel_code", &[256], &table, DataType::Int64));
    let pix = b.node(
        "Cast",
        &["pixels"],
        "pixels_i64".into(),
        vec![int_attr("to", DataType::Int64 as i64)],
    );
    let mut a = b.node(
        "Gather",
        &["pixel_code", &pix],
        "a0".into(),
        vec![int_attr("axis", 0)],
    );
    let depth = program.layers.len();
    for (k, l) in program.layers.iter().enumerate() {
        let sum = accumulate(&mut b, k, l, &a);
        let bias: Vec<i128> = l
            .bias
            .iter()
            .map(|&v| (v as i128) << l.input.frac())
            .collect();
        let bn = format!("B{k}");
        b.init
            .push(int_tensor(&bn, &[l.outputs()], &bias, DataType::Int64));
        let out = if k + 1 == depth {
            "logits".to_string()
        } else {
            format!("acc{k}")
        };
        let acc = b.node("Add", &[&sum, &bn], out, vec![]);
        a = match plan[k] {
            Some(p) => requantize(&mut b, k, &acc, p),
            None => acc,
        };
    }
    let classes = program.layers.last().map_or(0, IntLayer::outputs);
    let formats: Vec<String> = program
        .layers
        .iter()
        .map(|l| {
            format!(
                "w<{},{}> in<{},{}>",
                l.weight.total(),
                l.weight.frac(),
                l.input.total(),
                l.input.frac()
            )
        })
        .collect();
    let meta = |k: &str, v: String| proto::StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    };
    let graph = proto::GraphProto {
        node: b.nodes,
        name: Some("certquant_integer".into()),
        initializer: b.init,
        input: vec![value_info("pixels", program.input_dim(), DataType::Uint8)],
        output: vec![value_info("logits", classes, DataType::Int64)],
        ..Default::default()
    };
    Ok(proto::ModelProto {
        ir_version: Some(8),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        producer_name: Some("certquant".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "Integer-only program of docs/method.md §17 (eqs. (54)-(57)); int64 logits in units of 2^-{}; {}",
            program.logit_frac(),
            provenance.describe()
        )),
        graph: Some(graph),
        metadata_props: vec![
            meta("certquant.semantics", "integer".into()),
            meta("certquant.formats", formats.join("; ")),
            meta("certquant.acc_bits", program.acc_bits.to_string()),
            meta("certquant.logit_frac", program.logit_frac().to_string()),
            meta("certquant.provenance", provenance.describe()),
        ],
        ..Default::default()
    })
}

/// Serializes [`model_proto_int`].
pub fn export_int_bytes(
    program: &IntProgram,
    provenance: &Provenance,
) -> Result<Vec<u8>, DeployError> {
    Ok(model_proto_int(program, provenance)?.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Affine, Network};
    use crate::quant::QuantConfig;
    use crate::semantics::{ActFormat, IntegerSemantics};

    #[test]
    fn integer_model_has_only_integer_tensors() {
        let l0 = Affine::new(
            0,
            2,
            3,
            vec![0.75, -0.5, 0.25, 1.0, 0.0, 0.5],
            vec![0.25, -0.25],
        )
        .unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, -0.5, 0.5, 0.5], vec![0.0, 0.5]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let s = vec![
            QuantConfig::new(4, 2).unwrap(),
            QuantConfig::new(3, 1).unwrap(),
        ];
        let sem = IntegerSemantics::new(
            vec![ActFormat::new(9, 8).unwrap(), ActFormat::new(5, 3).unwrap()],
            32,
        )
        .unwrap();
        let p = IntProgram::new(&net, &s, &sem).unwrap();
        let prov = Provenance {
            qnn_sha256: "00".into(),
            certificate_sha256: None,
        };
        let bytes = export_int_bytes(&p, &prov).unwrap();
        let m = proto::ModelProto::decode(&bytes[..]).unwrap();
        let g = m.graph.unwrap();
        for t in &g.initializer {
            let ty = t.data_type.unwrap();
            assert!(
                [
                    DataType::Int8,
                    DataType::Int16,
                    DataType::Int32,
                    DataType::Int64
                ]
                .iter()
                .any(|d| *d as i32 == ty),
                "{:?} has type {ty}",
                t.name
            );
        }
        let ops: Vec<&str> = g.node.iter().filter_map(|n| n.op_type.as_deref()).collect();
        assert!(ops.contains(&"MatMul") && ops.contains(&"Gather"));
        assert!(!ops.iter().any(|o| o.contains("Quantize") || *o == "Gemm"));
        assert_eq!(g.output[0].name.as_deref(), Some("logits"));
        assert!(m.metadata_props.iter().any(|e| {
            e.value
                .as_deref()
                .is_some_and(|v| v.contains("UNCERTIFIED"))
        }));
    }
}
