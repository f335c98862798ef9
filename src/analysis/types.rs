//! The values that flow into and out of the pure analysis core. Everything here is plain data
//! (serde-serialisable) that the loaders fill and the reporters, storage and mail read.

use ndarray::Array3;
use serde::{Deserialize, Serialize};

/// A stack of axial HU images with their geometry: either the whole series at reduced resolution
/// (the overview the planner works on) or a few slices at full resolution (the slab the
/// measurement works on).
#[derive(Debug, Clone)]
pub struct HuStack {
    /// HU values, `[slice, row, col]`. NaN marks "no data": pixel padding, outside the
    /// reconstruction circle.
    pub hu: Array3<f32>,
    /// `[row spacing (y), column spacing (x)]` of this stack's pixels, mm.
    pub pixel_mm: [f64; 2],
    /// Position of this stack's pixel (0, 0) centre in the full-resolution image frame, mm:
    /// `[y, x]`, where the full-resolution pixel (0, 0) centre is at (0, 0). For a stack
    /// downsampled by `f`, this is `(f - 1) / 2` full-resolution pixels.
    pub origin_mm: [f64; 2],
    /// Position of each slice along the slice normal, mm, strictly increasing.
    pub z_mm: Vec<f64>,
    /// Index of each slice in the full sorted series.
    pub series_index: Vec<usize>,
    /// Nominal reconstructed slice thickness, mm.
    pub thickness_mm: f64,
    /// Downsampling factor relative to the full-resolution images (1 = full resolution).
    pub factor: usize,
}

impl HuStack {
    pub fn n_slices(&self) -> usize {
        self.hu.shape()[0]
    }
    pub fn rows(&self) -> usize {
        self.hu.shape()[1]
    }
    pub fn cols(&self) -> usize {
        self.hu.shape()[2]
    }
    /// Column (x) of a point given in mm in the full-resolution frame, in this stack's pixels.
    pub fn col_of(&self, x_mm: f64) -> f64 {
        (x_mm - self.origin_mm[1]) / self.pixel_mm[1]
    }
    /// Row (y) of a point given in mm in the full-resolution frame, in this stack's pixels.
    pub fn row_of(&self, y_mm: f64) -> f64 {
        (y_mm - self.origin_mm[0]) / self.pixel_mm[0]
    }
    pub fn x_of(&self, col: f64) -> f64 {
        self.origin_mm[1] + col * self.pixel_mm[1]
    }
    pub fn y_of(&self, row: f64) -> f64 {
        self.origin_mm[0] + row * self.pixel_mm[0]
    }

    /// A stack of the one slice `k` (clamped to the last one; an empty stack stays empty).
    pub fn single_slice(&self, k: usize) -> HuStack {
        let n = self.n_slices();
        if n == 0 {
            return self.clone();
        }
        let k = k.min(n - 1);
        HuStack {
            hu: self.hu.slice(ndarray::s![k..k + 1, .., ..]).to_owned(),
            pixel_mm: self.pixel_mm,
            origin_mm: self.origin_mm,
            z_mm: self.z_mm.get(k).map(|z| vec![*z]).unwrap_or_default(),
            series_index: self
                .series_index
                .get(k)
                .map(|i| vec![*i])
                .unwrap_or_default(),
            thickness_mm: self.thickness_mm,
            factor: self.factor,
        }
    }
}

/// How the phantom was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detection {
    Auto,
    Forced,
}

/// Options of one analysis (no file paths, no config lookups: the caller resolves those).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalysisOptions {
    /// `None` = identify among the given phantoms; `Some(id)` = use that one.
    pub phantom: Option<String>,
    /// Thickness of the slab of slices averaged per ROI, mm (default 5).
    pub slab_mm: f64,
    /// Tube voltage of the scan (DICOM KVP), when known: which manufacturer windows apply and
    /// how wide the plausibility bands of bone-like materials are (see
    /// [`crate::phantom::Material::plausible_band`]).
    #[serde(default)]
    pub kvp: Option<f64>,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            phantom: None,
            slab_mm: 5.0,
            kvp: None,
        }
    }
}

/// Where the phantom lies in the image: centre in the full-resolution frame (mm, see
/// [`HuStack::origin_mm`]) and in-plane rotation (degrees, image view, clockwise positive: a
/// hole at phantom angle θ is seen at θ + rotation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub centre_x_mm: f64,
    pub centre_y_mm: f64,
    pub rotation_deg: f64,
}

/// One candidate considered by the identification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    /// 0..1, how well the image matches this phantom.
    pub score: f64,
    /// Why it scored as it did, for the log and the report.
    pub reason: String,
}

/// What the planner decided from the overview: which phantom, where, and which slices to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub phantom_id: String,
    pub detection: Detection,
    pub confidence: f64,
    pub candidates: Vec<Candidate>,
    /// Coarse pose (refined by the measurement).
    pub pose: Pose,
    /// Series index of the slice at the centre of the insert region.
    pub centre_index: usize,
    /// Series indices (sorted) of the slices to load at full resolution and average.
    pub slab_indices: Vec<usize>,
    /// z range (mm) in which the inserts were seen.
    pub insert_z_range_mm: (f64, f64),
    pub warnings: Vec<String>,
}

/// One circular ROI, averaged over the slab.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoiMeasurement {
    /// Template hole id, or `rod_N` for detected rods.
    pub hole: String,
    /// "inner", "outer", "centre", ... (duplicate CIRS inserts are told apart by this).
    pub ring: Option<String>,
    pub insert: String,
    /// ROI centre in the full-resolution frame, mm, and in pixels (column x, row y).
    pub center_x_mm: f64,
    pub center_y_mm: f64,
    pub center_col_px: f64,
    pub center_row_px: f64,
    pub roi_radius_mm: f64,
    pub roi_radius_px: f64,
    /// Insert radius from the definition (template) or as detected (detection), mm.
    pub insert_radius_mm: f64,
    pub hu_mean: f64,
    pub hu_std: f64,
    pub hu_median: f64,
    pub n_pixels: usize,
    pub n_slices: usize,
    /// Distance the centre moved from the template position when refined by local contrast, mm.
    pub refine_shift_mm: f64,
    /// |insert − surrounding body| in HU.
    pub contrast_hu: f64,
    /// What the ROI was fitted to inside the hole (see `analysis::core`).
    #[serde(default)]
    pub core: CoreKind,
    /// Inner radius of the ROI, mm: 0 for a disc, the void's radius plus the edge margin for an
    /// annulus around a central void.
    #[serde(default)]
    pub roi_inner_radius_mm: f64,
    /// Radius of the structure found inside the hole (the rod, the vial's content or the central
    /// void), mm; `None` when the insert fills its hole.
    #[serde(default)]
    pub feature_radius_mm: Option<f64>,
    /// Pixels (summed over the slab slices) inside the ROI that were excluded as outliers (a void,
    /// a bubble, a streak), never averaged in.
    #[serde(default)]
    pub n_excluded: usize,
    /// How a rod of a detection phantom was found (see `analysis::rods`): by its contrast to the
    /// body, or at a site of the certain rod pattern the other rods form. `None` for template
    /// holes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_by: Option<FoundBy>,
}

/// How a rod of a detection phantom was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// It differs from the body beyond the noise (blind detection, or the matched filter at a
    /// site the pattern predicts).
    Contrast,
    /// No contrast to the body: measured at the site of a certain pattern (geometry, not image).
    Pattern,
}

/// What an ROI was fitted to inside its hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreKind {
    /// The insert fills its hole: a disc inside the hole edge.
    #[default]
    Disc,
    /// A rod (or a vial's content) narrower than its hole: a disc inside the rod's own edge.
    Rod,
    /// An insert with a central void: an annulus between the void and the insert edge.
    Annulus,
}

/// Whether a material of the definition was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialStatus {
    /// At least one ROI measured it.
    #[default]
    Measured,
    /// Holes hold it, but none has a homogeneous core large enough to measure (a rod too thin, a
    /// hole full of voids): refused, with the reason; never reported from a mixed ROI.
    Refused,
    /// No hole holds it (its holes read something else, or were not found).
    Missing,
}

/// One material: the mean over its ROIs (both copies for CIRS duplicates). A material that could
/// not be measured is still listed (status `refused` or `missing`, values NaN = JSON null), so
/// that a gap is never silent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MaterialResult {
    pub insert: String,
    pub red: Option<f64>,
    pub hu_mean: f64,
    pub hu_std: f64,
    pub hu_median: f64,
    pub n_rois: usize,
    pub n_pixels: usize,
    pub hu_expected: f64,
    pub hu_window: Option<[f64; 2]>,
    /// Against the manufacturer's absolute window, where the definition has one **for the scan's
    /// kVp** (`None` otherwise: the window is then information only, see `checks`).
    pub within_window: Option<bool>,
    pub rois: Vec<RoiMeasurement>,
    #[serde(default)]
    pub status: MaterialStatus,
    /// Why the material is refused or missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An optional material of the definition (e.g. the Catphan 600's water vial, which may be
    /// empty): missing it fails nothing.
    #[serde(default)]
    pub optional: bool,
    /// The kVp the manufacturer's window is given at.
    #[serde(default)]
    pub window_kvp: Option<f64>,
    /// The plausibility band at the scan's kVp: a material reading outside it fails.
    #[serde(default)]
    pub hu_band: Option<[f64; 2]>,
    /// Within the plausibility band (`None` when not measured).
    #[serde(default)]
    pub plausible: Option<bool>,
    /// Largest difference between the copies of this material (CIRS inner/outer), HU.
    #[serde(default)]
    pub copies_spread_hu: Option<f64>,
    /// The copies agree within the material's tolerance (`None` with one copy).
    #[serde(default)]
    pub copies_consistent: Option<bool>,
    /// Every absolute check of this material passed (measured, plausible, window where it
    /// applies, copies consistent).
    #[serde(default = "yes")]
    pub check_pass: bool,
    /// What the absolute checks found, one line each, failures first (e.g. "outside the
    /// plausibility band -150 … 150 HU", "window 344 … 387 HU given at 120 kV: information only
    /// at 100 kV").
    #[serde(default)]
    pub check_notes: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A hole whose content matches no material of the definition (an empty hole, a site's own
/// insert): reported, never pooled into a material.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnassignedHole {
    pub hole: String,
    pub ring: Option<String>,
    pub center_x_mm: f64,
    pub center_y_mm: f64,
    pub hu_mean: f64,
    pub hu_std: f64,
    pub n_pixels: usize,
    /// The layout's material for this hole, if the definition has one.
    pub layout_material: Option<String>,
    pub note: String,
}

/// The absolute checks of a measurement: the ones that hold at the scan's kVp without any
/// baseline. They decide the verdict of a first scan and add to constancy otherwise.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AbsoluteChecks {
    /// No absolute check failed.
    pub pass: bool,
    /// RED does not decrease as HU increases along the measured curve.
    pub curve_monotonic: bool,
    /// What was checked, in words (for the report of a first scan).
    pub checked: Vec<String>,
    /// Failed checks, one line each.
    pub failures: Vec<String>,
    /// Information that fails nothing (windows at another kVp, unassigned holes, optional
    /// materials not present).
    pub info: Vec<String>,
}

/// How materials were given to holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMethod {
    /// The definition's layout, confirmed by the measured HUs.
    Layout,
    /// The measured HUs contradicted the layout: optimal assignment by expected HU.
    Reassigned,
    /// Detected rods assigned by expected HU (no layout exists).
    Detection,
    /// A template phantom without a layout (plugs placed by the user, e.g. Gammex): every hole
    /// assigned by HU within the materials' plausibility bands.
    ByHu,
}

/// One point of the HU → RED table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub insert: String,
    pub hu: f64,
    pub red: f64,
}

/// The HU → RED calibration: points sorted by HU, piecewise-linear between them and clamped to
/// the end values outside (what planning systems do).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Curve {
    pub points: Vec<CurvePoint>,
}

/// Which slices the measurement averaged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlicesUsed {
    pub centre_index: usize,
    pub indices: Vec<usize>,
    pub z_mm: Vec<f64>,
    pub slab_mm: f64,
    pub thickness_mm: f64,
}

/// The result of the pure analysis (no constancy: that needs a baseline, see `constancy`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    pub phantom_id: String,
    pub phantom_name: String,
    pub detection: Detection,
    pub confidence: f64,
    pub candidates: Vec<Candidate>,
    pub pose: Pose,
    pub slices: SlicesUsed,
    pub assignment: AssignmentMethod,
    pub inserts: Vec<MaterialResult>,
    pub curve: Curve,
    /// Every absolute check passed (= `checks.pass`).
    pub absolute_pass: bool,
    pub warnings: Vec<String>,
    /// The family the phantom belongs to (e.g. `catphan_ctp404` for every Catphan variant).
    #[serde(default)]
    pub family: Option<String>,
    /// The scan's kVp the checks were judged at.
    #[serde(default)]
    pub kvp: Option<f64>,
    /// Holes whose content fits no material of the definition.
    #[serde(default)]
    pub unassigned: Vec<UnassignedHole>,
    #[serde(default)]
    pub checks: AbsoluteChecks,
}

/// A baseline: material → mean HU (and RED, when the baseline file has it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// Where it came from (file path, run id), for the report.
    pub source: String,
    pub entries: Vec<BaselineEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub insert: String,
    /// `None` when the baseline file has the insert but no usable value (it then fails).
    pub hu_mean: Option<f64>,
    pub red: Option<f64>,
}

/// Constancy against a baseline (JSON keys are a contract: `tolerance_evaluation`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToleranceEvaluation {
    pub has_baseline: bool,
    pub pass: Option<bool>,
    pub pearson_r: Option<f64>,
    pub baseline_source: Option<String>,
    pub per_insert: Vec<InsertConstancy>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InsertConstancy {
    pub insert: String,
    pub baseline_hu: Option<f64>,
    pub hu_mean: Option<f64>,
    pub delta_hu: Option<f64>,
    pub tolerance_hu: f64,
    pub within_tolerance: bool,
    /// RED error (%) a planning system using the baseline curve makes on today's HU.
    pub delta_red_percent: Option<f64>,
    /// Why it failed when a value is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
