//! VNN-COMP counterexample files: `((X_0 v) (X_1 v) … (Y_0 v) …)`, optionally preceded by the
//! word `sat` (the competition's result files), read back so that a reported counterexample can
//! be re-evaluated independently of the run that wrote it.

use super::VnnlibError;
use super::lexer::{Sexp, parse_sexps};

/// The values of a counterexample file: inputs `X_0 … X_{n−1}` and outputs `Y_0 … Y_{m−1}`
/// (each index exactly once, numbered from 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Input values, by index.
    pub x: Vec<f64>,
    /// Output values, by index.
    pub y: Vec<f64>,
}

/// Reads a counterexample file (numbers must be finite decimals; they are taken as the
/// nearest float, which is exact for files written with shortest round-trip formatting).
pub fn parse_assignment(text: &str) -> Result<Assignment, VnnlibError> {
    let sexps = parse_sexps(text)?;
    let bad = |line: usize, detail: &str| VnnlibError::Syntax {
        line,
        detail: detail.to_string(),
    };
    let mut items = sexps.iter();
    let mut first = items.next();
    if let Some(Sexp::Atom { text, .. }) = first
        && text == "sat"
    {
        first = items.next();
    }
    let Some(Sexp::List { items: pairs, line }) = first else {
        return Err(bad(1, "expected ((X_0 v) ... (Y_0 v) ...)"));
    };
    if let Some(extra) = items.next() {
        return Err(bad(extra.line(), "text after the assignment"));
    }
    let mut xs: Vec<Option<f64>> = Vec::new();
    let mut ys: Vec<Option<f64>> = Vec::new();
    for p in pairs {
        let (Sexp::List { items: kv, line }, true) =
            (p, matches!(p, Sexp::List { items, .. } if items.len() == 2))
        else {
            return Err(bad(p.line(), "expected a pair (NAME value)"));
        };
        let (Sexp::Atom { text: name, .. }, Sexp::Atom { text: val, .. }) = (&kv[0], &kv[1]) else {
            return Err(bad(*line, "expected a pair (NAME value)"));
        };
        let v: f64 = val
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && super::number::looks_numeric(val))
            .ok_or_else(|| VnnlibError::BadNumber {
                text: val.clone(),
                reason: "not a finite decimal".into(),
                line: *line,
            })?;
        let (vec, idx) = match name.split_at_checked(2) {
            Some(("X_", i)) => (&mut xs, i),
            Some(("Y_", i)) => (&mut ys, i),
            _ => {
                return Err(VnnlibError::UnknownVariable {
                    name: name.clone(),
                    line: *line,
                });
            }
        };
        let i: usize = idx
            .parse()
            .ok()
            .filter(|&i| i <= super::MAX_INDEX)
            .ok_or_else(|| VnnlibError::UnknownVariable {
                name: name.clone(),
                line: *line,
            })?;
        if vec.len() <= i {
            vec.resize(i + 1, None);
        }
        if vec[i].replace(v).is_some() {
            return Err(bad(*line, &format!("{name} is given twice")));
        }
    }
    let dense = |v: Vec<Option<f64>>, kind: &str| -> Result<Vec<f64>, VnnlibError> {
        v.iter()
            .enumerate()
            .map(|(i, o)| o.ok_or_else(|| bad(*line, &format!("{kind}_{i} is missing"))))
            .collect()
    };
    Ok(Assignment {
        x: dense(xs, "X")?,
        y: dense(ys, "Y")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_competition_writes() {
        let a = parse_assignment("sat\n((X_0 0.5)\n (X_1 -0.0)\n (Y_0 1e-3))\n").unwrap();
        assert_eq!(a.x, vec![0.5, 0.0]);
        assert_eq!(a.y, vec![1e-3]);
        for bad in [
            "((X_1 0.5))",
            "((X_0 0.5) (X_0 0.5))",
            "((X_0 inf))",
            "((Z_0 1))",
            "((X_0 1) (Y_0))",
            "((X_0 1)) extra",
            "(X_0 1",
        ] {
            assert!(parse_assignment(bad).is_err(), "{bad}");
        }
    }
}
