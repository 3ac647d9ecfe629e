//! Answer normalization: rewrites an extracted answer into a canonical text
//! so that notational variants of one value compare equal.
//!
//! The rules cover the LaTeX variants common in MATH solutions and model
//! outputs (`\left`, `\dfrac`, `\text{}`, units, degrees). Normalization runs
//! in two stages: [`clean`] works on the whole answer (it must run before
//! the answer is split into list elements, because it decides what a comma
//! means), and [`element`] canonicalizes one scalar element.

use crate::data::Format;

/// LaTeX commands that only change spacing or sizing and are deleted.
const SPACING_COMMANDS: [&str; 10] = [
    "\\left",
    "\\right",
    "\\displaystyle",
    "\\quad",
    "\\qquad",
    "\\big",
    "\\Big",
    "\\bigl",
    "\\bigr",
    "\\limits",
];

/// Commands whose braced argument is shown as plain text and kept.
const TEXT_COMMANDS: [&str; 8] = [
    "\\text",
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\textnormal",
    "\\mbox",
    "\\mathrm",
    "\\mathbf",
];

/// Cleans a whole extracted answer: deletes spacing and sizing commands,
/// unifies fraction commands, drops degree marks, currency and percent
/// signs and trailing units, unwraps `\text{...}`, turns the words "and" /
/// "or" between list elements into commas, and removes thousands
/// separators by the rule of [`remove_thousands_separators`].
///
/// Percent rule: the `%` sign is dropped and the number kept as written,
/// so `28\%` equals `28` but not `0.28`. GSM8k and MATH references write
/// percentages as bare numbers ("#### 28"), and models add the sign.
pub fn clean(format: Format, answer: &str, commas: Commas) -> String {
    let mut text = answer.replace(['\u{2212}', '\u{2013}'], "-");

    for command in SPACING_COMMANDS {
        text = remove_command(&text, command);
    }
    text = replace_spacing_symbols(&text).replace('~', " ");

    text = text
        .replace("\\dfrac", "\\frac")
        .replace("\\tfrac", "\\frac")
        .replace("\\cfrac", "\\frac");
    text = text.replace("{,}", "");

    text = remove_degrees(&text);
    text = text.replace("\\$", "").replace('$', "");
    text = text.replace("\\%", "").replace('%', "");

    text = drop_trailing_text_unit(&text);
    text = unwrap_text_commands(&text);
    text = drop_trailing_unit_words(&text);
    text = list_words_to_commas(&text);

    match commas {
        Commas::ByFormat => remove_thousands_separators(format, text.trim()),
        Commas::ListSeparators => text.trim().to_string(),
    }
}

/// Reading of commas between digits in [`clean`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commas {
    /// By the format's rule in [`remove_thousands_separators`].
    ByFormat,
    /// Always as list separators, for a sample whose reference is a list.
    ListSeparators,
}

/// Removes `\name` where it is a whole command (`\left(` but not
/// `\leftarrow`).
fn remove_command(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find(name) {
        let after = &rest[position + name.len()..];
        out.push_str(&rest[..position]);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(name);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Replaces the spacing commands `\,` `\;` `\:` `\ ` by a space and
/// deletes the negative space `\!`, so `112,\!875` keeps its digit groups
/// together. The scan reads `\\` (a matrix row break) as one command, so the
/// space in `1 \\ 2` is not taken for `\ `.
fn replace_spacing_symbols(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();

    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('!') => {}
            Some(',' | ';' | ':' | ' ') => out.push(' '),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Drops degree marks: `^\circ`, `^{\circ}`, `\circ`, `\degree`, `°` and a
/// trailing word "degrees".
fn remove_degrees(text: &str) -> String {
    let mut out = text.replace("^{\\circ}", "").replace("^\\circ", "");
    out = out
        .replace("\\circ", "")
        .replace("\\degree", "")
        .replace('°', "");
    out
}

/// Drops a trailing `\text{...}` or `\mbox{...}` that holds only words, as
/// in `5\text{ cm}` or `12\mbox{ inches}^2`, when something precedes it:
/// a unit after a value is not part of the value. A whole-answer
/// `\text{Evelyn}` is kept (it is the answer).
fn drop_trailing_text_unit(text: &str) -> String {
    let trimmed = text.trim_end();
    let without_power = trimmed
        .strip_suffix("^2")
        .or_else(|| trimmed.strip_suffix("^3"))
        .or_else(|| trimmed.strip_suffix("^{2}"))
        .or_else(|| trimmed.strip_suffix("^{3}"))
        .unwrap_or(trimmed);

    let Some(body) = without_power.strip_suffix('}') else {
        return text.to_string();
    };
    for command in [
        "\\text{",
        "\\mbox{",
        "\\textrm{",
        "\\textnormal{",
        "\\mathrm{",
    ] {
        let Some(start) = body.rfind(command) else {
            continue;
        };
        let inner = &body[start + command.len()..];
        let prefix = body[..start].trim();
        let is_words = !inner.trim().is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '.');
        let is_list_word = matches!(inner.trim(), "and" | "or");
        if is_words && !is_list_word && !prefix.is_empty() && !prefix.ends_with(',') {
            return prefix.to_string();
        }
    }
    text.to_string()
}

/// Replaces each text command by its braced argument: `\text{13}` becomes
/// `13`, `\text{(C)}` becomes `(C)`. An argument without a closing brace
/// is left as written.
fn unwrap_text_commands(text: &str) -> String {
    let mut out = text.to_string();
    for command in TEXT_COMMANDS {
        let opener = format!("{command}{{");
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(position) = rest.find(&opener) {
            result.push_str(&rest[..position]);
            let argument = &rest[position + opener.len()..];
            match closing_brace(argument) {
                Some(close) => {
                    result.push_str(&argument[..close]);
                    rest = &argument[close + 1..];
                }
                None => {
                    result.push_str(&opener);
                    rest = argument;
                }
            }
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Returns the offset of the `}` that closes a group whose `{` was just
/// consumed, or `None` when the group never closes.
pub(crate) fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Drops plain words after a value, as in `18 dollars`, `5 cm^2` or
/// `12 square feet`: the value ends in a digit, `}` or `)`, and every word
/// after it has at least two letters and is not "and" / "or". Single
/// letters are kept because they are usually variables (`2 x`).
fn drop_trailing_unit_words(text: &str) -> String {
    let trimmed = text.trim_end();
    let cut_power = trimmed
        .strip_suffix("^2")
        .or_else(|| trimmed.strip_suffix("^3"))
        .unwrap_or(trimmed);

    let words_start = cut_power
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic() || *c == ' ' || *c == '.')
        .last()
        .map(|(i, _)| i);
    let Some(start) = words_start else {
        return text.to_string();
    };

    let (value, words) = cut_power.split_at(start);
    let value = value.trim_end();
    let ends_in_value = value.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
    let is_command_argument = value.ends_with('\\');
    let all_unit_words = words.starts_with(' ')
        && words
            .split_whitespace()
            .all(|w| w.trim_matches('.').len() >= 2 && !matches!(w, "and" | "or"));

    if ends_in_value && !is_command_argument && all_unit_words {
        value.to_string()
    } else {
        text.to_string()
    }
}

/// Turns " and " / " or " between list elements into commas, so `1 and 3`
/// reads as the list `1, 3`.
fn list_words_to_commas(text: &str) -> String {
    text.replace(", and ", ", ")
        .replace(", or ", ", ")
        .replace(" and ", ", ")
        .replace(" or ", ", ")
}

/// Removes thousands separators.
///
/// - GSM8k answers are single numbers, so every comma between a digit and
///   a group of exactly three digits is a separator (`1,080`, `2,520,000`).
/// - In MATH a comma usually separates list or tuple elements (`1,2`).
///   Commas are thousands separators only when the *whole* answer is one
///   number in thousands form (`-1,000,000.5`): an optional sign, one to
///   three digits, one or more `,ddd` groups and an optional decimal part.
///   The brace form `9{,}500` is always a separator, removed by [`clean`].
///
/// NOTE: a MATH answer list of numbers written without spaces, such as
/// `10,100`, reads as the number 10100, unless the grader reads a sample
/// against a list reference (see [`Commas::ListSeparators`]).
pub fn remove_thousands_separators(format: Format, text: &str) -> String {
    match format {
        Format::Gsm8k => remove_digit_group_commas(text),
        Format::Math if is_thousands_number(text) => text.replace(',', ""),
        Format::Math => text.to_string(),
    }
}

/// Removes each comma that sits between a digit and exactly three digits.
fn remove_digit_group_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let is_separator = c == ','
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.len() >= i + 4
            && chars[i + 1..i + 4].iter().all(char::is_ascii_digit)
            && !chars.get(i + 4).is_some_and(char::is_ascii_digit);
        if !is_separator {
            out.push(c);
        }
    }
    out
}

/// Tells whether the text is one number in thousands form (`-1,234.5`).
fn is_thousands_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (integer, decimals) = match unsigned.split_once('.') {
        Some((integer, decimals)) => (integer, Some(decimals)),
        None => (unsigned, None),
    };
    if decimals.is_some_and(|d| d.is_empty() || !d.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }

    let groups: Vec<&str> = integer.split(',').collect();
    let first_ok =
        (1..=3).contains(&groups[0].len()) && groups[0].chars().all(|c| c.is_ascii_digit());
    let rest_ok = groups[1..]
        .iter()
        .all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()));
    groups.len() >= 2 && first_ok && rest_ok
}

/// Canonicalizes one scalar element: drops a `x =` prefix, rewrites mixed
/// numbers, removes whitespace, braces single-character `\frac` and `\sqrt`
/// arguments (`\frac12` becomes `\frac{1}{2}`), drops a leading `+` and
/// writes `.5` as `0.5`.
pub fn element(text: &str) -> String {
    let text = strip_variable_prefix(text.trim());
    let text = rewrite_mixed_number(text.trim()).unwrap_or_else(|| text.trim().to_string());

    let mut compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact = brace_short_arguments(&compact);
    compact = brace_scripts(&compact);

    if let Some(rest) = compact.strip_prefix('+') {
        compact = rest.to_string();
    }
    if compact.starts_with('.') {
        compact.insert(0, '0');
    }
    if compact.starts_with("-.") {
        compact.insert(1, '0');
    }
    compact
}

/// Drops a `name =` prefix (`x = 5`, `k=3`, `\theta = \pi`) when the
/// answer has exactly one `=` and the name is one letter, optionally with
/// a subscript, or one Greek-letter command. Equations such as
/// `y = 2x + 1` keep everything right of the `=` too, because the
/// reference in such problems is written the same way and is normalized by
/// the same rule.
fn strip_variable_prefix(text: &str) -> &str {
    if text.matches('=').count() != 1 {
        return text;
    }
    let (name, value) = text.split_once('=').unwrap_or((text, ""));
    let name = name.trim();
    let base = name.split('_').next().unwrap_or(name);
    let is_letter = base.len() == 1 && base.chars().all(|c| c.is_ascii_alphabetic());
    let is_greek = base.starts_with('\\')
        && base.len() <= 8
        && base[1..].chars().all(|c| c.is_ascii_alphabetic());
    let short_subscript = name.len() <= base.len() + 4;
    if (is_letter || is_greek) && short_subscript && !value.trim().is_empty() {
        value.trim()
    } else {
        text
    }
}

/// Rewrites a whole-element mixed number as an improper fraction.
///
/// Rule: an integer followed by a *proper* fraction of two positive
/// integers (numerator below denominator) is their sum, whether written
/// `2\frac{1}{2}`, `2\frac12` or `1 1/4`. A leading minus applies to the
/// whole number (`-2\frac{1}{2}` is -5/2). Anything else keeps its LaTeX
/// meaning, so `2\frac{3}{2}` and `2\frac{\sqrt{3}}{2}` are products.
fn rewrite_mixed_number(text: &str) -> Option<String> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest.trim_start()),
        None => ("", text),
    };

    let digits_end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    if digits_end == 0 || digits_end > 12 {
        return None;
    }
    let whole: u64 = unsigned[..digits_end].parse().ok()?;
    let rest = &unsigned[digits_end..];

    let (numerator, denominator) = if let Some(fraction) = rest.trim_start().strip_prefix("\\frac")
    {
        let braced = brace_short_arguments(&format!("\\frac{}", fraction.trim()));
        let inner = braced.strip_prefix("\\frac{")?.strip_suffix('}')?;
        let (numerator, denominator) = inner.split_once("}{")?;
        (numerator.to_string(), denominator.to_string())
    } else if rest.starts_with(' ') {
        let (numerator, denominator) = rest.trim().split_once('/')?;
        (numerator.to_string(), denominator.to_string())
    } else {
        return None;
    };

    let numerator: u64 = numerator.trim().parse().ok()?;
    let denominator: u64 = denominator.trim().parse().ok()?;
    if numerator == 0 || numerator >= denominator || denominator > 1_000_000_000 {
        return None;
    }
    let improper = whole.checked_mul(denominator)?.checked_add(numerator)?;
    Some(format!("{sign}\\frac{{{improper}}}{{{denominator}}}"))
}

/// Braces the single-character arguments of `\frac` and `\sqrt`, as TeX
/// reads them: `\frac12` is `\frac{1}{2}`, `\frac1{x}` is `\frac{1}{x}`,
/// `\sqrt3` is `\sqrt{3}`.
fn brace_short_arguments(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;

    while let Some(position) = rest.find('\\') {
        out.push_str(&rest[..position]);
        let after = &rest[position..];
        let (command, argument_count) = if after.starts_with("\\frac") {
            ("\\frac", 2)
        } else if after.starts_with("\\sqrt") {
            ("\\sqrt", 1)
        } else {
            out.push('\\');
            rest = &after[1..];
            if let Some(c) = rest.chars().next() {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
            continue;
        };

        out.push_str(command);
        rest = &after[command.len()..];
        for _ in 0..argument_count {
            match rest.chars().next() {
                Some(c) if c.is_ascii_alphanumeric() => {
                    out.push('{');
                    out.push(c);
                    out.push('}');
                    rest = &rest[1..];
                }
                _ => break,
            }
        }
    }
    out.push_str(rest);
    out
}

/// Braces one-character superscripts and subscripts, as TeX reads them:
/// `x^2` becomes `x^{2}` and `a_1` becomes `a_{1}`, so both spellings
/// compare equal as text.
fn brace_scripts(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();

    while let Some(c) = chars.next() {
        out.push(c);
        if c != '^' && c != '_' {
            continue;
        }
        if let Some(&next) = chars.peek() {
            if next.is_ascii_alphanumeric() {
                chars.next();
                out.push('{');
                out.push(next);
                out.push('}');
            }
        }
    }
    out
}

/// Finds the first number in a text (`She paid 18` gives `18`), with an
/// optional sign, decimal part and `/denominator`. GSM8k uses it when the
/// answer is a phrase rather than a value.
pub fn first_number(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let start = (0..bytes.len()).find(|&i| bytes[i].is_ascii_digit())?;
    let signed_start = if start > 0 && bytes[start - 1] == b'-' {
        start - 1
    } else {
        start
    };

    let mut end = start;
    let mut seen_point = false;
    let mut seen_slash = false;
    while end < bytes.len() {
        let byte = bytes[end];
        let next_is_digit = bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
        if byte.is_ascii_digit() {
            end += 1;
        } else if byte == b'.' && !seen_point && !seen_slash && next_is_digit {
            seen_point = true;
            end += 1;
        } else if byte == b'/' && !seen_slash && !seen_point && next_is_digit {
            seen_slash = true;
            end += 1;
        } else {
            break;
        }
    }
    Some(text[signed_start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_rewrites_notation() {
        let cases = [
            ("\\left( 1, 2 \\right)", "( 1, 2 )"),
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("9{,}500", "9500"),
            ("30^\\circ", "30"),
            ("\\$1,000", "1000"),
            ("28\\%", "28"),
            ("5\\text{ cm}", "5"),
            ("\\text{13}", "13"),
            ("18 dollars", "18"),
            ("1 and 3", "1, 3"),
            ("\\leftarrow", "\\leftarrow"),
            ("112,\\!875", "112875"),
            ("1 \\\\ 2", "1 \\\\ 2"),
            ("a\\,b\\ c", "a b c"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                clean(Format::Math, raw, Commas::ByFormat),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn thousands_rule_differs_by_format() {
        assert_eq!(
            remove_thousands_separators(Format::Gsm8k, "2,520,000"),
            "2520000"
        );
        assert_eq!(
            remove_thousands_separators(Format::Math, "2,520,000"),
            "2520000"
        );
        assert_eq!(remove_thousands_separators(Format::Math, "1,2"), "1,2");
        assert_eq!(
            remove_thousands_separators(Format::Math, "(1,000)"),
            "(1,000)"
        );
    }

    #[test]
    fn element_canonicalizes_scalars() {
        let cases = [
            ("x = 5", "5"),
            ("\\frac12", "\\frac{1}{2}"),
            ("2\\frac{1}{2}", "\\frac{5}{2}"),
            ("1 1/4", "\\frac{5}{4}"),
            ("-2\\frac12", "-\\frac{5}{2}"),
            ("2\\frac{3}{2}", "2\\frac{3}{2}"),
            (".5", "0.5"),
            ("+3", "3"),
            ("\\sqrt2", "\\sqrt{2}"),
            ("x^2+a_1", "x^{2}+a_{1}"),
            ("2^{10}", "2^{10}"),
        ];
        for (raw, expected) in cases {
            assert_eq!(element(raw), expected, "{raw}");
        }
    }

    #[test]
    fn first_number_skips_words() {
        assert_eq!(
            first_number("She paid -18.5 in all").as_deref(),
            Some("-18.5")
        );
        assert_eq!(first_number("3/4 cup").as_deref(), Some("3/4"));
        assert_eq!(first_number("none"), None);
    }
}
