//! The pure analysis core: HU images + geometry + phantom definition in, a result out.
//! No I/O, no async, no configuration lookups: loaders feed it, reporters read its values.
//!
//! Two stages, so that a 300-slice series never has to sit in memory at full resolution:
//! - [`plan`] works on the whole series at reduced resolution (the overview): body outline,
//!   phantom identification, coarse pose, and the choice of the slab of slices to measure;
//! - [`measure`] works on that slab at full resolution: pose refinement, insert localisation,
//!   ROI statistics, material assignment and the HU–RED curve.
//! [`constancy::evaluate`] compares a measurement with a baseline.

pub mod constancy;
pub mod curve;
mod types;

pub use types::*;

use crate::phantom::PhantomDef;

/// Why an analysis could not produce a result. Each message says what was seen and what the
/// user can check.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalysisError {
    #[error("no phantom recognised: {0}")]
    NoPhantom(String),
    #[error("phantom '{id}' not usable in this series: {why}")]
    NotUsable { id: String, why: String },
    #[error("the series is too small to analyse: {0}")]
    TooSmall(String),
    #[error("phantom definition problem: {0}")]
    Definition(String),
}
