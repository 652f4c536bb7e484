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
use crate::graph::{Batch, Graph, GraphError, Node, numel};

/// The graph walker: constants, the typed nodes found so far and the current tensor's shape.
pub(super) struct Importer<'a> {
    /// The graph's constants by name.
    pub(super) consts: Consts<'a>,
    /// The typed nodes found so far, in order.
    pub(super) nodes: Vec<Node>,
    /// The ONNX name of each node in `nodes`.
    pub(super) names: Vec<String>,
    /// Per-sample shape of the tensor flowing along the chain (`None` while the graph input
    /// declares no shape and no operator has fixed it yet).
    pub(super) dims: Option<Vec<usize>>,
    /// The batch axis of the graph input.
    pub(super) batch: Batch,
    /// Per-sample shape of the graph input, once known.
    pub(super) input_dims: Option<Vec<usize>>,
    /// The last node is a `MatMul` whose bias an `Add` may still supply.
    pub(super) bias_open: bool,
    /// The label of the final `Softmax`/`LogSoftmax`, once seen: only `Identity` may follow.
    pub(super) done: Option<String>,
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

    /// An INT64 constant input.
    pub(super) fn ints(&self, ctx: &NodeCtx<'_>, name: &str, role: &str) -> Result<Vec<i64>> {
        let t = self.constant(ctx, name, role)?;
        match t.data {
            Data::Int(v) => Ok(v),
            Data::Real(_) => Err(ctx.graph_err(format_args!("{role} '{name}' must be INT64"))),
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

    /// The current per-sample shape, or an error naming the node if it is unknown.
    pub(super) fn need_dims(&self, ctx: &NodeCtx<'_>) -> Result<Vec<usize>> {
        self.dims.clone().ok_or_else(|| {
            ctx.shape_err("the shape of its input is unknown (declare the graph input's shape)")
        })
    }

    /// Checks that another operator may follow (nothing but `Identity` after the final
    /// `Softmax`).
    pub(super) fn check_open(&self, ctx: &NodeCtx<'_>) -> Result<()> {
        if let Some(sm) = &self.done {
            return Err(ctx.graph_err(format_args!(
                "follows Softmax node {sm}; Softmax/LogSoftmax is only accepted as the last operator"
            )));
        }
        Ok(())
    }

    /// Appends a typed node; its input shape must be the current shape (which is fixed by
    /// the node if still unknown); the current shape becomes its output shape.
    pub(super) fn push(&mut self, ctx: &NodeCtx<'_>, node: Node) -> Result<()> {
        self.check_open(ctx)?;
        let want = node.in_dims();
        match &self.dims {
            Some(d) if *d != want => {
                return Err(ctx.shape_err(format_args!(
                    "expects a sample of shape {want:?} but the incoming tensor has {d:?}"
                )));
            }
            Some(_) => {}
            None => self.input_dims = Some(want),
        }
        self.dims = Some(node.out_dims());
        self.nodes.push(node);
        self.names.push(ctx.label.clone());
        self.bias_open = false;
        Ok(())
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
}

impl Importer<'_> {
    /// The per-sample input shape of a dense layer with `n_in` inputs on the last axis:
    /// `[n_in]`, or (for `MatMul`) `[1, …, 1, n_in]`; the current shape if known, else `[n_in]`.
    pub(super) fn dense_input(
        &self,
        ctx: &NodeCtx<'_>,
        n_in: usize,
        gemm: bool,
    ) -> Result<Vec<usize>> {
        let Some(d) = &self.dims else {
            return Ok(vec![n_in]);
        };
        if gemm && d.len() != 1 {
            return Err(ctx.shape_err(format_args!(
                "input has rank {}; an affine layer needs [batch, features] (add a Flatten)",
                d.len() + 1
            )));
        }
        let last = d.last().copied().unwrap_or(0);
        if d[..d.len() - 1].iter().any(|&x| x != 1) {
            return Err(ctx.shape_err(format_args!(
                "input has sample shape {d:?}; a MatMul over more than one row per sample is not supported (add a Flatten)"
            )));
        }
        if last != n_in {
            return Err(ctx.shape_err(format_args!(
                "weight expects {n_in} input features but the incoming tensor has {last}"
            )));
        }
        Ok(d.clone())
    }
}

/// A [`GraphError`] from building a node, as an import error naming the ONNX node.
pub(super) fn node_err(ctx: &NodeCtx<'_>, e: GraphError) -> OnnxError {
    match e {
        GraphError::Shape { what, .. } => ctx.shape_err(what),
        GraphError::Unsupported { what, .. } => ctx.graph_err(what),
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

/// The declared batch axis and per-sample shape of the graph input (the shape `None` if not
/// declared or not static).
fn input_shape(vi: &proto::ValueInfoProto) -> Result<(Batch, Option<Vec<usize>>)> {
    use proto::tensor_shape_proto::dimension::Value;
    let name = vi.name.as_deref().unwrap_or("");
    let unknown = (Batch::Symbolic(String::new()), None);
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
    let rank = shape.dim.len();
    if rank < 2 {
        return Err(OnnxError::Shape(format!(
            "graph input '{name}' has rank {rank}; expected [batch, features, ...]"
        )));
    }
    let batch =
        match &shape.dim[0].value {
            Some(Value::DimValue(v)) => Batch::Fixed(usize::try_from(*v).map_err(|_| {
                OnnxError::Shape(format!("graph input '{name}' has batch size {v}"))
            })?),
            Some(Value::DimParam(p)) => Batch::Symbolic(p.clone()),
            None => Batch::Symbolic(String::new()),
        };
    let dims: Option<Vec<usize>> = shape.dim[1..]
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) => usize::try_from(v).ok(),
            _ => None,
        })
        .collect();
    if let Some(d) = &dims
        && numel(d).is_none_or(|n| n == 0)
    {
        return Err(OnnxError::Shape(format!(
            "graph input '{name}' has per-sample shape {d:?}: empty or too large"
        )));
    }
    Ok((batch, dims))
}

/// Checks the declared shape of the graph output against the extracted network.
fn check_output(vi: &proto::ValueInfoProto, out_dims: &[usize]) -> Result<()> {
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
    let ok = shape.dim.len() == out_dims.len() + 1
        && shape.dim[1..]
            .iter()
            .zip(out_dims)
            .all(|(d, &want)| match d.value {
                Some(Value::DimValue(v)) => usize::try_from(v).ok() == Some(want),
                _ => true,
            });
    if !ok {
        return Err(OnnxError::Shape(format!(
            "graph output '{name}' is declared with {} dimensions {:?}, but the network produces [batch, {}]",
            shape.dim.len(),
            shape
                .dim
                .iter()
                .map(|d| d.value.clone())
                .collect::<Vec<_>>(),
            out_dims
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// Walks the chain of `graph` and builds the typed graph.
pub(super) fn import_graph(graph: &proto::GraphProto) -> Result<Graph> {
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
                "has {} non-constant inputs {data:?}; only a single chain with constant weights is supported (no residual or two-operand connections)",
                data.len()
            )));
        };
        consumers.entry(d).or_default().push(k);
        data_of.push(d);
    }

    // 4. Walk the chain from the input to the output.
    let (batch, input_dims) = input_shape(input_vi)?;
    let mut imp = Importer {
        consts,
        nodes: Vec::new(),
        names: Vec::new(),
        dims: input_dims.clone(),
        batch,
        input_dims,
        bias_open: false,
        done: None,
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
    let input_dims = imp.input_dims.clone().ok_or_else(|| {
        OnnxError::Graph("the graph input's shape is unknown and no operator fixes it".into())
    })?;
    if imp.nodes.is_empty() {
        return Err(OnnxError::Graph(
            "the graph contains no operator besides Identity/Softmax".into(),
        ));
    }
    let g = Graph::new(imp.batch, input_dims, imp.nodes)
        .map_err(|e| OnnxError::Shape(e.to_string()))?
        .with_names(imp.names);
    check_output(output_vi, &g.output_dims())?;
    Ok(g)
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
        for op in ["Sigmoid", "LeakyRelu"] {
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
            assert!(matches!(
                import_bytes(&bytes),
                Err(OnnxError::Graph(_) | OnnxError::Shape(_))
            ));
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
