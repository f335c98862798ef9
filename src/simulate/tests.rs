use super::*;
use crate::phantom::PhantomSet;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

fn def(id: &str) -> PhantomDef {
    PhantomSet::builtin().get(id).unwrap().clone()
}

/// Small, fast series: 2.5 mm pixels over a 400 mm field.
fn small() -> SimParams {
    SimParams {
        pixel_mm: 2.5,
        matrix: 160,
        n_slices: 5,
        ..SimParams::default()
    }
}

fn f64_of(obj: &InMemDicomObject, tag: dicom_core::Tag) -> f64 {
    obj.element(tag).unwrap().value().to_float64().unwrap()
}

fn int_of(obj: &InMemDicomObject, tag: dicom_core::Tag) -> i64 {
    obj.element(tag).unwrap().value().to_int::<i64>().unwrap()
}

/// Decode one object's pixels to HU by hand (raw words, PixelRepresentation, rescale); padding
/// → NaN. Also returns the raw stored values.
fn decode(obj: &InMemDicomObject) -> (Vec<f64>, Vec<i32>) {
    let signed = int_of(obj, tags::PIXEL_REPRESENTATION) == 1;
    let slope = f64_of(obj, tags::RESCALE_SLOPE);
    let intercept = f64_of(obj, tags::RESCALE_INTERCEPT);
    let pad = obj
        .get(tags::PIXEL_PADDING_VALUE)
        .map(|e| e.value().to_int::<i32>().unwrap());
    let bytes = obj
        .element(tags::PIXEL_DATA)
        .unwrap()
        .value()
        .to_bytes()
        .unwrap()
        .into_owned();
    let raw: Vec<i32> = bytes
        .chunks_exact(2)
        .map(|b| {
            let w = u16::from_le_bytes([b[0], b[1]]);
            if signed {
                w as i16 as i32
            } else {
                w as i32
            }
        })
        .collect();
    let hu = raw
        .iter()
        .map(|&s| {
            if Some(s) == pad {
                f64::NAN
            } else {
                s as f64 * slope + intercept
            }
        })
        .collect();
    (hu, raw)
}

/// Mean and count of the pixels whose centre lies within `r` mm of (x, y).
fn disc_mean(hu: &[f64], truth: &Truth, x: f64, y: f64, r: f64) -> (f64, usize) {
    let (mut s, mut n) = (0.0, 0usize);
    for row in 0..truth.rows {
        for col in 0..truth.cols {
            let dx = col as f64 * truth.pixel_mm - x;
            let dy = row as f64 * truth.pixel_mm - y;
            if dx * dx + dy * dy <= r * r {
                s += hu[row * truth.cols + col];
                n += 1;
            }
        }
    }
    (s / n as f64, n)
}

fn value_at(hu: &[f64], truth: &Truth, x: f64, y: f64) -> f64 {
    let col = (x / truth.pixel_mm).round() as usize;
    let row = (y / truth.pixel_mm).round() as usize;
    hu[row * truth.cols + col]
}

/// HU as stored with the default storage (intercept −1024, slope 1) and decoded again.
fn q(v: f64) -> f32 {
    ((v + 1024.0).round() - 1024.0) as f32
}

fn central_insert_slice(truth: &Truth) -> usize {
    let zc = 0.5 * (truth.insert_z_range_mm[0] + truth.insert_z_range_mm[1]);
    truth
        .slices
        .iter()
        .filter(|s| s.insert_fraction >= 1.0)
        .min_by(|a, b| (a.z_mm - zc).abs().total_cmp(&(b.z_mm - zc).abs()))
        .expect("a slice fully in the insert region")
        .index
}

#[test]
fn same_seed_same_series_other_seed_differs() {
    let d = def("cirs062");
    let p = SimParams {
        rotation_deg: 12.0,
        ..small()
    };
    let a = render(&p, &d).unwrap();
    let b = render(&p, &d).unwrap();
    assert_eq!(a.truth, b.truth);
    for (x, y) in a.objects.iter().zip(&b.objects) {
        assert_eq!(decode(x).1, decode(y).1);
        assert_eq!(
            x.element(tags::SOP_INSTANCE_UID).unwrap().to_str().unwrap(),
            y.element(tags::SOP_INSTANCE_UID).unwrap().to_str().unwrap()
        );
    }
    let c = render(
        &SimParams {
            seed: 2,
            ..p.clone()
        },
        &d,
    )
    .unwrap();
    assert_ne!(decode(&a.objects[2]).1, decode(&c.objects[2]).1);
    assert_ne!(a.truth.series_uid, c.truth.series_uid);
    assert_ne!(a.truth.study_uid, c.truth.study_uid);
    // same seed, another reconstruction: same study and frame of reference, new series
    let e = render(
        &SimParams {
            slice_thickness_mm: 3.0,
            ..p
        },
        &d,
    )
    .unwrap();
    assert_eq!(a.truth.study_uid, e.truth.study_uid);
    assert_eq!(
        a.truth.frame_of_reference_uid,
        e.truth.frame_of_reference_uid
    );
    assert_ne!(a.truth.series_uid, e.truth.series_uid);
}

#[test]
fn uids_and_geometry_attributes_are_consistent() {
    let d = def("catphan_504");
    let s = render(
        &SimParams {
            series_uid: Some("1.2.826.0.1.3680043.10.1234.42".into()),
            ..small()
        },
        &d,
    )
    .unwrap();
    let t = &s.truth;
    assert_eq!(t.series_uid, "1.2.826.0.1.3680043.10.1234.42");
    let mut sops = std::collections::BTreeSet::new();
    for (i, o) in s.objects.iter().enumerate() {
        let sop = o
            .element(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(is_valid_uid(&sop) && sop.starts_with("2.25."));
        assert_eq!(o.meta().media_storage_sop_instance_uid(), sop);
        assert_eq!(
            o.meta().media_storage_sop_class_uid(),
            encode::CT_IMAGE_STORAGE
        );
        assert_eq!(o.meta().transfer_syntax(), "1.2.840.10008.1.2.1");
        assert!(sops.insert(sop.clone()));
        assert_eq!(sop, t.slices[i].sop_instance_uid);
        for (tag, want) in [
            (tags::STUDY_INSTANCE_UID, &t.study_uid),
            (tags::SERIES_INSTANCE_UID, &t.series_uid),
            (tags::FRAME_OF_REFERENCE_UID, &t.frame_of_reference_uid),
        ] {
            assert_eq!(o.element(tag).unwrap().to_str().unwrap(), want.as_str());
        }
        let ipp = o
            .element(tags::IMAGE_POSITION_PATIENT)
            .unwrap()
            .value()
            .to_multi_float64()
            .unwrap();
        assert!((ipp[0] + 159.0 * 2.5 / 2.0).abs() < 1e-6);
        assert!((ipp[2] - t.slices[i].z_mm).abs() < 1e-6);
        assert_eq!(int_of(o, tags::INSTANCE_NUMBER), i as i64 + 1);
        assert_eq!(int_of(o, tags::ROWS), 160);
        assert_eq!(int_of(o, tags::BITS_STORED), 16);
        assert_eq!(o.element(tags::MODALITY).unwrap().to_str().unwrap(), "CT");
        assert_eq!(
            o.element(tags::IMAGE_TYPE)
                .unwrap()
                .value()
                .to_multi_str()
                .unwrap()
                .join("\\"),
            "ORIGINAL\\PRIMARY\\AXIAL"
        );
    }
    for u in [&t.study_uid, &t.frame_of_reference_uid] {
        assert!(is_valid_uid(u), "{u}");
    }
    let bad = render(
        &SimParams {
            series_uid: Some("1.02.3".into()),
            ..small()
        },
        &d,
    );
    assert!(matches!(
        bad,
        Err(SimError::Param {
            name: "series_uid",
            ..
        })
    ));
}

/// The truth's hole positions and HUs are what the image shows: the mean in a disc of half the
/// insert radius equals the truth HU within noise, and the body just outside is body HU.
#[test]
fn truth_matches_rendered_image() {
    let sigma = 8.0;
    let cases = [
        ("cirs062", 1.0, 400, 25.0, 30.0, -40.0, None),
        ("cirs062", 1.0, 400, -33.0, 0.0, 10.0, Some(5)),
        ("catphan_504", 0.6, 400, 137.0, -20.0, 25.0, None),
        ("easycube", 0.8, 320, -30.0, 5.0, 20.0, None),
    ];
    for (id, px, matrix, rot, sx, sy, rearrange) in cases {
        let d = def(id);
        let p = SimParams {
            pixel_mm: px,
            matrix,
            n_slices: 9,
            slice_thickness_mm: 3.0,
            rotation_deg: rot,
            shift_x_mm: sx,
            shift_y_mm: sy,
            noise_sigma_hu: sigma,
            rearrange,
            couch: true,
            air_gap_mm: 0.3,
            ..SimParams::default()
        };
        let s = render(&p, &d).unwrap();
        let t = &s.truth;
        assert_eq!(t.pose.rotation_deg, rot);
        assert!((t.pose.centre_x_mm - ((matrix as f64 - 1.0) / 2.0 * px + sx)).abs() < 1e-9);
        let i = central_insert_slice(t);
        let (hu, _) = decode(&s.objects[i]);
        assert!(!t.holes.is_empty());
        for h in &t.holes {
            let (m, n) = disc_mean(&hu, t, h.x_mm, h.y_mm, 0.5 * h.radius_mm);
            let tol = 4.0 * sigma / (n as f64).sqrt() + 0.5;
            assert!(
                (m - h.hu).abs() < tol,
                "{id} rot {rot}: hole {} ({}) mean {m:.1} vs truth {} (n {n}, tol {tol:.1})",
                h.hole,
                h.material,
                h.hu
            );
            // the truth radius is right: 1.5 px + gap + blur outside the edge is body again
            let a = (h.y_mm - t.pose.centre_y_mm).atan2(h.x_mm - t.pose.centre_x_mm);
            let rr = h.radius_mm + 0.3 + 1.5 * px + 1.5;
            let (xo, yo) = (h.x_mm - rr * a.cos(), h.y_mm - rr * a.sin());
            let (mo, no) = disc_mean(&hu, t, xo, yo, px * 1.2);
            assert!(
                (mo - t.body_hu).abs() < 4.0 * sigma / (no as f64).sqrt() + 3.0,
                "{id}: outside hole {} reads {mo:.1}",
                h.hole
            );
        }
        for m in &t.materials {
            let n = t.holes.iter().filter(|h| h.material == m.name).count();
            assert_eq!(n, m.n_holes);
        }
    }
}

#[test]
fn noise_free_pixels_are_exact_and_edges_antialiased() {
    let d = def("catphan_504");
    let p = SimParams {
        pixel_mm: 0.5,
        matrix: 512,
        n_slices: 3,
        noise_sigma_hu: 0.0,
        blur_mm: 0.0,
        rotation_deg: -20.0,
        shift_x_mm: 7.3,
        catphan_modules: false,
        ..SimParams::default()
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    let i = central_insert_slice(&t);
    let hu: Vec<f64> = stack
        .hu
        .index_axis(ndarray::Axis(0), i)
        .iter()
        .map(|&v| v as f64)
        .collect();
    for h in &t.holes {
        assert_eq!(
            value_at(&hu, &t, h.x_mm, h.y_mm),
            q(h.hu) as f64,
            "{}",
            h.hole
        );
        // exact area: the sum over the insert's neighbourhood of (v − body)/(hu − body) is its area
        let (m, n) = disc_mean(&hu, &t, h.x_mm, h.y_mm, h.radius_mm + 2.0);
        let (qb, qh) = (q(t.body_hu) as f64, q(h.hu) as f64);
        let area = (m - qb) / (qh - qb) * n as f64 * 0.25;
        let exact = std::f64::consts::PI * h.radius_mm * h.radius_mm;
        assert!(
            (area - exact).abs() / exact < 0.02,
            "{}: {area} vs {exact}",
            h.hole
        );
    }
    for f in &t.features {
        assert_eq!(value_at(&hu, &t, f.x_mm, f.y_mm), -1000.0);
    }
    // body, then air beyond the 200 mm outline
    let (cx, cy) = (t.pose.centre_x_mm, t.pose.centre_y_mm);
    assert_eq!(value_at(&hu, &t, cx + 30.0, cy + 30.0), q(t.body_hu) as f64);
    assert_eq!(value_at(&hu, &t, cx + 103.0, cy), -1000.0);
    assert_eq!(value_at(&hu, &t, cx + 97.0, cy), q(t.body_hu) as f64);
}

#[test]
fn storage_variants_round_trip_through_files() {
    let d = def("cirs062");
    let dir = tempfile::tempdir().unwrap();
    let variants = [
        (
            PixelRepresentation::Signed,
            -1024.0,
            1.0,
            false,
            Syntax::Explicit,
        ),
        (
            PixelRepresentation::Unsigned,
            -1024.0,
            1.0,
            false,
            Syntax::Implicit,
        ),
        (
            PixelRepresentation::Unsigned,
            -1000.0,
            1.0,
            true,
            Syntax::Explicit,
        ),
        (
            PixelRepresentation::Signed,
            -8192.0,
            0.5,
            false,
            Syntax::Implicit,
        ),
        (
            PixelRepresentation::Signed,
            0.0,
            1.0,
            true,
            Syntax::Explicit,
        ),
        (
            PixelRepresentation::Unsigned,
            -8192.0,
            0.5,
            true,
            Syntax::Implicit,
        ),
    ];
    for (k, (repr, intercept, slope, vary, syntax)) in variants.into_iter().enumerate() {
        let p = SimParams {
            pixel_representation: repr,
            rescale_intercept: intercept,
            rescale_slope: slope,
            vary_intercept: vary,
            transfer_syntax: syntax,
            noise_sigma_hu: 0.0,
            couch: true,
            ..small()
        };
        let out = dir.path().join(format!("v{k}"));
        let s = render(&p, &d).unwrap();
        let paths = write(&s, &out).unwrap();
        assert_eq!(paths.len(), p.n_slices + 1);
        let plan = plan(&p, &d).unwrap();
        let (lo, hi) = repr.range();
        for (i, path) in paths[..p.n_slices].iter().enumerate() {
            let obj = dicom_object::open_file(path).unwrap();
            assert_eq!(obj.meta().transfer_syntax(), syntax.uid());
            assert_eq!(
                int_of(&obj, tags::PIXEL_REPRESENTATION),
                (repr == PixelRepresentation::Signed) as i64
            );
            let b = f64_of(&obj, tags::RESCALE_INTERCEPT);
            assert_eq!(b, t_intercept(&s.truth, i));
            assert_eq!(f64_of(&obj, tags::RESCALE_SLOPE), slope);
            let (hu, _) = decode(&obj);
            let ideal = plan.slice_hu(i);
            let mut clamped = 0;
            for (&got, &want) in hu.iter().zip(&ideal) {
                let stored = ((want as f64 - b) / slope).round();
                let expect = stored.clamp(lo as f64, hi as f64) * slope + b;
                if stored < lo as f64 || stored > hi as f64 {
                    clamped += 1;
                } else {
                    assert!(
                        (got - want as f64).abs() <= slope / 2.0 + 1e-3,
                        "{got} vs {want}"
                    );
                }
                assert!(
                    (got - expect).abs() < 1e-9,
                    "variant {k}: {got} vs {expect}"
                );
            }
            // only the unsigned, intercept −1000 variant cannot store below −1000 HU
            if !(repr == PixelRepresentation::Unsigned && intercept == -1000.0 && i % 3 == 0) {
                assert_eq!(clamped, 0, "variant {k} slice {i}");
            }
        }
        if vary {
            assert_ne!(t_intercept(&s.truth, 0), t_intercept(&s.truth, 1));
        }
    }
}

fn t_intercept(t: &Truth, i: usize) -> f64 {
    t.slices[i].rescale_intercept
}

#[test]
fn reconstruction_circle_uses_padding_value() {
    let d = def("catphan_504");
    for (repr, intercept, want_pad, want_pad_hu) in [
        (PixelRepresentation::Signed, -1024.0, -2000, -3024.0),
        (PixelRepresentation::Unsigned, -1024.0, 0, -1024.0),
        (PixelRepresentation::Unsigned, -8192.0, 5168, -3024.0),
    ] {
        let p = SimParams {
            pixel_representation: repr,
            rescale_intercept: intercept,
            recon_circle: true,
            noise_sigma_hu: 30.0,
            ..small()
        };
        let s = render(&p, &d).unwrap();
        assert_eq!(s.truth.storage.padding_hu, Some(want_pad_hu));
        let circle = s.truth.recon_circle.clone().unwrap();
        assert!((circle.radius_mm - 200.0).abs() < 1e-9);
        for (i, o) in s.objects.iter().enumerate() {
            let pad = int_of(o, tags::PIXEL_PADDING_VALUE) as i32;
            assert_eq!(pad, want_pad);
            assert_eq!(s.truth.slices[i].padding_value, Some(want_pad));
            let (hu, raw) = decode(o);
            // corners are outside the circle, the centre is inside
            assert_eq!(raw[0], pad);
            assert_eq!(raw[160 * 160 - 1], pad);
            assert!(hu[80 * 160 + 80].is_finite());
            // every pixel inside the circle holds data, none collides with the padding value
            for r in 0..160 {
                for c in 0..160 {
                    let x = c as f64 * 2.5 - circle.centre_x_mm;
                    let y = r as f64 * 2.5 - circle.centre_y_mm;
                    let inside = x * x + y * y <= circle.radius_mm * circle.radius_mm;
                    assert_eq!(inside, hu[r * 160 + c].is_finite(), "({r}, {c})");
                }
            }
        }
    }
    // without the circle there is no padding tag
    let s = render(&small(), &d).unwrap();
    assert!(s.objects[0].get(tags::PIXEL_PADDING_VALUE).is_none());
}

#[test]
fn mr_and_other_modalities() {
    let d = def("cirs062");
    let s = render(
        &SimParams {
            modality: "MR".into(),
            ..small()
        },
        &d,
    )
    .unwrap();
    for o in &s.objects {
        assert_eq!(o.element(tags::MODALITY).unwrap().to_str().unwrap(), "MR");
        assert_eq!(
            o.element(tags::SOP_CLASS_UID).unwrap().to_str().unwrap(),
            encode::MR_IMAGE_STORAGE
        );
        assert_eq!(
            o.meta().media_storage_sop_class_uid(),
            encode::MR_IMAGE_STORAGE
        );
        assert!(o.get(tags::KVP).is_none());
    }
    let s = render(
        &SimParams {
            modality: "OT".into(),
            ..small()
        },
        &d,
    )
    .unwrap();
    assert_eq!(
        s.truth.sop_class_uid,
        encode::SECONDARY_CAPTURE_IMAGE_STORAGE
    );
    assert!(render(
        &SimParams {
            modality: "ct scan".into(),
            ..small()
        },
        &d
    )
    .is_err());
}

#[test]
fn rearranged_layout_is_a_permutation() {
    for id in ["cirs062", "catphan_504", "easycube"] {
        let d = def(id);
        let base = render(&small(), &d).unwrap().truth;
        let re = render(
            &SimParams {
                rearrange: Some(11),
                ..small()
            },
            &d,
        )
        .unwrap()
        .truth;
        assert!(re.rearranged && !base.rearranged);
        let mut a: Vec<_> = base.holes.iter().map(|h| h.material.clone()).collect();
        let mut b: Vec<_> = re.holes.iter().map(|h| h.material.clone()).collect();
        let moved = base
            .holes
            .iter()
            .zip(&re.holes)
            .filter(|(x, y)| x.material != y.material)
            .count();
        assert!(moved >= 2, "{id}: {moved} moved");
        a.sort();
        b.sort();
        assert_eq!(a, b, "{id}: the multiset of materials is kept");
        // hole positions are the template's
        for (x, y) in base.holes.iter().zip(&re.holes) {
            assert_eq!(
                (x.hole.as_str(), x.x_mm, x.y_mm),
                (y.hole.as_str(), y.x_mm, y.y_mm)
            );
            assert_eq!(y.hu, d.material(&y.material).unwrap().hu_expected);
        }
    }
    // CIRS: two of each except water
    let d = def("cirs062");
    let re = render(
        &SimParams {
            rearrange: Some(3),
            ..small()
        },
        &d,
    )
    .unwrap()
    .truth;
    for m in &re.materials {
        assert_eq!(
            m.n_holes,
            if m.name == "water" { 1 } else { 2 },
            "{}",
            m.name
        );
    }
}

#[test]
fn slab_edges_get_partial_volume() {
    let d = def("cirs062");
    // slice centres at (i − 10)·2.5 mm: slice 20 is centred on the slab face at z = +25
    let p = SimParams {
        n_slices: 21,
        slice_thickness_mm: 4.0,
        slice_spacing_mm: Some(2.5),
        noise_sigma_hu: 0.0,
        blur_mm: 0.0,
        ..small()
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    assert_eq!(t.insert_z_range_mm, [-25.0, 25.0]);
    assert_eq!(t.slices[20].z_mm, 25.0);
    assert_eq!(t.slices[20].insert_fraction, 0.5);
    assert_eq!(t.slices[19].insert_fraction, 1.0);
    // a body point away from the holes: (cx + 90, cy)
    let c = ((t.pose.centre_x_mm + 90.0) / t.pixel_mm).round() as usize;
    let r = (t.pose.centre_y_mm / t.pixel_mm).round() as usize;
    assert_eq!(stack.hu[[19, r, c]], q(t.body_hu));
    assert_eq!(stack.hu[[20, r, c]], q((t.body_hu - 1000.0) / 2.0));
    // an insert: lung_inhale at outer_000 (x + 115): half lung, half air
    let h = t.hole("outer_000").unwrap();
    let (hc, hr) = (
        (h.x_mm / t.pixel_mm).round() as usize,
        (h.y_mm / t.pixel_mm).round() as usize,
    );
    assert_eq!(stack.hu[[19, hr, hc]], q(h.hu));
    assert_eq!(stack.hu[[20, hr, hc]], q((h.hu - 1000.0) / 2.0));
    // slice 0 is centred on the other face (z = −25)
    assert_eq!(stack.hu[[0, hr, hc]], q((h.hu - 1000.0) / 2.0));
}

#[test]
fn catphan_modules_along_z() {
    let d = def("catphan_504");
    let p = SimParams {
        pixel_mm: 0.5,
        matrix: 512,
        n_slices: 64,
        slice_thickness_mm: 2.5,
        noise_sigma_hu: 0.0,
        ..SimParams::default()
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    let names: Vec<&str> = t.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["CTP486", "CTP515", "CTP404", "CTP528"]);
    assert_eq!(t.insert_z_range_mm, [-12.5, 12.5]);
    // the series covers CTP404 and both neighbours
    for m in ["CTP515", "CTP404", "CTP528"] {
        assert!(t.slices.iter().any(|s| s.module == m), "{m} not covered");
    }
    let (cx, cy) = (t.pose.centre_x_mm, t.pose.centre_y_mm);
    let at = |i: usize, x: f64, y: f64| {
        stack.hu[[
            i,
            (y / t.pixel_mm).round() as usize,
            (x / t.pixel_mm).round() as usize,
        ]] as f64
    };
    let pick = |m: &str| {
        t.slices
            .iter()
            .filter(|s| s.module == m)
            .map(|s| s.index)
            .nth(3)
            .unwrap()
    };
    let (i404, i528, i515) = (pick("CTP404"), pick("CTP528"), pick("CTP515"));
    let teflon = t.holes.iter().find(|h| h.material == "teflon").unwrap();
    assert!(at(i404, teflon.x_mm, teflon.y_mm) > 900.0);
    // the inserts are only in CTP404
    for i in [i528, i515] {
        assert!((at(i, teflon.x_mm, teflon.y_mm) - t.body_hu).abs() < 2.0);
    }
    // CTP528: bright bars on the 40 mm ring (first group at the top, 1 lp/cm, 5 mm bars)
    let ring_max = (0..360)
        .map(|a| {
            let a = (a as f64).to_radians();
            at(i528, cx + 40.0 * a.cos(), cy + 40.0 * a.sin())
        })
        .fold(f64::MIN, f64::max);
    assert!(ring_max > 1500.0, "{ring_max}");
    // CTP515: the 15 mm +10 HU disc at −80° on the 50 mm ring
    let a = (-80f64).to_radians();
    let v = at(i515, cx + 50.0 * a.cos(), cy + 50.0 * a.sin());
    assert!((v - t.body_hu - 10.0).abs() < 1.0, "{v}");
    // outside the phantom along z: air
    let far = t.slices.iter().position(|s| s.module == "air");
    if let Some(i) = far {
        assert_eq!(at(i, cx, cy), -1000.0);
    }
}

#[test]
fn uniform_body_and_noise_level() {
    let d = def("catphan_504");
    for corr in [0.0, 1.0] {
        let p = SimParams {
            uniform: true,
            noise_sigma_hu: 15.0,
            noise_corr_mm: corr,
            pixel_mm: 0.5,
            matrix: 512,
            n_slices: 2,
            ..SimParams::default()
        };
        let (stack, t) = render_stack(&p, &d).unwrap();
        assert!(t.holes.is_empty() && t.uniform && t.features.is_empty());
        let (cx, cy) = (t.pose.centre_x_mm, t.pose.centre_y_mm);
        let mut v = Vec::new();
        for r in 0..512 {
            for c in 0..512 {
                let (x, y) = (c as f64 * 0.5 - cx, r as f64 * 0.5 - cy);
                if x * x + y * y < 90.0 * 90.0 {
                    v.push(stack.hu[[0, r, c]] as f64);
                }
            }
        }
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!((sd - 15.0).abs() < 0.8, "corr {corr}: std {sd}");
        assert!((m - t.body_hu).abs() < 1.5, "mean {m}");
        if corr > 0.0 {
            assert!(t.noise_n_corr > 20.0);
        } else {
            assert_eq!(t.noise_n_corr, 1.0);
        }
    }
}

#[test]
fn couch_touches_the_lowest_point() {
    let d = def("easycube");
    let p = SimParams {
        couch: true,
        rotation_deg: 30.0,
        noise_sigma_hu: 0.0,
        blur_mm: 0.0,
        pixel_mm: 1.0,
        matrix: 400,
        n_slices: 1,
        ..SimParams::default()
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    let couch = t.couch.clone().unwrap();
    let expect_top =
        t.pose.centre_y_mm + 90.0 * (30f64.to_radians().cos() + 30f64.to_radians().sin());
    assert!((couch.top_y_mm - expect_top).abs() < 1e-9);
    let c = 60;
    let row = |y: f64| (y / t.pixel_mm).round() as usize;
    assert_eq!(stack.hu[[0, row(couch.top_y_mm + 1.5), c]], 300.0);
    assert_eq!(stack.hu[[0, row(couch.top_y_mm + 20.0), c]], -950.0);
    assert_eq!(stack.hu[[0, row(couch.top_y_mm + 44.5), c]], 300.0);
    assert_eq!(stack.hu[[0, row(couch.top_y_mm + 50.0), c]], -1000.0);
}

#[test]
fn hu_offsets_and_body_hu() {
    let d = def("cirs062");
    let mut offs = BTreeMap::new();
    offs.insert("water".to_string(), 35.0);
    let p = SimParams {
        hu_offsets: offs,
        body_hu: Some(5.0),
        noise_sigma_hu: 0.0,
        ..small()
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    let water = d.material("water").unwrap().hu_expected + 35.0;
    assert_eq!(t.material("water").unwrap().hu, water);
    assert_eq!(t.material("water").unwrap().hu_offset, 35.0);
    assert_eq!(t.hole("centre").unwrap().hu, water);
    assert_eq!(t.body_hu, 5.0);
    let (cx, cy) = (t.pose.centre_x_mm, t.pose.centre_y_mm);
    let at = |x: f64, y: f64| stack.hu[[2, (y / 2.5).round() as usize, (x / 2.5).round() as usize]];
    assert!((at(cx, cy) as f64 - water).abs() < 0.5);
    assert!((at(cx + 90.0, cy) - 5.0).abs() < 0.5);
    let mut bad = BTreeMap::new();
    bad.insert("unobtainium".to_string(), 1.0);
    let e = render(
        &SimParams {
            hu_offsets: bad,
            ..small()
        },
        &d,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unobtainium") && e.contains("lung_inhale"),
        "{e}"
    );
}

#[test]
fn truth_json_round_trips() {
    let d = def("easycube");
    let s = render(&small(), &d).unwrap();
    let json = serde_json::to_string(&s.truth).unwrap();
    let back: Truth = serde_json::from_str(&json).unwrap();
    // serde_json's float parsing may differ in the last bit: compare positions with a tolerance
    assert_eq!(back.holes.len(), s.truth.holes.len());
    for (a, b) in back.holes.iter().zip(&s.truth.holes) {
        assert_eq!((&a.hole, &a.material, a.hu), (&b.hole, &b.material, b.hu));
        assert!((a.x_mm - b.x_mm).abs() < 1e-9 && (a.y_mm - b.y_mm).abs() < 1e-9);
    }
    assert_eq!(back.slices, s.truth.slices);
    assert_eq!(back.params, s.truth.params);
    assert_eq!(back.series_uid, s.truth.series_uid);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "phantom_id",
        "pose",
        "holes",
        "materials",
        "noise_sigma_hu",
        "insert_z_range_mm",
        "slices",
        "pixel_mm",
        "matrix",
        "slice_thickness_mm",
        "slice_spacing_mm",
        "storage",
        "series_uid",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["holes"][0]["hole"], "rod_1");
    assert!(v["pose"]["centre_x_mm"].is_f64());
}

#[test]
fn render_to_dir_writes_the_same_files_as_render_then_write() {
    let d = def("cirs062");
    let p = SimParams {
        recon_circle: true,
        vary_intercept: true,
        ..small()
    };
    let dir = tempfile::tempdir().unwrap();
    let a = write(&render(&p, &d).unwrap(), &dir.path().join("a")).unwrap();
    let (b, truth) = render_to_dir(&p, &d, &dir.path().join("b")).unwrap();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name());
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{x:?}"
        );
    }
    assert_eq!(b.last().unwrap().file_name().unwrap(), "truth.json");
    assert_eq!(truth.n_slices, 5);
    // metadata must be plain ASCII (the files declare ISO_IR 100)
    let e = render(
        &SimParams {
            station_name: "STATION\\X".into(),
            ..small()
        },
        &d,
    );
    assert!(matches!(
        e,
        Err(SimError::Param {
            name: "station_name",
            ..
        })
    ));
}

#[test]
fn raw_data_sets_are_the_part10_data_sets_without_the_header() {
    let d = def("cirs062");
    let dir = tempfile::tempdir().unwrap();
    for syntax in [Syntax::Implicit, Syntax::Explicit] {
        let p10 = SimParams {
            transfer_syntax: syntax,
            recon_circle: true,
            ..small()
        };
        let raw = SimParams {
            part10: false,
            ..p10.clone()
        };
        let tag = format!("{syntax:?}");
        let (a, truth_a) = render_to_dir(&p10, &d, &dir.path().join(format!("p10_{tag}"))).unwrap();
        let (b, truth_b) = render_to_dir(&raw, &d, &dir.path().join(format!("raw_{tag}"))).unwrap();
        // the same series (UIDs included), framed differently
        assert_eq!(truth_a.series_uid, truth_b.series_uid);
        assert!(truth_a.storage.part10);
        assert!(!truth_b.storage.part10);
        assert!(!truth_b.params.part10);
        let names: Vec<&str> = truth_b.slices.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(names, ["IM0001", "IM0002", "IM0003", "IM0004", "IM0005"]);
        for (i, (pa, pb)) in a[..5].iter().zip(&b[..5]).enumerate() {
            assert_eq!(pb.file_name().unwrap(), names[i]);
            let part10 = std::fs::read(pa).unwrap();
            let bare = std::fs::read(pb).unwrap();
            assert_eq!(&part10[128..132], b"DICM");
            assert!(!bare.starts_with(b"DICM") && bare.get(128..132) != Some(b"DICM".as_slice()));
            // it starts with a group 0008 element, in the chosen encoding
            assert_eq!(&bare[0..2], &[0x08, 0x00]);
            assert_eq!(
                bare[4].is_ascii_uppercase() && bare[5].is_ascii_uppercase(),
                syntax == Syntax::Explicit,
                "{tag}"
            );
            // the Part-10 file is the preamble, DICM and its file meta group, then these bytes
            assert!(part10.ends_with(&bare), "{tag} slice {i}");
            let group_len =
                u32::from_le_bytes([part10[140], part10[141], part10[142], part10[143]]);
            assert_eq!(part10.len() - bare.len(), 144 + group_len as usize, "{tag}");
            // and it reads back as the same object
            let (obj, headerless) = crate::dicom::open_dicom_file(pb).unwrap();
            assert!(headerless);
            assert_eq!(obj.meta().transfer_syntax(), syntax.uid());
            assert_eq!(
                obj.meta().media_storage_sop_instance_uid(),
                truth_b.slices[i].sop_instance_uid
            );
        }
        // render() then write() gives the same raw files
        let series = render(&raw, &d).unwrap();
        let c = write(&series, &dir.path().join(format!("w_{tag}"))).unwrap();
        for (x, y) in b.iter().zip(&c) {
            assert_eq!(x.file_name(), y.file_name());
            assert_eq!(
                std::fs::read(x).unwrap(),
                std::fs::read(y).unwrap(),
                "{x:?}"
            );
        }
        // the in-memory objects keep their file meta group
        assert_eq!(series.objects[0].meta().transfer_syntax(), syntax.uid());
    }
}

// ---- per-hole contents (issue 9) ----

/// Noise- and blur-free series at 0.4 mm pixels: pixel values are exact away from edges.
fn exact(matrix: usize) -> SimParams {
    SimParams {
        pixel_mm: 0.4,
        matrix,
        n_slices: 3,
        noise_sigma_hu: 0.0,
        blur_mm: 0.0,
        catphan_modules: false,
        ..SimParams::default()
    }
}

/// The central slice of the insert region as HU.
fn central_hu(stack: &HuStack, t: &Truth) -> Vec<f64> {
    stack
        .hu
        .index_axis(ndarray::Axis(0), central_insert_slice(t))
        .iter()
        .map(|&v| v as f64)
        .collect()
}

/// Values of the pixels lying wholly (the whole pixel square) between radii `r0` and `r1` of the
/// hole's centre.
fn ring_values(hu: &[f64], t: &Truth, h: &TruthHole, r0: f64, r1: f64) -> Vec<f64> {
    let hd = t.pixel_mm * std::f64::consts::FRAC_1_SQRT_2 + 1e-6;
    let mut out = Vec::new();
    for row in 0..t.rows {
        for col in 0..t.cols {
            let d = (col as f64 * t.pixel_mm - h.x_mm).hypot(row as f64 * t.pixel_mm - h.y_mm);
            if d - hd >= r0 && d + hd <= r1 {
                out.push(hu[row * t.cols + col]);
            }
        }
    }
    out
}

/// Every pixel wholly between `r0` and `r1` reads `want` (stored and decoded), and there are some.
fn assert_ring(hu: &[f64], t: &Truth, h: &TruthHole, r0: f64, r1: f64, want: f64) {
    let v = ring_values(hu, t, h, r0, r1);
    assert!(
        v.len() >= 4,
        "{}: only {} pixels in {r0}..{r1}",
        h.hole,
        v.len()
    );
    for x in &v {
        assert_eq!(*x, q(want) as f64, "{} at {r0}..{r1} mm", h.hole);
    }
}

fn with_holes(p: SimParams, holes: &[(&str, HoleContent)]) -> SimParams {
    SimParams {
        holes: holes
            .iter()
            .map(|(k, c)| (k.to_string(), c.clone()))
            .collect(),
        ..p
    }
}

#[test]
fn bone_rods_case_draws_rods_in_a_water_sleeve() {
    let d = def("cirs062");
    let mut p = SimParams {
        rotation_deg: 17.0,
        shift_x_mm: -6.0,
        ..exact(900)
    };
    p.holes = case_holes(SimCase::CirsBoneRods, &d, &p).unwrap();
    assert_eq!(
        p.holes.keys().collect::<Vec<_>>(),
        ["inner_090", "outer_270"],
        "the two dense_bone holes"
    );
    let (stack, t) = render_stack(&p, &d).unwrap();
    let hu = central_hu(&stack, &t);
    let bone = d.material("dense_bone").unwrap().hu_expected;
    for id in ["inner_090", "outer_270"] {
        let h = t.hole(id).unwrap();
        assert_eq!(h.material, "dense_bone");
        assert_eq!(h.hu, bone);
        assert_eq!(h.radius_mm, 15.0);
        assert_eq!(h.core_radius_mm, BONE_ROD_RADIUS_MM);
        assert_eq!(h.rod_radius_mm, Some(5.0));
        assert_eq!(h.sleeve_hu, Some(t.body_hu));
        assert!(h.in_definition && !h.empty && h.void_radius_mm.is_none());
        assert_ring(&hu, &t, h, 0.0, 5.0, bone);
        assert_ring(&hu, &t, h, 5.0, 15.0, t.body_hu);
        // the rod's area is right (anti-aliased edge): sum of (v − sleeve)/(rod − sleeve)
        let (m, n) = disc_mean(&hu, &t, h.x_mm, h.y_mm, 10.0);
        let area = (m - t.body_hu) / (bone - t.body_hu) * n as f64 * 0.16;
        assert!((area - std::f64::consts::PI * 25.0).abs() < 1.0, "{area}");
    }
    // the others are untouched
    let h = t.hole("centre").unwrap();
    assert_eq!(
        (h.core_radius_mm, h.rod_radius_mm, h.sleeve_hu),
        (15.0, None, None)
    );
    let m = t.material("dense_bone").unwrap();
    assert_eq!((m.n_holes, m.hu, m.copies_spread_hu), (2, bone, 0.0));
    assert!(t.foreign.is_empty());
}

#[test]
fn rod_with_gap_sleeve_and_own_hu() {
    let d = def("cirs062");
    let p = with_holes(
        exact(900),
        &[
            (
                "inner_000",
                HoleContent {
                    rod_radius_mm: Some(5.0),
                    rod_gap_mm: Some(2.0),
                    sleeve_hu: Some(100.0),
                    hu: Some(-480.0),
                    ..Default::default()
                },
            ),
            // gap only: the rod fills the hole up to a 1.5 mm air ring
            (
                "inner_045",
                HoleContent {
                    rod_gap_mm: Some(1.5),
                    ..Default::default()
                },
            ),
        ],
    );
    let (stack, t) = render_stack(&p, &d).unwrap();
    let hu = central_hu(&stack, &t);
    let h = t.hole("inner_000").unwrap();
    assert_eq!(h.material, "lung_exhale");
    assert_eq!((h.hu, h.core_radius_mm), (-480.0, 5.0));
    assert_eq!((h.sleeve_hu, h.rod_gap_mm), (Some(100.0), Some(2.0)));
    assert_ring(&hu, &t, h, 0.0, 5.0, -480.0);
    assert_ring(&hu, &t, h, 5.0, 7.0, -1000.0);
    assert_ring(&hu, &t, h, 7.0, 15.0, 100.0);
    // two lung_exhale copies now differ
    let lung = d.material("lung_exhale").unwrap().hu_expected;
    let m = t.material("lung_exhale").unwrap();
    assert_eq!(m.copies_spread_hu, (lung + 480.0).abs());
    assert_eq!(m.hu, (lung - 480.0) / 2.0);
    let h = t.hole("inner_045").unwrap();
    assert_eq!(
        (h.core_radius_mm, h.rod_radius_mm, h.sleeve_hu),
        (13.5, Some(13.5), None)
    );
    assert_ring(
        &hu,
        &t,
        h,
        0.0,
        13.5,
        d.material("adipose").unwrap().hu_expected,
    );
    assert_ring(&hu, &t, h, 13.5, 15.0, -1000.0);
}

#[test]
fn water_void_case_draws_a_central_void() {
    let d = def("cirs062");
    let mut p = SimParams {
        rotation_deg: -33.0,
        ..exact(900)
    };
    p.holes = case_holes(SimCase::CirsWaterVoid, &d, &p).unwrap();
    let (stack, t) = render_stack(&p, &d).unwrap();
    let hu = central_hu(&stack, &t);
    let h = t.hole("centre").unwrap();
    assert_eq!(h.material, "water");
    assert_eq!(h.hu, WATER_VOID_CONTRAST_HU);
    assert_eq!(h.void_radius_mm, Some(WATER_VOID_RADIUS_MM));
    assert_eq!(h.core_radius_mm, 15.0);
    assert_ring(&hu, &t, h, 0.0, 1.5, -1000.0);
    assert_ring(&hu, &t, h, 1.5, 15.0, 12.0);
    assert_ring(&hu, &t, h, 15.0, 18.0, 0.0);
    assert_eq!(t.material("water").unwrap().hu, 12.0);
    // the case follows the water offset
    let mut p2 = SimParams {
        hu_offsets: [("water".to_string(), 5.0)].into(),
        ..exact(900)
    };
    p2.holes = case_holes(SimCase::CirsWaterVoid, &d, &p2).unwrap();
    assert_eq!(p2.holes["centre"].hu, Some(17.0));
}

#[test]
fn site_layout_case_empty_hole_and_1250_rod() {
    let d = def("cirs062");
    let mut p = exact(900);
    p.holes = case_holes(SimCase::CirsSiteLayout, &d, &p).unwrap();
    let (stack, t) = render_stack(&p, &d).unwrap();
    let hu = central_hu(&stack, &t);
    let e = t.hole("outer_000").unwrap();
    assert_eq!(e.material, EMPTY_MATERIAL);
    assert!(e.empty && !e.in_definition);
    assert_eq!(e.hu, -1000.0);
    assert_eq!(e.layout_material.as_deref(), Some("lung_inhale"));
    assert_ring(&hu, &t, e, 0.0, 15.0, -1000.0);
    let r = t.hole("outer_270").unwrap();
    assert_eq!(r.material, "dense_bone_1250");
    assert_eq!(r.hu, SITE_ROD_1250_HU);
    assert_eq!(r.layout_material.as_deref(), Some("dense_bone"));
    // cirs062 defines dense_bone_1250 (optional): the rod is a material of the definition
    assert!(r.in_definition);
    assert_ring(&hu, &t, r, 0.0, 15.0, 1450.0);
    assert_eq!(t.foreign.len(), 1);
    assert_eq!(t.foreign[0].hole, "outer_000");
    assert_eq!(t.material("lung_inhale").unwrap().holes, ["inner_180"]);
    assert_eq!(t.material("dense_bone").unwrap().holes, ["inner_090"]);
    assert_eq!(t.material("dense_bone_1250").unwrap().n_holes, 1);
    assert!(t.material(EMPTY_MATERIAL).is_none());
}

#[test]
fn foreign_material_is_never_a_truth_material() {
    let d = def("cirs062");
    let p = with_holes(
        small(),
        &[(
            "inner_045",
            HoleContent {
                material: Some("site_foam".into()),
                hu: Some(-950.0),
                ..Default::default()
            },
        )],
    );
    let t = render(&p, &d).unwrap().truth;
    let h = t.hole("inner_045").unwrap();
    assert_eq!(
        (h.material.as_str(), h.hu, h.in_definition),
        ("site_foam", -950.0, false)
    );
    assert_eq!(t.foreign.len(), 1);
    assert!(t.material("site_foam").is_none());
    assert_eq!(t.material("adipose").unwrap().holes, ["outer_225"]);
    assert_eq!(t.holes_of("adipose").count(), 1);
}

/// The Catphan 503/504 (id catphan_504 once the variants exist, catphan_ctp404 before).
fn catphan504() -> PhantomDef {
    let set = PhantomSet::builtin();
    set.get("catphan_504")
        .or_else(|_| set.get("catphan_ctp404"))
        .unwrap()
        .clone()
}

/// A Catphan variant with a water hole (as the Catphan 600): family id, water at the top.
fn catphan_with_water() -> PhantomDef {
    let mut d = catphan504();
    d.id = "site_catphan".into();
    d.family = Some("catphan_ctp404".into());
    let mut water = d.material("polystyrene").unwrap().clone();
    water.name = "water".into();
    water.hu_expected = 0.0;
    water.optional = true;
    d.materials.push(water);
    d.layout.insert("ring_270".into(), "water".into());
    d
}

#[test]
fn catphan_water_hole_gets_a_vial_by_default() {
    let d = catphan_with_water();
    assert!(geometry::is_catphan(&d));
    let p = SimParams {
        rotation_deg: 23.0,
        ..exact(560)
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    let hu = central_hu(&stack, &t);
    let h = t.hole("ring_270").unwrap();
    assert_eq!(h.material, "water");
    assert_eq!(
        (h.vial_wall_mm, h.vial_wall_hu),
        (Some(VIAL_WALL_MM), Some(VIAL_WALL_HU))
    );
    assert_eq!(h.core_radius_mm, 5.0);
    assert!(h.in_definition);
    assert_ring(&hu, &t, h, 0.0, 5.0, 0.0);
    assert_ring(&hu, &t, h, 5.0, 6.0, VIAL_WALL_HU);
    // the Catphan modules along z and the pins come with the family
    assert!(!t.features.is_empty());
    // the vial case says the same explicitly; the empty vial holds air
    let mut pc = exact(560);
    pc.holes = case_holes(SimCase::Catphan600Vial, &d, &pc).unwrap();
    let tc = render(
        &SimParams {
            matrix: 128,
            pixel_mm: 2.0,
            ..pc
        },
        &d,
    )
    .unwrap()
    .truth;
    assert_eq!(tc.hole("ring_270").unwrap().vial_wall_mm, Some(1.0));
    let mut pe = exact(560);
    pe.holes = case_holes(SimCase::Catphan600VialEmpty, &d, &pe).unwrap();
    let (stack, te) = render_stack(&pe, &d).unwrap();
    let hu = central_hu(&stack, &te);
    let h = te.hole("ring_270").unwrap();
    assert!(h.empty && !h.in_definition);
    assert_eq!(h.layout_material.as_deref(), Some("water"));
    assert_ring(&hu, &te, h, 0.0, 5.0, -1000.0);
    assert_ring(&hu, &te, h, 5.0, 6.0, VIAL_WALL_HU);
    assert!(te.material("water").is_none());
    // vial_wall_mm = 0 removes the vial
    let p0 = with_holes(
        exact(560),
        &[(
            "ring_270",
            HoleContent {
                vial_wall_mm: Some(0.0),
                ..Default::default()
            },
        )],
    );
    let (stack, t0) = render_stack(&p0, &d).unwrap();
    let hu = central_hu(&stack, &t0);
    let h = t0.hole("ring_270").unwrap();
    assert_eq!((h.vial_wall_mm, h.core_radius_mm), (None, 6.0));
    assert_ring(&hu, &t0, h, 0.0, 6.0, 0.0);
    // the 504 (no water) has no vial, and the vial cases say why they cannot apply
    let t504 = render(&small(), &catphan504()).unwrap().truth;
    assert!(t504.holes.iter().all(|h| h.vial_wall_mm.is_none()));
    let e = case_holes(SimCase::Catphan600Vial, &catphan504(), &small())
        .unwrap_err()
        .to_string();
    assert!(e.contains("water") && e.contains("catphan600-vial"), "{e}");
}

#[test]
fn definition_vial_and_holes_outside_the_layout() {
    // a definition's vial_wall_mm (data-driven), on a non-Catphan
    let mut d = def("cirs062");
    d.holes[0].vial_wall_mm = Some(2.0);
    d.layout.remove("inner_045");
    let p = with_holes(
        exact(900),
        &[(
            "inner_045",
            HoleContent {
                material: Some("adipose".into()),
                void_radius_mm: Some(3.0),
                ..Default::default()
            },
        )],
    );
    let (stack, t) = render_stack(&p, &d).unwrap();
    let hu = central_hu(&stack, &t);
    let c = t.hole("centre").unwrap();
    assert_eq!((c.vial_wall_mm, c.core_radius_mm), (Some(2.0), 13.0));
    assert_ring(&hu, &t, c, 0.0, 13.0, 0.0);
    assert_ring(&hu, &t, c, 13.0, 15.0, VIAL_WALL_HU);
    // a hole the layout leaves out, filled by its content, in the definition's order
    let h = t.hole("inner_045").unwrap();
    assert_eq!(h.layout_material, None);
    let adipose = d.material("adipose").unwrap().hu_expected;
    assert_eq!((h.material.as_str(), h.hu), ("adipose", adipose));
    assert_ring(&hu, &t, h, 0.0, 3.0, -1000.0);
    assert_ring(&hu, &t, h, 3.0, 15.0, adipose);
    let ids: Vec<&str> = t.holes.iter().map(|h| h.hole.as_str()).collect();
    let def_ids: Vec<&str> = d.holes.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, def_ids);
    // without a content that hole stays body
    let t2 = render(&small(), &d).unwrap().truth;
    assert!(t2.hole("inner_045").is_none());
}

#[test]
fn hole_contents_are_validated_naming_the_hole() {
    let d = def("cirs062");
    let err = |hole: &str, c: HoleContent| -> String {
        let e = render(&with_holes(small(), &[(hole, c)]), &d).unwrap_err();
        assert!(matches!(e, SimError::Param { name: "holes", .. }), "{e}");
        e.to_string()
    };
    let e = err(
        "inner_999",
        HoleContent {
            empty: Some(true),
            ..Default::default()
        },
    );
    assert!(
        e.contains("inner_999") && e.contains("centre") && e.contains("outer_225"),
        "{e}"
    );
    let cases: Vec<(HoleContent, &str)> = vec![
        (
            HoleContent {
                rod_radius_mm: Some(15.0),
                ..Default::default()
            },
            "rod_radius_mm",
        ),
        (
            HoleContent {
                rod_radius_mm: Some(-1.0),
                ..Default::default()
            },
            "rod_radius_mm",
        ),
        (
            HoleContent {
                rod_radius_mm: Some(14.0),
                rod_gap_mm: Some(2.0),
                ..Default::default()
            },
            "rod gap",
        ),
        (
            HoleContent {
                rod_radius_mm: Some(5.0),
                void_radius_mm: Some(5.0),
                ..Default::default()
            },
            "the rod",
        ),
        (
            HoleContent {
                void_radius_mm: Some(15.0),
                ..Default::default()
            },
            "void_radius_mm",
        ),
        (
            HoleContent {
                sleeve_hu: Some(0.0),
                ..Default::default()
            },
            "sleeve_hu",
        ),
        (
            HoleContent {
                rod_gap_mm: Some(2.0),
                sleeve_hu: Some(0.0),
                ..Default::default()
            },
            "no room for a sleeve",
        ),
        (
            HoleContent {
                material: Some("unobtainium".into()),
                ..Default::default()
            },
            "hu=",
        ),
        (
            HoleContent {
                material: Some("bad name".into()),
                hu: Some(0.0),
                ..Default::default()
            },
            "printable",
        ),
        (
            HoleContent {
                empty: Some(true),
                hu: Some(0.0),
                ..Default::default()
            },
            "empty hole holds air only",
        ),
        (
            HoleContent {
                vial_wall_mm: Some(15.0),
                ..Default::default()
            },
            "vial_wall_mm",
        ),
        (
            HoleContent {
                vial_wall_hu: Some(0.0),
                ..Default::default()
            },
            "needs a vial",
        ),
        (
            HoleContent {
                hu: Some(9000.0),
                ..Default::default()
            },
            "outside",
        ),
        (
            HoleContent {
                sleeve_hu: Some(f64::NAN),
                rod_radius_mm: Some(3.0),
                ..Default::default()
            },
            "sleeve_hu",
        ),
    ];
    for (c, want) in cases {
        let e = err("inner_000", c.clone());
        assert!(e.contains("hole 'inner_000' of cirs062"), "{e}");
        assert!(e.contains(want), "{c:?}: {e}");
    }
    // a hole the layout leaves out needs a material
    let mut d2 = d.clone();
    d2.layout.remove("inner_045");
    let e = render(
        &with_holes(
            small(),
            &[(
                "inner_045",
                HoleContent {
                    void_radius_mm: Some(1.0),
                    ..Default::default()
                },
            )],
        ),
        &d2,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("inner_045") && e.contains("material="), "{e}");
    // uniform phantoms have no holes to fill
    let e = render(
        &SimParams {
            uniform: true,
            ..with_holes(
                small(),
                &[(
                    "centre",
                    HoleContent {
                        empty: Some(true),
                        ..Default::default()
                    },
                )],
            )
        },
        &d,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("uniform"), "{e}");
    // Easy Cube: the invented rods are the holes
    let e = render(
        &with_holes(
            small(),
            &[(
                "centre",
                HoleContent {
                    empty: Some(true),
                    ..Default::default()
                },
            )],
        ),
        &def("easycube"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("rod_1") && e.contains("rod_6"), "{e}");
    let t = render(
        &with_holes(
            small(),
            &[(
                "rod_2",
                HoleContent {
                    void_radius_mm: Some(3.0),
                    ..Default::default()
                },
            )],
        ),
        &def("easycube"),
    )
    .unwrap()
    .truth;
    assert_eq!(t.hole("rod_2").unwrap().void_radius_mm, Some(3.0));
}

#[test]
fn cases_follow_the_rearranged_layout_and_fail_clearly() {
    let d = def("cirs062");
    let p = SimParams {
        rearrange: Some(5),
        ..small()
    };
    let holes = case_holes(SimCase::CirsBoneRods, &d, &p).unwrap();
    let t = render(&SimParams { holes, ..p.clone() }, &d).unwrap().truth;
    assert!(t.rearranged);
    let rods: Vec<&TruthHole> = t
        .holes
        .iter()
        .filter(|h| h.rod_radius_mm.is_some())
        .collect();
    assert_eq!(rods.len(), 2);
    assert!(rods.iter().all(|h| h.material == "dense_bone"));
    // easycube has no dense_bone
    let e = case_holes(SimCase::CirsBoneRods, &def("easycube"), &small())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cirs-bone-rods") && e.contains("dense_bone") && e.contains("easycube"),
        "{e}"
    );
    // cases combine (the older CIRS 062 has rods and the void)
    let mut all = BTreeMap::new();
    for c in [SimCase::CirsBoneRods, SimCase::CirsWaterVoid] {
        merge_holes(&mut all, case_holes(c, &d, &small()).unwrap());
    }
    assert_eq!(all.len(), 3);
}

#[test]
fn hole_contents_are_deterministic_and_round_trip() {
    let d = def("cirs062");
    let mut p = SimParams {
        rotation_deg: 9.0,
        ..small()
    };
    for c in [
        SimCase::CirsBoneRods,
        SimCase::CirsWaterVoid,
        SimCase::CirsSiteLayout,
    ] {
        let more = case_holes(c, &d, &p).unwrap();
        merge_holes(&mut p.holes, more);
    }
    let a = render(&p, &d).unwrap();
    let b = render(&p, &d).unwrap();
    assert_eq!(a.truth, b.truth);
    for (x, y) in a.objects.iter().zip(&b.objects) {
        assert_eq!(decode(x).1, decode(y).1);
    }
    // the contents change the series UID (they are parameters)
    assert_ne!(
        a.truth.series_uid,
        render(&small(), &d).unwrap().truth.series_uid
    );
    let json = serde_json::to_string(&a.truth).unwrap();
    let back: Truth = serde_json::from_str(&json).unwrap();
    assert_eq!(back.params, p);
    assert_eq!(back.foreign.len(), 1);
    let h = back.hole("inner_090").unwrap();
    assert_eq!((h.core_radius_mm, h.sleeve_hu), (5.0, Some(0.0)));
    // parameters written before hole contents existed still read
    let mut v: serde_json::Value = serde_json::to_value(small()).unwrap();
    v.as_object_mut().unwrap().remove("holes");
    let old: SimParams = serde_json::from_value(v).unwrap();
    assert!(old.holes.is_empty());
    // unknown keys in a hole content are refused
    assert!(serde_json::from_str::<HoleContent>(r#"{"void_mm": 1}"#).is_err());
}

#[test]
fn hole_spec_parsing() {
    let (id, c) = HoleContent::parse_spec("centre:void_radius_mm=1.5, hu=12").unwrap();
    assert_eq!(id, "centre");
    assert_eq!((c.void_radius_mm, c.hu), (Some(1.5), Some(12.0)));
    let (_, c) = HoleContent::parse_spec("outer_000:empty").unwrap();
    assert_eq!(c.empty, Some(true));
    let (_, c) = HoleContent::parse_spec("x:material=site_bone,hu=1450,empty=no").unwrap();
    assert_eq!(
        (c.material.as_deref(), c.empty),
        (Some("site_bone"), Some(false))
    );
    for (bad, want) in [
        ("centre", "HOLE:key=value"),
        (":hu=1", "no hole id"),
        ("centre:hu=abc", "not a number"),
        ("centre:hu=inf", "not a number"),
        ("centre:colour=red", "unknown key 'colour'"),
        ("centre:", "nothing to set"),
        ("centre:empty=maybe", "true or false"),
        ("centre:material=", "needs a name"),
    ] {
        let e = HoleContent::parse_spec(bad).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
    }
    // merge: later keys win, others stay
    let mut a = HoleContent {
        rod_radius_mm: Some(5.0),
        empty: Some(true),
        ..Default::default()
    };
    a.merge(&HoleContent {
        empty: Some(false),
        hu: Some(3.0),
        ..Default::default()
    });
    assert_eq!(
        (a.rod_radius_mm, a.empty, a.hu),
        (Some(5.0), Some(false), Some(3.0))
    );
}

#[test]
fn easycube_low_contrast_at_20_hu_and_5_mm_renders() {
    let d = def("easycube");
    let p = SimParams {
        noise_sigma_hu: 20.0,
        slice_thickness_mm: 5.0,
        n_slices: 12,
        pixel_mm: 0.8,
        matrix: 320,
        ..SimParams::default()
    };
    let (stack, t) = render_stack(&p, &d).unwrap();
    assert_eq!(t.slice_thickness_mm, 5.0);
    assert_eq!(t.noise_sigma_hu, 20.0);
    let hu = central_hu(&stack, &t);
    for h in &t.holes {
        let (m, n) = disc_mean(&hu, &t, h.x_mm, h.y_mm, 0.6 * h.radius_mm);
        assert!(
            (m - h.hu).abs() < 4.0 * 20.0 / (n as f64).sqrt() + 0.5,
            "{} ({}): {m:.1} vs {}",
            h.hole,
            h.material,
            h.hu
        );
    }
    // the body's noise is 20 HU
    let (cx, cy) = (t.pose.centre_x_mm, t.pose.centre_y_mm);
    let v: Vec<f64> = (0..t.rows * t.cols)
        .filter(|&i| {
            let x = (i % t.cols) as f64 * t.pixel_mm - cx;
            let y = (i / t.cols) as f64 * t.pixel_mm - cy;
            x.abs() < 85.0
                && y.abs() < 85.0
                && t.holes
                    .iter()
                    .all(|h| (x + cx - h.x_mm).hypot(y + cy - h.y_mm) > h.radius_mm + 3.0)
        })
        .map(|i| hu[i])
        .collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    assert!((sd - 20.0).abs() < 1.0 && mean.abs() < 1.0, "{mean} ± {sd}");
}

/// Every built-in definition simulates without code of its own (the Catphan variants, the CIRS
/// head section, the layout-less Gammex templates, ...): every hole drawn with its truth HU in its
/// core, a Catphan's water hole in its vial, and a shuffled layout when asked.
#[test]
fn every_builtin_definition_simulates() {
    for d in PhantomSet::builtin().phantoms {
        simulates(&d);
    }
}

/// See [`every_builtin_definition_simulates`].
fn simulates(d: &PhantomDef) {
    {
        let d = d.clone();
        let p = SimParams {
            rotation_deg: 30.0,
            pixel_mm: 0.8,
            ..exact(512)
        };
        let (stack, t) = render_stack(&p, &d).unwrap();
        let hu = central_hu(&stack, &t);
        let id = d.id.as_str();
        let want_holes = if d.holes.is_empty() {
            t.holes.len()
        } else if d.layout.is_empty() {
            d.holes.len()
        } else {
            d.layout.len()
        };
        assert!(!t.holes.is_empty(), "{id}");
        assert_eq!(t.holes.len(), want_holes, "{id}");
        for h in &t.holes {
            assert!(h.in_definition, "{id} {}", h.hole);
            let inner = h.void_radius_mm.unwrap_or(0.0);
            assert_ring(&hu, &t, h, inner, h.core_radius_mm, h.hu);
            let water_vial = geometry::is_catphan(&d) && h.material == "water";
            assert_eq!(h.vial_wall_mm.is_some(), water_vial, "{id} {}", h.hole);
        }
        let n: usize = t.materials.iter().map(|m| m.n_holes).sum();
        assert_eq!(n, t.holes.len(), "{id}");
        let re = render(
            &SimParams {
                rearrange: Some(2),
                ..small()
            },
            &d,
        )
        .unwrap()
        .truth;
        let distinct: std::collections::BTreeSet<&str> =
            re.holes.iter().map(|h| h.material.as_str()).collect();
        assert_eq!(re.rearranged, distinct.len() > 1, "{id}");
    }
}
