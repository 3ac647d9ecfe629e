//! premem's integration tests, one binary with a module per area.

mod helpers;
mod curation;
mod robustness;
mod synth;
