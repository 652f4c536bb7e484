//! Writing a [`Network`] as an ONNX model in the form of the benchmark models: `Gemm` layers
//! with float32 `[in, out]` weights in `raw_data` and `Relu` between them. Every value must be
//! exactly a float32 value, so that importing the result gives back the identical network.

use super::proto;
use super::proto::tensor_proto::DataType;
use super::{OnnxError, Result};
use crate::model::Network;

/// The model that [`super::export_bytes`] serializes (see there for its form), failing with
/// [`OnnxError::NotRepresentable`] if a weight or bias is not exactly a float32 value.
pub(super) fn model_proto(net: &Network) -> Result<proto::ModelProto> {
    let mut initializer = Vec::new();
    let mut node = Vec::new();
    let last = net.depth() - 1;
    let mut x = "input".to_string();
    for (l, layer) in net.layers().iter().enumerate() {
        let (inputs, outputs) = (layer.inputs(), layer.outputs());
        let w = layer.weights();
        // ONNX layout [in, out]: element (i, o) is W[o][i].
        let mut w_t = Vec::with_capacity(w.len());
        for i in 0..inputs {
            for o in 0..outputs {
                w_t.push(w[o * inputs + i]);
            }
        }
        let w_name = format!("W{l}");
        let b_name = format!("B{l}");
        initializer.push(f32_tensor(&w_name, &[inputs, outputs], &w_t, l)?);
        initializer.push(f32_tensor(&b_name, &[outputs], layer.bias(), l)?);
        let pre = if l == last {
            "output".to_string()
        } else {
            format!("h{l}_pre")
        };
        node.push(proto::NodeProto {
            input: vec![x.clone(), w_name, b_name],
            output: vec![pre.clone()],
            name: Some(format!("fc{l}")),
            op_type: Some("Gemm".into()),
            attribute: vec![proto::AttributeProto {
                name: Some("transB".into()),
                r#type: Some(proto::attribute_proto::AttributeType::Int as i32),
                i: Some(0),
                ..Default::default()
            }],
            ..Default::default()
        });
        x = pre;
        if l != last {
            let h = format!("h{l}");
            node.push(proto::NodeProto {
                input: vec![x.clone()],
                output: vec![h.clone()],
                name: Some(format!("relu{l}")),
                op_type: Some("Relu".into()),
                ..Default::default()
            });
            x = h;
        }
    }
    let graph = proto::GraphProto {
        node,
        name: Some("certquant".into()),
        initializer,
        input: vec![batch_value_info("input", net.input_dim())],
        output: vec![batch_value_info("output", net.output_dim())],
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

/// Value info of a float32 `[N, width]` tensor with symbolic batch dimension `N`.
fn batch_value_info(name: &str, width: usize) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{Dimension, dimension::Value};
    let dims = vec![
        Dimension {
            value: Some(Value::DimParam("N".into())),
            ..Default::default()
        },
        Dimension {
            value: Some(Value::DimValue(width as i64)),
            ..Default::default()
        },
    ];
    proto::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(
                proto::type_proto::Tensor {
                    elem_type: Some(DataType::Float as i32),
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
            net = net.with_layer(0, l0).expect("same shapes");
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
