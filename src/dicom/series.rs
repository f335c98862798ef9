//! From scanned files to one [`Series`]: sorting the scan results, classifying the objects (CT,
//! localizers, others), choosing the CT series, checking that its slices form one stack, sorting
//! them and collecting the per-slice rescale and the series metadata, with the warnings on the
//! way.

use std::collections::BTreeMap;

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::{is_classic_ct, is_enhanced_ct, sop_class_name, SliceHeader, Source};
use super::pixels::SliceRecipe;
use super::raw::FileLayout;
use super::scan::Scanned;
use super::{geometry, DicomError, Series, SeriesMeta, MIN_SLICES_AFTER_SKIPPING};

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
        .acquisition
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

/// A file that could not be read: its message, and its series when the header said so.
type Unreadable = (String, Option<String>);

/// The scan results split into headers, files that are not DICOM and unreadable DICOM files.
fn split_scanned(scanned: Vec<Scanned>) -> (Vec<SliceHeader>, Vec<String>, Vec<Unreadable>) {
    let mut headers: Vec<SliceHeader> = Vec::new();
    let mut not_dicom: Vec<String> = Vec::new();
    let mut unreadable: Vec<Unreadable> = Vec::new();
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
    (headers, not_dicom, unreadable)
}

/// The error when no file had a DICOM header; else the warnings naming the files skipped.
fn check_skipped_files(
    n_total: usize,
    no_headers: bool,
    not_dicom: &[String],
    unreadable: &[Unreadable],
    location: &str,
    warnings: &mut Vec<String>,
) -> Result<(), DicomError> {
    if no_headers {
        let mut detail = format!("{n_total} file(s) looked at");
        if !not_dicom.is_empty() {
            detail.push_str(&format!(
                ", {} not DICOM ({})",
                not_dicom.len(),
                list(not_dicom, 3)
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
            warnings,
            format!(
                "skipped {} non-DICOM file(s): {}",
                not_dicom.len(),
                list(not_dicom, 10)
            ),
        );
    }
    if !unreadable.is_empty() {
        let u: Vec<String> = unreadable.iter().map(|u| u.0.clone()).collect();
        warn(
            warnings,
            format!(
                "skipped {} unreadable or damaged DICOM file(s): {}",
                unreadable.len(),
                list(&u, 10)
            ),
        );
    }
    Ok(())
}

/// The headers by kind: CT slices by series (multi-frame objects expanded, localizer frames
/// left out), CT localizers, and every other object.
struct Classified {
    ct: BTreeMap<String, Vec<SliceHeader>>,
    localizers: Vec<SliceHeader>,
    others: Vec<SliceHeader>,
}

fn classify(headers: Vec<SliceHeader>) -> Classified {
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
    Classified {
        ct,
        localizers,
        others,
    }
}

/// The CT series named by `uid`, or the error listing what there is.
fn named_series(c: &Classified, uid: &str, location: &str) -> Result<String, DicomError> {
    let uid = uid.trim();
    if c.ct.contains_key(uid) {
        return Ok(uid.to_string());
    }
    let mut available: Vec<String> =
        c.ct.iter()
            .map(|(u, hs)| format!("CT series {}", describe_series(u, hs, "CT")))
            .collect();
    if !c.localizers.is_empty() {
        available.push(format!(
            "{} CT localizer image(s) (left out)",
            c.localizers.len()
        ));
    }
    let o: Vec<&SliceHeader> = c.others.iter().collect();
    available.extend(summarize_others(&o));
    let available = if available.is_empty() {
        "nothing usable".to_string()
    } else {
        available.join("; ")
    };
    Err(DicomError::SeriesNotFound {
        uid: uid.to_string(),
        location: location.to_string(),
        available,
    })
}

/// The axial CT series with the most slices (a warning names the others), or the error saying
/// there is no CT or no axial series.
fn default_series(
    c: &Classified,
    n_unreadable: usize,
    location: &str,
    warnings: &mut Vec<String>,
) -> Result<String, DicomError> {
    let ct = &c.ct;
    if ct.is_empty() {
        let mut parts = summarize_others(&c.others.iter().collect::<Vec<_>>());
        if !c.localizers.is_empty() {
            parts.push(format!(
                "CT localizer images ×{} (ImageType LOCALIZER, left out)",
                c.localizers.len()
            ));
        }
        if n_unreadable > 0 {
            parts.push(format!("{n_unreadable} unreadable DICOM file(s)"));
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
            warnings,
            format!(
                "{} CT series found in {location}; using {} (the axial series with the most slices); left out: {}; choose another with its SeriesInstanceUID (--series)",
                left.len() + 1,
                describe_series(&best, hs, "CT"),
                left.join("; ")
            ),
        );
    }
    Ok(best)
}

pub(super) fn assemble(
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
    let (headers, not_dicom, unreadable) = split_scanned(scanned);
    check_skipped_files(
        n_total,
        headers.is_empty(),
        &not_dicom,
        &unreadable,
        location,
        &mut warnings,
    )?;
    let mut classified = classify(headers);
    let chosen_uid: String = match series_uid {
        Some(uid) => named_series(&classified, uid, location)?,
        None => default_series(&classified, unreadable.len(), location, &mut warnings)?,
    };

    let skipped: Vec<String> = unreadable
        .iter()
        .filter(|(_, s)| s.as_deref().is_none_or(|s| s == chosen_uid))
        .map(|(m, _)| m.clone())
        .collect();
    let headers = classified.ct.remove(&chosen_uid).unwrap_or_default();
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

/// The series being built, for the errors that name it.
struct Named<'a> {
    uid: &'a str,
    location: &'a str,
}

impl Named<'_> {
    fn bad(&self, reason: String) -> DicomError {
        DicomError::BadSeries {
            uid: self.uid.to_string(),
            location: self.location.to_string(),
            reason,
        }
    }

    fn mixed(&self, attribute: &str, groups: BTreeMap<String, Vec<String>>) -> DicomError {
        DicomError::MixedGeometry {
            uid: self.uid.to_string(),
            location: self.location.to_string(),
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
        }
    }
}

/// One frame per file, one matrix, one pixel spacing, greyscale: the (rows, columns) and the
/// pixel spacing of the stack.
fn check_stack(
    headers: &[SliceHeader],
    named: &Named,
) -> Result<(usize, usize, [f64; 2]), DicomError> {
    // one frame per file
    let multi: Vec<String> = headers
        .iter()
        .filter(|h| h.frame.is_none() && h.number_of_frames.unwrap_or(1) > 1)
        .map(|h| format!("{} ({} frames)", h.label, h.number_of_frames.unwrap_or(1)))
        .collect();
    if !multi.is_empty() {
        return Err(named.bad(format!(
            "multi-frame CT images are not supported: {}",
            list(&multi, 3)
        )));
    }

    // matrix
    let mut by_matrix: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in headers {
        let key = match (h.rows, h.columns) {
            (Some(r), Some(c)) => format!("Rows×Columns {r}×{c}"),
            _ => "missing Rows/Columns".to_string(),
        };
        by_matrix.entry(key).or_default().push(h.label.clone());
    }
    if by_matrix.len() > 1 {
        return Err(named.mixed("Rows/Columns", by_matrix));
    }
    let (rows, columns) = match (headers[0].rows, headers[0].columns) {
        (Some(r), Some(c)) if r > 0 && c > 0 => (r, c),
        _ => return Err(named.bad("Rows/Columns missing or zero".into())),
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
        for h in headers {
            let key = match h.pixel_spacing {
                Some([r, c]) => format!("PixelSpacing {r}\\{c} mm"),
                None => "no PixelSpacing".into(),
            };
            groups.entry(key).or_default().push(h.label.clone());
        }
        return Err(named.mixed("PixelSpacing", groups));
    }
    let Some(pixel_spacing) = first_ps else {
        return Err(named
            .bad("PixelSpacing is missing: pixel sizes in mm are needed for the analysis".into()));
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
        return Err(named.bad(format!("not greyscale CT images: {}", list(&odd, 3))));
    }
    Ok((rows, columns, pixel_spacing))
}

/// The error naming the files whose transfer syntax hu-red cannot decode.
fn check_decodable(headers: &[SliceHeader], named: &Named) -> Result<(), DicomError> {
    let mut undecodable: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in headers {
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
        return Err(named.bad(format!(
            "its pixel data is encoded with a transfer syntax hu-red cannot decode: {}; send or export the series uncompressed or with a lossless compression (JPEG lossless, JPEG-LS, JPEG 2000, RLE)",
            what.join("; ")
        )));
    }
    Ok(())
}

/// The warnings on how the files were stored: without a Part-10 header, lossy compressed.
fn warn_encoding(headers: &[SliceHeader], uid: &str, warnings: &mut Vec<String>) {
    if let Some(msg) = headerless_warning(headers) {
        warn(warnings, msg);
    }
    let lossy: Vec<String> = headers
        .iter()
        .filter(|h| h.lossy)
        .map(|h| h.label.clone())
        .collect();
    if !lossy.is_empty() {
        warn(
            warnings,
            format!(
                "series {uid}: {} slice(s) were lossy compressed (LossyImageCompression 01, e.g. {}): HU values may deviate from the scanner's",
                lossy.len(),
                lossy[0]
            ),
        );
    }
}

/// How to decode each slice, in slice order: rescale and padding per slice (a warning names
/// the slices without a rescale).
fn slice_recipes(
    headers: &[SliceHeader],
    order: &[usize],
    (rows, columns): (usize, usize),
    uid: &str,
    warnings: &mut Vec<String>,
) -> Vec<SliceRecipe> {
    let n = order.len();
    let mut no_rescale = Vec::new();
    let mut slices = Vec::with_capacity(n);
    for &i in order {
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
            warnings,
            format!(
                "series {uid}: RescaleSlope/RescaleIntercept missing in {} of {n} slice(s) ({}): slope 1 and intercept 0 assumed, so HU = stored values; check the numbers",
                no_rescale.len(),
                list(&no_rescale, 3)
            ),
        );
    }
    slices
}

/// The series' metadata, from its first slice.
fn series_meta(
    first: &SliceHeader,
    uid: &str,
    pixel_spacing: [f64; 2],
    (rows, columns): (usize, usize),
    n: usize,
) -> SeriesMeta {
    SeriesMeta {
        series_instance_uid: uid.to_string(),
        study_instance_uid: first.study_instance_uid.clone(),
        sop_class_uid: first.sop_class_uid.clone(),
        modality: first.modality.clone(),
        acquisition: first.acquisition.clone(),
        series_number: first.series_number,
        pixel_spacing,
        rows,
        columns,
        n_slices: n,
        transfer_syntax: first.transfer_syntax.clone(),
    }
}

fn build_series(
    headers: Vec<SliceHeader>,
    uid: &str,
    location: &str,
    skipped: Vec<String>,
    mut warnings: Vec<String>,
) -> Result<Series, DicomError> {
    let named = Named { uid, location };
    if headers.is_empty() {
        return Err(named.bad("no slices".into()));
    }
    let (rows, columns, pixel_spacing) = check_stack(&headers, &named)?;
    check_decodable(&headers, &named)?;
    warn_encoding(&headers, uid, &mut warnings);

    // order
    let sorted = geometry::sort_slices(&headers).map_err(|r| named.bad(r))?;
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

    let slices = slice_recipes(&headers, &sorted.order, (rows, columns), uid, &mut warnings);
    let first = &headers[sorted.order[0]];
    let thickness_mm = match first.acquisition.slice_thickness {
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

    let meta = series_meta(first, uid, pixel_spacing, (rows, columns), n);
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
    use std::path::PathBuf;

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
}
