//! The pure analysis core: HU images + geometry + phantom definition in, a result out.
//! No I/O, no async, no configuration lookups: loaders feed it, reporters read its values.
//!
//! Two stages, so that a 300-slice series never has to sit in memory at full resolution:
//! - [`plan`] works on the whole series at reduced resolution (the overview): body outline,
//!   phantom identification, coarse pose, and the choice of the slab of slices to measure;
//! - [`measure`] works on that slab at full resolution: pose refinement, insert localisation,
//!   ROI statistics, material assignment and the HU–RED curve.
//!
//! [`constancy::evaluate`] compares a measurement with a baseline.

mod assign;
mod body;
mod checks;
pub mod constancy;
mod core;
pub mod curve;
mod image;
mod measure;
mod plan;
mod rods;
mod template;
mod types;

pub use types::*;

use crate::phantom::PhantomDef;

/// Stage 1: identify the phantom, find the insert region and choose the slab, on the overview.
pub fn plan(
    overview: &HuStack,
    phantoms: &[PhantomDef],
    opts: &AnalysisOptions,
) -> Result<Plan, AnalysisError> {
    plan::plan(overview, phantoms, opts)
}

/// Stage 2: measure the inserts on the slab chosen by [`plan`], at full resolution.
pub fn measure(
    plan: &Plan,
    phantom: &PhantomDef,
    slab: &HuStack,
    opts: &AnalysisOptions,
) -> Result<Measurement, AnalysisError> {
    measure::measure(plan, phantom, slab, opts)
}

/// Pixel geometry of a stack, mapping its pixels to the full-resolution image frame (mm).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geo {
    /// `[dy, dx]`, mm.
    pub px: [f64; 2],
    /// `[y, x]` of pixel (0, 0), mm.
    pub origin: [f64; 2],
}

impl Geo {
    pub fn of(s: &HuStack) -> Geo {
        Geo {
            px: s.pixel_mm,
            origin: s.origin_mm,
        }
    }
    pub fn x_of(&self, col: f64) -> f64 {
        self.origin[1] + col * self.px[1]
    }
    pub fn y_of(&self, row: f64) -> f64 {
        self.origin[0] + row * self.px[0]
    }
    pub fn col_of(&self, x: f64) -> f64 {
        (x - self.origin[1]) / self.px[1]
    }
    pub fn row_of(&self, y: f64) -> f64 {
        (y - self.origin[0]) / self.px[0]
    }
}

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
