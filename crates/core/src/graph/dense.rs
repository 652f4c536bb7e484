//! Fully connected layer `y = W x + b` (docs/method.md, eq. (1)).

use super::{GraphError, SparseMap, numel};

/// A fully connected layer on a tensor whose elements all lie along one axis (`[n]`,
/// `[n, 1]`, `[1, n]`, …): ONNX `Gemm`, or `MatMul` (weight on either side) with an optional
/// bias `Add`.
///
/// Invariant (checked by [`Dense::new`]): `w` is row-major `outputs × inputs`, `b` has
/// `outputs` entries, every entry finite, `inputs = numel(in_dims)`, `outputs =
/// numel(out_dims)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Per-sample input shape.
    pub in_dims: Vec<usize>,
    /// Per-sample output shape (the input shape with the contracted axis replaced).
    pub out_dims: Vec<usize>,
    /// Weights, row-major `outputs × inputs`.
    pub w: Vec<f64>,
    /// Bias, one per output.
    pub b: Vec<f64>,
}

impl Dense {
    /// A layer with `outputs` outputs; its output shape is `in_dims` with the axis that holds
    /// all the elements (the last such axis; the last axis if all are 1) set to `outputs`,
    /// e.g. `[784] → [10]`, `[784, 1] → [10, 1]`.
    pub fn new(
        in_dims: Vec<usize>,
        outputs: usize,
        w: Vec<f64>,
        b: Vec<f64>,
    ) -> Result<Self, GraphError> {
        let inputs = numel(&in_dims).unwrap_or(0);
        let mut out_dims = in_dims.clone();
        let axis = in_dims
            .iter()
            .rposition(|&d| d == inputs)
            .unwrap_or(in_dims.len().saturating_sub(1));
        if let Some(d) = out_dims.get_mut(axis) {
            *d = outputs;
        } else {
            out_dims = vec![outputs];
        }
        Self::with_out_dims(in_dims, out_dims, w, b)
    }

    /// A layer with an explicit output shape (its element count is the number of outputs).
    pub fn with_out_dims(
        in_dims: Vec<usize>,
        out_dims: Vec<usize>,
        w: Vec<f64>,
        b: Vec<f64>,
    ) -> Result<Self, GraphError> {
        let err = |what: String| GraphError::Shape {
            node: "Gemm".into(),
            what,
        };
        let inputs = numel(&in_dims).ok_or_else(|| err(format!("input {in_dims:?} too large")))?;
        let outputs =
            numel(&out_dims).ok_or_else(|| err(format!("output {out_dims:?} too large")))?;
        if inputs == 0 || outputs == 0 {
            return Err(err(format!("empty layer ({outputs}×{inputs})")));
        }
        if w.len() != inputs.saturating_mul(outputs) || b.len() != outputs {
            return Err(err(format!(
                "weight has {} entries and bias {}, expected {outputs}×{inputs} and {outputs}",
                w.len(),
                b.len()
            )));
        }
        if let Some(v) = w.iter().chain(&b).find(|v| !v.is_finite()) {
            return Err(err(format!("weight or bias is not finite ({v})")));
        }
        Ok(Self {
            in_dims,
            out_dims,
            w,
            b,
        })
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.in_dims.iter().product()
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.b.len()
    }

    /// `W x + b` in plain f64.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let n = self.inputs();
        (0..self.outputs())
            .map(|j| {
                self.w[j * n..(j + 1) * n]
                    .iter()
                    .zip(x)
                    .map(|(w, v)| w * v)
                    .sum::<f64>()
                    + self.b[j]
            })
            .collect()
    }

    /// The weight matrix as a sparse map (zeros dropped).
    pub fn to_sparse(&self) -> SparseMap {
        SparseMap::from_dense(self.outputs(), self.inputs(), &self.w)
    }
}
