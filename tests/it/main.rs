//! premem's integration tests, one binary with a module per area.

mod helpers;
mod sample;
mod tiny_model;
mod train;
