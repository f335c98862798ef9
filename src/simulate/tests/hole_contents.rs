//! Per-hole contents (issue 9) as drawn: rods in sleeves, gaps, voids, empty holes, foreign
//! materials, vials.

use super::*;

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
