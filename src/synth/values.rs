//! Numbers for a family: the starting quantity and the given operands,
//! drawn so that every division is exact and every result stays in range.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{Operation, SynthConfig};
use super::family::{Family, Operand};

/// Numbers of one problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    /// Quantity 0 followed by the result of each step; the last is the answer.
    pub quantities: Vec<i64>,
    /// The given right operand of each step, None where the step uses an
    /// earlier quantity.
    pub given_operands: Vec<Option<i64>>,
}

impl Values {
    /// Numbers stated in the question, in the order the question states them.
    pub fn stated(&self) -> Vec<i64> {
        std::iter::once(self.quantities[0]).chain(self.given_operands.iter().flatten().copied()).collect()
    }

    /// The final answer.
    pub fn answer(&self) -> i64 {
        *self.quantities.last().expect("quantities always contains quantity 0")
    }

    /// Left and right operand values of step `index`.
    pub fn operands(&self, family: &Family, index: usize) -> (i64, i64) {
        let step = family.steps[index];
        let right = match step.right {
            Operand::Given => self.given_operands[index].expect("a given operand has a value"),
            Operand::Quantity(q) => self.quantities[q],
        };
        (self.quantities[step.left], right)
    }
}

/// Draws numbers for `family` within `config`'s ranges, retrying until a
/// draw satisfies every constraint. Returns None after `attempts` failed
/// draws, which means the ranges rarely or never serve this family.
pub fn draw_values(family: &Family, config: &SynthConfig, rng: &mut ChaCha8Rng, attempts: usize) -> Option<Values> {
    (0..attempts).find_map(|_| draw_once(family, config, rng))
}

fn draw_once(family: &Family, config: &SynthConfig, rng: &mut ChaCha8Rng) -> Option<Values> {
    let mut quantities = vec![draw_start(family, config, rng)];
    let mut given_operands = Vec::with_capacity(family.steps.len());

    for step in &family.steps {
        let left = quantities[step.left];
        let right = match step.right {
            Operand::Quantity(q) => {
                given_operands.push(None);
                quantities[q]
            }
            Operand::Given => {
                let value = draw_operand(step.operation, left, config, rng)?;
                given_operands.push(Some(value));
                value
            }
        };

        let result = step.operation.apply(left, right)?;
        let too_small = !config.allow_negative && result < 1;
        if too_small || result.abs() > config.max_result {
            return None;
        }
        quantities.push(result);
    }

    Some(Values { quantities, given_operands })
}

/// Draws quantity 0. For a family with divisions, half of the draws are a
/// product of up to one factor per division, times a multiplier, because a
/// uniform draw rarely survives a chain of exact divisions.
fn draw_start(family: &Family, config: &SynthConfig, rng: &mut ChaCha8Rng) -> i64 {
    let uniform = rng.gen_range(config.min_value..=config.max_value);
    let divisions = family
        .steps
        .iter()
        .filter(|step| step.operation == Operation::Div)
        .count();
    if divisions == 0 || rng.gen_bool(0.5) {
        return uniform;
    }

    // Multiply in factors while the product stays within max_value.
    let mut product: i64 = 1;
    for _ in 0..divisions {
        let largest = config.max_factor.min(config.max_value / product);
        if largest < 2 {
            break;
        }
        product *= rng.gen_range(2..=largest);
    }

    let lowest_multiplier = ((config.min_value + product - 1) / product).max(1);
    let highest_multiplier = config.max_value / product;
    if lowest_multiplier > highest_multiplier {
        return uniform;
    }
    product * rng.gen_range(lowest_multiplier..=highest_multiplier)
}

/// Draws a given right operand for `left op _`; None when no operand fits.
fn draw_operand(operation: Operation, left: i64, config: &SynthConfig, rng: &mut ChaCha8Rng) -> Option<i64> {
    match operation {
        Operation::Add => Some(rng.gen_range(config.min_value..=config.max_value)),
        Operation::Sub => {
            let high = if config.allow_negative {
                config.max_value
            } else {
                config.max_value.min(left - 1)
            };
            (high >= config.min_value).then(|| rng.gen_range(config.min_value..=high))
        }
        Operation::Mul => Some(rng.gen_range(2..=config.max_factor)),
        Operation::Div => {
            let divisors: Vec<i64> = (2..=config.max_factor).filter(|d| left % d == 0 && left / d != 0).collect();
            (!divisors.is_empty()).then(|| divisors[rng.gen_range(0..divisors.len())])
        }
    }
}
