//! Determinism, UIDs and attributes, storage variants, padding, modalities, and the files
//! written (Part-10 or raw data sets, truth.json).

use super::*;

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

/// The RescaleIntercept the truth gives slice `i`.
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
