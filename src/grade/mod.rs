//! Final-answer extraction and grading for GSM8k and MATH samples.
//!
//! Grading runs three steps on both the reference solution and the sample:
//! [`extract`] finds the final answer, [`normalize`] rewrites it into a
//! canonical text, and [`compare`] decides equivalence, using the bounded
//! evaluator in [`numeric`] for closed-form numbers. Grading never fails:
//! every input, however malformed, yields an [`Outcome`].

pub mod compare;
pub mod extract;
pub mod normalize;
pub mod numeric;

use serde::{Deserialize, Serialize};

use crate::data::Format;
use extract::Role;
use normalize::Commas;

/// Outcome of grading one sample against its reference.
///
/// The numeric codes match the recorded dynamics of Kang et al. 2024:
/// 0 = correct, 1 = wrong, 2 = no answer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Correct,
    Wrong,
    NoAnswer,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Correct => 0,
            Outcome::Wrong => 1,
            Outcome::NoAnswer => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Outcome> {
        match code {
            0 => Some(Outcome::Correct),
            1 => Some(Outcome::Wrong),
            2 => Some(Outcome::NoAnswer),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Correct => "correct",
            Outcome::Wrong => "wrong",
            Outcome::NoAnswer => "no_answer",
        }
    }
}

/// Extracted and normalized answers of one grading, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The reference's final answer as written, wrappers stripped.
    pub reference_extracted: Option<String>,
    /// The reference's answer in canonical form.
    pub reference_normalized: Option<String>,
    /// The sample's final answer as written, wrappers stripped.
    pub sample_extracted: Option<String>,
    /// The sample's answer in canonical form.
    pub sample_normalized: Option<String>,
    pub outcome: Outcome,
}

/// Grades a generated completion against the dataset's full reference
/// solution text.
///
/// Returns [`Outcome::NoAnswer`] when the sample states no answer (or an
/// empty one, such as `\boxed{}`), [`Outcome::Correct`] when its answer is
/// equivalent to the reference's, else [`Outcome::Wrong`]. A reference
/// with no extractable answer grades every answering sample as wrong;
/// callers should check references up front with [`reference_answer`].
pub fn grade(format: Format, reference: &str, sample: &str) -> Outcome {
    explain(format, reference, sample).outcome
}

/// Grades like [`grade`] and also returns the extracted and normalized
/// answers, for debugging graders and for `premem grade --explain`.
pub fn explain(format: Format, reference: &str, sample: &str) -> Explanation {
    let reference_extracted = extract::extract(format, Role::Reference, reference);
    let sample_extracted = extract::extract(format, Role::Sample, sample);

    let reference_shape = reference_extracted
        .as_deref()
        .and_then(|answer| shape_of(format, answer, Commas::ByFormat));

    // Commas in the sample are read in the reference's context: when the
    // reference is a list, `45,135,225,315` is four elements, not one number.
    let sample_commas = match reference_shape {
        Some(compare::Shape::Unordered(_)) => Commas::ListSeparators,
        _ => Commas::ByFormat,
    };
    let sample_shape = sample_extracted
        .as_deref()
        .and_then(|answer| shape_of(format, answer, sample_commas));

    let outcome = match (&reference_shape, &sample_shape) {
        (_, None) => Outcome::NoAnswer,
        (None, Some(_)) => Outcome::Wrong,
        (Some(reference), Some(sample)) if compare::equivalent(reference, sample) => {
            Outcome::Correct
        }
        (Some(_), Some(_)) => Outcome::Wrong,
    };

    Explanation {
        reference_extracted,
        reference_normalized: reference_shape.map(|shape| shape.render()),
        sample_extracted,
        sample_normalized: sample_shape.map(|shape| shape.render()),
        outcome,
    }
}

/// Returns the reference solution's final answer in canonical form, or
/// `None` when the solution states none (no `#### N` for GSM8k, no
/// `\boxed{}` or answer phrase for MATH). Stages use it to reject bad data
/// before sampling.
pub fn reference_answer(format: Format, reference: &str) -> Option<String> {
    let extracted = extract::extract(format, Role::Reference, reference)?;
    shape_of(format, &extracted, Commas::ByFormat).map(|shape| shape.render())
}

/// Longest extracted answer that is normalized, in bytes. Longer answers
/// are compared by their exact text, which bounds the normalizer's work on
/// adversarial input. The longest MATH training reference answer is 139
/// bytes after normalization.
pub const MAX_ANSWER_BYTES: usize = 2000;

/// Cleans an extracted answer and reads its shape; `None` when nothing is
/// left after cleaning (`\boxed{\text{}}`, `#### $`).
fn shape_of(format: Format, extracted: &str, commas: Commas) -> Option<compare::Shape> {
    if extracted.len() > MAX_ANSWER_BYTES {
        return Some(compare::Shape::Scalar(extracted.to_string()));
    }
    let cleaned = normalize::clean(format, extracted, commas);
    let shape = compare::shape(format, &cleaned);
    (!shape.render().is_empty()).then_some(shape)
}
