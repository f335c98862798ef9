//! Reading DICOM series: scan, group by series, sort, decode to HU (overview and full resolution).
//!
//! Loading ([`load_series`], [`load_series_from_objects`]) reads headers only: it finds the DICOM
//! files, groups them by SeriesInstanceUID, leaves out localizers and non-image objects, picks the
//! CT series, checks that its slices form one stack (same matrix and pixel spacing, one
//! orientation), sorts them along the slice normal and checks (cheaply) that every file's pixel
//! data is complete. Pixel data is decoded later, in parallel, one slice at a time:
//! [`Series::overview`] keeps only the block-averaged images, [`Series::full_resolution`] decodes
//! just the slices asked for.
//!
//! HU = stored value × RescaleSlope + RescaleIntercept, per slice. NaN marks no data: stored values
//! equal to PixelPaddingValue (or within PixelPaddingRangeLimit) and HU below −1500 (outside the
//! reconstruction circle).
//!
//! CT Image Storage (one slice per file) and Enhanced / Legacy Converted Enhanced CT (multi-frame:
//! each frame becomes a slice with the geometry and rescale of its functional groups; frames of
//! FrameType LOCALIZER are left out) are loaded. A multi-frame file is read once per
//! overview/full-resolution call and held in memory while its frames are decoded.
//!
//! Files are read whatever their layout ([`raw`]): DICOM Part-10 files, and files without the
//! Part-10 header (a raw data set in implicit or explicit VR little endian with no preamble and
//! no file meta group, as GE and others export, under any name; or a file meta group without
//! preamble), which get a synthesised file meta group. A series warning names the files read
//! that way. Other files (text, images, `truth.json`) are skipped as not DICOM.
//!
//! This is blocking, CPU-bound code (rayon inside): call it from `spawn_blocking` in async code.

mod acquisition;
mod geometry;
mod header;
mod pixels;
pub(crate) mod raw;
mod scan;
mod series;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::analysis::HuStack;
use header::{is_classic_ct, is_enhanced_ct, SliceHeader, Source};
use pixels::{block_mean, SliceRecipe};
use raw::FileLayout;
use scan::Scanned;
use series::assemble;

pub use acquisition::{days_from_civil, Acquisition, FieldValue};
pub use pixels::MIN_VALID_HU;

/// A usable series needs at least this many slices once damaged files are left out.
pub const MIN_SLICES_AFTER_SKIPPING: usize = 3;

/// Errors of the DICOM loader. Each message says which file, folder or series is concerned and
/// what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    #[error("{path}: no such file or folder; check the path given for the DICOM series")]
    PathNotFound { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is an empty folder: no files in it or below it; point to the folder holding the CT series")]
    EmptyFolder { path: PathBuf },
    #[error("no DICOM files in {location}: {detail}; point to the folder holding the CT series (DICOM files: Part-10, or raw data sets)")]
    NoDicomFiles { location: String, detail: String },
    #[error("no CT image series in {location}: found only {found}; hu-red needs an axial CT series (CT Image Storage) of the phantom")]
    NoCtSeries { location: String, found: String },
    #[error("no axial CT series in {location}: found {found}; hu-red needs axial slices of the phantom: reconstruct axial images, or give the series UID to use one of these anyway")]
    NoAxialSeries { location: String, found: String },
    #[error(
        "series {uid} not found among the CT image series in {location}; present: {available}"
    )]
    SeriesNotFound {
        uid: String,
        location: String,
        available: String,
    },
    #[error("series {uid} in {location} has mixed {attribute}: {values}; all slices of a series must share it: select one reconstruction (or remove the odd files)")]
    MixedGeometry {
        uid: String,
        location: String,
        attribute: String,
        values: String,
    },
    #[error("series {uid} in {location} cannot be used: {reason}")]
    BadSeries {
        uid: String,
        location: String,
        reason: String,
    },
    #[error("series {uid} in {location} has only {n} usable slice(s) after leaving out {skipped} damaged file(s) ({files}); at least {min} are needed: resend or re-export the series")]
    TooFewSlices {
        uid: String,
        location: String,
        n: usize,
        skipped: usize,
        files: String,
        min: usize,
    },
    #[error("cannot decode the pixel data of {file}: {reason}; the file may be damaged or use an unsupported compression: re-export or resend it uncompressed")]
    Decode { file: String, reason: String },
    #[error("slice index {index} is out of range: the series has {n} slices")]
    IndexOutOfRange { index: usize, n: usize },
    #[error("cannot read {path} as DICOM: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// Read a whole DICOM file, whatever its layout: a Part-10 file, or one without the Part-10
/// header (a raw data set in implicit or explicit VR little endian, or a file meta group without
/// preamble), which gets a synthesised file meta group (transfer syntax as detected, media
/// storage SOP class/instance from the data set). Also returns whether the file lacked the
/// Part-10 header.
pub fn open_dicom_file(
    path: &Path,
) -> Result<(dicom_object::DefaultDicomObject, bool), DicomError> {
    match raw::open_any(path) {
        Ok((obj, layout)) => Ok((obj, layout.is_headerless())),
        Err(raw::OpenError::Io(source)) => Err(DicomError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) => Err(DicomError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// The acquisition and geometry metadata of the loaded series (from its first slice).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SeriesMeta {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub sop_class_uid: String,
    pub modality: String,
    /// Who scanned, how and when (the first slice's).
    pub acquisition: Acquisition,
    pub series_number: Option<i64>,
    /// `[row spacing, column spacing]`, mm.
    pub pixel_spacing: [f64; 2],
    pub rows: usize,
    pub columns: usize,
    pub n_slices: usize,
    /// Transfer syntax UID of the first slice.
    pub transfer_syntax: String,
}

/// A loaded (headers only) CT series, sorted along the slice normal.
#[derive(Debug, Clone)]
pub struct Series {
    pub meta: SeriesMeta,
    pub warnings: Vec<String>,
    slices: Vec<SliceRecipe>,
    z_mm: Vec<f64>,
    thickness_mm: f64,
}

impl Series {
    /// Sorted slice positions (mm along the slice normal), one per slice, strictly increasing.
    pub fn z_mm(&self) -> &[f64] {
        &self.z_mm
    }

    pub fn n_slices(&self) -> usize {
        self.slices.len()
    }

    /// Where each slice came from (file path or the caller's label), in sorted order.
    pub fn slice_labels(&self) -> Vec<&str> {
        self.slices.iter().map(|s| s.label.as_str()).collect()
    }

    /// Nominal slice thickness used for the stacks (SliceThickness, or the slice spacing when
    /// absent), mm.
    pub fn thickness_mm(&self) -> f64 {
        self.thickness_mm
    }

    /// Median distance between consecutive slices, mm (None for a single slice).
    pub fn slice_spacing_mm(&self) -> Option<f64> {
        geometry::median_spacing(&self.z_mm)
    }

    /// The downsampling factor [`Series::overview`] uses for `target_pixel_mm`.
    pub fn overview_factor(&self, target_pixel_mm: f64) -> usize {
        let min_spacing = self.meta.pixel_spacing[0].min(self.meta.pixel_spacing[1]);
        if !target_pixel_mm.is_finite()
            || target_pixel_mm <= 0.0
            || min_spacing.is_nan()
            || min_spacing <= 0.0
        {
            return 1;
        }
        ((target_pixel_mm / min_spacing).round() as usize).max(1)
    }

    /// All slices, downsampled by block-mean to pixels of about `target_pixel_mm`
    /// (factor = max(1, round(target / min spacing))); NaN-aware means (a block with no valid
    /// pixel is NaN). Slices are decoded in parallel, one at a time per thread, and only the
    /// downsampled images are kept.
    pub fn overview(&self, target_pixel_mm: f64) -> Result<HuStack, DicomError> {
        let factor = self.overview_factor(target_pixel_mm);
        let indices: Vec<usize> = (0..self.slices.len()).collect();
        self.stack(&indices, factor)
    }

    /// The given series indices (sorted order) at full resolution (factor 1). Indices are sorted
    /// and de-duplicated.
    pub fn full_resolution(&self, indices: &[usize]) -> Result<HuStack, DicomError> {
        let mut idx = indices.to_vec();
        idx.sort_unstable();
        idx.dedup();
        self.stack(&idx, 1)
    }

    fn stack(&self, indices: &[usize], factor: usize) -> Result<HuStack, DicomError> {
        let n = self.slices.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(DicomError::IndexOutOfRange { index: bad, n });
        }
        let (rows, cols) = (self.meta.rows, self.meta.columns);
        let f = factor.max(1).min(rows.max(1)).min(cols.max(1));
        let (orows, ocols) = (rows / f, cols / f);
        let plane = orows * ocols;
        let mut data = vec![f32::NAN; plane * indices.len()];
        // Frames of one multi-frame file are decoded from one reading of that file; every other
        // slice is read, decoded, reduced and dropped on its own.
        let mut single: SliceOutputs = Vec::new();
        let mut by_file: BTreeMap<(&Path, FileLayout), SliceOutputs> = BTreeMap::new();
        for (out, &i) in data.chunks_mut(plane.max(1)).zip(indices) {
            match (&self.slices[i].source, self.slices[i].frame) {
                (Source::File(p, layout), Some(_)) => by_file
                    .entry((p.as_path(), *layout))
                    .or_default()
                    .push((out, i)),
                _ => single.push((out, i)),
            }
        }
        single.into_par_iter().try_for_each(|(out, i)| {
            self.slices[i].with_hu(|hu| block_mean(hu, rows, cols, f, out))
        })?;
        for ((path, layout), group) in by_file {
            let obj = raw::open(path, layout, None).map_err(|e| DicomError::Decode {
                file: path.display().to_string(),
                reason: e.to_string(),
            })?;
            group.into_par_iter().try_for_each(|(out, i)| {
                self.slices[i].hu_from(&obj, |hu| block_mean(hu, rows, cols, f, out))
            })?;
        }
        let hu =
            ndarray::Array3::from_shape_vec((indices.len(), orows, ocols), data).map_err(|e| {
                DicomError::Decode {
                    file: self.meta.series_instance_uid.clone(),
                    reason: format!("internal shape error: {e}"),
                }
            })?;
        let [dy, dx] = self.meta.pixel_spacing;
        let off = (f as f64 - 1.0) / 2.0;
        Ok(HuStack {
            hu,
            pixel_mm: [dy * f as f64, dx * f as f64],
            origin_mm: [off * dy, off * dx],
            z_mm: indices.iter().map(|&i| self.z_mm[i]).collect(),
            series_index: indices.to_vec(),
            thickness_mm: self.thickness_mm,
            factor: f,
        })
    }
}

/// Output planes of [`Series::stack`] with the series index each is decoded from.
type SliceOutputs<'a> = Vec<(&'a mut [f32], usize)>;

/// Load a CT series from a folder (searched recursively) or a single file. Reads headers only.
/// With several CT series, the axial one with the most slices is taken (a warning names the
/// others) unless `series_uid` names one.
pub fn load_series(path: &Path, series_uid: Option<&str>) -> Result<Series, DicomError> {
    let (files, list_problems) = scan::list_files(path)?;
    let location = path.display().to_string();
    if files.is_empty() {
        return Err(DicomError::EmptyFolder {
            path: path.to_path_buf(),
        });
    }
    let scanned = scan::scan_files(&files);
    assemble(scanned, &location, series_uid, list_problems)
}

/// Load a CT series from objects already in memory (e.g. received by the DICOM listener).
/// `objects` pairs a label used in messages (file name, SOP Instance UID, ...) with the object.
pub fn load_series_from_objects(
    objects: Vec<(String, dicom_object::DefaultDicomObject)>,
    series_uid: Option<&str>,
) -> Result<Series, DicomError> {
    let location = format!("the {} received object(s)", objects.len());
    if objects.is_empty() {
        return Err(DicomError::NoDicomFiles {
            location,
            detail: "no objects were given".into(),
        });
    }
    let scanned: Vec<Scanned> = objects
        .into_par_iter()
        .map(|(label, obj)| {
            let obj = Arc::new(obj);
            let h = SliceHeader::from_object(&obj, Source::Memory(Arc::clone(&obj)), label.clone());
            if is_classic_ct(&h.sop_class_uid) || is_enhanced_ct(&h.sop_class_uid) {
                if let Err(reason) = scan::check_object_pixel_data(&obj, &h) {
                    return Scanned::Unreadable {
                        path: PathBuf::from(label),
                        reason,
                        series_uid: Some(h.series_instance_uid.clone()),
                    };
                }
            }
            Scanned::Header(Box::new(h))
        })
        .collect();
    assemble(scanned, &location, series_uid, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_can_move_to_a_blocking_thread() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Series>();
        send_sync::<DicomError>();
    }
}
