//! What the rendered images show: the truth's holes and HUs, exact noise-free pixels, rearranged
//! layouts, slab edges, Catphan modules, noise, couch, HU offsets, and every built-in definition.

use super::*;

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
