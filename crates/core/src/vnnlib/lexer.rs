//! Tokens and S-expressions of a VNN-LIB file: `(`, `)`, atoms (symbols and numbers) and
//! `;` comments to the end of the line. The tree is built with an explicit stack (no
//! recursion), with the nesting depth bounded by [`MAX_DEPTH`], so a hostile file can neither
//! overflow the stack here nor in the recursive passes that walk the tree afterwards.

use super::VnnlibError;

/// Deepest nesting of parentheses accepted (the competition files nest four levels).
pub const MAX_DEPTH: usize = 64;

/// One S-expression with the line (1-based) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Sexp {
    /// A symbol or number.
    Atom {
        /// The token's text.
        text: String,
        /// Line of the token.
        line: usize,
    },
    /// A parenthesised list.
    List {
        /// The elements.
        items: Vec<Sexp>,
        /// Line of the opening parenthesis.
        line: usize,
    },
}

impl Sexp {
    /// The line where the expression starts.
    pub fn line(&self) -> usize {
        match self {
            Sexp::Atom { line, .. } | Sexp::List { line, .. } => *line,
        }
    }

    /// A short rendering for error messages (at most ~60 characters).
    pub fn brief(&self) -> String {
        let mut s = String::new();
        self.render(&mut s, 0);
        if s.chars().count() > 60 {
            let cut: String = s.chars().take(57).collect();
            format!("{cut}...")
        } else {
            s
        }
    }

    fn render(&self, out: &mut String, depth: usize) {
        if out.len() > 80 {
            return;
        }
        match self {
            Sexp::Atom { text, .. } => out.push_str(text),
            Sexp::List { items, .. } => {
                out.push('(');
                if depth > 3 {
                    out.push_str("...");
                } else {
                    for (i, it) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        it.render(out, depth + 1);
                    }
                }
                out.push(')');
            }
        }
    }
}

/// Splits `text` into top-level S-expressions.
pub fn parse_sexps(text: &str) -> Result<Vec<Sexp>, VnnlibError> {
    // stack of open lists: (items, line of '(')
    let mut stack: Vec<(Vec<Sexp>, usize)> = Vec::new();
    let mut top: Vec<Sexp> = Vec::new();
    let mut line = 1usize;
    let bytes = text.as_bytes();
    let mut i = 0usize;
    let push = |stack: &mut Vec<(Vec<Sexp>, usize)>, top: &mut Vec<Sexp>, e: Sexp| match stack
        .last_mut()
    {
        Some((items, _)) => items.push(e),
        None => top.push(e),
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | 0x0c => i += 1,
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(VnnlibError::TooDeep { line });
                }
                stack.push((Vec::new(), line));
                i += 1;
            }
            b')' => {
                let Some((items, open)) = stack.pop() else {
                    return Err(VnnlibError::Unbalanced {
                        line,
                        detail: "')' without a matching '('".into(),
                    });
                };
                push(&mut stack, &mut top, Sexp::List { items, line: open });
                i += 1;
            }
            b'|' | b'"' => {
                return Err(VnnlibError::Unsupported {
                    line,
                    construct: "quoted symbols and strings".into(),
                });
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | 0x0c | b'(' | b')' | b';'
                    )
                {
                    i += 1;
                }
                // the token boundaries are ASCII bytes, so the slice is valid UTF-8
                let token = &text[start..i];
                push(
                    &mut stack,
                    &mut top,
                    Sexp::Atom {
                        text: token.to_string(),
                        line,
                    },
                );
            }
        }
    }
    if let Some((_, open)) = stack.last() {
        return Err(VnnlibError::Unbalanced {
            line: *open,
            detail: "'(' is never closed".into(),
        });
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_atoms_comments_and_lines() {
        let s = parse_sexps("; c (\n(a (b 1.5)) ; x )\n(c)").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].line(), 2);
        assert_eq!(s[1].line(), 3);
        assert_eq!(s[0].brief(), "(a (b 1.5))");
    }

    #[test]
    fn unbalanced_and_deep_inputs_are_errors() {
        assert!(matches!(
            parse_sexps("(a\n(b)"),
            Err(VnnlibError::Unbalanced { line: 1, .. })
        ));
        assert!(matches!(
            parse_sexps("(a)\n\n)"),
            Err(VnnlibError::Unbalanced { line: 3, .. })
        ));
        let deep = "(".repeat(MAX_DEPTH + 1) + &")".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            parse_sexps(&deep),
            Err(VnnlibError::TooDeep { .. })
        ));
        let ok = "(".repeat(MAX_DEPTH) + &")".repeat(MAX_DEPTH);
        assert!(parse_sexps(&ok).is_ok());
    }
}
