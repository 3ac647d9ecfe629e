//! Settings of the synthetic problem generator, read from the experiment
//! file's `[data.synthetic]` table or built from `premem synth` flags.

use serde::{Deserialize, Serialize};

use super::SynthError;

/// Largest number of steps a problem may have. Each step introduces one
/// container, and the surface pools hold this many plus one.
pub const MAX_STEPS: usize = 8;

/// Arithmetic operation of one solution step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    #[serde(alias = "+")]
    Add,
    #[serde(alias = "-")]
    Sub,
    #[serde(alias = "*")]
    Mul,
    #[serde(alias = "/")]
    Div,
}

impl Operation {
    /// All four operations in a fixed order.
    pub const ALL: [Operation; 4] = [Operation::Add, Operation::Sub, Operation::Mul, Operation::Div];

    /// Symbol written in solution step lines such as `12 * 3 = 36`.
    pub fn symbol(self) -> char {
        match self {
            Operation::Add => '+',
            Operation::Sub => '-',
            Operation::Mul => '*',
            Operation::Div => '/',
        }
    }

    /// Name used in family ids and in settings (`add`, `sub`, `mul`, `div`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Sub => "sub",
            Operation::Mul => "mul",
            Operation::Div => "div",
        }
    }

    /// Parses a name or a symbol.
    pub fn parse(text: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|op| op.name() == text || text.len() == 1 && text.starts_with(op.symbol()))
    }

    /// Applies the operation; None on overflow or when a division is not exact.
    pub fn apply(self, left: i64, right: i64) -> Option<i64> {
        match self {
            Operation::Add => left.checked_add(right),
            Operation::Sub => left.checked_sub(right),
            Operation::Mul => left.checked_mul(right),
            Operation::Div => {
                if right == 0 || left % right != 0 {
                    None
                } else {
                    left.checked_div(right)
                }
            }
        }
    }
}

/// Settings of [`generate`](super::generate). Every field has a default, so
/// an empty table is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Minimum number of solution steps (operations) per problem.
    pub min_steps: usize,
    /// Maximum number of solution steps per problem, at most [`MAX_STEPS`].
    pub max_steps: usize,
    /// Operations the steps may use.
    pub operations: Vec<Operation>,
    /// Smallest starting quantity and smallest number added or subtracted.
    pub min_value: i64,
    /// Largest starting quantity and largest number added or subtracted.
    pub max_value: i64,
    /// Largest multiplier or divisor; the smallest is 2.
    pub max_factor: i64,
    /// Largest absolute value of any intermediate result or final answer.
    pub max_result: i64,
    /// Allow intermediate results and answers below 1. Without it every
    /// quantity is a positive integer.
    pub allow_negative: bool,
    /// Number of surface forms (name, objects, containers, sentence forms)
    /// that each family can take.
    pub surface_forms: usize,
    /// Number of problems to generate.
    pub count: usize,
    /// Seed of the ChaCha random number generator.
    pub seed: u64,
}

// NOTE: the help text of `premem synth` repeats these defaults.
impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            min_steps: 2,
            max_steps: 4,
            operations: Operation::ALL.to_vec(),
            min_value: 2,
            max_value: 50,
            max_factor: 9,
            max_result: 10_000,
            allow_negative: false,
            surface_forms: 4,
            count: 100,
            seed: 0,
        }
    }
}

impl SynthConfig {
    /// Checks that the settings are consistent; the error names the field.
    pub fn validate(&self) -> Result<(), SynthError> {
        let invalid = |field: &'static str, message: String| Err(SynthError::InvalidConfig { field, message });

        if self.min_steps == 0 {
            return invalid("min_steps", "must be at least 1".into());
        }
        if self.max_steps < self.min_steps || self.max_steps > MAX_STEPS {
            return invalid(
                "max_steps",
                format!("is {} but must lie in min_steps..={MAX_STEPS} (min_steps = {})", self.max_steps, self.min_steps),
            );
        }
        if self.operations.is_empty() {
            return invalid("operations", "must name at least one of add, sub, mul, div".into());
        }
        if self.min_value < 1 || self.max_value < self.min_value {
            return invalid(
                "max_value",
                format!("range {}..={} is invalid: need 1 <= min_value <= max_value", self.min_value, self.max_value),
            );
        }
        if self.max_factor < 2 {
            return invalid("max_factor", format!("is {} but must be at least 2", self.max_factor));
        }
        if self.max_result < self.max_value {
            return invalid(
                "max_result",
                format!("is {} but must be at least max_value ({})", self.max_result, self.max_value),
            );
        }
        if self.surface_forms == 0 {
            return invalid("surface_forms", "must be at least 1".into());
        }
        Ok(())
    }
}
