//! premem's integration tests, one binary with a module per area.

mod analysis;
mod curation;
mod grade;
mod grade_cases;
mod helpers;
mod model;
mod report;
mod robustness;
mod synth;
mod cache;
mod experiment;
mod pipeline;
