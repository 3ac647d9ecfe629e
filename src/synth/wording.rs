//! Wording of synthetic problems: the question's surface form (person,
//! objects, containers, sentence forms) and the reference solution's step
//! phrasings.
//!
//! Every problem is a story about containers: quantity 0 is what the first
//! container holds and each step defines what the next container holds.
//! A surface form is fixed by the family and the form's index, so a family
//! takes exactly `surface_forms` question wordings. Solution phrasings are
//! drawn per problem, so two problems with the same question wording can
//! still differ in their reference solutions.

use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::config::Operation;
use super::family::{Family, Operand};
use super::values::Values;

const NAMES: [&str; 20] = [
    "Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kira", "Liam", "Maya",
    "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
];

const OBJECTS: [&str; 12] = [
    "pencils", "apples", "marbles", "stickers", "cookies", "books", "shells", "coins", "buttons", "cards", "crayons",
    "beads",
];

/// Containers as (singular, plural). The pool must hold more entries than
/// `MAX_STEPS`, because a problem needs one container per quantity.
const CONTAINERS: [(&str, &str); 14] = [
    ("box", "boxes"),
    ("crate", "crates"),
    ("bag", "bags"),
    ("basket", "baskets"),
    ("jar", "jars"),
    ("tin", "tins"),
    ("tray", "trays"),
    ("bin", "bins"),
    ("sack", "sacks"),
    ("drawer", "drawers"),
    ("barrel", "barrels"),
    ("chest", "chests"),
    ("carton", "cartons"),
    ("pouch", "pouches"),
];

const INTROS: [&str; 4] = [
    "{name} is packing {obj}. A {c} holds {a} {obj}.",
    "{name} sorts {obj} into containers of different sizes. Each {c} has {a} {obj} in it.",
    "In {name}'s storeroom, one {c} contains {a} {obj}.",
    "{name} counts {obj}. There are {a} {obj} in a {c}.",
];

const QUESTIONS: [&str; 3] = [
    "How many {obj} does a {c} hold?",
    "How many {obj} are in one {c}?",
    "How many {obj} does {name} put in each {c}?",
];

/// Kinds of step that need different sentences.
#[derive(Clone, Copy)]
enum StepKind {
    AddGiven,
    SubGiven,
    MulGiven,
    DivGiven,
    AddQuantity,
    SubQuantity,
}

fn step_kind(operation: Operation, right: Operand) -> StepKind {
    match (operation, right) {
        (Operation::Add, Operand::Given) => StepKind::AddGiven,
        (Operation::Sub, Operand::Given) => StepKind::SubGiven,
        (Operation::Mul, _) => StepKind::MulGiven,
        (Operation::Div, _) => StepKind::DivGiven,
        (Operation::Add, Operand::Quantity(_)) => StepKind::AddQuantity,
        (Operation::Sub, Operand::Quantity(_)) => StepKind::SubQuantity,
    }
}

/// Question sentences per step kind. `{c}` is the step's container, `{src}`
/// the container it starts from, `{other}` the second container of a
/// combining step and `{b}` the given number.
fn question_sentences(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::AddGiven => &[
            "A {c} holds {b} more {obj} than a {src}.",
            "Each {c} has {b} {obj} more than a {src} does.",
            "Compared with a {src}, a {c} contains {b} extra {obj}.",
        ],
        StepKind::SubGiven => &[
            "A {c} holds {b} fewer {obj} than a {src}.",
            "Each {c} has {b} {obj} less than a {src} does.",
            "Compared with a {src}, a {c} contains {b} fewer {obj}.",
        ],
        StepKind::MulGiven => &[
            "A {c} holds {b} times as many {obj} as a {src}.",
            "Each {c} has {b} times the number of {obj} in a {src}.",
            "One {c} contains as many {obj} as {b} {srcs} together.",
        ],
        StepKind::DivGiven => &[
            "It takes {b} {cs} to hold as many {obj} as one {src}.",
            "The {obj} of one {src} fill exactly {b} {cs}.",
            "A {src} holds {b} times as many {obj} as a {c}.",
        ],
        StepKind::AddQuantity => &[
            "A {c} holds as many {obj} as a {src} and a {other} together.",
            "Each {c} contains the {obj} of one {src} plus those of one {other}.",
            "A {c} has as many {obj} as a {src} and a {other} combined.",
        ],
        StepKind::SubQuantity => &[
            "A {c} holds as many {obj} as a {src} has beyond what a {other} has.",
            "The number of {obj} in a {c} is the number in a {src} minus the number in a {other}.",
            "Each {c} holds the difference between the {obj} in a {src} and in a {other}.",
        ],
    }
}

/// Solution phrasings per step kind. `{calc}` is the step line's
/// arithmetic, such as `12 * 3 = 36`, and `{z}` its result.
fn solution_sentences(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::AddGiven => &[
            "A {c} holds {b} more than a {src}, so it holds {calc} {obj}.",
            "{calc}, so a {c} has {z} {obj}.",
            "Adding {b} to the count of a {src} gives {calc} {obj} in a {c}.",
            "{C}: {calc} {obj}.",
        ],
        StepKind::SubGiven => &[
            "A {c} holds {b} fewer than a {src}, so it holds {calc} {obj}.",
            "{calc}, so a {c} has {z} {obj}.",
            "Taking {b} from the count of a {src} leaves {calc} {obj} for a {c}.",
            "{C}: {calc} {obj}.",
        ],
        StepKind::MulGiven => &[
            "A {c} holds {b} times what a {src} holds, so {calc} {obj}.",
            "{calc}, so a {c} has {z} {obj}.",
            "Multiplying the {obj} of a {src} by {b} gives {calc} in a {c}.",
            "{C}: {calc} {obj}.",
        ],
        StepKind::DivGiven => &[
            "One {src} fills {b} {cs}, so a {c} holds {calc} {obj}.",
            "{calc}, so a {c} has {z} {obj}.",
            "Splitting the {obj} of a {src} into {b} equal parts gives {calc} per {c}.",
            "{C}: {calc} {obj}.",
        ],
        StepKind::AddQuantity => &[
            "A {c} holds a {src} plus a {other}: {calc} {obj}.",
            "{calc}, so a {c} has {z} {obj}.",
            "Combining a {src} and a {other} gives {calc} {obj} in a {c}.",
            "{C}: {calc} {obj}.",
        ],
        StepKind::SubQuantity => &[
            "A {c} holds a {src} minus a {other}: {calc} {obj}.",
            "{calc}, so a {c} has {z} {obj}.",
            "Taking the count of a {other} from that of a {src} leaves {calc} {obj} for a {c}.",
            "{C}: {calc} {obj}.",
        ],
    }
}

/// Optional first solution lines; the empty string means none.
const SOLUTION_OPENINGS: [&str; 3] = ["", "A {c} holds {a} {obj}.", "Start from the {a} {obj} in one {c}."];

/// Optional last lines before `#### N`; the empty string means none.
const SOLUTION_CLOSINGS: [&str; 2] = ["", "The answer is {z}."];

/// Question wording of one surface form of a family.
#[derive(Debug, Clone)]
pub struct Surface {
    name: &'static str,
    object: &'static str,
    /// One container per quantity.
    containers: Vec<(&'static str, &'static str)>,
    intro: usize,
    /// Index into [`question_sentences`] per step.
    sentences: Vec<usize>,
    question: usize,
}

impl Surface {
    /// Surface form `form` of `family`; the same arguments always give the
    /// same surface.
    pub fn new(family: &Family, form: usize) -> Surface {
        let digest = Sha256::digest(format!("surface\0{}\0{form}", family.id()).as_bytes());
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&digest);
        let mut rng = ChaCha8Rng::from_seed(seed);

        let name = NAMES[rng.gen_range(0..NAMES.len())];
        let object = OBJECTS[rng.gen_range(0..OBJECTS.len())];
        let containers = CONTAINERS
            .choose_multiple(&mut rng, family.steps.len() + 1)
            .copied()
            .collect();
        let intro = rng.gen_range(0..INTROS.len());
        let sentences = family
            .steps
            .iter()
            .map(|step| rng.gen_range(0..question_sentences(step_kind(step.operation, step.right)).len()))
            .collect();
        let question = rng.gen_range(0..QUESTIONS.len());

        Surface {
            name,
            object,
            containers,
            intro,
            sentences,
            question,
        }
    }

    /// Writes the question text for `values`.
    pub fn question(&self, family: &Family, values: &Values) -> String {
        let mut sentences = vec![fill(
            INTROS[self.intro],
            &[
                ("name", self.name.to_string()),
                ("obj", self.object.to_string()),
                ("c", self.containers[0].0.to_string()),
                ("a", values.quantities[0].to_string()),
            ],
        )];

        for (index, step) in family.steps.iter().enumerate() {
            let kind = step_kind(step.operation, step.right);
            let template = question_sentences(kind)[self.sentences[index]];
            let given = values.given_operands[index].map(|b| b.to_string()).unwrap_or_default();
            sentences.push(fill(template, &self.step_fields(family, index, given)));
        }

        let last = self.containers[family.steps.len()].0;
        sentences.push(fill(
            QUESTIONS[self.question],
            &[
                ("name", self.name.to_string()),
                ("obj", self.object.to_string()),
                ("c", last.to_string()),
            ],
        ));
        sentences.join(" ")
    }

    /// Writes a reference solution: optional opening, one line per step,
    /// optional closing, then `#### N`. Phrasings come from `rng`.
    pub fn solution(&self, family: &Family, values: &Values, rng: &mut ChaCha8Rng) -> String {
        let mut lines = Vec::new();

        let opening = SOLUTION_OPENINGS[rng.gen_range(0..SOLUTION_OPENINGS.len())];
        if !opening.is_empty() {
            lines.push(fill(
                opening,
                &[
                    ("c", self.containers[0].0.to_string()),
                    ("a", values.quantities[0].to_string()),
                    ("obj", self.object.to_string()),
                ],
            ));
        }

        for (index, step) in family.steps.iter().enumerate() {
            let (left, right) = values.operands(family, index);
            let result = values.quantities[index + 1];
            let calc = format!("{left} {} {right} = {result}", step.operation.symbol());

            let phrasings = solution_sentences(step_kind(step.operation, step.right));
            let template = phrasings[rng.gen_range(0..phrasings.len())];
            let mut fields = self.step_fields(family, index, right.to_string());
            fields.push(("calc", calc));
            fields.push(("z", result.to_string()));
            fields.push(("C", capitalize(self.containers[index + 1].0)));
            lines.push(fill(template, &fields));
        }

        let closing = SOLUTION_CLOSINGS[rng.gen_range(0..SOLUTION_CLOSINGS.len())];
        if !closing.is_empty() {
            lines.push(fill(closing, &[("z", values.answer().to_string())]));
        }
        lines.push(format!("#### {}", values.answer()));
        lines.join("\n")
    }

    /// Placeholder values shared by question and solution sentences of step `index`.
    fn step_fields(&self, family: &Family, index: usize, given: String) -> Vec<(&'static str, String)> {
        let step = family.steps[index];
        let (current, currents) = self.containers[index + 1];
        let (source, sources) = self.containers[step.left];
        let other = match step.right {
            Operand::Quantity(q) => self.containers[q].0,
            Operand::Given => "",
        };
        vec![
            ("c", current.to_string()),
            ("cs", currents.to_string()),
            ("src", source.to_string()),
            ("srcs", sources.to_string()),
            ("other", other.to_string()),
            ("b", given),
            ("obj", self.object.to_string()),
        ]
    }
}

/// Replaces each `{key}` in `template`.
fn fill(template: &str, fields: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (key, value) in fields {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    text
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
