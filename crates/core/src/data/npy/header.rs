//! The header of an NPY file: the preamble (magic, version, header length)
//! and the Python dict literal that follows it.
//!
//! The dict is parsed by `py_literal`, the Python-literal parser that `npyz`
//! uses for NPY headers (`npyz` does not export it). `npyz`'s own
//! `NpyHeader::from_reader` is not used on hostile input because it allocates
//! the header length the file claims (up to 4 GiB) before reading it and
//! multiplies the shape's dims unchecked (a panic in debug and fuzzing builds,
//! a wrong count in release); it also ignores unknown and repeated keys.
//!
//! What stays hand-written, each because no library does it on hostile input:
//! - the 10- or 12-byte preamble, checked against the bytes present;
//! - a scan of the header text for its size, ASCII-ness and bracket depth:
//!   `py_literal`'s parser recurses (and backtracks) once per bracket, so a
//!   deeply nested header could overflow the stack;
//! - the interpretation of the dict (exactly `descr`, `fortran_order` and
//!   `shape`, each once; dims as `usize`);
//! - Python 2 long literals such as `10L`, which `py_literal` does not accept.

use py_literal::Value;

use super::NPY_MAGIC;
use crate::data::{DataError, format_err};

/// Deepest nesting of brackets accepted in an NPY header; real headers nest
/// two levels (the dict and the shape tuple). Bounding it bounds the
/// recursion and backtracking of the header parser.
const NPY_MAX_DEPTH: usize = 4;
/// Longest NPY header accepted (64 KiB). numpy itself refuses headers over
/// 10 000 bytes by default; the bound keeps a hostile header from making the
/// parser build a huge syntax tree or multiply huge integers.
const NPY_MAX_HEADER: usize = 1 << 16;

/// The fields of a header dict, each checked for presence and type.
pub(super) struct Header {
    /// The type string, e.g. `<f4`.
    pub(super) descr: String,
    /// Whether the array is stored column-major.
    pub(super) fortran_order: bool,
    /// The dims, each fitting `usize` (their product may not).
    pub(super) shape: Vec<usize>,
}

/// Reads the header of the NPY file `bytes` (named `name` in errors) and
/// returns it with the data bytes that follow it.
pub(super) fn parse_header<'a>(
    bytes: &'a [u8],
    name: &str,
) -> Result<(Header, &'a [u8]), DataError> {
    let err = |r: String| format_err(name, r);
    let (major, header, data) = preamble(bytes, name)?;
    let text = header_text(header, major).map_err(err)?;
    let value = text
        .parse::<Value>()
        .map_err(|e| err(syntax_error(&text, &e)))?;
    Ok((header_fields(value).map_err(err)?, data))
}

/// Splits an NPY file into its version, header text and data, checking the
/// magic and that the header length the file claims is present.
fn preamble<'a>(bytes: &'a [u8], name: &str) -> Result<(u8, &'a [u8], &'a [u8]), DataError> {
    let err = |r: String| format_err(name, r);
    if !bytes.starts_with(NPY_MAGIC) {
        let hint = if bytes.starts_with(&[0, 0, 8]) {
            " (this looks like an IDX file)"
        } else {
            ""
        };
        return Err(err(format!(
            "not an NPY file: missing the \\x93NUMPY magic{hint}"
        )));
    }
    let (major, minor) = match (bytes.get(6), bytes.get(7)) {
        (Some(&a), Some(&b)) => (a, b),
        _ => return Err(err("truncated: NPY version bytes missing".into())),
    };
    let header_start = match major {
        1 => 10,
        2 | 3 => 12,
        _ => {
            return Err(err(format!(
                "unsupported NPY format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)"
            )));
        }
    };
    let len_field = bytes
        .get(8..header_start)
        .ok_or_else(|| err("truncated: NPY header length missing".into()))?;
    let header_len = len_field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            err(format!(
                "truncated: NPY header claims {header_len} bytes, only {} present",
                bytes.len().saturating_sub(header_start)
            ))
        })?;
    if header_len > NPY_MAX_HEADER {
        return Err(err(format!(
            "NPY header of {header_len} bytes exceeds the {NPY_MAX_HEADER}-byte limit"
        )));
    }
    Ok((
        major,
        &bytes[header_start..header_end],
        &bytes[header_end..],
    ))
}

/// Checks the header text (ASCII before version 3, UTF-8 in 3, brackets
/// nested at most [`NPY_MAX_DEPTH`] deep) and returns it ready for the
/// parser: Python 2 long suffixes (`10L`) dropped, whitespace outside strings
/// made plain spaces, trailing whitespace (numpy's padding and newline) trimmed.
fn header_text(header: &[u8], major: u8) -> Result<String, String> {
    if major < 3 && !header.is_ascii() {
        return Err("NPY header is not ASCII".into());
    }
    let text = std::str::from_utf8(header).map_err(|_| "NPY header is not valid UTF-8")?;
    // Brackets are counted inside strings too: over-counting can only reject
    // a header, never let a deep one through.
    let mut depth = 0usize;
    for c in text.bytes() {
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > NPY_MAX_DEPTH {
                    return Err(format!(
                        "malformed NPY header: nested deeper than {NPY_MAX_DEPTH} levels"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut quote = None;
    let mut prev = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == 'L' && prev.is_some_and(|p: char| p.is_ascii_digit()) => {
                prev = Some(c);
                continue;
            }
            _ => {}
        }
        prev = Some(c);
        // The parser takes spaces and tabs between tokens, not line breaks.
        out.push(if quote.is_none() && c.is_ascii_whitespace() {
            ' '
        } else {
            c
        });
    }
    out.truncate(out.trim_end().len());
    Ok(out)
}

/// Says why `text` failed to parse, in the terms of an NPY header: not a
/// dict at all, cut short, followed by extra text, or malformed inside.
fn syntax_error(text: &str, parser_error: &py_literal::ParseError) -> String {
    let open = text.len() - text.trim_start().len();
    if !text[open..].starts_with('{') {
        return format!("NPY header is not a dict: {}", one_line(parser_error));
    }
    // Where the brackets opened by the dict close (quotes ignored: only the
    // wording of the error depends on it).
    let mut depth = 0usize;
    let close = text.bytes().skip(open).position(|c| {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        depth == 0
    });
    match close.map(|i| open + i) {
        None => "malformed NPY header: expected '}' but the header ended".into(),
        Some(end) if end + 1 < text.len() && text[..=end].parse::<Value>().is_ok() => format!(
            "malformed NPY header: unexpected text after the dict at offset {}",
            end + 1
        ),
        Some(_) => format!("malformed NPY header: {}", one_line(parser_error)),
    }
}

/// The parser's message on one line: pest draws the location over several
/// lines and lists grammar rule names, so where it says "--> 1:COLUMN" only
/// the offset is kept; any other message is kept, flattened.
fn one_line(e: &py_literal::ParseError) -> String {
    let msg = e.to_string();
    let column = msg
        .split_once("--> 1:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|c| c.parse::<usize>().ok());
    match column {
        Some(c) => format!("syntax error at offset {}", c.saturating_sub(1)),
        None => msg.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Interprets a parsed header: a dict with exactly the keys `descr` (a type
/// string), `fortran_order` (a bool) and `shape` (a tuple of non-negative
/// integers that fit `usize`), each once.
fn header_fields(value: Value) -> Result<Header, String> {
    let Value::Dict(entries) = value else {
        return Err("NPY header is not a dict".into());
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        let Value::String(key) = key else {
            return Err(format!("NPY header has a non-string key {key}"));
        };
        let slot_taken = match key.as_str() {
            "descr" => descr.is_some(),
            "fortran_order" => fortran.is_some(),
            "shape" => shape.is_some(),
            k => return Err(format!("NPY header has an unexpected key '{k}'")),
        };
        if slot_taken {
            return Err(format!("malformed NPY header: duplicate key '{key}'"));
        }
        match (key.as_str(), value) {
            ("descr", Value::String(s)) => descr = Some(s),
            ("descr", Value::List(_)) => {
                return Err("unsupported dtype: structured arrays are not supported".into());
            }
            ("fortran_order", Value::Boolean(b)) => fortran = Some(b),
            ("shape", Value::Tuple(items) | Value::List(items)) => {
                let dims = items
                    .iter()
                    .map(|v| match v {
                        Value::Integer(d) => usize::try_from(d).map_err(|_| {
                            let d = d.to_string();
                            let problem = if d.starts_with('-') {
                                "is negative"
                            } else {
                                "is too large"
                            };
                            format!("NPY shape dimension {d} {problem}")
                        }),
                        _ => Err("NPY shape must be a tuple of integers".to_string()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                shape = Some(dims);
            }
            (k, v) => return Err(format!("NPY header key '{k}' has an invalid value {v}")),
        }
    }
    Ok(Header {
        descr: descr.ok_or("NPY header lacks 'descr'")?,
        fortran_order: fortran.ok_or("NPY header lacks 'fortran_order'")?,
        shape: shape.ok_or("NPY header lacks 'shape'")?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::test_util::*;
    use super::super::parse_npy;
    use super::*;
    use crate::data::BYTES_NAME;

    #[test]
    fn npy_errors() {
        let ok = |d: &str| npy_with_header(1, d, &f4_bytes(&[0.5, 0.5]));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"NUMPY\x01\x00".to_vec(), "magic"),
            (idx_images(3, 2, 2, &PIX), "IDX"),
            (NPY_MAGIC.to_vec(), "version"),
            (b"\x93NUMPY\x01\x00\x05".to_vec(), "header length"),
            (b"\x93NUMPY\x01\x00\xff\x00{}".to_vec(), "claims 255 bytes"),
            (ok("[1, 2]"), "not a dict"),
            (ok("descr"), "not a dict"),
            (
                ok("{'descr': '<f4', 'fortran_order': False}"),
                "lacks 'shape'",
            ),
            (
                ok("{'descr': '<c16', 'fortran_order': False, 'shape': (2,)}"),
                "unsupported dtype '<c16'",
            ),
            (
                ok("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}"),
                "unsupported dtype",
            ),
            (
                ok("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"),
                "structured",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}"),
                "fortran_order True",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}"),
                "expected 12 bytes",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"),
                "trailing garbage",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"),
                "unexpected key",
            ),
            (
                ok("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"),
                "duplicate",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}"),
                "tuple of integers",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x"),
                "after the dict",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"),
                "header ended",
            ),
            (ok("{'descr': '<f4, 'fortran_order': False}"), "malformed"),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': ((((((2,),),),),)}"),
                "nested",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}"),
                "too large",
            ),
            (
                ok("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
                "overflow",
            ),
            (
                ok("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}"),
                "overflow",
            ),
            (
                npy(1, "<f4", "(2,)", &f4_bytes(&[0.5, f32::NAN])),
                "element 1 is not finite",
            ),
            (
                npy(1, "<f8", "(2,)", &f8_bytes(&[f64::INFINITY, 0.0])),
                "element 0 is not finite",
            ),
            (
                npy_with_header(1, "{'descr': '<f4'}\u{e9}", &[]),
                "not ASCII",
            ),
        ];
        for (bytes, want) in cases {
            let e = reason(parse_npy(&bytes).expect_err(want));
            assert!(e.contains(want), "wanted {want:?} in {e:?}");
            assert!(e.starts_with(BYTES_NAME), "{e}");
        }
    }

    #[test]
    fn npy_header_spellings() {
        let data = f4_bytes(&[0.5, 0.25]);
        let parses = |header: &str| parse_npy(&npy_with_header(1, header, &data));
        // Line breaks and tabs between tokens, Python 2 longs, a list as shape.
        for h in [
            "{'descr': '<f4',\n\t'fortran_order': False,\r\n'shape': (2L,)}",
            "{\"shape\": [2], \"fortran_order\": False, \"descr\": \"<f4\"}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }",
        ] {
            let (_, v) = parses(h).unwrap_or_else(|e| panic!("{h}: {e}"));
            assert_eq!(v, [0.5, 0.25], "{h}");
        }
        // Byte-order marks: any for u1, explicit for wider types.
        for descr in ["|u1", "<u1", ">u1"] {
            assert!(parse_npy(&npy(1, descr, "(1,)", &[7])).is_ok(), "{descr}");
        }
        for descr in ["|f4", "=f4", "<f04", "f4", "<f2", "<u2", "<b1", "<f4 "] {
            let e = reason(parse_npy(&npy(1, descr, "(2,)", &data)).expect_err(descr));
            assert!(e.contains("unsupported dtype"), "{descr}: {e}");
        }
        let cases = [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
                "is negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}",
                "tuple of integers",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': 2}",
                "invalid value",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
                "invalid value",
            ),
            (
                "{'descr': 4, 'fortran_order': False, 'shape': (2,)}",
                "invalid value",
            ),
            (
                "{1: '<f4', 'fortran_order': False, 'shape': (2,)}",
                "non-string key",
            ),
            ("{'shape': (2,), 'fortran_order': False}", "lacks 'descr'"),
            ("{'descr': '<f4', 'shape': (2,)}", "lacks 'fortran_order'"),
            (
                "{'descr': '<f4' 'fortran_order': False}",
                "syntax error at offset",
            ),
            ("  {'descr': '<f4', 'fortran_order': False", "header ended"),
            (
                " {'descr': '<f4', 'fortran_order': False} 1",
                "after the dict at offset 41",
            ),
            ("", "not a dict"),
        ];
        for (h, want) in cases {
            let e = reason(parses(h).expect_err(h));
            assert!(e.contains(want), "{h}: wanted {want:?} in {e:?}");
        }
    }

    #[test]
    fn npy_hostile_headers_are_bounded() {
        // Deep nesting is refused before the (recursive) parser sees it,
        // also inside strings and when the brackets never close.
        for deep in ["[".repeat(60_000), format!("{{'a': '{}'}}", "(".repeat(5))] {
            let e = reason(parse_npy(&npy_with_header(2, &deep, &[])).expect_err("deep"));
            assert!(e.contains("nested deeper"), "{e}");
        }
        // A header over the limit is refused by its claimed length alone.
        let long = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }}{}",
            " ".repeat(NPY_MAX_HEADER)
        );
        let e = reason(parse_npy(&npy_with_header(2, &long, &[])).expect_err("long"));
        assert!(e.contains("65536-byte limit"), "{e}");
        // A 4 GiB header length in a 12-byte file is a truncation, not an allocation.
        let mut claim = NPY_MAGIC.to_vec();
        claim.extend_from_slice(&[2, 0, 0xff, 0xff, 0xff, 0xff]);
        let e = reason(parse_npy(&claim).expect_err("claim"));
        assert!(e.contains("claims 4294967295 bytes, only 0 present"), "{e}");
        // Huge integers and big number expressions stay errors.
        let big = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}+0.5,)}}",
            "9".repeat(5000)
        );
        assert!(parse_npy(&npy_with_header(1, &big, &[])).is_err());
        // Zero-sized arrays whose other dims multiply past usize still parse.
        let (shape, v) =
            parse_npy(&npy(1, "<f4", "(0, 4294967296, 4294967296)", &[])).expect("empty");
        assert_eq!((shape.len(), v.len()), (3, 0));
    }

    /// Random edits of header text (tokens of the Python-literal grammar
    /// inserted, bytes replaced or removed) give an error or a consistent
    /// array, never a panic.
    #[test]
    fn header_mutations_never_panic() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        const TOKENS: [&str; 24] = [
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "'",
            "\"",
            "\\",
            "L",
            "-",
            "+",
            ".",
            "e",
            "j",
            "0x",
            "b'",
            "True",
            "None",
            "'''",
            "\n",
            "99999999999999999999",
        ];
        let seeds = [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 4), }",
            "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }",
        ];
        let data = [0u8; 8];
        let mut rng = StdRng::seed_from_u64(0x004e_5059);
        for round in 0..4000 {
            let mut h: Vec<u8> = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..h.len());
                match rng.random_range(0..3) {
                    0 => {
                        let t = TOKENS[rng.random_range(0..TOKENS.len())];
                        h.splice(i..i, t.bytes());
                    }
                    1 => h[i] = rng.random_range(0x20..0x7f),
                    _ => {
                        h.remove(i);
                    }
                }
            }
            let text = String::from_utf8_lossy(&h).into_owned();
            for major in [1, 3] {
                if let Ok((shape, v)) = parse_npy(&npy_with_header(major, &text, &data)) {
                    assert_eq!(shape.iter().product::<usize>(), v.len(), "{text}");
                }
            }
        }
    }
}
