//! Subcommands of the `premem` binary, one module each. Each module has an
//! `Args` struct (clap) and a `run` function returning anyhow's Result.

pub mod bench;
pub mod analyze_dynamics;
pub mod check;
pub mod dataset_args;
pub mod explain;
pub mod gc;
pub mod grade;
pub mod report;
pub mod sample;
pub mod score;
pub mod synth;
pub mod status;

/// Error marker for invalid user input (bad file, bad value): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Exit code for an error chain: 2 when any cause is invalid input, else 1.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    let invalid = error.chain().any(|cause| {
        cause.is::<InvalidInput>()
            || cause.is::<crate::data::DataError>()
            || cause.is::<crate::experiment::ExperimentError>()
            || cause.is::<crate::experiment::InputError>()
    });
    if invalid {
        2
    } else {
        1
    }
}

/// Sets up `tracing` on stderr; `RUST_LOG` overrides the level.
pub fn init_logging(quiet: bool, verbose: u8) {
    let level = if quiet {
        "warn"
    } else {
        match verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
