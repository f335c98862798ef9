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

mod geometry;
mod header;
mod pixels;
pub(crate) mod raw;
mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::analysis::HuStack;
use header::{is_classic_ct, is_enhanced_ct, sop_class_name, SliceHeader, Source};
use pixels::{block_mean, SliceRecipe};
use raw::FileLayout;
use scan::Scanned;

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
    pub series_description: Option<String>,
    pub protocol_name: Option<String>,
    pub kvp: Option<f64>,
    pub manufacturer: Option<String>,
    pub manufacturer_model_name: Option<String>,
    pub station_name: Option<String>,
    pub device_serial_number: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub series_number: Option<i64>,
    pub slice_thickness: Option<f64>,
    /// ConvolutionKernel, multiple values joined by a backslash.
    pub reconstruction_kernel: Option<String>,
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

fn warn(warnings: &mut Vec<String>, msg: String) {
    tracing::warn!("{msg}");
    warnings.push(msg);
}

fn list(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > max {
        s.push_str(&format!("; and {} more", items.len() - max));
    }
    s
}

fn describe_series(uid: &str, hs: &[SliceHeader], what: &str) -> String {
    let h = &hs[0];
    let desc = h
        .series_description
        .as_deref()
        .map(|d| format!(" \"{d}\""))
        .unwrap_or_default();
    let number = h
        .series_number
        .map(|n| format!(" #{n}"))
        .unwrap_or_default();
    format!(
        "{uid}{number}{desc} ({} {what} image(s), {})",
        hs.len(),
        h.orientation_name()
    )
}

/// What the non-chosen objects were, e.g. `MR Image ×20 (Modality MR, 1 series)`.
fn summarize_others(others: &[&SliceHeader]) -> Vec<String> {
    let mut by_kind: BTreeMap<(String, String), (usize, std::collections::BTreeSet<String>)> =
        BTreeMap::new();
    for h in others {
        let e = by_kind
            .entry((sop_class_name(&h.sop_class_uid), h.modality.clone()))
            .or_default();
        e.0 += 1;
        e.1.insert(h.series_instance_uid.clone());
    }
    by_kind
        .into_iter()
        .map(|((name, modality), (n, series))| {
            let modality = if modality.is_empty() {
                "no Modality".to_string()
            } else {
                format!("Modality {modality}")
            };
            format!("{name} ×{n} ({modality}, {} series)", series.len())
        })
        .collect()
}

fn assemble(
    scanned: Vec<Scanned>,
    location: &str,
    series_uid: Option<&str>,
    list_problems: Vec<String>,
) -> Result<Series, DicomError> {
    let mut warnings = Vec::new();
    for p in list_problems {
        warn(&mut warnings, p);
    }
    let n_total = scanned.len();
    let mut headers: Vec<SliceHeader> = Vec::new();
    let mut not_dicom: Vec<String> = Vec::new();
    let mut unreadable: Vec<(String, Option<String>)> = Vec::new();
    for s in scanned {
        match s {
            Scanned::Header(h) => headers.push(*h),
            Scanned::NotDicom { path, reason } => {
                not_dicom.push(format!("{} ({reason})", path.display()))
            }
            Scanned::Unreadable {
                path,
                reason,
                series_uid,
            } => unreadable.push((format!("{}: {reason}", path.display()), series_uid)),
        }
    }

    if headers.is_empty() {
        let mut detail = format!("{n_total} file(s) looked at");
        if !not_dicom.is_empty() {
            detail.push_str(&format!(
                ", {} not DICOM ({})",
                not_dicom.len(),
                list(&not_dicom, 3)
            ));
        }
        if !unreadable.is_empty() {
            let u: Vec<String> = unreadable.iter().map(|u| u.0.clone()).collect();
            detail.push_str(&format!(
                ", {} unreadable DICOM ({})",
                unreadable.len(),
                list(&u, 3)
            ));
        }
        return Err(DicomError::NoDicomFiles {
            location: location.to_string(),
            detail,
        });
    }
    if !not_dicom.is_empty() {
        warn(
            &mut warnings,
            format!(
                "skipped {} non-DICOM file(s): {}",
                not_dicom.len(),
                list(&not_dicom, 10)
            ),
        );
    }
    if !unreadable.is_empty() {
        let u: Vec<String> = unreadable.iter().map(|u| u.0.clone()).collect();
        warn(
            &mut warnings,
            format!(
                "skipped {} unreadable or damaged DICOM file(s): {}",
                unreadable.len(),
                list(&u, 10)
            ),
        );
    }

    // classify
    let mut ct: BTreeMap<String, Vec<SliceHeader>> = BTreeMap::new();
    let mut localizers: Vec<SliceHeader> = Vec::new();
    let mut others: Vec<SliceHeader> = Vec::new();
    let mut localizer_frames = 0usize;
    for h in headers {
        if is_classic_ct(&h.sop_class_uid) || is_enhanced_ct(&h.sop_class_uid) {
            if h.is_localizer() {
                localizers.push(h);
            } else {
                let n_frames = h.frames.len();
                let frames = h.expand_frames();
                localizer_frames += n_frames.saturating_sub(frames.len());
                for f in frames {
                    ct.entry(f.series_instance_uid.clone()).or_default().push(f);
                }
            }
        } else {
            others.push(h);
        }
    }
    if localizer_frames > 0 {
        tracing::info!("left out {localizer_frames} Enhanced CT frame(s) of FrameType LOCALIZER");
    }
    if !localizers.is_empty() {
        tracing::info!(
            "left out {} CT localizer image(s) (ImageType LOCALIZER)",
            localizers.len()
        );
    }
    if !others.is_empty() {
        let o: Vec<&SliceHeader> = others.iter().collect();
        tracing::info!(
            "left out non-CT objects: {}",
            summarize_others(&o).join(", ")
        );
    }

    let chosen_uid: String = match series_uid {
        Some(uid) => {
            let uid = uid.trim();
            if ct.contains_key(uid) {
                uid.to_string()
            } else {
                let mut available: Vec<String> = ct
                    .iter()
                    .map(|(u, hs)| format!("CT series {}", describe_series(u, hs, "CT")))
                    .collect();
                if !localizers.is_empty() {
                    available.push(format!(
                        "{} CT localizer image(s) (left out)",
                        localizers.len()
                    ));
                }
                let o: Vec<&SliceHeader> = others.iter().collect();
                available.extend(summarize_others(&o));
                let available = if available.is_empty() {
                    "nothing usable".to_string()
                } else {
                    available.join("; ")
                };
                return Err(DicomError::SeriesNotFound {
                    uid: uid.to_string(),
                    location: location.to_string(),
                    available,
                });
            }
        }
        None => {
            if ct.is_empty() {
                let mut parts = summarize_others(&others.iter().collect::<Vec<_>>());
                if !localizers.is_empty() {
                    parts.push(format!(
                        "CT localizer images ×{} (ImageType LOCALIZER, left out)",
                        localizers.len()
                    ));
                }
                if !unreadable.is_empty() {
                    parts.push(format!("{} unreadable DICOM file(s)", unreadable.len()));
                }
                return Err(DicomError::NoCtSeries {
                    location: location.to_string(),
                    found: if parts.is_empty() {
                        "no image objects".into()
                    } else {
                        parts.join(", ")
                    },
                });
            }
            let axial: Vec<(&String, &Vec<SliceHeader>)> =
                ct.iter().filter(|(_, hs)| hs[0].is_axial()).collect();
            if axial.is_empty() {
                let found: Vec<String> = ct
                    .iter()
                    .map(|(u, hs)| format!("CT series {}", describe_series(u, hs, "CT")))
                    .collect();
                return Err(DicomError::NoAxialSeries {
                    location: location.to_string(),
                    found: found.join("; "),
                });
            }
            let best = axial
                .iter()
                .max_by(|a, b| {
                    a.1.len()
                        .cmp(&b.1.len())
                        // on a tie prefer the lower series number, then the smaller UID
                        .then(
                            b.1[0]
                                .series_number
                                .unwrap_or(i64::MAX)
                                .cmp(&a.1[0].series_number.unwrap_or(i64::MAX)),
                        )
                        .then(b.0.cmp(a.0))
                })
                .map(|(u, _)| (*u).clone())
                .unwrap_or_default();
            let left: Vec<String> = ct
                .iter()
                .filter(|(u, _)| **u != best)
                .map(|(u, hs)| describe_series(u, hs, "CT"))
                .collect();
            if !left.is_empty() {
                let hs = &ct[&best];
                warn(
                    &mut warnings,
                    format!(
                        "{} CT series found in {location}; using {} (the axial series with the most slices); left out: {}; choose another with its SeriesInstanceUID (--series)",
                        left.len() + 1,
                        describe_series(&best, hs, "CT"),
                        left.join("; ")
                    ),
                );
            }
            best
        }
    };

    let skipped: Vec<String> = unreadable
        .iter()
        .filter(|(_, s)| s.as_deref().is_none_or(|s| s == chosen_uid))
        .map(|(m, _)| m.clone())
        .collect();
    let headers = ct.remove(&chosen_uid).unwrap_or_default();
    build_series(headers, &chosen_uid, location, skipped, warnings)
}

/// The warning naming the files read without a Part-10 header (raw data sets, or a file meta
/// group without preamble), `None` when every file had one.
fn headerless_warning(headers: &[SliceHeader]) -> Option<String> {
    let mut by_layout: BTreeMap<FileLayout, Vec<String>> = BTreeMap::new();
    for h in headers {
        if let Source::File(path, layout) = &h.source {
            if layout.is_headerless() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| h.label.clone());
                by_layout.entry(*layout).or_default().push(name);
            }
        }
    }
    if by_layout.is_empty() {
        return None;
    }
    let n: usize = by_layout.values().map(Vec::len).sum();
    let kinds: Vec<String> = by_layout
        .iter_mut()
        .map(|(layout, names)| {
            names.sort();
            let how = match layout {
                FileLayout::MetaWithoutPreamble => {
                    "read from the file meta group at byte 0 (no preamble, no DICM marker)"
                        .to_string()
                }
                other => format!("read as {}", other.describe()),
            };
            if names.len() == n {
                format!("{how}: {}", list(names, 3))
            } else {
                format!("{how} ({}: {})", names.len(), list(names, 3))
            }
        })
        .collect();
    Some(format!(
        "{n} file(s) have no DICOM Part-10 header (no preamble/file meta), {}; check the export settings (DICOM Part-10 files, with the file meta information, are the standard)",
        kinds.join("; ")
    ))
}

fn build_series(
    headers: Vec<SliceHeader>,
    uid: &str,
    location: &str,
    skipped: Vec<String>,
    mut warnings: Vec<String>,
) -> Result<Series, DicomError> {
    let bad = |reason: String| DicomError::BadSeries {
        uid: uid.to_string(),
        location: location.to_string(),
        reason,
    };
    let mixed =
        |attribute: &str, groups: BTreeMap<String, Vec<String>>| DicomError::MixedGeometry {
            uid: uid.to_string(),
            location: location.to_string(),
            attribute: attribute.to_string(),
            values: groups
                .iter()
                .map(|(v, files)| {
                    format!(
                        "{v} in {} file(s) (e.g. {})",
                        files.len(),
                        files.first().map(String::as_str).unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
    if headers.is_empty() {
        return Err(bad("no slices".into()));
    }

    // one frame per file
    let multi: Vec<String> = headers
        .iter()
        .filter(|h| h.frame.is_none() && h.number_of_frames.unwrap_or(1) > 1)
        .map(|h| format!("{} ({} frames)", h.label, h.number_of_frames.unwrap_or(1)))
        .collect();
    if !multi.is_empty() {
        return Err(bad(format!(
            "multi-frame CT images are not supported: {}",
            list(&multi, 3)
        )));
    }

    // matrix
    let mut by_matrix: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &headers {
        let key = match (h.rows, h.columns) {
            (Some(r), Some(c)) => format!("Rows×Columns {r}×{c}"),
            _ => "missing Rows/Columns".to_string(),
        };
        by_matrix.entry(key).or_default().push(h.label.clone());
    }
    if by_matrix.len() > 1 {
        return Err(mixed("Rows/Columns", by_matrix));
    }
    let (rows, columns) = match (headers[0].rows, headers[0].columns) {
        (Some(r), Some(c)) if r > 0 && c > 0 => (r, c),
        _ => return Err(bad("Rows/Columns missing or zero".into())),
    };

    // pixel spacing
    let first_ps = headers[0].pixel_spacing;
    let ps_differs = |a: Option<[f64; 2]>| match (a, first_ps) {
        (Some(a), Some(b)) => (a[0] - b[0]).abs() > 1e-3 || (a[1] - b[1]).abs() > 1e-3,
        (None, None) => false,
        _ => true,
    };
    if headers.iter().any(|h| ps_differs(h.pixel_spacing)) {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in &headers {
            let key = match h.pixel_spacing {
                Some([r, c]) => format!("PixelSpacing {r}\\{c} mm"),
                None => "no PixelSpacing".into(),
            };
            groups.entry(key).or_default().push(h.label.clone());
        }
        return Err(mixed("PixelSpacing", groups));
    }
    let Some(pixel_spacing) = first_ps else {
        return Err(bad(
            "PixelSpacing is missing: pixel sizes in mm are needed for the analysis".into(),
        ));
    };

    // pixel format sanity (the decoder checks each file again)
    let odd: Vec<String> = headers
        .iter()
        .filter(|h| {
            h.samples_per_pixel.unwrap_or(1) != 1
                || !matches!(
                    h.photometric_interpretation.as_deref(),
                    None | Some("MONOCHROME2") | Some("MONOCHROME1")
                )
        })
        .map(|h| {
            format!(
                "{} (SamplesPerPixel {:?}, PhotometricInterpretation {:?})",
                h.label, h.samples_per_pixel, h.photometric_interpretation
            )
        })
        .collect();
    if !odd.is_empty() {
        return Err(bad(format!("not greyscale CT images: {}", list(&odd, 3))));
    }

    // transfer syntaxes we can decode
    let mut undecodable: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &headers {
        let ok = TransferSyntaxRegistry
            .get(&h.transfer_syntax)
            .is_some_and(|ts| ts.can_decode_all());
        if !ok {
            let name = TransferSyntaxRegistry
                .get(&h.transfer_syntax)
                .map(|ts| format!("{} ({})", ts.name(), h.transfer_syntax))
                .unwrap_or_else(|| format!("unknown transfer syntax {}", h.transfer_syntax));
            undecodable.entry(name).or_default().push(h.label.clone());
        }
    }
    if !undecodable.is_empty() {
        let what: Vec<String> = undecodable
            .iter()
            .map(|(ts, files)| format!("{ts} in {} file(s), e.g. {}", files.len(), files[0]))
            .collect();
        return Err(bad(format!(
            "its pixel data is encoded with a transfer syntax hu-red cannot decode: {}; send or export the series uncompressed or with a lossless compression (JPEG lossless, JPEG-LS, JPEG 2000, RLE)",
            what.join("; ")
        )));
    }
    if let Some(msg) = headerless_warning(&headers) {
        warn(&mut warnings, msg);
    }
    let lossy: Vec<String> = headers
        .iter()
        .filter(|h| h.lossy)
        .map(|h| h.label.clone())
        .collect();
    if !lossy.is_empty() {
        warn(
            &mut warnings,
            format!(
                "series {uid}: {} slice(s) were lossy compressed (LossyImageCompression 01, e.g. {}): HU values may deviate from the scanner's",
                lossy.len(),
                lossy[0]
            ),
        );
    }

    // order
    let sorted = geometry::sort_slices(&headers).map_err(bad)?;
    for w in sorted.warnings {
        warn(&mut warnings, format!("series {uid}: {w}"));
    }
    if headers[0].image_position.is_some() && !headers[0].is_axial() {
        warn(
            &mut warnings,
            format!(
                "series {uid} is {}, not axial: the analysis expects axial slices",
                headers[0].orientation_name()
            ),
        );
    }

    let n = sorted.order.len();
    if !skipped.is_empty() && n < MIN_SLICES_AFTER_SKIPPING {
        return Err(DicomError::TooFewSlices {
            uid: uid.to_string(),
            location: location.to_string(),
            n,
            skipped: skipped.len(),
            files: list(&skipped, 3),
            min: MIN_SLICES_AFTER_SKIPPING,
        });
    }

    // rescale and padding, per slice
    let mut no_rescale = Vec::new();
    let mut slices = Vec::with_capacity(n);
    for &i in &sorted.order {
        let h = &headers[i];
        if h.rescale_slope.is_none() || h.rescale_intercept.is_none() {
            no_rescale.push(h.label.clone());
        }
        let slope = h.rescale_slope.filter(|s| *s != 0.0).unwrap_or(1.0);
        let intercept = h.rescale_intercept.unwrap_or(0.0);
        let padding = h.padding_value.map(|pv| match h.padding_range_limit {
            Some(lim) => (pv.min(lim), pv.max(lim)),
            None => (pv, pv),
        });
        slices.push(SliceRecipe {
            source: h.source.clone(),
            frame: h.frame,
            label: h.label.clone(),
            rows,
            cols: columns,
            slope,
            intercept,
            padding,
        });
    }
    if !no_rescale.is_empty() {
        warn(
            &mut warnings,
            format!(
                "series {uid}: RescaleSlope/RescaleIntercept missing in {} of {n} slice(s) ({}): slope 1 and intercept 0 assumed, so HU = stored values; check the numbers",
                no_rescale.len(),
                list(&no_rescale, 3)
            ),
        );
    }

    let first = &headers[sorted.order[0]];
    let thickness_mm = match first.slice_thickness {
        Some(t) => t,
        None => {
            let t = geometry::median_spacing(&sorted.z_mm).unwrap_or(1.0);
            warn(
                &mut warnings,
                format!("series {uid}: SliceThickness missing: the slice spacing ({t:.2} mm) is used instead"),
            );
            t
        }
    };

    if first.modality != "CT" {
        warn(
            &mut warnings,
            format!(
                "series {uid} is stored as CT images but its Modality is \"{}\"",
                first.modality
            ),
        );
    }

    let meta = SeriesMeta {
        series_instance_uid: uid.to_string(),
        study_instance_uid: first.study_instance_uid.clone(),
        sop_class_uid: first.sop_class_uid.clone(),
        modality: first.modality.clone(),
        series_description: first.series_description.clone(),
        protocol_name: first.protocol_name.clone(),
        kvp: first.kvp,
        manufacturer: first.manufacturer.clone(),
        manufacturer_model_name: first.manufacturer_model_name.clone(),
        station_name: first.station_name.clone(),
        device_serial_number: first.device_serial_number.clone(),
        study_date: first.study_date.clone(),
        study_time: first.study_time.clone(),
        series_number: first.series_number,
        slice_thickness: first.slice_thickness,
        reconstruction_kernel: first.reconstruction_kernel.clone(),
        pixel_spacing,
        rows,
        columns,
        n_slices: n,
        transfer_syntax: first.transfer_syntax.clone(),
    };
    tracing::info!(
        series = %uid,
        slices = n,
        rows,
        columns,
        "loaded series headers from {location}"
    );
    Ok(Series {
        meta,
        warnings,
        slices,
        z_mm: sorted.z_mm,
        thickness_mm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headerless_warning_names_the_files_and_the_encoding() {
        let header = |name: &str, layout: FileLayout| {
            let mut h = SliceHeader::for_test(name, None, None, None);
            h.source = Source::File(PathBuf::from("/exports/ct").join(name), layout);
            h
        };
        let part10: Vec<SliceHeader> = (1..=3)
            .map(|k| header(&format!("{k:04}.dcm"), FileLayout::Part10))
            .collect();
        assert_eq!(headerless_warning(&part10), None);
        let raw = FileLayout::RawDataSet { explicit: false };
        let mut hs: Vec<SliceHeader> = (1..=12)
            .rev()
            .map(|k| header(&format!("IM{k:04}"), raw))
            .collect();
        let w = headerless_warning(&hs).unwrap();
        assert!(
            w.starts_with("12 file(s) have no DICOM Part-10 header (no preamble/file meta), read as raw implicit VR little endian: IM0001; IM0002; IM0003; and 9 more;"),
            "{w}"
        );
        assert!(w.contains("check the export settings"), "{w}");
        assert!(!w.contains("/exports"), "file names only: {w}");
        hs.push(header("X1", FileLayout::RawDataSet { explicit: true }));
        hs.push(header("M1", FileLayout::MetaWithoutPreamble));
        let w = headerless_warning(&hs).unwrap();
        assert!(w.starts_with("14 file(s)"), "{w}");
        for part in [
            "raw implicit VR little endian (12: IM0001",
            "raw explicit VR little endian (1: X1)",
            "no DICM marker) (1: M1)",
        ] {
            assert!(w.contains(part), "{part}: {w}");
        }
    }

    #[test]
    fn series_can_move_to_a_blocking_thread() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Series>();
        send_sync::<DicomError>();
    }
}
