//! Robustness checks: prompt perturbations and the statistics that relate
//! a perturbation's effect to pre-memorization train accuracy (PM).
//!
//! The question they answer is whether examples learned before
//! memorization (high PM) keep their accuracy when the prompt changes,
//! while memorized ones lose it. This module holds the pure parts: the
//! perturbations themselves, Spearman's rank correlation and the
//! per-PM-bin summaries behind box plots. Sampling and grading happen in
//! the pipeline.

use rand::seq::index::sample;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A change made to a prompt before sampling, as named in the experiment
/// file, for example `{ kind = "answer_prefix", text = " First" }` or
/// `{ kind = "typos", rate = 0.1 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Perturbation {
    /// Text appended after the prompt, which the model must continue.
    /// The text the grader reads starts with this prefix (see
    /// [`text_for_grading`]).
    AnswerPrefix { text: String },
    /// One letter doubled in a fraction `rate` (0 to 1) of the prompt's
    /// words. Words that contain a digit are never changed, so numbers
    /// stay intact.
    Typos { rate: f64 },
}

impl Perturbation {
    /// The default answer prefixes: " First" and " We know that".
    pub fn default_prefixes() -> Vec<Perturbation> {
        [" First", " We know that"]
            .into_iter()
            .map(|text| Perturbation::AnswerPrefix { text: text.to_string() })
            .collect()
    }

    /// Short name for tables and file names, such as `prefix: First` or `typos 0.1`.
    pub fn label(&self) -> String {
        match self {
            Perturbation::AnswerPrefix { text } => format!("prefix:{text}"),
            Perturbation::Typos { rate } => format!("typos {rate}"),
        }
    }

    /// Checks the settings; the error names the value and the valid range.
    pub fn validate(&self) -> Result<(), RobustnessError> {
        match self {
            Perturbation::AnswerPrefix { text } if text.is_empty() => Err(RobustnessError::InvalidPerturbation(
                "answer_prefix needs a non-empty `text`".into(),
            )),
            Perturbation::Typos { rate } if !(0.0..=1.0).contains(rate) => Err(
                RobustnessError::InvalidPerturbation(format!("typos `rate` is {rate} but must lie in 0..=1")),
            ),
            _ => Ok(()),
        }
    }
}

/// Errors of perturbations and statistics; each names the offending value.
#[derive(Debug, thiserror::Error)]
pub enum RobustnessError {
    #[error("invalid perturbation: {0}")]
    InvalidPerturbation(String),
    #[error("point {index}: PM {pm} is outside 0..=1")]
    PmOutOfRange { index: usize, pm: f64 },
    #[error("point {index}: value {value} is not finite")]
    NonFiniteValue { index: usize, value: f64 },
}

/// Returns the perturbed prompt.
///
/// Typos are drawn from a generator seeded by `seed` and `example_id`, so
/// an example gets the same typos in every run and at every checkpoint.
/// The number of changed words is `rate` times the number of eligible
/// words, rounded to nearest; a rate outside 0..=1 is clamped (call
/// [`Perturbation::validate`] to reject it instead).
///
/// NOTE: typos apply to every word of `prompt`, template words such as
/// `Answer:` included; pass only the question to keep the template intact.
pub fn apply(perturbation: &Perturbation, prompt: &str, example_id: &str, seed: u64) -> String {
    match perturbation {
        Perturbation::AnswerPrefix { text } => format!("{prompt}{text}"),
        Perturbation::Typos { rate } => inject_typos(prompt, *rate, example_id, seed),
    }
}

/// Returns the text the grader reads for a sample drawn after a perturbed
/// prompt: the prefix followed by the continuation for an answer prefix,
/// because the prefix is part of the model's answer; the continuation
/// unchanged otherwise.
pub fn text_for_grading(perturbation: &Perturbation, continuation: &str) -> String {
    match perturbation {
        Perturbation::AnswerPrefix { text } => format!("{text}{continuation}"),
        Perturbation::Typos { .. } => continuation.to_string(),
    }
}

fn inject_typos(prompt: &str, rate: f64, example_id: &str, seed: u64) -> String {
    let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
    let words = word_spans(prompt);
    let eligible: Vec<(usize, usize)> = words
        .into_iter()
        .filter(|&(start, end)| {
            let word = &prompt[start..end];
            word.chars().any(char::is_alphabetic) && !word.chars().any(|c| c.is_ascii_digit())
        })
        .collect();

    let count = (rate * eligible.len() as f64).round() as usize;
    if count == 0 {
        return prompt.to_string();
    }

    let digest = Sha256::digest(format!("typos\0{seed}\0{example_id}").as_bytes());
    let mut rng_seed = [0u8; 32];
    rng_seed.copy_from_slice(&digest);
    let mut rng = ChaCha8Rng::from_seed(rng_seed);

    let mut chosen: Vec<usize> = sample(&mut rng, eligible.len(), count).into_vec();
    chosen.sort_unstable();

    // Rebuild the prompt left to right, doubling one letter in each chosen word.
    let mut output = String::with_capacity(prompt.len() + count * 4);
    let mut copied_up_to = 0;
    for index in chosen {
        let (start, end) = eligible[index];
        let letters: Vec<(usize, char)> = prompt[start..end]
            .char_indices()
            .filter(|(_, c)| c.is_alphabetic())
            .collect();
        let (offset, letter) = letters[rng.gen_range(0..letters.len())];
        let split = start + offset + letter.len_utf8();

        output.push_str(&prompt[copied_up_to..split]);
        output.push(letter);
        copied_up_to = split;
    }
    output.push_str(&prompt[copied_up_to..]);
    output
}

/// Byte ranges of the maximal runs of non-whitespace characters.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (index, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, index));
                start = None;
            }
            (false, None) => start = Some(index),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Spearman's rank correlation of paired values: Pearson's correlation of
/// their ranks, where tied values share the average of their ranks.
///
/// Returns None when the slices differ in length, hold fewer than two
/// pairs or a non-finite value, or when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// 1-based ranks with ties given the mean of the ranks they span.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));

    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold one tied value; their ranks are start+1..=end.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = rank;
        }
        start = end;
    }
    ranks
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;

    let mut covariance = 0.0;
    let mut variance_x = 0.0;
    let mut variance_y = 0.0;
    for (a, b) in x.iter().zip(y) {
        covariance += (a - mean_x) * (b - mean_y);
        variance_x += (a - mean_x).powi(2);
        variance_y += (b - mean_y).powi(2);
    }

    if variance_x == 0.0 || variance_y == 0.0 {
        return None;
    }
    Some(covariance / (variance_x * variance_y).sqrt())
}

/// Width of a PM bin.
pub const PM_BIN_WIDTH: f64 = 0.2;

/// Number of PM bins: [0, 0.2), [0.2, 0.4), [0.4, 0.6), [0.6, 0.8), [0.8, 1.0].
pub const PM_BIN_COUNT: usize = 5;

/// Five-number summary plus mean, as drawn in a box plot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoxStats {
    pub min: f64,
    /// First quartile, by linear interpolation between order statistics.
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
    pub mean: f64,
    pub count: usize,
}

/// Values of the examples whose PM falls in `[lower, upper)` (the last bin
/// includes 1.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PmBin {
    pub lower: f64,
    pub upper: f64,
    /// None when no example falls in the bin.
    pub stats: Option<BoxStats>,
}

/// Groups `(pm, value)` points into the five PM bins and summarizes each
/// bin's values. Every bin is returned, empty ones with `stats` None.
pub fn bin_by_pm(points: &[(f64, f64)]) -> Result<Vec<PmBin>, RobustnessError> {
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); PM_BIN_COUNT];
    for (index, &(pm, value)) in points.iter().enumerate() {
        if !(0.0..=1.0).contains(&pm) {
            return Err(RobustnessError::PmOutOfRange { index, pm });
        }
        if !value.is_finite() {
            return Err(RobustnessError::NonFiniteValue { index, value });
        }
        groups[pm_bin_index(pm)].push(value);
    }

    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(index, values)| PmBin {
            lower: index as f64 * PM_BIN_WIDTH,
            upper: (index + 1) as f64 * PM_BIN_WIDTH,
            stats: box_stats(&values),
        })
        .collect())
}

/// Bin of a PM in 0..=1. The small tolerance keeps PMs such as 0.6, whose
/// binary value lies just below 3 * 0.2, in the bin that starts at them.
pub fn pm_bin_index(pm: f64) -> usize {
    let index = (pm / PM_BIN_WIDTH + 1e-9).floor() as usize;
    index.min(PM_BIN_COUNT - 1)
}

/// Summary of finite values; None when `values` is empty.
pub fn box_stats(values: &[f64]) -> Option<BoxStats> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);

    Some(BoxStats {
        min: sorted[0],
        q1: quantile(&sorted, 0.25),
        median: quantile(&sorted, 0.5),
        q3: quantile(&sorted, 0.75),
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        count: sorted.len(),
    })
}

/// Quantile `p` of sorted values, interpolating linearly between the order
/// statistics at positions floor(h) and ceil(h), h = (n - 1) p (numpy's
/// default method).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let position = (sorted.len() - 1) as f64 * p;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    sorted[lower] + (position - lower as f64) * (sorted[upper] - sorted[lower])
}
