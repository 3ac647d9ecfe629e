//! `premem synth`: writes synthetic GSM8k-style problems, or variants of
//! the problems in a generated file, as JSONL.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::InvalidInput;
use crate::data::{load_jsonl, Format};
use crate::synth::{generate, generate_variants, write_jsonl, Operation, Problem, SynthConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TOML file with the generator settings: an experiment file with a
    /// `[data.synthetic]` table, or a file with that table's fields at the
    /// top level. Flags override it, and the defaults below apply to
    /// fields that neither sets.
    #[arg(long)]
    config: Option<PathBuf>,

    /// Number of problems to generate (default 100).
    #[arg(long)]
    count: Option<usize>,

    /// Seed of the random number generator (default 0).
    #[arg(long)]
    seed: Option<u64>,

    /// Minimum number of solution steps per problem (default 2).
    #[arg(long)]
    min_steps: Option<usize>,

    /// Maximum number of solution steps per problem, at most 8 (default 4).
    #[arg(long)]
    max_steps: Option<usize>,

    /// Allowed operations, comma-separated: add, sub, mul, div or + - * / (default all four).
    #[arg(long, value_delimiter = ',')]
    operations: Option<Vec<String>>,

    /// Smallest starting quantity and smallest number added or subtracted (default 2).
    #[arg(long)]
    min_value: Option<i64>,

    /// Largest starting quantity and largest number added or subtracted (default 50).
    #[arg(long)]
    max_value: Option<i64>,

    /// Largest multiplier or divisor (default 9).
    #[arg(long)]
    max_factor: Option<i64>,

    /// Largest absolute value of any intermediate result (default 10000).
    #[arg(long)]
    max_result: Option<i64>,

    /// Allow results below 1.
    #[arg(long)]
    allow_negative: bool,

    /// Number of surface forms each family can take (default 4).
    #[arg(long)]
    surface_forms: Option<usize>,

    /// Write variants of the problems in this generated JSONL file instead
    /// of new problems.
    #[arg(long, requires = "per")]
    variants_of: Option<PathBuf>,

    /// Number of variants per problem of --variants-of.
    #[arg(long, requires = "variants_of")]
    per: Option<usize>,

    /// Output file; stdout when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = build_config(&args)?;

    let problems = match &args.variants_of {
        None => generate(&config).map_err(|e| InvalidInput(e.to_string()))?,
        Some(path) => {
            // clap requires --per with --variants-of, so the default is never used.
            let per = args.per.unwrap_or(1);
            let examples = load_jsonl(path, Format::Gsm8k)?;
            let mut variants = Vec::new();
            for example in &examples {
                let seed_problem = Problem::from_example(example)
                    .map_err(|e| InvalidInput(format!("{}: {e}", path.display())))?;
                let batch = generate_variants(&config, &seed_problem, per, config.seed)
                    .map_err(|e| InvalidInput(e.to_string()))?;
                variants.extend(batch);
            }
            variants
        }
    };

    match &args.out {
        None => write_jsonl(&problems, std::io::stdout().lock())?,
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create output file {}", path.display()))?;
            let mut writer = BufWriter::new(file);
            write_jsonl(&problems, &mut writer).with_context(|| format!("cannot write {}", path.display()))?;
            writer.flush()?;
        }
    }
    tracing::info!(problems = problems.len(), "wrote synthetic problems");
    Ok(())
}

/// Settings from the --config file, then flags on top.
fn build_config(args: &Args) -> anyhow::Result<SynthConfig> {
    let mut config = match &args.config {
        None => SynthConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read settings file {}", path.display()))?;
            parse_settings(&text).map_err(|e| InvalidInput(format!("{}: {e}", path.display())))?
        }
    };

    if let Some(count) = args.count {
        config.count = count;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(value) = args.min_steps {
        config.min_steps = value;
    }
    if let Some(value) = args.max_steps {
        config.max_steps = value;
    }
    if let Some(names) = &args.operations {
        config.operations = names
            .iter()
            .map(|name| {
                Operation::parse(name.trim()).ok_or_else(|| {
                    InvalidInput(format!("unknown operation `{name}` in --operations: use add, sub, mul, div"))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(value) = args.min_value {
        config.min_value = value;
    }
    if let Some(value) = args.max_value {
        config.max_value = value;
    }
    if let Some(value) = args.max_factor {
        config.max_factor = value;
    }
    if let Some(value) = args.max_result {
        config.max_result = value;
    }
    if args.allow_negative {
        config.allow_negative = true;
    }
    if let Some(value) = args.surface_forms {
        config.surface_forms = value;
    }

    config.validate().map_err(|e| InvalidInput(e.to_string()))?;
    Ok(config)
}

/// Reads the `[data.synthetic]` table when the file has one, else the whole
/// file as that table.
fn parse_settings(text: &str) -> Result<SynthConfig, toml::de::Error> {
    let table: toml::Table = toml::from_str(text)?;
    let synthetic = table
        .get("data")
        .and_then(|data| data.get("synthetic"))
        .cloned();
    match synthetic {
        Some(section) => section.try_into(),
        None => toml::Value::Table(table).try_into(),
    }
}
