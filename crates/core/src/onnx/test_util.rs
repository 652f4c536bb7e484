//! Builders for handmade ONNX models and helpers shared by the tests of the ONNX module.

use std::path::PathBuf;

use prost::Message;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::{Dimension, dimension::Value as DimValue};
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use crate::model::{Affine, Network};

pub(super) fn f32_raw(name: &str, dims: &[i64], vals: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

pub(super) fn f32_typed(name: &str, dims: &[i64], vals: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: vals.to_vec(),
        ..Default::default()
    }
}

pub(super) fn f64_typed(name: &str, dims: &[i64], vals: &[f64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Double as i32),
        double_data: vals.to_vec(),
        ..Default::default()
    }
}

pub(super) fn i64_tensor(name: &str, vals: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![vals.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: vals.to_vec(),
        ..Default::default()
    }
}

pub(super) fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub(super) fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

pub(super) fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    node_a(name, op, inputs, outputs, vec![])
}

pub(super) fn node_a(
    name: &str,
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// Value info of a float tensor; `None` dims are the symbolic batch `N`.
pub(super) fn vi(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => DimValue::DimValue(*v),
                None => DimValue::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn model_bytes(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input: ValueInfoProto,
    out_width: i64,
) -> Vec<u8> {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![input],
            output: vec![vi("y", &[None, Some(out_width)])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A one-layer Gemm model `y = Gemm(x, B, C)` with the given attributes.
pub(super) fn gemm_model(
    mut b: TensorProto,
    c: Option<TensorProto>,
    attrs: Vec<AttributeProto>,
) -> Vec<u8> {
    b.name = Some("B".into());
    let n_in = if attrs
        .iter()
        .any(|a| a.name.as_deref() == Some("transB") && a.i == Some(1))
    {
        b.dims[1]
    } else {
        b.dims[0]
    };
    let n_out = if n_in == b.dims[0] {
        b.dims[1]
    } else {
        b.dims[0]
    };
    let mut inputs = vec!["x", "B"];
    let mut inits = vec![b];
    if let Some(mut c) = c {
        c.name = Some("C".into());
        inputs.push("C");
        inits.push(c);
    }
    model_bytes(
        vec![node_a("fc", "Gemm", &inputs, &["y"], attrs)],
        inits,
        vi("x", &[None, Some(n_in)]),
        n_out,
    )
}

pub(super) fn layer(net: &Network, i: usize) -> (usize, usize, Vec<f64>, Vec<f64>) {
    let l = &net.layers()[i];
    (
        l.inputs(),
        l.outputs(),
        l.weights().expect("test networks are dense").to_vec(),
        l.bias().to_vec(),
    )
}

pub(super) fn bits(net: &Network) -> Vec<u64> {
    net.layers()
        .iter()
        .flat_map(|l| {
            l.weights()
                .expect("test networks are dense")
                .iter()
                .chain(l.bias())
        })
        .map(|v| v.to_bits())
        .collect()
}

pub(super) fn shared_models() -> Option<Vec<PathBuf>> {
    let dir = crate::shared::shared_dir("models/quadapter")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read shared dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    Some(files)
}

/// A random network whose weights are float32 values and dyadic `k·2^-F` values.
pub(super) fn random_net(rng: &mut ChaCha8Rng, dims: &[usize]) -> Network {
    let layers = dims
        .windows(2)
        .enumerate()
        .map(|(i, d)| {
            let (n_in, n_out) = (d[0], d[1]);
            let mut val = |j: usize| -> f64 {
                if j.is_multiple_of(2) {
                    f64::from(rng.random_range(-1.0f32..1.0))
                } else {
                    let k: i32 = rng.random_range(-(1 << 20)..(1 << 20));
                    f64::from(k) * 2f64.powi(-rng.random_range(0..40))
                }
            };
            let w: Vec<f64> = (0..n_in * n_out).map(&mut val).collect();
            let b: Vec<f64> = (0..n_out).map(&mut val).collect();
            Affine::new(i, n_out, n_in, w, b).expect("valid layer")
        })
        .collect();
    Network::new(layers).expect("valid net")
}
