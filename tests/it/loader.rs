//! The DICOM loader end to end on files written by the test: grouping and series choice, sorting,
//! duplicates, gaps, rescale, padding, mixed geometry, damaged files and the error cases.

use crate::common_dicom;

use std::fs;
use std::path::Path;

use common_dicom::{assert_hu_eq, non_image, Slice};
use dicom_dictionary_std::uids;
use hu_red::dicom::{load_series, load_series_from_objects, DicomError};

const A: &str = "1.2.826.0.1.3680043.8.498.10";
const B: &str = "1.2.826.0.1.3680043.8.498.20";

/// A slice whose stored values tell its z (value = z × 10, i.e. HU = 10·z) plus a marker pixel.
fn z_slice(series: &str, index: i64, z: f64, n: usize) -> Slice {
    Slice::ct(series, index, z, n, n, (z * 10.0).round() as i64)
}

fn write_all(dir: &Path, slices: &[Slice]) {
    for (k, s) in slices.iter().enumerate() {
        s.write(&dir.join(format!("f{k:03}.dcm")));
    }
}

fn has_warning(warnings: &[String], needles: &[&str]) -> bool {
    warnings
        .iter()
        .any(|w| needles.iter().all(|n| w.contains(n)))
}

#[test]
fn picks_largest_axial_ct_series_and_names_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut slices: Vec<Slice> = (0..4).map(|k| z_slice(A, k, k as f64 * 2.5, 8)).collect();
    for s in &mut slices {
        s.series_description = Some("Small recon".into());
        s.series_number = Some(3);
    }
    slices.extend((0..6).map(|k| z_slice(B, k, k as f64 * 2.0, 8)));
    // a localizer in series B (same UID!) and one in its own series
    let mut loc = Slice::ct(B, 99, 0.0, 8, 8, 0);
    loc.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER".into();
    loc.orientation = Some([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
    loc.sop_instance_uid = "1.2.826.0.1.3680043.8.498.99".into();
    slices.push(loc.clone());
    let mut loc2 = loc.clone();
    loc2.series_uid = "1.2.826.0.1.3680043.8.498.30".into();
    loc2.sop_instance_uid = "1.2.826.0.1.3680043.8.498.98".into();
    slices.push(loc2);
    write_all(dir.path(), &slices);
    fs::create_dir_all(dir.path().join("sub")).unwrap();
    non_image(
        uids::RT_STRUCTURE_SET_STORAGE,
        "RTSTRUCT",
        "1.2.826.0.1.3680043.8.498.40",
        "1.2.826.0.1.3680043.8.498.41",
    )
    .write_to_file(dir.path().join("sub/rtstruct.dcm"))
    .unwrap();
    non_image(
        uids::BASIC_TEXT_SR_STORAGE,
        "SR",
        "1.2.826.0.1.3680043.8.498.50",
        "1.2.826.0.1.3680043.8.498.51",
    )
    .write_to_file(dir.path().join("sr.dcm"))
    .unwrap();

    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.meta.series_instance_uid, B);
    assert_eq!(s.meta.n_slices, 6, "localizer left out");
    assert_eq!(s.z_mm(), &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert!(
        has_warning(&s.warnings, &[A, "Small recon", "4 CT image(s)"]),
        "warning must name the other series: {:?}",
        s.warnings
    );
    assert_eq!(s.meta.modality, "CT");
    assert_eq!(s.meta.rows, 8);
    assert_eq!(s.meta.acquisition.kvp, Some(120.0));
    assert_eq!(
        s.meta.acquisition.reconstruction_kernel.as_deref(),
        Some("B30f")
    );
    assert_eq!(s.meta.acquisition.study_date.as_deref(), Some("20240115"));
    assert_eq!(s.meta.transfer_syntax, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    // an explicit choice wins, and does not warn about the others
    let a = load_series(dir.path(), Some(A)).unwrap();
    assert_eq!(a.meta.series_instance_uid, A);
    assert_eq!(a.meta.n_slices, 4);
    assert_eq!(
        a.meta.acquisition.series_description.as_deref(),
        Some("Small recon")
    );
    assert!(!has_warning(&a.warnings, &[B]), "{:?}", a.warnings);

    // an unknown UID lists what exists
    let err = load_series(dir.path(), Some("1.2.3.4")).unwrap_err();
    assert!(matches!(err, DicomError::SeriesNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("1.2.3.4") && msg.contains(A) && msg.contains(B),
        "{msg}"
    );
    assert!(msg.contains("RT Structure Set"), "{msg}");
}

#[test]
fn sorts_along_the_normal_not_by_instance_number() {
    let dir = tempfile::tempdir().unwrap();
    // z decreasing with the file order, instance numbers shuffled
    let numbers = [7, 2, 9, 1, 5, 3];
    let slices: Vec<Slice> = numbers
        .iter()
        .enumerate()
        .map(|(k, &n)| z_slice(A, n, 50.0 - 2.5 * k as f64, 6))
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.z_mm(), &[37.5, 40.0, 42.5, 45.0, 47.5, 50.0]);
    let st = s.full_resolution(&[0, 1, 2, 3, 4, 5]).unwrap();
    for (k, z) in st.z_mm.iter().enumerate() {
        assert_eq!(st.hu[[k, 3, 3]], (z * 10.0) as f32, "slice {k} holds z {z}");
    }
    assert_eq!(st.series_index, vec![0, 1, 2, 3, 4, 5]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn sorts_by_projection_on_the_normal_for_a_flipped_orientation() {
    // row (-1,0,0), column (0,1,0): normal (0,0,-1); positions along the normal are -z
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..4)
        .map(|k| {
            let mut s = z_slice(A, k, 10.0 + 3.0 * k as f64, 4);
            s.orientation = Some([-1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.z_mm(), &[-19.0, -16.0, -13.0, -10.0]);
    let st = s.full_resolution(&[0, 3]).unwrap();
    assert_eq!(
        st.hu[[0, 0, 0]],
        190.0,
        "first slice is the one at patient z = 19"
    );
    assert_eq!(st.hu[[1, 0, 0]], 100.0);
}

#[test]
fn duplicate_positions_keep_the_lowest_instance_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut slices: Vec<Slice> = (0..4)
        .map(|k| z_slice(A, k + 1, k as f64 * 2.0, 4))
        .collect();
    // a second slice at z = 2 with a higher instance number and other content
    let mut dup = Slice::ct(A, 40, 2.0, 4, 4, 777);
    dup.sop_instance_uid = "1.2.826.0.1.3680043.8.498.777".into();
    slices.push(dup);
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.z_mm(), &[0.0, 2.0, 4.0, 6.0]);
    let st = s.full_resolution(&[1]).unwrap();
    assert_eq!(st.hu[[0, 1, 1]], 20.0, "the InstanceNumber 2 slice is kept");
    assert!(
        has_warning(&s.warnings, &["duplicate", "InstanceNumber 40", "f004.dcm"]),
        "{:?}",
        s.warnings
    );
}

#[test]
fn gaps_are_reported_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let zs = [0.0, 2.5, 5.0, 10.0, 12.5, 15.0];
    let slices: Vec<Slice> = zs
        .iter()
        .enumerate()
        .map(|(k, &z)| z_slice(A, k as i64, z, 4))
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.z_mm(), &zs);
    assert!(
        has_warning(&s.warnings, &["irregular slice spacing", "5.00 → 10.00 mm"]),
        "{:?}",
        s.warnings
    );
    assert_eq!(s.slice_spacing_mm(), Some(2.5));
}

#[test]
fn each_slice_uses_its_own_rescale_and_storage() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = |r: usize, c: usize| (r * 37 + c * 11) as i64 % 3000;
    let mut slices = Vec::new();
    // slope 1, intercept -1024, unsigned 12 bit
    let mut s0 = z_slice(A, 1, 0.0, 8).with_stored(pattern);
    s0.signed = false;
    s0.bits_stored = 12;
    s0.intercept = Some(-1024.0);
    slices.push(s0);
    // slope 2, intercept -2048, unsigned 16 bit
    let mut s1 = z_slice(A, 2, 1.0, 8).with_stored(pattern);
    s1.signed = false;
    s1.slope = Some(2.0);
    s1.intercept = Some(-2048.0);
    slices.push(s1);
    // signed, slope 0.5, extended-range style intercept -8192
    let mut s2 = z_slice(A, 3, 2.0, 8).with_stored(|r, c| 14000 + pattern(r, c));
    s2.slope = Some(0.5);
    s2.intercept = Some(-8192.0);
    slices.push(s2);
    // signed 12-bit, negative stored values, intercept 0
    let mut s3 = z_slice(A, 4, 3.0, 8).with_stored(|r, c| pattern(r, c) - 1024);
    s3.bits_stored = 12;
    slices.push(s3);
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    let st = s.full_resolution(&[0, 1, 2, 3]).unwrap();
    for (k, sl) in slices.iter().enumerate() {
        let got: Vec<f32> = st
            .hu
            .index_axis(ndarray::Axis(0), k)
            .iter()
            .copied()
            .collect();
        assert_hu_eq(&got, &sl.expected_hu(), &format!("slice {k}"));
    }
    // spot values: stored 0 → -1024 HU in slice 0; stored 1024 → 0 HU in slice 1
    assert_eq!(st.hu[[0, 0, 0]], -1024.0);
    assert!(
        st.hu[[1, 0, 0]].is_nan(),
        "stored 0 × 2 − 2048 = −2048 HU is below −1500: NaN"
    );
}

#[test]
fn missing_rescale_defaults_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s = z_slice(A, k, k as f64, 4);
            s.slope = None;
            s.intercept = None;
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert!(
        has_warning(
            &s.warnings,
            &["RescaleSlope/RescaleIntercept missing", "3 of 3"]
        ),
        "{:?}",
        s.warnings
    );
    let st = s.full_resolution(&[2]).unwrap();
    assert_eq!(st.hu[[0, 0, 0]], 20.0);
}

#[test]
fn padding_and_outside_circle_become_nan() {
    let dir = tempfile::tempdir().unwrap();
    // signed: padding -2000 stored; -1600 HU (no padding) also NaN; -1000 air kept
    let mut s0 = z_slice(A, 1, 0.0, 6).with_stored(|r, c| match (r, c) {
        (0, _) => -2000,
        (1, _) => -1600,
        (2, _) => -1000,
        _ => 40,
    });
    s0.padding = Some(-2000);
    // unsigned: padding value 0 would be -1024 HU (a plausible value!) but is padding
    let mut s1 = z_slice(A, 2, 1.0, 6).with_stored(|r, _| match r {
        0 => 0,
        1 => 24,
        _ => 1064,
    });
    s1.signed = false;
    s1.bits_stored = 12;
    s1.intercept = Some(-1024.0);
    s1.padding = Some(0);
    // padding range: stored 0..=10 are padding
    let mut s2 = z_slice(A, 3, 2.0, 6).with_stored(|r, c| if r == 0 { c as i64 * 4 } else { 1024 });
    s2.signed = false;
    s2.intercept = Some(-1024.0);
    s2.padding = Some(10);
    s2.padding_limit = Some(0);
    let slices = vec![s0, s1, s2];
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    let st = s.full_resolution(&[0, 1, 2]).unwrap();
    for (k, sl) in slices.iter().enumerate() {
        let got: Vec<f32> = st
            .hu
            .index_axis(ndarray::Axis(0), k)
            .iter()
            .copied()
            .collect();
        assert_hu_eq(&got, &sl.expected_hu(), &format!("slice {k}"));
    }
    assert!(st.hu[[0, 0, 0]].is_nan(), "padding value");
    assert!(st.hu[[0, 1, 0]].is_nan(), "below -1500 HU");
    assert_eq!(st.hu[[0, 2, 0]], -1000.0, "air is kept");
    assert!(
        st.hu[[1, 0, 0]].is_nan(),
        "unsigned padding 0 (would be -1024 HU)"
    );
    assert_eq!(st.hu[[1, 1, 0]], -1000.0);
    assert!(
        st.hu[[2, 0, 0]].is_nan() && st.hu[[2, 0, 2]].is_nan(),
        "0 and 8 in 0..=10"
    );
    assert_eq!(st.hu[[2, 0, 3]], -1012.0, "12 is outside the padding range");
}

#[test]
fn padding_in_implicit_vr_files() {
    // implicit VR: the parser cannot know PixelPaddingValue is SS; -2000 must still match
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s =
                z_slice(A, k, k as f64, 4).with_stored(|r, _| if r == 0 { -2000 } else { 0 });
            s.transfer_syntax = uids::IMPLICIT_VR_LITTLE_ENDIAN.into();
            s.padding = Some(-2000);
            s.intercept = Some(-1024.0);
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.meta.transfer_syntax, uids::IMPLICIT_VR_LITTLE_ENDIAN);
    let st = s.full_resolution(&[0]).unwrap();
    assert!(st.hu[[0, 0, 0]].is_nan());
    assert_eq!(st.hu[[0, 1, 0]], -1024.0);
}

#[test]
fn overview_block_means_geometry_and_nan_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let n = 16;
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s = Slice::ct(A, k, k as f64 * 2.0, n, n, 0).with_stored(|r, c| {
                if r < 4 {
                    -2000
                } else {
                    (r * 100 + c) as i64
                }
            });
            s.pixel_spacing = Some([0.5, 0.5]);
            s.padding = Some(-2000);
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.overview_factor(2.0), 4);
    let ov = s.overview(2.0).unwrap();
    assert_eq!(ov.hu.shape(), &[3, 4, 4]);
    assert_eq!(ov.factor, 4);
    assert_eq!(ov.pixel_mm, [2.0, 2.0]);
    assert_eq!(ov.origin_mm, [0.75, 0.75]);
    assert_eq!(ov.z_mm, vec![0.0, 2.0, 4.0]);
    assert_eq!(ov.series_index, vec![0, 1, 2]);
    assert_eq!(ov.thickness_mm, 2.5);
    assert!(ov.hu[[0, 0, 0]].is_nan(), "block of padding only");
    // block (1, 2): rows 4..8, cols 8..12: mean of r*100 + c
    let want = (4..8)
        .flat_map(|r| (8..12).map(move |c| (r * 100 + c) as f64))
        .sum::<f64>()
        / 16.0;
    assert!((f64::from(ov.hu[[1, 1, 2]]) - want).abs() < 1e-3);
    // the overview maps back onto the full-resolution frame
    assert!((ov.x_of(2.0) - (8.0 + 1.5) * 0.5).abs() < 1e-12);
    // factor 1 for a target finer than the pixels
    let full = s.overview(0.1).unwrap();
    assert_eq!(full.hu.shape(), &[3, 16, 16]);
    assert_eq!(full.origin_mm, [0.0, 0.0]);
    // full resolution: indices sorted and de-duplicated, out of range refused
    let fr = s.full_resolution(&[2, 0, 2]).unwrap();
    assert_eq!(fr.series_index, vec![0, 2]);
    assert_eq!(fr.z_mm, vec![0.0, 4.0]);
    assert!(matches!(
        s.full_resolution(&[3]),
        Err(DicomError::IndexOutOfRange { index: 3, n: 3 })
    ));
}

#[test]
fn mixed_rows_are_rejected_naming_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut slices: Vec<Slice> = (0..3).map(|k| z_slice(A, k, k as f64, 8)).collect();
    slices.push(z_slice(A, 9, 9.0, 6));
    write_all(dir.path(), &slices);
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(matches!(err, DicomError::MixedGeometry { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("8×8") && msg.contains("6×6") && msg.contains(A),
        "{msg}"
    );
    assert!(msg.contains("f003.dcm"), "{msg}");
}

#[test]
fn mixed_pixel_spacing_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut slices: Vec<Slice> = (0..3).map(|k| z_slice(A, k, k as f64, 8)).collect();
    slices[1].pixel_spacing = Some([0.7, 0.7]);
    write_all(dir.path(), &slices);
    let err = load_series(dir.path(), None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("PixelSpacing") && msg.contains("0.7") && msg.contains("1\\1"),
        "{msg}"
    );
}

fn truncate(path: &Path, keep: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(keep).unwrap();
}

#[test]
fn truncated_file_among_good_ones_is_skipped_with_a_warning() {
    for ts in [
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let slices: Vec<Slice> = (0..5)
            .map(|k| {
                let mut s = z_slice(A, k, k as f64 * 2.0, 16);
                s.transfer_syntax = ts.into();
                s
            })
            .collect();
        write_all(dir.path(), &slices);
        let bad = dir.path().join("f002.dcm");
        let len = fs::metadata(&bad).unwrap().len();
        truncate(&bad, len - 100);
        // a header cut short too
        let bad2 = dir.path().join("f004.dcm");
        truncate(&bad2, 200);
        let s = load_series(dir.path(), None).unwrap();
        assert_eq!(s.z_mm(), &[0.0, 2.0, 6.0], "{ts}");
        assert!(
            has_warning(
                &s.warnings,
                &["skipped 2 unreadable", "f002.dcm", "f004.dcm"]
            ),
            "{ts}: {:?}",
            s.warnings
        );
        assert!(
            has_warning(&s.warnings, &["irregular"]),
            "the hole shows as a gap"
        );
        let ov = s.overview(2.0).unwrap();
        assert_eq!(ov.n_slices(), 3);
    }
}

#[test]
fn too_few_slices_left_after_skipping_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3).map(|k| z_slice(A, k, k as f64, 16)).collect();
    write_all(dir.path(), &slices);
    let bad = dir.path().join("f001.dcm");
    let len = fs::metadata(&bad).unwrap().len();
    truncate(&bad, len - 10);
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(
        matches!(err, DicomError::TooFewSlices { n: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("f001.dcm"), "{err}");
}

#[test]
fn mr_only_folder_says_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s = z_slice(A, k, k as f64, 4);
            s.sop_class = uids::MR_IMAGE_STORAGE.into();
            s.modality = "MR".into();
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(matches!(err, DicomError::NoCtSeries { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("only MR Image") && msg.contains("Modality MR"),
        "{msg}"
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
fn localizers_only_is_no_ct_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = z_slice(A, 1, 0.0, 4);
    s.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER".into();
    s.write(&dir.path().join("scout.dcm"));
    let err = load_series(dir.path(), None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("LOCALIZER"), "{msg}");
}

#[test]
fn empty_folder_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("empty_sub")).unwrap();
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(matches!(err, DicomError::EmptyFolder { .. }), "{err}");
    assert!(err.to_string().contains("empty folder"), "{err}");
}

#[test]
fn non_dicom_only_folder_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("readme.txt"), "hello").unwrap();
    fs::write(dir.path().join("image.png"), vec![0u8; 300]).unwrap();
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(matches!(err, DicomError::NoDicomFiles { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("readme.txt") && msg.contains("2 not DICOM"),
        "{msg}"
    );
}

#[test]
fn non_dicom_files_among_good_ones_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3).map(|k| z_slice(A, k, k as f64, 4)).collect();
    write_all(dir.path(), &slices);
    fs::write(dir.path().join("notes.txt"), "phantom scan").unwrap();
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.meta.n_slices, 3);
    assert!(
        has_warning(&s.warnings, &["non-DICOM", "notes.txt"]),
        "{:?}",
        s.warnings
    );
}

#[test]
fn missing_path_error() {
    let err = load_series(Path::new("/nonexistent/hu-red/dir"), None).unwrap_err();
    assert!(matches!(err, DicomError::PathNotFound { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/hu-red/dir"));
}

#[test]
fn single_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let s0 = z_slice(A, 1, 7.5, 4);
    let p = dir.path().join("one.dcm");
    s0.write(&p);
    let s = load_series(&p, None).unwrap();
    assert_eq!(s.z_mm(), &[7.5]);
    assert_eq!(s.slice_labels(), vec![p.display().to_string()]);
}

#[test]
fn missing_positions_fall_back_to_instance_number() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = [3, 1, 2]
        .iter()
        .map(|&n| {
            let mut s = z_slice(A, n, n as f64, 4);
            s.position = None;
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.z_mm(), &[2.5, 5.0, 7.5]);
    assert!(
        has_warning(&s.warnings, &["InstanceNumber"]),
        "{:?}",
        s.warnings
    );
    let st = s.full_resolution(&[0, 2]).unwrap();
    assert_eq!(st.hu[[0, 0, 0]], 10.0);
    assert_eq!(st.hu[[1, 0, 0]], 30.0);
}

#[test]
fn in_memory_objects_load_like_files() {
    let mut objects = Vec::new();
    for k in 0..4 {
        let s = z_slice(A, 4 - k, k as f64 * 3.0, 8);
        objects.push((format!("obj{k}"), s.object()));
    }
    objects.push((
        "rt".into(),
        non_image(
            uids::RT_STRUCTURE_SET_STORAGE,
            "RTSTRUCT",
            "1.2.826.0.1.3680043.8.498.40",
            "1.2.826.0.1.3680043.8.498.41",
        ),
    ));
    // an image object without its pixel data is left out with a warning
    let mut broken = z_slice(A, 9, 30.0, 8);
    broken.no_pixel_data = true;
    objects.push(("broken".into(), broken.object()));
    let s = load_series_from_objects(objects, None).unwrap();
    assert_eq!(s.z_mm(), &[0.0, 3.0, 6.0, 9.0]);
    assert!(
        has_warning(&s.warnings, &["broken", "no Pixel Data"]),
        "{:?}",
        s.warnings
    );
    let ov = s.overview(2.0).unwrap();
    assert_eq!(ov.factor, 2);
    assert_eq!(ov.hu[[3, 0, 0]], 90.0);
    assert!(matches!(
        load_series_from_objects(Vec::new(), None),
        Err(DicomError::NoDicomFiles { .. })
    ));
}

fn enhanced_frames(n: usize) -> Vec<common_dicom::Frame> {
    // storage order scrambled relative to z; each frame's values tell its z; frame 2 is a
    // localizer frame and must be left out
    let zs = [6.0, 0.0, 99.0, 3.0, 9.0];
    zs.iter()
        .enumerate()
        .map(|(k, &z)| common_dicom::Frame {
            z,
            intercept: if k % 2 == 0 { -1024.0 } else { 0.0 },
            slope: 1.0,
            in_stack_position: k as i64 + 1,
            frame_type: if z == 99.0 {
                "ORIGINAL\\PRIMARY\\LOCALIZER\\NONE".into()
            } else {
                "ORIGINAL\\PRIMARY\\AXIAL\\NONE".into()
            },
            stored: (0..n * n)
                .map(|p| {
                    let hu = if p == 0 {
                        -2000
                    } else {
                        (z * 10.0) as i64 + (p % 7) as i64
                    };
                    if p == 0 {
                        -2000 // padding
                    } else if k % 2 == 0 {
                        hu + 1024
                    } else {
                        hu
                    }
                })
                .collect(),
        })
        .collect()
}

#[test]
fn enhanced_ct_frames_are_sorted_and_rescaled_per_frame() {
    let n = 8;
    let frames = enhanced_frames(n);
    let obj = common_dicom::enhanced_ct(A, "1.2.826.0.1.3680043.8.498.60", n, n, &frames);
    // from a file and from memory
    let dir = tempfile::tempdir().unwrap();
    obj.write_to_file(dir.path().join("enhanced.dcm")).unwrap();
    let from_file = load_series(dir.path(), None).unwrap();
    let from_mem = load_series_from_objects(vec![("enh".into(), obj)], None).unwrap();
    for s in [&from_file, &from_mem] {
        assert_eq!(
            s.z_mm(),
            &[0.0, 3.0, 6.0, 9.0],
            "localizer frame left out, sorted"
        );
        assert_eq!(s.meta.sop_class_uid, uids::ENHANCED_CT_IMAGE_STORAGE);
        assert_eq!(s.meta.pixel_spacing, [0.5, 0.5]);
        assert_eq!(s.meta.acquisition.slice_thickness, Some(1.5));
        assert_eq!(s.meta.acquisition.kvp, Some(140.0));
        assert_eq!(
            s.meta.acquisition.reconstruction_kernel.as_deref(),
            Some("FC17")
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let st = s.full_resolution(&[0, 1, 2, 3]).unwrap();
        for (k, z) in st.z_mm.iter().enumerate() {
            assert!(st.hu[[k, 0, 0]].is_nan(), "padding");
            for p in 1..n * n {
                let want = (z * 10.0) as f32 + (p % 7) as f32;
                assert_eq!(st.hu[[k, p / n, p % n]], want, "z {z} pixel {p}");
            }
        }
        let ov = s.overview(1.0).unwrap();
        assert_eq!(ov.hu.shape(), &[4, 4, 4]);
    }
    let labels = from_file.slice_labels();
    assert!(labels[0].ends_with("enhanced.dcm [frame 2]"), "{labels:?}");
}

#[test]
fn enhanced_and_classic_series_compete_on_slice_count() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4;
    common_dicom::enhanced_ct(A, "1.2.826.0.1.3680043.8.498.61", n, n, &enhanced_frames(n))
        .write_to_file(dir.path().join("enhanced.dcm"))
        .unwrap();
    let slices: Vec<Slice> = (0..3).map(|k| z_slice(B, k, k as f64, n)).collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert_eq!(s.meta.series_instance_uid, A, "4 frames beat 3 slices");
    assert!(
        has_warning(&s.warnings, &[B, "3 CT image(s)"]),
        "{:?}",
        s.warnings
    );
}

#[test]
fn non_axial_only_is_refused_unless_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s = z_slice(A, k, 0.0, 4);
            // sagittal: rows along y, columns along -z; normal along x
            s.orientation = Some([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
            s.position = Some([k as f64, 0.0, 0.0]);
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(matches!(err, DicomError::NoAxialSeries { .. }), "{err}");
    assert!(
        err.to_string().contains("sagittal") && err.to_string().contains(A),
        "{err}"
    );
    let s = load_series(dir.path(), Some(A)).unwrap();
    // normal = (0,1,0) × (0,0,-1) = (-1,0,0): positions along it are -x
    assert_eq!(s.z_mm(), &[-2.0, -1.0, 0.0]);
    assert!(has_warning(&s.warnings, &["not axial"]), "{:?}", s.warnings);
}

#[test]
fn undecodable_transfer_syntax_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s = z_slice(A, k, k as f64, 4);
            s.transfer_syntax = "1.2.840.10008.1.2.4.100".into(); // MPEG2: no decoder
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let err = load_series(dir.path(), None).unwrap_err();
    assert!(matches!(err, DicomError::BadSeries { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("1.2.840.10008.1.2.4.100") && msg.contains("cannot decode"),
        "{msg}"
    );
}

#[test]
fn lossy_compressed_slices_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let slices: Vec<Slice> = (0..3)
        .map(|k| {
            let mut s = z_slice(A, k, k as f64, 4);
            s.lossy = k == 1;
            s
        })
        .collect();
    write_all(dir.path(), &slices);
    let s = load_series(dir.path(), None).unwrap();
    assert!(
        has_warning(&s.warnings, &["lossy", "f001.dcm"]),
        "{:?}",
        s.warnings
    );
}

// ---- files without the DICOM Part-10 header (raw data sets, as GE and others export) ----

/// A small simulated CIRS series written by `hu_red::simulate`: Part-10 (`NNNN.dcm`) or raw data
/// sets (`IMNNNN`) in `syntax`; padding outside the reconstruction circle and varying intercepts
/// so that the HU comparison covers rescale and padding.
fn simulated(
    dir: &Path,
    syntax: hu_red::simulate::Syntax,
    part10: bool,
    n: usize,
) -> Vec<std::path::PathBuf> {
    let set = hu_red::phantom::PhantomSet::builtin();
    let params = hu_red::simulate::SimParams {
        matrix: 96,
        pixel_mm: 4.0,
        n_slices: n,
        recon_circle: true,
        vary_intercept: true,
        transfer_syntax: syntax,
        part10,
        ..Default::default()
    };
    let (mut paths, _) =
        hu_red::simulate::render_to_dir(&params, set.get("cirs062").unwrap(), dir).unwrap();
    paths.pop(); // truth.json
    paths
}

fn file_name(label: &str) -> String {
    Path::new(label)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn raw_series_loads_like_its_part10_version() {
    use hu_red::simulate::Syntax;
    for (syntax, how) in [
        (Syntax::Implicit, "raw implicit VR little endian"),
        (Syntax::Explicit, "raw explicit VR little endian"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let p10_dir = tmp.path().join("p10");
        let raw_dir = tmp.path().join("raw");
        simulated(&p10_dir, syntax, true, 6);
        let raw = simulated(&raw_dir, syntax, false, 6);
        // names that do not follow z: the order must come from the positions
        for (k, path) in raw.iter().enumerate() {
            fs::rename(path, raw_dir.join(format!("I{}", 700 - k))).unwrap();
        }
        let a = load_series(&p10_dir, None).unwrap();
        let b = load_series(&raw_dir, None).unwrap();
        assert_eq!(a.z_mm(), b.z_mm(), "{syntax:?}");
        assert_eq!(a.meta.series_instance_uid, b.meta.series_instance_uid);
        assert_eq!(a.meta.transfer_syntax, b.meta.transfer_syntax);
        assert_eq!(b.meta.transfer_syntax, syntax.uid());
        assert_eq!((b.meta.rows, b.meta.columns, b.meta.n_slices), (96, 96, 6));
        // sorted the same: slice k of the Part-10 series (000k.dcm) is raw file I(701-k)
        let names: Vec<String> = b.slice_labels().iter().map(|l| file_name(l)).collect();
        assert_eq!(names, ["I700", "I699", "I698", "I697", "I696", "I695"]);
        // the same HU volume, exactly (NaN padding included)
        let all: Vec<usize> = (0..6).collect();
        let (ha, hb) = (
            a.full_resolution(&all).unwrap(),
            b.full_resolution(&all).unwrap(),
        );
        assert_hu_eq(
            hb.hu.as_slice().unwrap(),
            ha.hu.as_slice().unwrap(),
            &format!("{syntax:?} full resolution"),
        );
        assert!(hb.hu.iter().any(|v| v.is_nan()), "padding present");
        let (oa, ob) = (a.overview(8.0).unwrap(), b.overview(8.0).unwrap());
        assert_hu_eq(
            ob.hu.as_slice().unwrap(),
            oa.hu.as_slice().unwrap(),
            "overview",
        );
        // one warning names the raw files; the Part-10 series has none of it
        assert!(
            has_warning(
                &b.warnings,
                &[
                    "6 file(s) have no DICOM Part-10 header",
                    how,
                    "I695",
                    "and 3 more",
                    "export settings"
                ]
            ),
            "{:?}",
            b.warnings
        );
        assert_eq!(
            b.warnings.iter().filter(|w| w.contains("Part-10")).count(),
            1
        );
        assert!(
            !a.warnings.iter().any(|w| w.contains("Part-10")),
            "{:?}",
            a.warnings
        );
        assert_eq!(a.warnings.len() + 1, b.warnings.len(), "{:?}", b.warnings);
    }
}

#[test]
fn raw_files_among_other_files_load_only_the_dicom_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulated(dir, hu_red::simulate::Syntax::Implicit, false, 4); // IM0001.. and truth.json
    fs::write(dir.join("README"), "CIRS 062 scan, 2025-01-01\n").unwrap();
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png.extend((0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    fs::write(dir.join("preview"), png).unwrap();
    // bytes that start like a group 0008 element but are no data set
    fs::write(
        dir.join("junk"),
        [0x08, 0x00, 0x05, 0x00, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2],
    )
    .unwrap();
    let s = load_series(dir, None).unwrap();
    assert_eq!(s.meta.n_slices, 4);
    let names: Vec<String> = s.slice_labels().iter().map(|l| file_name(l)).collect();
    assert_eq!(names, ["IM0001", "IM0002", "IM0003", "IM0004"]);
    assert!(
        has_warning(
            &s.warnings,
            &[
                "skipped 4 non-DICOM",
                "truth.json",
                "README",
                "preview",
                "junk"
            ]
        ),
        "{:?}",
        s.warnings
    );
    assert!(
        has_warning(
            &s.warnings,
            &[
                "4 file(s) have no DICOM Part-10 header",
                "IM0001; IM0002; IM0003; and 1 more"
            ]
        ),
        "{:?}",
        s.warnings
    );
    // without the DICOM files, nothing is taken for DICOM
    for k in 1..=4 {
        fs::remove_file(dir.join(format!("IM{k:04}"))).unwrap();
    }
    let err = load_series(dir, None).unwrap_err();
    assert!(matches!(err, DicomError::NoDicomFiles { .. }), "{err}");
    assert!(err.to_string().contains("4 not DICOM"), "{err}");
}

#[test]
fn truncated_raw_file_among_good_ones_is_skipped_with_a_warning() {
    for syntax in [
        hu_red::simulate::Syntax::Implicit,
        hu_red::simulate::Syntax::Explicit,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let files = simulated(dir, syntax, false, 5);
        let len = fs::metadata(&files[2]).unwrap().len();
        truncate(&files[2], len - 100);
        // a header cut short too
        truncate(&files[4], 200);
        let s = load_series(dir, None).unwrap();
        assert_eq!(s.meta.n_slices, 3, "{syntax:?}");
        assert!(
            has_warning(
                &s.warnings,
                &["skipped 2 unreadable", "IM0003", "truncated", "IM0005"]
            ),
            "{syntax:?}: {:?}",
            s.warnings
        );
        assert!(
            has_warning(&s.warnings, &["irregular"]),
            "the hole shows as a gap: {:?}",
            s.warnings
        );
        assert!(
            has_warning(&s.warnings, &["3 file(s) have no DICOM Part-10 header"]),
            "{:?}",
            s.warnings
        );
        assert_eq!(s.overview(8.0).unwrap().n_slices(), 3);
    }
}

#[test]
fn dcmtk_reads_the_raw_files_as_bare_data_sets() {
    let tmp = tempfile::tempdir().unwrap();
    for (syntax, flag) in [
        (hu_red::simulate::Syntax::Implicit, "--read-xfer-implicit"),
        (hu_red::simulate::Syntax::Explicit, "--read-xfer-little"),
    ] {
        let dir = tmp.path().join(format!("{syntax:?}"));
        let files = simulated(&dir, syntax, false, 2);
        let run = |args: &[&str]| {
            std::process::Command::new("dcmdump")
                .args(args)
                .arg(&files[0])
                .output()
                .expect("DCMTK's dcmdump is required for this test (apt-get install -y dcmtk)")
        };
        // a data set in the given transfer syntax, read by dcmdump without complaint
        let o = run(&["--read-dataset", flag]);
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{syntax:?}: {err}");
        assert!(
            !err.contains("E:") && !err.contains("W:"),
            "{syntax:?}: {err}"
        );
        for needle in [
            "SOPInstanceUID",
            "Rows",
            "PixelData",
            "# 18432, 1 PixelData",
        ] {
            assert!(out.contains(needle), "{syntax:?}: {needle} missing:\n{out}");
        }
        // and it is no Part-10 file: no file meta information header
        let o = run(&["--read-file-only"]);
        assert!(!o.status.success(), "{syntax:?}: read as a Part-10 file");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("meta information header missing"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
