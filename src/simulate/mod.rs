//! Synthetic phantom CT series with known ground truth (`hu-red simulate`).
//!
//! [`render`] builds a series in memory (Part-10 file objects plus a [`Truth`]), [`write`] stores
//! it as `NNNN.dcm` + `truth.json` (or, with `part10: false`, as raw data sets `IMNNNN` without
//! preamble and file meta, as some scanners export), [`render_to_dir`] does both slice by slice
//! (bounded memory),
//! and [`render_stack`] gives the decoded HU volume directly (what a loader would produce from the
//! files) for tests of the analysis core without any DICOM I/O.
//!
//! Geometry (the project's conventions): image frame x = col·dx, y = row·dy, pixel (0, 0) centre at
//! (0, 0); phantom centre = image centre + shift; a phantom point (px, py) appears at
//! x = cx + px·cosθ − py·sinθ, y = cy + px·sinθ + py·cosθ. Slices are at patient z
//! z_i = (i − (n−1)/2)·spacing (the series is centred on z = 0) and the phantom's insert region
//! (CIRS slab, Catphan CTP404, Easy Cube body) is centred at z = `z_offset_mm`.
//!
//! Holes: the definition's layout (optionally shuffled by `rearrange`), then per-hole contents
//! ([`SimParams::holes`], [`HoleContent`]: another or a foreign material, a rod in a sleeve, an air
//! gap, a central void, a vial, an empty hole), drawn as concentric anti-aliased discs; the named
//! cases of issue 9 ([`SimCase`]) expand into such contents ([`case_holes`]). The truth gives each
//! hole's homogeneous core and whether its material is one of the definition's.
//!
//! Rendering: each distinct z segment (air, slab, Catphan module) is drawn once as an
//! anti-aliased ideal image (8×8 supersampling at edges) and blurred; each slice is the
//! thickness-weighted mixture of the segments its (rectangular) slice profile overlaps, plus
//! its own noise field, then quantised to the storage variant.

mod encode;
mod filter;
mod geometry;
mod holes;
mod scene;

pub use geometry::TruthFeature;
pub use geometry::{
    AIR_HU, COUCH_FOAM_HU, COUCH_FOAM_MM, COUCH_PLATE_HU, COUCH_PLATE_MM, COUCH_WIDTH_MM,
    CTP528_BAR_HU,
};
pub use holes::{
    case_holes, merge_holes, HoleContent, SimCase, BONE_ROD_RADIUS_MM, EMPTY_MATERIAL,
    SITE_ROD_1250_HU, VIAL_WALL_HU, VIAL_WALL_MM, WATER_VOID_CONTRAST_HU, WATER_VOID_RADIUS_MM,
};

use crate::analysis::{HuStack, Pose};
use crate::phantom::{Outline, PhantomDef};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How stored pixel values are represented (DICOM PixelRepresentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PixelRepresentation {
    /// 0: unsigned 16-bit.
    Unsigned,
    /// 1: two's complement 16-bit.
    Signed,
}

impl PixelRepresentation {
    /// The stored-value range of 16-bit pixels.
    pub fn range(self) -> (i32, i32) {
        match self {
            PixelRepresentation::Unsigned => (0, 65535),
            PixelRepresentation::Signed => (-32768, 32767),
        }
    }
}

/// The transfer syntax of the files (both uncompressed little endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    /// Explicit VR Little Endian (1.2.840.10008.1.2.1).
    Explicit,
    /// Implicit VR Little Endian (1.2.840.10008.1.2).
    Implicit,
}

impl Syntax {
    pub fn uid(self) -> &'static str {
        match self {
            Syntax::Explicit => "1.2.840.10008.1.2.1",
            Syntax::Implicit => "1.2.840.10008.1.2",
        }
    }
}

/// Every knob of the simulator. `Default` gives a plausible clinical-looking series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimParams {
    /// In-plane rotation of the phantom, degrees (clockwise as seen on screen).
    pub rotation_deg: f64,
    /// Phantom centre relative to the image centre, mm.
    pub shift_x_mm: f64,
    pub shift_y_mm: f64,
    /// Pixel size (square pixels), mm.
    pub pixel_mm: f64,
    /// Rows = columns.
    pub matrix: usize,
    pub slice_thickness_mm: f64,
    /// Distance between slice centres; `None` = the thickness (contiguous slices).
    pub slice_spacing_mm: Option<f64>,
    pub n_slices: usize,
    /// Patient z of the centre of the insert region (the series is centred on z = 0).
    pub z_offset_mm: f64,
    /// Per-pixel noise standard deviation, HU.
    pub noise_sigma_hu: f64,
    /// σ of the Gaussian kernel that filters white noise into correlated noise, mm (0 = white).
    /// The per-pixel std stays `noise_sigma_hu`.
    pub noise_corr_mm: f64,
    /// σ of the Gaussian blur of the ideal image (before noise), mm.
    pub blur_mm: f64,
    /// A couch under the phantom (carbon-fibre plates around foam), touching its lowest point.
    pub couch: bool,
    /// Width of an air ring around each insert, mm.
    pub air_gap_mm: f64,
    /// Outside the inscribed reconstruction circle, store PixelPaddingValue.
    pub recon_circle: bool,
    /// The HU the padding value should stand for (if the storage cannot represent it, the lowest
    /// storable value is used; the truth says which).
    pub padding_hu: f64,
    /// Catphan only: the other modules (CTP528, CTP515, CTP486) along z around CTP404.
    pub catphan_modules: bool,
    /// Thickness of the insert region along z (CIRS slab, Easy Cube); `None` = the definition's
    /// `extent_z_mm` (Easy Cube: its side).
    pub slab_mm: Option<f64>,
    /// Body HU; `None` = the definition's `body_hu`.
    pub body_hu: Option<f64>,
    /// Per-material HU shift added to `hu_expected`.
    pub hu_offsets: BTreeMap<String, f64>,
    /// Shuffle the materials among the holes with this seed.
    pub rearrange: Option<u64>,
    /// What particular holes hold (after `rearrange`), keyed by hole id: another or a foreign
    /// material, a rod in a sleeve, an air gap, a central void, a vial, an empty hole. See
    /// [`HoleContent`] and [`case_holes`] for the named cases.
    pub holes: BTreeMap<String, HoleContent>,
    /// The phantom's body only, without any insert.
    pub uniform: bool,
    pub pixel_representation: PixelRepresentation,
    pub rescale_intercept: f64,
    pub rescale_slope: f64,
    /// Slice i uses intercept `rescale_intercept − 1000·(i mod 3)`.
    pub vary_intercept: bool,
    pub transfer_syntax: Syntax,
    /// Write DICOM Part-10 files (`NNNN.dcm`); `false`: raw data sets in `transfer_syntax`,
    /// without preamble and file meta group, named `IMNNNN` (no extension).
    pub part10: bool,
    /// "CT" (CT Image Storage), "MR" (MR Image Storage) or anything else (Secondary Capture).
    pub modality: String,
    /// Seed of everything random: noise, UIDs, rearrangement default.
    pub seed: u64,
    pub station_name: String,
    pub device_serial_number: String,
    pub manufacturer: String,
    pub manufacturer_model_name: String,
    pub kvp: f64,
    pub kernel: String,
    /// `None` = "hu-red simulated <phantom id>".
    pub series_description: Option<String>,
    pub protocol_name: String,
    /// YYYYMMDD.
    pub study_date: String,
    /// HHMMSS.
    pub study_time: String,
    pub patient_name: String,
    pub patient_id: String,
    pub series_number: u32,
    /// Explicit UIDs (otherwise `2.25.<u128>` derived from the seed: the study and frame of
    /// reference from the seed alone, the series and instances from the seed and all parameters).
    pub series_uid: Option<String>,
    pub study_uid: Option<String>,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            rotation_deg: 0.0,
            shift_x_mm: 0.0,
            shift_y_mm: 0.0,
            pixel_mm: 0.8,
            matrix: 512,
            slice_thickness_mm: 2.0,
            slice_spacing_mm: None,
            n_slices: 40,
            z_offset_mm: 0.0,
            noise_sigma_hu: 10.0,
            noise_corr_mm: 0.0,
            blur_mm: 0.5,
            couch: false,
            air_gap_mm: 0.0,
            recon_circle: false,
            padding_hu: -3024.0,
            catphan_modules: true,
            slab_mm: None,
            body_hu: None,
            hu_offsets: BTreeMap::new(),
            rearrange: None,
            holes: BTreeMap::new(),
            uniform: false,
            pixel_representation: PixelRepresentation::Signed,
            rescale_intercept: -1024.0,
            rescale_slope: 1.0,
            vary_intercept: false,
            transfer_syntax: Syntax::Explicit,
            part10: true,
            modality: "CT".into(),
            seed: 1,
            station_name: "HURED-SIM".into(),
            device_serial_number: "SIM0001".into(),
            manufacturer: "hu-red".into(),
            manufacturer_model_name: "hu-red simulate".into(),
            kvp: 120.0,
            kernel: "STANDARD".into(),
            series_description: None,
            protocol_name: "QA HU-RED".into(),
            study_date: "20250101".into(),
            study_time: "090000".into(),
            patient_name: "QA^PHANTOM".into(),
            patient_id: "HURED-QA".into(),
            series_number: 1,
            series_uid: None,
            study_uid: None,
        }
    }
}

impl SimParams {
    pub fn spacing_mm(&self) -> f64 {
        self.slice_spacing_mm.unwrap_or(self.slice_thickness_mm)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulate: invalid {name}: {what}")]
    Param { name: &'static str, what: String },
    #[error("simulate: phantom '{phantom}': {what}")]
    Phantom { phantom: String, what: String },
    #[error("simulate: cannot build the DICOM object of slice {index}: {what}")]
    Dicom { index: usize, what: String },
    #[error("simulate: cannot write {path}: {what} (check that the output folder is writable)")]
    Write { path: PathBuf, what: String },
}

/// One insert as rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthHole {
    /// Template hole id from the definition, or `rod_N` for invented rods.
    pub hole: String,
    pub ring: Option<String>,
    pub material: String,
    /// Centre in the image frame, mm.
    pub x_mm: f64,
    pub y_mm: f64,
    /// Centre in phantom coordinates (rotation 0), mm.
    pub phantom_x_mm: f64,
    pub phantom_y_mm: f64,
    pub radius_mm: f64,
    /// True HU of the material in this hole (`hu_expected` + offset, or the hole's own `hu`;
    /// −1000 for an empty hole).
    pub hu: f64,
    /// Radius of the homogeneous region of the material, centred on the hole: the rod's radius,
    /// else the vial's inside radius, else the hole's radius. A central void (if any) is inside it.
    pub core_radius_mm: f64,
    /// A rod narrower than the hole (`core_radius_mm` is then this).
    #[serde(default)]
    pub rod_radius_mm: Option<f64>,
    /// HU of the sleeve around the rod, when there is room for one.
    #[serde(default)]
    pub sleeve_hu: Option<f64>,
    /// Air ring around the rod, mm.
    #[serde(default)]
    pub rod_gap_mm: Option<f64>,
    /// Central air void (−1000 HU) inside the material, mm.
    #[serde(default)]
    pub void_radius_mm: Option<f64>,
    /// Vial wall at the hole's edge: thickness (mm) and HU.
    #[serde(default)]
    pub vial_wall_mm: Option<f64>,
    #[serde(default)]
    pub vial_wall_hu: Option<f64>,
    /// The hole holds air (`material` is "empty").
    #[serde(default)]
    pub empty: bool,
    /// The material is one of the definition's. `false` for a foreign material or an empty hole:
    /// the analysis must leave the hole unassigned and never pool it into a material.
    #[serde(default = "yes")]
    pub in_definition: bool,
    /// What the layout puts in this hole before `rearrange` (Easy Cube and templates without a
    /// layout, e.g. Gammex: the simulator's invented arrangement); `None` for a hole the layout
    /// leaves out.
    #[serde(default)]
    pub layout_material: Option<String>,
}

/// A material of the definition present in at least one hole (holes with `in_definition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthMaterial {
    pub name: String,
    /// True HU: the mean over its holes (they differ only when a hole sets its own `hu`).
    pub hu: f64,
    pub hu_expected: f64,
    pub hu_offset: f64,
    pub red: Option<f64>,
    pub n_holes: usize,
    /// Ids of its holes.
    #[serde(default)]
    pub holes: Vec<String>,
    /// Largest minus smallest true HU of its holes (0 unless holes set their own `hu`).
    #[serde(default)]
    pub copies_spread_hu: f64,
}

/// A part of the phantom along z.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthModule {
    /// "slab" (CIRS, Easy Cube) or the Catphan module ("CTP404", "CTP528", "CTP515", "CTP486").
    pub name: String,
    pub z_range_mm: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthSlice {
    /// Position in the series sorted by z (= InstanceNumber − 1).
    pub index: usize,
    pub instance_number: u32,
    pub file: String,
    pub sop_instance_uid: String,
    /// Slice centre along the normal (ImagePositionPatient z), mm.
    pub z_mm: f64,
    /// Fraction of the slice thickness inside the insert region (1 = fully in it).
    pub insert_fraction: f64,
    /// The part that covers most of the slice ("air" outside the phantom).
    pub module: String,
    pub rescale_intercept: f64,
    pub padding_value: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthCouch {
    /// y of the couch top (the phantom's lowest point), image frame, mm.
    pub top_y_mm: f64,
    pub centre_x_mm: f64,
    pub width_mm: f64,
    pub plate_mm: f64,
    pub foam_mm: f64,
    pub plate_hu: f64,
    pub foam_hu: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthCircle {
    pub centre_x_mm: f64,
    pub centre_y_mm: f64,
    pub radius_mm: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthStorage {
    pub pixel_representation: PixelRepresentation,
    pub bits_stored: u16,
    /// Intercept of slice 0 (see `slices[].rescale_intercept` when it varies).
    pub rescale_intercept: f64,
    pub rescale_slope: f64,
    pub vary_intercept: bool,
    pub transfer_syntax: Syntax,
    pub transfer_syntax_uid: String,
    /// The files are DICOM Part-10 files; `false`: raw data sets (no preamble, no file meta).
    #[serde(default = "yes")]
    pub part10: bool,
    /// HU the padding value stands for (slice 0), when the reconstruction circle is on.
    pub padding_hu: Option<f64>,
    /// HU range the storage can represent (slice 0); values beyond are clamped.
    pub hu_min: f64,
    pub hu_max: f64,
}

/// The ground truth of a simulated series (written as `truth.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub generator: String,
    pub phantom_id: String,
    pub phantom_name: String,
    pub uniform: bool,
    pub rearranged: bool,
    pub seed: u64,
    /// Phantom centre (image frame, mm) and rotation.
    pub pose: Pose,
    pub outline: Outline,
    pub body_hu: f64,
    pub holes: Vec<TruthHole>,
    /// Materials of the definition present in the holes.
    pub materials: Vec<TruthMaterial>,
    /// The holes whose content is not a material of the definition (foreign materials, empty
    /// holes): also in `holes`; the analysis must report them unassigned.
    #[serde(default)]
    pub foreign: Vec<TruthHole>,
    /// Other visible structures (e.g. Catphan geometry pins), image frame.
    pub features: Vec<TruthFeature>,
    pub noise_sigma_hu: f64,
    pub noise_corr_mm: f64,
    /// Pixels per independent noise sample: the std of a large ROI's mean is
    /// σ·sqrt(noise_n_corr / N) (1 for white noise).
    pub noise_n_corr: f64,
    pub blur_mm: f64,
    pub air_gap_mm: f64,
    /// z range of the insert region (CIRS slab, Catphan CTP404, Easy Cube body), mm.
    pub insert_z_range_mm: [f64; 2],
    pub modules: Vec<TruthModule>,
    pub slices: Vec<TruthSlice>,
    pub pixel_mm: f64,
    pub matrix: usize,
    pub rows: usize,
    pub cols: usize,
    /// Image centre in the image frame, mm.
    pub image_centre_mm: [f64; 2],
    /// ImagePositionPatient x, y of pixel (0, 0): patient = image frame + this.
    pub patient_origin_mm: [f64; 2],
    pub slice_thickness_mm: f64,
    pub slice_spacing_mm: f64,
    pub n_slices: usize,
    pub couch: Option<TruthCouch>,
    pub recon_circle: Option<TruthCircle>,
    pub storage: TruthStorage,
    pub modality: String,
    pub sop_class_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub frame_of_reference_uid: String,
    pub params: SimParams,
}

impl Truth {
    pub fn hole(&self, id: &str) -> Option<&TruthHole> {
        self.holes.iter().find(|h| h.hole == id)
    }
    pub fn material(&self, name: &str) -> Option<&TruthMaterial> {
        self.materials.iter().find(|m| m.name == name)
    }
    /// The holes of one material of the definition.
    pub fn holes_of<'a>(&'a self, material: &'a str) -> impl Iterator<Item = &'a TruthHole> + 'a {
        self.holes
            .iter()
            .filter(move |h| h.in_definition && h.material == material)
    }
}

/// A rendered series: Part-10 objects (file meta included) in z order, and the truth.
#[derive(Debug, Clone)]
pub struct SimSeries {
    pub objects: Vec<DefaultDicomObject>,
    pub truth: Truth,
}

/// SplitMix64 of `a` combined with `b`: the seed derivation of every random stream.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// `2.25.<u128>` from a seed.
fn uid_from(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: u128 = rng.random();
    if v == 0 {
        v = 1;
    }
    format!("2.25.{v}")
}

/// A syntactically valid DICOM UID: ≤ 64 chars, digits and dots, no empty component, no leading
/// zero in a multi-digit component.
pub fn is_valid_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && !(c.len() > 1 && c.starts_with('0'))
        })
}

const SEED_STUDY: u64 = 0x5354_5544;
const SEED_FOR: u64 = 0x464f_5231;
const SEED_SERIES: u64 = 0x5345_5249;
const SEED_SOP: u64 = 0x534f_5031;
const SEED_NOISE: u64 = 0x4e4f_4953;

fn param_err(name: &'static str, what: impl Into<String>) -> SimError {
    SimError::Param {
        name,
        what: what.into(),
    }
}

fn check_range(name: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), SimError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(param_err(name, format!("{v} is outside [{lo}, {hi}]")))
    }
}

fn check_text(name: &'static str, v: &str, max: usize) -> Result<(), SimError> {
    if v.len() > max {
        return Err(param_err(
            name,
            format!("'{v}' is longer than {max} characters"),
        ));
    }
    if !v.is_ascii() || v.contains('\\') || v.chars().any(|c| c.is_control()) {
        return Err(param_err(
            name,
            format!("'{v}' must be printable ASCII without a backslash"),
        ));
    }
    Ok(())
}

fn validate(p: &SimParams, def: &PhantomDef) -> Result<(), SimError> {
    check_range("rotation_deg", p.rotation_deg, -3600.0, 3600.0)?;
    check_range("shift_x_mm", p.shift_x_mm, -1000.0, 1000.0)?;
    check_range("shift_y_mm", p.shift_y_mm, -1000.0, 1000.0)?;
    check_range("pixel_mm", p.pixel_mm, 0.05, 5.0)?;
    if !(16..=2048).contains(&p.matrix) {
        return Err(param_err(
            "matrix",
            format!("{} is outside [16, 2048]", p.matrix),
        ));
    }
    check_range("slice_thickness_mm", p.slice_thickness_mm, 0.05, 50.0)?;
    check_range("slice_spacing_mm", p.spacing_mm(), 0.05, 100.0)?;
    if !(1..=5000).contains(&p.n_slices) {
        return Err(param_err(
            "n_slices",
            format!("{} is outside [1, 5000]", p.n_slices),
        ));
    }
    check_range("z_offset_mm", p.z_offset_mm, -10000.0, 10000.0)?;
    check_range("noise_sigma_hu", p.noise_sigma_hu, 0.0, 1000.0)?;
    check_range("noise_corr_mm", p.noise_corr_mm, 0.0, 20.0)?;
    check_range("blur_mm", p.blur_mm, 0.0, 20.0)?;
    check_range("air_gap_mm", p.air_gap_mm, 0.0, 10.0)?;
    check_range("padding_hu", p.padding_hu, -100000.0, 100000.0)?;
    if let Some(s) = p.slab_mm {
        check_range("slab_mm", s, 0.1, 1000.0)?;
    }
    if let Some(b) = p.body_hu {
        check_range("body_hu", b, -1000.0, 4000.0)?;
    }
    check_range(
        "rescale_intercept",
        p.rescale_intercept,
        -100000.0,
        100000.0,
    )?;
    check_range("rescale_slope", p.rescale_slope, 1e-4, 1000.0)?;
    check_range("kvp", p.kvp, 1.0, 1000.0)?;
    for (name, off) in &p.hu_offsets {
        if def.material(name).is_none() {
            let known: Vec<&str> = def.materials.iter().map(|m| m.name.as_str()).collect();
            return Err(param_err(
                "hu_offsets",
                format!(
                    "'{name}' is not a material of {} (known: {})",
                    def.id,
                    known.join(", ")
                ),
            ));
        }
        check_range("hu_offsets", *off, -5000.0, 5000.0)?;
    }
    if p.modality.is_empty()
        || p.modality.len() > 16
        || !p
            .modality
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(param_err(
            "modality",
            format!(
                "'{}' is not a DICOM modality code (e.g. CT, MR)",
                p.modality
            ),
        ));
    }
    check_text("station_name", &p.station_name, 16)?;
    check_text("kernel", &p.kernel, 16)?;
    check_text("device_serial_number", &p.device_serial_number, 64)?;
    check_text("manufacturer", &p.manufacturer, 64)?;
    check_text("manufacturer_model_name", &p.manufacturer_model_name, 64)?;
    check_text("protocol_name", &p.protocol_name, 64)?;
    check_text("patient_id", &p.patient_id, 64)?;
    check_text("patient_name", &p.patient_name, 64)?;
    if let Some(d) = &p.series_description {
        check_text("series_description", d, 64)?;
    }
    if !(p.study_date.len() == 8 && p.study_date.bytes().all(|b| b.is_ascii_digit())) {
        return Err(param_err(
            "study_date",
            format!("'{}' is not YYYYMMDD", p.study_date),
        ));
    }
    if !(p.study_time.len() >= 2
        && p.study_time.len() <= 13
        && p.study_time
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.'))
    {
        return Err(param_err(
            "study_time",
            format!("'{}' is not HHMMSS", p.study_time),
        ));
    }
    for (name, uid) in [("series_uid", &p.series_uid), ("study_uid", &p.study_uid)] {
        if let Some(u) = uid {
            if !is_valid_uid(u) {
                return Err(param_err(
                    name,
                    format!(
                        "'{u}' is not a valid DICOM UID (digits and dots, at most 64 characters)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The layout's inserts after `rearrange`, the material each hole held before it (hole id →
/// material), and whether the rearrangement moved any material.
type LayoutInserts = (Vec<geometry::Insert>, BTreeMap<String, String>, bool);

/// The [`LayoutInserts`] of `def` with `p` (none for a uniform phantom).
pub(crate) fn layout_inserts(
    p: &SimParams,
    def: &PhantomDef,
    body_hu: f64,
) -> Result<LayoutInserts, SimError> {
    if p.uniform {
        return Ok((Vec::new(), BTreeMap::new(), false));
    }
    let mut inserts = geometry::inserts(def, body_hu)?;
    let original: BTreeMap<String, String> = inserts
        .iter()
        .map(|i| (i.id.clone(), i.material.clone()))
        .collect();
    let rearranged = match p.rearrange {
        Some(seed) if !inserts.is_empty() => {
            let before: Vec<String> = inserts.iter().map(|i| i.material.clone()).collect();
            geometry::rearrange(&mut inserts, seed);
            inserts.iter().map(|i| &i.material).ne(before.iter())
        }
        _ => false,
    };
    Ok((inserts, original, rearranged))
}

/// Everything decided before any pixel is drawn, plus the segment images.
struct Plan {
    rows: usize,
    cols: usize,
    dx: f64,
    dy: f64,
    /// Blurred ideal image of each distinct segment content.
    images: Vec<Vec<f32>>,
    /// Per slice: (image index, weight).
    weights: Vec<Vec<(usize, f32)>>,
    noise: filter::NoiseModel,
    noise_seed: u64,
    circle: Option<(f64, f64, f64)>,
    intercepts: Vec<f64>,
    slope: f64,
    stored_range: (i32, i32),
    padding: Vec<Option<i32>>,
    truth: Truth,
}

fn plan(p: &SimParams, def: &PhantomDef) -> Result<Plan, SimError> {
    validate(p, def)?;
    let rows = p.matrix;
    let cols = p.matrix;
    let (dx, dy) = (p.pixel_mm, p.pixel_mm);
    let image_centre = [
        (cols as f64 - 1.0) / 2.0 * dx,
        (rows as f64 - 1.0) / 2.0 * dy,
    ];
    let pose = Pose {
        centre_x_mm: image_centre[0] + p.shift_x_mm,
        centre_y_mm: image_centre[1] + p.shift_y_mm,
        rotation_deg: p.rotation_deg,
    };
    let place = geometry::Placement::new(pose.centre_x_mm, pose.centre_y_mm, pose.rotation_deg);
    let body_hu = p.body_hu.unwrap_or(def.body_hu);

    // Inserts and what they hold.
    let (mut inserts, original, rearranged) = layout_inserts(p, def, body_hu)?;
    if p.uniform && !p.holes.is_empty() {
        return Err(param_err(
            "holes",
            "a uniform phantom has no inserts: drop the hole contents (or uniform)",
        ));
    }
    let known: Vec<&str> = if def.holes.is_empty() {
        inserts.iter().map(|i| i.id.as_str()).collect()
    } else {
        def.holes.iter().map(|h| h.id.as_str()).collect()
    };
    for id in p.holes.keys() {
        if !known.contains(&id.as_str()) {
            return Err(param_err(
                "holes",
                format!(
                    "'{id}' is not a hole of {} (its holes: {})",
                    def.id,
                    known.join(", ")
                ),
            ));
        }
    }
    // Holes the layout leaves out but a content fills, in the definition's order.
    for h in &def.holes {
        if p.holes.contains_key(&h.id) && !inserts.iter().any(|i| i.id == h.id) {
            inserts.push(geometry::Insert {
                id: h.id.clone(),
                ring: h.ring.clone(),
                material: String::new(),
                px: h.x_mm,
                py: h.y_mm,
                radius_mm: h.radius_mm,
            });
        }
    }
    if !def.holes.is_empty() {
        inserts.sort_by_key(|i| {
            def.holes
                .iter()
                .position(|h| h.id == i.id)
                .unwrap_or(usize::MAX)
        });
    }
    let base_hu = |name: &str| {
        def.material(name)
            .map(|m| m.hu_expected + p.hu_offsets.get(name).copied().unwrap_or(0.0))
    };
    let mut filled: Vec<(geometry::Insert, geometry::Fill)> = Vec::with_capacity(inserts.len());
    for mut ins in inserts {
        let content = p.holes.get(&ins.id);
        let names_material = content.is_some_and(|c| c.material.is_some() || c.empty == Some(true));
        if !names_material && !ins.material.is_empty() && def.material(&ins.material).is_none() {
            return Err(SimError::Phantom {
                phantom: def.id.clone(),
                what: format!(
                    "layout names material '{}', which is not defined",
                    ins.material
                ),
            });
        }
        let fill = holes::resolve(&ins, content, def, body_hu, base_hu)?;
        ins.material = fill.material.clone();
        filled.push((ins, fill));
    }
    let holes: Vec<TruthHole> = filled
        .iter()
        .map(|(ins, f)| {
            let (x, y) = place.image_point(ins.px, ins.py);
            TruthHole {
                hole: ins.id.clone(),
                ring: ins.ring.clone(),
                material: ins.material.clone(),
                x_mm: x,
                y_mm: y,
                phantom_x_mm: ins.px,
                phantom_y_mm: ins.py,
                radius_mm: ins.radius_mm,
                hu: f.hu,
                core_radius_mm: f.core_radius_mm,
                rod_radius_mm: f.rod_radius_mm,
                sleeve_hu: f.sleeve_hu,
                rod_gap_mm: f.rod_gap_mm,
                void_radius_mm: f.void_radius_mm,
                vial_wall_mm: f.vial.map(|v| v.0),
                vial_wall_hu: f.vial.map(|v| v.1),
                empty: f.empty,
                in_definition: f.in_definition,
                layout_material: original.get(&ins.id).cloned(),
            }
        })
        .collect();
    let mut materials: Vec<TruthMaterial> = Vec::new();
    for m in &def.materials {
        let of: Vec<&TruthHole> = holes
            .iter()
            .filter(|h| h.in_definition && h.material == m.name)
            .collect();
        if of.is_empty() {
            continue;
        }
        let off = p.hu_offsets.get(&m.name).copied().unwrap_or(0.0);
        let hus = of.iter().map(|h| h.hu);
        let (lo, hi) = hus
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        materials.push(TruthMaterial {
            name: m.name.clone(),
            hu: hus.sum::<f64>() / of.len() as f64,
            hu_expected: m.hu_expected,
            hu_offset: off,
            red: m.red,
            n_holes: of.len(),
            holes: of.iter().map(|h| h.hole.clone()).collect(),
            copies_spread_hu: hi - lo,
        });
    }
    let foreign: Vec<TruthHole> = holes.iter().filter(|h| !h.in_definition).cloned().collect();
    let mut features = Vec::new();
    if geometry::catphan_has_pins(def) && !p.uniform {
        for f in geometry::catphan_pins() {
            let (x, y) = place.image_point(f.x_mm, f.y_mm);
            features.push(TruthFeature {
                x_mm: x,
                y_mm: y,
                ..f
            });
        }
    }

    // Along z.
    let (w, h) = def.outline.size_mm();
    let extent = p.slab_mm.or(def.extent_z_mm).unwrap_or(w.max(h));
    let zc = p.z_offset_mm;
    let segments = geometry::segments(def, p, extent, zc);
    let mut contents: Vec<geometry::Content> = segments.iter().map(|s| s.content).collect();
    contents.sort();
    contents.dedup();
    let image_of = |c: geometry::Content| contents.iter().position(|&x| x == c).unwrap_or(0);
    let n = p.n_slices;
    let spacing = p.spacing_mm();
    let t = p.slice_thickness_mm;
    let insert_segment = segments
        .iter()
        .position(|s| s.name == "slab" || s.name == "CTP404")
        .unwrap_or(1);
    let mut weights = Vec::with_capacity(n);
    let mut slices = Vec::with_capacity(n);
    let mut intercepts = Vec::with_capacity(n);
    let (lo, hi) = p.pixel_representation.range();
    let slope = p.rescale_slope;
    let mut padding = Vec::with_capacity(n);
    let params_key = {
        // how the files are framed (Part-10 or raw data sets) does not make another series
        let framed_as_part10 = SimParams {
            part10: true,
            ..p.clone()
        };
        let mut bytes = serde_json::to_vec(&framed_as_part10).unwrap_or_default();
        bytes.extend_from_slice(def.id.as_bytes());
        fnv1a(&bytes)
    };
    let series_key = mix(p.seed, params_key);
    for i in 0..n {
        let z = (i as f64 - (n as f64 - 1.0) / 2.0) * spacing;
        let (a, b) = (z - t / 2.0, z + t / 2.0);
        let mut wv: Vec<(usize, f32)> = Vec::new();
        let mut best = (0.0, "air".to_string());
        let mut insert_fraction = 0.0;
        for (k, s) in segments.iter().enumerate() {
            let ov = (b.min(s.z1) - a.max(s.z0)).max(0.0) / t;
            if ov <= 0.0 {
                continue;
            }
            if k == insert_segment {
                insert_fraction = ov;
            }
            if ov > best.0 {
                best = (ov, s.name.clone());
            }
            let img = image_of(s.content);
            match wv.iter_mut().find(|(j, _)| *j == img) {
                Some(e) => e.1 += ov as f32,
                None => wv.push((img, ov as f32)),
            }
        }
        weights.push(wv);
        let intercept = if p.vary_intercept {
            p.rescale_intercept - 1000.0 * (i % 3) as f64
        } else {
            p.rescale_intercept
        };
        intercepts.push(intercept);
        let pad = if p.recon_circle {
            let want = ((p.padding_hu - intercept) / slope).round();
            if want >= lo as f64 && want <= hi as f64 {
                Some(want as i32)
            } else {
                Some(lo)
            }
        } else {
            None
        };
        padding.push(pad);
        slices.push(TruthSlice {
            index: i,
            instance_number: (i + 1) as u32,
            file: if p.part10 {
                format!("{:04}.dcm", i + 1)
            } else {
                format!("IM{:04}", i + 1)
            },
            sop_instance_uid: uid_from(mix(mix(series_key, SEED_SOP), i as u64)),
            z_mm: z,
            insert_fraction: (insert_fraction * 1e9).round() / 1e9,
            module: best.1,
            rescale_intercept: intercept,
            padding_value: pad,
        });
    }
    if geometry::is_catphan(def) && p.catphan_modules && !p.uniform {
        let covered = |m: &str| slices.iter().any(|s: &TruthSlice| s.module == m);
        let room = n as f64 * spacing >= extent + 2.0 * (t + spacing);
        if room && !(covered("CTP515") && covered("CTP404") && covered("CTP528")) {
            tracing::warn!(
                "simulate: the series (z {:.1}…{:.1} mm) does not cover CTP404 and both its neighbours; check z_offset_mm",
                slices.first().map(|s| s.z_mm).unwrap_or(0.0),
                slices.last().map(|s| s.z_mm).unwrap_or(0.0)
            );
        }
    }
    let modules: Vec<TruthModule> = segments
        .iter()
        .filter(|s| s.content != geometry::Content::Air)
        .map(|s| TruthModule {
            name: s.name.clone(),
            z_range_mm: [s.z0, s.z1],
        })
        .collect();

    // Couch, circle, storage.
    let couch_geom = p.couch.then(|| {
        (
            pose.centre_y_mm + geometry::outline_half_height(&def.outline, p.rotation_deg),
            image_centre[0],
        )
    });
    let couch = couch_geom.map(|(top, x)| TruthCouch {
        top_y_mm: top,
        centre_x_mm: x,
        width_mm: COUCH_WIDTH_MM,
        plate_mm: COUCH_PLATE_MM,
        foam_mm: COUCH_FOAM_MM,
        plate_hu: COUCH_PLATE_HU,
        foam_hu: COUCH_FOAM_HU,
    });
    let circle = p.recon_circle.then(|| {
        (
            image_centre[0],
            image_centre[1],
            (cols as f64 * dx).min(rows as f64 * dy) / 2.0,
        )
    });
    let hu_min = intercepts[0] + slope * lo as f64;
    let hu_max = intercepts[0] + slope * hi as f64;
    if hu_min > -1000.0 || hu_max < 1500.0 {
        tracing::warn!(
            "simulate: the storage represents only {hu_min}…{hu_max} HU; values beyond are clamped"
        );
    }
    let noise = filter::NoiseModel::new(p.noise_sigma_hu, p.noise_corr_mm / dx);
    let (sop_class, modality) = encode::sop_class(&p.modality);
    let truth = Truth {
        generator: format!("hu-red simulate {}", env!("CARGO_PKG_VERSION")),
        phantom_id: def.id.clone(),
        phantom_name: def.name.clone(),
        uniform: p.uniform,
        rearranged,
        seed: p.seed,
        pose,
        outline: def.outline,
        body_hu,
        holes,
        materials,
        foreign,
        features,
        noise_sigma_hu: p.noise_sigma_hu,
        noise_corr_mm: p.noise_corr_mm,
        noise_n_corr: noise.n_corr,
        blur_mm: p.blur_mm,
        air_gap_mm: p.air_gap_mm,
        insert_z_range_mm: [zc - extent / 2.0, zc + extent / 2.0],
        modules,
        slices,
        pixel_mm: dx,
        matrix: p.matrix,
        rows,
        cols,
        image_centre_mm: image_centre,
        patient_origin_mm: [-image_centre[0], -image_centre[1]],
        slice_thickness_mm: t,
        slice_spacing_mm: spacing,
        n_slices: n,
        couch,
        recon_circle: circle.map(|(x, y, r)| TruthCircle {
            centre_x_mm: x,
            centre_y_mm: y,
            radius_mm: r,
        }),
        storage: TruthStorage {
            pixel_representation: p.pixel_representation,
            bits_stored: 16,
            rescale_intercept: intercepts[0],
            rescale_slope: slope,
            vary_intercept: p.vary_intercept,
            transfer_syntax: p.transfer_syntax,
            transfer_syntax_uid: p.transfer_syntax.uid().into(),
            part10: p.part10,
            padding_hu: padding[0].map(|v| intercepts[0] + slope * v as f64),
            hu_min,
            hu_max,
        },
        modality: modality.to_string(),
        sop_class_uid: sop_class.to_string(),
        study_uid: p
            .study_uid
            .clone()
            .unwrap_or_else(|| uid_from(mix(p.seed, SEED_STUDY))),
        series_uid: p
            .series_uid
            .clone()
            .unwrap_or_else(|| uid_from(mix(series_key, SEED_SERIES))),
        frame_of_reference_uid: uid_from(mix(p.seed, SEED_FOR)),
        params: p.clone(),
    };

    // The ideal image of each distinct content, drawn once.
    let ctx = geometry::SceneCtx {
        def,
        place,
        body_hu,
        inserts: &filled,
        air_gap_mm: p.air_gap_mm,
        couch: couch_geom,
    };
    let blur_kernel = filter::gaussian_kernel(p.blur_mm / dx);
    let images: Vec<Vec<f32>> = contents
        .par_iter()
        .map(|&c| {
            let s = geometry::build_scene(c, &ctx);
            let mut img = scene::rasterize(&s, rows, cols, dx, dy);
            if let Some(k) = &blur_kernel {
                filter::blur(&mut img, rows, cols, k);
            }
            img
        })
        .collect();
    Ok(Plan {
        rows,
        cols,
        dx,
        dy,
        images,
        weights,
        noise,
        noise_seed: mix(p.seed, SEED_NOISE),
        circle,
        intercepts,
        slope,
        stored_range: (lo, hi),
        padding,
        truth,
    })
}

impl Plan {
    /// Ideal HU of slice `i` plus its noise (no padding, no quantisation).
    fn slice_hu(&self, i: usize) -> Vec<f32> {
        let mut img = vec![0f32; self.rows * self.cols];
        for &(k, w) in &self.weights[i] {
            for (o, &v) in img.iter_mut().zip(&self.images[k]) {
                *o += w * v;
            }
        }
        self.noise.add(
            &mut img,
            self.rows,
            self.cols,
            mix(self.noise_seed, i as u64),
        );
        img
    }

    /// Stored values of slice `i` (clamped, padding outside the reconstruction circle).
    fn slice_stored(&self, i: usize) -> Vec<i32> {
        let hu = self.slice_hu(i);
        let (lo, hi) = self.stored_range;
        let b = self.intercepts[i];
        let pad = self.padding[i];
        let mut out = Vec::with_capacity(hu.len());
        for (idx, &v) in hu.iter().enumerate() {
            if let (Some(pv), Some((cx, cy, r))) = (pad, self.circle) {
                let x = (idx % self.cols) as f64 * self.dx - cx;
                let y = (idx / self.cols) as f64 * self.dy - cy;
                if x * x + y * y > r * r {
                    out.push(pv);
                    continue;
                }
            }
            let mut s = ((v as f64 - b) / self.slope)
                .round()
                .clamp(lo as f64, hi as f64) as i32;
            if Some(s) == pad {
                // never let a data value collide with the padding value
                s = if s < hi { s + 1 } else { s - 1 };
            }
            out.push(s);
        }
        out
    }
}

/// Render a series in memory.
pub fn render(params: &SimParams, phantom: &PhantomDef) -> Result<SimSeries, SimError> {
    let plan = plan(params, phantom)?;
    let objects = (0..params.n_slices)
        .into_par_iter()
        .map(|i| encode::object(&plan, params, i, &plan.slice_stored(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SimSeries {
        objects,
        truth: plan.truth,
    })
}

/// The decoded HU volume the files would give (stored × slope + intercept, NaN for padding), as
/// a full-resolution [`HuStack`] in the project's image frame, plus the truth.
pub fn render_stack(
    params: &SimParams,
    phantom: &PhantomDef,
) -> Result<(HuStack, Truth), SimError> {
    let plan = plan(params, phantom)?;
    let (n, rows, cols) = (params.n_slices, plan.rows, plan.cols);
    let mut data = vec![0f32; n * rows * cols];
    data.par_chunks_mut(rows * cols)
        .enumerate()
        .for_each(|(i, sl)| {
            let stored = plan.slice_stored(i);
            let (b, m, pad) = (plan.intercepts[i], plan.slope, plan.padding[i]);
            for (o, &s) in sl.iter_mut().zip(&stored) {
                *o = if Some(s) == pad {
                    f32::NAN
                } else {
                    (s as f64 * m + b) as f32
                };
            }
        });
    let hu =
        ndarray::Array3::from_shape_vec((n, rows, cols), data).map_err(|e| SimError::Param {
            name: "matrix",
            what: e.to_string(),
        })?;
    let stack = HuStack {
        hu,
        pixel_mm: [plan.dy, plan.dx],
        origin_mm: [0.0, 0.0],
        z_mm: plan.truth.slices.iter().map(|s| s.z_mm).collect(),
        series_index: (0..n).collect(),
        thickness_mm: params.slice_thickness_mm,
        factor: 1,
    };
    Ok((stack, plan.truth))
}

fn write_truth(truth: &Truth, out_dir: &Path) -> Result<PathBuf, SimError> {
    let path = out_dir.join("truth.json");
    let text = serde_json::to_string_pretty(truth).map_err(|e| SimError::Write {
        path: path.clone(),
        what: e.to_string(),
    })?;
    std::fs::write(&path, text + "\n").map_err(|e| SimError::Write {
        path: path.clone(),
        what: e.to_string(),
    })?;
    Ok(path)
}

fn create_dir(out_dir: &Path) -> Result<(), SimError> {
    std::fs::create_dir_all(out_dir).map_err(|e| SimError::Write {
        path: out_dir.to_path_buf(),
        what: e.to_string(),
    })
}

fn yes() -> bool {
    true
}

/// Write one object: a Part-10 file, or (`part10` false) its bare data set in the object's
/// transfer syntax, without preamble and file meta group.
fn write_object(obj: &DefaultDicomObject, path: &Path, part10: bool) -> Result<(), SimError> {
    let err = |what: String| SimError::Write {
        path: path.to_path_buf(),
        what,
    };
    if part10 {
        return obj.write_to_file(path).map_err(|e| err(e.to_string()));
    }
    let uid = obj.meta().transfer_syntax();
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| err(format!("unknown transfer syntax {uid}")))?;
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| err(e.to_string()))?);
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| err(e.to_string()))?;
    out.flush().map_err(|e| err(e.to_string()))
}

/// Write a rendered series: `NNNN.dcm` (InstanceNumber, z order; raw data sets `IMNNNN` when
/// the truth's storage says `part10: false`) and `truth.json`. Returns the paths written, DICOM
/// files first.
pub fn write(series: &SimSeries, out_dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    create_dir(out_dir)?;
    let mut paths = series
        .objects
        .par_iter()
        .zip(series.truth.slices.par_iter())
        .map(|(obj, s)| {
            let path = out_dir.join(&s.file);
            write_object(obj, &path, series.truth.storage.part10).map(|_| path)
        })
        .collect::<Result<Vec<_>, _>>()?;
    paths.push(write_truth(&series.truth, out_dir)?);
    Ok(paths)
}

/// Render and write slice by slice (memory bounded by the few slices in flight).
pub fn render_to_dir(
    params: &SimParams,
    phantom: &PhantomDef,
    out_dir: &Path,
) -> Result<(Vec<PathBuf>, Truth), SimError> {
    let plan = plan(params, phantom)?;
    create_dir(out_dir)?;
    let mut paths = (0..params.n_slices)
        .into_par_iter()
        .map(|i| {
            let obj = encode::object(&plan, params, i, &plan.slice_stored(i))?;
            let path = out_dir.join(&plan.truth.slices[i].file);
            write_object(&obj, &path, params.part10).map(|_| path)
        })
        .collect::<Result<Vec<_>, _>>()?;
    paths.push(write_truth(&plan.truth, out_dir)?);
    Ok((paths, plan.truth))
}

#[cfg(test)]
mod tests;
