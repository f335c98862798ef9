//! Every decoder path on real encoded files: CT slices written by the test (signed and unsigned
//! storage, negative HU, padding) and a real CT slice from pydicom-data, compressed with DCMTK
//! (JPEG lossless process 14 and SV1, JPEG-LS lossless, RLE, deflate, implicit/explicit VR), and
//! pydicom-data's JPEG 2000 lossless CT slice; the decoded HU must equal the uncompressed source
//! exactly.
//!
//! Needs DCMTK (`dcmcjpeg`, `dcmcjpls`, `dcmcrle`, `dcmconv`): without it the tests FAIL (CI
//! installs it). The pydicom-data wheel is fetched from PyPI with pip on first use, checked
//! against a pinned sha256 and cached (`$HURED_TESTDATA`, else `$HOME/.cache/hu-red-testdata`).

use crate::common;
use crate::common_dicom;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common_dicom::{assert_hu_eq, Slice};
use dicom_dictionary_std::uids;
use hu_red::analysis::HuStack;
use hu_red::dicom::load_series;

/// pydicom-data 1.0.0 (PyPI wheel): real test files of the pydicom project.
const PYDICOM_DATA_WHEEL: &str = "pydicom_data-1.0.0-py3-none-any.whl";
const PYDICOM_DATA_SHA256: &str =
    "622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637";
/// Members we use: a 512² CT slice, uncompressed and JPEG 2000 lossless (same pixels), and an
/// Enhanced CT object.
const MEMBERS: [&str; 3] = [
    "data_store/data/693_UNCR.dcm",
    "data_store/data/693_J2KR.dcm",
    "data_store/data/eCT_Supplemental.dcm",
];

/// One DCMTK transcoding: tool, arguments (before input and output), resulting transfer syntax.
struct Codec {
    name: &'static str,
    tool: &'static str,
    args: &'static [&'static str],
    ts: &'static str,
}

const CODECS: &[Codec] = &[
    Codec {
        name: "implicit VR LE",
        tool: "dcmconv",
        args: &["+ti"],
        ts: uids::IMPLICIT_VR_LITTLE_ENDIAN,
    },
    Codec {
        name: "explicit VR LE",
        tool: "dcmconv",
        args: &["+te"],
        ts: uids::EXPLICIT_VR_LITTLE_ENDIAN,
    },
    Codec {
        name: "deflate",
        tool: "dcmconv",
        args: &["+td"],
        ts: uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    },
    Codec {
        name: "JPEG lossless SV1 (process 14, selection value 1)",
        tool: "dcmcjpeg",
        args: &["+e1"],
        ts: uids::JPEG_LOSSLESS_SV1,
    },
    Codec {
        name: "JPEG lossless process 14 (selection value 6)",
        tool: "dcmcjpeg",
        args: &["+el", "+sv", "6"],
        ts: uids::JPEG_LOSSLESS,
    },
    Codec {
        name: "JPEG-LS lossless",
        tool: "dcmcjpls",
        args: &["+el"],
        ts: uids::JPEGLS_LOSSLESS,
    },
    Codec {
        name: "RLE lossless",
        tool: "dcmcrle",
        args: &[],
        ts: uids::RLE_LOSSLESS,
    },
];

fn dcmtk(tool: &str, args: &[&str], input: &Path, output: &Path) {
    let out = Command::new(tool)
        .args(args)
        .arg(input)
        .arg(output)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run DCMTK's {tool}: {e}. Install DCMTK (Debian/Ubuntu: apt-get install dcmtk); \
                 the decoder tests need it"
            )
        });
    assert!(
        out.status.success(),
        "{tool} {args:?} {} failed ({}): {}{}",
        input.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Transcode every file of `src` into a new folder with `codec`.
fn transcode(src: &Path, codec: &Codec, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        dcmtk(
            codec.tool,
            codec.args,
            &p,
            &dst.join(p.file_name().unwrap()),
        );
    }
}

fn all_slices(dir: &Path) -> (HuStack, String) {
    let s = load_series(dir, None).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let idx: Vec<usize> = (0..s.meta.n_slices).collect();
    (
        s.full_resolution(&idx).unwrap(),
        s.meta.transfer_syntax.clone(),
    )
}

fn check_codecs_against(src_dir: &Path, expected: Option<&[Vec<f32>]>, work: &Path, what: &str) {
    let (reference, ts) = all_slices(src_dir);
    if let Some(expected) = expected {
        for (k, want) in expected.iter().enumerate() {
            let got: Vec<f32> = reference
                .hu
                .index_axis(ndarray::Axis(0), k)
                .iter()
                .copied()
                .collect();
            assert_hu_eq(&got, want, &format!("{what}: source ({ts}) slice {k}"));
        }
    }
    for codec in CODECS {
        let dst = work.join(codec.name.replace([' ', '(', ')', ','], "_"));
        transcode(src_dir, codec, &dst);
        let (got, ts) = all_slices(&dst);
        assert_eq!(
            ts, codec.ts,
            "{what}: {} wrote another transfer syntax",
            codec.name
        );
        assert_eq!(got.z_mm, reference.z_mm, "{what}: {}", codec.name);
        assert_hu_eq(
            got.hu.as_slice().unwrap(),
            reference.hu.as_slice().unwrap(),
            &format!("{what}: {}", codec.name),
        );
        // and the overview path decodes the same way
        let s = load_series(&dst, None).unwrap();
        let ov = s.overview(2.0).unwrap();
        let s_ref = load_series(src_dir, None).unwrap();
        let ov_ref = s_ref.overview(2.0).unwrap();
        assert_hu_eq(
            ov.hu.as_slice().unwrap(),
            ov_ref.hu.as_slice().unwrap(),
            &format!("{what}: {} overview", codec.name),
        );
    }
}

/// A deterministic pseudo-random stored image (noisy, so that the codecs have real work).
fn noisy(seed: u64, lo: i64, hi: i64) -> impl Fn(usize, usize) -> i64 {
    move |r, c| {
        let mut x = seed ^ ((r as u64) << 32) ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let span = (hi - lo + 1) as u64;
        // smooth structure plus noise
        let base = ((r * 7 + c * 3) % 64) as i64 * (hi - lo) / 80;
        lo + (base + (x % (span / 5).max(1)) as i64).min(hi - lo)
    }
}

fn synthetic(dir: &Path, signed: bool) -> Vec<Vec<f32>> {
    let n = 64;
    let mut expected = Vec::new();
    for k in 0..3i64 {
        let series = if signed {
            "1.2.826.0.1.3680043.8.498.100"
        } else {
            "1.2.826.0.1.3680043.8.498.200"
        };
        let mut s = Slice::ct(series, k + 1, k as f64 * 2.0, n, n, 0);
        if signed {
            // stored = HU (intercept 0), -1100..3000, padding -2000 around the "circle"
            s = s.with_stored(noisy(k as u64 + 1, -1100, 3000));
            s.padding = Some(-2000);
        } else {
            // 12-bit unsigned, intercept -1024: 0 (padding, -1024 HU) .. 4095
            s = s.with_stored(noisy(k as u64 + 11, 0, 4095));
            s.signed = false;
            s.bits_stored = 12;
            s.intercept = Some(-1024.0);
            s.padding = Some(0);
        }
        let pad = s.padding.unwrap_or(0);
        for r in 0..n {
            for c in 0..n {
                let (dy, dx) = (r as f64 - 31.5, c as f64 - 31.5);
                if dy * dy + dx * dx > 30.0 * 30.0 {
                    s.stored[r * n + c] = pad;
                }
            }
        }
        s.write(&dir.join(format!("ct{k}.dcm")));
        expected.push(s.expected_hu());
    }
    // the source must hold negative HU and NaN (padding) for the test to mean something
    assert!(expected.iter().flatten().any(|v| *v < -500.0));
    assert!(expected.iter().flatten().any(|v| v.is_nan()));
    expected
}

#[test]
fn dcmtk_codecs_signed_ct() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let expected = synthetic(&src, true);
    check_codecs_against(&src, Some(&expected), work.path(), "signed 16-bit CT");
}

#[test]
fn dcmtk_codecs_unsigned_ct() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let expected = synthetic(&src, false);
    check_codecs_against(&src, Some(&expected), work.path(), "unsigned 12-bit CT");
}

static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// The three pydicom-data members in the cache, fetched (pip, PyPI) and checked when missing.
fn pydicom_data() -> PathBuf {
    let _g = FETCH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let cache = common::testdata_dir();
    let out = cache.join("pydicom-data-1.0.0");
    let marker = out.join(".complete");
    if marker.is_file() && MEMBERS.iter().all(|m| out.join(file_name(m)).is_file()) {
        return out;
    }
    fs::create_dir_all(&cache)
        .unwrap_or_else(|e| panic!("cannot create the test-data cache {}: {e}", cache.display()));
    let wheel = cache.join(PYDICOM_DATA_WHEEL);
    if !wheel.is_file() || common::sha256_file(&wheel) != PYDICOM_DATA_SHA256 {
        let tmp = tempfile::Builder::new()
            .prefix(".pip-")
            .tempdir_in(&cache)
            .unwrap();
        let st = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
                "pydicom-data==1.0.0",
                "-d",
            ])
            .arg(tmp.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 -m pip (install python3 and pip): {e}"));
        assert!(
            st.status.success(),
            "pip download pydicom-data==1.0.0 failed (needs network access to PyPI): {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let got = tmp.path().join(PYDICOM_DATA_WHEEL);
        let sum = common::sha256_file(&got);
        assert_eq!(
            sum, PYDICOM_DATA_SHA256,
            "PyPI served a pydicom-data 1.0.0 wheel with another sha256: do not trust it"
        );
        fs::rename(&got, &wheel).unwrap();
    }
    let stage = tempfile::Builder::new()
        .prefix(".pydicom-data-")
        .tempdir_in(&cache)
        .unwrap();
    let mut script = String::from("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\n");
    for m in MEMBERS {
        script.push_str(&format!(
            "open(sys.argv[2] + '/{}', 'wb').write(z.read('{m}'))\n",
            file_name(m)
        ));
    }
    let st = Command::new("python3")
        .args(["-c", &script])
        .arg(&wheel)
        .arg(stage.path())
        .output()
        .expect("python3");
    assert!(
        st.status.success(),
        "cannot extract from {}: {}",
        wheel.display(),
        String::from_utf8_lossy(&st.stderr)
    );
    fs::write(stage.path().join(".complete"), PYDICOM_DATA_SHA256).unwrap();
    let staged = stage.keep();
    if fs::rename(&staged, &out).is_err() {
        if !marker.is_file() {
            fs::remove_dir_all(&out).ok();
            fs::rename(&staged, &out).unwrap();
        } else {
            fs::remove_dir_all(&staged).ok();
        }
    }
    out
}

fn file_name(member: &str) -> &str {
    member.rsplit('/').next().unwrap_or(member)
}

/// One file alone in a fresh folder (load_series takes folders or files; a folder lets DCMTK
/// outputs sit next to it).
fn single(src: &Path, dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let p = dir.join(src.file_name().unwrap());
    fs::copy(src, &p).unwrap();
    dir.to_path_buf()
}

#[test]
fn jpeg2000_lossless_real_ct_equals_uncompressed() {
    let data = pydicom_data();
    let unc = load_series(&data.join("693_UNCR.dcm"), None).unwrap();
    let j2k = load_series(&data.join("693_J2KR.dcm"), None).unwrap();
    assert_eq!(j2k.meta.transfer_syntax, uids::JPEG2000_LOSSLESS);
    assert_eq!(unc.meta.transfer_syntax, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let a = unc.full_resolution(&[0]).unwrap();
    let b = j2k.full_resolution(&[0]).unwrap();
    assert_eq!(a.hu.shape(), &[1, 512, 512]);
    let hu = a.hu.as_slice().unwrap();
    // a real CT slice: padding (-2000 stored) masked, air, soft tissue and bone present
    assert!(hu.iter().filter(|v| v.is_nan()).count() > 1000);
    assert!(hu.iter().any(|v| (-1100.0..-900.0).contains(v)));
    assert!(hu.iter().any(|v| *v > 300.0));
    assert_hu_eq(b.hu.as_slice().unwrap(), hu, "693 J2KR vs UNCR");
}

#[test]
fn dcmtk_codecs_real_ct_slice() {
    let data = pydicom_data();
    let work = tempfile::tempdir().unwrap();
    let src = single(&data.join("693_UNCR.dcm"), &work.path().join("src"));
    check_codecs_against(&src, None, work.path(), "693_UNCR (real CT, signed 14-bit)");
}

/// Pydicom-data's Enhanced CT (2 frames 512², unsigned, intercept -1024 in the shared
/// functional groups, positions per frame, orientation flipped in x): frames sorted along the
/// normal and decoded like DCMTK's raw dump of the pixel data (`dcmdump +W`).
#[test]
fn real_enhanced_ct_frames_match_dcmtk_raw_pixels() {
    let data = pydicom_data();
    let file = data.join("eCT_Supplemental.dcm");
    let s = load_series(&file, None).unwrap();
    assert_eq!(s.meta.sop_class_uid, uids::ENHANCED_CT_IMAGE_STORAGE);
    assert_eq!(s.n_slices(), 2);
    // IOP (-1,0,0)/(0,1,0): normal (0,0,-1); frame 1 at z -159, frame 2 at z -149
    assert_eq!(s.z_mm(), &[149.0, 159.0]);
    assert!(
        s.slice_labels()[0].ends_with("[frame 2]"),
        "{:?}",
        s.slice_labels()
    );
    assert_eq!(s.meta.pixel_spacing, [0.388672, 0.388672]);
    assert_eq!(s.meta.acquisition.slice_thickness, Some(10.0));
    let st = s.full_resolution(&[0, 1]).unwrap();

    let work = tempfile::tempdir().unwrap();
    let out = Command::new("dcmdump")
        .arg("+W")
        .arg(work.path())
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run DCMTK's dcmdump: {e}; install DCMTK"));
    assert!(out.status.success(), "dcmdump +W failed");
    let raw_path = fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "raw"))
        .expect("dcmdump wrote no .raw file");
    let raw = fs::read(raw_path).unwrap();
    assert_eq!(raw.len(), 2 * 512 * 512 * 2);
    let frame_hu = |frame: usize| -> Vec<f32> {
        raw[frame * 512 * 512 * 2..(frame + 1) * 512 * 512 * 2]
            .chunks_exact(2)
            .map(|b| {
                let hu = u16::from_le_bytes([b[0], b[1]]) as f32 - 1024.0;
                if hu < -1500.0 {
                    f32::NAN
                } else {
                    hu
                }
            })
            .collect()
    };
    let got = |k: usize| -> Vec<f32> {
        st.hu
            .index_axis(ndarray::Axis(0), k)
            .iter()
            .copied()
            .collect()
    };
    // sorted slice 0 is storage frame 2 (index 1)
    assert_hu_eq(&got(0), &frame_hu(1), "eCT sorted slice 0 = frame 2");
    assert_hu_eq(&got(1), &frame_hu(0), "eCT sorted slice 1 = frame 1");
    assert!(got(0).iter().any(|v| *v > 0.0) && got(0).iter().any(|v| *v < -900.0));
}

/// A small series from `hu-red simulate` (the project's own generator): a Catphan slab with
/// noise, a reconstruction circle with padding and the given storage.
fn simulated(dir: &Path, storage: hu_red::simulate::PixelRepresentation, vary: bool) {
    use hu_red::simulate::{render_to_dir, SimParams};
    let set = hu_red::phantom::PhantomSet::builtin();
    let phantom = set.get("catphan_504").unwrap();
    let params = SimParams {
        matrix: 160,
        pixel_mm: 1.5,
        n_slices: 3,
        slice_thickness_mm: 2.0,
        recon_circle: true,
        catphan_modules: false,
        pixel_representation: storage,
        rescale_intercept: -1024.0,
        vary_intercept: vary,
        noise_sigma_hu: 15.0,
        seed: 7,
        ..SimParams::default()
    };
    let (paths, _truth) = render_to_dir(&params, phantom, dir).unwrap();
    // keep the DICOM files only (the DCMTK loop transcodes every file of the folder)
    for p in paths {
        if p.extension().and_then(|e| e.to_str()) != Some("dcm") {
            fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn dcmtk_codecs_simulated_series() {
    use hu_red::simulate::PixelRepresentation;
    for (storage, vary) in [
        (PixelRepresentation::Signed, false),
        (PixelRepresentation::Unsigned, true),
    ] {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        simulated(&src, storage, vary);
        let (reference, _) = all_slices(&src);
        let hu = reference.hu.as_slice().unwrap();
        assert!(hu.iter().any(|v| v.is_nan()), "padding outside the circle");
        assert!(hu.iter().any(|v| *v < -900.0), "air");
        assert!(hu.iter().any(|v| *v > 800.0), "teflon");
        check_codecs_against(&src, None, work.path(), &format!("simulated {storage:?}"));
    }
}
