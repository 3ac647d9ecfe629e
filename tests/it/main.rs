//! premem's integration tests, one binary with a module per area.

mod curation;
mod grade;
mod grade_cases;
mod helpers;
mod model;
mod robustness;
mod synth;
mod analysis;
mod report;
mod sample;
mod tiny_model;
mod train;
