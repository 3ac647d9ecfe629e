//! Next-token selection: greedy (argmax) or temperature plus top-p (nucleus)
//! sampling, each sequence drawing from its own seeded random stream.
//!
//! Selection runs on the CPU in f64 from f32 logits, row by row, so that a
//! sequence's draw depends only on its logits and its own stream, never on
//! the batch it was decoded in or on the thread count.

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// Tokens ranked first when looking for the nucleus. When their mass already
/// reaches `top_p`, the rest of the vocabulary is never sorted.
const NUCLEUS_CANDIDATES: usize = 1024;

/// Derives the random stream of one sequence by SHA-256 from the run seed,
/// the example id and the sample index. Two sequences share a stream only if
/// all three are equal, so results do not depend on request order.
pub fn sequence_rng(seed: u64, example_id: &str, sample_index: usize) -> ChaCha20Rng {
    let mut hasher = Sha256::new();
    hasher.update(b"premem-sample-stream-v1");
    hasher.update(seed.to_le_bytes());
    hasher.update((example_id.len() as u64).to_le_bytes());
    hasher.update(example_id.as_bytes());
    hasher.update((sample_index as u64).to_le_bytes());
    ChaCha20Rng::from_seed(hasher.finalize().into())
}

/// Returns the index of the largest logit. Ties go to the lowest index, as
/// in `torch.argmax`.
/// Returns `None` when a logit is NaN or the slice is empty.
pub fn argmax(logits: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (index, &value) in logits.iter().enumerate() {
        if value.is_nan() {
            return None;
        }
        match best {
            Some((_, best_value)) if value <= best_value => {}
            _ => best = Some((index, value)),
        }
    }
    best.map(|(index, _)| index)
}

/// Draws a token from softmax(logits / temperature) restricted to the nucleus:
/// the smallest set of most probable tokens whose mass is at least `top_p`,
/// ranked by probability and then by lower id. `temperature` must be > 0 and
/// `top_p` in (0, 1]. Returns `None` when the logits contain NaN or +inf, or
/// are all -inf.
pub fn sample_top_p(logits: &[f32], temperature: f64, top_p: f64, rng: &mut ChaCha20Rng) -> Option<usize> {
    let probs = softmax(logits, temperature)?;

    let nucleus = nucleus(&probs, top_p);
    let mass: f64 = nucleus.iter().map(|&id| probs[id]).sum();

    // One uniform draw per token, scaled to the nucleus mass, so the stream
    // advances by the same amount whatever the nucleus size.
    let threshold = rng.gen::<f64>() * mass;
    let mut cumulative = 0.0;
    for &id in &nucleus {
        cumulative += probs[id];
        if threshold < cumulative {
            return Some(id);
        }
    }

    // Rounding can leave the threshold a hair above the last cumulative sum.
    nucleus.last().copied()
}

/// Probabilities of softmax(logits / temperature) in f64.
fn softmax(logits: &[f32], temperature: f64) -> Option<Vec<f64>> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() || logits.iter().any(|value| value.is_nan()) {
        return None;
    }

    let max = f64::from(max);
    let mut probs: Vec<f64> = logits
        .iter()
        .map(|&value| ((f64::from(value) - max) / temperature).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    for p in probs.iter_mut() {
        *p /= total;
    }
    Some(probs)
}

/// Token ids of the nucleus, most probable first.
fn nucleus(probs: &[f64], top_p: f64) -> Vec<usize> {
    let by_rank = |a: &usize, b: &usize| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b));
    let mut ids: Vec<usize> = (0..probs.len()).collect();

    // Rank only the head of the distribution when it already contains the
    // nucleus. The order is total, so the head equals the first entries of
    // a full sort and the result is the same either way.
    if ids.len() > NUCLEUS_CANDIDATES {
        ids.select_nth_unstable_by(NUCLEUS_CANDIDATES - 1, by_rank);
        let head_mass: f64 = ids[..NUCLEUS_CANDIDATES].iter().map(|&id| probs[id]).sum();
        if head_mass >= top_p {
            ids.truncate(NUCLEUS_CANDIDATES);
        }
    }
    ids.sort_unstable_by(by_rank);

    let mut cumulative = 0.0;
    for (rank, &id) in ids.iter().enumerate() {
        cumulative += probs[id];
        if cumulative >= top_p {
            ids.truncate(rank + 1);
            break;
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_pick_lowest_id() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), Some(0));
        assert_eq!(argmax(&[1.0, f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn nucleus_cases() {
        // (probabilities, top_p, expected nucleus)
        let cases: &[(&[f64], f64, &[usize])] = &[
            (&[0.1, 0.6, 0.3], 0.5, &[1]),
            (&[0.1, 0.6, 0.3], 0.6, &[1]),
            (&[0.1, 0.6, 0.3], 0.7, &[1, 2]),
            (&[0.1, 0.6, 0.3], 1.0, &[1, 2, 0]),
            (&[0.25, 0.25, 0.25, 0.25], 0.5, &[0, 1]),
        ];
        for (probs, top_p, expected) in cases {
            assert_eq!(
                nucleus(probs, *top_p),
                expected.to_vec(),
                "probs {probs:?}, top_p {top_p}"
            );
        }
    }

    #[test]
    fn nucleus_head_equals_full_sort() {
        // A flat tail keeps the nucleus outside the head, a peaked one inside.
        for peak in [0.0f64, 20.0] {
            let logits: Vec<f32> = (0..5000)
                .map(|i| ((i * 7919 % 5000) as f64 / 500.0 + if i == 42 { peak } else { 0.0 }) as f32)
                .collect();
            let probs = softmax(&logits, 1.0).unwrap();
            let mut full: Vec<usize> = (0..probs.len()).collect();
            full.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
            let mut cumulative = 0.0;
            let expected: Vec<usize> = full
                .into_iter()
                .take_while(|&id| {
                    let before = cumulative;
                    cumulative += probs[id];
                    before < 0.9
                })
                .collect();
            assert_eq!(nucleus(&probs, 0.9), expected, "peak {peak}");
        }
    }

    #[test]
    fn sample_stays_inside_nucleus() {
        let logits = [0.0f32, 5.0, 4.0, -3.0];
        let mut rng = sequence_rng(0, "x", 0);
        for _ in 0..200 {
            let id = sample_top_p(&logits, 1.0, 0.8, &mut rng).unwrap();
            assert!(id == 1 || id == 2, "drew {id}");
        }
    }

    #[test]
    fn sample_rejects_nan_logits() {
        let mut rng = sequence_rng(0, "x", 0);
        assert_eq!(sample_top_p(&[0.0, f32::NAN], 1.0, 0.9, &mut rng), None);
        assert_eq!(sample_top_p(&[f32::NEG_INFINITY; 3], 1.0, 0.9, &mut rng), None);
    }

    #[test]
    fn streams_differ_by_each_key() {
        let draw = |seed, id: &str, index| sequence_rng(seed, id, index).gen::<u64>();
        let base = draw(1, "a", 0);
        assert_eq!(base, draw(1, "a", 0));
        assert_ne!(base, draw(2, "a", 0));
        assert_ne!(base, draw(1, "b", 0));
        assert_ne!(base, draw(1, "a", 1));
    }
}
