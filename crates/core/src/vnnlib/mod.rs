//! VNN-LIB properties (the format of the VNN-COMP benchmarks), read into a [`Query`].
//!
//! # Semantics
//! `(declare-const X_i Real)` / `(declare-const Y_j Real)` name the network's inputs
//! (flattened row-major over the ONNX input shape) and outputs. The `assert`s together
//! describe a **counterexample**: an input satisfying the input constraints whose output
//! satisfies the output constraints. The property **holds** iff no such input exists.
//!
//! # The fragment read here
//! * comparisons `<=`, `>=`, `<`, `>` between linear terms: numbers (decimal or scientific),
//!   variables, `(+ …)`, `(- …)` (unary and n-ary), `(* c t)` (at most one non-constant
//!   factor). **Strict comparisons are read as non-strict** for proofs: the counterexample set
//!   only grows, so a refutation of the non-strict query also refutes the strict one; a
//!   counterexample must satisfy the strict comparison (the flag is kept, [`OutputConstraint::strict`]);
//! * `and` / `or` nested freely (the whole conjunction of asserts is expanded into disjunctive
//!   normal form, at most [`MAX_DISJUNCTS`] disjuncts);
//! * a comparison over inputs only must be a bound `X_i ≥ c` / `X_i ≤ c` (coefficient ±1);
//!   one over outputs only is a linear output constraint; one over both is refused.
//!
//! Each disjunct's input bounds form a box; disjuncts with the same input bounds are grouped
//! into one [`Region`] (a disjunction of boxes gives one region per box, each its own
//! sub-property). A region's output condition is a disjunction of conjunctions of
//! constraints `a·y + c ≥ 0` (docs/method.md, eq. (48)).
//!
//! # Rounding
//! Numbers are enclosures of the exact decimals ([`number`]). A region carries an **outer**
//! box (contains the exact box: proofs run on it) and an **inner** box (inside the exact box:
//! counterexamples are drawn from it). Output coefficients are a float with an error bound and
//! the constant an interval, so a refutation can be made valid for every value in the
//! enclosure, and a counterexample checked against the worst one (SOUNDNESS.md).

mod assignment;
mod expand;
mod lexer;
pub mod number;

pub use assignment::{Assignment, parse_assignment};

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

use expand::{add, apply_atom, contiguous, dnf, neg, overflow, product, scale, sub};
use lexer::{Sexp, parse_sexps};
use number::{Iv, looks_numeric, parse_number};

/// Largest number of disjuncts the DNF expansion may produce.
pub const MAX_DISJUNCTS: usize = 10_000;
/// Largest number of numbers the expanded query may hold (disjuncts × outputs, boxes × inputs).
const MAX_CELLS: usize = 50_000_000;
/// Largest variable index accepted (`X_i`, `Y_j`).
pub const MAX_INDEX: usize = 50_000_000;

/// Why a VNN-LIB file was refused. Every variant names the line (1-based).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum VnnlibError {
    /// A `)` without `(`, or a `(` never closed.
    #[error("line {line}: unbalanced parentheses: {detail}")]
    Unbalanced {
        /// Where.
        line: usize,
        /// Which kind.
        detail: String,
    },
    /// Nesting deeper than the reader accepts.
    #[error("line {line}: nesting deeper than {} levels", lexer::MAX_DEPTH)]
    TooDeep {
        /// Where.
        line: usize,
    },
    /// A variable that is not declared (or not of the form `X_i` / `Y_j`).
    #[error(
        "line {line}: unknown variable `{name}` (declare it with (declare-const {name} Real); names are X_i and Y_j)"
    )]
    UnknownVariable {
        /// The name.
        name: String,
        /// Where.
        line: usize,
    },
    /// A constraint over inputs that is not a bound on one input.
    #[error(
        "line {line}: non-box input constraint `{text}` (inputs only take bounds X_i <= c / X_i >= c)"
    )]
    NonBoxInput {
        /// The constraint.
        text: String,
        /// Where.
        line: usize,
    },
    /// A constraint with both inputs and outputs.
    #[error(
        "line {line}: constraint `{text}` mixes inputs X and outputs Y (a Y in an input constraint or an X in an output constraint)"
    )]
    MixedConstraint {
        /// The constraint.
        text: String,
        /// Where.
        line: usize,
    },
    /// An operator, command or form outside the fragment.
    #[error("line {line}: unsupported construct: {construct}")]
    Unsupported {
        /// Where.
        line: usize,
        /// What.
        construct: String,
    },
    /// A malformed number.
    #[error("line {line}: bad number `{text}`: {reason}")]
    BadNumber {
        /// The token.
        text: String,
        /// Why.
        reason: String,
        /// Where.
        line: usize,
    },
    /// A declaration problem (duplicate, type, gaps in the numbering).
    #[error("line {line}: {detail}")]
    Declaration {
        /// Where.
        line: usize,
        /// What.
        detail: String,
    },
    /// Some input has no lower or no upper bound in some disjunct.
    #[error("line {line}: input {var} has no {which} bound")]
    MissingBound {
        /// The variable (`X_i`).
        var: String,
        /// `lower` or `upper`.
        which: &'static str,
        /// Line of its declaration.
        line: usize,
    },
    /// The DNF expansion would be too large.
    #[error(
        "line {line}: the and/or structure expands to more than {MAX_DISJUNCTS} disjuncts (or too many numbers)"
    )]
    TooLarge {
        /// Line of the assert that crossed the limit.
        line: usize,
    },
    /// Any other syntax error.
    #[error("line {line}: {detail}")]
    Syntax {
        /// Where.
        line: usize,
        /// What.
        detail: String,
    },
}

/// One linear output constraint `a·y + c ≥ 0` (or `> 0` when `strict`), over every output.
///
/// The exact coefficients and constant are the rationals of the file; what is stored encloses
/// them: `|a_j − coeffs[j]| ≤ errs[j]` and `constant.0 ≤ c ≤ constant.1`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputConstraint {
    /// `a`, one per output (dense).
    pub coeffs: Vec<f64>,
    /// Error bounds of the coefficients (0 where the decimal was exact).
    pub errs: Vec<f64>,
    /// Enclosure `[lo, hi]` of the exact constant `c`.
    pub constant: (f64, f64),
    /// The comparison was strict (`<`, `>`): a counterexample must satisfy `> 0`.
    pub strict: bool,
    /// Line of the comparison.
    pub line: usize,
}

/// An input box of one region (outer and inner enclosure of the exact box) and the
/// disjunction of output conjunctions that makes a counterexample there.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Lower ends, rounded down: the outer box contains the exact box (proofs use it).
    pub lo: Vec<f64>,
    /// Upper ends, rounded up.
    pub hi: Vec<f64>,
    /// Lower ends, rounded up: points of the inner box lie in the exact box (counterexamples).
    pub inner_lo: Vec<f64>,
    /// Upper ends, rounded down.
    pub inner_hi: Vec<f64>,
    /// The counterexample condition on the outputs: a disjunction of conjunctions.
    pub output: Vec<Vec<OutputConstraint>>,
}

impl Region {
    /// Whether the inner box is non-empty (a float point of the exact box is known).
    pub fn inner_nonempty(&self) -> bool {
        self.inner_lo
            .iter()
            .zip(&self.inner_hi)
            .all(|(l, h)| l <= h)
    }
}

/// A parsed VNN-LIB query: the property holds iff no region has a counterexample.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Number of declared inputs `X_0 … X_{n−1}`.
    pub num_inputs: usize,
    /// Number of declared outputs `Y_0 … Y_{m−1}`.
    pub num_outputs: usize,
    /// The sub-properties (an input box each); empty boxes are dropped.
    pub regions: Vec<Region>,
}

/// Parses VNN-LIB text (see the module documentation for the fragment).
pub fn parse(text: &str) -> Result<Query, VnnlibError> {
    let sexps = parse_sexps(text)?;
    Reader::default().read(&sexps)
}

/// Parses VNN-LIB bytes (must be UTF-8).
pub fn parse_bytes(bytes: &[u8]) -> Result<Query, VnnlibError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        VnnlibError::Syntax {
            line,
            detail: "not UTF-8 text".into(),
        }
    })?;
    parse(text)
}

/// Runs the parser on arbitrary bytes for the fuzz target: an error or a query, never a panic.
pub fn fuzz_parse(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = parse_assignment(text);
    }
    if let Ok(q) = parse_bytes(bytes) {
        for r in &q.regions {
            assert_eq!(r.lo.len(), q.num_inputs);
            assert!(r.lo.iter().zip(&r.hi).all(|(l, h)| l <= h));
            for c in r.output.iter().flatten() {
                assert_eq!(c.coeffs.len(), q.num_outputs);
                assert!(c.constant.0 <= c.constant.1);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Var {
    X(usize),
    Y(usize),
}

/// A linear term: enclosed coefficients per variable and an enclosed constant.
#[derive(Debug, Clone)]
struct Lin {
    terms: BTreeMap<Var, Iv>,
    c: Iv,
}

impl Lin {
    fn constant(c: Iv) -> Self {
        Lin {
            terms: BTreeMap::new(),
            c,
        }
    }
}

/// One comparison, normalised to `expr ≥ 0`.
#[derive(Debug, Clone)]
enum Atom {
    /// `X_i ≥ b` (lower) or `X_i ≤ b` (upper), `b` enclosed.
    Bound { var: usize, lower: bool, value: Iv },
    /// Output constraint.
    Output(OutputConstraint),
}

#[derive(Debug, Clone)]
enum Formula {
    Atom(usize),
    And(Vec<Formula>),
    Or(Vec<Formula>),
}

#[derive(Default)]
struct Reader {
    /// declared inputs / outputs: index → line
    xs: HashMap<usize, usize>,
    ys: HashMap<usize, usize>,
    atoms: Vec<Atom>,
    /// (formula, line of its assert)
    asserts: Vec<(Formula, usize)>,
}

fn syntax(line: usize, detail: impl Into<String>) -> VnnlibError {
    VnnlibError::Syntax {
        line,
        detail: detail.into(),
    }
}

/// `X_12` → `Var::X(12)` (no sign, no leading `+`); other names → `None`.
fn parse_var_name(name: &str) -> Option<Var> {
    let (kind, rest) = name.split_at_checked(2)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 9 {
        return None;
    }
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    let i: usize = rest.parse().ok()?;
    match kind {
        "X_" => Some(Var::X(i)),
        "Y_" => Some(Var::Y(i)),
        _ => None,
    }
}

impl Reader {
    fn read(mut self, sexps: &[Sexp]) -> Result<Query, VnnlibError> {
        for s in sexps {
            let Sexp::List { items, line } = s else {
                return Err(syntax(
                    s.line(),
                    format!("expected a command, found `{}`", s.brief()),
                ));
            };
            let line = *line;
            let head = match items.first() {
                Some(Sexp::Atom { text, .. }) => text.as_str(),
                _ => return Err(syntax(line, "expected a command such as (assert …)")),
            };
            match head {
                "declare-const" => self.declare(items, line)?,
                "assert" => {
                    if items.len() != 2 {
                        return Err(syntax(line, "assert takes exactly one formula"));
                    }
                    let f = self.formula(&items[1])?;
                    self.asserts.push((f, line));
                }
                other => {
                    return Err(VnnlibError::Unsupported {
                        line,
                        construct: format!("command `{other}`"),
                    });
                }
            }
        }
        self.finish()
    }

    fn declare(&mut self, items: &[Sexp], line: usize) -> Result<(), VnnlibError> {
        let (Some(Sexp::Atom { text: name, .. }), Some(Sexp::Atom { text: ty, .. }), 3) =
            (items.get(1), items.get(2), items.len())
        else {
            return Err(syntax(line, "expected (declare-const NAME Real)"));
        };
        if ty != "Real" {
            return Err(VnnlibError::Unsupported {
                line,
                construct: format!("type `{ty}` of {name} (only Real)"),
            });
        }
        let Some(var) = parse_var_name(name) else {
            return Err(VnnlibError::Declaration {
                line,
                detail: format!("variable `{name}`: names must be X_i (inputs) or Y_j (outputs)"),
            });
        };
        let (map, i) = match var {
            Var::X(i) => (&mut self.xs, i),
            Var::Y(i) => (&mut self.ys, i),
        };
        if i > MAX_INDEX {
            return Err(VnnlibError::Declaration {
                line,
                detail: format!("variable `{name}`: index above {MAX_INDEX}"),
            });
        }
        if let Some(prev) = map.insert(i, line) {
            return Err(VnnlibError::Declaration {
                line,
                detail: format!("`{name}` is declared twice (first on line {prev})"),
            });
        }
        Ok(())
    }

    fn formula(&mut self, s: &Sexp) -> Result<Formula, VnnlibError> {
        let Sexp::List { items, line } = s else {
            return Err(VnnlibError::Unsupported {
                line: s.line(),
                construct: format!("formula `{}` (expected a comparison, and, or)", s.brief()),
            });
        };
        let line = *line;
        let head = match items.first() {
            Some(Sexp::Atom { text, .. }) => text.as_str(),
            _ => {
                return Err(syntax(
                    line,
                    format!("expected an operator in `{}`", s.brief()),
                ));
            }
        };
        match head {
            "and" | "or" => {
                let subs = items[1..]
                    .iter()
                    .map(|it| self.formula(it))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if head == "and" {
                    Formula::And(subs)
                } else {
                    Formula::Or(subs)
                })
            }
            "<=" | ">=" | "<" | ">" => {
                if items.len() != 3 {
                    return Err(VnnlibError::Unsupported {
                        line,
                        construct: format!("`{head}` with {} arguments (only 2)", items.len() - 1),
                    });
                }
                let a = self.term(&items[1])?;
                let b = self.term(&items[2])?;
                // expr ≥ 0 with expr = a − b for ≥/>, b − a for ≤/<
                let (p, n) = if head.starts_with('>') {
                    (a, b)
                } else {
                    (b, a)
                };
                let expr = sub(p, n, line)?;
                let atom = self.atom(expr, head.len() == 1, line, s)?;
                self.atoms.push(atom);
                Ok(Formula::Atom(self.atoms.len() - 1))
            }
            other => Err(VnnlibError::Unsupported {
                line,
                construct: format!("operator `{other}` in a formula"),
            }),
        }
    }

    fn atom(&self, expr: Lin, strict: bool, line: usize, s: &Sexp) -> Result<Atom, VnnlibError> {
        let has_x = expr.terms.keys().any(|v| matches!(v, Var::X(_)));
        let has_y = expr.terms.keys().any(|v| matches!(v, Var::Y(_)));
        match (has_x, has_y) {
            (true, true) => Err(VnnlibError::MixedConstraint {
                text: s.brief(),
                line,
            }),
            (false, false) => Err(VnnlibError::Unsupported {
                line,
                construct: format!("comparison without variables `{}`", s.brief()),
            }),
            (true, false) => {
                let non_box = || VnnlibError::NonBoxInput {
                    text: s.brief(),
                    line,
                };
                if expr.terms.len() != 1 {
                    return Err(non_box());
                }
                let (&var, &k) = expr.terms.iter().next().ok_or_else(non_box)?;
                let Var::X(i) = var else {
                    return Err(non_box());
                };
                // k·X + c ≥ 0 with k = ±1 exactly: X ≥ −c, or X ≤ c
                if k == Iv::point(1.0) {
                    Ok(Atom::Bound {
                        var: i,
                        lower: true,
                        value: expr.c.negated(),
                    })
                } else if k == Iv::point(-1.0) {
                    Ok(Atom::Bound {
                        var: i,
                        lower: false,
                        value: expr.c,
                    })
                } else {
                    Err(non_box())
                }
            }
            (false, true) => {
                // only as long as the largest index used; padded to every output in `finish`
                let m = expr
                    .terms
                    .keys()
                    .filter_map(|v| match v {
                        Var::Y(j) => Some(j + 1),
                        Var::X(_) => None,
                    })
                    .max()
                    .unwrap_or(0);
                let mut coeffs = vec![0.0; m];
                let mut errs = vec![0.0; m];
                for (&v, &k) in &expr.terms {
                    let Var::Y(j) = v else { continue };
                    if k.is_point() {
                        coeffs[j] = k.lo;
                    } else {
                        let mid = k.lo + (k.hi - k.lo) / 2.0;
                        let e = (mid - k.lo).max(k.hi - mid);
                        coeffs[j] = mid;
                        errs[j] = (e * (1.0 + 1e-6)).next_up();
                    }
                }
                Ok(Atom::Output(OutputConstraint {
                    coeffs,
                    errs,
                    constant: (expr.c.lo, expr.c.hi),
                    strict,
                    line,
                }))
            }
        }
    }

    fn term(&self, s: &Sexp) -> Result<Lin, VnnlibError> {
        match s {
            Sexp::Atom { text, line } => {
                if looks_numeric(text) {
                    let v = parse_number(text).map_err(|reason| VnnlibError::BadNumber {
                        text: text.clone(),
                        reason,
                        line: *line,
                    })?;
                    return Ok(Lin::constant(v));
                }
                let unknown = || VnnlibError::UnknownVariable {
                    name: text.clone(),
                    line: *line,
                };
                let var = parse_var_name(text).ok_or_else(unknown)?;
                let declared = match var {
                    Var::X(i) => self.xs.contains_key(&i),
                    Var::Y(j) => self.ys.contains_key(&j),
                };
                if !declared {
                    return Err(unknown());
                }
                let mut l = Lin::constant(Iv::point(0.0));
                l.terms.insert(var, Iv::point(1.0));
                Ok(l)
            }
            Sexp::List { items, line } => {
                let line = *line;
                let head = match items.first() {
                    Some(Sexp::Atom { text, .. }) => text.as_str(),
                    _ => {
                        return Err(syntax(
                            line,
                            format!("expected an operator in `{}`", s.brief()),
                        ));
                    }
                };
                let args = items[1..]
                    .iter()
                    .map(|it| self.term(it))
                    .collect::<Result<Vec<_>, _>>()?;
                if args.is_empty() {
                    return Err(syntax(line, format!("`{head}` without arguments")));
                }
                match head {
                    "+" => {
                        let mut it = args.into_iter();
                        let first = it.next().unwrap_or_else(|| Lin::constant(Iv::point(0.0)));
                        it.try_fold(first, |acc, t| add(acc, t, line))
                    }
                    "-" => {
                        let mut it = args.into_iter();
                        let first = it.next().unwrap_or_else(|| Lin::constant(Iv::point(0.0)));
                        if items.len() == 2 {
                            return Ok(neg(first));
                        }
                        it.try_fold(first, |acc, t| sub(acc, t, line))
                    }
                    "*" => {
                        let mut acc: Option<Lin> = None;
                        let mut k = Iv::point(1.0);
                        for a in args {
                            if a.terms.is_empty() {
                                k = k.times(a.c).ok_or_else(|| overflow(line))?;
                            } else if acc.is_some() {
                                return Err(VnnlibError::Unsupported {
                                    line,
                                    construct: format!("nonlinear product `{}`", s.brief()),
                                });
                            } else {
                                acc = Some(a);
                            }
                        }
                        match acc {
                            None => Ok(Lin::constant(k)),
                            Some(a) => scale(a, k, line),
                        }
                    }
                    other => Err(VnnlibError::Unsupported {
                        line,
                        construct: format!("operator `{other}` in a term"),
                    }),
                }
            }
        }
    }

    fn finish(mut self) -> Result<Query, VnnlibError> {
        let n = contiguous(&self.xs, "X")?;
        let m = contiguous(&self.ys, "Y")?;
        // constraints read before the last Y was declared are shorter: pad with zeros
        for a in &mut self.atoms {
            if let Atom::Output(c) = a {
                c.coeffs.resize(m, 0.0);
                c.errs.resize(m, 0.0);
            }
        }
        // Top-level conjuncts: flatten `and`s; single atoms go straight to the global part.
        let mut global: Vec<usize> = Vec::new();
        let mut complex: Vec<(Formula, usize)> = Vec::new();
        let mut work: Vec<(Formula, usize)> = self.asserts.into_iter().rev().collect();
        while let Some((f, line)) = work.pop() {
            match f {
                Formula::Atom(a) => global.push(a),
                Formula::And(subs) => work.extend(subs.into_iter().rev().map(|s| (s, line))),
                or => complex.push((or, line)),
            }
        }
        // DNF of the complex part: disjuncts as lists of atom ids
        let mut terms: Vec<Vec<usize>> = vec![Vec::new()];
        for (f, line) in &complex {
            let d = dnf(f, *line)?;
            terms = product(&terms, &d, *line)?;
        }
        // global bounds
        let mut glo: Vec<Option<Iv>> = vec![None; n];
        let mut ghi: Vec<Option<Iv>> = vec![None; n];
        let mut gout: Vec<OutputConstraint> = Vec::new();
        for &a in &global {
            apply_atom(&self.atoms[a], &mut glo, &mut ghi, &mut gout);
        }
        // memory budget of the expansion (dense constraints per disjunct, boxes per region)
        let first_line = complex.first().map_or(1, |c| c.1);
        let mut cells = 0usize;
        for t in &terms {
            let outs = gout.len()
                + t.iter()
                    .filter(|&&a| matches!(self.atoms[a], Atom::Output(_)))
                    .count();
            cells = cells.saturating_add(outs.saturating_mul(m).saturating_add(n));
        }
        if cells > MAX_CELLS || terms.len().saturating_mul(n).saturating_mul(4) > MAX_CELLS {
            return Err(VnnlibError::TooLarge { line: first_line });
        }
        // group disjuncts by their input atoms
        let mut groups: Vec<(Vec<usize>, Vec<Vec<OutputConstraint>>)> = Vec::new();
        let mut index: HashMap<Vec<usize>, usize> = HashMap::new();
        for t in terms {
            let mut xs: Vec<usize> = t
                .iter()
                .copied()
                .filter(|&a| matches!(self.atoms[a], Atom::Bound { .. }))
                .collect();
            xs.sort_unstable();
            xs.dedup();
            let mut outs = gout.clone();
            outs.extend(t.iter().filter_map(|&a| match &self.atoms[a] {
                Atom::Output(c) => Some(c.clone()),
                Atom::Bound { .. } => None,
            }));
            let g = *index.entry(xs.clone()).or_insert_with(|| {
                groups.push((xs, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(outs);
        }
        let mut regions = Vec::new();
        for (xs, output) in groups {
            let (mut lo, mut hi) = (glo.clone(), ghi.clone());
            let mut unused = Vec::new();
            for &a in &xs {
                apply_atom(&self.atoms[a], &mut lo, &mut hi, &mut unused);
            }
            let mut region = Region {
                lo: Vec::with_capacity(n),
                hi: Vec::with_capacity(n),
                inner_lo: Vec::with_capacity(n),
                inner_hi: Vec::with_capacity(n),
                output,
            };
            for i in 0..n {
                let missing = |which| VnnlibError::MissingBound {
                    var: format!("X_{i}"),
                    which,
                    line: self.xs.get(&i).copied().unwrap_or(0),
                };
                let l = lo[i].ok_or_else(|| missing("lower"))?;
                let h = hi[i].ok_or_else(|| missing("upper"))?;
                // `+ 0.0` turns a −0 (from negating a 0 constant) into +0
                region.lo.push(l.lo + 0.0);
                region.inner_lo.push(l.hi + 0.0);
                region.hi.push(h.hi + 0.0);
                region.inner_hi.push(h.lo + 0.0);
            }
            // an empty outer box contains no exact point: no counterexample there
            if region.lo.iter().zip(&region.hi).all(|(l, h)| l <= h) {
                regions.push(region);
            }
        }
        Ok(Query {
            num_inputs: n,
            num_outputs: m,
            regions,
        })
    }
}

#[cfg(test)]
mod tests;
