//! Final-answer extraction: finds where a solution states its answer.
//!
//! Extraction is a chain of small steps, each usable and tested alone:
//! find every candidate of one kind ([`hash_answers`], [`boxed_answers`],
//! [`phrase_answers`]), take the last one ([`last`]), and strip the
//! presentation around it ([`strip_wrappers`]). [`extract`] composes them
//! per format and role. Every scan is linear in the text length, so a
//! 10 KB sample costs microseconds.

use crate::data::Format;

/// Which text is being read: the dataset's reference or a model's sample.
///
/// GSM8k references always end in `#### N`, so only that marker is read
/// there; samples may phrase their answer in other ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reference,
    Sample,
}

/// Extracts the raw final answer (wrappers stripped, not yet normalized).
///
/// - GSM8k reference: the last `#### X`.
/// - GSM8k sample: the last `#### X`, else the last "The answer is X"
///   phrase, else the last `\boxed{X}`.
/// - MATH (both roles): the last `\boxed{X}` / `\fbox{X}`, else the last
///   "The answer is X" / "Final Answer: X" phrase.
///
/// The *last* candidate wins because a sample that first repeats a worked
/// example (with that example's answer) states its own answer after it.
/// Returns `None` when no candidate exists or the candidate is empty after
/// stripping (`#### ,` or `\boxed{}`).
pub fn extract(format: Format, role: Role, text: &str) -> Option<String> {
    let candidate = match (format, role) {
        (Format::Gsm8k, Role::Reference) => last(hash_answers(text)),
        (Format::Gsm8k, Role::Sample) => last(hash_answers(text))
            .or_else(|| last(phrase_answers(text)).map(cut_sentence))
            .or_else(|| last(boxed_answers(text))),
        (Format::Math, _) => {
            last(boxed_answers(text)).or_else(|| last(phrase_answers(text)).map(cut_sentence))
        }
    }?;

    let stripped = strip_wrappers(candidate);
    (!stripped.is_empty()).then_some(stripped)
}

/// Returns the last candidate, the one a solution states at its end.
/// Candidates borrow from the text, so finding many costs no copies.
pub fn last(candidates: Vec<&str>) -> Option<&str> {
    candidates.into_iter().last()
}

/// Finds the text after each `####` marker, up to the end of its line.
pub fn hash_answers(text: &str) -> Vec<&str> {
    let line_ends = LineEnds::new(text);
    text.match_indices("####")
        .map(|(start, marker)| {
            let rest = line_ends.rest_of_line(text, start + marker.len());
            rest.trim_start_matches('#').trim()
        })
        .collect()
}

/// Byte offsets of the line breaks of a text, found once so that cutting
/// many candidates at their line ends stays linear in the text length.
struct LineEnds(Vec<usize>);

impl LineEnds {
    fn new(text: &str) -> Self {
        LineEnds(text.match_indices('\n').map(|(i, _)| i).collect())
    }

    /// Returns the text from `start` to the end of its line, without `\r`.
    fn rest_of_line<'t>(&self, text: &'t str, start: usize) -> &'t str {
        let next = self.0.partition_point(|&end| end < start);
        let end = self.0.get(next).copied().unwrap_or(text.len());
        text[start..end].trim_end_matches('\r')
    }
}

/// Finds the argument of each `\boxed` and `\fbox`, in text order.
///
/// Braced arguments may nest (`\boxed{\frac{1}{2}}`); braces are matched in
/// one linear pass, so unbalanced input cannot cause quadratic rescans. An
/// unbraced argument (`\boxed 5`) runs to the next space, `$` or end. A
/// `\boxed{` whose brace never closes yields no candidate.
pub fn boxed_answers(text: &str) -> Vec<&str> {
    let closing = matching_braces(text);
    let mut answers = Vec::new();

    for command in ["\\boxed", "\\fbox"] {
        for (start, _) in text.match_indices(command) {
            let after = start + command.len();
            let rest = &text[after..];

            // `\boxedfoo` is another command, not a box.
            if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
                continue;
            }

            let skipped = rest.len() - rest.trim_start().len();
            let open = after + skipped;
            if text[open..].starts_with('{') {
                if let Some(&Some(close)) = closing.get(open) {
                    answers.push((start, &text[open + 1..close]));
                }
            } else if skipped > 0 {
                let word_end = text[open..]
                    .find(|c: char| c.is_whitespace() || c == '$')
                    .map_or(text.len(), |offset| open + offset);
                answers.push((start, &text[open..word_end]));
            }
        }
    }

    answers.sort_by_key(|(start, _)| *start);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// Maps each byte offset of a `{` to the offset of its matching `}`.
///
/// Escaped braces (`\{`, `\}`) are LaTeX set delimiters and count as
/// ordinary characters, matching how TeX reads them.
fn matching_braces(text: &str) -> Vec<Option<usize>> {
    let bytes = text.as_bytes();
    let mut closing = vec![None; bytes.len()];
    let mut open_stack = Vec::new();

    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => open_stack.push(i),
            b'}' => {
                if let Some(open) = open_stack.pop() {
                    closing[open] = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    closing
}

/// Phrases that introduce a final answer in prose, matched case-insensitively.
/// The bold forms cover markdown labels such as `**Final Answer**: 5`.
const ANSWER_PHRASES: [&str; 6] = [
    "the final answer is",
    "final answer:",
    "final answer**:",
    "the answer is",
    "answer:",
    "answer**:",
];

/// Finds the text after each answer phrase ("The answer is X", "Final
/// Answer: X"), in text order. Each candidate runs to the end of the text,
/// so apply [`cut_sentence`] to the chosen one to end it at its sentence.
///
/// When a longer phrase contains a shorter one ("final answer:" contains
/// "answer:"), the overlapping shorter match is dropped.
pub fn phrase_answers(text: &str) -> Vec<&str> {
    let lower = text.to_ascii_lowercase();
    let mut spans: Vec<(usize, usize)> = Vec::new();

    for phrase in ANSWER_PHRASES {
        for (start, _) in lower.match_indices(phrase) {
            let end = start + phrase.len();
            let overlaps = spans.iter().any(|&(s, e)| start < e && s < end);
            if !overlaps {
                spans.push((start, end));
            }
        }
    }

    spans.sort();
    spans.into_iter().map(|(_, end)| &text[end..]).collect()
}

/// Maximum phrase answer length in bytes, where [`cut_sentence`] stops.
pub const MAX_PHRASE_BYTES: usize = 2000;

/// Cuts a phrase answer at the end of its sentence.
///
/// Outside brackets and math (`$..$`, `$$..$$`, `\(..\)`, `\[..\]`), the
/// answer ends at a line break, at a period followed by a space or the
/// end, or at a comma followed by a space and a lowercase word ("The
/// answer is 5, since ..."). So `3.5`, `1, 3`, `$[a+b, b]$` and a matrix
/// spanning lines stay whole. A blank line always ends the answer, which
/// limits the damage of an unclosed `$`.
pub fn cut_sentence(rest: &str) -> &str {
    let bytes = rest.as_bytes();
    let limit = bytes.len().min(MAX_PHRASE_BYTES);
    let mut depth: i64 = 0;
    let mut in_math = false;

    let mut i = 0;
    while i < limit {
        let byte = bytes[i];
        let next = bytes.get(i + 1).copied();
        let outside = depth <= 0 && !in_math;

        match byte {
            b'\\' => {
                match next {
                    Some(b'[') | Some(b'(') => in_math = true,
                    Some(b']') | Some(b')') => in_math = false,
                    _ => {}
                }
                i += 1;
            }
            b'$' => {
                in_math = !in_math;
                if next == Some(b'$') {
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            b'\n' if outside || next == Some(b'\n') => return rest[..i].trim(),
            b'.' | b',' if outside && ends_sentence(rest, i) => return rest[..i].trim(),
            _ => {}
        }
        i += 1;
    }
    rest[..floor_char_boundary(rest, limit)].trim()
}

/// Tells whether the period or comma at `i` ends a sentence (see
/// [`cut_sentence`]).
fn ends_sentence(text: &str, i: usize) -> bool {
    let bytes = text.as_bytes();
    let next = bytes.get(i + 1).copied();
    let after_next = bytes.get(i + 2).copied();

    if bytes[i] == b'.' {
        return matches!(next, None | Some(b' ') | Some(b'\t') | Some(b'\n'));
    }
    next == Some(b' ')
        && after_next.is_some_and(|c| c.is_ascii_lowercase())
        && !text[i + 2..].starts_with("and ")
        && !text[i + 2..].starts_with("or ")
}

/// Returns the largest character boundary at or below `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    (0..=index.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// Strips presentation around an answer until nothing changes: markdown
/// bold or italics (`**72**`), inline and display math delimiters (`$..$`,
/// `\[..\]`, `\(..\)`), trailing punctuation (`72.`, `72,`, `72!`) and
/// trailing special tokens (`72<|im_end|>`, `72</s>`).
///
/// Only delimiters that wrap the whole answer are removed, so `$5 + $3`
/// stays intact. A leading `$` of a dollar amount is left for the
/// normalizer, which drops currency signs. A leading colon (`The answer
/// is: 5`) is removed too.
///
/// At most [`MAX_STRIP_PASSES`] layers are removed, which bounds the work
/// on inputs such as a thousand nested `$` pairs.
pub fn strip_wrappers(answer: &str) -> String {
    let mut current = answer.trim().to_string();
    for _ in 0..MAX_STRIP_PASSES {
        let next = strip_once(&current);
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Most wrapper layers [`strip_wrappers`] removes; real answers have two or
/// three (`**$72$**.`).
pub const MAX_STRIP_PASSES: usize = 16;

/// Performs one stripping pass for [`strip_wrappers`].
fn strip_once(answer: &str) -> String {
    let trimmed = answer
        .trim()
        .trim_start_matches(':')
        .trim_end_matches(['.', ',', ';', '!', ':'])
        .trim();

    let pairs = [
        ("**", "**"),
        ("__", "__"),
        ("\\[", "\\]"),
        ("\\(", "\\)"),
        ("$$", "$$"),
        ("$", "$"),
        ("*", "*"),
    ];
    for (open, close) in pairs {
        let wrapped = trimmed.len() >= open.len() + close.len()
            && trimmed.starts_with(open)
            && trimmed.ends_with(close);
        if wrapped {
            let inner = &trimmed[open.len()..trimmed.len() - close.len()];
            return inner.trim().to_string();
        }
    }

    // A tokenizer's end marker decoded into the text: `72<|im_end|>`, `72</s>`.
    if let Some(inner) = trimmed.strip_suffix("</s>") {
        return inner.trim().to_string();
    }
    if trimmed.ends_with("|>") {
        if let Some(start) = trimmed.rfind("<|") {
            return trimmed[..start].trim().to_string();
        }
    }

    // A stray closing delimiter left by the sentence cut: `5$` or `5**`.
    let unbalanced = trimmed.matches('$').count() == 1 && trimmed.ends_with('$');
    if unbalanced {
        return trimmed.trim_end_matches('$').trim().to_string();
    }
    if let Some(inner) = trimmed.strip_prefix("**") {
        if !inner.contains("**") {
            return inner.trim().to_string();
        }
    }
    if let Some(inner) = trimmed.strip_suffix("**") {
        if !inner.contains("**") {
            return inner.trim().to_string();
        }
    }
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_answers_reads_each_marker() {
        let found = hash_answers("a\n#### 5\nmore\n#### 1,000 dollars");
        assert_eq!(found, vec!["5", "1,000 dollars"]);
    }

    #[test]
    fn boxed_answers_handles_nesting() {
        let found = boxed_answers(r"x \boxed{\frac{1}{2}} y \fbox{3} z \boxed 7$");
        assert_eq!(found, vec![r"\frac{1}{2}", "3", "7"]);
    }

    #[test]
    fn boxed_answers_skips_unclosed_brace() {
        assert!(boxed_answers(r"\boxed{1").is_empty());
        assert!(boxed_answers(r"\boxedx{1}").is_empty());
    }

    #[test]
    fn phrase_answers_cut_at_sentence() {
        let cases = [
            ("The answer is 5, since it works.", "5"),
            ("The answer is 3.5. Done", "3.5"),
            ("So the answer is 1, 3", "1, 3"),
            ("Final Answer: The final answer is $7$. I hope", "$7$"),
            ("The answer is $[a+b, b]$.", "$[a+b, b]$"),
            (
                "The answer is $34\\text{ sq. units}$.",
                "$34\\text{ sq. units}$",
            ),
            (
                "The answer is $\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}$.\nNext",
                "$\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}$",
            ),
            ("The answer is 7\nQuestion: 8", "7"),
            ("The answer is $7\n\nQuestion: 8$", "$7"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                last(phrase_answers(text)).map(cut_sentence),
                Some(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn last_takes_final_candidate() {
        assert_eq!(last(vec!["1", "2"]), Some("2"));
        assert_eq!(last(Vec::new()), None);
    }

    #[test]
    fn strip_wrappers_removes_presentation() {
        let cases = [
            ("**72**", "72"),
            ("$\\frac{1}{2}$.", "\\frac{1}{2}"),
            ("\\[ 5 \\],", "5"),
            ("**$8$**.", "8"),
            ("$5 + $3", "$5 + $3"),
            ("12.", "12"),
            ("72<|im_end|>", "72"),
            ("**72**</s>", "72"),
        ];
        for (raw, expected) in cases {
            assert_eq!(strip_wrappers(raw), expected, "{raw}");
        }
    }
}
