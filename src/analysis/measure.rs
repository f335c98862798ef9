//! Stage 2 on the slab at full resolution: pose refinement, insert localisation (template fit,
//! then per-insert refinement by local contrast; detection for phantoms without a layout), an
//! ROI fitted to what each hole holds (`core`), statistics over every slab slice, material
//! assignment (`assign`), the materials, the absolute checks (`checks`) and the HU–RED curve.

use super::assign::{self, HoleHu};
use super::body::segment;
use super::checks::{self, RefusedHole};
use super::core::{self, Core, HoleSpec};
use super::image::{disc_median, for_each_in_annulus, median, nan_mean_slices};
use super::rods;
use super::template::{
    centroid, contrast_at, evidence, hole_contrasts, hole_xy, refine_pose, wrap_deg,
};
use super::{
    AnalysisError, AnalysisOptions, CoreKind, Curve, FoundBy, Geo, HuStack, Measurement, Plan,
    Pose, RoiMeasurement, SlicesUsed, UnassignedHole,
};
use crate::phantom::{Localisation, Outline, PhantomDef};
use ndarray::{Array2, Axis};

/// Per-insert refinement only where the insert shows at least this contrast (HU); low-contrast
/// inserts keep the rigid template position (a noisy contrast maximum would only move them).
const REFINE_MIN_CONTRAST: f64 = 100.0;
/// How far per-insert refinement may move a centre from the template: this, or 15 % of the hole
/// radius for large holes, mm.
const REFINE_MAX_MM: f64 = 1.5;
/// Rods are detected on the slab mean reduced to about this pixel size (block mean): 4× fewer
/// pixels at 0.8 mm, half the noise, and rods are ≥ 8 mm wide. ROIs are fitted at full resolution.
const DETECT_PIXEL_MM: f64 = 1.6;

/// Where one insert is, before measuring.
#[derive(Debug, Clone)]
struct Loc {
    hole: String,
    ring: Option<String>,
    layout_material: Option<String>,
    x: f64,
    y: f64,
    insert_r: f64,
    /// Wall of a vial at the hole's edge (its content is `insert_r − wall` wide), mm.
    wall: f64,
    shift: f64,
    contrast: f64,
    /// Rods of a detection phantom: found by contrast or at a site of their pattern.
    found_by: Option<FoundBy>,
}

/// ROI statistics over all slab slices.
#[derive(Debug, Clone, Copy)]
struct Stats {
    mean: f64,
    std: f64,
    median: f64,
    n: usize,
    missing: usize,
    excluded: usize,
}

/// One hole after its ROI was fitted and measured (or refused).
struct Measured {
    loc: Loc,
    roi: Result<(Core, Stats), String>,
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
    let kvp = opts.kvp;

    let (locs, pose, mut warnings) = match def.localisation {
        Localisation::Template => {
            let (locs, pose) = locate_template(&img, &geo, def, plan, slab)?;
            (locs, pose, Vec::new())
        }
        Localisation::Detection => {
            let (locs, notes) = detect_rods(&img, &geo, def, plan)?;
            (locs, plan.pose, notes)
        }
    };

    // An ROI fitted to what each hole holds, measured over the slab.
    let holes = measure_holes(locs, def, &img, &geo, slab)?;

    // Materials.
    let hus: Vec<Option<HoleHu>> = holes
        .iter()
        .map(|h| {
            h.roi.as_ref().ok().map(|(_, st)| HoleHu {
                hole: h.loc.hole.clone(),
                hu: st.mean,
                layout: h.loc.layout_material.clone(),
            })
        })
        .collect();
    let assigned = assign::assign(def, &hus, kvp);
    warnings.extend(assigned.warnings.iter().cloned());
    let (rois, unassigned, refused) = sort_holes(&holes, &assigned, def, &geo, slab);
    hole_warnings(&unassigned, &refused, &mut warnings);
    let mut inserts = checks::materials(def, &rois, &refused, kvp);
    for m in &inserts {
        if m.red.is_none() && m.hu_mean.is_finite() {
            warnings.push(format!(
                "{} has no RED in the phantom definition: measured but left out of the curve (set it from the certificate in the phantom file)",
                m.insert
            ));
        }
    }
    let curve = Curve::from_materials(&inserts);
    let checks = checks::judge(def, &mut inserts, &curve, &unassigned, &refused, kvp);
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
        assignment: assigned.method,
        inserts,
        curve,
        absolute_pass: checks.pass,
        warnings: all_warnings,
        family: def.family.clone(),
        kvp,
        unassigned,
        checks,
    })
}

/// An ROI fitted to what each hole holds (a plain disc at the site for a rod placed by its
/// pattern), measured over the slab; an error when an ROI reaches outside the field of view or
/// no hole could be measured.
fn measure_holes(
    locs: Vec<Loc>,
    def: &PhantomDef,
    img: &Array2<f32>,
    geo: &Geo,
    slab: &HuStack,
) -> Result<Vec<Measured>, AnalysisError> {
    let mut holes: Vec<Measured> = Vec::with_capacity(locs.len());
    for loc in locs {
        let spec = HoleSpec {
            x: loc.x,
            y: loc.y,
            radius: loc.insert_r - loc.wall,
            fraction: def.roi_radius_fraction,
            expected_hu: loc
                .layout_material
                .as_deref()
                .and_then(|m| def.material(m))
                .map(|m| m.hu_expected),
        };
        // A rod placed by its pattern shows no contrast: its ROI is the disc at the site (the
        // position is known from geometry; a core fitted to the noise would only move it).
        let fitted = if loc.found_by == Some(FoundBy::Pattern) {
            pattern_disc(geo, &spec)
        } else {
            core::fit(img.view(), geo, &spec)
        };
        let roi = fitted.map(|c| {
            let st = roi_stats(slab, geo, &c);
            (c, st)
        });
        if let Ok((_, st)) = &roi {
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
        }
        holes.push(Measured { loc, roi });
    }
    if holes.iter().all(|h| h.roi.is_err()) {
        let why = holes
            .iter()
            .filter_map(|h| h.roi.as_ref().err().map(|e| format!("{}: {e}", h.loc.hole)))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AnalysisError::NotUsable {
            id: def.id.clone(),
            why: format!("no insert could be measured ({why})"),
        });
    }
    Ok(holes)
}

/// Each measured hole by what it holds: an ROI of the material assigned to it, an unassigned
/// hole (reported apart), or a refused one (no ROI).
fn sort_holes(
    holes: &[Measured],
    assigned: &assign::Assignment,
    def: &PhantomDef,
    geo: &Geo,
    slab: &HuStack,
) -> (Vec<RoiMeasurement>, Vec<UnassignedHole>, Vec<RefusedHole>) {
    let mut rois = Vec::new();
    let mut unassigned = Vec::new();
    let mut refused = Vec::new();
    for (k, h) in holes.iter().enumerate() {
        match &h.roi {
            Err(reason) => refused.push(RefusedHole {
                hole: h.loc.hole.clone(),
                layout_material: h.loc.layout_material.clone(),
                reason: reason.clone(),
            }),
            Ok((c, st)) => match assigned.material[k] {
                Some(j) => rois.push(roi_measurement(
                    &h.loc,
                    c,
                    st,
                    &def.materials[j].name,
                    geo,
                    slab,
                )),
                None => unassigned.push(UnassignedHole {
                    hole: h.loc.hole.clone(),
                    ring: h.loc.ring.clone(),
                    center_x_mm: c.x,
                    center_y_mm: c.y,
                    hu_mean: st.mean,
                    hu_std: st.std,
                    n_pixels: st.n,
                    layout_material: h.loc.layout_material.clone(),
                    note: assigned.why[k].clone().unwrap_or_default(),
                }),
            },
        }
    }
    (rois, unassigned, refused)
}

/// A warning per unassigned hole (reported apart) and per refused one (with its reason).
fn hole_warnings(
    unassigned: &[UnassignedHole],
    refused: &[RefusedHole],
    warnings: &mut Vec<String>,
) {
    for u in unassigned {
        warnings.push(format!(
            "hole {} ({:.1}, {:.1}) mm{} {}: reported apart, not pooled into any material",
            u.hole,
            u.center_x_mm,
            u.center_y_mm,
            u.layout_material
                .as_ref()
                .map(|m| format!(", where the layout has {m},"))
                .unwrap_or_default(),
            u.note
        ));
    }
    for r in refused {
        warnings.push(format!("hole {}: {}", r.hole, r.reason));
    }
}

fn roi_measurement(
    loc: &Loc,
    c: &Core,
    st: &Stats,
    material: &str,
    geo: &Geo,
    slab: &HuStack,
) -> RoiMeasurement {
    let pxmax = geo.px[0].max(geo.px[1]);
    RoiMeasurement {
        hole: loc.hole.clone(),
        ring: loc.ring.clone(),
        insert: material.to_string(),
        center_x_mm: c.x,
        center_y_mm: c.y,
        center_col_px: geo.col_of(c.x),
        center_row_px: geo.row_of(c.y),
        roi_radius_mm: c.r_out,
        roi_radius_px: c.r_out / pxmax,
        insert_radius_mm: loc.insert_r,
        hu_mean: st.mean,
        hu_std: st.std,
        hu_median: st.median,
        n_pixels: st.n,
        n_slices: slab.n_slices(),
        refine_shift_mm: (c.x - loc.x).hypot(c.y - loc.y) + loc.shift,
        contrast_hu: loc.contrast,
        core: c.kind,
        roi_inner_radius_mm: c.r_in,
        feature_radius_mm: c.feature_r,
        n_excluded: st.excluded,
        found_by: loc.found_by,
    }
}

/// Rods of a detection phantom on the slab mean: found by contrast on a reduced copy, completed
/// from their pattern (`rods`). Returns the rods and notes on how the pattern was used.
fn detect_rods(
    img: &Array2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    plan: &Plan,
) -> Result<(Vec<Loc>, Vec<String>), AnalysisError> {
    let f = (DETECT_PIXEL_MM / geo.px[0].min(geo.px[1]))
        .round()
        .max(1.0) as usize;
    // A noisy slab (thin slices, one slice in the slab) is tried again at twice the block size.
    let mut found = rods::Found::default();
    for f in [f, 2 * f] {
        let (small, sgeo) = rods::reduce(img.view(), geo, f);
        let body = segment(small.view(), &sgeo).ok_or_else(|| AnalysisError::NotUsable {
            id: def.id.clone(),
            why: "no object found on the measured slices".into(),
        })?;
        // The body centroid, unless the body is cut by the field of view (then the plan's pose).
        let centre = if body.touches_edge {
            (plan.pose.centre_x_mm, plan.pose.centre_y_mm)
        } else {
            (sgeo.x_of(body.centroid.1), sgeo.y_of(body.centroid.0))
        };
        found = rods::find(small.view(), &body, &sgeo, centre, plan.pose.rotation_deg);
        if found.blind >= rods::MIN_BLIND {
            break;
        }
    }
    if found.blind < rods::MIN_BLIND {
        return Err(AnalysisError::NotUsable {
            id: def.id.clone(),
            why: format!(
                "only {} rod(s) found on the measured slices; at least {} are needed",
                found.blind,
                rods::MIN_BLIND
            ),
        });
    }
    let locs: Vec<Loc> = found
        .rods
        .iter()
        .enumerate()
        .map(|(i, r)| Loc {
            hole: format!("rod_{}", i + 1),
            ring: r.site.clone(),
            layout_material: None,
            x: r.x_mm,
            y: r.y_mm,
            insert_r: r.radius_mm,
            wall: 0.0,
            shift: 0.0,
            contrast: contrast_at(img.view(), geo, r.x_mm, r.y_mm, r.radius_mm).contrast,
            found_by: Some(r.found_by),
        })
        .collect();
    let mut notes = Vec::new();
    if let Some(p) = &found.pattern {
        let by_pattern: Vec<String> = locs
            .iter()
            .zip(&found.rods)
            .filter(|(_, r)| r.found_by == FoundBy::Pattern)
            .map(|(l, r)| {
                format!(
                    "{} ({}, at {:.1}, {:.1} mm, {:+.1} HU against the body around it)",
                    l.hole,
                    r.site.as_deref().unwrap_or("site"),
                    r.x_mm,
                    r.y_mm,
                    r.contrast_hu
                )
            })
            .collect();
        if !by_pattern.is_empty() {
            notes.push(format!(
                "rod(s) without contrast to the body measured where the rod pattern puts them: {}; the pattern is {} ({} of {} sites hold a rod seen by its contrast, fit within {:.1} mm); a site of this pattern without a rod would read the body",
                by_pattern.join(", "),
                p.description,
                p.by_contrast,
                p.sites,
                p.max_residual_mm
            ));
        } else if !p.certain && p.by_contrast < p.sites {
            notes.push(format!(
                "the rods form {}, but only {} of its {} sites show a rod: the others are not measured (too few rods to be sure of the pattern)",
                p.description, p.by_contrast, p.sites
            ));
        }
    }
    Ok((locs, notes))
}

/// The ROI of a rod found by its pattern: the disc of `fraction` × its radius (at least
/// [`core::EDGE_MARGIN_PX`] pixels inside its edge) at the site.
fn pattern_disc(geo: &Geo, spec: &HoleSpec) -> Result<Core, String> {
    let px = geo.px[0].max(geo.px[1]);
    let r_out = (spec.fraction * spec.radius).min(spec.radius - core::EDGE_MARGIN_PX * px);
    let n_px = (std::f64::consts::PI * r_out.max(0.0).powi(2) / (geo.px[0] * geo.px[1])) as usize;
    if n_px < core::MIN_CORE_PX {
        return Err(format!(
            "no core of {} pixels in a rod of radius {:.1} mm at {:.2} mm pixels",
            core::MIN_CORE_PX,
            spec.radius,
            px
        ));
    }
    Ok(Core {
        x: spec.x,
        y: spec.y,
        r_in: 0.0,
        r_out,
        kind: CoreKind::Disc,
        feature_r: None,
        excluded: Vec::new(),
        n_px,
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
    let mut best: Option<((f64, f64), Vec<Loc>, Pose)> = None;
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
        // High-contrast holes are located one by one (centroid); the rigid pose is then fitted
        // to them, and places the holes without contrast (water in a water-like body).
        let found: Vec<Option<(f64, f64)>> = def
            .holes
            .iter()
            .zip(&contrasts)
            .map(|(h, c)| {
                let (x0, y0) = hole_xy(h, &pose);
                let reach = REFINE_MAX_MM.max(0.15 * h.radius_mm);
                (c.contrast >= REFINE_MIN_CONTRAST)
                    .then(|| centroid(img.view(), geo, x0, y0, h.radius_mm))
                    .flatten()
                    .filter(|(cx, cy)| (cx - x0).hypot(cy - y0) <= reach)
            })
            .collect();
        let pairs: Vec<PointPair> = def
            .holes
            .iter()
            .zip(&found)
            .filter_map(|(h, f)| f.map(|q| ((h.x_mm, h.y_mm), q)))
            .collect();
        let pose = if pairs.len() >= 3 {
            rigid_fit(&pairs)
        } else {
            pose
        };
        let mut locs = Vec::with_capacity(def.holes.len());
        for (h, f) in def.holes.iter().zip(&found) {
            let (x0, y0) = hole_xy(h, &pose);
            let (x, y) = f.unwrap_or((x0, y0));
            locs.push(Loc {
                hole: h.id.clone(),
                ring: h.ring.clone(),
                layout_material: def.layout.get(&h.id).cloned(),
                x,
                y,
                insert_r: h.radius_mm,
                wall: h.vial_wall_mm.unwrap_or(0.0).max(0.0),
                shift: (x - x0).hypot(y - y0),
                contrast: contrast_at(img.view(), geo, x, y, h.radius_mm).contrast,
                found_by: None,
            });
        }
        // Layout agreement (squared HU distance of the holes' medians — robust to a rod in a
        // sleeve or a void — to the layout's expectations).
        let cost: f64 = locs
            .iter()
            .filter_map(|l| {
                let m = def.material(l.layout_material.as_deref()?)?;
                let r = (def.roi_radius_fraction * l.insert_r).min(l.insert_r - 2.0 * geo.px[0]);
                let whole = disc_median(img.view(), geo, l.x, l.y, r.max(geo.px[0]));
                // A rod narrower than its hole shows in the hole's centre only.
                let centre = disc_median(
                    img.view(),
                    geo,
                    l.x,
                    l.y,
                    (0.35 * l.insert_r).max(geo.px[0]),
                );
                let d = [whole, centre]
                    .into_iter()
                    .filter(|v| v.is_finite())
                    .map(|v| (v - m.hu_expected).powi(2))
                    .fold(f64::INFINITY, f64::min);
                d.is_finite().then_some(d)
            })
            .sum();
        // Equal costs (no layout: the Gammex pattern repeats every 45°): the orientation
        // nearest the definition's own, so that hole ids are stable from scan to scan.
        let key = (cost, wrap_deg(pose.rotation_deg).abs());
        if best
            .as_ref()
            .is_none_or(|b| key.0 < b.0 .0 || (key.0 == b.0 .0 && key.1 < b.0 .1))
        {
            best = Some((key, locs, pose));
        }
    }
    let (_, locs, pose) = best.ok_or_else(|| AnalysisError::NotUsable {
        id: def.id.clone(),
        why: "the hole template could not be placed".into(),
    })?;
    Ok((locs, pose))
}

/// A point in phantom coordinates and where it was found in the image, mm.
type PointPair = ((f64, f64), (f64, f64));

/// The rigid pose (centre, rotation; no scale) that maps the phantom points onto the image
/// points in the least-squares sense (2-D Procrustes).
fn rigid_fit(pairs: &[PointPair]) -> Pose {
    let n = pairs.len() as f64;
    let (mut px, mut py, mut qx, mut qy) = (0.0, 0.0, 0.0, 0.0);
    for ((a, b), (c, d)) in pairs {
        px += a;
        py += b;
        qx += c;
        qy += d;
    }
    let (px, py, qx, qy) = (px / n, py / n, qx / n, qy / n);
    let (mut dot, mut cross) = (0.0, 0.0);
    for ((a, b), (c, d)) in pairs {
        let (ax, ay, bx, by) = (a - px, b - py, c - qx, d - qy);
        dot += ax * bx + ay * by;
        cross += ax * by - ay * bx;
    }
    let theta = cross.atan2(dot);
    let (s, c) = theta.sin_cos();
    Pose {
        centre_x_mm: qx - (px * c - py * s),
        centre_y_mm: qy - (px * s + py * c),
        rotation_deg: theta.to_degrees(),
    }
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

/// Mean, std, median and count of the pixels of the fitted ROI (its annulus, without the
/// excluded pixels), pooled over all slab slices.
fn roi_stats(slab: &HuStack, geo: &Geo, c: &Core) -> Stats {
    let centre = (geo.row_of(c.y), geo.col_of(c.x));
    let excluded: std::collections::HashSet<(usize, usize)> = c.excluded.iter().copied().collect();
    let mut vals: Vec<f32> = Vec::new();
    let mut missing = 0usize;
    let mut n_excluded = 0usize;
    for k in 0..slab.n_slices() {
        let s = slab.hu.index_axis(Axis(0), k);
        let (rows, cols) = s.dim();
        let mut nan_here = 0usize;
        let outside = for_each_in_annulus(rows, cols, centre, c.r_in, c.r_out, geo.px, |rr, cc| {
            if excluded.contains(&(rr, cc)) {
                n_excluded += 1;
                return;
            }
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
        excluded: n_excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetries_of_the_builtins() {
        let set = crate::phantom::PhantomSet::builtin();
        assert_eq!(
            symmetries(set.get("catphan_504").unwrap()),
            vec![0.0, 180.0]
        );
        assert_eq!(symmetries(set.get("cirs062").unwrap()), vec![0.0, 180.0]);
    }
}
