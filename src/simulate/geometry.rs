//! What the simulated phantom contains: hole placement (layout, rearrangement, the invented Easy
//! Cube rods), the z segments (CIRS slab, Catphan modules) and the 2-D scene of each segment.

use super::scene::{Geom, Scene};
use super::{SimError, SimParams};
use crate::phantom::{Outline, PhantomDef};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

/// HU of air outside the phantom.
pub const AIR_HU: f64 = -1000.0;
/// Couch: two carbon-fibre plates around a foam core.
pub const COUCH_PLATE_HU: f64 = 300.0;
pub const COUCH_FOAM_HU: f64 = -950.0;
pub const COUCH_PLATE_MM: f64 = 3.0;
pub const COUCH_FOAM_MM: f64 = 40.0;
pub const COUCH_WIDTH_MM: f64 = 500.0;
/// CTP528 line-pair bars (aluminium).
pub const CTP528_BAR_HU: f64 = 2000.0;
/// Catphan module lengths along z (mm) besides CTP404 (whose length is the definition's
/// `extent_z_mm`, 25 mm). Centres land near pylinac's Catphan 504 offsets (CTP528 +30, CTP515
/// −30, CTP486 −65 mm from CTP404).
pub const CTP528_LEN_MM: f64 = 35.0;
pub const CTP515_LEN_MM: f64 = 32.5;
pub const CTP486_LEN_MM: f64 = 45.0;
/// Easy Cube (simulation only): rods invented for a detection phantom without holes.
pub const ROD_RING_RADIUS_MM: f64 = 50.0;
pub const ROD_RADIUS_MM: f64 = 14.0;

/// Where the phantom lies: centre in the image frame and rotation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub cx: f64,
    pub cy: f64,
    pub cos: f64,
    pub sin: f64,
}

impl Placement {
    pub(crate) fn new(cx: f64, cy: f64, rotation_deg: f64) -> Self {
        let t = rotation_deg.to_radians();
        Placement {
            cx,
            cy,
            cos: t.cos(),
            sin: t.sin(),
        }
    }
    /// Phantom coordinates → image frame (the brief's pose convention).
    pub(crate) fn image_point(&self, px: f64, py: f64) -> (f64, f64) {
        (
            self.cx + px * self.cos - py * self.sin,
            self.cy + px * self.sin + py * self.cos,
        )
    }
    /// A rectangle given in phantom coordinates (centre, half sizes, own angle in radians).
    fn rect(&self, px: f64, py: f64, hu: f64, hv: f64, angle: f64) -> Geom {
        let (cx, cy) = self.image_point(px, py);
        let (s, c) = angle.sin_cos();
        Geom::Rect {
            cx,
            cy,
            hu,
            hv,
            cos: c * self.cos - s * self.sin,
            sin: s * self.cos + c * self.sin,
        }
    }
    fn disc(&self, px: f64, py: f64, r: f64) -> Geom {
        let (cx, cy) = self.image_point(px, py);
        Geom::Disc { cx, cy, r }
    }
    fn outline(&self, outline: &Outline) -> Geom {
        match *outline {
            Outline::Circle { diameter_mm } => Geom::Disc {
                cx: self.cx,
                cy: self.cy,
                r: diameter_mm / 2.0,
            },
            Outline::Ellipse {
                width_mm,
                height_mm,
            } => Geom::Ellipse {
                cx: self.cx,
                cy: self.cy,
                a: width_mm / 2.0,
                b: height_mm / 2.0,
                cos: self.cos,
                sin: self.sin,
            },
            Outline::Square { side_mm } => Geom::Rect {
                cx: self.cx,
                cy: self.cy,
                hu: side_mm / 2.0,
                hv: side_mm / 2.0,
                cos: self.cos,
                sin: self.sin,
            },
        }
    }
}

/// Half height (image y) of the rotated outline: its lowest point is at cy + this.
pub(crate) fn outline_half_height(outline: &Outline, rotation_deg: f64) -> f64 {
    let t = rotation_deg.to_radians();
    let (s, c) = (t.sin().abs(), t.cos().abs());
    match *outline {
        Outline::Circle { diameter_mm } => diameter_mm / 2.0,
        Outline::Ellipse {
            width_mm,
            height_mm,
        } => ((width_mm / 2.0 * s).powi(2) + (height_mm / 2.0 * c).powi(2)).sqrt(),
        Outline::Square { side_mm } => side_mm / 2.0 * (s + c),
    }
}

/// One insert in phantom coordinates with its material.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Insert {
    pub id: String,
    pub ring: Option<String>,
    pub material: String,
    pub px: f64,
    pub py: f64,
    pub radius_mm: f64,
}

/// A feature of the phantom that is not a measured insert (e.g. Catphan geometry pins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthFeature {
    pub kind: String,
    pub module: String,
    pub x_mm: f64,
    pub y_mm: f64,
    pub radius_mm: f64,
    pub hu: f64,
}

/// Family id of every Catphan sensitometry-module definition.
pub(crate) const CATPHAN_FAMILY: &str = "catphan_ctp404";

/// A Catphan (any variant: 503/504, 600, 604, 700, or a site's): the modules along z.
pub(crate) fn is_catphan(def: &PhantomDef) -> bool {
    def.family.as_deref() == Some(CATPHAN_FAMILY) || def.id.starts_with("catphan")
}

/// A Catphan whose sensitometry module has the four geometry pins: every variant but the 700
/// (its CTP682 has none; pylinac's `CTP404CP700` finds no nodes).
pub(crate) fn catphan_has_pins(def: &PhantomDef) -> bool {
    is_catphan(def) && !def.id.starts_with("catphan_700")
}

/// The inserts of the phantom (before rearrangement): the definition's holes with its layout; for
/// a template without a layout (interchangeable plugs, e.g. Gammex) its holes with invented
/// plugs ([`plugs`]); for a detection phantom without holes (Easy Cube), an invented arrangement:
/// one rod per non-optional material on a ring, plus a rod of the most body-like material in the
/// centre.
pub(crate) fn inserts(def: &PhantomDef, body_hu: f64) -> Result<Vec<Insert>, SimError> {
    if !def.holes.is_empty() && def.layout.is_empty() {
        return plugs(def);
    }
    if !def.holes.is_empty() {
        let mut out = Vec::new();
        for hole in &def.holes {
            match def.layout.get(&hole.id) {
                Some(m) => out.push(Insert {
                    id: hole.id.clone(),
                    ring: hole.ring.clone(),
                    material: m.clone(),
                    px: hole.x_mm,
                    py: hole.y_mm,
                    radius_mm: hole.radius_mm,
                }),
                None => tracing::debug!(
                    "simulate: hole {} of {} has no material in the layout; left filled with body material",
                    hole.id,
                    def.id
                ),
            }
        }
        if out.is_empty() {
            return Err(SimError::Phantom {
                phantom: def.id.clone(),
                what: "the layout puts no material in any hole".into(),
            });
        }
        return Ok(out);
    }
    let mats: Vec<&str> = def
        .materials
        .iter()
        .filter(|m| !m.optional)
        .map(|m| m.name.as_str())
        .collect();
    if mats.is_empty() {
        return Err(SimError::Phantom {
            phantom: def.id.clone(),
            what: "no holes and no non-optional materials to invent rods from".into(),
        });
    }
    let (w, h) = def.outline.size_mm();
    let half = w.min(h) / 2.0;
    let r = ROD_RADIUS_MM.min(half / 6.0);
    let ring = ROD_RING_RADIUS_MM.min(half - r - 10.0).max(2.5 * r);
    let n = mats.len();
    let mut out = Vec::new();
    for (k, m) in mats.iter().enumerate() {
        let a = (-90.0 + 360.0 * k as f64 / n as f64).to_radians();
        out.push(Insert {
            id: format!("rod_{}", k + 1),
            ring: Some("ring".into()),
            material: m.to_string(),
            px: ring * a.cos(),
            py: ring * a.sin(),
            radius_mm: r,
        });
    }
    let centre = def
        .materials
        .iter()
        .filter(|m| !m.optional)
        .min_by(|a, b| {
            (a.hu_expected - body_hu)
                .abs()
                .total_cmp(&(b.hu_expected - body_hu).abs())
        })
        .map(|m| m.name.clone())
        .unwrap_or_else(|| mats[0].to_string());
    out.push(Insert {
        id: format!("rod_{}", n + 1),
        ring: Some("centre".into()),
        material: centre,
        px: 0.0,
        py: 0.0,
        radius_mm: r,
    });
    Ok(out)
}

/// Plugs for a template whose layout is empty (the site places them): the non-optional materials
/// (all of them when every one is optional) sorted by expected HU. With at least as many holes as
/// materials, hole k (definition order) gets material k mod M (every material, the first ones
/// twice); with fewer holes, materials spread evenly over the HU range (the lowest and the
/// highest always in). `--rearrange` shuffles them.
pub(crate) fn plugs(def: &PhantomDef) -> Result<Vec<Insert>, SimError> {
    let mut mats: Vec<&crate::phantom::Material> =
        def.materials.iter().filter(|m| !m.optional).collect();
    if mats.is_empty() {
        mats = def.materials.iter().collect();
    }
    if mats.is_empty() {
        return Err(SimError::Phantom {
            phantom: def.id.clone(),
            what: "no materials to put in its holes".into(),
        });
    }
    mats.sort_by(|a, b| a.hu_expected.total_cmp(&b.hu_expected));
    let (n, m) = (def.holes.len(), mats.len());
    Ok(def
        .holes
        .iter()
        .enumerate()
        .map(|(k, hole)| {
            let j = if n >= m || n == 1 {
                k % m
            } else {
                ((k * (m - 1)) as f64 / (n - 1) as f64).round() as usize
            };
            Insert {
                id: hole.id.clone(),
                ring: hole.ring.clone(),
                material: mats[j.min(m - 1)].name.clone(),
                px: hole.x_mm,
                py: hole.y_mm,
                radius_mm: hole.radius_mm,
            }
        })
        .collect())
}

/// Shuffle the materials among the inserts (a permutation: the multiset is kept, e.g. the CIRS
/// two-of-each). When the materials are not all the same, the result differs from the input.
pub(crate) fn rearrange(inserts: &mut [Insert], seed: u64) {
    let original: Vec<String> = inserts.iter().map(|i| i.material.clone()).collect();
    let mut mats = original.clone();
    let mut rng = StdRng::seed_from_u64(super::mix(seed, 0x7265_6172));
    for _ in 0..100 {
        mats.shuffle(&mut rng);
        if mats != original {
            break;
        }
    }
    for (ins, m) in inserts.iter_mut().zip(mats) {
        ins.material = m;
    }
}

/// What a z segment contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Content {
    /// Nothing but air (and the couch).
    Air,
    /// The body outline, uniform.
    Body,
    /// The body with the inserts (CIRS slab, Easy Cube, Catphan CTP404).
    Inserts,
    /// Catphan CTP528: line-pair bars on a 40 mm ring.
    Ctp528,
    /// Catphan CTP515: low-contrast discs on a 50 mm ring.
    Ctp515,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub name: String,
    pub z0: f64,
    pub z1: f64,
    pub content: Content,
}

/// The z segments (patient z, mm) of the phantom: air below and above, then the phantom's
/// parts. `extent` is the insert region's thickness, `zc` its centre.
pub(crate) fn segments(def: &PhantomDef, p: &SimParams, extent: f64, zc: f64) -> Vec<Segment> {
    let inserts_content = if p.uniform {
        Content::Body
    } else {
        Content::Inserts
    };
    let mut parts: Vec<(String, f64, f64, Content)> = Vec::new();
    let e = extent / 2.0;
    if is_catphan(def) {
        if p.catphan_modules {
            let (c515, c528) = if p.uniform {
                (Content::Body, Content::Body)
            } else {
                (Content::Ctp515, Content::Ctp528)
            };
            parts.push((
                "CTP486".into(),
                -e - CTP515_LEN_MM - CTP486_LEN_MM,
                -e - CTP515_LEN_MM,
                Content::Body,
            ));
            parts.push(("CTP515".into(), -e - CTP515_LEN_MM, -e, c515));
            parts.push(("CTP404".into(), -e, e, inserts_content));
            parts.push(("CTP528".into(), e, e + CTP528_LEN_MM, c528));
        } else {
            parts.push(("CTP404".into(), -e, e, inserts_content));
        }
    } else {
        parts.push(("slab".into(), -e, e, inserts_content));
    }
    let far = 1.0e9;
    let mut out = vec![Segment {
        name: "air".into(),
        z0: -far,
        z1: parts[0].1 + zc,
        content: Content::Air,
    }];
    for (name, z0, z1, content) in parts {
        out.push(Segment {
            name,
            z0: z0 + zc,
            z1: z1 + zc,
            content,
        });
    }
    let last = out.last().map(|s| s.z1).unwrap_or(zc);
    out.push(Segment {
        name: "air".into(),
        z0: last,
        z1: far,
        content: Content::Air,
    });
    out
}

/// Everything a scene needs besides its content.
pub(crate) struct SceneCtx<'a> {
    pub def: &'a PhantomDef,
    pub place: Placement,
    pub body_hu: f64,
    /// Inserts with what they hold.
    pub inserts: &'a [(Insert, Fill)],
    pub air_gap_mm: f64,
    /// (top y, centre x) of the couch in the image frame.
    pub couch: Option<(f64, f64)>,
}

pub(crate) fn build_scene(content: Content, ctx: &SceneCtx) -> Scene {
    let mut s = Scene {
        background: AIR_HU as f32,
        shapes: Vec::new(),
    };
    if let Some((top, x)) = ctx.couch {
        let hw = COUCH_WIDTH_MM / 2.0;
        let plate = |s: &mut Scene, y0: f64| {
            s.push(
                Geom::Rect {
                    cx: x,
                    cy: y0 + COUCH_PLATE_MM / 2.0,
                    hu: hw,
                    hv: COUCH_PLATE_MM / 2.0,
                    cos: 1.0,
                    sin: 0.0,
                },
                COUCH_PLATE_HU,
            )
        };
        plate(&mut s, top);
        s.push(
            Geom::Rect {
                cx: x,
                cy: top + COUCH_PLATE_MM + COUCH_FOAM_MM / 2.0,
                hu: hw,
                hv: COUCH_FOAM_MM / 2.0,
                cos: 1.0,
                sin: 0.0,
            },
            COUCH_FOAM_HU,
        );
        plate(&mut s, top + COUCH_PLATE_MM + COUCH_FOAM_MM);
    }
    if content == Content::Air {
        return s;
    }
    let pl = &ctx.place;
    s.push(pl.outline(&ctx.def.outline), ctx.body_hu);
    match content {
        Content::Air | Content::Body => {}
        Content::Inserts => {
            for (ins, fill) in ctx.inserts {
                if ctx.air_gap_mm > 0.0 {
                    s.push(
                        pl.disc(ins.px, ins.py, ins.radius_mm + ctx.air_gap_mm),
                        AIR_HU,
                    );
                }
                for (r, hu) in hole_discs(ins.radius_mm, fill) {
                    s.push(pl.disc(ins.px, ins.py, r), hu);
                }
            }
            if catphan_has_pins(ctx.def) {
                for f in catphan_pins() {
                    s.push(pl.disc(f.x_mm, f.y_mm, f.radius_mm), f.hu);
                }
            }
        }
        Content::Ctp528 => {
            for (px, py, hu_, hv, angle) in ctp528_bars() {
                s.push(pl.rect(px, py, hu_, hv, angle), CTP528_BAR_HU);
            }
        }
        Content::Ctp515 => {
            for (px, py, r, contrast) in ctp515_discs() {
                s.push(pl.disc(px, py, r), ctx.body_hu + contrast);
            }
        }
    }
    s
}

/// A hole's content resolved against its geometry: everything the scene draws and the truth says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fill {
    /// Material name (of the definition, foreign, or `empty` for an empty hole).
    pub material: String,
    /// True HU of the material (−1000 for an empty hole).
    pub hu: f64,
    pub in_definition: bool,
    pub empty: bool,
    /// (wall thickness, wall HU).
    pub vial: Option<(f64, f64)>,
    pub rod_radius_mm: Option<f64>,
    /// HU of the sleeve, when the rod (and its gap) leave room for one.
    pub sleeve_hu: Option<f64>,
    pub rod_gap_mm: Option<f64>,
    pub void_radius_mm: Option<f64>,
    /// Inside radius of the vial (the hole's radius without a vial).
    pub inner_radius_mm: f64,
    /// Radius of the homogeneous region of the material: the rod, else the vial's inside, else the
    /// hole.
    pub core_radius_mm: f64,
}

/// The concentric discs (radius, HU) that draw a hole's content, outside in (each covers the
/// previous): the hole (vial wall, else sleeve, else the material), the vial's inside, the air
/// gap around the rod, the rod, the central void.
pub(crate) fn hole_discs(radius_mm: f64, f: &Fill) -> Vec<(f64, f64)> {
    // What fills the hole inside the vial (or the whole hole) around the rod and its gap.
    let around_rod = match (f.rod_radius_mm, f.sleeve_hu) {
        (Some(_), Some(sleeve)) => sleeve,
        // the rod and its gap fill the hole: the gap reaches the edge
        (Some(_), None) => AIR_HU,
        (None, _) => f.hu,
    };
    let mut out = Vec::with_capacity(5);
    match f.vial {
        Some((_, wall_hu)) => {
            out.push((radius_mm, wall_hu));
            out.push((f.inner_radius_mm, around_rod));
        }
        None => out.push((radius_mm, around_rod)),
    }
    if let Some(rod) = f.rod_radius_mm {
        if let (Some(gap), Some(_)) = (f.rod_gap_mm, f.sleeve_hu) {
            out.push((rod + gap, AIR_HU));
        }
        out.push((rod, f.hu));
    }
    if let Some(v) = f.void_radius_mm {
        out.push((v, AIR_HU));
    }
    out
}

/// Catphan CTP404 geometry pins: four 3 mm air holes on a 50 mm square (phantom coordinates).
pub(crate) fn catphan_pins() -> Vec<TruthFeature> {
    [(-25.0, -25.0), (25.0, -25.0), (25.0, 25.0), (-25.0, 25.0)]
        .iter()
        .map(|&(x, y)| TruthFeature {
            kind: "geometry_pin".into(),
            module: "CTP404".into(),
            x_mm: x,
            y_mm: y,
            radius_mm: 1.5,
            hu: AIR_HU,
        })
        .collect()
}

/// CTP528 bars (phantom coordinates): 21 groups of 4 bars, 1…21 lp/cm, each group centred on a
/// 40 mm radius ring, bars 10 mm long along the radius, starting at the top and going clockwise.
/// Returns (centre x, centre y, half length, half width, angle in radians).
pub(crate) fn ctp528_bars() -> Vec<(f64, f64, f64, f64, f64)> {
    let ring = 40.0;
    let gap = 2.5;
    let nbars = 4;
    let mut s = 0.0;
    let mut out = Vec::new();
    for k in 1..=21 {
        let w = 5.0 / k as f64;
        let width = (2 * nbars - 1) as f64 * w;
        let phi = -std::f64::consts::FRAC_PI_2 + (s + width / 2.0) / ring;
        let (er, et) = ((phi.cos(), phi.sin()), (-phi.sin(), phi.cos()));
        for b in 0..nbars {
            let t = -width / 2.0 + w / 2.0 + 2.0 * b as f64 * w;
            out.push((
                ring * er.0 + t * et.0,
                ring * er.1 + t * et.1,
                5.0,
                w / 2.0,
                phi,
            ));
        }
        s += width + gap;
    }
    out
}

/// CTP515 supra-slice low-contrast discs (phantom coordinates): three groups (+1.0 %, +0.5 %,
/// +0.3 % contrast = +10, +5, +3 HU) of nine diameters (15…2 mm) on a 50 mm ring.
/// Returns (x, y, radius, contrast HU).
pub(crate) fn ctp515_discs() -> Vec<(f64, f64, f64, f64)> {
    let ring = 50.0;
    let diam = [15.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0];
    let mut out = Vec::new();
    for (g, contrast) in [10.0, 5.0, 3.0].into_iter().enumerate() {
        let mut s = 0.0;
        let mut prev: Option<f64> = None;
        for d in diam {
            if let Some(p) = prev {
                s += p / 2.0 + 2.5 + d / 2.0;
            }
            prev = Some(d);
            let phi = (-80.0 + 120.0 * g as f64).to_radians() + s / ring;
            out.push((ring * phi.cos(), ring * phi.sin(), d / 2.0, contrast));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::PhantomSet;

    #[test]
    fn easycube_rods_are_invented_inside_the_cube() {
        let set = PhantomSet::builtin();
        let def = set.get("easycube").unwrap();
        let rods = inserts(def, 0.0).unwrap();
        assert_eq!(rods.len(), 6);
        assert_eq!(rods[5].material, "water");
        assert_eq!(rods[5].ring.as_deref(), Some("centre"));
        for r in &rods {
            assert!(r.px.abs() + r.radius_mm < 90.0 && r.py.abs() + r.radius_mm < 90.0);
            assert!((25.0..=30.0).contains(&(2.0 * r.radius_mm)));
        }
        let names: std::collections::BTreeSet<_> =
            rods.iter().map(|r| r.material.as_str()).collect();
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn catphan_features_do_not_overlap() {
        let bars = ctp528_bars();
        assert_eq!(bars.len(), 84);
        // bars of different groups are apart (also across the wrap-around of the ring)
        for (i, a) in bars.iter().enumerate() {
            for (j, b) in bars.iter().enumerate().skip(i + 1) {
                if i / 4 != j / 4 {
                    let d = (a.0 - b.0).hypot(a.1 - b.1);
                    assert!(d > a.3 + b.3 + 2.0, "bars {i} and {j} too close: {d}");
                }
            }
        }
        let discs = ctp515_discs();
        for (i, a) in discs.iter().enumerate() {
            for b in &discs[i + 1..] {
                let d = (a.0 - b.0).hypot(a.1 - b.1);
                assert!(d > a.2 + b.2, "discs overlap");
            }
        }
    }

    #[test]
    fn catphan_variants_by_family_or_id() {
        let set = PhantomSet::builtin();
        let mut d = set
            .get("catphan_504")
            .or_else(|_| set.get("catphan_ctp404"))
            .unwrap()
            .clone();
        assert!(is_catphan(&d) && catphan_has_pins(&d));
        // a site's variant known only by its family
        d.id = "site_ct".into();
        d.family = Some(CATPHAN_FAMILY.into());
        assert!(is_catphan(&d));
        d.id = "catphan_700".into();
        d.family = None;
        assert!(is_catphan(&d) && !catphan_has_pins(&d));
        let c = set.get("cirs062").unwrap();
        assert!(!is_catphan(c) && !catphan_has_pins(c));
    }

    #[test]
    fn layout_less_templates_get_plugs() {
        let mut d = PhantomSet::builtin().get("cirs062").unwrap().clone();
        d.layout.clear();
        let nonopt: Vec<&str> = d
            .materials
            .iter()
            .filter(|m| !m.optional)
            .map(|m| m.name.as_str())
            .collect();
        // 17 holes, 9 materials: every material, the lowest eight twice, in HU order
        let p = inserts(&d, 0.0).unwrap();
        assert_eq!(p.len(), 17);
        for m in &nonopt {
            let n = p.iter().filter(|i| i.material == *m).count();
            assert!((1..=2).contains(&n), "{m}: {n}");
        }
        assert_eq!(p[0].material, "lung_inhale");
        assert_eq!(p[9].material, "lung_inhale");
        // fewer holes than materials: spread over the HU range, both ends in
        d.holes.truncate(4);
        let p = inserts(&d, 0.0).unwrap();
        let got: Vec<&str> = p.iter().map(|i| i.material.as_str()).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], "lung_inhale");
        assert_eq!(got[3], "dense_bone");
        let mut u = got.clone();
        u.dedup();
        assert_eq!(u.len(), 4);
        // every material optional: all of them are candidates
        for m in &mut d.materials {
            m.optional = true;
        }
        let p = inserts(&d, 0.0).unwrap();
        assert_eq!(p[3].material, "dense_bone_1750");
    }

    #[test]
    fn hole_discs_outside_in() {
        let fill = |vial, rod, sleeve, gap, void| Fill {
            material: "m".into(),
            hu: 500.0,
            in_definition: true,
            empty: false,
            vial,
            rod_radius_mm: rod,
            sleeve_hu: sleeve,
            rod_gap_mm: gap,
            void_radius_mm: void,
            inner_radius_mm: 15.0 - vial.map(|v: (f64, f64)| v.0).unwrap_or(0.0),
            core_radius_mm: 0.0,
        };
        assert_eq!(
            hole_discs(15.0, &fill(None, None, None, None, None)),
            [(15.0, 500.0)]
        );
        assert_eq!(
            hole_discs(
                15.0,
                &fill(None, Some(5.0), Some(0.0), Some(1.0), Some(2.0))
            ),
            [(15.0, 0.0), (6.0, AIR_HU), (5.0, 500.0), (2.0, AIR_HU)]
        );
        // rod + gap fill the hole: the gap reaches the edge
        assert_eq!(
            hole_discs(15.0, &fill(None, Some(13.0), None, Some(2.0), None)),
            [(15.0, AIR_HU), (13.0, 500.0)]
        );
        assert_eq!(
            hole_discs(15.0, &fill(Some((1.0, -90.0)), None, None, None, Some(1.0))),
            [(15.0, -90.0), (14.0, 500.0), (1.0, AIR_HU)]
        );
    }

    #[test]
    fn rotated_outline_lowest_point() {
        let sq = Outline::Square { side_mm: 180.0 };
        assert!((outline_half_height(&sq, 45.0) - 90.0 * 2f64.sqrt()).abs() < 1e-9);
        let el = Outline::Ellipse {
            width_mm: 330.0,
            height_mm: 270.0,
        };
        assert!((outline_half_height(&el, 90.0) - 165.0).abs() < 1e-9);
        assert!((outline_half_height(&el, 0.0) - 135.0).abs() < 1e-9);
    }
}
