//! Writing a [`Network`] as an ONNX model. A plain MLP is written in the form of the
//! benchmark models: `Gemm` layers with float32 `[in, out]` weights in `raw_data` and `Relu`
//! between them. A network lowered from a structured model is written with its original
//! operators ([`Network::to_graph`]): a `Conv` stays a `Conv`, pooling stays pooling, the
//! layout operators and the input normalisation are kept. Every value must be exactly a
//! float32 value, so that importing the result gives back the identical network.

use super::proto;
use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::{OnnxError, Result};
use crate::graph::{Batch, Graph, Node, PoolKind, ReshapeKind};
use crate::model::Network;

/// An integer-list attribute.
fn ints(name: &str, v: &[i64]) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// An integer attribute.
fn int(name: &str, v: i64) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// An INT64 initializer.
fn i64_tensor(name: &str, v: &[i64]) -> proto::TensorProto {
    proto::TensorProto {
        dims: vec![v.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        name: Some(name.into()),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn to_i64(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

/// Builds the node list of a graph: names tensors, counts layers, writes initializers.
struct Writer {
    nodes: Vec<proto::NodeProto>,
    init: Vec<proto::TensorProto>,
    x: String,
    layer: usize,
}

impl Writer {
    fn node(
        &mut self,
        op: &str,
        name: String,
        extra: Vec<String>,
        out: String,
        attribute: Vec<proto::AttributeProto>,
    ) {
        let mut input = vec![self.x.clone()];
        input.extend(extra);
        self.nodes.push(proto::NodeProto {
            input,
            output: vec![out.clone()],
            name: Some(name),
            op_type: Some(op.into()),
            attribute,
            ..Default::default()
        });
        self.x = out;
    }

    /// A `Reshape` of the current tensor to `[batch, dims…]` (batch copied).
    fn reshape(&mut self, dims: &[usize], tag: &str) {
        let shape: Vec<i64> = std::iter::once(0)
            .chain(dims.iter().map(|&d| d as i64))
            .collect();
        let s = format!("{tag}_shape");
        self.init.push(i64_tensor(&s, &shape));
        self.node(
            "Reshape",
            tag.to_string(),
            vec![s],
            format!("{tag}_out"),
            vec![],
        );
    }
}

/// The model that [`super::export_bytes`] serializes (see there for its form), failing with
/// [`OnnxError::NotRepresentable`] if a weight or bias is not exactly a float32 value.
pub(super) fn model_proto(net: &Network) -> Result<proto::ModelProto> {
    let g: Graph = net
        .to_graph()
        .map_err(|e| OnnxError::Shape(e.to_string()))?;
    let n = g.nodes().len();
    let mut w = Writer {
        nodes: Vec::new(),
        init: Vec::new(),
        x: "input".to_string(),
        layer: 0,
    };
    let mut relu = 0usize;
    for (k, node) in g.nodes().iter().enumerate() {
        let last = k + 1 == n;
        let out = |default: String| if last { "output".to_string() } else { default };
        match node {
            Node::Dense(d) => {
                let l = w.layer;
                if d.in_dims.len() != 1 {
                    w.reshape(&[d.inputs()], &format!("fc{l}_in"));
                }
                let (inputs, outputs) = (d.inputs(), d.outputs());
                let mut w_t = Vec::with_capacity(d.w.len());
                for i in 0..inputs {
                    for o in 0..outputs {
                        w_t.push(d.w[o * inputs + i]);
                    }
                }
                let (wn, bn) = (format!("W{l}"), format!("B{l}"));
                w.init.push(f32_tensor(&wn, &[inputs, outputs], &w_t, l)?);
                w.init.push(f32_tensor(&bn, &[outputs], &d.b, l)?);
                let reshape_after = d.out_dims.len() != 1;
                let o = if reshape_after {
                    format!("h{l}_flat")
                } else {
                    out(format!("h{l}_pre"))
                };
                w.node(
                    "Gemm",
                    format!("fc{l}"),
                    vec![wn, bn],
                    o,
                    vec![int("transB", 0)],
                );
                if reshape_after {
                    w.reshape(&d.out_dims, &format!("fc{l}_out"));
                    if last {
                        w.nodes.last_mut().expect("just pushed").output = vec!["output".into()];
                    }
                }
                w.layer += 1;
            }
            Node::Conv(c) => {
                let l = w.layer;
                let (wn, bn) = (format!("W{l}"), format!("B{l}"));
                let [co, ci, _] = [c.out_shape[0], c.in_shape[0], 0];
                w.init.push(f32_tensor(
                    &wn,
                    &[co, ci, c.kernel[0], c.kernel[1]],
                    &c.w,
                    l,
                )?);
                w.init.push(f32_tensor(&bn, &[co], &c.b, l)?);
                w.node(
                    "Conv",
                    format!("conv{l}"),
                    vec![wn, bn],
                    out(format!("h{l}_pre")),
                    vec![
                        ints("kernel_shape", &to_i64(&c.kernel)),
                        ints("pads", &to_i64(&c.pads)),
                        ints("strides", &to_i64(&c.strides)),
                    ],
                );
                w.layer += 1;
            }
            Node::Relu { .. } => {
                let l = w.layer.saturating_sub(1);
                let name = if relu == l {
                    format!("relu{l}")
                } else {
                    format!("relu{l}_{relu}")
                };
                relu += 1;
                w.node("Relu", name, vec![], out(format!("h{l}")), vec![]);
            }
            Node::Pool(p) => {
                let tag = format!("pool{k}");
                if p.global {
                    w.node("GlobalAveragePool", tag.clone(), vec![], out(tag), vec![]);
                } else {
                    let mut attrs = vec![
                        ints("kernel_shape", &to_i64(&p.kernel)),
                        ints("pads", &to_i64(&p.pads)),
                        ints("strides", &to_i64(&p.strides)),
                    ];
                    let op = match p.kind {
                        PoolKind::Average => {
                            attrs.push(int("count_include_pad", i64::from(p.count_include_pad)));
                            "AveragePool"
                        }
                        PoolKind::Max => "MaxPool",
                    };
                    w.node(op, tag.clone(), vec![], out(tag), attrs);
                }
            }
            Node::Pad(p) => {
                let tag = format!("pad{k}");
                let pads: Vec<i64> = std::iter::once(0)
                    .chain(to_i64(&p.begin))
                    .chain(std::iter::once(0))
                    .chain(to_i64(&p.end))
                    .collect();
                let pn = format!("{tag}_pads");
                w.init.push(i64_tensor(&pn, &pads));
                w.node("Pad", tag.clone(), vec![pn], out(tag), vec![]);
            }
            Node::Transpose(t) => {
                let tag = format!("transpose{k}");
                let perm: Vec<i64> = std::iter::once(0)
                    .chain(t.perm.iter().map(|&p| p as i64 + 1))
                    .collect();
                w.node(
                    "Transpose",
                    tag.clone(),
                    vec![],
                    out(tag),
                    vec![ints("perm", &perm)],
                );
            }
            Node::Reshape(r) => {
                let tag = format!("reshape{k}");
                if r.kind == ReshapeKind::Flatten {
                    w.node(
                        "Flatten",
                        format!("flatten{k}"),
                        vec![],
                        out(tag),
                        vec![int("axis", 1)],
                    );
                } else {
                    w.reshape(&r.out_dims, &tag);
                    if last {
                        w.nodes.last_mut().expect("just pushed").output = vec!["output".into()];
                    }
                }
            }
            Node::MaxStage(_) | Node::MaxSum(_) => {
                return Err(OnnxError::Graph(
                    "internal: a lowered max-pooling stage reached the export (Network::to_graph restores MaxPool)".into(),
                ));
            }
            Node::Elementwise(e) => {
                let tag = format!("{}{k}", e.kind.op_name().to_lowercase());
                let cn = format!("{tag}_c");
                w.init
                    .push(f32_tensor(&cn, &e.stored.0, &e.stored.1, w.layer)?);
                let o = out(tag.clone());
                if e.kind == crate::graph::ElementwiseKind::SubFrom {
                    w.nodes.push(proto::NodeProto {
                        input: vec![cn, w.x.clone()],
                        output: vec![o.clone()],
                        name: Some(tag),
                        op_type: Some("Sub".into()),
                        ..Default::default()
                    });
                    w.x = o;
                } else {
                    w.node(e.kind.op_name(), tag, vec![cn], o, vec![]);
                }
            }
        }
    }
    let batch = g.batch().clone();
    let graph = proto::GraphProto {
        node: w.nodes,
        name: Some("certquant".into()),
        initializer: w.init,
        input: vec![value_info("input", &batch, g.input_dims(), DataType::Float)],
        output: vec![value_info(
            "output",
            &batch,
            &g.output_dims(),
            DataType::Float,
        )],
        ..Default::default()
    };
    let model = proto::ModelProto {
        ir_version: Some(8),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        producer_name: Some("certquant".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    };
    Ok(model)
}

/// A float32 initializer in `raw_data`, refusing any value that float32 cannot hold exactly.
fn f32_tensor(
    name: &str,
    dims: &[usize],
    values: &[f64],
    layer: usize,
) -> Result<proto::TensorProto> {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for &value in values {
        let v = value as f32;
        if f64::from(v) != value {
            return Err(OnnxError::NotRepresentable { layer, value });
        }
        raw.extend_from_slice(&v.to_le_bytes());
    }
    Ok(proto::TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        name: Some(name.into()),
        raw_data: Some(raw),
        ..Default::default()
    })
}

/// Value info of a `[batch, dims…]` tensor of element type `ty` (also used by the integer
/// export, `onnx::export_int`).
pub(crate) fn value_info(
    name: &str,
    batch: &Batch,
    sample: &[usize],
    ty: DataType,
) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{Dimension, dimension::Value};
    let b = match batch {
        Batch::Fixed(n) => Value::DimValue(*n as i64),
        Batch::Symbolic(p) if !p.is_empty() => Value::DimParam(p.clone()),
        Batch::Symbolic(_) => Value::DimParam("N".into()),
    };
    let dims = std::iter::once(b)
        .chain(sample.iter().map(|&d| Value::DimValue(d as i64)))
        .map(|v| Dimension {
            value: Some(v),
            ..Default::default()
        })
        .collect();
    proto::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(
                proto::type_proto::Tensor {
                    elem_type: Some(ty as i32),
                    shape: Some(proto::TensorShapeProto { dim: dims }),
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::model::{Affine, Network};
    use crate::onnx::proto::ModelProto;
    use crate::onnx::test_util::*;
    use crate::onnx::{OnnxError, export_bytes, import, import_bytes};

    #[test]
    fn random_net_round_trip_is_bit_identical() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for dims in [&[5, 3][..], &[7, 4, 6, 2], &[3, 8, 8, 8, 5]] {
            let mut net = random_net(&mut rng, dims);
            // A negative zero must survive as well.
            let l0 = net.layers()[0].map_params(|v| if v == 0.25 { -0.0 } else { v });
            net = net.with_layer(0, l0.expect("finite")).expect("same shapes");
            let back = import_bytes(&export_bytes(&net).expect("export")).expect("import");
            assert_eq!(back, net);
            assert_eq!(bits(&back), bits(&net));
        }
    }

    #[test]
    fn export_has_benchmark_form() {
        let net = Network::new(vec![
            Affine::new(0, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![0.5, -0.5]).expect("l0"),
            Affine::new(1, 1, 2, vec![1.0, -1.0], vec![0.0]).expect("l1"),
        ])
        .expect("net");
        let m = ModelProto::decode(&export_bytes(&net).expect("export")[..]).expect("decode");
        assert_eq!(m.ir_version, Some(8));
        assert_eq!(m.producer_name.as_deref(), Some("certquant"));
        assert_eq!(m.opset_import[0].version, Some(13));
        let g = m.graph.expect("graph");
        let ops: Vec<&str> = g
            .node
            .iter()
            .map(|n| n.op_type.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(ops, ["Gemm", "Relu", "Gemm"]);
        assert_eq!(g.input[0].name.as_deref(), Some("input"));
        assert_eq!(g.output[0].name.as_deref(), Some("output"));
        let w0 = &g.initializer[0];
        assert_eq!(w0.dims, [3, 2], "W stored [in, out]");
        let raw = w0.raw_data.as_deref().expect("raw");
        let first: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(first, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn export_rejects_values_float32_cannot_hold() {
        let net = Network::new(vec![
            Affine::new(0, 1, 2, vec![0.5, 0.1], vec![0.0]).expect("layer"),
        ])
        .expect("net");
        match export_bytes(&net) {
            Err(OnnxError::NotRepresentable { layer: 0, value }) => assert_eq!(value, 0.1),
            other => panic!("expected NotRepresentable, got {other:?}"),
        }
        let big = Network::new(vec![
            Affine::new(0, 1, 1, vec![1e300], vec![0.0]).expect("layer"),
        ])
        .expect("net");
        assert!(matches!(
            export_bytes(&big),
            Err(OnnxError::NotRepresentable { .. })
        ));
    }

    #[test]
    fn shared_model_round_trip_is_bit_identical() {
        let Some(files) = shared_models() else {
            return;
        };
        for path in &files {
            let net = import(path).expect("import");
            let bytes = export_bytes(&net).expect("export");
            let back = import_bytes(&bytes).expect("re-import");
            assert_eq!(back, net);
            assert_eq!(bits(&back), bits(&net));
            assert_eq!(
                export_bytes(&back).expect("export"),
                bytes,
                "export is deterministic"
            );
        }
    }
}
