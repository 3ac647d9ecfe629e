//! premem fine-tunes a causal language model on reasoning data, samples and
//! scores it at every checkpoint in cached stages, and reports
//! pre-memorization train accuracy: the accuracy a model reaches on a
//! training example before it memorizes the example's reference solution.

pub mod analysis;
pub mod cache;
pub mod cli;
pub mod data;
pub mod experiment;
pub mod grade;
pub mod model;
pub mod report;
pub mod robustness;
pub mod curation;
pub mod curation_stats;
pub mod synth;
pub mod stages;
