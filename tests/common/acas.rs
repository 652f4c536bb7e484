//! The 5-input ACAS-like network and the input part of its VNN-LIB property, shared by the
//! VNN-LIB certificate and `synth vnnlib` tests.
#![allow(dead_code)]

use certquant::model::{Affine, Network};

/// A 5-input, 5-output network (ACAS Xu's shape) with known outputs on `[−1, 1]⁵`:
/// `y_0 = h_0 − h_1 + 0.25·relu(x_0) ∈ [0, 0.25]` with twin neurons `h_0 = h_1` (DeepPoly's
/// triangle relaxation loses their equality: input splitting is needed),
/// `y_1 = h_2 − h_3 + 0.25·relu(−x_1) ∈ [0, 0.25]` (twins again), `y_2 = x_4` (through a
/// neuron that is always active), `y_3 = y3` (its bias), `y_4 = relu(x_0) + relu(−x_1)`.
pub fn acas_like(y3: f64) -> Network {
    #[rustfmt::skip]
    let w0 = vec![
        1.0, 1.0, -1.0, 0.0, 0.0, // h0 = relu(x0 + x1 − x2)
        1.0, 1.0, -1.0, 0.0, 0.0, // h1 = h0
        0.0, 0.0, 1.0, -0.5, 0.0, // h2 = relu(x2 − x3/2)
        0.0, 0.0, 1.0, -0.5, 0.0, // h3 = h2
        0.0, 0.0, 0.0, 0.0, 1.0,  // h4 = relu(x4 + 2)
        1.0, 0.0, 0.0, 0.0, 0.0,  // h5 = relu(x0)
        0.0, -1.0, 0.0, 0.0, 0.0, // h6 = relu(−x1)
    ];
    let l0 = Affine::new(0, 7, 5, w0, vec![0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]).unwrap();
    #[rustfmt::skip]
    let w1 = vec![
        1.0, -1.0, 0.0, 0.0, 0.0, 0.25, 0.0,
        0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.25,
        0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0,
    ];
    let l1 = Affine::new(1, 5, 7, w1, vec![0.0, 0.0, -2.0, y3, 0.0]).unwrap();
    Network::new(vec![l0, l1]).unwrap()
}

/// The declarations of `X_0..X_4`, `Y_0..Y_4` and the input assertion (two boxes) of the
/// property; a test appends its output assertion.
pub const PROPERTY_INPUTS: &str = "; an ACAS-like property that holds\n\
    (declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const X_2 Real)\n\
    (declare-const X_3 Real)\n(declare-const X_4 Real)\n\
    (declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n\
    (declare-const Y_3 Real)\n(declare-const Y_4 Real)\n\
    (assert (or (and (>= X_0 -1) (<= X_0 1) (>= X_1 -1) (<= X_1 1) (>= X_2 -1) (<= X_2 1)\n\
                     (>= X_3 -1) (<= X_3 1) (>= X_4 -1) (<= X_4 1))\n\
                (and (>= X_0 0.2) (<= X_0 0.6) (>= X_1 -0.3) (<= X_1 0.1) (>= X_2 -1) (<= X_2 1)\n\
                     (>= X_3 0) (<= X_3 1) (>= X_4 -0.5) (<= X_4 0.5))))\n";
