//! premem's integration tests, one binary with a module per area.

mod helpers;
mod cache;
mod experiment;
mod pipeline;
