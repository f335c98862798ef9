//! Per-hole contents (issue 9) checked: invalid contents refused naming the hole, the cases on
//! other layouts, determinism and round trips, `--hole` parsing.

use super::*;

/// Render `d` with `c` in `hole`; the error, which must be a `holes` parameter error, as text.
fn holes_error(d: &PhantomDef, hole: &str, c: HoleContent) -> String {
    let e = render(&with_holes(small(), &[(hole, c)]), d).unwrap_err();
    assert!(matches!(e, SimError::Param { name: "holes", .. }), "{e}");
    e.to_string()
}

/// Every content of `cases` in cirs062's inner_000 is refused, naming the hole and saying `want`.
fn assert_refused_in_inner_000(cases: Vec<(HoleContent, &str)>) {
    let d = def("cirs062");
    for (c, want) in cases {
        let e = holes_error(&d, "inner_000", c.clone());
        assert!(e.contains("hole 'inner_000' of cirs062"), "{e}");
        assert!(e.contains(want), "{c:?}: {e}");
    }
}

#[test]
fn an_unknown_hole_is_refused_listing_the_holes() {
    let e = holes_error(
        &def("cirs062"),
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
}

#[test]
fn rods_gaps_voids_and_sleeves_that_do_not_fit_are_refused_naming_the_hole() {
    assert_refused_in_inner_000(vec![
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
    ]);
}

#[test]
fn bad_materials_vials_and_hus_are_refused_naming_the_hole() {
    assert_refused_in_inner_000(vec![
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
    ]);
}

#[test]
fn a_hole_the_layout_leaves_out_needs_a_material() {
    let mut d2 = def("cirs062");
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
}

#[test]
fn uniform_phantoms_have_no_holes_to_fill_and_easycube_holes_are_its_rods() {
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
        &def("cirs062"),
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
