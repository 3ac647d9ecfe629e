//! Final-answer extraction and grading for GSM8k and MATH samples.

use serde::{Deserialize, Serialize};

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
