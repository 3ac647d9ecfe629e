//! Data curation: choosing which new training examples to add, and how much
//! data a strategy saves.
//!
//! A candidate pool holds new examples, each seeded from a base training
//! example (`seed_id`), for instance variants written by `premem synth
//! --variants-of`. A strategy ranks or filters candidates through
//! per-seed statistics measured on the base run: pre-memorization train
//! accuracy (PM), instruction-following difficulty (IFD), solution length
//! and final target NLL. The `premem` strategy adds variants of examples
//! the model has not yet learned without memorizing (low PM). The data-
//! efficiency ratio then compares the learning curves of two strategies.
//! This module holds the pure parts; training and evaluation happen in the
//! pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{load_jsonl, DataError, Example, Format};

/// Errors of loading pools and selecting candidates; each names the file
/// and line, or the seed id, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum CurationError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}:{line}: candidate `{id}` has no `seed_id` field naming its base example")]
    MissingSeedId { path: PathBuf, line: usize, id: String },
    #[error("{path}:{line}: seed_id `{seed_id}` is not an example of the base training set")]
    UnknownSeed {
        path: PathBuf,
        line: usize,
        seed_id: String,
    },
    #[error("no statistics for seed `{seed_id}`; score the base run's example before curating")]
    MissingStats { seed_id: String },
    #[error("seed `{seed_id}`: statistic `{field}` is {value}, which is not finite")]
    InvalidStats {
        seed_id: String,
        field: &'static str,
        value: f64,
    },
    #[error("premem threshold is {0} but must lie in 0..=1")]
    InvalidThreshold(f64),
}

/// One example of a candidate pool with the base example it was seeded from.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub example: Example,
    pub seed_id: String,
}

impl Candidate {
    pub fn id(&self) -> &str {
        &self.example.id
    }
}

/// Reads a candidate pool and checks that every `seed_id` names an example
/// of the base set.
pub fn load_pool(path: &Path, format: Format, base_ids: &BTreeSet<String>) -> Result<Vec<Candidate>, CurationError> {
    let examples = load_jsonl(path, format)?;
    pool_from_examples(path, examples, base_ids)
}

/// Checks already loaded pool examples as [`load_pool`] does; `path` is only
/// used in errors.
pub fn pool_from_examples(
    path: &Path,
    examples: Vec<Example>,
    base_ids: &BTreeSet<String>,
) -> Result<Vec<Candidate>, CurationError> {
    examples
        .into_iter()
        .map(|example| {
            let seed_id = example
                .extra("seed_id")
                .ok_or_else(|| CurationError::MissingSeedId {
                    path: path.to_path_buf(),
                    line: example.line,
                    id: example.id.clone(),
                })?
                .to_string();
            if !base_ids.contains(&seed_id) {
                return Err(CurationError::UnknownSeed {
                    path: path.to_path_buf(),
                    line: example.line,
                    seed_id,
                });
            }
            Ok(Candidate { example, seed_id })
        })
        .collect()
}

/// Statistics of one base training example, measured on the base run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeedStats {
    /// Pre-memorization train accuracy at the last checkpoint, in 0..=1.
    pub pm: f64,
    /// Instruction-following difficulty: mean NLL of the solution given the
    /// question divided by mean NLL of the solution alone. Higher means the
    /// question helps less.
    pub ifd: f64,
    /// Solution length in tokens.
    pub solution_length: usize,
    /// Mean NLL per target token at the last checkpoint, in nats.
    pub final_nll: f64,
}

/// Default PM threshold of the `premem` strategy.
pub const DEFAULT_PM_THRESHOLD: f64 = 0.75;

fn default_pm_threshold() -> f64 {
    DEFAULT_PM_THRESHOLD
}

/// Curation strategy, named in the experiment file, for example
/// `{ name = "premem", threshold = 0.75 }` or `{ name = "random" }`.
/// Every strategy is seeded: ties and uniform draws come from the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum Strategy {
    /// Uniform among candidates whose seed has PM <= `threshold`.
    Premem {
        #[serde(default = "default_pm_threshold")]
        threshold: f64,
    },
    /// Uniform over the whole pool, without replacement.
    Random,
    /// Uniform among candidates whose seed's IFD is at or above the median
    /// IFD of the pool's seeds.
    Ifd,
    /// Candidates whose seeds have the longest solutions first.
    Length,
    /// Candidates whose seeds have the highest final NLL first.
    Loss,
}

impl Strategy {
    pub fn label(&self) -> &'static str {
        match self {
            Strategy::Premem { .. } => "premem",
            Strategy::Random => "random",
            Strategy::Ifd => "ifd",
            Strategy::Length => "length",
            Strategy::Loss => "loss",
        }
    }
}

/// Candidates chosen by [`select`].
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Candidate ids in selection order.
    pub ids: Vec<String>,
    /// Set when the strategy had fewer eligible candidates than requested
    /// and filled the rest, or when the pool ran out.
    pub note: Option<String>,
}

/// Chooses `n` candidates of `pool` by `strategy`, skipping the ids in
/// `excluded` (candidates chosen in earlier rounds).
///
/// Filtering strategies (`premem`, `ifd`) draw uniformly among eligible
/// candidates; when fewer are eligible than requested they fill the rest
/// with the nearest misses (lowest PM, or highest IFD, ties by id) and
/// report the fill in the note. When fewer than `n` candidates remain, all of them are
/// returned with a note.
pub fn select(
    strategy: &Strategy,
    pool: &[Candidate],
    stats: &BTreeMap<String, SeedStats>,
    excluded: &BTreeSet<String>,
    n: usize,
    seed: u64,
) -> Result<Selection, CurationError> {
    if let Strategy::Premem { threshold } = strategy {
        if !(0.0..=1.0).contains(threshold) {
            return Err(CurationError::InvalidThreshold(*threshold));
        }
    }

    let seed_stats = |candidate: &Candidate| -> Result<SeedStats, CurationError> {
        stats
            .get(&candidate.seed_id)
            .copied()
            .ok_or_else(|| CurationError::MissingStats {
                seed_id: candidate.seed_id.clone(),
            })
    };

    // Pair every remaining candidate with its seed's statistics, then put
    // them in a seeded random order that breaks all later ties. `random`
    // reads no statistics, so it needs none.
    let mut available = Vec::new();
    for candidate in pool.iter().filter(|c| !excluded.contains(c.id())) {
        let values = if matches!(strategy, Strategy::Random) {
            UNUSED_STATS
        } else {
            let values = seed_stats(candidate)?;
            check_finite(&candidate.seed_id, &values)?;
            values
        };
        available.push((candidate, values));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    available.shuffle(&mut rng);

    let take = n.min(available.len());
    let mut notes = Vec::new();
    if available.len() < n {
        notes.push(format!(
            "{}: only {} candidates remain after excluding earlier rounds, {n} requested",
            strategy.label(),
            available.len()
        ));
    }

    let ordered: Vec<&Candidate> = match strategy {
        Strategy::Random => available.iter().map(|(c, _)| *c).collect(),
        Strategy::Premem { threshold } => {
            let eligible = |s: &SeedStats| s.pm <= *threshold;
            let fill_key = |s: &SeedStats| s.pm;
            filter_then_fill(&available, eligible, fill_key, take, &mut notes, || {
                format!("premem: seed PM <= {threshold}")
            })
        }
        Strategy::Ifd => {
            let median = median_ifd(pool, stats)?;
            let eligible = |s: &SeedStats| s.ifd >= median;
            let fill_key = |s: &SeedStats| -s.ifd;
            filter_then_fill(&available, eligible, fill_key, take, &mut notes, || {
                format!("ifd: seed IFD >= median {median}")
            })
        }
        Strategy::Length => sorted_descending(&available, |s| s.solution_length as f64),
        Strategy::Loss => sorted_descending(&available, |s| s.final_nll),
    };

    Ok(Selection {
        ids: ordered.into_iter().take(take).map(|c| c.id().to_string()).collect(),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// Placeholder statistics of `random`'s candidates, never compared.
const UNUSED_STATS: SeedStats = SeedStats {
    pm: 0.0,
    ifd: 0.0,
    solution_length: 0,
    final_nll: 0.0,
};

fn check_finite(seed_id: &str, stats: &SeedStats) -> Result<(), CurationError> {
    for (field, value) in [("pm", stats.pm), ("ifd", stats.ifd), ("final_nll", stats.final_nll)] {
        if !value.is_finite() {
            return Err(CurationError::InvalidStats {
                seed_id: seed_id.to_string(),
                field,
                value,
            });
        }
    }
    Ok(())
}

/// Eligible candidates in their (shuffled) order, then the others by
/// ascending `fill_key`, ties by id. Adds a note when the eligible ones do
/// not cover `take`.
fn filter_then_fill<'a>(
    available: &[(&'a Candidate, SeedStats)],
    eligible: impl Fn(&SeedStats) -> bool,
    fill_key: impl Fn(&SeedStats) -> f64,
    take: usize,
    notes: &mut Vec<String>,
    rule: impl Fn() -> String,
) -> Vec<&'a Candidate> {
    let mut chosen: Vec<&Candidate> = available.iter().filter(|(_, s)| eligible(s)).map(|(c, _)| *c).collect();

    if chosen.len() < take {
        notes.push(format!(
            "{}: {} candidates eligible, {} filled with the nearest misses",
            rule(),
            chosen.len(),
            take - chosen.len()
        ));
        let mut rest: Vec<&(&Candidate, SeedStats)> = available.iter().filter(|(_, s)| !eligible(s)).collect();
        rest.sort_by(|(a, sa), (b, sb)| fill_key(sa).total_cmp(&fill_key(sb)).then_with(|| a.id().cmp(b.id())));
        chosen.extend(rest.into_iter().map(|(c, _)| *c));
    }
    chosen
}

/// Candidates by descending `key`; the stable sort keeps the shuffled order
/// among ties.
fn sorted_descending<'a>(available: &[(&'a Candidate, SeedStats)], key: impl Fn(&SeedStats) -> f64) -> Vec<&'a Candidate> {
    let mut sorted = available.to_vec();
    sorted.sort_by(|(_, a), (_, b)| key(b).total_cmp(&key(a)));
    sorted.into_iter().map(|(c, _)| c).collect()
}

/// Median IFD over the distinct seeds of the whole pool, so that the cut
/// does not move as earlier rounds remove candidates.
fn median_ifd(pool: &[Candidate], stats: &BTreeMap<String, SeedStats>) -> Result<f64, CurationError> {
    let seeds: BTreeSet<&str> = pool.iter().map(|c| c.seed_id.as_str()).collect();
    let mut values = Vec::with_capacity(seeds.len());
    for seed_id in seeds {
        let seed_stats = stats.get(seed_id).ok_or_else(|| CurationError::MissingStats {
            seed_id: seed_id.to_string(),
        })?;
        values.push(seed_stats.ifd);
    }
    values.sort_by(f64::total_cmp);

    let middle = values.len() / 2;
    Ok(match values.len() {
        0 => f64::NEG_INFINITY,
        len if len % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    })
}

/// One point of a learning curve: training-set size against mean test
/// accuracy over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub examples: f64,
    pub mean_accuracy: f64,
    /// Standard deviation of test accuracy over seeds; carried for plots.
    pub std: f64,
}

/// How many examples `premem` needs to match `random`'s best accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DataEfficiency {
    /// Random's best mean accuracy.
    pub target_accuracy: f64,
    /// Minimum number of examples at which random reaches its best accuracy.
    pub random_examples: f64,
    /// Examples premem needs to reach the target, by linear interpolation.
    pub premem_examples: f64,
    /// `random_examples / premem_examples`; above 1 means premem saves data.
    pub ratio: f64,
}

/// Reason why [`data_efficiency`] has no ratio.
#[derive(Debug, Clone, PartialEq)]
pub enum NoRatio {
    /// A curve has no points.
    EmptyCurve { strategy: &'static str },
    /// A point contains a non-finite value.
    InvalidPoint { strategy: &'static str, index: usize },
    /// Premem's best accuracy stays below random's best.
    NeverReached { target: f64, premem_best: f64 },
    /// Premem reaches the target at zero examples.
    ZeroExamples,
}

impl fmt::Display for NoRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoRatio::EmptyCurve { strategy } => write!(f, "the {strategy} curve has no points"),
            NoRatio::InvalidPoint { strategy, index } => {
                write!(f, "point {index} of the {strategy} curve is not finite")
            }
            NoRatio::NeverReached { target, premem_best } => write!(
                f,
                "premem never reaches random's best accuracy {target} (its best is {premem_best})"
            ),
            NoRatio::ZeroExamples => f.write_str("premem reaches random's best accuracy at 0 examples"),
        }
    }
}

/// Computes the data-efficiency ratio of `premem` over `random`.
///
/// The target is random's best mean accuracy, reached at `random_examples`
/// (the smallest size with that accuracy). Premem's size is interpolated
/// linearly between the last point below the target and the first point at
/// or above it. When premem's smallest size already reaches the target,
/// that size is used. NOTE: the ratio is then a lower bound, because
/// premem might need fewer examples than its smallest measured size.
pub fn data_efficiency(premem: &[CurvePoint], random: &[CurvePoint]) -> Result<DataEfficiency, NoRatio> {
    let premem = sorted_curve(premem, "premem")?;
    let random = sorted_curve(random, "random")?;

    let mut best = random[0];
    for point in &random[1..] {
        if point.mean_accuracy > best.mean_accuracy {
            best = *point;
        }
    }
    let target = best.mean_accuracy;

    let Some(reached) = premem.iter().position(|p| p.mean_accuracy >= target) else {
        let premem_best = premem.iter().map(|p| p.mean_accuracy).fold(f64::NEG_INFINITY, f64::max);
        return Err(NoRatio::NeverReached { target, premem_best });
    };

    let premem_examples = if reached == 0 {
        premem[0].examples
    } else {
        let (below, above) = (premem[reached - 1], premem[reached]);
        let fraction = (target - below.mean_accuracy) / (above.mean_accuracy - below.mean_accuracy);
        below.examples + fraction * (above.examples - below.examples)
    };
    if premem_examples <= 0.0 {
        return Err(NoRatio::ZeroExamples);
    }

    Ok(DataEfficiency {
        target_accuracy: target,
        random_examples: best.examples,
        premem_examples,
        ratio: best.examples / premem_examples,
    })
}

/// Curve points sorted by size; rejects empty curves and non-finite values.
fn sorted_curve(points: &[CurvePoint], strategy: &'static str) -> Result<Vec<CurvePoint>, NoRatio> {
    if points.is_empty() {
        return Err(NoRatio::EmptyCurve { strategy });
    }
    if let Some(index) = points
        .iter()
        .position(|p| !p.examples.is_finite() || !p.mean_accuracy.is_finite())
    {
        return Err(NoRatio::InvalidPoint { strategy, index });
    }
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.examples.total_cmp(&b.examples));
    Ok(sorted)
}
