//! Train and test splits of generated problems for an experiment.
//!
//! Both splits come from one generator stream seeded with `seed`: the
//! first distinct problems go to train, the next ones to test. The test
//! problems are thus held out from the same families, so test accuracy
//! measures how well a model solves known problem structures with new
//! numbers and wording, which is what pre-memorization accuracy is meant
//! to predict. Held-out families would instead measure transfer to new
//! structures, which a 135M model rarely shows.
//!
//! Two problems count as the same when they share the family and the
//! numbers stated in the question, whatever the wording. Such repeats are
//! skipped, so no test problem is a reworded train problem.

use std::collections::BTreeSet;

use crate::data::Example;

use super::{generate, integers_in, Problem, SynthConfig, SynthError};

/// Problems drawn per requested problem before giving up on finding
/// enough distinct ones.
const DRAWS_PER_PROBLEM: usize = 4;

/// The generated train and test problems of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitProblems {
    pub train: Vec<Problem>,
    pub test: Vec<Problem>,
}

/// Generates `train_count` train and `test_count` test problems with the
/// settings of `config` (its `count` is ignored). No two problems of the
/// result share family and stated numbers.
///
/// Deterministic: the same settings give the same problems, because the
/// generator's first `n` problems do not depend on how many are drawn.
pub fn generate_split(
    config: &SynthConfig,
    train_count: usize,
    test_count: usize,
) -> Result<SplitProblems, SynthError> {
    let expected = train_count + test_count;
    let drawn = generate(&SynthConfig {
        count: expected * DRAWS_PER_PROBLEM,
        ..config.clone()
    })?;

    let mut seen = BTreeSet::new();
    let mut distinct = Vec::with_capacity(expected);
    for problem in drawn {
        if distinct.len() == expected {
            break;
        }
        let identity = (problem.family.id(), integers_in(&problem.question));
        if seen.insert(identity) {
            distinct.push(problem);
        }
    }
    if distinct.len() < expected {
        return Err(SynthError::TooFewDistinct {
            expected,
            found: distinct.len(),
            drawn: expected * DRAWS_PER_PROBLEM,
        });
    }

    let test = distinct.split_off(train_count);
    Ok(SplitProblems {
        train: distinct,
        test,
    })
}

impl Problem {
    /// Converts the problem to a GSM8k example, with `family`, `variant` and
    /// `surface` as extra fields. `line` is its 1-based position in the split.
    pub fn to_example(&self, line: usize) -> Example {
        let mut extra = vec![
            ("family".to_string(), self.family.id()),
            ("variant".to_string(), self.variant.to_string()),
            ("surface".to_string(), self.surface.to_string()),
        ];
        if let Some(seed_id) = &self.seed_id {
            extra.push(("seed_id".to_string(), seed_id.clone()));
        }
        Example {
            id: self.id.clone(),
            line,
            question: self.question.clone(),
            solution: self.answer.clone(),
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Operation;

    fn small_config() -> SynthConfig {
        SynthConfig {
            min_steps: 1,
            max_steps: 2,
            operations: vec![Operation::Add, Operation::Mul],
            max_value: 20,
            max_factor: 5,
            max_result: 200,
            seed: 3,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn splits_have_requested_sizes() {
        let split = generate_split(&small_config(), 40, 20).unwrap();
        assert_eq!(split.train.len(), 40);
        assert_eq!(split.test.len(), 20);
    }

    #[test]
    fn test_problems_differ_from_train() {
        let split = generate_split(&small_config(), 60, 60).unwrap();
        let key = |p: &Problem| (p.family.id(), integers_in(&p.question));
        let train: BTreeSet<_> = split.train.iter().map(key).collect();
        let test: BTreeSet<_> = split.test.iter().map(key).collect();
        assert_eq!(train.len(), 60);
        assert_eq!(test.len(), 60);
        assert!(train.is_disjoint(&test));
    }

    #[test]
    fn narrow_ranges_report_too_few() {
        let config = SynthConfig {
            min_steps: 1,
            max_steps: 1,
            operations: vec![Operation::Add],
            min_value: 2,
            max_value: 3,
            max_result: 10,
            ..SynthConfig::default()
        };
        let error = generate_split(&config, 50, 50).unwrap_err();
        assert!(matches!(
            error,
            SynthError::TooFewDistinct { expected: 100, .. }
        ));
    }

    #[test]
    fn example_keeps_family_and_variant() {
        let split = generate_split(&small_config(), 1, 1).unwrap();
        let example = split.train[0].to_example(1);
        assert_eq!(
            example.extra("family"),
            Some(split.train[0].family.id().as_str())
        );
        assert_eq!(example.extra("variant"), Some("0"));
        assert_eq!(example.solution, split.train[0].answer);
    }
}
