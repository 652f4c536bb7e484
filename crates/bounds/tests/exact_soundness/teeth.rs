//! The check has teeth: zero slack, shown on a network whose bounds are attained exactly.

use certquant_bounds::{DeepPoly, LayerBounds, LinearBounds, OutputProof};
use certquant_core::model::{Affine, Network};
use certquant_core::spec::{InputBox, OutputSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::claims::{Claims, ExactForms, ExactLayer, ExactNet, combination};
use super::dyadic::{dyadic, rat};
use super::points;

/// How many `next_up` steps lead from `a` to `b` (`a ≤ b`), capped at 1000.
fn ulps_between(mut a: f64, b: f64) -> usize {
    let mut n = 0;
    while a < b && n < 1000 {
        a = a.next_up();
        n += 1;
    }
    n
}

/// The identity-like network `y = ReLU(x)` (two layers `W = I`, `b = 0`) on a positive box,
/// so `y = x` and every bound is attained at a vertex.
fn identity_net() -> (Network, InputBox) {
    let id = |i| Affine::new(i, 2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]).unwrap();
    let net = Network::new(vec![id(0), id(1)]).unwrap();
    let bx = InputBox::new(vec![0.25, 0.5], vec![0.75, 1.0]).unwrap();
    (net, bx)
}

/// The tightest true claims about [`identity_net`]: concrete bounds equal to the box, forms
/// `y_j = x_j`, logit-difference bounds `lo_g − hi_j`; each is attained at some vertex.
fn tight_identity_claims(bx: &InputBox) -> (Claims, LayerBounds) {
    let ident = || LinearBounds::new(2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]);
    let layer = LayerBounds {
        lower: ident(),
        upper: ident(),
        lo: bx.lo().to_vec(),
        hi: bx.hi().to_vec(),
    };
    let (lo, hi) = (bx.lo(), bx.hi());
    // min over the box of y_g − y_j = lo_g − hi_j (exact in f64 for these ends)
    let d = |g: usize, j: usize| lo[g] - hi[j];
    let diff_lower = vec![vec![f64::INFINITY, d(0, 1)], vec![d(1, 0), f64::INFINITY]];
    let margin = vec![d(0, 1), d(1, 0)];
    let robust = margin.iter().map(|&m| (false, m)).collect();
    let not_target = vec![(false, d(1, 0)), (false, d(0, 1))];
    // rows j of the forms for target t: y_j − y_t = x_j − x_t, constant 0
    let forms = (0..2)
        .map(|t| {
            let mut c = vec![0.0; 4];
            for j in (0..2).filter(|&j| j != t) {
                c[j * 2 + j] = 1.0;
                c[j * 2 + t] = -1.0;
            }
            ExactForms::new(&LinearBounds::new(2, c, vec![0.0, 0.0]))
        })
        .collect();
    // λ = 1 on the other class: the combination is y_j − y_t, minimum lo_j − hi_t
    let combos = vec![(0, vec![0.0, 1.0], d(1, 0)), (1, vec![1.0, 0.0], d(0, 1))];
    let properties = vec![
        (
            OutputSpec::Robust { label: 0 },
            OutputProof {
                proven: false,
                margin: d(0, 1),
                class_margins: Some(diff_lower[0].clone()),
                multipliers: None,
            },
        ),
        (
            OutputSpec::NotTarget { target: 0 },
            OutputProof {
                proven: false,
                margin: d(1, 0),
                class_margins: None,
                multipliers: None,
            },
        ),
    ];
    let claims = Claims {
        layers: vec![ExactLayer::new(&layer), ExactLayer::new(&layer)],
        diff_lower,
        margin,
        robust,
        not_target,
        forms,
        combos,
        properties,
    };
    (claims, layer)
}

/// The check has teeth: it compares with zero slack. On [`identity_net`] DeepPoly's own bounds
/// are sound and only a few ulps from the values attained at the vertices; the tightest true
/// claims (equal to the attained values) pass; and every one of them moved one ulp inward
/// (`next_up` on a lower bound, `next_down` on an upper one) is caught at some vertex.
#[test]
fn zero_slack_detects_a_bound_one_ulp_inward() {
    let (net, bx) = identity_net();
    let dp = DeepPoly::run(&net, &bx).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let exact = ExactNet::new(&net);
    let vertices = points(&bx, &mut rng, 0, &[]);
    let passes = |c: &Claims| vertices.iter().all(|x| c.check(&exact, x).is_ok());
    assert!(passes(&Claims::collect(&dp, &mut rng)));

    // DeepPoly is sound here, and within a few ulps of the attained values: a rounding-level
    // unsoundness would be of the same size as this gap, far below the old tests' 1e-9.
    for lb in dp.layers() {
        for j in 0..2 {
            let below = ulps_between(lb.lo[j], bx.lo()[j]);
            let above = ulps_between(bx.hi()[j], lb.hi[j]);
            assert!(
                (1..=32).contains(&below),
                "{below}: lo {} vs {}",
                lb.lo[j],
                bx.lo()[j]
            );
            assert!(
                (1..=32).contains(&above),
                "{above}: hi {} vs {}",
                lb.hi[j],
                bx.hi()[j]
            );
        }
    }
    let margins = dp.logit_difference_lower_bounds(0).unwrap();
    assert!(
        (1..=32).contains(&ulps_between(margins[1], -0.75)),
        "{}",
        margins[1]
    );

    let (tight, layer) = tight_identity_claims(&bx);
    assert!(passes(&tight), "the attained values are true bounds");

    // one ulp inward, claim by claim
    let mut moved: Vec<(String, Claims)> = Vec::new();
    let mut push = |what: String, edit: &dyn Fn(&mut Claims)| {
        let mut c = tight.clone();
        edit(&mut c);
        moved.push((what, c));
    };
    type LayerEdit = fn(&mut LayerBounds, usize);
    let layer_edits: [(&str, LayerEdit); 6] = [
        ("lo", |lb, j| lb.lo[j] = lb.lo[j].next_up()),
        ("hi", |lb, j| lb.hi[j] = lb.hi[j].next_down()),
        ("lower constant", |lb, j| {
            lb.lower = moved_form(&lb.lower, j, None, f64::next_up)
        }),
        ("upper constant", |lb, j| {
            lb.upper = moved_form(&lb.upper, j, None, f64::next_down)
        }),
        ("lower coefficient", |lb, j| {
            lb.lower = moved_form(&lb.lower, j, Some(j), f64::next_up)
        }),
        ("upper coefficient", |lb, j| {
            lb.upper = moved_form(&lb.upper, j, Some(j), f64::next_down)
        }),
    ];
    for k in 0..2 {
        for j in 0..2 {
            for (name, edit) in layer_edits {
                let mut lb = layer.clone();
                edit(&mut lb, j);
                push(format!("layer {k} neuron {j} {name}"), &|c| {
                    c.layers[k] = ExactLayer::new(&lb)
                });
            }
        }
    }
    for g in 0..2 {
        let j = 1 - g;
        push(format!("diff_lower[{g}][{j}]"), &|c| {
            c.diff_lower[g][j] = c.diff_lower[g][j].next_up()
        });
        push(format!("margin[{g}]"), &|c| {
            c.margin[g] = c.margin[g].next_up()
        });
        push(format!("robust[{g}]"), &|c| {
            c.robust[g].1 = c.robust[g].1.next_up()
        });
        push(format!("robust[{g}] proven"), &|c| c.robust[g].0 = true);
        push(format!("not_target[{g}]"), &|c| {
            c.not_target[g].1 = c.not_target[g].1.next_up()
        });
        push(format!("combos[{g}]"), &|c| {
            c.combos[g].2 = c.combos[g].2.next_up()
        });
        push(format!("properties[{g}]"), &|c| {
            c.properties[g].1.margin = c.properties[g].1.margin.next_up()
        });
    }
    push("forms[0] row 1 constant".into(), &|c| {
        c.forms[0].consts[1] = rat(f64::from_bits(1))
    });
    push("properties[0] class margin".into(), &|c| {
        let cm = c.properties[0].1.class_margins.as_mut().unwrap();
        cm[1] = cm[1].next_up();
    });
    for (what, c) in &moved {
        assert!(!passes(c), "{what} moved one ulp inward was not caught");
    }
    assert_eq!(moved.len(), 4 * 6 + 2 * 7 + 2);
}

/// `form` with row `r`'s constant (`coeff = None`) or coefficient `coeff` replaced by `f(v)`.
fn moved_form(
    form: &LinearBounds,
    r: usize,
    coeff: Option<usize>,
    f: fn(f64) -> f64,
) -> LinearBounds {
    let mut coeffs: Vec<f64> = (0..form.rows())
        .flat_map(|i| form.coeffs(i).to_vec())
        .collect();
    let mut consts: Vec<f64> = (0..form.rows()).map(|i| form.constant(i)).collect();
    match coeff {
        Some(t) => coeffs[r * form.dim() + t] = f(coeffs[r * form.dim() + t]),
        None => consts[r] = f(consts[r]),
    }
    LinearBounds::new(form.dim(), coeffs, consts)
}

/// A rounding error the test must see: `Σ_j λ_j (y_j − y_t)` with `λ = (0, 0.1, 0.3)` and
/// `y = (0, 3x, −x)` cancels almost exactly. In `f64`, `0.1·3 − 0.3` is `2^−54` (5.6e-17), but
/// over the reals (with the doubles 0.1 and 0.3) it is `2^−55` (2.8e-17): the rounded
/// combination overstates the value by 100%. A lower bound that forgot this error would claim
/// `2^−54` at `x = 1`; the exact check rejects that claim and accepts DeepPoly's.
#[test]
fn cancelling_multiplier_combination_is_checked_exactly() {
    let layer = Affine::new(0, 3, 1, vec![0.0, 3.0, -1.0], vec![0.0; 3]).unwrap();
    let net = Network::new(vec![layer]).unwrap();
    let bx = InputBox::new(vec![1.0], vec![1.0]).unwrap();
    let dp = DeepPoly::run(&net, &bx).unwrap();
    let exact = ExactNet::new(&net);
    let logits = exact.pre_activations(&[rat(1.0)]).pop().unwrap();
    let lambda = [0.0, 0.1, 0.3];
    let value = combination(&lambda, 0, &logits);
    assert_eq!(value, dyadic(1, 55));
    let naive = 0.1 * 3.0 - 0.3;
    assert_eq!(naive, 2f64.powi(-54));
    assert!(
        rat(naive) > value,
        "the rounded combination is not a sound bound"
    );
    let bound = dp.difference_combination_lower_bound(0, &lambda).unwrap();
    assert!(rat(bound) <= value, "DeepPoly: {bound:e} > 2^-55");
}
