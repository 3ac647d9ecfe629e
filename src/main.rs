//! The `premem` command line. Library errors are typed; this edge adds
//! context with anyhow and maps failures to exit codes (1 = a stage or
//! command failed, 2 = invalid input).

use clap::{Parser, Subcommand};

use premem::cli;

const AFTER_HELP: &str = "\
Typical use:
  premem check experiments/smoke.toml      validate a file and print its stage plan
  premem report experiments/smoke.toml     run what is not cached, write reports/smoke/report.pdf
  premem status experiments/smoke.toml     see which stages are cached
  premem explain experiments/smoke.toml fine-tune   why a stage would rerun

Data paths in experiment files are relative to --data-dir (or PREMEM_DATA_DIR,
default ./data); model paths to --model-dir (PREMEM_MODEL_DIR, default ./models).
Stage outputs are cached under ./cache (PREMEM_CACHE_DIR). Exit codes: 0 success,
1 a stage or command failed, 2 invalid input.";

#[derive(Parser)]
#[command(
    name = "premem",
    version,
    about = "Fine-tune, sample and score an LLM on reasoning data in cached stages, then report pre-memorization train accuracy",
    long_about = None,
    after_help = AFTER_HELP
)]
struct Cli {
    /// Print only warnings and errors.
    #[arg(long, short, global = true)]
    quiet: bool,

    /// More log output (-v: debug, -vv: trace).
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every stage of an experiment that is not cached and render its report.
    Report(cli::report::Args),
    /// Validate an experiment file and its inputs; print the plan.
    Check(cli::check::Args),
    /// Show each stage of an experiment: cached or missing, key, size, time.
    Status(cli::status::Args),
    /// Explain why a stage would rerun: how it differs from the closest cached entry.
    Explain(cli::explain::Args),
    /// Remove cache entries that no experiment file references.
    Gc(cli::gc::Args),
    /// Analyze recorded learning dynamics: per-run table and pooled R^2 of test accuracy on PM.
    AnalyzeDynamics(cli::analyze_dynamics::Args),
    /// Score target perplexities of a dataset under a model; CSV to stdout.
    Score(cli::score::Args),
    /// Sample completions for a dataset's prompts; JSONL to stdout.
    Sample(cli::sample::Args),
    /// Grade a sample against a reference answer.
    Grade(cli::grade::Args),
    /// Write synthetic GSM8k-style problems, or variants of generated ones, as JSONL.
    Synth(cli::synth::Args),
    /// Time training, scoring and sampling on a model; JSON to stdout.
    Bench(cli::bench::Args),
}

/// Re-executes premem with `OMP_WAIT_POLICY=PASSIVE` unless the variable is
/// already set. libtorch's OpenMP runtime (libgomp) reads it once when it
/// loads, before `main`, and its default lets idle threads spin. When other
/// processes compete for the cores, spinning threads slowed sampling about
/// 5x: `premem sample --limit 4 --k 2 --max-new-tokens 24` on an epoch
/// checkpoint of experiments/smoke.toml took 58 s against 12 s on a loaded
/// 2-core x86_64 machine (2026-12-04). Set `OMP_WAIT_POLICY=ACTIVE` to keep
/// spinning on an idle machine.
fn reexec_with_passive_openmp() {
    use std::os::unix::process::CommandExt;

    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
    // exec returns only on failure; run on with the default policy.
    eprintln!("warning: could not re-execute with OMP_WAIT_POLICY=PASSIVE: {error}");
}

fn main() {
    reexec_with_passive_openmp();
    let args = Cli::parse();
    cli::init_logging(args.quiet, args.verbose);

    let result = match args.command {
        Command::Score(a) => cli::score::run(a),
        Command::Sample(a) => cli::sample::run(a),
        Command::Grade(a) => cli::grade::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Synth(a) => cli::synth::run(a),
        Command::AnalyzeDynamics(a) => cli::analyze_dynamics::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Report(a) => cli::report::run(a, args.quiet),
        Command::Status(a) => cli::status::run(a),
        Command::Explain(a) => cli::explain::run(a),
        Command::Gc(a) => cli::gc::run(a),
    };

    if let Err(error) = result {
        eprintln!("error: {}", error_chain(&error));
        std::process::exit(cli::exit_code(&error));
    }
}

/// Joins an error and its causes with ": ", skipping a cause whose text the
/// message already contains: several library errors repeat their source in
/// their own message.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
