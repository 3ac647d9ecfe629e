//! Problem families: the structure of a problem without its numbers or
//! wording. Two problems of one family need the same chain of operations
//! and take their operands from the same earlier quantities.
//!
//! Quantity 0 is the starting quantity given in the question. Step `i`
//! (0-based) defines quantity `i + 1` from an earlier quantity and either a
//! number given in the question or a second earlier quantity. A family's id
//! lists the steps, for example `mul(q0,n)>add(q1,n)>sub(q2,q0)`: step 1
//! multiplies quantity 0 by a given number, step 2 adds a given number to
//! quantity 1, step 3 subtracts quantity 0 from quantity 2.

use std::fmt;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::Operation;
use super::SynthError;

/// Right-hand operand of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A number stated in the question.
    Given,
    /// An earlier quantity, by index.
    Quantity(usize),
}

/// One operation of a family: `quantities[left] op right`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    pub operation: Operation,
    /// Index of the earlier quantity the step starts from.
    pub left: usize,
    pub right: Operand,
}

/// Structure of a problem: its steps in order. The answer is the quantity
/// defined by the last step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Family {
    pub steps: Vec<Step>,
}

/// Chance that a step whose operation is add or sub takes its right operand
/// from an earlier quantity instead of a given number, when one exists.
const QUANTITY_OPERAND_CHANCE: f64 = 0.3;

impl Family {
    /// Draws a family with `steps` steps using only `operations`.
    ///
    /// Each step starts from the quantity of the step before it, so every
    /// quantity feeds the answer. Only add and sub take a second earlier
    /// quantity, because "a times b" of two container contents reads badly.
    pub fn random(rng: &mut ChaCha8Rng, steps: usize, operations: &[Operation]) -> Family {
        let mut chain = Vec::with_capacity(steps);
        for index in 0..steps {
            let operation = operations[rng.gen_range(0..operations.len())];
            let combines = matches!(operation, Operation::Add | Operation::Sub)
                && index >= 1
                && rng.gen_bool(QUANTITY_OPERAND_CHANCE);
            let right = if combines {
                Operand::Quantity(rng.gen_range(0..index))
            } else {
                Operand::Given
            };
            chain.push(Step {
                operation,
                left: index,
                right,
            });
        }
        Family { steps: chain }
    }

    /// Returns the family id, as written in the `family` field of generated files.
    pub fn id(&self) -> String {
        self.to_string()
    }

    /// Parses a family id written by [`Family::id`].
    pub fn parse(id: &str) -> Result<Family, SynthError> {
        let invalid = |reason: String| SynthError::InvalidFamily {
            family: id.to_string(),
            reason,
        };

        let mut steps = Vec::new();
        for (index, part) in id.split('>').enumerate() {
            let (name, rest) = part
                .split_once('(')
                .ok_or_else(|| invalid(format!("step {} `{part}` has no `(`", index + 1)))?;
            let operation = Operation::parse(name)
                .ok_or_else(|| invalid(format!("unknown operation `{name}` (expected add, sub, mul or div)")))?;
            let arguments = rest
                .strip_suffix(')')
                .ok_or_else(|| invalid(format!("step {} `{part}` does not end in `)`", index + 1)))?;
            let (left, right) = arguments
                .split_once(',')
                .ok_or_else(|| invalid(format!("step {} `{part}` needs two operands", index + 1)))?;

            let left = parse_quantity(left, index).map_err(&invalid)?;
            let right = if right == "n" {
                Operand::Given
            } else {
                if !matches!(operation, Operation::Add | Operation::Sub) {
                    return Err(invalid(format!(
                        "step {} `{part}`: only add and sub take a quantity as right operand",
                        index + 1
                    )));
                }
                Operand::Quantity(parse_quantity(right, index).map_err(&invalid)?)
            };
            steps.push(Step { operation, left, right });
        }

        if steps.len() > super::config::MAX_STEPS {
            return Err(invalid(format!("{} steps; at most {} are supported", steps.len(), super::config::MAX_STEPS)));
        }
        Ok(Family { steps })
    }
}

/// Parses `qK` where K must name a quantity defined before step `index`.
fn parse_quantity(text: &str, index: usize) -> Result<usize, String> {
    let number: usize = text
        .strip_prefix('q')
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| format!("operand `{text}` is neither `n` nor `q<index>`"))?;
    if number > index {
        return Err(format!("step {} uses q{number}, which is defined later", index + 1));
    }
    Ok(number)
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, step) in self.steps.iter().enumerate() {
            if index > 0 {
                f.write_str(">")?;
            }
            write!(f, "{}(q{},", step.operation.name(), step.left)?;
            match step.right {
                Operand::Given => f.write_str("n)")?,
                Operand::Quantity(q) => write!(f, "q{q})")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_id_round_trips() {
        let id = "mul(q0,n)>add(q1,n)>sub(q2,q0)";
        let family = Family::parse(id).unwrap();
        assert_eq!(family.steps.len(), 3);
        assert_eq!(family.id(), id);
    }

    #[test]
    fn family_parse_rejects_bad_ids() {
        for bad in ["", "pow(q0,n)", "add(q1,n)", "mul(q0,q0)", "add(q0,n", "add(q0)"] {
            assert!(Family::parse(bad).is_err(), "accepted `{bad}`");
        }
    }
}
