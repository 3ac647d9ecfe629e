//! Synthetic GSM8k-style word problems of controlled difficulty.
//!
//! A 135M-parameter model solves almost no GSM8k test problems, so a sweep
//! on a CPU shows no spread in test accuracy. Generated problems let an
//! experiment choose the number of steps, the operations and the number
//! ranges, and let curation draw new problems with the structure of old ones.
//!
//! Each problem has a family (its structure, see [`family`]), a question in
//! one of the family's surface forms, and a reference solution with one line
//! per step, such as `A crate holds 3 times what a box holds, so 12 * 3 = 36
//! pencils.`, ending in `#### N`. Output is deterministic: the same settings
//! give byte-identical JSONL, because every draw comes from a seeded ChaCha
//! generator and no hash-map order is involved.

pub mod config;
pub mod family;
mod values;
mod wording;

use std::io::Write;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

pub use config::{Operation, SynthConfig};
pub use family::{Family, Operand, Step};

use crate::data::Example;
use values::{draw_values, Values};
use wording::Surface;

/// Families drawn for one problem before [`generate`] gives up.
const MAX_FAMILY_DRAWS: usize = 200;

/// Number draws per family in [`generate`]. A family must succeed twice
/// within this budget, or another family is drawn, which keeps out
/// families whose numbers are rare.
const NEW_FAMILY_ATTEMPTS: usize = 1_000;

/// Number draws per variant in [`generate_variants`]: a generous multiple
/// of [`NEW_FAMILY_ATTEMPTS`], because the family is fixed there.
const VARIANT_ATTEMPTS: usize = 20_000;

/// Number draws per variant spent looking for numbers that differ from the
/// seed problem and from earlier variants.
const MAX_DISTINCT_DRAWS: usize = 50;

/// Errors of generating problems; each names the setting, family or field.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid synthetic setting `{field}`: {message}")]
    InvalidConfig { field: &'static str, message: String },
    #[error("invalid family id `{family}`: {reason}")]
    InvalidFamily { family: String, reason: String },
    #[error(
        "no family drawn in {attempts} tries fits the number ranges; widen min_value..max_value, \
         max_factor or max_result, or allow more operations"
    )]
    NoProblems { attempts: usize },
    #[error(
        "family `{family}` has no numbers that fit the number ranges; widen min_value..max_value, \
         max_factor or max_result"
    )]
    NoValues { family: String },
    #[error("line {line} (id `{id}`): missing or invalid field `{field}`: {reason}")]
    InvalidField {
        id: String,
        line: usize,
        field: &'static str,
        reason: String,
    },
    #[error("cannot write problems: {0}")]
    Io(#[from] std::io::Error),
}

/// One generated problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub id: String,
    pub question: String,
    /// Reference solution: step lines, then `#### N` with N an integer.
    pub answer: String,
    pub family: Family,
    /// Index among problems of the same family: the occurrence number in a
    /// [`generate`] batch (from 0), or the variant number (from 1) for
    /// problems made by [`generate_variants`].
    pub variant: u32,
    /// Surface form index within the family.
    pub surface: usize,
    /// Id of the problem a variant was seeded from; None for new problems.
    pub seed_id: Option<String>,
}

impl Problem {
    /// JSON object with GSM8k field names plus `family`, `variant`,
    /// `surface` and, for variants, `seed_id`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("id".into(), self.id.clone().into());
        object.insert("question".into(), self.question.clone().into());
        object.insert("answer".into(), self.answer.clone().into());
        object.insert("family".into(), self.family.id().into());
        object.insert("variant".into(), self.variant.into());
        object.insert("surface".into(), self.surface.into());
        if let Some(seed_id) = &self.seed_id {
            object.insert("seed_id".into(), seed_id.clone().into());
        }
        serde_json::Value::Object(object)
    }

    /// Rebuilds a problem from a line of a generated file, read with
    /// `data::load_jsonl(.., Format::Gsm8k)`. Needs the `family` field;
    /// `variant` and `surface` default to 0.
    pub fn from_example(example: &Example) -> Result<Problem, SynthError> {
        let invalid = |field: &'static str, reason: String| SynthError::InvalidField {
            id: example.id.clone(),
            line: example.line,
            field,
            reason,
        };

        let family_id = example
            .extra("family")
            .ok_or_else(|| invalid("family", "absent; only files written by `premem synth` have it".into()))?;
        let family = Family::parse(family_id)?;
        let variant = parse_or_zero(example.extra("variant")).map_err(|reason| invalid("variant", reason))?;
        let surface = parse_or_zero(example.extra("surface")).map_err(|reason| invalid("surface", reason))?;

        Ok(Problem {
            id: example.id.clone(),
            question: example.question.clone(),
            answer: example.solution.clone(),
            family,
            variant,
            surface,
            seed_id: example.extra("seed_id").map(str::to_string),
        })
    }
}

fn parse_or_zero<T: std::str::FromStr + Default>(text: Option<&str>) -> Result<T, String> {
    match text {
        None => Ok(T::default()),
        Some(text) => text.parse().map_err(|_| format!("`{text}` is not a non-negative integer")),
    }
}

/// Generates `config.count` problems with ids `synth-<seed>-<index>`.
pub fn generate(config: &SynthConfig) -> Result<Vec<Problem>, SynthError> {
    config.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut problems = Vec::with_capacity(config.count);
    let mut per_family = std::collections::BTreeMap::<String, u32>::new();

    for index in 0..config.count {
        let (family, values) = draw_problem(config, &mut rng)?;

        let surface = rng.gen_range(0..config.surface_forms);
        let wording = Surface::new(&family, surface);
        let question = wording.question(&family, &values);
        let answer = wording.solution(&family, &values, &mut rng);

        let occurrences = per_family.entry(family.id()).or_insert(0);
        let variant = *occurrences;
        *occurrences += 1;

        problems.push(Problem {
            id: format!("synth-{}-{index:05}", config.seed),
            question,
            answer,
            family,
            variant,
            surface,
            seed_id: None,
        });
    }
    Ok(problems)
}

/// Draws a family and numbers that fit the settings.
fn draw_problem(config: &SynthConfig, rng: &mut ChaCha8Rng) -> Result<(Family, Values), SynthError> {
    for _ in 0..MAX_FAMILY_DRAWS {
        let steps = rng.gen_range(config.min_steps..=config.max_steps);
        let family = Family::random(rng, steps, &config.operations);
        let Some(values) = draw_values(&family, config, rng, NEW_FAMILY_ATTEMPTS) else {
            continue;
        };

        // A second success shows the family's numbers are not rare, so
        // that generate_variants, with many more attempts, finds numbers.
        if draw_values(&family, config, rng, NEW_FAMILY_ATTEMPTS).is_some() {
            return Ok((family, values));
        }
    }
    Err(SynthError::NoProblems {
        attempts: MAX_FAMILY_DRAWS,
    })
}

/// Generates `n` variants of `seed_problem`: same family, new numbers and,
/// when the settings allow more than one, a different surface form.
///
/// Variant `k` (from 1) has id `<seed id>-v<k>` and `seed_id` = the seed
/// problem's id. The generator is seeded from `seed` and the seed problem's
/// id, so the variants of one problem do not depend on which other problems
/// are in the file. Numbers differ from the seed problem's and from earlier
/// variants' unless the ranges leave too few choices. Only the number
/// ranges of `config` apply; its steps, operations, count and seed do not.
pub fn generate_variants(
    config: &SynthConfig,
    seed_problem: &Problem,
    n: usize,
    seed: u64,
) -> Result<Vec<Problem>, SynthError> {
    config.validate()?;
    let digest = Sha256::digest(format!("variants\0{seed}\0{}", seed_problem.id).as_bytes());
    let mut rng_seed = [0u8; 32];
    rng_seed.copy_from_slice(&digest);
    let mut rng = ChaCha8Rng::from_seed(rng_seed);

    let family = &seed_problem.family;
    let mut used_numbers = vec![integers_in(&seed_problem.question)];
    let mut variants = Vec::with_capacity(n);

    for k in 1..=n {
        let values = draw_distinct_values(family, config, &used_numbers, &mut rng)?;
        used_numbers.push(values.stated());

        let surface = if config.surface_forms > 1 {
            let offset = rng.gen_range(1..config.surface_forms);
            (seed_problem.surface + offset) % config.surface_forms
        } else {
            0
        };
        let wording = Surface::new(family, surface);

        variants.push(Problem {
            id: format!("{}-v{k}", seed_problem.id),
            question: wording.question(family, &values),
            answer: wording.solution(family, &values, &mut rng),
            family: family.clone(),
            variant: k as u32,
            surface,
            seed_id: Some(seed_problem.id.clone()),
        });
    }
    Ok(variants)
}

/// Draws numbers whose stated list is not in `used`, falling back to the
/// last draw when the ranges offer no unused choice.
fn draw_distinct_values(
    family: &Family,
    config: &SynthConfig,
    used: &[Vec<i64>],
    rng: &mut ChaCha8Rng,
) -> Result<Values, SynthError> {
    let no_values = || SynthError::NoValues { family: family.id() };
    let mut last = draw_values(family, config, rng, VARIANT_ATTEMPTS).ok_or_else(no_values)?;
    for _ in 0..MAX_DISTINCT_DRAWS {
        if !used.contains(&last.stated()) {
            break;
        }
        match draw_values(family, config, rng, VARIANT_ATTEMPTS) {
            Some(values) => last = values,
            None => break,
        }
    }
    Ok(last)
}

/// Unsigned integers in `text`, in order of appearance.
fn integers_in(text: &str) -> Vec<i64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// Writes one JSON object per line.
pub fn write_jsonl(problems: &[Problem], mut out: impl Write) -> Result<(), SynthError> {
    for problem in problems {
        serde_json::to_writer(&mut out, &problem.to_json()).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
