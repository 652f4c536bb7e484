//! Helpers of the reader: linear-term arithmetic on enclosures, the DNF expansion of the
//! asserts, and intersecting bounds into boxes.

use super::number::Iv;
use super::{Atom, Formula, Lin, MAX_DISJUNCTS, OutputConstraint, VnnlibError};
use std::collections::HashMap;

/// Intersects a bound atom into the box (`lo`/`hi` keep, per input, the tightest enclosure:
/// the largest lower and the smallest upper), or appends an output constraint.
pub(super) fn apply_atom(
    a: &Atom,
    lo: &mut [Option<Iv>],
    hi: &mut [Option<Iv>],
    out: &mut Vec<OutputConstraint>,
) {
    match a {
        Atom::Bound { var, lower, value } => {
            let slot = if *lower { &mut lo[*var] } else { &mut hi[*var] };
            *slot = Some(match *slot {
                None => *value,
                // max (lower) / min (upper) of two enclosed numbers, endpoint-wise
                Some(old) if *lower => Iv {
                    lo: old.lo.max(value.lo),
                    hi: old.hi.max(value.hi),
                },
                Some(old) => Iv {
                    lo: old.lo.min(value.lo),
                    hi: old.hi.min(value.hi),
                },
            });
        }
        Atom::Output(c) => out.push(c.clone()),
    }
}

/// Checks that the declared indices are `0..n` and returns `n` (≥ 1).
pub(super) fn contiguous(map: &HashMap<usize, usize>, kind: &str) -> Result<usize, VnnlibError> {
    let n = map.len();
    if n == 0 {
        return Err(VnnlibError::Declaration {
            line: 1,
            detail: format!("no {kind}_i variables declared"),
        });
    }
    if let Some((&i, &line)) = map.iter().filter(|(i, _)| **i >= n).min() {
        return Err(VnnlibError::Declaration {
            line,
            detail: format!(
                "{kind}_{i} is declared but some {kind}_k with k < {i} is not ({kind} must be numbered from 0 without gaps)"
            ),
        });
    }
    Ok(n)
}

pub(super) fn dnf(f: &Formula, line: usize) -> Result<Vec<Vec<usize>>, VnnlibError> {
    match f {
        Formula::Atom(a) => Ok(vec![vec![*a]]),
        Formula::Or(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(dnf(s, line)?);
                if out.len() > MAX_DISJUNCTS {
                    return Err(VnnlibError::TooLarge { line });
                }
            }
            Ok(out)
        }
        Formula::And(subs) => {
            let mut acc = vec![Vec::new()];
            for s in subs {
                acc = product(&acc, &dnf(s, line)?, line)?;
            }
            Ok(acc)
        }
    }
}

pub(super) fn product(
    a: &[Vec<usize>],
    b: &[Vec<usize>],
    line: usize,
) -> Result<Vec<Vec<usize>>, VnnlibError> {
    if a.len().saturating_mul(b.len()) > MAX_DISJUNCTS {
        return Err(VnnlibError::TooLarge { line });
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut t = x.clone();
            t.extend_from_slice(y);
            out.push(t);
        }
    }
    Ok(out)
}

pub(super) fn overflow(line: usize) -> VnnlibError {
    VnnlibError::BadNumber {
        text: "(term)".into(),
        reason: "a coefficient overflows f64".into(),
        line,
    }
}

pub(super) fn neg(mut a: Lin) -> Lin {
    a.terms.values_mut().for_each(|v| *v = v.negated());
    a.c = a.c.negated();
    a
}

pub(super) fn add(mut a: Lin, b: Lin, line: usize) -> Result<Lin, VnnlibError> {
    for (v, k) in b.terms {
        let e = a.terms.entry(v).or_insert(Iv::point(0.0));
        *e = e.plus(k).ok_or_else(|| overflow(line))?;
    }
    a.c = a.c.plus(b.c).ok_or_else(|| overflow(line))?;
    Ok(a)
}

pub(super) fn sub(a: Lin, b: Lin, line: usize) -> Result<Lin, VnnlibError> {
    add(a, neg(b), line)
}

pub(super) fn scale(mut a: Lin, k: Iv, line: usize) -> Result<Lin, VnnlibError> {
    for v in a.terms.values_mut() {
        *v = v.times(k).ok_or_else(|| overflow(line))?;
    }
    a.c = a.c.times(k).ok_or_else(|| overflow(line))?;
    Ok(a)
}
