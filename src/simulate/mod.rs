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
mod plan;
mod scene;
mod validate;

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
pub(crate) use plan::layout_inserts;
use plan::{plan, Plan};
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
