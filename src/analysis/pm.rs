//! Pre-memorization train accuracy (PM).
//!
//! An example is memorized at a checkpoint when the perplexity of its
//! reference solution falls below a threshold. Its PM at checkpoint T is
//! `min(max over t <= T of acc_t * [not memorized at t], acc_T)`: the best
//! accuracy the model reached on it before memorizing it, capped by its
//! accuracy now so that forgetting lowers the value again.

use std::collections::HashMap;

use super::dynamics::{accuracy, RunDynamics};

/// One training example of a run across all of the run's checkpoints.
/// Index `t` of each vector is checkpoint `t`; `None` where the example has
/// no record at that checkpoint.
#[derive(Debug, Clone)]
pub struct ExampleSeries {
    pub id: String,
    /// Fraction of correct samples.
    pub accuracy: Vec<Option<f64>>,
    /// Target perplexity, exp(mean NLL per target token).
    pub perplexity: Vec<Option<f64>>,
    /// Mean NLL per target token in nats: the recorded value, else
    /// ln(perplexity).
    pub nll: Vec<Option<f64>>,
}

/// Aligns a run's training records by example id, in order of first
/// appearance, so that PM does not depend on records keeping their order.
pub fn example_series(run: &RunDynamics) -> Vec<ExampleSeries> {
    let checkpoints = run.checkpoints.len();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut series: Vec<ExampleSeries> = Vec::new();

    for (t, checkpoint) in run.checkpoints.iter().enumerate() {
        for record in &checkpoint.train {
            let i = *index.entry(record.id.as_str()).or_insert_with(|| {
                series.push(ExampleSeries {
                    id: record.id.clone(),
                    accuracy: vec![None; checkpoints],
                    perplexity: vec![None; checkpoints],
                    nll: vec![None; checkpoints],
                });
                series.len() - 1
            });
            let entry = &mut series[i];
            entry.accuracy[t] = Some(accuracy(&record.outcomes));
            entry.perplexity[t] = Some(record.perplexity);
            entry.nll[t] = Some(record.nll_mean.unwrap_or_else(|| record.perplexity.ln()));
        }
    }
    series
}

/// Tells whether a perplexity counts as memorized: strictly below `threshold`.
/// NaN is never memorized.
pub fn is_memorized(perplexity: f64, threshold: f64) -> bool {
    perplexity < threshold
}

/// PM of one example at every checkpoint, `None` where the example has no
/// record. Checkpoints without a record do not reset the running maximum.
pub fn pm_series(accuracy: &[Option<f64>], perplexity: &[Option<f64>], threshold: f64) -> Vec<Option<f64>> {
    let mut best_unmemorized = 0.0f64;
    let mut values = Vec::with_capacity(accuracy.len());

    for (acc, ppl) in accuracy.iter().zip(perplexity) {
        let (Some(acc), Some(ppl)) = (acc, ppl) else {
            values.push(None);
            continue;
        };
        if !is_memorized(*ppl, threshold) {
            best_unmemorized = best_unmemorized.max(*acc);
        }
        values.push(Some(best_unmemorized.min(*acc)));
    }
    values
}

/// Per-checkpoint means over a run's examples: (PM, fraction memorized).
/// A checkpoint without training records gets NaN for both.
pub fn run_means(series: &[ExampleSeries], checkpoints: usize, threshold: f64) -> Vec<(f64, f64)> {
    let mut pm_sum = vec![0.0; checkpoints];
    let mut memorized = vec![0usize; checkpoints];
    let mut count = vec![0usize; checkpoints];

    for example in series {
        let pm = pm_series(&example.accuracy, &example.perplexity, threshold);
        for t in 0..checkpoints {
            let (Some(value), Some(ppl)) = (pm[t], example.perplexity[t]) else {
                continue;
            };
            pm_sum[t] += value;
            count[t] += 1;
            if is_memorized(ppl, threshold) {
                memorized[t] += 1;
            }
        }
    }

    (0..checkpoints)
        .map(|t| {
            let n = count[t] as f64;
            (pm_sum[t] / n, memorized[t] as f64 / n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: f64 = 1.1;

    fn pm(acc: &[f64], ppl: &[f64]) -> Vec<f64> {
        let acc: Vec<Option<f64>> = acc.iter().copied().map(Some).collect();
        let ppl: Vec<Option<f64>> = ppl.iter().copied().map(Some).collect();
        pm_series(&acc, &ppl, P).into_iter().map(Option::unwrap).collect()
    }

    #[test]
    fn pm_hand_computed_cases() {
        // (reason, accuracy per checkpoint, perplexity per checkpoint, PM)
        let cases: [(&str, &[f64], &[f64], &[f64]); 6] = [
            ("never memorized tracks max", &[0.2, 0.6, 0.4], &[2.0, 1.5, 1.3], &[0.2, 0.6, 0.4]),
            ("memorized from start is zero", &[0.8, 1.0], &[1.05, 1.01], &[0.0, 0.0]),
            ("learned then memorized keeps max", &[0.6, 1.0, 1.0], &[1.5, 1.05, 1.02], &[0.6, 0.6, 0.6]),
            ("memorized then forgotten counts again", &[0.2, 0.4, 0.8], &[1.05, 1.2, 1.3], &[0.0, 0.4, 0.8]),
            ("accuracy dropping at T caps PM", &[0.8, 0.2], &[1.5, 1.5], &[0.8, 0.2]),
            ("threshold itself is not memorized", &[0.4], &[P], &[0.4]),
        ];
        for (reason, acc, ppl, expected) in cases {
            let got = pm(acc, ppl);
            for (g, e) in got.iter().zip(expected) {
                assert!((g - e).abs() < 1e-12, "{reason}: got {got:?}, expected {expected:?}");
            }
        }
    }

    #[test]
    fn pm_skips_missing_checkpoint() {
        let acc = [Some(0.6), None, Some(1.0)];
        let ppl = [Some(1.5), None, Some(1.0)];
        let got = pm_series(&acc, &ppl, P);
        assert_eq!(got[1], None);
        assert_eq!(got[2], Some(0.6));
    }
}
