//! Elementwise arithmetic with a constant (ONNX `Add`, `Sub`, `Mul`, `Div` with one
//! constant operand): the input normalisation `(x − mean)/std` that real networks start with.
//!
//! The constant is broadcast to the sample shape at import (scalar, per channel or per
//! element). These maps are affine and act on each element alone, so the image of a box is
//! a box; [`Elementwise::map_box`] computes it with outward rounding (a division by a
//! `std` that is not a power of two is not exact in f64: each end is moved one ulp outward,
//! which contains the exact real result because f64 operations round to nearest).

use super::GraphError;

/// Which operation, with `c` the constant and `x` the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementwiseKind {
    /// `x + c`.
    Add,
    /// `x − c`.
    Sub,
    /// `c − x` (the constant is the first operand of `Sub`).
    SubFrom,
    /// `x · c`.
    Mul,
    /// `x / c` (`c ≠ 0`).
    Div,
}

impl ElementwiseKind {
    /// The ONNX operator name.
    pub fn op_name(self) -> &'static str {
        match self {
            ElementwiseKind::Add => "Add",
            ElementwiseKind::Sub | ElementwiseKind::SubFrom => "Sub",
            ElementwiseKind::Mul => "Mul",
            ElementwiseKind::Div => "Div",
        }
    }

    /// The operation on one element in plain f64.
    pub fn apply(self, x: f64, c: f64) -> f64 {
        match self {
            ElementwiseKind::Add => x + c,
            ElementwiseKind::Sub => x - c,
            ElementwiseKind::SubFrom => c - x,
            ElementwiseKind::Mul => x * c,
            ElementwiseKind::Div => x / c,
        }
    }
}

/// `x ∘ c` elementwise, `c` a constant broadcast to the sample shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Elementwise {
    /// The operation.
    pub kind: ElementwiseKind,
    /// Per-sample shape (input and output).
    pub dims: Vec<usize>,
    /// The constant broadcast to `dims`, flat row-major.
    pub c: Vec<f64>,
    /// The constant as stored in the model (for export): its ONNX dims and values.
    pub stored: (Vec<usize>, Vec<f64>),
}

impl Elementwise {
    /// Builds the operation, checking the constant (finite; non-zero for a division).
    pub fn new(
        kind: ElementwiseKind,
        dims: Vec<usize>,
        c: Vec<f64>,
        stored: (Vec<usize>, Vec<f64>),
    ) -> Result<Self, GraphError> {
        let err = |what: String| GraphError::Shape {
            node: kind.op_name().into(),
            what,
        };
        if c.len() != dims.iter().product::<usize>() {
            return Err(err(format!(
                "constant has {} values for shape {dims:?}",
                c.len()
            )));
        }
        if let Some(v) = c.iter().find(|v| !v.is_finite()) {
            return Err(err(format!("constant is not finite ({v})")));
        }
        if kind == ElementwiseKind::Div && c.contains(&0.0) {
            return Err(err("division by zero".into()));
        }
        Ok(Self {
            kind,
            dims,
            c,
            stored,
        })
    }

    /// The operation in plain f64.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.c)
            .map(|(&x, &c)| self.kind.apply(x, c))
            .collect()
    }

    /// A box containing the exact (real-arithmetic) image of the box `[lo, hi]`: each end
    /// computed in f64 and moved one ulp outward.
    pub fn map_box(&self, lo: &[f64], hi: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut nlo = Vec::with_capacity(lo.len());
        let mut nhi = Vec::with_capacity(hi.len());
        for ((&l, &h), &c) in lo.iter().zip(hi).zip(&self.c) {
            let (a, b) = (self.kind.apply(l, c), self.kind.apply(h, c));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            nlo.push(a.next_down());
            nhi.push(b.next_up());
        }
        (nlo, nhi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_box_contains_the_exact_image() {
        let sub = Elementwise::new(
            ElementwiseKind::Sub,
            vec![2],
            vec![0.1307, 0.5],
            (vec![], vec![]),
        )
        .unwrap();
        let div = Elementwise::new(
            ElementwiseKind::Div,
            vec![2],
            vec![0.3081, -2.0],
            (vec![], vec![]),
        )
        .unwrap();
        let (l, h) = sub.map_box(&[0.0, 0.0], &[1.0, 1.0]);
        let (l, h) = div.map_box(&l, &h);
        // Exact images: [-0.1307/0.3081, 0.8693/0.3081] and [-0.25, 0.25] (negative divisor swaps).
        assert!(l[0] < -0.1307 / 0.3081 && h[0] > 0.8693 / 0.3081);
        assert!(l[1] < -0.25 && h[1] > 0.25 && l[1] > -0.2501);
        assert_eq!(div.forward(&sub.forward(&[1.0, 1.0]))[1], -0.25);
        assert!(
            Elementwise::new(ElementwiseKind::Div, vec![1], vec![0.0], (vec![], vec![])).is_err()
        );
    }
}
