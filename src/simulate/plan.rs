//! The series plan: everything decided before any pixel is drawn (hole contents, the truth's
//! holes and materials, slice positions and segment weights, storage, UIDs) and the blurred
//! ideal image of each distinct z segment; [`Plan`] then gives each slice's HU and stored values.

use super::validate::{param_err, validate};
use super::{
    encode, filter, fnv1a, geometry, holes, mix, scene, uid_from, SimError, SimParams, Truth,
    TruthCircle, TruthCouch, TruthFeature, TruthHole, TruthMaterial, TruthModule, TruthSlice,
    TruthStorage, COUCH_FOAM_HU, COUCH_FOAM_MM, COUCH_PLATE_HU, COUCH_PLATE_MM, COUCH_WIDTH_MM,
};
use crate::analysis::Pose;
use crate::phantom::PhantomDef;
use rayon::prelude::*;
use std::collections::BTreeMap;

const SEED_STUDY: u64 = 0x5354_5544;
const SEED_FOR: u64 = 0x464f_5231;
const SEED_SERIES: u64 = 0x5345_5249;
const SEED_SOP: u64 = 0x534f_5031;
const SEED_NOISE: u64 = 0x4e4f_4953;

/// The layout's inserts after `rearrange`, the material each hole held before it (hole id →
/// material), and whether the rearrangement moved any material.
type LayoutInserts = (Vec<geometry::Insert>, BTreeMap<String, String>, bool);

/// The [`LayoutInserts`] of `def` with `p` (none for a uniform phantom).
pub(crate) fn layout_inserts(
    p: &SimParams,
    def: &PhantomDef,
    body_hu: f64,
) -> Result<LayoutInserts, SimError> {
    if p.uniform {
        return Ok((Vec::new(), BTreeMap::new(), false));
    }
    let mut inserts = geometry::inserts(def, body_hu)?;
    let original: BTreeMap<String, String> = inserts
        .iter()
        .map(|i| (i.id.clone(), i.material.clone()))
        .collect();
    let rearranged = match p.rearrange {
        Some(seed) if !inserts.is_empty() => {
            let before: Vec<String> = inserts.iter().map(|i| i.material.clone()).collect();
            geometry::rearrange(&mut inserts, seed);
            inserts.iter().map(|i| &i.material).ne(before.iter())
        }
        _ => false,
    };
    Ok((inserts, original, rearranged))
}

/// Everything decided before any pixel is drawn, plus the segment images.
pub(super) struct Plan {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) dx: f64,
    pub(super) dy: f64,
    /// Blurred ideal image of each distinct segment content.
    images: Vec<Vec<f32>>,
    /// Per slice: (image index, weight).
    weights: Vec<Vec<(usize, f32)>>,
    noise: filter::NoiseModel,
    noise_seed: u64,
    circle: Option<(f64, f64, f64)>,
    pub(super) intercepts: Vec<f64>,
    pub(super) slope: f64,
    stored_range: (i32, i32),
    pub(super) padding: Vec<Option<i32>>,
    pub(super) truth: Truth,
}

/// Where the phantom sits in the image: the image centre (mm), the phantom's pose and the
/// placement that maps phantom points into the image.
struct Frame {
    rows: usize,
    cols: usize,
    dx: f64,
    dy: f64,
    image_centre: [f64; 2],
    pose: Pose,
    place: geometry::Placement,
}

fn frame(p: &SimParams) -> Frame {
    let rows = p.matrix;
    let cols = p.matrix;
    let (dx, dy) = (p.pixel_mm, p.pixel_mm);
    let image_centre = [
        (cols as f64 - 1.0) / 2.0 * dx,
        (rows as f64 - 1.0) / 2.0 * dy,
    ];
    let pose = Pose {
        centre_x_mm: image_centre[0] + p.shift_x_mm,
        centre_y_mm: image_centre[1] + p.shift_y_mm,
        rotation_deg: p.rotation_deg,
    };
    let place = geometry::Placement::new(pose.centre_x_mm, pose.centre_y_mm, pose.rotation_deg);
    Frame {
        rows,
        cols,
        dx,
        dy,
        image_centre,
        pose,
        place,
    }
}

/// The inserts with their resolved contents, the layout's original material per hole, and
/// whether `rearrange` moved a material.
type FilledInserts = (
    Vec<(geometry::Insert, geometry::Fill)>,
    BTreeMap<String, String>,
    bool,
);

/// The layout's inserts (plus the holes it leaves out but a content fills), in the
/// definition's order, each with its resolved content.
fn fill_inserts(p: &SimParams, def: &PhantomDef, body_hu: f64) -> Result<FilledInserts, SimError> {
    let (mut inserts, original, rearranged) = layout_inserts(p, def, body_hu)?;
    if p.uniform && !p.holes.is_empty() {
        return Err(param_err(
            "holes",
            "a uniform phantom has no inserts: drop the hole contents (or uniform)",
        ));
    }
    let known: Vec<&str> = if def.holes.is_empty() {
        inserts.iter().map(|i| i.id.as_str()).collect()
    } else {
        def.holes.iter().map(|h| h.id.as_str()).collect()
    };
    for id in p.holes.keys() {
        if !known.contains(&id.as_str()) {
            return Err(param_err(
                "holes",
                format!(
                    "'{id}' is not a hole of {} (its holes: {})",
                    def.id,
                    known.join(", ")
                ),
            ));
        }
    }
    // Holes the layout leaves out but a content fills, in the definition's order.
    for h in &def.holes {
        if p.holes.contains_key(&h.id) && !inserts.iter().any(|i| i.id == h.id) {
            inserts.push(geometry::Insert {
                id: h.id.clone(),
                ring: h.ring.clone(),
                material: String::new(),
                px: h.x_mm,
                py: h.y_mm,
                radius_mm: h.radius_mm,
            });
        }
    }
    if !def.holes.is_empty() {
        inserts.sort_by_key(|i| {
            def.holes
                .iter()
                .position(|h| h.id == i.id)
                .unwrap_or(usize::MAX)
        });
    }
    let base_hu = |name: &str| {
        def.material(name)
            .map(|m| m.hu_expected + p.hu_offsets.get(name).copied().unwrap_or(0.0))
    };
    let mut filled: Vec<(geometry::Insert, geometry::Fill)> = Vec::with_capacity(inserts.len());
    for mut ins in inserts {
        let content = p.holes.get(&ins.id);
        let names_material = content.is_some_and(|c| c.material.is_some() || c.empty == Some(true));
        if !names_material && !ins.material.is_empty() && def.material(&ins.material).is_none() {
            return Err(SimError::Phantom {
                phantom: def.id.clone(),
                what: format!(
                    "layout names material '{}', which is not defined",
                    ins.material
                ),
            });
        }
        let fill = holes::resolve(&ins, content, def, body_hu, base_hu)?;
        ins.material = fill.material.clone();
        filled.push((ins, fill));
    }
    Ok((filled, original, rearranged))
}

/// The truth of each filled hole, at its place in the image.
fn truth_holes(
    filled: &[(geometry::Insert, geometry::Fill)],
    place: &geometry::Placement,
    original: &BTreeMap<String, String>,
) -> Vec<TruthHole> {
    filled
        .iter()
        .map(|(ins, f)| {
            let (x, y) = place.image_point(ins.px, ins.py);
            TruthHole {
                hole: ins.id.clone(),
                ring: ins.ring.clone(),
                material: ins.material.clone(),
                x_mm: x,
                y_mm: y,
                phantom_x_mm: ins.px,
                phantom_y_mm: ins.py,
                radius_mm: ins.radius_mm,
                hu: f.hu,
                core_radius_mm: f.core_radius_mm,
                rod_radius_mm: f.rod_radius_mm,
                sleeve_hu: f.sleeve_hu,
                rod_gap_mm: f.rod_gap_mm,
                void_radius_mm: f.void_radius_mm,
                vial_wall_mm: f.vial.map(|v| v.0),
                vial_wall_hu: f.vial.map(|v| v.1),
                empty: f.empty,
                in_definition: f.in_definition,
                layout_material: original.get(&ins.id).cloned(),
            }
        })
        .collect()
}

/// The truth of each of the definition's materials that some hole holds, in the definition's
/// order.
fn truth_materials(p: &SimParams, def: &PhantomDef, holes: &[TruthHole]) -> Vec<TruthMaterial> {
    let mut materials: Vec<TruthMaterial> = Vec::new();
    for m in &def.materials {
        let of: Vec<&TruthHole> = holes
            .iter()
            .filter(|h| h.in_definition && h.material == m.name)
            .collect();
        if of.is_empty() {
            continue;
        }
        let off = p.hu_offsets.get(&m.name).copied().unwrap_or(0.0);
        let hus = of.iter().map(|h| h.hu);
        let (lo, hi) = hus
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        materials.push(TruthMaterial {
            name: m.name.clone(),
            hu: hus.sum::<f64>() / of.len() as f64,
            hu_expected: m.hu_expected,
            hu_offset: off,
            red: m.red,
            n_holes: of.len(),
            holes: of.iter().map(|h| h.hole.clone()).collect(),
            copies_spread_hu: hi - lo,
        });
    }
    materials
}

/// The Catphan's geometry pins at their place in the image (none for other phantoms).
fn truth_features(
    p: &SimParams,
    def: &PhantomDef,
    place: &geometry::Placement,
) -> Vec<TruthFeature> {
    let mut features = Vec::new();
    if geometry::catphan_has_pins(def) && !p.uniform {
        for f in geometry::catphan_pins() {
            let (x, y) = place.image_point(f.x_mm, f.y_mm);
            features.push(TruthFeature {
                x_mm: x,
                y_mm: y,
                ..f
            });
        }
    }
    features
}

/// The key that makes the series' UIDs: the seed mixed with a hash of the parameters and the
/// phantom id.
fn series_key(p: &SimParams, def: &PhantomDef) -> u64 {
    let params_key = {
        // how the files are framed (Part-10 or raw data sets) does not make another series
        let framed_as_part10 = SimParams {
            part10: true,
            ..p.clone()
        };
        let mut bytes = serde_json::to_vec(&framed_as_part10).unwrap_or_default();
        bytes.extend_from_slice(def.id.as_bytes());
        fnv1a(&bytes)
    };
    mix(p.seed, params_key)
}

/// The plan along z: the segments, their distinct contents, and per slice its weights,
/// rescale intercept, padding value and truth.
struct AlongZ {
    extent: f64,
    segments: Vec<geometry::Segment>,
    contents: Vec<geometry::Content>,
    weights: Vec<Vec<(usize, f32)>>,
    slices: Vec<TruthSlice>,
    intercepts: Vec<f64>,
    padding: Vec<Option<i32>>,
}

/// The slice profile `[a, b]` (thickness `t`) against the segments: per distinct content its
/// weight, the fraction of the insert segment covered, and the name of the segment that covers
/// the most.
fn slice_weights(
    segments: &[geometry::Segment],
    image_of: impl Fn(geometry::Content) -> usize,
    insert_segment: usize,
    (a, b, t): (f64, f64, f64),
) -> (Vec<(usize, f32)>, f64, String) {
    let mut wv: Vec<(usize, f32)> = Vec::new();
    let mut best = (0.0, "air".to_string());
    let mut insert_fraction = 0.0;
    for (k, s) in segments.iter().enumerate() {
        let ov = (b.min(s.z1) - a.max(s.z0)).max(0.0) / t;
        if ov <= 0.0 {
            continue;
        }
        if k == insert_segment {
            insert_fraction = ov;
        }
        if ov > best.0 {
            best = (ov, s.name.clone());
        }
        let img = image_of(s.content);
        match wv.iter_mut().find(|(j, _)| *j == img) {
            Some(e) => e.1 += ov as f32,
            None => wv.push((img, ov as f32)),
        }
    }
    (wv, insert_fraction, best.1)
}

fn along_z(p: &SimParams, def: &PhantomDef, series_key: u64) -> AlongZ {
    let (w, h) = def.outline.size_mm();
    let extent = p.slab_mm.or(def.extent_z_mm).unwrap_or(w.max(h));
    let zc = p.z_offset_mm;
    let segments = geometry::segments(def, p, extent, zc);
    let mut contents: Vec<geometry::Content> = segments.iter().map(|s| s.content).collect();
    contents.sort();
    contents.dedup();
    let image_of = |c: geometry::Content| contents.iter().position(|&x| x == c).unwrap_or(0);
    let n = p.n_slices;
    let spacing = p.spacing_mm();
    let t = p.slice_thickness_mm;
    let insert_segment = segments
        .iter()
        .position(|s| s.name == "slab" || s.name == "CTP404")
        .unwrap_or(1);
    let mut weights = Vec::with_capacity(n);
    let mut slices = Vec::with_capacity(n);
    let mut intercepts = Vec::with_capacity(n);
    let (lo, hi) = p.pixel_representation.range();
    let slope = p.rescale_slope;
    let mut padding = Vec::with_capacity(n);
    for i in 0..n {
        let z = (i as f64 - (n as f64 - 1.0) / 2.0) * spacing;
        let (a, b) = (z - t / 2.0, z + t / 2.0);
        let (wv, insert_fraction, module) =
            slice_weights(&segments, image_of, insert_segment, (a, b, t));
        weights.push(wv);
        let intercept = if p.vary_intercept {
            p.rescale_intercept - 1000.0 * (i % 3) as f64
        } else {
            p.rescale_intercept
        };
        intercepts.push(intercept);
        let pad = if p.recon_circle {
            let want = ((p.padding_hu - intercept) / slope).round();
            if want >= lo as f64 && want <= hi as f64 {
                Some(want as i32)
            } else {
                Some(lo)
            }
        } else {
            None
        };
        padding.push(pad);
        slices.push(TruthSlice {
            index: i,
            instance_number: (i + 1) as u32,
            file: if p.part10 {
                format!("{:04}.dcm", i + 1)
            } else {
                format!("IM{:04}", i + 1)
            },
            sop_instance_uid: uid_from(mix(mix(series_key, SEED_SOP), i as u64)),
            z_mm: z,
            insert_fraction: (insert_fraction * 1e9).round() / 1e9,
            module,
            rescale_intercept: intercept,
            padding_value: pad,
        });
    }
    AlongZ {
        extent,
        segments,
        contents,
        weights,
        slices,
        intercepts,
        padding,
    }
}

/// Warn when a Catphan series with room for them does not cover CTP404 and both neighbours.
fn warn_catphan_coverage(p: &SimParams, def: &PhantomDef, z: &AlongZ) {
    let (n, spacing, t) = (p.n_slices, p.spacing_mm(), p.slice_thickness_mm);
    let slices = &z.slices;
    if geometry::is_catphan(def) && p.catphan_modules && !p.uniform {
        let covered = |m: &str| slices.iter().any(|s: &TruthSlice| s.module == m);
        let room = n as f64 * spacing >= z.extent + 2.0 * (t + spacing);
        if room && !(covered("CTP515") && covered("CTP404") && covered("CTP528")) {
            tracing::warn!(
                "simulate: the series (z {:.1}…{:.1} mm) does not cover CTP404 and both its neighbours; check z_offset_mm",
                slices.first().map(|s| s.z_mm).unwrap_or(0.0),
                slices.last().map(|s| s.z_mm).unwrap_or(0.0)
            );
        }
    }
}

/// The truth of the storage variant (warning when it cannot represent −1000…1500 HU).
fn truth_storage(p: &SimParams, intercepts: &[f64], padding: &[Option<i32>]) -> TruthStorage {
    let (lo, hi) = p.pixel_representation.range();
    let slope = p.rescale_slope;
    let hu_min = intercepts[0] + slope * lo as f64;
    let hu_max = intercepts[0] + slope * hi as f64;
    if hu_min > -1000.0 || hu_max < 1500.0 {
        tracing::warn!(
            "simulate: the storage represents only {hu_min}…{hu_max} HU; values beyond are clamped"
        );
    }
    TruthStorage {
        pixel_representation: p.pixel_representation,
        bits_stored: 16,
        rescale_intercept: intercepts[0],
        rescale_slope: slope,
        vary_intercept: p.vary_intercept,
        transfer_syntax: p.transfer_syntax,
        transfer_syntax_uid: p.transfer_syntax.uid().into(),
        part10: p.part10,
        padding_hu: padding[0].map(|v| intercepts[0] + slope * v as f64),
        hu_min,
        hu_max,
    }
}

/// The couch's top (mm, image y) and centre x, when the series has a couch.
fn couch_geometry(p: &SimParams, def: &PhantomDef, fr: &Frame) -> Option<(f64, f64)> {
    p.couch.then(|| {
        (
            fr.pose.centre_y_mm + geometry::outline_half_height(&def.outline, p.rotation_deg),
            fr.image_centre[0],
        )
    })
}

/// The reconstruction circle (centre x, centre y, radius; mm), when the series has one.
fn recon_circle(p: &SimParams, fr: &Frame) -> Option<(f64, f64, f64)> {
    p.recon_circle.then(|| {
        (
            fr.image_centre[0],
            fr.image_centre[1],
            (fr.cols as f64 * fr.dx).min(fr.rows as f64 * fr.dy) / 2.0,
        )
    })
}

/// What the truth is made of besides the parameters, the frame and the z plan.
struct TruthParts {
    body_hu: f64,
    rearranged: bool,
    holes: Vec<TruthHole>,
    materials: Vec<TruthMaterial>,
    foreign: Vec<TruthHole>,
    features: Vec<TruthFeature>,
    modules: Vec<TruthModule>,
    slices: Vec<TruthSlice>,
    couch: Option<(f64, f64)>,
    circle: Option<(f64, f64, f64)>,
    storage: TruthStorage,
    noise_n_corr: f64,
    series_key: u64,
}

fn truth(p: &SimParams, def: &PhantomDef, fr: &Frame, extent: f64, parts: TruthParts) -> Truth {
    let zc = p.z_offset_mm;
    let (sop_class, modality) = encode::sop_class(&p.modality);
    let couch = parts.couch.map(|(top, x)| TruthCouch {
        top_y_mm: top,
        centre_x_mm: x,
        width_mm: COUCH_WIDTH_MM,
        plate_mm: COUCH_PLATE_MM,
        foam_mm: COUCH_FOAM_MM,
        plate_hu: COUCH_PLATE_HU,
        foam_hu: COUCH_FOAM_HU,
    });
    Truth {
        generator: format!("hu-red simulate {}", env!("CARGO_PKG_VERSION")),
        phantom_id: def.id.clone(),
        phantom_name: def.name.clone(),
        uniform: p.uniform,
        rearranged: parts.rearranged,
        seed: p.seed,
        pose: fr.pose,
        outline: def.outline,
        body_hu: parts.body_hu,
        holes: parts.holes,
        materials: parts.materials,
        foreign: parts.foreign,
        features: parts.features,
        noise_sigma_hu: p.noise_sigma_hu,
        noise_corr_mm: p.noise_corr_mm,
        noise_n_corr: parts.noise_n_corr,
        blur_mm: p.blur_mm,
        air_gap_mm: p.air_gap_mm,
        insert_z_range_mm: [zc - extent / 2.0, zc + extent / 2.0],
        modules: parts.modules,
        slices: parts.slices,
        pixel_mm: fr.dx,
        matrix: p.matrix,
        rows: fr.rows,
        cols: fr.cols,
        image_centre_mm: fr.image_centre,
        patient_origin_mm: [-fr.image_centre[0], -fr.image_centre[1]],
        slice_thickness_mm: p.slice_thickness_mm,
        slice_spacing_mm: p.spacing_mm(),
        n_slices: p.n_slices,
        couch,
        recon_circle: parts.circle.map(|(x, y, r)| TruthCircle {
            centre_x_mm: x,
            centre_y_mm: y,
            radius_mm: r,
        }),
        storage: parts.storage,
        modality: modality.to_string(),
        sop_class_uid: sop_class.to_string(),
        study_uid: p
            .study_uid
            .clone()
            .unwrap_or_else(|| uid_from(mix(p.seed, SEED_STUDY))),
        series_uid: p
            .series_uid
            .clone()
            .unwrap_or_else(|| uid_from(mix(parts.series_key, SEED_SERIES))),
        frame_of_reference_uid: uid_from(mix(p.seed, SEED_FOR)),
        params: p.clone(),
    }
}

/// The ideal image of each distinct content, drawn once and blurred.
fn draw_images(
    p: &SimParams,
    fr: &Frame,
    contents: &[geometry::Content],
    ctx: &geometry::SceneCtx,
) -> Vec<Vec<f32>> {
    let (rows, cols, dx, dy) = (fr.rows, fr.cols, fr.dx, fr.dy);
    let blur_kernel = filter::gaussian_kernel(p.blur_mm / dx);
    contents
        .par_iter()
        .map(|&c| {
            let s = geometry::build_scene(c, ctx);
            let mut img = scene::rasterize(&s, rows, cols, dx, dy);
            if let Some(k) = &blur_kernel {
                filter::blur(&mut img, rows, cols, k);
            }
            img
        })
        .collect()
}

pub(super) fn plan(p: &SimParams, def: &PhantomDef) -> Result<Plan, SimError> {
    validate(p, def)?;
    let fr = frame(p);
    let body_hu = p.body_hu.unwrap_or(def.body_hu);

    // Inserts and what they hold.
    let (filled, original, rearranged) = fill_inserts(p, def, body_hu)?;
    let holes = truth_holes(&filled, &fr.place, &original);
    let materials = truth_materials(p, def, &holes);
    let foreign: Vec<TruthHole> = holes.iter().filter(|h| !h.in_definition).cloned().collect();
    let features = truth_features(p, def, &fr.place);

    // Along z.
    let series_key = series_key(p, def);
    let z = along_z(p, def, series_key);
    warn_catphan_coverage(p, def, &z);
    let modules: Vec<TruthModule> = z
        .segments
        .iter()
        .filter(|s| s.content != geometry::Content::Air)
        .map(|s| TruthModule {
            name: s.name.clone(),
            z_range_mm: [s.z0, s.z1],
        })
        .collect();

    // Couch, circle, storage.
    let couch_geom = couch_geometry(p, def, &fr);
    let circle = recon_circle(p, &fr);
    let storage = truth_storage(p, &z.intercepts, &z.padding);
    let noise = filter::NoiseModel::new(p.noise_sigma_hu, p.noise_corr_mm / fr.dx);
    let AlongZ {
        extent,
        segments: _,
        contents,
        weights,
        slices,
        intercepts,
        padding,
    } = z;
    let parts = TruthParts {
        body_hu,
        rearranged,
        holes,
        materials,
        foreign,
        features,
        modules,
        slices,
        couch: couch_geom,
        circle,
        storage,
        noise_n_corr: noise.n_corr,
        series_key,
    };
    let truth = truth(p, def, &fr, extent, parts);

    // The ideal image of each distinct content, drawn once.
    let ctx = geometry::SceneCtx {
        def,
        place: fr.place,
        body_hu,
        inserts: &filled,
        air_gap_mm: p.air_gap_mm,
        couch: couch_geom,
    };
    let images = draw_images(p, &fr, &contents, &ctx);
    Ok(Plan {
        rows: fr.rows,
        cols: fr.cols,
        dx: fr.dx,
        dy: fr.dy,
        images,
        weights,
        noise,
        noise_seed: mix(p.seed, SEED_NOISE),
        circle,
        intercepts,
        slope: p.rescale_slope,
        stored_range: p.pixel_representation.range(),
        padding,
        truth,
    })
}

impl Plan {
    /// Ideal HU of slice `i` plus its noise (no padding, no quantisation).
    pub(super) fn slice_hu(&self, i: usize) -> Vec<f32> {
        let mut img = vec![0f32; self.rows * self.cols];
        for &(k, w) in &self.weights[i] {
            for (o, &v) in img.iter_mut().zip(&self.images[k]) {
                *o += w * v;
            }
        }
        self.noise.add(
            &mut img,
            self.rows,
            self.cols,
            mix(self.noise_seed, i as u64),
        );
        img
    }

    /// Stored values of slice `i` (clamped, padding outside the reconstruction circle).
    pub(super) fn slice_stored(&self, i: usize) -> Vec<i32> {
        let hu = self.slice_hu(i);
        let (lo, hi) = self.stored_range;
        let b = self.intercepts[i];
        let pad = self.padding[i];
        let mut out = Vec::with_capacity(hu.len());
        for (idx, &v) in hu.iter().enumerate() {
            if let (Some(pv), Some((cx, cy, r))) = (pad, self.circle) {
                let x = (idx % self.cols) as f64 * self.dx - cx;
                let y = (idx / self.cols) as f64 * self.dy - cy;
                if x * x + y * y > r * r {
                    out.push(pv);
                    continue;
                }
            }
            let mut s = ((v as f64 - b) / self.slope)
                .round()
                .clamp(lo as f64, hi as f64) as i32;
            if Some(s) == pad {
                // never let a data value collide with the padding value
                s = if s < hi { s + 1 } else { s - 1 };
            }
            out.push(s);
        }
        out
    }
}
