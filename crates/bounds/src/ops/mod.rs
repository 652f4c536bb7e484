//! One back-substitution step per operator of the network (the per-operator bound classes of
//! auto_LiRPA, in the shape of the checker's `relu_step` / `affine_step`).
//!
//! [`crate::deeppoly::DeepPoly::back_substitute`] bounds a linear expression over some layer's
//! neurons by walking the operators below it, output side first, and asking each one to
//! rewrite the expression in terms of its own input. Each operator is one [`BoundStep`]:
//! [`affine::AffineStep`] (`v = W v' + b`) and [`relu::ReluStep`] (`z = max(y, 0)`). A
//! convolution, pooling or normalisation is one more file here implementing the same trait.
//!
//! # The contract of a step
//! *In*: [`Rows`] `a_r·v + c_r` over the operator's **output** `v` (width
//! [`BoundStep::output_width`]) and the [`Side`] they bound, with the invariant
//!
//! > for every input `x` of the box, `t_r(x) ≥ a_r·v(x) + c_r` (upper side: `≤`) **exactly
//! > over the reals**, for the stored `f64` values `a_r`, `c_r` and the exact real neuron
//! > values `v(x)`.
//!
//! *Out*: a [`Substituted`] — rows `a'_r·v' + c'_r` over the operator's **input** `v'` (width
//! [`BoundStep::input_width`]) and, per row, a bound `err_r ≥ 0` on everything the step's
//! floating-point evaluation (and any over-approximation it makes on purpose) can be off by:
//! `a_r·v + c_r ≥ a'_r·v' + c'_r − err_r` over the box (upper side: `≤ … + err_r`).
//!
//! [`Substituted::settle`] then moves `err_r` into the constant with directed rounding
//! (`c'_r − err_r` rounded down on the lower side, `c'_r + err_r` rounded up on the upper side,
//! after [`inflate`] makes the float-computed `err_r` a certain upper bound), so the settled
//! rows satisfy the invariant again, one operator further down. After the last step they are
//! over the network input and [`crate::arith::linear_range`] concretises them over the box.
//!
//! A step must not reorder or fuse the floating-point operations it documents: the error
//! bound it reports is derived for exactly that evaluation.

pub mod affine;
pub mod relu;

use crate::arith::{add_up, inflate, sub_down};
use crate::deeppoly::Side;

/// Linear expressions `a_r·v + c_r` over the `width` neurons `v` of one stage of the network
/// (row-major `rows × width` coefficients, one constant per row): the row block a
/// back-substitution carries from operator to operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Number of variables each row ranges over.
    pub width: usize,
    /// Row-major coefficients, `rows × width`.
    pub coeffs: Vec<f64>,
    /// One constant per row.
    pub consts: Vec<f64>,
}

impl Rows {
    /// Builds a row block (`coeffs.len()` must be `width × consts.len()`).
    pub fn new(width: usize, coeffs: Vec<f64>, consts: Vec<f64>) -> Self {
        debug_assert_eq!(coeffs.len(), width * consts.len());
        Self {
            width,
            coeffs,
            consts,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.consts.len()
    }
}

/// Linear expressions like [`Rows`], each row kept as its non-zero coefficients
/// `(column, value)` by increasing column: the rows of a wide sparse layer (a max-pooling
/// tournament level has two to four non-zeros per row over tens of thousands of neurons)
/// stay sparse through the sparse layers below it. A step computes exactly the same
/// floating-point operations on them, in the same order, as on the dense form (a dense step
/// skips zero coefficients), so the bounds are identical.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows {
    /// Number of variables each row ranges over.
    pub width: usize,
    /// Per row, its non-zero coefficients by increasing column.
    pub entries: Vec<Vec<(usize, f64)>>,
    /// One constant per row.
    pub consts: Vec<f64>,
}

impl SparseRows {
    /// The same rows, dense.
    pub fn to_dense(&self) -> Rows {
        let mut coeffs = vec![0.0; self.entries.len() * self.width];
        for (r, e) in self.entries.iter().enumerate() {
            for &(c, v) in e {
                coeffs[r * self.width + c] = v;
            }
        }
        Rows::new(self.width, coeffs, self.consts.clone())
    }
}

/// A row block in either form.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Dense coefficients.
    Dense(Rows),
    /// Non-zero coefficients only.
    Sparse(SparseRows),
}

impl Block {
    /// Number of variables each row ranges over.
    pub fn width(&self) -> usize {
        match self {
            Block::Dense(r) => r.width,
            Block::Sparse(r) => r.width,
        }
    }

    /// The constants, for [`settle`].
    pub fn consts_mut(&mut self) -> &mut Vec<f64> {
        match self {
            Block::Dense(r) => &mut r.consts,
            Block::Sparse(r) => &mut r.consts,
        }
    }

    /// The block as dense rows.
    pub fn into_dense(self) -> Rows {
        match self {
            Block::Dense(r) => r,
            Block::Sparse(r) => r.to_dense(),
        }
    }
}

/// What a [`BoundStep`] returns: the substituted rows, whose constants do not yet account for
/// the step's rounding, and per row the error bound `err_r ≥ 0` that must still be moved into
/// the constant (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Substituted {
    /// Rows over the operator's input, constants as computed (round to nearest).
    pub rows: Rows,
    /// Per row, a bound on how far the rows may be off the exact substitution.
    pub err: Vec<f64>,
}

impl Substituted {
    /// Moves every row's error into its constant on `side`, restoring the exact-over-the-reals
    /// invariant of [`Rows`] (see [`settle`]).
    pub fn settle(mut self, side: Side) -> Rows {
        settle(&mut self.rows.consts, &self.err, side);
        self.rows
    }
}

/// One operator of the network, seen by back-substitution: it rewrites rows over its output
/// as rows over its input, sound on the requested side (the contract is in the module
/// documentation).
///
/// (docs/method.md, eqs. (8), (13), (14))
pub trait BoundStep {
    /// Width of the rows the step accepts: the number of the operator's outputs.
    fn output_width(&self) -> usize;

    /// Width of the rows the step returns: the number of the operator's inputs.
    fn input_width(&self) -> usize;

    /// Substitutes the operator (or its relaxation) into `rows`, which bound on `side`;
    /// returns the rows over the operator's input and the error bound of each row.
    fn substitute(&self, rows: Rows, side: Side) -> Substituted;

    /// [`BoundStep::substitute`] on sparse rows, with the same floating-point operations in
    /// the same order; the result may be dense (e.g. after a dense affine layer). The default
    /// densifies the rows first.
    fn substitute_sparse(&self, rows: SparseRows, side: Side) -> (Block, Vec<f64>) {
        let s = self.substitute(rows.to_dense(), side);
        (Block::Dense(s.rows), s.err)
    }
}

/// `consts[r] ∓ err[r]` with directed rounding, for each `r` both slices have: lower bounds
/// move down, upper bounds up. `err[r] ≥ 0` was computed in floating point, so it is
/// [`inflate`]d first; the result is then `≤` (lower) / `≥` (upper) the exact real
/// `consts[r] ∓ err[r]` whatever rounding the estimate itself suffered.
///
/// (docs/method.md, eq. (11))
pub fn settle(consts: &mut [f64], err: &[f64], side: Side) {
    for (c, &e) in consts.iter_mut().zip(err) {
        *c = directed(*c, inflate(e), side);
    }
}

/// `c − e` rounded down (lower side) or `c + e` rounded up (upper side), for `e ≥ 0`.
///
/// (docs/method.md, eq. (11))
pub fn directed(c: f64, e: f64, side: Side) -> f64 {
    match side {
        Side::Lower => sub_down(c, e),
        Side::Upper => add_up(c, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_moves_lower_bounds_down_and_upper_bounds_up() {
        let mut lo = vec![1.0, -2.0];
        settle(&mut lo, &[0.5, 0.0], Side::Lower);
        assert!(lo[0] < 0.5 && lo[0] > 0.49);
        assert!(lo[1] < -2.0);
        let mut hi = vec![1.0, -2.0];
        settle(&mut hi, &[0.5, 0.0], Side::Upper);
        assert!(hi[0] > 1.5 && hi[0] < 1.51);
        assert!(hi[1] > -2.0);
    }

    #[test]
    fn settle_leaves_rows_without_an_error_alone() {
        // the zip stops at the shorter slice (as `back_substitute` always has)
        let mut c = vec![1.0, 1.0];
        settle(&mut c, &[0.0], Side::Upper);
        assert!(c[0] > 1.0);
        assert_eq!(c[1], 1.0);
    }
}
