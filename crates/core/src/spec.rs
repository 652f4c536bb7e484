//! Properties ⟨I, O⟩ (paper §2): an input region `I` (a box here) and an output condition `O`.
//!
//! * Local robustness: `I = {x : ‖x − u‖∞ ≤ r} ∩ [0,1]^n`, `O = {y : argmax y = g}`.
//! * Backdoor-freeness (Algorithm 2) uses the same box type with a free trigger patch and
//!   `O = {y : argmax y ≠ t}`; see [`OutputSpec`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Unit roundoff of f64 (`2^-53`), used to widen boxes outward (SOUNDNESS.md row 1).
const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// Why a property could not be built.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SpecError {
    /// The perturbation radius is negative, NaN, infinite, or not a number at all.
    #[error("invalid eps {text:?}: {reason}")]
    Eps {
        /// What the user wrote.
        text: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The box has mismatched lengths, a lower end above an upper end, or non-finite ends.
    #[error("invalid input box: {0}")]
    Box(String),
    /// A trigger patch does not fit the image (or the image is not square).
    #[error("invalid trigger: {0}")]
    Trigger(String),
    /// A class index does not exist in the network's output.
    #[error("class {class} out of range: the network has {classes} outputs")]
    Class {
        /// The class requested.
        class: usize,
        /// Number of logits.
        classes: usize,
    },
}

/// Parses a perturbation radius: a decimal (`0.0078`) or a fraction (`2/255`), in input units.
pub fn parse_eps(text: &str) -> Result<f64, SpecError> {
    let bad = |reason: &str| SpecError::Eps {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    let value = if let Some((num, den)) = t.split_once('/') {
        let n: f64 = num
            .trim()
            .parse()
            .map_err(|_| bad("numerator is not a number"))?;
        let d: f64 = den
            .trim()
            .parse()
            .map_err(|_| bad("denominator is not a number"))?;
        if d == 0.0 || !d.is_finite() {
            return Err(bad("denominator must be a non-zero finite number"));
        }
        n / d
    } else {
        t.parse::<f64>()
            .map_err(|_| bad("not a number (use e.g. 0.0078 or 2/255)"))?
    };
    if !value.is_finite() {
        return Err(bad("must be finite"));
    }
    if value < 0.0 {
        return Err(bad("must be ≥ 0"));
    }
    Ok(value)
}

/// An axis-aligned box of inputs `[lo_i, hi_i]`. Invariant: equal lengths, finite, `lo ≤ hi`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBox", into = "RawBox")]
pub struct InputBox {
    lo: Vec<f64>,
    hi: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct RawBox {
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl TryFrom<RawBox> for InputBox {
    type Error = SpecError;
    fn try_from(r: RawBox) -> Result<Self, SpecError> {
        InputBox::new(r.lo, r.hi)
    }
}

impl From<InputBox> for RawBox {
    fn from(b: InputBox) -> Self {
        RawBox { lo: b.lo, hi: b.hi }
    }
}

impl InputBox {
    /// Builds a box, checking the invariant.
    pub fn new(lo: Vec<f64>, hi: Vec<f64>) -> Result<Self, SpecError> {
        if lo.len() != hi.len() {
            return Err(SpecError::Box(format!(
                "lower end has {} entries, upper end {}",
                lo.len(),
                hi.len()
            )));
        }
        if lo.is_empty() {
            return Err(SpecError::Box("empty box".into()));
        }
        for (i, (&l, &h)) in lo.iter().zip(&hi).enumerate() {
            if !l.is_finite() || !h.is_finite() {
                return Err(SpecError::Box(format!("entry {i} is not finite")));
            }
            if l > h {
                return Err(SpecError::Box(format!("entry {i}: lower {l} > upper {h}")));
            }
        }
        Ok(Self { lo, hi })
    }

    /// The L∞ ball of radius `eps` around `center`, intersected with `[0,1]^n`.
    ///
    /// Soundness: `center` and `eps` are usually rounded images of rationals (`k/255`,
    /// `r/255`). Each end is widened by `4u(|x| + eps)` and one ulp, which covers the
    /// representation errors of both and the rounding of the subtraction, so the float box
    /// contains the exact rational box (clipping at 0 and 1 is exact).
    pub fn linf_ball(center: &[f64], eps: f64) -> Result<Self, SpecError> {
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(SpecError::Eps {
                text: eps.to_string(),
                reason: "must be finite and ≥ 0".into(),
            });
        }
        let mut lo = Vec::with_capacity(center.len());
        let mut hi = Vec::with_capacity(center.len());
        for &x in center {
            if !x.is_finite() {
                return Err(SpecError::Box("centre is not finite".into()));
            }
            let slack = 4.0 * UNIT_ROUNDOFF * (x.abs() + eps);
            let l = if eps == 0.0 {
                x
            } else {
                (x - eps - slack).next_down()
            };
            let h = if eps == 0.0 {
                x
            } else {
                (x + eps + slack).next_up()
            };
            lo.push(l.max(0.0).min(x));
            hi.push(h.min(1.0).max(x));
        }
        Self::new(lo, hi)
    }

    /// Lower ends.
    pub fn lo(&self) -> &[f64] {
        &self.lo
    }

    /// Upper ends.
    pub fn hi(&self) -> &[f64] {
        &self.hi
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// Midpoint of the box.
    pub fn center(&self) -> Vec<f64> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(l, h)| l + (h - l) / 2.0)
            .collect()
    }

    /// Whether `x` lies in the box.
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.lo.len()
            && x.iter()
                .zip(self.lo.iter().zip(&self.hi))
                .all(|(v, (l, h))| *l <= *v && *v <= *h)
    }

    /// Projects `x` onto the box (clamping each coordinate).
    pub fn project(&self, x: &mut [f64]) {
        for (v, (l, h)) in x.iter_mut().zip(self.lo.iter().zip(&self.hi)) {
            *v = v.clamp(*l, *h);
        }
    }
}

/// A trigger patch (Algorithm 2): an `size × size` square whose top-left pixel is at
/// 1-based (`row`, `col`) of a row-major `width`-wide image, as in the paper's positions
/// (1,1), (4,20), (5,5), (7,13), (10,10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// 1-based row of the patch's top-left pixel.
    pub row: usize,
    /// 1-based column of the patch's top-left pixel.
    pub col: usize,
    /// Side of the square patch.
    pub size: usize,
}

impl Trigger {
    /// The side of a square image with `dim` pixels, or an error if `dim` is not a square.
    pub fn image_side(dim: usize) -> Result<usize, SpecError> {
        let side = (dim as f64).sqrt().round() as usize;
        if side == 0 || side * side != dim {
            return Err(SpecError::Trigger(format!(
                "trigger patches need square images, but inputs have {dim} values"
            )));
        }
        Ok(side)
    }

    /// Checks that the patch lies inside a `side × side` image.
    pub fn validate(&self, side: usize) -> Result<(), SpecError> {
        if self.size == 0 {
            return Err(SpecError::Trigger("trigger size must be ≥ 1".into()));
        }
        if self.row == 0 || self.col == 0 {
            return Err(SpecError::Trigger(format!(
                "trigger position {},{} is 1-based: row and column start at 1",
                self.row, self.col
            )));
        }
        if self.row - 1 + self.size > side || self.col - 1 + self.size > side {
            return Err(SpecError::Trigger(format!(
                "a {s}×{s} trigger at row {r}, column {c} does not fit a {side}×{side} image \
                 (it would end at row {er}, column {ec})",
                s = self.size,
                r = self.row,
                c = self.col,
                er = self.row - 1 + self.size,
                ec = self.col - 1 + self.size
            )));
        }
        Ok(())
    }

    /// Flat (row-major, 0-based) indices of the patch's pixels in a `side`-wide image.
    pub fn pixels(&self, side: usize) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.size * self.size);
        for r in 0..self.size {
            for c in 0..self.size {
                v.push((self.row - 1 + r) * side + (self.col - 1 + c));
            }
        }
        v
    }

    /// Parses `R,C` (1-based) into a row and column.
    pub fn parse_position(text: &str) -> Result<(usize, usize), SpecError> {
        let bad = || {
            SpecError::Trigger(format!(
                "trigger position {text:?} must be ROW,COL with 1-based integers, e.g. 1,1"
            ))
        };
        let (r, c) = text.split_once(',').ok_or_else(bad)?;
        let r: usize = r.trim().parse().map_err(|_| bad())?;
        let c: usize = c.trim().parse().map_err(|_| bad())?;
        Ok((r, c))
    }
}

impl InputBox {
    /// The backdoor region of an image (Algorithm 2): the trigger's pixels range over `[0,1]`,
    /// every other pixel is the image's own value (a point; the float `fl(k/255)` the
    /// network actually receives).
    pub fn with_trigger(image: &[f64], trigger: &Trigger) -> Result<Self, SpecError> {
        let side = Trigger::image_side(image.len())?;
        trigger.validate(side)?;
        if image.iter().any(|v| !v.is_finite()) {
            return Err(SpecError::Box("image is not finite".into()));
        }
        let mut lo = image.to_vec();
        let mut hi = image.to_vec();
        for i in trigger.pixels(side) {
            lo[i] = 0.0;
            hi[i] = 1.0;
        }
        Self::new(lo, hi)
    }
}

/// The output condition `O` of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OutputSpec {
    /// `argmax y = label`, proven as `y_label − y_j > 0` for every `j ≠ label`.
    Robust {
        /// The class that must stay on top.
        label: usize,
    },
    /// `argmax y ≠ target` (backdoor-freeness, Algorithm 2).
    NotTarget {
        /// The class no input of the region may reach.
        target: usize,
    },
}

impl OutputSpec {
    /// Checks the class index against the number of logits.
    pub fn validate(&self, classes: usize) -> Result<(), SpecError> {
        let class = match *self {
            OutputSpec::Robust { label } => label,
            OutputSpec::NotTarget { target } => target,
        };
        if class >= classes {
            return Err(SpecError::Class { class, classes });
        }
        Ok(())
    }

    /// Whether concrete logits satisfy the condition (strictly, ties count as violations).
    pub fn holds(&self, logits: &[f64]) -> bool {
        match *self {
            OutputSpec::Robust { label } => logits
                .iter()
                .enumerate()
                .all(|(j, &v)| j == label || logits[label] > v),
            OutputSpec::NotTarget { target } => logits
                .iter()
                .enumerate()
                .any(|(j, &v)| j != target && v > logits[target]),
        }
    }
}

/// A property ⟨I, O⟩: every input in `input` must satisfy `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// The input region `I`.
    pub input: InputBox,
    /// The output condition `O`.
    pub output: OutputSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eps_parsing() {
        assert_eq!(parse_eps("2/255").unwrap(), 2.0 / 255.0);
        assert_eq!(parse_eps(" 0.01 ").unwrap(), 0.01);
        assert_eq!(parse_eps("0").unwrap(), 0.0);
        assert!(parse_eps("-0.1").is_err());
        assert!(parse_eps("-1/255").is_err());
        assert!(parse_eps("abc").is_err());
        assert!(parse_eps("1/0").is_err());
        assert!(parse_eps("NaN").is_err());
        assert!(parse_eps("inf").is_err());
        assert!(parse_eps("").is_err());
    }

    #[test]
    fn linf_ball_contains_rational_box_and_is_clipped() {
        let x = [0.0, 1.0, 100.0 / 255.0];
        let b = InputBox::linf_ball(&x, 2.0 / 255.0).unwrap();
        assert_eq!(b.lo()[0], 0.0);
        assert_eq!(b.hi()[1], 1.0);
        assert!(b.lo()[2] <= 98.0 / 255.0 && b.hi()[2] >= 102.0 / 255.0);
        assert!(b.hi()[2] - b.lo()[2] < 4.0 / 255.0 + 1e-12);
        assert!(b.contains(&x));
        assert!(InputBox::linf_ball(&x, -1.0).is_err());
    }

    #[test]
    fn box_invariants() {
        assert!(InputBox::new(vec![1.0], vec![0.0]).is_err());
        assert!(InputBox::new(vec![0.0], vec![0.0, 1.0]).is_err());
        assert!(InputBox::new(vec![f64::NAN], vec![0.0]).is_err());
        let json = r#"{"lo":[1.0],"hi":[0.0]}"#;
        assert!(serde_json::from_str::<InputBox>(json).is_err());
    }

    #[test]
    fn trigger_box_indices_on_a_hand_made_image() {
        // 28×28 image with pixel value = index/1000; a 3×3 patch at 1-based (4, 20) covers
        // rows 3..=5 and columns 19..=21 (0-based).
        let img: Vec<f64> = (0..784).map(|i| i as f64 / 1000.0).collect();
        let t = Trigger {
            row: 4,
            col: 20,
            size: 3,
        };
        let b = InputBox::with_trigger(&img, &t).unwrap();
        let free: Vec<usize> = (0..784).filter(|&i| b.lo()[i] < b.hi()[i]).collect();
        assert_eq!(
            free,
            vec![
                3 * 28 + 19,
                3 * 28 + 20,
                3 * 28 + 21,
                4 * 28 + 19,
                4 * 28 + 20,
                4 * 28 + 21,
                5 * 28 + 19,
                5 * 28 + 20,
                5 * 28 + 21
            ]
        );
        for &i in &free {
            assert_eq!((b.lo()[i], b.hi()[i]), (0.0, 1.0));
        }
        for i in (0..784).filter(|i| !free.contains(i)) {
            assert_eq!((b.lo()[i], b.hi()[i]), (img[i], img[i]));
        }
        // (1,1) is the top-left corner; a patch reaching the last row/column fits exactly
        let t = Trigger {
            row: 1,
            col: 1,
            size: 2,
        };
        assert_eq!(t.pixels(28), vec![0, 1, 28, 29]);
        assert!(
            Trigger {
                row: 26,
                col: 26,
                size: 3
            }
            .validate(28)
            .is_ok()
        );
        assert!(
            Trigger {
                row: 27,
                col: 1,
                size: 3
            }
            .validate(28)
            .is_err()
        );
        assert!(
            Trigger {
                row: 0,
                col: 1,
                size: 3
            }
            .validate(28)
            .is_err()
        );
        assert!(
            Trigger {
                row: 1,
                col: 1,
                size: 0
            }
            .validate(28)
            .is_err()
        );
        assert!(Trigger::image_side(785).is_err());
        assert_eq!(Trigger::parse_position(" 7,13").unwrap(), (7, 13));
        assert!(Trigger::parse_position("7;13").is_err());
        assert!(Trigger::parse_position("-1,3").is_err());
    }

    #[test]
    fn output_spec_semantics() {
        let r = OutputSpec::Robust { label: 1 };
        assert!(r.holds(&[0.0, 1.0, 0.5]));
        assert!(!r.holds(&[1.0, 1.0, 0.5]));
        let t = OutputSpec::NotTarget { target: 0 };
        assert!(t.holds(&[0.0, 1.0]));
        assert!(!t.holds(&[1.0, 1.0]));
        assert!(r.validate(2).is_ok());
        assert!(r.validate(1).is_err());
    }
}
