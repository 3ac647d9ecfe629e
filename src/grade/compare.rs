//! Answer equivalence: decides whether a sample's cleaned answer states the
//! same value as the reference's.
//!
//! A cleaned answer (see [`super::normalize::clean`]) is first read as a
//! [`Shape`]: a scalar, an ordered tuple or interval, or an unordered list.
//! Scalars are equal when their canonical texts match or when both evaluate
//! to numbers within the tolerance of [`super::numeric::close`].

use crate::data::Format;

use super::normalize;
use super::numeric;

/// Most elements compared one by one; longer lists compare by their
/// canonical text, which keeps pairing cost bounded on 10 KB inputs.
pub const MAX_ELEMENTS: usize = 64;

/// The structure of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// One value, as canonical text.
    Scalar(String),
    /// A tuple or interval: its brackets and its elements in order.
    Ordered {
        open: char,
        close: char,
        elements: Vec<String>,
    },
    /// A set or a "find all" list: `\{1,3\}`, `1, 3`, `1 and 3`.
    Unordered(Vec<String>),
}

impl Shape {
    /// Canonical text of the whole answer, as shown by `--explain`.
    pub fn render(&self) -> String {
        match self {
            Shape::Scalar(text) => text.clone(),
            Shape::Ordered {
                open,
                close,
                elements,
            } => format!("{open}{}{close}", elements.join(",")),
            Shape::Unordered(elements) => elements.join(","),
        }
    }
}

/// Reads a cleaned answer as a [`Shape`].
///
/// - GSM8k answers are always scalars. When the text is not a closed-form
///   number (`She has 18`), its first number is the answer.
/// - MATH: `(a,b)`, `[a,b)` and the like are ordered when their opening
///   bracket closes at the very end. `\{a,b\}` and bare top-level comma
///   lists are unordered, and anything else is a scalar. `(x+1)(x-2)` is a
///   scalar because its first parenthesis closes before the end.
pub fn shape(format: Format, cleaned: &str) -> Shape {
    if format == Format::Gsm8k {
        return Shape::Scalar(gsm8k_scalar(cleaned));
    }

    if let Some(inner) = cleaned
        .strip_prefix("\\{")
        .and_then(|rest| rest.strip_suffix("\\}"))
    {
        if encloses_whole(inner) {
            return Shape::Unordered(expand_plus_minus(split_elements(inner)));
        }
    }

    let first = cleaned.chars().next();
    let last = cleaned.chars().last();
    if let (Some(open @ ('(' | '[')), Some(close @ (')' | ']'))) = (first, last) {
        let inner = &cleaned[1..cleaned.len() - 1];
        let elements = split_elements(inner);
        if encloses_whole(inner) && elements.len() >= 2 {
            return Shape::Ordered {
                open,
                close,
                elements,
            };
        }
    }

    let elements = expand_plus_minus(split_elements(cleaned));
    if elements.len() >= 2 {
        return Shape::Unordered(elements);
    }
    Shape::Scalar(normalize::element(cleaned))
}

/// Expands each list element with one `\pm` into its two values, so
/// `\pm 2` is the list `2, -2` and `1\pm\sqrt{2}` is `1+\sqrt{2}, 1-\sqrt{2}`.
/// Elements with several `\pm` stay as written, because their expansion
/// is ambiguous. Tuple elements are never expanded.
fn expand_plus_minus(elements: Vec<String>) -> Vec<String> {
    let mut expanded = Vec::with_capacity(elements.len());
    for element in elements {
        let single = element.matches("\\pm").count() == 1;
        let is_command = element
            .split("\\pm")
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()));
        if single && !is_command && expanded.len() < MAX_ELEMENTS {
            expanded.push(normalize::element(&element.replacen("\\pm", "+", 1)));
            expanded.push(normalize::element(&element.replacen("\\pm", "-", 1)));
        } else {
            expanded.push(element);
        }
    }
    expanded
}

/// Canonical GSM8k value: the element if it is a closed-form number, else
/// the first number of a prose answer, else the element text itself.
///
/// The first number is taken only when everything else in the text is
/// words and punctuation (`She has 18 left`). Math around the number means
/// the answer is an expression the evaluator rejected, such as
/// `10^{10^{10}}`, and its first digits are not its value.
fn gsm8k_scalar(cleaned: &str) -> String {
    let element = normalize::element(cleaned);
    if numeric::evaluate(&element).is_some() {
        return element;
    }

    let Some(number) = normalize::first_number(cleaned) else {
        return element;
    };
    let rest = cleaned.replacen(&number, "", 1);
    let is_prose = rest
        .chars()
        .all(|c| c.is_alphabetic() || c.is_whitespace() || ".,:;!?'\"".contains(c));
    if is_prose {
        number
    } else {
        element
    }
}

/// Tells whether every bracket in `inner` closes inside it, so that the
/// brackets around it belong together.
fn encloses_whole(inner: &str) -> bool {
    let mut depth: i64 = 0;
    for c in inner.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Splits at top-level commas (outside any bracket) and canonicalizes each
/// element; empty elements (`1,,2`) are dropped.
fn split_elements(text: &str) -> Vec<String> {
    let mut elements = Vec::new();
    let mut depth: i64 = 0;
    let mut start = 0;

    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                elements.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    elements.push(&text[start..]);

    elements
        .into_iter()
        .map(normalize::element)
        .filter(|element| !element.is_empty())
        .collect()
}

/// Tells whether the sample's shape states the reference's answer.
///
/// Judgement calls:
/// - Tuples and intervals need the same brackets and the same elements in
///   the same order: `[0,1)` differs from `(0,1)`, `(1,2)` from `(2,1)`.
/// - Unordered lists need the same elements in any order, each matched
///   once. A sample that names only some of the reference's answers is
///   wrong, and so is one that adds extra answers.
/// - A one-element list equals a scalar (`\{5\}` vs `5`).
/// - A bare list never equals a tuple: `1,2` is a list, `(1,2)` a point.
/// - Lists longer than [`MAX_ELEMENTS`] compare by canonical text only.
pub fn equivalent(reference: &Shape, sample: &Shape) -> bool {
    if reference.render() == sample.render() {
        return true;
    }

    match (reference, sample) {
        (Shape::Scalar(a), Shape::Scalar(b)) => scalars_equal(a, b),
        (
            Shape::Ordered {
                open: open_a,
                close: close_a,
                elements: a,
            },
            Shape::Ordered {
                open: open_b,
                close: close_b,
                elements: b,
            },
        ) => {
            let same_brackets = open_a == open_b && close_a == close_b;
            let comparable = a.len() == b.len() && a.len() <= MAX_ELEMENTS;
            same_brackets && comparable && a.iter().zip(b).all(|(x, y)| scalars_equal(x, y))
        }
        (Shape::Unordered(a), Shape::Unordered(b)) => lists_match(a, b),
        (Shape::Unordered(a), Shape::Scalar(b)) | (Shape::Scalar(b), Shape::Unordered(a)) => {
            a.len() == 1 && scalars_equal(&a[0], b)
        }
        _ => false,
    }
}

/// Pairs each reference element with a distinct equal sample element.
///
/// Greedy pairing is exact here because equality of canonical answers is
/// an equivalence relation up to the numeric tolerance.
fn lists_match(reference: &[String], sample: &[String]) -> bool {
    if reference.len() != sample.len() || reference.len() > MAX_ELEMENTS {
        return false;
    }

    let mut used = vec![false; sample.len()];
    for element in reference {
        let partner = (0..sample.len()).find(|&j| !used[j] && scalars_equal(element, &sample[j]));
        match partner {
            Some(j) => used[j] = true,
            None => return false,
        }
    }
    true
}

/// Compares two canonical scalars: equal text, or equal closed-form values
/// within the numeric tolerance. Text that does not evaluate (variables,
/// `\infty`, words) must match exactly after normalization.
pub fn scalars_equal(reference: &str, sample: &str) -> bool {
    if reference == sample {
        return true;
    }
    match (numeric::evaluate(reference), numeric::evaluate(sample)) {
        (Some(a), Some(b)) => numeric::close(a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_reads_structures() {
        assert_eq!(shape(Format::Math, "5"), Shape::Scalar("5".into()));
        assert!(matches!(
            shape(Format::Math, "(1,2]"),
            Shape::Ordered {
                open: '(',
                close: ']',
                ..
            }
        ));
        assert!(matches!(
            shape(Format::Math, "\\{1,3\\}"),
            Shape::Unordered(_)
        ));
        assert!(matches!(shape(Format::Math, "1, 3"), Shape::Unordered(_)));
        assert!(matches!(
            shape(Format::Math, "(x+1)(x-2)"),
            Shape::Scalar(_)
        ));
        assert_eq!(
            shape(Format::Gsm8k, "She has 18"),
            Shape::Scalar("18".into())
        );
        assert_eq!(
            shape(Format::Math, "\\pm2"),
            Shape::Unordered(vec!["2".into(), "-2".into()])
        );
        assert_eq!(
            shape(Format::Math, "\\pmod3"),
            Shape::Scalar("\\pmod3".into())
        );
    }

    #[test]
    fn lists_match_needs_every_element() {
        let reference = vec!["1".to_string(), "3".to_string()];
        assert!(lists_match(&reference, &["3".into(), "1".into()]));
        assert!(!lists_match(&reference, &["1".into()]));
        assert!(!lists_match(&reference, &["1".into(), "1".into()]));
    }
}
