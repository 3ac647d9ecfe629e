//! Pre-memorization analysis of learning dynamics.

pub mod dynamics;
