//! Inputs of curation measured by the pipeline: the per-seed statistics
//! that strategies rank candidates by, and the synthetic candidate pool.
//!
//! [`crate::curation`] contains the selection itself and takes these values as
//! given. This module turns what the stages measure (the latest round's
//! learning dynamics and two scorings of each base example) into
//! [`SeedStats`], and builds a pool of synthetic variants of the base
//! problems with [`crate::synth::generate_variants`].

use std::collections::BTreeMap;

use crate::analysis::dynamics::RunDynamics;
use crate::analysis::pm::{example_series, pm_series};
use crate::curation::{Candidate, CurationError, SeedStats};
use crate::data::Example;
use crate::synth::{generate_variants, Problem, SynthConfig, SynthError};

/// Mean NLL per solution token of one base example under the base model,
/// once after its question and once alone, the two halves of IFD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IfdScores {
    pub nll_given_question: f64,
    pub nll_alone: f64,
}

impl IfdScores {
    /// Returns NLL(solution | question) / NLL(solution alone), or None when
    /// the ratio is undefined (a zero or non-finite denominator).
    pub fn ratio(&self) -> Option<f64> {
        let ratio = self.nll_given_question / self.nll_alone;
        (self.nll_alone > 0.0 && ratio.is_finite()).then_some(ratio)
    }
}

/// Builds the statistics of every training example of `run` at its last
/// checkpoint: PM with memorization `threshold`, the target NLL and token
/// count recorded by the score stage, and IFD from `ifd`.
///
/// Every example of the run needs an entry in `ifd`, and its last
/// checkpoint needs an accuracy and a perplexity. An error names the first
/// example that lacks one.
pub fn seed_stats(
    run: &RunDynamics,
    threshold: f64,
    ifd: &BTreeMap<String, IfdScores>,
) -> Result<BTreeMap<String, SeedStats>, CurationError> {
    let Some(last) = run.checkpoints.len().checked_sub(1) else {
        return Ok(BTreeMap::new());
    };
    let final_records: BTreeMap<&str, _> = run.checkpoints[last]
        .train
        .iter()
        .map(|record| (record.id.as_str(), record))
        .collect();

    let mut stats = BTreeMap::new();
    for series in example_series(run) {
        let missing = || CurationError::MissingStats {
            seed_id: series.id.clone(),
        };
        let pm =
            pm_series(&series.accuracy, &series.perplexity, threshold)[last].ok_or_else(missing)?;
        let record = final_records.get(series.id.as_str()).ok_or_else(missing)?;
        let scores = ifd.get(&series.id).ok_or_else(missing)?;
        let ifd_value = scores.ratio().ok_or_else(|| CurationError::InvalidStats {
            seed_id: series.id.clone(),
            field: "ifd",
            value: scores.nll_given_question / scores.nll_alone,
        })?;

        // Without a recorded mean NLL, ln(perplexity) is the same quantity.
        let final_nll = record.nll_mean.unwrap_or_else(|| record.perplexity.ln());
        stats.insert(
            series.id.clone(),
            SeedStats {
                pm,
                ifd: ifd_value,
                solution_length: record.target_tokens.unwrap_or(0),
                final_nll,
            },
        );
    }
    Ok(stats)
}

/// Builds a pool of `per_seed` synthetic variants of each base example, in
/// base order. The base examples must be problems written by `premem
/// synth`, which have a `family` field. An error names the first that is not.
/// `config` supplies the number ranges of the variants.
pub fn synthetic_pool(
    base: &[Example],
    config: &SynthConfig,
    per_seed: usize,
    seed: u64,
) -> Result<Vec<Candidate>, SynthError> {
    let mut pool = Vec::with_capacity(base.len() * per_seed);
    for example in base {
        let problem = Problem::from_example(example)?;
        for variant in generate_variants(config, &problem, per_seed, seed)? {
            pool.push(Candidate {
                example: Example {
                    id: variant.id.clone(),
                    line: 0,
                    question: variant.question.clone(),
                    solution: variant.answer.clone(),
                    extra: vec![
                        ("family".to_string(), variant.family.id().to_string()),
                        ("seed_id".to_string(), example.id.clone()),
                    ],
                },
                seed_id: example.id.clone(),
            });
        }
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dynamics::{CheckpointDynamics, TrainRecord};
    use crate::grade::Outcome;

    fn record(id: &str, correct: usize, perplexity: f64) -> TrainRecord {
        TrainRecord {
            id: id.to_string(),
            outcomes: (0..4)
                .map(|k| {
                    if k < correct {
                        Outcome::Correct
                    } else {
                        Outcome::Wrong
                    }
                })
                .collect(),
            perplexity,
            nll_mean: Some(perplexity.ln()),
            target_tokens: Some(10 + correct),
        }
    }

    /// Two checkpoints: `a` is learned (3/4) then memorized at 4/4; `b`
    /// stays unmemorized at 1/4 then 2/4.
    fn run() -> RunDynamics {
        let checkpoint = |epoch: usize, train: Vec<TrainRecord>| CheckpointDynamics {
            label: format!("epoch-{epoch}"),
            epoch: epoch as f64,
            step: epoch as u64,
            train,
            test: Vec::new(),
        };
        RunDynamics {
            name: "round-1".to_string(),
            learning_rate: None,
            epochs: None,
            data_fraction: None,
            params: BTreeMap::new(),
            checkpoints: vec![
                checkpoint(1, vec![record("a", 3, 1.5), record("b", 1, 2.0)]),
                checkpoint(2, vec![record("a", 4, 1.01), record("b", 2, 1.8)]),
            ],
        }
    }

    fn ifd(entries: &[(&str, f64, f64)]) -> BTreeMap<String, IfdScores> {
        entries
            .iter()
            .map(|&(id, given, alone)| {
                (
                    id.to_string(),
                    IfdScores {
                        nll_given_question: given,
                        nll_alone: alone,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn seed_stats_use_last_checkpoint() {
        let stats = seed_stats(&run(), 1.1, &ifd(&[("a", 0.5, 2.0), ("b", 1.0, 1.25)])).unwrap();
        assert_eq!(stats["a"].pm, 0.75);
        assert_eq!(stats["b"].pm, 0.5);
        assert_eq!(stats["a"].ifd, 0.25);
        assert_eq!(stats["b"].ifd, 0.8);
        assert_eq!(stats["a"].solution_length, 14);
        assert!((stats["b"].final_nll - 1.8f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn seed_stats_name_missing_ifd() {
        let error = seed_stats(&run(), 1.1, &ifd(&[("a", 0.5, 2.0)])).unwrap_err();
        assert!(error.to_string().contains("`b`"), "{error}");
    }

    #[test]
    fn seed_stats_reject_zero_denominator() {
        let error = seed_stats(&run(), 1.1, &ifd(&[("a", 0.5, 0.0), ("b", 1.0, 1.0)])).unwrap_err();
        assert!(
            matches!(error, CurationError::InvalidStats { field: "ifd", .. }),
            "{error}"
        );
    }

    #[test]
    fn synthetic_pool_varies_each_seed() {
        let config = SynthConfig {
            count: 3,
            ..SynthConfig::default()
        };
        let base: Vec<Example> = crate::synth::generate(&config)
            .unwrap()
            .into_iter()
            .map(|problem| Example {
                id: problem.id.clone(),
                line: 1,
                question: problem.question.clone(),
                solution: problem.answer.clone(),
                extra: vec![
                    ("family".to_string(), problem.family.id()),
                    ("surface".to_string(), problem.surface.to_string()),
                ],
            })
            .collect();

        let pool = synthetic_pool(&base, &config, 2, 7).unwrap();
        assert_eq!(pool.len(), 6);
        assert_eq!(pool[0].seed_id, base[0].id);
        assert_eq!(pool[5].seed_id, base[2].id);
        assert_eq!(pool[1].id(), format!("{}-v2", base[0].id));
        assert_eq!(pool[1].example.extra("seed_id"), Some(base[0].id.as_str()));
        assert!(pool.iter().all(|c| c.example.question != base[0].question));
    }

    #[test]
    fn synthetic_pool_needs_family() {
        let base = vec![Example {
            id: "g1".to_string(),
            line: 1,
            question: "How many?".to_string(),
            solution: "#### 3".to_string(),
            extra: Vec::new(),
        }];
        let config = SynthConfig::default();
        assert!(synthetic_pool(&base, &config, 2, 0).is_err());
    }
}
