//! Stage 2 on the slab at full resolution: pose refinement, insert localisation (template fit,
//! then per-insert refinement by local contrast; detection for phantoms without a layout), ROI
//! statistics over every slab slice, material assignment and the HU–RED curve.

use super::body::segment;
use super::image::{for_each_in_annulus, median, nan_mean_slices};
use super::rods;
use super::template::{contrast_at, evidence, hole_contrasts, hole_xy, refine_pose, wrap_deg};
use super::{
    AnalysisError, AnalysisOptions, AssignmentMethod, Curve, Geo, HuStack, MaterialResult,
    Measurement, Plan, Pose, RoiMeasurement, SlicesUsed,
};
use crate::phantom::{Localisation, Material, Outline, PhantomDef};
use ndarray::{Array2, Axis};
use pathfinding::prelude::{kuhn_munkres_min, Matrix};

/// Per-insert refinement only where the insert shows at least this contrast (HU); low-contrast
/// inserts keep the rigid template position (a noisy contrast maximum would only move them).
const REFINE_MIN_CONTRAST: f64 = 100.0;
/// How far per-insert refinement may move a centre from the template, mm.
const REFINE_MAX_MM: f64 = 1.5;
/// The ROI edge stays at least this many pixels inside the insert edge.
const EDGE_MARGIN_PX: f64 = 2.0;

/// Where one insert is, before measuring.
#[derive(Debug, Clone)]
struct Loc {
    hole: String,
    ring: Option<String>,
    layout_material: Option<String>,
    x: f64,
    y: f64,
    insert_r: f64,
    shift: f64,
    contrast: f64,
}

/// ROI statistics over all slab slices.
#[derive(Debug, Clone, Copy)]
struct Stats {
    mean: f64,
    std: f64,
    median: f64,
    n: usize,
    missing: usize,
}

pub fn measure(
    plan: &Plan,
    def: &PhantomDef,
    slab: &HuStack,
    opts: &AnalysisOptions,
) -> Result<Measurement, AnalysisError> {
    if slab.n_slices() == 0 {
        return Err(AnalysisError::TooSmall("no slice to measure".into()));
    }
    if def.id != plan.phantom_id {
        return Err(AnalysisError::Definition(format!(
            "the plan is for '{}' but the definition given is '{}'",
            plan.phantom_id, def.id
        )));
    }
    let geo = Geo::of(slab);
    let img = nan_mean_slices(&slab.hu);
    let mut warnings = Vec::new();
    let pxmax = geo.px[0].max(geo.px[1]);

    let (locs, pose, method_hint) = match def.localisation {
        Localisation::Template => {
            let (locs, pose) = locate_template(&img, &geo, def, plan, slab)?;
            (locs, pose, AssignmentMethod::Layout)
        }
        Localisation::Detection => {
            let body = segment(img.view(), &geo).ok_or_else(|| AnalysisError::NotUsable {
                id: def.id.clone(),
                why: "no object found on the measured slices".into(),
            })?;
            let found = rods::detect(img.view(), &body, &geo);
            if found.len() < 3 {
                return Err(AnalysisError::NotUsable {
                    id: def.id.clone(),
                    why: format!(
                        "only {} rod(s) found on the measured slices; at least 3 are needed",
                        found.len()
                    ),
                });
            }
            let locs = found
                .iter()
                .enumerate()
                .map(|(i, r)| Loc {
                    hole: format!("rod_{}", i + 1),
                    ring: None,
                    layout_material: None,
                    x: r.x_mm,
                    y: r.y_mm,
                    insert_r: r.radius_mm,
                    shift: 0.0,
                    contrast: contrast_at(img.view(), &geo, r.x_mm, r.y_mm, r.radius_mm).contrast,
                })
                .collect();
            (locs, plan.pose, AssignmentMethod::Detection)
        }
    };

    // ROI statistics.
    let frac = def.roi_radius_fraction;
    let mut measured: Vec<(Loc, f64, Stats)> = Vec::with_capacity(locs.len());
    for loc in locs {
        let roi_r = (frac * loc.insert_r).min(loc.insert_r - EDGE_MARGIN_PX * pxmax);
        if roi_r < 1.5 * pxmax {
            return Err(AnalysisError::NotUsable {
                id: def.id.clone(),
                why: format!(
                    "insert at hole {} (radius {:.1} mm) is too small for a ROI at {:.2} mm pixels",
                    loc.hole, loc.insert_r, pxmax
                ),
            });
        }
        let st = roi_stats(slab, &geo, loc.x, loc.y, roi_r);
        if st.missing > 0 || st.n == 0 {
            return Err(AnalysisError::NotUsable {
                id: def.id.clone(),
                why: format!(
                    "the insert at hole {}{} lies (partly) outside the reconstructed field of view; re-scan with the phantom centred or a larger FOV",
                    loc.hole,
                    loc.layout_material
                        .as_ref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                ),
            });
        }
        measured.push((loc, roi_r, st));
    }

    // Materials.
    let hus: Vec<f64> = measured.iter().map(|m| m.2.mean).collect();
    let (names, method) = match method_hint {
        AssignmentMethod::Detection => {
            let mats = def.expected_materials();
            let mut a = assign_by_hu(&hus, &mats);
            // Rods left over after every material got one: a second copy of the nearest
            // material when it reads within twice that material's tolerance.
            for (i, slot) in a.iter_mut().enumerate() {
                if slot.is_some() {
                    continue;
                }
                let near = (0..mats.len()).min_by(|x, y| {
                    (hus[i] - mats[*x].hu_expected)
                        .abs()
                        .total_cmp(&(hus[i] - mats[*y].hu_expected).abs())
                });
                match near {
                    Some(j)
                        if (hus[i] - mats[j].hu_expected).abs() <= 2.0 * mats[j].tolerance_hu =>
                    {
                        *slot = Some(j)
                    }
                    _ => warnings.push(format!(
                        "rod at ({:.1}, {:.1}) mm reads {:.0} HU and matches no listed material: not reported",
                        measured[i].0.x, measured[i].0.y, hus[i]
                    )),
                }
            }
            let names: Vec<Option<String>> =
                a.iter().map(|m| m.map(|j| mats[j].name.clone())).collect();
            for m in &mats {
                if !names.iter().any(|n| n.as_deref() == Some(m.name.as_str())) {
                    warnings.push(format!(
                        "no rod found for '{}' (expected about {:.0} HU): a rod without contrast to the body cannot be detected",
                        m.name, m.hu_expected
                    ));
                }
            }
            (names, AssignmentMethod::Detection)
        }
        _ => layout_or_reassign(def, &measured, &hus, &mut warnings),
    };

    let mut inserts: Vec<MaterialResult> = Vec::new();
    for mat in &def.materials {
        let rois: Vec<RoiMeasurement> = measured
            .iter()
            .zip(&names)
            .filter(|(_, n)| n.as_deref() == Some(mat.name.as_str()))
            .map(|((loc, roi_r, st), _)| RoiMeasurement {
                hole: loc.hole.clone(),
                ring: loc.ring.clone(),
                insert: mat.name.clone(),
                center_x_mm: loc.x,
                center_y_mm: loc.y,
                center_col_px: geo.col_of(loc.x),
                center_row_px: geo.row_of(loc.y),
                roi_radius_mm: *roi_r,
                roi_radius_px: roi_r / pxmax,
                insert_radius_mm: loc.insert_r,
                hu_mean: st.mean,
                hu_std: st.std,
                hu_median: st.median,
                n_pixels: st.n,
                n_slices: slab.n_slices(),
                refine_shift_mm: loc.shift,
                contrast_hu: loc.contrast,
                ..Default::default()
            })
            .collect();
        if rois.is_empty() {
            continue;
        }
        let k = rois.len() as f64;
        let hu_mean = rois.iter().map(|r| r.hu_mean).sum::<f64>() / k;
        let hu_std = (rois.iter().map(|r| r.hu_std * r.hu_std).sum::<f64>() / k).sqrt();
        let hu_median = rois.iter().map(|r| r.hu_median).sum::<f64>() / k;
        let within_window = mat.hu_window.map(|[lo, hi]| hu_mean >= lo && hu_mean <= hi);
        if (hu_mean - mat.hu_expected).abs() > (3.0 * mat.tolerance_hu).max(150.0) {
            warnings.push(format!(
                "{} reads {:.0} HU, far from its typical {:.0} HU: check the insert, the layout in the phantom file and the scanner calibration",
                mat.name, hu_mean, mat.hu_expected
            ));
        }
        if rois.len() > 1 {
            let spread = rois.iter().map(|r| r.hu_mean).fold(f64::MIN, f64::max)
                - rois.iter().map(|r| r.hu_mean).fold(f64::MAX, f64::min);
            if spread > mat.tolerance_hu {
                warnings.push(format!(
                    "the copies of {} differ by {:.0} HU (beam hardening or a wrong layout?)",
                    mat.name, spread
                ));
            }
        }
        inserts.push(MaterialResult {
            insert: mat.name.clone(),
            red: mat.red,
            hu_mean,
            hu_std,
            hu_median,
            n_rois: rois.len(),
            n_pixels: rois.iter().map(|r| r.n_pixels).sum(),
            hu_expected: mat.hu_expected,
            hu_window: mat.hu_window,
            within_window,
            rois,
            check_pass: true,
            ..Default::default()
        });
    }
    for m in &inserts {
        if m.red.is_none() {
            warnings.push(format!(
                "{} has no RED in the phantom definition: measured but left out of the curve (set it from the certificate in the phantom file)",
                m.insert
            ));
        }
    }
    let curve = Curve::from_materials(&inserts);
    if !curve.is_monotonic() {
        warnings.push(
            "RED does not increase with HU along the curve: check the material assignment".into(),
        );
    }
    let absolute_pass = inserts.iter().all(|m| m.within_window != Some(false));
    let mut all_warnings = plan.warnings.clone();
    all_warnings.extend(warnings);
    Ok(Measurement {
        phantom_id: def.id.clone(),
        phantom_name: def.name.clone(),
        detection: plan.detection,
        confidence: plan.confidence,
        candidates: plan.candidates.clone(),
        pose: Pose {
            rotation_deg: wrap_deg(pose.rotation_deg),
            ..pose
        },
        slices: SlicesUsed {
            centre_index: plan.centre_index,
            indices: slab.series_index.clone(),
            z_mm: slab.z_mm.clone(),
            slab_mm: opts.slab_mm,
            thickness_mm: slab.thickness_mm,
        },
        assignment: method,
        inserts,
        curve,
        absolute_pass,
        warnings: all_warnings,
        family: def.family.clone(),
        kvp: opts.kvp,
        unassigned: Vec::new(),
        checks: Default::default(),
    })
}

/// Fit the hole template at full resolution and refine each insert by local contrast.
fn locate_template(
    img: &Array2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    plan: &Plan,
    slab: &HuStack,
) -> Result<(Vec<Loc>, Pose), AnalysisError> {
    let steps = [(1.0, 1.0), (0.25, 0.25), (0.1, 0.05)];
    // Rotations that map the hole pattern and the outline onto themselves (the CIRS ellipse and
    // the Catphan 504 ring are both symmetric under 180°) cannot be told apart by the holes'
    // contrast: try each and let the layout decide.
    let starts: Vec<Pose> = symmetries(def)
        .into_iter()
        .map(|phi| Pose {
            rotation_deg: plan.pose.rotation_deg + phi,
            ..plan.pose
        })
        .collect();
    let mut best: Option<(f64, Vec<Loc>, Pose)> = None;
    for start in starts {
        let (_, pose) = refine_pose(img.view(), geo, def, start, &steps);
        let contrasts = hole_contrasts(img.view(), geo, def, &pose);
        let ev = evidence(&contrasts, def);
        if ev < 0.5 {
            return Err(AnalysisError::NotUsable {
                id: def.id.clone(),
                why: format!(
                    "only {:.0} % of the expected inserts show on the measured slices (series indices {:?}); is this the right phantom and module?",
                    100.0 * ev,
                    slab.series_index
                ),
            });
        }
        let mut locs = Vec::with_capacity(def.holes.len());
        for (h, c) in def.holes.iter().zip(&contrasts) {
            let (x0, y0) = hole_xy(h, &pose);
            let (mut x, mut y, mut con) = (x0, y0, c.contrast);
            if c.contrast >= REFINE_MIN_CONTRAST {
                let step = 0.25;
                let n = (REFINE_MAX_MM / step).round() as i32;
                for i in -n..=n {
                    for j in -n..=n {
                        let (xx, yy) = (x0 + i as f64 * step, y0 + j as f64 * step);
                        if (xx - x0).hypot(yy - y0) > REFINE_MAX_MM + 1e-9 {
                            continue;
                        }
                        let cc = contrast_at(img.view(), geo, xx, yy, h.radius_mm).contrast;
                        if cc > con + 1e-9 {
                            con = cc;
                            x = xx;
                            y = yy;
                        }
                    }
                }
            }
            locs.push(Loc {
                hole: h.id.clone(),
                ring: h.ring.clone(),
                layout_material: def.layout.get(&h.id).cloned(),
                x,
                y,
                insert_r: h.radius_mm,
                shift: (x - x0).hypot(y - y0),
                contrast: con,
            });
        }
        // Layout agreement (squared HU distance of the ROI means to the layout's expectations).
        let cost: f64 = locs
            .iter()
            .filter_map(|l| {
                let m = def.material(l.layout_material.as_deref()?)?;
                let r = (def.roi_radius_fraction * l.insert_r).min(l.insert_r - 2.0 * geo.px[0]);
                let st = roi_stats(slab, geo, l.x, l.y, r.max(geo.px[0]));
                st.mean
                    .is_finite()
                    .then(|| (st.mean - m.hu_expected).powi(2))
            })
            .sum();
        if best.as_ref().is_none_or(|b| cost < b.0) {
            best = Some((cost, locs, pose));
        }
    }
    let (_, locs, pose) = best.ok_or_else(|| AnalysisError::NotUsable {
        id: def.id.clone(),
        why: "the hole template could not be placed".into(),
    })?;
    Ok((locs, pose))
}

/// Rotations (degrees, including 0) under which the definition's holes land on holes of the same
/// radius (within half a radius: the CIRS outer ring is not quite circular) and the outline on
/// itself. Each symmetry is reported once, at the angle of the best match.
fn symmetries(def: &PhantomDef) -> Vec<f64> {
    let outline_ok = |deg: i32| match def.outline {
        Outline::Circle { .. } => true,
        Outline::Ellipse {
            width_mm,
            height_mm,
        } => (width_mm - height_mm).abs() < 1e-6 || deg % 180 == 0,
        Outline::Square { .. } => deg % 90 == 0,
    };
    if def.holes.is_empty() {
        return vec![0.0];
    }
    // Worst mismatch (mm, relative to the hole radius) of the pattern rotated by each degree.
    let mismatch = |deg: i32| -> f64 {
        let p = Pose {
            centre_x_mm: 0.0,
            centre_y_mm: 0.0,
            rotation_deg: deg as f64,
        };
        def.holes
            .iter()
            .map(|h| {
                let (x, y) = hole_xy(h, &p);
                def.holes
                    .iter()
                    .filter(|g| (g.radius_mm - h.radius_mm).abs() < 0.1 * h.radius_mm)
                    .map(|g| (g.x_mm - x).hypot(g.y_mm - y) / h.radius_mm)
                    .fold(f64::INFINITY, f64::min)
            })
            .fold(0.0, f64::max)
    };
    let m: Vec<f64> = (0..360)
        .map(|d| {
            if outline_ok(d) {
                mismatch(d)
            } else {
                f64::INFINITY
            }
        })
        .collect();
    // Local minima below the threshold (the pattern matches over a few degrees around each).
    (0..360i32)
        .filter(|&d| {
            let prev = m[((d + 359) % 360) as usize];
            let next = m[((d + 1) % 360) as usize];
            let here = m[d as usize];
            here < 0.5 && here <= prev && here < next
        })
        .map(|d| d as f64)
        .collect()
}

/// Mean, std, median and count of the pixels within `r` mm of (x, y), pooled over all slices.
fn roi_stats(slab: &HuStack, geo: &Geo, x: f64, y: f64, r: f64) -> Stats {
    let centre = (geo.row_of(y), geo.col_of(x));
    let mut vals: Vec<f32> = Vec::new();
    let mut missing = 0usize;
    for k in 0..slab.n_slices() {
        let s = slab.hu.index_axis(Axis(0), k);
        let (rows, cols) = s.dim();
        let mut nan_here = 0usize;
        let outside = for_each_in_annulus(rows, cols, centre, 0.0, r, geo.px, |rr, cc| {
            let v = s[[rr, cc]];
            if v.is_finite() {
                vals.push(v);
            } else {
                nan_here += 1;
            }
        });
        missing += outside + nan_here;
    }
    let n = vals.len();
    let mean = if n > 0 {
        vals.iter().map(|v| *v as f64).sum::<f64>() / n as f64
    } else {
        f64::NAN
    };
    let std = if n > 1 {
        (vals.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    let med = median(&mut vals);
    Stats {
        mean,
        std,
        median: med,
        n,
        missing,
    }
}

/// Keep the layout unless the measured HUs clearly contradict it; then re-assign by expected HU
/// (optimal assignment over the same multiset of materials) and say so.
fn layout_or_reassign(
    def: &PhantomDef,
    measured: &[(Loc, f64, Stats)],
    hus: &[f64],
    warnings: &mut Vec<String>,
) -> (Vec<Option<String>>, AssignmentMethod) {
    let layout: Vec<Option<String>> = measured
        .iter()
        .map(|m| m.0.layout_material.clone())
        .collect();
    let idx: Vec<usize> = (0..measured.len())
        .filter(|i| layout[*i].is_some())
        .collect();
    let slots: Vec<&Material> = idx
        .iter()
        .filter_map(|i| def.material(layout[*i].as_deref()?))
        .collect();
    if slots.len() != idx.len() || idx.is_empty() {
        return (layout, AssignmentMethod::Layout);
    }
    let vals: Vec<f64> = idx.iter().map(|i| hus[*i]).collect();
    let layout_cost: f64 = vals
        .iter()
        .zip(&slots)
        .map(|(h, m)| (h - m.hu_expected).powi(2))
        .sum();
    let opt = assign_by_hu(&vals, &slots);
    let opt_cost: f64 = opt
        .iter()
        .zip(&vals)
        .filter_map(|(a, h)| a.map(|j| (h - slots[j].hu_expected).powi(2)))
        .sum();
    // A monotone drift of the scanner keeps the layout optimal (1-D sorted matching), so only a
    // real rearrangement makes the optimal assignment much cheaper.
    if layout_cost - opt_cost > 200.0 && opt_cost < 0.5 * layout_cost {
        let mut out = layout.clone();
        let mut changes = Vec::new();
        for (k, i) in idx.iter().enumerate() {
            if let Some(j) = opt[k] {
                let new = slots[j].name.clone();
                if layout[*i].as_deref() != Some(new.as_str()) {
                    changes.push(format!(
                        "{}: layout {} → {} ({:.0} HU)",
                        measured[*i].0.hole,
                        layout[*i].as_deref().unwrap_or("-"),
                        new,
                        hus[*i]
                    ));
                }
                out[*i] = Some(new);
            }
        }
        warnings.push(format!(
            "the measured HUs contradict the phantom layout: materials re-assigned by expected HU ({}); check the insert positions and update the layout in the phantom file",
            changes.join(", ")
        ));
        (out, AssignmentMethod::Reassigned)
    } else {
        (layout, AssignmentMethod::Layout)
    }
}

/// Optimal assignment of measured HUs to materials by squared distance to the expected HU.
/// Returns, per value, the index of the material given to it (None when there are more values
/// than materials and this one was left over).
fn assign_by_hu(values: &[f64], mats: &[&Material]) -> Vec<Option<usize>> {
    let (nv, nm) = (values.len(), mats.len());
    if nv == 0 || nm == 0 {
        return vec![None; nv];
    }
    let cost = |v: usize, m: usize| -> i64 {
        let d = values[v] - mats[m].hu_expected;
        if d.is_finite() {
            (d * d).round().min(1e15) as i64
        } else {
            1_000_000_000_000
        }
    };
    let mut out = vec![None; nv];
    if nv <= nm {
        let w = Matrix::from_fn(nv, nm, |(v, m)| cost(v, m));
        let (_, a) = kuhn_munkres_min(&w);
        for (v, m) in a.into_iter().enumerate() {
            out[v] = Some(m);
        }
    } else {
        let w = Matrix::from_fn(nm, nv, |(m, v)| cost(v, m));
        let (_, a) = kuhn_munkres_min(&w);
        for (m, v) in a.into_iter().enumerate() {
            out[v] = Some(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(name: &str, hu: f64) -> Material {
        Material {
            name: name.into(),
            red: Some(1.0),
            density_g_cm3: None,
            hu_expected: hu,
            tolerance_hu: 40.0,
            hu_window: None,
            hu_window_kvp: None,
            hu_band: None,
            optional: false,
            note: None,
        }
    }

    #[test]
    fn symmetries_of_the_builtins() {
        let set = crate::phantom::PhantomSet::builtin();
        assert_eq!(
            symmetries(set.get("catphan_504").unwrap()),
            vec![0.0, 180.0]
        );
        assert_eq!(symmetries(set.get("cirs062").unwrap()), vec![0.0, 180.0]);
    }

    #[test]
    fn assignment_is_optimal_and_handles_extra_values() {
        let a = mat("a", -800.0);
        let b = mat("b", 0.0);
        let c = mat("c", 900.0);
        let ms = [&a, &b, &c];
        assert_eq!(
            assign_by_hu(&[880.0, -790.0, 10.0], &ms),
            vec![Some(2), Some(0), Some(1)]
        );
        let r = assign_by_hu(&[880.0, -790.0, 10.0, 400.0], &ms);
        assert_eq!(r.iter().filter(|x| x.is_none()).count(), 1);
        assert_eq!(r[3], None);
    }
}
