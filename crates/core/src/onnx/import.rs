//! The graph walk: from the ONNX graph to the chain of affine layers.
//!
//! [`import_graph`] checks the graph's structure (one data input, one output, a single chain
//! of nodes whose other inputs are constants), folds the constants, and then walks the chain
//! from the input to the output, handing each node to the handler that the operator registry
//! ([`super::ops`]) holds for it. The handlers drive the [`Importer`] state: the [`Phase`] of
//! the walk (which operators may come next), the [`Flow`] (what is known of the current
//! tensor's shape) and the [`Layer`]s found so far.

use std::collections::{HashMap, HashSet};

use super::node::{NodeCtx, node_label};
use super::ops;
use super::proto;
use super::proto::tensor_proto::DataType;
use super::tensor::{Const, Consts, Data, Tensor, type_name};
use super::{OnnxError, Result};
use crate::model::{Affine, Network};

/// Shape facts known about the tensor flowing along the chain.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flow {
    /// Rank, if known.
    pub(super) rank: Option<usize>,
    /// Static batch size (dimension 0), if known.
    pub(super) batch: Option<usize>,
    /// Static size of dimension 1, if known (used by `Reshape` with a 0 entry).
    pub(super) dim1: Option<usize>,
    /// Per-sample element count (product of all dimensions but the first), if known.
    pub(super) width: Option<usize>,
}

/// Where the chain walk stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    /// Before the first affine layer: reshapes are allowed.
    Start,
    /// Right after an affine layer; `bias_open` if it was a `MatMul` that may still take an `Add`.
    Affine { bias_open: bool },
    /// After a `Relu`: the next operator must start an affine layer.
    Relu,
    /// After the final `Softmax`/`LogSoftmax`: nothing but `Identity` may follow.
    Done,
}

/// An affine layer under construction, `W` row-major `outputs × inputs`.
pub(super) struct Layer {
    /// Number of inputs (columns of `w`).
    pub(super) inputs: usize,
    /// Number of outputs (rows of `w`, length of `b`).
    pub(super) outputs: usize,
    /// Weights, row-major `outputs × inputs`.
    pub(super) w: Vec<f64>,
    /// Bias, one per output.
    pub(super) b: Vec<f64>,
}

/// The graph walker: constants, the chain's state and the layers found so far.
pub(super) struct Importer<'a> {
    /// The graph's constants by name.
    pub(super) consts: Consts<'a>,
    /// The affine layers found so far, in order.
    pub(super) layers: Vec<Layer>,
    /// Where the walk stands.
    pub(super) phase: Phase,
    /// What is known about the shape of the current tensor.
    pub(super) flow: Flow,
}

impl<'a> Importer<'a> {
    /// A constant input of a node, decoded.
    pub(super) fn constant(&self, ctx: &NodeCtx<'_>, name: &str, role: &str) -> Result<Tensor> {
        let c = self.consts.get(name).ok_or_else(|| {
            ctx.graph_err(format_args!(
                "{role} '{name}' is not an initializer or Constant"
            ))
        })?;
        c.decode(&format!("'{name}' ({role} of {})", ctx.label))
    }

    /// A real-valued constant input.
    pub(super) fn real(
        &self,
        ctx: &NodeCtx<'_>,
        name: &str,
        role: &str,
    ) -> Result<(Vec<usize>, Vec<f64>)> {
        let t = self.constant(ctx, name, role)?;
        match t.data {
            Data::Real(v) => Ok((t.dims, v)),
            Data::Int(_) => Err(ctx.graph_err(format_args!(
                "{role} '{name}' must be FLOAT or DOUBLE, not INT64"
            ))),
        }
    }

    /// A bias for `outputs` neurons from a constant of shape `[out]`, `[1, out]` or a
    /// broadcast scalar (`[]`, `[1]`, `[1, 1]`).
    pub(super) fn bias(&self, ctx: &NodeCtx<'_>, name: &str, outputs: usize) -> Result<Vec<f64>> {
        let (dims, v) = self.real(ctx, name, "bias")?;
        if dims.len() <= 2 && dims.iter().all(|&d| d == 1) && v.len() == 1 {
            return Ok(vec![v[0]; outputs]);
        }
        if dims == [outputs] || dims == [1, outputs] {
            return Ok(v);
        }
        Err(ctx.shape_err(format_args!(
            "bias '{name}' has shape {dims:?}; expected [{outputs}] or [1, {outputs}]"
        )))
    }

    /// Checks that an affine layer with `inputs` inputs can be applied to the current tensor.
    pub(super) fn enter_affine(&self, ctx: &NodeCtx<'_>, inputs: usize) -> Result<()> {
        match self.phase {
            Phase::Start | Phase::Relu => {}
            Phase::Affine { .. } => {
                return Err(ctx
                    .graph_err("two affine layers without a Relu between them are not supported"));
            }
            Phase::Done => return Err(ctx.graph_err("follows the final Softmax/LogSoftmax")),
        }
        if let Some(rank) = self.flow.rank
            && rank != 2
        {
            return Err(ctx.shape_err(format_args!(
                "input has rank {rank}; an affine layer needs [batch, features] (add a Flatten)"
            )));
        }
        if let Some(width) = self.flow.width
            && width != inputs
        {
            return Err(ctx.shape_err(format_args!(
                "weight expects {inputs} input features but the incoming tensor has {width}"
            )));
        }
        Ok(())
    }

    /// Appends a finished affine layer; the tensor is now `[batch, outputs]`.
    pub(super) fn push_layer(&mut self, layer: Layer, bias_open: bool) {
        self.flow = Flow {
            rank: Some(2),
            batch: self.flow.batch,
            dim1: Some(layer.outputs),
            width: Some(layer.outputs),
        };
        self.layers.push(layer);
        self.phase = Phase::Affine { bias_open };
    }

    /// Handles one node of the chain whose data input is `data`, by the handler that the
    /// operator registry ([`ops::lookup`]) holds for its operator.
    fn step(&mut self, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
        match ops::lookup(ctx.op()).and_then(|op| op.step) {
            Some(step) => step(self, ctx, data),
            None => Err(OnnxError::Unsupported {
                op_type: ctx.op().to_string(),
                node: ctx.label.clone(),
            }),
        }
    }

    /// Refuses a `Flatten`/`Reshape` anywhere but before the first affine layer.
    pub(super) fn check_reshape_allowed(&self, ctx: &NodeCtx<'_>) -> Result<()> {
        if self.phase != Phase::Start {
            return Err(
                ctx.graph_err("Flatten/Reshape is only supported before the first affine layer")
            );
        }
        Ok(())
    }
}

/// Rejects an empty weight matrix before any per-output vector is allocated for it (an
/// `[0, huge]` tensor holds no data, so its size alone must not drive an allocation).
pub(super) fn check_matrix(
    ctx: &NodeCtx<'_>,
    name: &str,
    inputs: usize,
    outputs: usize,
) -> Result<()> {
    if inputs == 0 || outputs == 0 {
        return Err(ctx.shape_err(format_args!(
            "weight '{name}' is empty ({inputs} inputs, {outputs} outputs)"
        )));
    }
    Ok(())
}

/// Row-major `rows × cols` → row-major `cols × rows`.
pub(super) fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(m.len());
    for c in 0..cols {
        for r in 0..rows {
            t.push(m[r * cols + c]);
        }
    }
    t
}

/// Shape facts of the graph input from its declared type.
fn input_flow(vi: &proto::ValueInfoProto) -> Result<Flow> {
    use proto::tensor_shape_proto::dimension::Value;
    let name = vi.name.as_deref().unwrap_or("");
    let unknown = Flow {
        rank: None,
        batch: None,
        dim1: None,
        width: None,
    };
    let Some(ty) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Ok(unknown);
    };
    let proto::type_proto::Value::TensorType(tensor) = ty else {
        return Err(OnnxError::Graph(format!(
            "graph input '{name}' is not a tensor"
        )));
    };
    if let Some(t) = tensor.elem_type
        && t != 0
        && t != DataType::Float as i32
        && t != DataType::Double as i32
    {
        return Err(OnnxError::Graph(format!(
            "graph input '{name}' has element type {}; only FLOAT and DOUBLE are supported",
            type_name(t)
        )));
    }
    let Some(shape) = &tensor.shape else {
        return Ok(unknown);
    };
    let dims: Vec<Option<usize>> = shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) => usize::try_from(v).ok(),
            _ => None,
        })
        .collect();
    let rank = dims.len();
    if rank < 2 {
        return Err(OnnxError::Shape(format!(
            "graph input '{name}' has rank {rank}; expected [batch, features, ...]"
        )));
    }
    let width = dims[1..]
        .iter()
        .try_fold(1usize, |acc, d| d.and_then(|d| acc.checked_mul(d)));
    Ok(Flow {
        rank: Some(rank),
        batch: dims[0],
        dim1: dims[1],
        width,
    })
}

/// Checks the declared shape of the graph output against the extracted network.
fn check_output(vi: &proto::ValueInfoProto, outputs: usize) -> Result<()> {
    use proto::tensor_shape_proto::dimension::Value;
    let name = vi.name.as_deref().unwrap_or("");
    let Some(proto::type_proto::Value::TensorType(tensor)) =
        vi.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    let Some(shape) = &tensor.shape else {
        return Ok(());
    };
    let ok = match shape.dim.as_slice() {
        [_, d] => match d.value {
            Some(Value::DimValue(v)) => usize::try_from(v).ok() == Some(outputs),
            _ => true,
        },
        _ => false,
    };
    if !ok {
        return Err(OnnxError::Shape(format!(
            "graph output '{name}' is declared with {} dimensions {:?}, but the network produces [batch, {outputs}]",
            shape.dim.len(),
            shape
                .dim
                .iter()
                .map(|d| d.value.clone())
                .collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// Walks the chain of `graph` and builds the network.
pub(super) fn import_graph(graph: &proto::GraphProto) -> Result<Network> {
    // 1. Every operator must be one of the supported ones.
    for (idx, node) in graph.node.iter().enumerate() {
        let op = node.op_type.as_deref().unwrap_or("");
        let domain = node.domain.as_deref().unwrap_or("");
        if !(domain.is_empty() || domain == "ai.onnx") {
            return Err(OnnxError::Unsupported {
                op_type: format!("{domain}::{op}"),
                node: node_label(idx, node),
            });
        }
        if ops::lookup(op).is_none() {
            return Err(OnnxError::Unsupported {
                op_type: op.to_string(),
                node: node_label(idx, node),
            });
        }
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(OnnxError::Graph(
            "sparse initializers are not supported".into(),
        ));
    }

    // 2. Constants: initializers, Constant nodes and Identity applied to a constant.
    let mut consts: Consts<'_> = HashMap::new();
    for t in &graph.initializer {
        let name = t.name.as_deref().unwrap_or("");
        if consts.insert(name, Const::Proto(t)).is_some() {
            return Err(OnnxError::Graph(format!(
                "initializer '{name}' defined twice"
            )));
        }
    }
    let mut chain: Vec<NodeCtx<'_>> = Vec::new();
    for (idx, node) in graph.node.iter().enumerate() {
        let ctx = NodeCtx {
            node,
            label: node_label(idx, node),
        };
        let out = ctx.output()?;
        let value = match ops::lookup(ctx.op()).and_then(|op| op.fold) {
            Some(fold) => fold(&ctx, &consts)?,
            None => None,
        };
        match value {
            Some(v) => {
                if consts.insert(out, v).is_some() {
                    return Err(ctx.graph_err(format_args!("redefines '{out}'")));
                }
            }
            None => chain.push(ctx),
        }
    }

    // 3. One data input, one output, every value defined once.
    let data_inputs: Vec<&proto::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|vi| !consts.contains_key(vi.name.as_deref().unwrap_or("")))
        .collect();
    let [input_vi] = data_inputs[..] else {
        return Err(OnnxError::Graph(format!(
            "the graph must have exactly one input that is not an initializer, found {}",
            data_inputs.len()
        )));
    };
    let [output_vi] = graph.output.as_slice() else {
        return Err(OnnxError::Graph(format!(
            "the graph must have exactly one output, found {}",
            graph.output.len()
        )));
    };
    let input_name = input_vi.name.as_deref().unwrap_or("");
    let output_name = output_vi.name.as_deref().unwrap_or("");
    let defined: HashSet<&str> = chain
        .iter()
        .filter_map(|ctx| ctx.node.output.first().map(String::as_str))
        .chain([input_name])
        .collect();
    let mut produced: HashSet<&str> = HashSet::from([input_name]);
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut data_of: Vec<&str> = Vec::with_capacity(chain.len());
    for (k, ctx) in chain.iter().enumerate() {
        let out = ctx.output()?;
        if consts.contains_key(out) || !produced.insert(out) {
            return Err(ctx.graph_err(format_args!("redefines '{out}'")));
        }
        let data: Vec<&str> = ctx
            .node
            .input
            .iter()
            .map(String::as_str)
            .filter(|i| !i.is_empty() && !consts.contains_key(i))
            .collect();
        if let Some(missing) = data.iter().find(|d| !defined.contains(*d)) {
            return Err(ctx.graph_err(format_args!(
                "input '{missing}' is neither an initializer, a Constant, the graph input nor the output of a node (missing initializer?)"
            )));
        }
        let [d] = data[..] else {
            return Err(ctx.graph_err(format_args!(
                "has {} non-constant inputs {data:?}; only a single chain with constant weights is supported",
                data.len()
            )));
        };
        consumers.entry(d).or_default().push(k);
        data_of.push(d);
    }

    // 4. Walk the chain from the input to the output.
    let mut imp = Importer {
        consts,
        layers: Vec::new(),
        phase: Phase::Start,
        flow: input_flow(input_vi)?,
    };
    let mut visited = vec![false; chain.len()];
    let mut cur = input_name;
    loop {
        let next = consumers.get(cur).map_or(&[][..], Vec::as_slice);
        if cur == output_name {
            if let Some(&k) = next.first() {
                return Err(OnnxError::Graph(format!(
                    "the graph output '{cur}' is also consumed by node {}",
                    chain[k].label
                )));
            }
            break;
        }
        let k = match next {
            [] => {
                return Err(OnnxError::Graph(format!(
                    "value '{cur}' is not used by any node and is not the graph output '{output_name}'"
                )));
            }
            [k] => *k,
            many => {
                let labels: Vec<&str> = many.iter().map(|&k| chain[k].label.as_str()).collect();
                return Err(OnnxError::Graph(format!(
                    "value '{cur}' feeds several nodes ({}); only a single chain is supported",
                    labels.join(", ")
                )));
            }
        };
        if std::mem::replace(&mut visited[k], true) {
            return Err(OnnxError::Graph("the graph contains a cycle".into()));
        }
        let ctx = &chain[k];
        imp.step(ctx, data_of[k])?;
        cur = ctx.output()?;
    }
    if let Some(k) = visited.iter().position(|v| !v) {
        return Err(OnnxError::Graph(format!(
            "node {} is not on the path from the input '{input_name}' to the output '{output_name}'",
            chain[k].label
        )));
    }
    match imp.phase {
        Phase::Relu => {
            return Err(OnnxError::Graph(
                "the last affine layer is followed by a Relu; the logits must be the output of an affine layer".into(),
            ));
        }
        Phase::Start => {
            return Err(OnnxError::Graph(
                "the graph contains no affine layer (Gemm or MatMul)".into(),
            ));
        }
        Phase::Affine { .. } | Phase::Done => {}
    }
    if let Some(last) = imp.layers.last() {
        check_output(output_vi, last.outputs)?;
    }
    let layers = imp
        .layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| Affine::new(i, l.outputs, l.inputs, l.w, l.b))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Network::new(layers)?)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::model::Affine;
    use crate::onnx::proto::ModelProto;
    use crate::onnx::test_util::*;
    use crate::onnx::{OnnxError, export_bytes, import, import_bytes};

    #[test]
    fn imports_shared_models_with_expected_shapes() {
        let Some(files) = shared_models() else {
            return;
        };
        assert!(!files.is_empty());
        for path in &files {
            let net = import(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // File names are <data>_<k>blk_<h1>_..._<hk>.onnx.
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name");
            let (_, hidden) = stem.split_once("blk_").expect("benchmark file name");
            let mut dims = vec![784];
            dims.extend(
                hidden
                    .split('_')
                    .map(|h| h.parse::<usize>().expect("width")),
            );
            dims.push(10);
            let got: Vec<usize> = std::iter::once(net.input_dim())
                .chain(net.layers().iter().map(Affine::outputs))
                .collect();
            assert_eq!(got, dims, "{stem}");
        }
        let net = import(&files[0].with_file_name("mnist_1blk_100.onnx")).expect("import");
        assert_eq!(
            (
                net.depth(),
                net.input_dim(),
                net.layers()[0].outputs(),
                net.output_dim()
            ),
            (2, 784, 100, 10)
        );
        let net = import(&files[0].with_file_name("mnist_3blk_100_100_100.onnx")).expect("import");
        let shapes: Vec<(usize, usize)> = net
            .layers()
            .iter()
            .map(|l| (l.inputs(), l.outputs()))
            .collect();
        assert_eq!(shapes, vec![(784, 100), (100, 100), (100, 100), (100, 10)]);
    }

    #[test]
    fn unsupported_ops_are_named_with_their_node() {
        let w = f32_raw("W", &[2, 2], &[1.0; 4]);
        for op in ["Conv", "Sigmoid"] {
            let bytes = model_bytes(
                vec![
                    node("fc0", "Gemm", &["x", "W"], &["h"]),
                    node("odd_node", op, &["h"], &["a"]),
                    node("fc1", "Gemm", &["a", "W"], &["y"]),
                ],
                vec![w.clone()],
                vi("x", &[None, Some(2)]),
                2,
            );
            let err = import_bytes(&bytes).expect_err("unsupported");
            match &err {
                OnnxError::Unsupported { op_type, node } => {
                    assert_eq!(op_type, op);
                    assert!(node.contains("odd_node"));
                }
                other => panic!("expected Unsupported, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(op) && msg.contains("odd_node"), "{msg}");
        }
        // A node of another domain is unsupported even with a known name.
        let mut n = node("fused", "Gemm", &["x", "W"], &["y"]);
        n.domain = Some("com.microsoft".into());
        let bytes = model_bytes(vec![n], vec![w], vi("x", &[None, Some(2)]), 2);
        assert!(matches!(
            import_bytes(&bytes),
            Err(OnnxError::Unsupported { .. })
        ));
    }

    #[test]
    fn structural_and_shape_errors() {
        let w32 = f32_raw("W", &[3, 2], &[1.0; 6]);
        let w42 = f32_raw("V", &[4, 2], &[1.0; 8]);
        let x3 = vi("x", &[None, Some(3)]);
        let two_layers = |second: &str| {
            model_bytes(
                vec![
                    node("fc0", "Gemm", &["x", "W"], &["h"]),
                    node("relu0", "Relu", &["h"], &["r"]),
                    node("fc1", "Gemm", &["r", second], &["y"]),
                ],
                vec![w32.clone(), w42.clone(), f32_raw("U", &[2, 2], &[1.0; 4])],
                x3.clone(),
                2,
            )
        };
        assert_eq!(import_bytes(&two_layers("U")).expect("ok").depth(), 2);
        // 2 outputs feed a layer expecting 4 inputs.
        assert!(matches!(
            import_bytes(&two_layers("V")),
            Err(OnnxError::Shape(_))
        ));
        // The input declares 5 features for a 3-input layer.
        let bytes = model_bytes(
            vec![node("fc0", "Gemm", &["x", "W"], &["y"])],
            vec![w32.clone()],
            vi("x", &[None, Some(5)]),
            2,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Shape(_))));
        // The output declares the wrong width.
        let bytes = model_bytes(
            vec![node("fc0", "Gemm", &["x", "W"], &["y"])],
            vec![w32.clone()],
            x3.clone(),
            7,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Shape(_))));
        // Bias of the wrong length.
        let bytes = gemm_model(w32.clone(), Some(f32_raw("C", &[3], &[1.0; 3])), vec![]);
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Shape(_))));
        // transA = 1 and transB = 2.
        for attr in [attr_i("transA", 1), attr_i("transB", 2)] {
            let name = attr.name.clone().unwrap_or_default();
            let bytes = gemm_model(w32.clone(), None, vec![attr]);
            let err = import_bytes(&bytes).expect_err("trans");
            assert!(
                matches!(&err, OnnxError::Graph(m) if m.contains(&name)),
                "{err}"
            );
        }
        // Unknown attribute.
        let bytes = gemm_model(w32.clone(), None, vec![attr_i("gamma", 1)]);
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Graph(_))));
        // Missing initializer.
        let bytes = model_bytes(
            vec![node("fc0", "Gemm", &["x", "Missing"], &["y"])],
            vec![],
            x3.clone(),
            2,
        );
        let err = import_bytes(&bytes).expect_err("missing");
        assert!(
            matches!(&err, OnnxError::Graph(m) if m.contains("Missing")),
            "{err}"
        );
        // A branch: the input feeds two nodes.
        let bytes = model_bytes(
            vec![
                node("fc0", "Gemm", &["x", "W"], &["y"]),
                node("fc1", "Gemm", &["x", "W"], &["z"]),
            ],
            vec![w32.clone()],
            x3.clone(),
            2,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Graph(_))));
        // Two affine layers without Relu, Relu first, Add after Gemm.
        let bad_chains = [
            vec![
                node("fc0", "Gemm", &["x", "W"], &["h"]),
                node("fc1", "Gemm", &["h", "U"], &["y"]),
            ],
            vec![
                node("r", "Relu", &["x"], &["h"]),
                node("fc0", "Gemm", &["h", "W"], &["y"]),
            ],
            vec![
                node("fc0", "Gemm", &["x", "W"], &["h"]),
                node("add", "Add", &["h", "U"], &["y"]),
            ],
        ];
        for nodes in bad_chains {
            let bytes = model_bytes(
                nodes,
                vec![w32.clone(), f32_raw("U", &[2, 2], &[1.0; 4])],
                x3.clone(),
                2,
            );
            assert!(matches!(import_bytes(&bytes), Err(OnnxError::Graph(_))));
        }
        // A second graph input, and no node at all.
        let mut g = ModelProto::decode(&two_layers("U")[..]).expect("decode");
        if let Some(graph) = g.graph.as_mut() {
            graph.input.push(vi("extra", &[None, Some(3)]));
        }
        assert!(matches!(
            import_bytes(&g.encode_to_vec()),
            Err(OnnxError::Graph(_))
        ));
        let bytes = model_bytes(vec![], vec![], vi("y", &[None, Some(2)]), 2);
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Graph(_))));
    }

    #[test]
    fn mutated_models_never_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let net = random_net(&mut rng, &[6, 4, 3]);
        let good = export_bytes(&net).expect("export");
        for round in 0..3000 {
            let mut bytes = good.clone();
            match round % 3 {
                0 => bytes.truncate(rng.random_range(0..bytes.len())),
                1 => {
                    for _ in 0..rng.random_range(1..4) {
                        let i = rng.random_range(0..bytes.len());
                        bytes[i] = rng.random();
                    }
                }
                _ => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.random_range(0..8);
                }
            }
            let _ = import_bytes(&bytes);
        }
    }
}
