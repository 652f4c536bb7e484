//! Checks of a certified property's statement: the box is well formed, it covers the input
//! region the certificate claims (the exact rational L∞ ball of the recorded pixels), and the
//! output condition names an existing class.
//!
//! A box that is *larger* than the claimed region is fine (proving more is still a proof of
//! the claim); a box that misses part of it is not. The comparison is made against floats
//! that are certainly on the correct side of the exact rationals: `k/255` is bracketed by
//! `next_down`/`next_up` of its rounded value, `eps` by an upper bound of both the recorded
//! `f64` and the exact value of its text (`2/255`, `0.0078`), and each subtraction / addition
//! is stepped outward once more — sound whatever the rounding mode (see
//! [`super::interval`]; docs/method.md, eqs. (17), (45)).

use certquant_core::certificate::CertifiedProperty;
use certquant_core::spec::OutputSpec;

use super::interval::{add_up, sub_down};

/// A float `≥` the exact radius stated by the text (`"2/255"`, `"0.0078"`), or why the text
/// is not a radius.
///
/// A decimal parses to the nearest float, so the exact decimal is `≤ next_up` of it. A
/// fraction of two integers below `2^53` is exact on both sides, so one rounding of the
/// quotient; other fractions are bounded by rounding the numerator up and the denominator
/// down first. This is the `ε̄` of docs/method.md, eq. (45).
pub fn eps_text_upper_bound(text: &str) -> Result<f64, String> {
    let bad = |why: &str| format!("eps_text {text:?} is not a radius: {why}");
    let t = text.trim();
    let num = |s: &str| -> Result<f64, String> {
        let v: f64 = s.trim().parse().map_err(|_| bad("not a number"))?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad("must be finite and ≥ 0"));
        }
        Ok(v)
    };
    let is_int = |s: &str| {
        let s = s.trim();
        !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit())
    };
    let v = if let Some((n, d)) = t.split_once('/') {
        let (nv, dv) = (num(n)?, num(d)?);
        if dv == 0.0 {
            return Err(bad("zero denominator"));
        }
        if nv == 0.0 {
            0.0
        } else if is_int(n) && is_int(d) {
            (nv / dv).next_up()
        } else {
            (nv.next_up() / dv.next_down()).next_up()
        }
    } else {
        let v = num(t)?;
        if v == 0.0 { 0.0 } else { v.next_up() }
    };
    Ok(v)
}

/// Reasons why the property's box is malformed for a network with `input_dim` inputs or does
/// not contain the region recorded in `source` (empty when it is fine).
///
/// With raw pixels `k_i` and a radius recorded, the box must contain
/// `[max(k_i/255 − eps, 0), min(k_i/255 + eps, 1)]` for every `i`, where `eps` is the larger
/// of the recorded `f64` radius and the exact value of `eps_text`. With radius `0` the
/// region is the data set's own input `fl(k_i/255)` (the rational point itself is not a
/// float), which the box must contain (docs/method.md, eq. (45)).
pub fn check_input_region(prop: &CertifiedProperty, input_dim: usize) -> Vec<String> {
    let mut reasons = Vec::new();
    let (lo, hi) = (prop.input.lo(), prop.input.hi());
    if lo.len() != input_dim || hi.len() != input_dim {
        reasons.push(format!(
            "the box has {}/{} lower/upper ends, the network takes {input_dim} inputs",
            lo.len(),
            hi.len()
        ));
        return reasons;
    }
    if let Some(i) = (0..input_dim).find(|&i| !(lo[i].is_finite() && hi[i].is_finite())) {
        reasons.push(format!("box entry {i} is not finite"));
        return reasons;
    }
    if let Some(i) = (0..input_dim).find(|&i| lo[i] > hi[i]) {
        reasons.push(format!(
            "box entry {i} is empty: lower {:?} > upper {:?}",
            lo[i], hi[i]
        ));
        return reasons;
    }
    if let Some(trigger) = prop.source.trigger {
        reasons.extend(check_trigger_region(prop, trigger, input_dim));
        return reasons;
    }
    let (Some(pixels), Some(eps)) = (&prop.source.pixels, prop.source.eps) else {
        return reasons;
    };
    if let Some(r) = pixel_count_mismatch(pixels, input_dim) {
        reasons.push(r);
        return reasons;
    }
    if !(eps.is_finite() && eps >= 0.0) {
        reasons.push(format!("source.eps {eps:?} is not a radius"));
        return reasons;
    }
    let mut eps_up = eps;
    if let Some(text) = &prop.source.eps_text {
        match eps_text_upper_bound(text) {
            Ok(e) => eps_up = eps_up.max(e),
            Err(r) => {
                reasons.push(r);
                return reasons;
            }
        }
    }
    let mut bad = Vec::new();
    for (i, &k) in pixels.iter().enumerate() {
        let x = k as f64 / 255.0;
        let ok = if eps_up == 0.0 {
            lo[i] <= x && x <= hi[i]
        } else {
            // need_lo ≤ k/255 − eps (exactly), need_hi ≥ k/255 + eps (exactly).
            let need_lo = sub_down(x.next_down(), eps_up);
            let need_hi = add_up(x.next_up(), eps_up);
            (lo[i] <= 0.0 || lo[i] <= need_lo) && (hi[i] >= 1.0 || hi[i] >= need_hi)
        };
        if !ok {
            bad.push(i);
        }
    }
    if let Some(&i) = bad.first() {
        reasons.push(format!(
            "the box does not contain the claimed region [max(k/255 − eps, 0), \
             min(k/255 + eps, 1)] (eps = {}): {} coordinate(s) miss it, first {i} \
             (pixel {}, box [{:?}, {:?}])",
            prop.source.eps_text.as_deref().unwrap_or("source.eps"),
            bad.len(),
            pixels[i],
            lo[i],
            hi[i]
        ));
    }
    reasons
}

/// Why the recorded pixels cannot describe an input of `input_dim` values, if they cannot.
fn pixel_count_mismatch(pixels: &[u8], input_dim: usize) -> Option<String> {
    (pixels.len() != input_dim).then(|| {
        format!(
            "source.pixels has {} entries, the box {input_dim}",
            pixels.len()
        )
    })
}

/// The backdoor region (Algorithm 2): the trigger's pixels must be free over all of `[0,1]`,
/// every other pixel must contain the network's input `fl(k/255)` of the recorded image.
/// The bounds are already known to be well formed and of the right length
/// (docs/method.md, eqs. (19), (45)).
fn check_trigger_region(
    prop: &CertifiedProperty,
    trigger: certquant_core::spec::Trigger,
    input_dim: usize,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let Some(pixels) = &prop.source.pixels else {
        reasons.push("a trigger property must record the image's pixels".into());
        return reasons;
    };
    if let Some(r) = pixel_count_mismatch(pixels, input_dim) {
        reasons.push(r);
        return reasons;
    }
    if prop.source.eps.is_some() || prop.source.eps_text.is_some() {
        reasons.push("a property has either a trigger or a radius, not both".into());
        return reasons;
    }
    let side = match certquant_core::spec::Trigger::image_side(input_dim)
        .and_then(|side| trigger.validate(side).map(|()| side))
    {
        Ok(side) => side,
        Err(e) => {
            reasons.push(e.to_string());
            return reasons;
        }
    };
    let (lo, hi) = (prop.input.lo(), prop.input.hi());
    let patch = trigger.pixels(side);
    let mut in_patch = vec![false; input_dim];
    for &i in &patch {
        in_patch[i] = true;
    }
    let mut bad = Vec::new();
    for i in 0..input_dim {
        let ok = if in_patch[i] {
            lo[i] <= 0.0 && hi[i] >= 1.0
        } else {
            let x = pixels[i] as f64 / 255.0;
            lo[i] <= x && x <= hi[i]
        };
        if !ok {
            bad.push(i);
        }
    }
    if let Some(&i) = bad.first() {
        reasons.push(format!(
            "the box does not contain the claimed trigger region (a {s}×{s} patch at row {r}, \
             column {c} free in [0,1], other pixels fixed): {} coordinate(s) miss it, first {i} \
             ({}, box [{:?}, {:?}])",
            bad.len(),
            if in_patch[i] {
                "patch pixel"
            } else {
                "fixed pixel"
            },
            lo[i],
            hi[i],
            s = trigger.size,
            r = trigger.row,
            c = trigger.col,
        ));
    }
    reasons
}

/// Why the output condition is malformed for a network with `classes` logits, if it is.
pub fn check_output(spec: OutputSpec, classes: usize) -> Option<String> {
    let (what, class) = match spec {
        OutputSpec::Robust { label } => ("label", label),
        OutputSpec::NotTarget { target } => ("target", target),
    };
    (class >= classes)
        .then(|| format!("output {what} {class} out of range: the QNN has {classes} outputs"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::certificate::PropertySource;
    use certquant_core::spec::InputBox;

    fn prop(bx: InputBox, pixels: Vec<u8>, eps: f64, text: &str) -> CertifiedProperty {
        CertifiedProperty {
            input: bx,
            output: OutputSpec::Robust { label: 0 },
            source: PropertySource {
                data: None,
                id: None,
                pixels: Some(pixels),
                eps_text: Some(text.into()),
                eps: Some(eps),
                trigger: None,
            },
            margin: 1.0,
            multipliers: None,
        }
    }

    #[test]
    fn synthesis_boxes_pass_for_every_pixel_value() {
        let pixels: Vec<u8> = (0..=255).collect();
        let x: Vec<f64> = pixels.iter().map(|&k| k as f64 / 255.0).collect();
        for text in [
            "0", "1/255", "2/255", "3/255", "4/255", "5/255", "0.01", "0.0078", "0.1", "1/3",
            "10/255", "0.5",
        ] {
            let eps = certquant_core::spec::parse_eps(text).unwrap();
            let bx = InputBox::linf_ball(&x, eps).unwrap();
            let r = check_input_region(&prop(bx, pixels.clone(), eps, text), 256);
            assert!(r.is_empty(), "{text}: {r:?}");
        }
    }

    #[test]
    fn a_box_that_misses_the_region_is_rejected() {
        let pixels: Vec<u8> = vec![0, 17, 128, 255];
        let x: Vec<f64> = pixels.iter().map(|&k| k as f64 / 255.0).collect();
        let eps = 2.0 / 255.0;
        // the box for a smaller radius
        let small = InputBox::linf_ball(&x, 1.0 / 255.0).unwrap();
        let r = check_input_region(&prop(small, pixels.clone(), eps, "2/255"), 4);
        assert_eq!(r.len(), 1, "{r:?}");
        // pixel 0: the upper end misses; 255: the lower end; 17 and 128: both
        assert!(
            r[0].contains("4 coordinate(s) miss it, first 0"),
            "{}",
            r[0]
        );
        // the box for eps computed naively (no outward slack) misses by an ulp somewhere
        let naive_lo: Vec<f64> = x.iter().map(|v| (v - eps).max(0.0)).collect();
        let naive_hi: Vec<f64> = x.iter().map(|v| (v + eps).min(1.0)).collect();
        let mut lo = naive_lo.clone();
        lo[2] = lo[2].next_up().next_up();
        let r = check_input_region(
            &prop(
                InputBox::new(lo, naive_hi).unwrap(),
                pixels.clone(),
                eps,
                "2/255",
            ),
            4,
        );
        assert!(!r.is_empty());
        // a text radius larger than the recorded f64 counts
        let bx = InputBox::linf_ball(&x, eps).unwrap();
        assert!(!check_input_region(&prop(bx.clone(), pixels.clone(), eps, "3/255"), 4).is_empty());
        assert!(!check_input_region(&prop(bx.clone(), pixels.clone(), eps, "x/255"), 4).is_empty());
        // dimension mismatch
        assert!(!check_input_region(&prop(bx, pixels, eps, "2/255"), 5).is_empty());
    }

    #[test]
    fn trigger_regions() {
        use certquant_core::spec::Trigger;
        let pixels: Vec<u8> = (0..784).map(|i| (i % 256) as u8).collect();
        let image: Vec<f64> = pixels.iter().map(|&k| k as f64 / 255.0).collect();
        let t = Trigger {
            row: 5,
            col: 5,
            size: 3,
        };
        let mk = |bx: InputBox, trigger: Option<Trigger>| {
            let mut p = prop(bx, pixels.clone(), 0.0, "0");
            p.source.eps = None;
            p.source.eps_text = None;
            p.source.trigger = trigger;
            p
        };
        let good = InputBox::with_trigger(&image, &t).unwrap();
        assert!(check_input_region(&mk(good.clone(), Some(t)), 784).is_empty());
        // a patch that is not entirely free, or a fixed pixel moved, is rejected
        let mut lo = good.lo().to_vec();
        lo[4 * 28 + 4] = 0.01;
        let r = check_input_region(
            &mk(InputBox::new(lo, good.hi().to_vec()).unwrap(), Some(t)),
            784,
        );
        assert!(r.len() == 1 && r[0].contains("patch pixel"), "{r:?}");
        let mut hi = good.hi().to_vec();
        let mut lo = good.lo().to_vec();
        lo[0] = image[0] + 0.01;
        hi[0] = image[0] + 0.02;
        let r = check_input_region(&mk(InputBox::new(lo, hi).unwrap(), Some(t)), 784);
        assert!(r.len() == 1 && r[0].contains("fixed pixel"), "{r:?}");
        // the box of another position does not cover this trigger
        let other = InputBox::with_trigger(
            &image,
            &Trigger {
                row: 6,
                col: 5,
                size: 3,
            },
        )
        .unwrap();
        assert!(!check_input_region(&mk(other, Some(t)), 784).is_empty());
        // a trigger that does not fit, or a trigger plus a radius, is rejected
        let off = Trigger {
            row: 27,
            col: 1,
            size: 3,
        };
        assert!(!check_input_region(&mk(good.clone(), Some(off)), 784).is_empty());
        let mut both = mk(good, Some(t));
        both.source.eps = Some(0.0);
        assert!(!check_input_region(&both, 784).is_empty());
    }

    #[test]
    fn eps_text_bounds() {
        assert!(eps_text_upper_bound("1/255").unwrap() >= 1.0 / 255.0);
        assert_eq!(eps_text_upper_bound("0").unwrap(), 0.0);
        assert_eq!(eps_text_upper_bound("0/7").unwrap(), 0.0);
        assert!(eps_text_upper_bound("0.5/127.5").unwrap() >= 1.0 / 255.0);
        assert!(eps_text_upper_bound("-1").is_err());
        assert!(eps_text_upper_bound("1/0").is_err());
        assert!(eps_text_upper_bound("inf").is_err());
        assert!(eps_text_upper_bound("abc").is_err());
    }

    #[test]
    fn output_classes() {
        assert!(check_output(OutputSpec::Robust { label: 9 }, 10).is_none());
        assert!(check_output(OutputSpec::Robust { label: 10 }, 10).is_some());
        assert!(check_output(OutputSpec::NotTarget { target: 12 }, 10).is_some());
    }
}
