//! premem's integration tests, one binary with a module per area.

mod analysis;
mod helpers;
mod report;
