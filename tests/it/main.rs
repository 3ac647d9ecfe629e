//! premem's integration tests, one binary with a module per area.

mod analysis;
mod cache;
mod curation;
mod curation_stages;
mod end_to_end;
mod experiment;
mod grade;
mod grade_cases;
mod helpers;
mod model;
mod pipeline;
mod report;
mod robustness;
mod robustness_plan;
mod sample;
mod synth;
mod synthetic_data;
mod tiny_model;
mod train;
