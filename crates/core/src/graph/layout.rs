//! Operators that only move data: zero padding, axis permutation and reshaping. Each is a
//! 0/1 matrix, so lowering through them is exact.

use super::{GraphError, SparseMap, numel};

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * dims[k + 1];
    }
    s
}

/// Zero padding of every sample axis (ONNX `Pad`, mode `constant`, value 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Pad {
    /// Per-sample input shape.
    pub in_dims: Vec<usize>,
    /// Zeros added before each axis.
    pub begin: Vec<usize>,
    /// Zeros added after each axis.
    pub end: Vec<usize>,
}

impl Pad {
    /// Builds a padding, checking the ranks and the output size.
    pub fn new(
        in_dims: Vec<usize>,
        begin: Vec<usize>,
        end: Vec<usize>,
    ) -> Result<Self, GraphError> {
        let p = Self {
            in_dims,
            begin,
            end,
        };
        if p.begin.len() != p.in_dims.len() || p.end.len() != p.in_dims.len() {
            return Err(GraphError::Shape {
                node: "Pad".into(),
                what: format!(
                    "{} begin and {} end pads for a rank-{} sample",
                    p.begin.len(),
                    p.end.len(),
                    p.in_dims.len()
                ),
            });
        }
        let out: Option<Vec<usize>> = (0..p.in_dims.len())
            .map(|k| p.in_dims[k].checked_add(p.begin[k])?.checked_add(p.end[k]))
            .collect();
        if out.as_deref().and_then(numel).is_none() {
            return Err(GraphError::Shape {
                node: "Pad".into(),
                what: "padded tensor too large".into(),
            });
        }
        Ok(p)
    }

    /// Per-sample output shape.
    pub fn out_dims(&self) -> Vec<usize> {
        (0..self.in_dims.len())
            .map(|k| self.in_dims[k] + self.begin[k] + self.end[k])
            .collect()
    }

    /// For every input element, its flat index in the output.
    fn targets(&self) -> Vec<usize> {
        let out = self.out_dims();
        let os = strides(&out);
        let n: usize = self.in_dims.iter().product();
        let is = strides(&self.in_dims);
        (0..n)
            .map(|flat| {
                (0..self.in_dims.len())
                    .map(|k| ((flat / is[k]) % self.in_dims[k] + self.begin[k]) * os[k])
                    .sum()
            })
            .collect()
    }

    /// The padding in plain f64.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.out_dims().iter().product()];
        for (i, t) in self.targets().into_iter().enumerate() {
            y[t] = x[i];
        }
        y
    }

    /// The padding as a 0/1 sparse map.
    pub fn to_sparse(&self) -> SparseMap {
        let n_out: usize = self.out_dims().iter().product();
        let mut rows = vec![Vec::new(); n_out];
        for (i, t) in self.targets().into_iter().enumerate() {
            rows[t].push((i, 1.0));
        }
        SparseMap::from_rows(self.in_dims.iter().product(), rows).expect("0/1 rows in range")
    }
}

/// A permutation of the sample axes (ONNX `Transpose` with the batch axis kept first).
#[derive(Debug, Clone, PartialEq)]
pub struct Transpose {
    /// Per-sample input shape.
    pub in_dims: Vec<usize>,
    /// Output axis `k` is input axis `perm[k]` (sample axes, 0-based).
    pub perm: Vec<usize>,
}

impl Transpose {
    /// Builds a transpose, checking that `perm` is a permutation of the sample axes.
    pub fn new(in_dims: Vec<usize>, perm: Vec<usize>) -> Result<Self, GraphError> {
        let mut seen = vec![false; in_dims.len()];
        let ok = perm.len() == in_dims.len()
            && perm
                .iter()
                .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !ok {
            return Err(GraphError::Shape {
                node: "Transpose".into(),
                what: format!(
                    "perm {perm:?} is not a permutation of the sample axes of {in_dims:?}"
                ),
            });
        }
        Ok(Self { in_dims, perm })
    }

    /// Per-sample output shape.
    pub fn out_dims(&self) -> Vec<usize> {
        self.perm.iter().map(|&p| self.in_dims[p]).collect()
    }

    /// For every output element, the flat index of the input element it takes.
    pub fn sources(&self) -> Vec<usize> {
        let out = self.out_dims();
        let os = strides(&out);
        let is = strides(&self.in_dims);
        let n: usize = out.iter().product();
        (0..n)
            .map(|flat| {
                (0..out.len())
                    .map(|k| ((flat / os[k]) % out[k]) * is[self.perm[k]])
                    .sum()
            })
            .collect()
    }

    /// The permutation in plain f64.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        self.sources().into_iter().map(|s| x[s]).collect()
    }

    /// The permutation as a 0/1 sparse map.
    pub fn to_sparse(&self) -> SparseMap {
        let rows = self.sources().into_iter().map(|s| vec![(s, 1.0)]).collect();
        SparseMap::from_rows(self.in_dims.iter().product(), rows).expect("a permutation")
    }
}

/// Which ONNX operator a reshape came from (export writes it back as the same kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReshapeKind {
    /// `Flatten` (axis 1).
    Flatten,
    /// `Reshape` with a constant shape.
    Reshape,
    /// `Squeeze`.
    Squeeze,
    /// `Unsqueeze`.
    Unsqueeze,
}

impl ReshapeKind {
    /// The ONNX operator name.
    pub fn op_name(self) -> &'static str {
        match self {
            ReshapeKind::Flatten => "Flatten",
            ReshapeKind::Reshape => "Reshape",
            ReshapeKind::Squeeze => "Squeeze",
            ReshapeKind::Unsqueeze => "Unsqueeze",
        }
    }
}

/// A change of shape that keeps the row-major data (the identity on flat vectors).
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape {
    /// Which operator it came from.
    pub kind: ReshapeKind,
    /// Per-sample input shape.
    pub in_dims: Vec<usize>,
    /// Per-sample output shape (same element count).
    pub out_dims: Vec<usize>,
}

impl Reshape {
    /// Builds a reshape, checking that the element count is kept.
    pub fn new(
        kind: ReshapeKind,
        in_dims: Vec<usize>,
        out_dims: Vec<usize>,
    ) -> Result<Self, GraphError> {
        if numel(&in_dims) != numel(&out_dims) || numel(&in_dims).is_none() {
            return Err(GraphError::Shape {
                node: kind.op_name().into(),
                what: format!("cannot reshape {in_dims:?} to {out_dims:?}"),
            });
        }
        Ok(Self {
            kind,
            in_dims,
            out_dims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhwc_to_nchw() {
        // [H=2, W=2, C=3] → [C, H, W] with perm [2, 0, 1].
        let t = Transpose::new(vec![2, 2, 3], vec![2, 0, 1]).unwrap();
        assert_eq!(t.out_dims(), vec![3, 2, 2]);
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        // Output (c=1, h=0, w=1) = input (h=0, w=1, c=1) = index 4.
        let y = t.forward(&x);
        assert_eq!(y[4 + 1], 4.0);
        assert_eq!(t.to_sparse().apply(&x), y);
        assert!(Transpose::new(vec![2, 2], vec![0, 0]).is_err());
    }

    #[test]
    fn pad_places_values() {
        let p = Pad::new(vec![1, 2, 2], vec![0, 1, 0], vec![0, 0, 1]).unwrap();
        assert_eq!(p.out_dims(), vec![1, 3, 3]);
        let y = p.forward(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(y, vec![0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
        assert_eq!(p.to_sparse().apply(&[1.0, 2.0, 3.0, 4.0]), y);
        assert!(Pad::new(vec![2], vec![0, 1], vec![0]).is_err());
    }
}
