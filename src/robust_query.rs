//! Robustness-shaped VNN-LIB queries (docs/method.md eq. (77)): a query whose every region is
//! "input in a box, and `∨_{j ≠ L} (Y_j ≥ Y_L)`" is exactly the robustness property
//! `spec::Property { input: box, output: OutputSpec::Robust { label: L } }` per region, so
//! Algorithm 1 (preimages, forward search) can run on it instead of the split-proof search of
//! [`crate::quantize_query`].
//!
//! Accepted: each disjunct of a region's output condition is one constraint
//! `a·y + c ≥ 0` with `a = e_j − e_L` exactly (coefficient +1 on `Y_j`, −1 on `Y_L`, no
//! coefficient error), `c = 0` exactly, and the disjuncts cover **every** `j ≠ L` for one `L`.
//! The reader turns `(>= Y_j Y_L)`, `(<= Y_L Y_j)`, `(<= (- Y_L Y_j) 0)` and the like into
//! that form. A strict comparison (`>`) is read as non-strict, as the reader documents: the
//! counterexample set only grows, so proving `y_L − y_j > 0` (what `Robust` proves) refutes
//! both. Refused (with the reason): a disjunct with several constraints, a non-zero constant,
//! other coefficients, two different `L` in one region, or a subset of the `j ≠ L` (that is a
//! weaker property than `Robust`; the caller falls back to the split-proof route).
//!
//! The box is the reader's **outer** box (widened outward: it contains the exact box of the
//! file), the one `verify_query` proves on.

use crate::spec::{InputBox, OutputSpec, Property};
use crate::vnnlib::{OutputConstraint, Query};

/// The `(j, L)` of a constraint `y_j − y_L ≥ 0` (exactly), or why it is not one.
fn pair(c: &OutputConstraint) -> Result<(usize, usize), String> {
    let line = c.line;
    if c.constant != (0.0, 0.0) {
        return Err(format!(
            "line {line}: the output constraint has a non-zero constant"
        ));
    }
    if c.errs.iter().any(|&e| e != 0.0) {
        return Err(format!("line {line}: an output coefficient is not exact"));
    }
    let mut plus = None;
    let mut minus = None;
    for (k, &a) in c.coeffs.iter().enumerate() {
        if a == 0.0 {
            continue;
        }
        if a == 1.0 && plus.is_none() {
            plus = Some(k);
        } else if a == -1.0 && minus.is_none() {
            minus = Some(k);
        } else {
            return Err(format!(
                "line {line}: the output constraint is not Y_j ≥ Y_L (coefficient {a} on Y_{k})"
            ));
        }
    }
    match (plus, minus) {
        (Some(j), Some(l)) => Ok((j, l)),
        _ => Err(format!(
            "line {line}: the output constraint does not compare two outputs Y_j ≥ Y_L"
        )),
    }
}

/// The robustness properties of `query`, one per region (its outer box and `Robust { L }`), or
/// the reason the query is not robustness-shaped (module documentation).
pub fn robust_properties(query: &Query) -> Result<Vec<Property>, String> {
    let m = query.num_outputs;
    if m < 2 {
        return Err("fewer than two outputs".into());
    }
    if query.regions.is_empty() {
        return Err("no input region".into());
    }
    let mut props = Vec::with_capacity(query.regions.len());
    for (r, region) in query.regions.iter().enumerate() {
        let mut label = None;
        let mut covered = vec![false; m];
        for conj in &region.output {
            let [c] = conj.as_slice() else {
                return Err(format!(
                    "region {r}: a disjunct of the output condition has {} constraints (one Y_j ≥ Y_L each is needed)",
                    conj.len()
                ));
            };
            let (j, l) = pair(c)?;
            if *label.get_or_insert(l) != l {
                return Err(format!(
                    "region {r}: the output constraints compare with different outputs (Y_{} and Y_{l})",
                    label.unwrap_or(l)
                ));
            }
            covered[j] = true;
        }
        let Some(label) = label else {
            return Err(format!("region {r}: no output constraint"));
        };
        let missing: Vec<String> = (0..m)
            .filter(|&j| j != label && !covered[j])
            .map(|j| format!("Y_{j}"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "region {r}: the output condition covers only some j ≠ {label} (missing {}): weaker than robustness",
                missing.join(", ")
            ));
        }
        let input = InputBox::new(region.lo.clone(), region.hi.clone())
            .map_err(|e| format!("region {r}: {e}"))?;
        props.push(Property {
            input,
            output: OutputSpec::Robust { label },
        });
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(out: &str) -> Query {
        crate::vnnlib::parse(&format!(
            "(declare-const X_0 Real)(declare-const X_1 Real)\
             (declare-const Y_0 Real)(declare-const Y_1 Real)(declare-const Y_2 Real)\
             (assert (>= X_0 0.1))(assert (<= X_0 0.3))(assert (>= X_1 0))(assert (<= X_1 1))\
             (assert {out})"
        ))
        .unwrap()
    }

    fn label(out: &str) -> Result<usize, String> {
        let p = robust_properties(&q(out))?;
        assert_eq!(p.len(), 1);
        match p[0].output {
            OutputSpec::Robust { label } => Ok(label),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn the_competition_form_is_robust() {
        assert_eq!(label("(or (and (>= Y_0 Y_1)) (and (>= Y_2 Y_1)))"), Ok(1));
        assert_eq!(label("(or (>= Y_1 Y_0) (>= Y_2 Y_0))"), Ok(0));
        let p = robust_properties(&q("(or (>= Y_0 Y_2) (>= Y_1 Y_2))")).unwrap();
        // the reader's outer box (0.1 and 0.3 are not floats: widened outward)
        assert!(p[0].input.lo()[0] <= 0.1 && p[0].input.hi()[0] >= 0.3);
        assert_eq!(p[0].input.lo()[1], 0.0);
    }

    #[test]
    fn equivalent_forms_are_robust() {
        assert_eq!(label("(or (<= Y_2 Y_0) (<= Y_2 Y_1))"), Ok(2));
        assert_eq!(label("(or (<= (- Y_1 Y_0) 0) (<= (- Y_1 Y_2) 0))"), Ok(1));
        // strict comparisons read as non-strict
        assert_eq!(label("(or (> Y_0 Y_1) (> Y_2 Y_1))"), Ok(1));
        // a repeated disjunct is harmless
        assert_eq!(label("(or (>= Y_0 Y_1) (>= Y_2 Y_1) (>= Y_0 Y_1))"), Ok(1));
    }

    #[test]
    fn an_input_disjunction_gives_one_property_per_box() {
        let query = crate::vnnlib::parse(
            "(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\
             (assert (or (and (>= X_0 0) (<= X_0 0.5)) (and (>= X_0 0.5) (<= X_0 1))))\
             (assert (>= Y_1 Y_0))",
        )
        .unwrap();
        let p = robust_properties(&query).unwrap();
        assert_eq!(p.len(), 2);
        assert!(
            p.iter()
                .all(|p| p.output == OutputSpec::Robust { label: 0 })
        );
    }

    #[test]
    fn other_shapes_are_refused_with_the_reason() {
        let e = |out: &str| robust_properties(&q(out)).unwrap_err();
        assert!(
            e("(>= Y_0 Y_1)").contains("missing Y_2"),
            "{}",
            e("(>= Y_0 Y_1)")
        );
        assert!(e("(or (>= Y_0 Y_1) (>= Y_2 Y_0))").contains("different outputs"));
        assert!(e("(or (>= Y_0 (+ Y_1 0.5)) (>= Y_2 Y_1))").contains("constant"));
        assert!(e("(or (>= Y_0 (* 2 Y_1)) (>= Y_2 Y_1))").contains("coefficient"));
        assert!(e("(or (and (>= Y_0 Y_1) (>= Y_2 Y_1)))").contains("2 constraints"));
        assert!(e("(or (>= Y_0 0) (>= Y_2 Y_1))").contains("two outputs"));
        assert!(e("(or (>= Y_0 0.5) (>= Y_2 Y_1))").contains("constant"));
    }
}
