//! Robustness: prompt perturbations, Spearman correlation and PM bins.

use premem::robustness::{
    apply, bin_by_pm, box_stats, pm_bin_index, spearman, text_for_grading, Perturbation,
};

fn prefix(text: &str) -> Perturbation {
    Perturbation::AnswerPrefix { text: text.to_string() }
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-12, "{what}: {actual} != {expected}");
}

#[test]
fn prefix_appends_after_prompt() {
    let cases = [
        (" First", "Q?\nAnswer:", "Q?\nAnswer: First"),
        (" We know that", "Q?\nAnswer:", "Q?\nAnswer: We know that"),
        ("!", "", "!"),
    ];
    for (text, prompt, expected) in cases {
        assert_eq!(apply(&prefix(text), prompt, "id", 0), expected);
    }
}

#[test]
fn grading_text_includes_prefix() {
    assert_eq!(text_for_grading(&prefix(" First"), ", 3 + 4 = 7"), " First, 3 + 4 = 7");
    let typos = Perturbation::Typos { rate: 0.5 };
    assert_eq!(text_for_grading(&typos, " 7\n#### 7"), " 7\n#### 7");
}

#[test]
fn default_prefixes_are_first_and_we_know() {
    assert_eq!(Perturbation::default_prefixes(), vec![prefix(" First"), prefix(" We know that")]);
}

#[test]
fn perturbation_reads_from_toml() {
    let parsed: Perturbation = toml::from_str("kind = \"answer_prefix\"\ntext = \" First\"").unwrap();
    assert_eq!(parsed, prefix(" First"));

    let parsed: Perturbation = toml::from_str("kind = \"typos\"\nrate = 0.25").unwrap();
    assert_eq!(parsed, Perturbation::Typos { rate: 0.25 });

    assert!(toml::from_str::<Perturbation>("kind = \"typos\"\nrate = 0.25\nseed = 1").is_err());
    assert!(toml::from_str::<Perturbation>("kind = \"shuffle\"").is_err());
}

#[test]
fn perturbation_validate_rejects_bad_values() {
    assert!(Perturbation::Typos { rate: 1.5 }.validate().is_err());
    assert!(Perturbation::Typos { rate: -0.1 }.validate().is_err());
    assert!(Perturbation::Typos { rate: f64::NAN }.validate().is_err());
    assert!(prefix("").validate().is_err());
    assert!(Perturbation::Typos { rate: 0.3 }.validate().is_ok());
}

/// Checks whether `changed` is `original` with one letter doubled.
fn is_doubled_letter(original: &str, changed: &str) -> bool {
    let changed: Vec<char> = changed.chars().collect();
    (1..changed.len()).any(|i| {
        let mut without = changed.clone();
        let removed = without.remove(i);
        removed.is_alphabetic() && changed[i - 1] == removed && without.iter().collect::<String>() == original
    })
}

#[test]
fn typos_rate_one_changes_every_word() {
    let prompt = "Tom has 12 apples and 3.5 kg.";
    let perturbed = apply(&Perturbation::Typos { rate: 1.0 }, prompt, "ex1", 7);

    let before: Vec<&str> = prompt.split_whitespace().collect();
    let after: Vec<&str> = perturbed.split_whitespace().collect();
    assert_eq!(before.len(), after.len());
    for (original, changed) in before.iter().zip(&after) {
        if original.chars().any(|c| c.is_ascii_digit()) {
            assert_eq!(original, changed, "a number changed");
        } else {
            assert!(is_doubled_letter(original, changed), "`{changed}` is not `{original}` with a doubled letter");
        }
    }
}

#[test]
fn typos_change_rounded_share_of_words() {
    // 4 eligible words: rate 0.5 changes 2, rate 0.3 changes round(1.2) = 1.
    let prompt = "one two three four 56";
    let cases = [(0.0, 0), (0.3, 1), (0.5, 2), (0.9, 4), (1.0, 4)];
    for (rate, expected) in cases {
        let perturbed = apply(&Perturbation::Typos { rate }, prompt, "ex", 3);
        let changed = prompt
            .split_whitespace()
            .zip(perturbed.split_whitespace())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, expected, "rate {rate}: `{perturbed}`");
    }
}

#[test]
fn typos_keep_whitespace_and_numbers() {
    let prompt = "Ann has 40 pens.\n She buys 2 more.\nAnswer:";
    let perturbed = apply(&Perturbation::Typos { rate: 1.0 }, prompt, "x", 1);
    let spaces = |text: &str| text.chars().filter(|c| c.is_whitespace()).collect::<String>();
    assert_eq!(spaces(&perturbed), spaces(prompt));
    assert!(perturbed.contains(" 40 "));
    assert!(perturbed.contains(" 2 "));
}

#[test]
fn typos_are_seeded_per_example() {
    let prompt = "Natalia sold clips to many of her friends in April and then she sold half as many clips in May";
    let typos = Perturbation::Typos { rate: 0.5 };
    let first = apply(&typos, prompt, "a", 1);
    assert_eq!(first, apply(&typos, prompt, "a", 1));
    assert_ne!(first, apply(&typos, prompt, "b", 1));
    assert_ne!(first, apply(&typos, prompt, "a", 2));
}

#[test]
fn spearman_hand_computed_cases() {
    let cases: [(&[f64], &[f64], f64); 5] = [
        (&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0], 1.0),
        (&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0], -1.0),
        // 1 - 6 * (0 + 1 + 1 + 0) / (4 * 15)
        (&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0], 0.8),
        // Ties: y ranks are 1, 2, 3.5, 5, 3.5, so rho = 8 / sqrt(10 * 9.5).
        (&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0], 8.0 / 95f64.sqrt()),
        // Monotone but not linear: ranks agree exactly.
        (&[0.1, 0.2, 0.9], &[1.0, 100.0, 101.0], 1.0),
    ];
    for (x, y, expected) in cases {
        let rho = spearman(x, y).expect("defined");
        assert_close(rho, expected, &format!("spearman({x:?}, {y:?})"));
    }
}

#[test]
fn spearman_undefined_cases() {
    let cases: [(&[f64], &[f64]); 5] = [
        (&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
        (&[1.0, 2.0], &[1.0, 2.0, 3.0]),
        (&[1.0], &[2.0]),
        (&[], &[]),
        (&[1.0, f64::NAN], &[1.0, 2.0]),
    ];
    for (x, y) in cases {
        assert_eq!(spearman(x, y), None, "spearman({x:?}, {y:?})");
    }
}

#[test]
fn box_stats_hand_computed() {
    let stats = box_stats(&[4.0, 1.0, 3.0, 2.0]).unwrap();
    assert_close(stats.min, 1.0, "min");
    assert_close(stats.q1, 1.75, "q1");
    assert_close(stats.median, 2.5, "median");
    assert_close(stats.q3, 3.25, "q3");
    assert_close(stats.max, 4.0, "max");
    assert_close(stats.mean, 2.5, "mean");
    assert_eq!(stats.count, 4);

    let single = box_stats(&[5.0]).unwrap();
    assert_close(single.q1, 5.0, "q1 of one value");
    assert_close(single.q3, 5.0, "q3 of one value");
    assert!(box_stats(&[]).is_none());
}

#[test]
fn pm_bin_edges() {
    let cases = [(0.0, 0), (0.19, 0), (0.2, 1), (0.4, 2), (0.6, 3), (0.8, 4), (0.99, 4), (1.0, 4)];
    for (pm, expected) in cases {
        assert_eq!(pm_bin_index(pm), expected, "pm {pm}");
    }
}

#[test]
fn bin_by_pm_summarizes_each_bin() {
    let points = [(0.0, 1.0), (0.19, 2.0), (0.2, 3.0), (0.6, 4.0), (0.8, 5.0), (1.0, 6.0), (0.99, 7.0)];
    let bins = bin_by_pm(&points).unwrap();
    assert_eq!(bins.len(), 5);

    let counts: Vec<usize> = bins.iter().map(|b| b.stats.map_or(0, |s| s.count)).collect();
    assert_eq!(counts, vec![2, 1, 0, 1, 3]);
    assert_close(bins[0].stats.unwrap().mean, 1.5, "bin 0 mean");
    assert!(bins[2].stats.is_none());
    assert_close(bins[4].stats.unwrap().median, 6.0, "bin 4 median");
    assert_close(bins[4].lower, 0.8, "bin 4 lower edge");
    assert_close(bins[4].upper, 1.0, "bin 4 upper edge");
}

#[test]
fn bin_by_pm_rejects_bad_points() {
    assert!(bin_by_pm(&[(0.5, 1.0), (1.1, 1.0)]).unwrap_err().to_string().contains("point 1"));
    assert!(bin_by_pm(&[(f64::NAN, 1.0)]).is_err());
    assert!(bin_by_pm(&[(0.5, f64::INFINITY)]).is_err());
}
