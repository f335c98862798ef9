//! What a hole holds beyond the definition's plain insert: per-hole contents ([`HoleContent`]:
//! another or a foreign material, a rod narrower than its hole inside a sleeve, an air gap around
//! the rod, a central void, a vial wall, an empty hole), their validation against the hole's
//! geometry, and the named cases of issue 9 ([`SimCase`]) that expand into such contents.
//!
//! A hole is drawn from the outside in: the hole (the vial wall, else the sleeve, else the
//! material), the vial's inside, the air gap around the rod, the rod, the central void. Every
//! radius is checked against the one that contains it, so every region exists and is a ring or a
//! disc.

use super::geometry::{self, Fill, Insert, AIR_HU};
use super::{SimError, SimParams};
use crate::phantom::PhantomDef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Wall of the default vial (Catphan 600/700 water vial), mm. pylinac measures the 600's vial with
/// a 4 mm ROI where the other inserts get 5 mm: about a 1 mm wall.
pub const VIAL_WALL_MM: f64 = 1.0;
/// HU of the default vial wall: polypropylene (ρ ≈ 0.90 g/cm³, the usual sample-vial plastic)
/// reads about −90 HU at 120 kV (between the Catphan's PMP, −196, and LDPE, −104, it is close to
/// LDPE). Not measured on a real vial: an estimate, overridable per hole (`vial_wall_hu`).
pub const VIAL_WALL_HU: f64 = -90.0;
/// `TruthHole.material` of an empty hole (air, not a material of any definition).
pub const EMPTY_MATERIAL: &str = "empty";

/// What one hole holds, when it is not the definition's plain insert. Every field is optional;
/// keyed by hole id in [`SimParams::holes`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoleContent {
    /// The material: one of the definition (its expected HU + offset unless `hu` is given), or a
    /// foreign one (then `hu` is required and the hole is not `in_definition`). Default: the
    /// layout's (after `rearrange`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
    /// True HU of the material in this hole (overrides the expected HU and offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hu: Option<f64>,
    /// A rod of the material this wide, centred in the hole; the rest of the hole is the sleeve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rod_radius_mm: Option<f64>,
    /// HU of the sleeve around the rod (default: the body HU, a water-equivalent sleeve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleeve_hu: Option<f64>,
    /// An air ring this wide around the rod (inside the sleeve); without `rod_radius_mm` the rod
    /// fills the hole up to the gap (no sleeve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rod_gap_mm: Option<f64>,
    /// A central air void (−1000 HU) of this radius inside the material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub void_radius_mm: Option<f64>,
    /// A vial: a wall this thick at the hole's edge, the content inside. 0 = no vial (removes the
    /// default vial of a Catphan's water hole or of a definition's `vial_wall_mm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vial_wall_mm: Option<f64>,
    /// HU of the vial wall (default [`VIAL_WALL_HU`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vial_wall_hu: Option<f64>,
    /// `true`: the hole holds air (an empty hole, or an empty vial when there is a vial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
}

impl HoleContent {
    /// `other`'s fields that are set replace these.
    pub fn merge(&mut self, other: &HoleContent) {
        macro_rules! take {
            ($($f:ident),*) => {$(
                if other.$f.is_some() {
                    self.$f = other.$f.clone();
                }
            )*};
        }
        take!(
            material,
            hu,
            rod_radius_mm,
            sleeve_hu,
            rod_gap_mm,
            void_radius_mm,
            vial_wall_mm,
            vial_wall_hu,
            empty
        );
    }

    /// Parse `HOLE:key=value,key=value` (the `--hole` flag). Keys are the field names; `empty`
    /// alone means `empty=true`.
    pub fn parse_spec(spec: &str) -> Result<(String, HoleContent), String> {
        let usage =
            "expected HOLE:key=value[,key=value...], e.g. centre:void_radius_mm=1.5; keys: \
                     material, hu, rod_radius_mm, sleeve_hu, rod_gap_mm, void_radius_mm, \
                     vial_wall_mm, vial_wall_hu, empty";
        let Some((hole, rest)) = spec.split_once(':') else {
            return Err(format!("'{spec}': {usage}"));
        };
        let hole = hole.trim();
        if hole.is_empty() {
            return Err(format!("'{spec}': no hole id before ':'; {usage}"));
        }
        let mut c = HoleContent::default();
        for item in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (item, "true"),
            };
            let num = |v: &str| -> Result<Option<f64>, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(Some)
                    .ok_or_else(|| format!("'{spec}': {key}='{v}' is not a number"))
            };
            match key {
                "material" => {
                    if value.is_empty() {
                        return Err(format!("'{spec}': material= needs a name"));
                    }
                    c.material = Some(value.to_string());
                }
                "hu" => c.hu = num(value)?,
                "rod_radius_mm" => c.rod_radius_mm = num(value)?,
                "sleeve_hu" => c.sleeve_hu = num(value)?,
                "rod_gap_mm" => c.rod_gap_mm = num(value)?,
                "void_radius_mm" => c.void_radius_mm = num(value)?,
                "vial_wall_mm" => c.vial_wall_mm = num(value)?,
                "vial_wall_hu" => c.vial_wall_hu = num(value)?,
                "empty" => {
                    c.empty = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => {
                            return Err(format!("'{spec}': empty='{value}' must be true or false"))
                        }
                    })
                }
                _ => return Err(format!("'{spec}': unknown key '{key}'; {usage}")),
            }
        }
        if c == HoleContent::default() {
            return Err(format!("'{spec}': nothing to set; {usage}"));
        }
        Ok((hole.to_string(), c))
    }
}

/// The vial a hole has by default: the definition's `vial_wall_mm` (0 = none), else a
/// [`VIAL_WALL_MM`] vial in a Catphan's water hole (the Catphan 600/700 water vial).
pub(crate) fn default_vial_mm(def: &PhantomDef, hole: &str) -> Option<f64> {
    match def
        .holes
        .iter()
        .find(|h| h.id == hole)
        .and_then(|h| h.vial_wall_mm)
    {
        Some(w) => (w > 0.0).then_some(w),
        None => (geometry::is_catphan(def)
            && def.layout.get(hole).map(String::as_str) == Some("water"))
        .then_some(VIAL_WALL_MM),
    }
}

const HU_RANGE: (f64, f64) = (-1000.0, 4000.0);

/// The hole being resolved: its id and definition, named in every error about its content.
struct HoleCtx<'a> {
    id: &'a str,
    def: &'a PhantomDef,
}

impl HoleCtx<'_> {
    /// A `holes` parameter error naming this hole and its definition.
    fn err(&self, what: String) -> SimError {
        SimError::Param {
            name: "holes",
            what: format!("hole '{}' of {}: {what}", self.id, self.def.id),
        }
    }

    /// `v` when it is a finite HU within [`HU_RANGE`], else an error naming the key `name`.
    fn hu_ok(&self, name: &str, v: f64) -> Result<f64, SimError> {
        if v.is_finite() && v >= HU_RANGE.0 && v <= HU_RANGE.1 {
            Ok(v)
        } else {
            Err(self.err(format!(
                "{name} {v} is outside [{}, {}]",
                HU_RANGE.0, HU_RANGE.1
            )))
        }
    }

    /// Refuse the keys an empty hole cannot have (everything but the vial), naming them.
    fn check_empty_only(&self, c: &HoleContent) -> Result<(), SimError> {
        let mut extra = Vec::new();
        for (name, set) in [
            ("material", c.material.is_some()),
            ("hu", c.hu.is_some()),
            ("rod_radius_mm", c.rod_radius_mm.is_some()),
            ("sleeve_hu", c.sleeve_hu.is_some()),
            ("rod_gap_mm", c.rod_gap_mm.is_some()),
            ("void_radius_mm", c.void_radius_mm.is_some()),
        ] {
            if set {
                extra.push(name);
            }
        }
        if !extra.is_empty() {
            return Err(self.err(format!(
                "an empty hole holds air only; drop {}",
                extra.join(", ")
            )));
        }
        Ok(())
    }

    /// The vial (wall thickness, wall HU) of a hole of radius `r`: the given wall, else the
    /// hole's default; none without a wall.
    fn vial(&self, c: &HoleContent, r: f64) -> Result<Option<(f64, f64)>, SimError> {
        let wall = match c.vial_wall_mm {
            Some(w) => {
                if !(w.is_finite() && w >= 0.0 && w < r) {
                    return Err(self.err(format!(
                        "vial_wall_mm {w} must be at least 0 and less than the hole radius {r} mm"
                    )));
                }
                (w > 0.0).then_some(w)
            }
            None => default_vial_mm(self.def, self.id).filter(|&w| w < r),
        };
        match (wall, c.vial_wall_hu) {
            (Some(w), hu) => Ok(Some((
                w,
                self.hu_ok("vial_wall_hu", hu.unwrap_or(VIAL_WALL_HU))?,
            ))),
            (None, Some(_)) => Err(self.err(
                "vial_wall_hu needs a vial (vial_wall_mm > 0, or a hole with a vial by default)"
                    .into(),
            )),
            (None, None) => Ok(None),
        }
    }

    /// The material of a hole that is not empty: (name, true HU, whether the definition has it),
    /// from the content, else the layout (`ins.material`); `base_hu` gives a definition
    /// material's HU.
    fn material(
        &self,
        ins: &Insert,
        c: &HoleContent,
        base_hu: impl Fn(&str) -> Option<f64>,
    ) -> Result<(String, f64, bool), SimError> {
        let name =
            match (&c.material, ins.material.is_empty()) {
                (Some(m), _) => m.trim().to_string(),
                (None, false) => ins.material.clone(),
                (None, true) => return Err(self.err(
                    "the layout puts no material in this hole: give material=NAME (and hu=) or \
                     empty=true"
                        .into(),
                )),
            };
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b',' && b != b'\\')
        {
            return Err(self.err(format!(
                "material '{name}' must be 1-64 printable characters without spaces or commas"
            )));
        }
        match (self.def.material(&name).is_some(), c.hu) {
            (known, Some(h)) => Ok((name, self.hu_ok("hu", h)?, known)),
            (true, None) => {
                let h = base_hu(&name).ok_or_else(|| self.err(format!("no HU for '{name}'")))?;
                Ok((name, h, true))
            }
            (false, None) => {
                let known: Vec<&str> = self.def.materials.iter().map(|m| m.name.as_str()).collect();
                Err(self.err(format!(
                    "material '{name}' is not in the definition (its materials: {}); a foreign \
                     material needs its hu=",
                    known.join(", ")
                )))
            }
        }
    }

    /// The air gap around the rod, checked against the hole's inside radius `inner`.
    fn rod_gap(&self, c: &HoleContent, inner: f64) -> Result<Option<f64>, SimError> {
        match c.rod_gap_mm {
            Some(g) if !(g.is_finite() && g > 0.0 && g < inner) => Err(self.err(format!(
                "rod_gap_mm {g} must be more than 0 and less than the hole's inside radius \
                 {inner} mm"
            ))),
            g => Ok(g),
        }
    }

    /// The rod's radius: given (it must fit inside `inner` with its `gap`), else the room the gap
    /// leaves when there is a gap, else no rod.
    fn rod(&self, c: &HoleContent, gap: Option<f64>, inner: f64) -> Result<Option<f64>, SimError> {
        match (c.rod_radius_mm, gap) {
            (Some(rr), g) => {
                let room = inner - g.unwrap_or(0.0);
                if !(rr.is_finite() && rr > 0.0 && rr < inner && rr <= room + 1e-9) {
                    return Err(self.err(format!(
                        "rod_radius_mm {rr} must be more than 0 and less than the hole's inside \
                         radius {inner} mm{}",
                        match g {
                            Some(g) => format!(" minus the rod gap {g} mm"),
                            None => String::new(),
                        }
                    )));
                }
                Ok(Some(rr))
            }
            (None, Some(g)) => Ok(Some(inner - g)),
            (None, None) => Ok(None),
        }
    }

    /// The sleeve's HU (given, else the body's) when the rod and its gap leave room for a sleeve
    /// inside `inner`; a given `sleeve_hu` without that room is refused.
    fn sleeve_hu(
        &self,
        c: &HoleContent,
        rod: Option<f64>,
        gap: Option<f64>,
        inner: f64,
        body_hu: f64,
    ) -> Result<Option<f64>, SimError> {
        let sleeve_room = rod.is_some_and(|rr| rr + gap.unwrap_or(0.0) < inner - 1e-9);
        match (c.sleeve_hu, rod, sleeve_room) {
            (Some(_), None, _) => {
                Err(self.err("sleeve_hu needs a rod narrower than the hole (rod_radius_mm)".into()))
            }
            (Some(_), Some(_), false) => Err(self.err(
                "sleeve_hu is given but the rod and its gap fill the hole: no room for a sleeve"
                    .into(),
            )),
            (Some(s), Some(_), true) => Ok(Some(self.hu_ok("sleeve_hu", s)?)),
            (None, Some(_), true) => Ok(Some(body_hu)),
            (None, _, _) => Ok(None),
        }
    }

    /// The central void, checked against the radius `core` of the material around it (the rod
    /// when `has_rod`, else the vial's inside when `has_vial`, else the hole).
    fn void(
        &self,
        c: &HoleContent,
        core: f64,
        has_rod: bool,
        has_vial: bool,
    ) -> Result<Option<f64>, SimError> {
        match c.void_radius_mm {
            Some(v) if !(v.is_finite() && v > 0.0 && v < core) => Err(self.err(format!(
                "void_radius_mm {v} must be more than 0 and less than the radius of the material \
                 around it ({core} mm: {})",
                if has_rod {
                    "the rod"
                } else if has_vial {
                    "the vial's inside"
                } else {
                    "the hole"
                }
            ))),
            v => Ok(v),
        }
    }
}

/// Resolve what hole `ins` holds. `ins.material` is the layout's material (empty when the layout
/// leaves the hole out); `base_hu` gives a definition material's HU (expected + offset).
pub(crate) fn resolve(
    ins: &Insert,
    content: Option<&HoleContent>,
    def: &PhantomDef,
    body_hu: f64,
    base_hu: impl Fn(&str) -> Option<f64>,
) -> Result<Fill, SimError> {
    let hole = HoleCtx {
        id: ins.id.as_str(),
        def,
    };
    let default = HoleContent::default();
    let c = content.unwrap_or(&default);
    let r = ins.radius_mm;
    let empty = c.empty == Some(true);
    if empty {
        hole.check_empty_only(c)?;
    }
    let vial = hole.vial(c, r)?;
    let wall = vial.map(|(w, _)| w);
    let inner = r - wall.unwrap_or(0.0);
    let (material, hu, in_definition) = if empty {
        (EMPTY_MATERIAL.to_string(), AIR_HU, false)
    } else {
        hole.material(ins, c, base_hu)?
    };
    let gap = hole.rod_gap(c, inner)?;
    let rod = hole.rod(c, gap, inner)?;
    let sleeve_hu = hole.sleeve_hu(c, rod, gap, inner, body_hu)?;
    let core = rod.unwrap_or(inner);
    let void = hole.void(c, core, rod.is_some(), wall.is_some())?;
    Ok(Fill {
        material,
        hu,
        in_definition,
        empty,
        vial,
        rod_radius_mm: rod,
        sleeve_hu,
        rod_gap_mm: gap,
        void_radius_mm: void,
        inner_radius_mm: inner,
        core_radius_mm: core,
    })
}

/// The named simulation cases of issue 9: each expands into per-hole contents
/// ([`case_holes`]) for the phantom it is given, so one command makes it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SimCase {
    /// Older CIRS 062: every dense_bone insert is a 5 mm radius rod (10 mm core) in a
    /// water-equivalent sleeve (body HU) filling the rest of its 30 mm hole; the rod reads the
    /// material's HU (+ its --hu-offset; a real older 062 read ≈ 1145). The engine must measure
    /// the rod core, never the rod/sleeve mixture.
    #[value(name = "cirs-bone-rods")]
    CirsBoneRods,
    /// The water insert is 12 HU above its material's HU (a little contrast to the body, as on a
    /// real scan) with a 1.5 mm radius central air void. The engine must exclude the void.
    #[value(name = "cirs-water-void")]
    CirsWaterVoid,
    /// A site's own inserts: the last lung_inhale hole is empty (air) and the last dense_bone
    /// hole holds a 1250 mg/cc rod (dense_bone_1250 at +1450 HU). The engine must not pool them
    /// into lung_inhale or dense_bone.
    #[value(name = "cirs-site-layout")]
    CirsSiteLayout,
    /// The water vial of a Catphan 600/700 made explicit: 1 mm polypropylene-like wall (−90 HU)
    /// with water inside (a Catphan's water hole has it by default).
    #[value(name = "catphan600-vial")]
    Catphan600Vial,
    /// The Catphan's water vial present but empty (air inside the wall): water is missing
    /// (optional) and the hole is not a material of the definition.
    #[value(name = "catphan600-vial-empty")]
    Catphan600VialEmpty,
}

/// HU of the 1250 mg/cc HA rod of [`SimCase::CirsSiteLayout`] (a real site's rod reads ≈ +1450).
pub const SITE_ROD_1250_HU: f64 = 1450.0;
/// Rod radius of [`SimCase::CirsBoneRods`] (≈ 10 mm diameter cores, CIRS "buffered" inserts).
pub const BONE_ROD_RADIUS_MM: f64 = 5.0;
/// Radius of the void of [`SimCase::CirsWaterVoid`] (≈ 3 mm across on the real scan).
pub const WATER_VOID_RADIUS_MM: f64 = 1.5;
/// HU of the water insert above its material's in [`SimCase::CirsWaterVoid`].
pub const WATER_VOID_CONTRAST_HU: f64 = 12.0;

impl SimCase {
    pub fn name(self) -> &'static str {
        match self {
            SimCase::CirsBoneRods => "cirs-bone-rods",
            SimCase::CirsWaterVoid => "cirs-water-void",
            SimCase::CirsSiteLayout => "cirs-site-layout",
            SimCase::Catphan600Vial => "catphan600-vial",
            SimCase::Catphan600VialEmpty => "catphan600-vial-empty",
        }
    }
}

/// The holes of the (possibly rearranged) layout that hold `material`, in definition order.
fn holding<'a>(layout: &'a [Insert], material: &str) -> Vec<&'a Insert> {
    layout.iter().filter(|i| i.material == material).collect()
}

/// The per-hole contents `case` stands for on `def` with `params` (its rearrangement, body HU and
/// offsets). Merge them into [`SimParams::holes`] (later `--hole` flags override them).
pub fn case_holes(
    case: SimCase,
    def: &PhantomDef,
    params: &SimParams,
) -> Result<BTreeMap<String, HoleContent>, SimError> {
    let body_hu = params.body_hu.unwrap_or(def.body_hu);
    let (layout, _, _) = super::layout_inserts(params, def, body_hu)?;
    let need = |material: &str| -> Result<Vec<&Insert>, SimError> {
        let h = holding(&layout, material);
        if h.is_empty() {
            Err(SimError::Param {
                name: "case",
                what: format!(
                    "{} needs a hole holding {material}; {} has none",
                    case.name(),
                    def.id
                ),
            })
        } else {
            Ok(h)
        }
    };
    let material_hu = |name: &str| -> f64 {
        def.material(name).map(|m| m.hu_expected).unwrap_or(0.0)
            + params.hu_offsets.get(name).copied().unwrap_or(0.0)
    };
    let mut out = BTreeMap::new();
    match case {
        SimCase::CirsBoneRods => {
            for h in need("dense_bone")? {
                out.insert(
                    h.id.clone(),
                    HoleContent {
                        rod_radius_mm: Some(BONE_ROD_RADIUS_MM),
                        sleeve_hu: Some(body_hu),
                        ..Default::default()
                    },
                );
            }
        }
        SimCase::CirsWaterVoid => {
            for h in need("water")? {
                out.insert(
                    h.id.clone(),
                    HoleContent {
                        hu: Some(material_hu("water") + WATER_VOID_CONTRAST_HU),
                        void_radius_mm: Some(WATER_VOID_RADIUS_MM),
                        ..Default::default()
                    },
                );
            }
        }
        SimCase::CirsSiteLayout => {
            let lung = need("lung_inhale")?;
            let bone = need("dense_bone")?;
            if let Some(h) = lung.last() {
                out.insert(
                    h.id.clone(),
                    HoleContent {
                        empty: Some(true),
                        ..Default::default()
                    },
                );
            }
            if let Some(h) = bone.last() {
                out.insert(
                    h.id.clone(),
                    HoleContent {
                        material: Some("dense_bone_1250".into()),
                        hu: Some(SITE_ROD_1250_HU),
                        ..Default::default()
                    },
                );
            }
        }
        SimCase::Catphan600Vial | SimCase::Catphan600VialEmpty => {
            for h in need("water")? {
                out.insert(
                    h.id.clone(),
                    HoleContent {
                        vial_wall_mm: Some(VIAL_WALL_MM),
                        vial_wall_hu: Some(VIAL_WALL_HU),
                        empty: (case == SimCase::Catphan600VialEmpty).then_some(true),
                        ..Default::default()
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Merge `more` into `into`, field by field (later wins).
pub fn merge_holes(into: &mut BTreeMap<String, HoleContent>, more: BTreeMap<String, HoleContent>) {
    for (id, c) in more {
        into.entry(id).or_default().merge(&c);
    }
}
