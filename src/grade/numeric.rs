//! A small, safe evaluator for closed-form numeric answers (`\frac{3}{4}`,
//! `2\sqrt{3}`, `3\pi/2`, `1.5\times10^{3}`), so that different spellings
//! of one number compare equal.
//!
//! The evaluator tokenizes the text and parses it by recursive descent; it
//! never runs anything from the sample. Work is bounded: inputs over
//! [`MAX_INPUT_BYTES`] or [`MAX_TOKENS`] are rejected before parsing,
//! nesting deeper than [`MAX_DEPTH`] fails, and an exponent whose magnitude
//! exceeds [`MAX_EXPONENT`] fails, so `10^{10^{10}}` returns `None` at once
//! instead of overflowing. Each operation is one f64 operation, so the time
//! is linear in the token count.

/// Relative tolerance for numeric equality, with [`ABSOLUTE_TOLERANCE`]
/// for values near zero. 1e-9 accepts float rounding in `\frac{1}{3}` vs
/// `2/6` but rejects rounded decimals such as `0.333` vs `\frac{1}{3}`.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Absolute tolerance used when both values are within it of zero.
pub const ABSOLUTE_TOLERANCE: f64 = 1e-12;

/// Maximum input length the evaluator reads, in bytes.
pub const MAX_INPUT_BYTES: usize = 1000;

/// Most tokens the evaluator parses.
pub const MAX_TOKENS: usize = 400;

/// Deepest nesting of groups and operators the parser follows.
pub const MAX_DEPTH: usize = 48;

/// Largest exponent magnitude accepted in `a^b`.
pub const MAX_EXPONENT: f64 = 1000.0;

/// Tells whether two values are equal within the stated tolerances.
pub fn close(a: f64, b: f64) -> bool {
    let difference = (a - b).abs();
    difference <= ABSOLUTE_TOLERANCE || difference <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// Evaluates a normalized answer element (no spaces) to a finite number,
/// or returns `None` when it is not a closed-form number (it has a
/// variable, an unknown command, unbalanced groups) or exceeds a bound.
pub fn evaluate(text: &str) -> Option<f64> {
    if text.is_empty() || text.len() > MAX_INPUT_BYTES {
        return None;
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        position: 0,
        depth: 0,
    };
    let value = parser.expression()?;
    let finished = parser.position == tokens.len();
    (finished && value.is_finite()).then_some(value)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Number(f64),
    Pi,
    Frac,
    Sqrt,
    Plus,
    Minus,
    Times,
    Divide,
    Power,
    Open(char),
    Close(char),
}

/// Splits the text into tokens; `None` on any character or command the
/// evaluator does not know.
///
/// As in TeX, an unbraced exponent is one character: `2^10` is `2^1 * 0`.
/// Scientific notation `1.5e3` / `2E-4` is one number token.
fn tokenize(text: &str) -> Option<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;

    while i < bytes.len() {
        if tokens.len() >= MAX_TOKENS {
            return None;
        }
        let byte = bytes[i];
        let after_power = tokens.last() == Some(&Token::Power);

        if byte.is_ascii_digit()
            || (byte == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let end = if after_power {
                i + 1
            } else {
                number_end(bytes, i)
            };
            tokens.push(Token::Number(text[i..end].parse().ok()?));
            i = end;
            continue;
        }

        if byte == b'\\' {
            let name_end = (i + 1..bytes.len())
                .find(|&j| !bytes[j].is_ascii_alphabetic())
                .unwrap_or(bytes.len());
            let token = match &text[i + 1..name_end] {
                "pi" => Token::Pi,
                "frac" | "dfrac" | "tfrac" => Token::Frac,
                "sqrt" => Token::Sqrt,
                "cdot" | "times" => Token::Times,
                "div" => Token::Divide,
                _ => return None,
            };
            tokens.push(token);
            i = name_end;
            continue;
        }

        let token = match byte {
            b'+' => Token::Plus,
            b'-' => Token::Minus,
            b'*' => Token::Times,
            b'/' => Token::Divide,
            b'^' => Token::Power,
            b'(' | b'{' | b'[' => Token::Open(byte as char),
            b')' | b'}' | b']' => Token::Close(byte as char),
            _ => return None,
        };
        tokens.push(token);
        i += 1;
    }
    Some(tokens)
}

/// Returns the end offset of the number literal starting at `start`:
/// digits, an optional decimal part and an optional exponent part.
fn number_end(bytes: &[u8], start: usize) -> usize {
    let digits_from = |from: usize| {
        (from..bytes.len())
            .find(|&j| !bytes[j].is_ascii_digit())
            .unwrap_or(bytes.len())
    };

    let mut end = digits_from(start);
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits_from(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e') | Some(b'E')) {
        let mut exponent = end + 1;
        if matches!(bytes.get(exponent), Some(b'+') | Some(b'-')) {
            exponent += 1;
        }
        if bytes.get(exponent).is_some_and(u8::is_ascii_digit) {
            end = digits_from(exponent);
        }
    }
    end
}

/// Recursive-descent parser over the tokens. Grammar, loosest first:
///
/// ```text
/// expression := term (("+" | "-") term)*
/// term       := unary (("*" | "/")? unary)*     -- no operator: implicit product
/// unary      := ("+" | "-") unary | power
/// power      := primary ("^" unary)?            -- right-associative
/// primary    := number | \pi | \frac arg arg | \sqrt ("[" expression "]")? arg
///             | "(" expression ")" | "{" expression "}"
/// arg        := "{" expression "}" | primary
/// ```
struct Parser<'a> {
    tokens: &'a [Token],
    position: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.position).copied()
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.peek()?;
        self.position += 1;
        Some(token)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn expression(&mut self) -> Option<f64> {
        self.enter()?;
        let mut value = self.term()?;
        loop {
            match self.peek() {
                Some(Token::Plus) => {
                    self.position += 1;
                    value += self.term()?;
                }
                Some(Token::Minus) => {
                    self.position += 1;
                    value -= self.term()?;
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Some(value)
    }

    fn term(&mut self) -> Option<f64> {
        let mut value = self.unary()?;
        loop {
            match self.peek() {
                Some(Token::Times) => {
                    self.position += 1;
                    value *= self.unary()?;
                }
                Some(Token::Divide) => {
                    self.position += 1;
                    value /= self.unary()?;
                }
                Some(Token::Number(_) | Token::Pi | Token::Frac | Token::Sqrt | Token::Open(_)) => {
                    value *= self.power()?;
                }
                _ => break,
            }
            if !value.is_finite() {
                return None;
            }
        }
        Some(value)
    }

    fn unary(&mut self) -> Option<f64> {
        self.enter()?;
        let value = match self.peek()? {
            Token::Minus => {
                self.position += 1;
                -self.unary()?
            }
            Token::Plus => {
                self.position += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Some(value)
    }

    fn power(&mut self) -> Option<f64> {
        let base = self.primary()?;
        if self.peek() != Some(Token::Power) {
            return Some(base);
        }
        self.position += 1;

        let exponent = self.unary()?;
        if exponent.abs() > MAX_EXPONENT {
            return None;
        }
        let value = base.powf(exponent);
        value.is_finite().then_some(value)
    }

    fn primary(&mut self) -> Option<f64> {
        self.enter()?;
        let value = match self.advance()? {
            Token::Number(value) => value,
            Token::Pi => std::f64::consts::PI,
            Token::Frac => {
                let numerator = self.argument()?;
                let denominator = self.argument()?;
                numerator / denominator
            }
            Token::Sqrt => {
                let index = if self.peek() == Some(Token::Open('[')) {
                    self.position += 1;
                    let index = self.expression()?;
                    self.expect_close(']')?;
                    index
                } else {
                    2.0
                };
                let radicand = self.argument()?;
                if radicand < 0.0 || index == 0.0 {
                    return None;
                }
                radicand.powf(1.0 / index)
            }
            Token::Open(open) if open != '[' => {
                let value = self.expression()?;
                self.expect_close(if open == '(' { ')' } else { '}' })?;
                value
            }
            _ => return None,
        };
        self.depth -= 1;
        value.is_finite().then_some(value)
    }

    /// Reads a command argument: a braced group or a single primary.
    fn argument(&mut self) -> Option<f64> {
        if self.peek() == Some(Token::Open('{')) {
            self.position += 1;
            let value = self.expression()?;
            self.expect_close('}')?;
            Some(value)
        } else {
            self.primary()
        }
    }

    fn expect_close(&mut self, close: char) -> Option<()> {
        (self.advance()? == Token::Close(close)).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_closed_forms() {
        let cases = [
            ("\\frac{3}{4}", 0.75),
            ("2\\sqrt{3}", 2.0 * 3f64.sqrt()),
            ("\\frac{3\\pi}{2}", 1.5 * std::f64::consts::PI),
            ("1.5\\times10^{3}", 1500.0),
            ("1.5e3", 1500.0),
            ("2^10", 0.0),
            ("-2^{2}", -4.0),
            ("\\sqrt[3]{27}", 3.0),
            ("(1+2)(3)", 9.0),
            ("2\\cdot3", 6.0),
        ];
        for (text, expected) in cases {
            let value = evaluate(text);
            assert!(
                value.is_some_and(|v| close(v, expected)),
                "{text}: {value:?}"
            );
        }
    }

    #[test]
    fn evaluate_rejects_non_numbers() {
        let cases = [
            "x+1",
            "\\infty",
            "10^{10^{10}}",
            "\\frac{1}{0}",
            "(1",
            "\\sqrt{-1}",
            "1,2",
            "",
        ];
        for text in cases {
            assert_eq!(evaluate(text), None, "{text}");
        }
    }

    #[test]
    fn evaluate_bounds_nesting() {
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(evaluate(&deep), None);
    }

    #[test]
    fn close_uses_relative_tolerance() {
        assert!(close(1.0 / 3.0, 2.0 / 6.0));
        assert!(!close(0.333, 1.0 / 3.0));
        assert!(close(0.0, 1e-13));
    }
}
