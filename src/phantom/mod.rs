//! Phantom definitions: what a phantom looks like (outline, holes, layout) and what its materials
//! are (RED, expected HU, tolerance). Owns the built-in definitions (data files under
//! `config/phantoms/`, embedded at build time) and the site override files, in both the Python
//! script's format and hu-red's richer one. No analysis happens here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The phantom ids hu-red knows out of the box (a contract with users: `--phantom`).
pub const BUILTIN_IDS: [&str; 3] = ["cirs062", "easycube", "catphan_ctp404"];

const BUILTIN_SOURCES: [(&str, &str); 3] = [
    (
        "cirs062",
        include_str!("../../config/phantoms/cirs062.json"),
    ),
    (
        "easycube",
        include_str!("../../config/phantoms/easycube.json"),
    ),
    (
        "catphan_ctp404",
        include_str!("../../config/phantoms/catphan_ctp404.json"),
    ),
];

/// The outline of the phantom body in the insert plane, at rotation 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "lowercase")]
pub enum Outline {
    Circle { diameter_mm: f64 },
    Ellipse { width_mm: f64, height_mm: f64 },
    Square { side_mm: f64 },
}

impl Outline {
    /// Area of the outline in mm².
    pub fn area_mm2(&self) -> f64 {
        match *self {
            Outline::Circle { diameter_mm } => {
                std::f64::consts::PI * diameter_mm * diameter_mm / 4.0
            }
            Outline::Ellipse {
                width_mm,
                height_mm,
            } => std::f64::consts::PI * width_mm * height_mm / 4.0,
            Outline::Square { side_mm } => side_mm * side_mm,
        }
    }
    /// (width, height) of the outline at rotation 0, in mm.
    pub fn size_mm(&self) -> (f64, f64) {
        match *self {
            Outline::Circle { diameter_mm } => (diameter_mm, diameter_mm),
            Outline::Ellipse {
                width_mm,
                height_mm,
            } => (width_mm, height_mm),
            Outline::Square { side_mm } => (side_mm, side_mm),
        }
    }
}

/// How the inserts of a phantom are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Localisation {
    /// Fit the definition's hole template (positions known).
    Template,
    /// Detect rods by contrast (no published layout, e.g. Easy Cube).
    Detection,
}

/// One hole of the phantom, in phantom coordinates at rotation 0: millimetres from the phantom
/// centre, x to image right, y to image bottom (patient posterior in a head-first supine scan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hole {
    pub id: String,
    pub x_mm: f64,
    pub y_mm: f64,
    pub radius_mm: f64,
    /// Free-text group (e.g. "inner", "outer", "centre", "ring") used to label duplicate inserts.
    #[serde(default)]
    pub ring: Option<String>,
    /// The hole holds a vial (e.g. the Catphan 600's water vial): a wall this thick at the hole's
    /// edge, its material inside (radius `radius_mm − vial_wall_mm`). `None` = no vial (the
    /// simulator still gives a Catphan's water hole a 1 mm vial by default), 0 = explicitly none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vial_wall_mm: Option<f64>,
}

/// One insert material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Material {
    /// Canonical insert name (a contract: it is the CSV `insert` column).
    pub name: String,
    /// Relative electron density (to water). `None` when no value is published: such a material is
    /// measured but left out of the HU–RED curve, with a warning.
    pub red: Option<f64>,
    #[serde(default)]
    pub density_g_cm3: Option<f64>,
    /// Typical HU at 120 kV: used to assign materials when the layout is contradicted, never as a
    /// pass criterion.
    pub hu_expected: f64,
    /// Constancy tolerance against the baseline, ± HU.
    pub tolerance_hu: f64,
    /// Absolute acceptance window from the manufacturer (e.g. the Catphan manual), if any.
    #[serde(default)]
    pub hu_window: Option<[f64; 2]>,
    /// The kVp the absolute window holds at (default 120 kV, the Catphan manual's). At any other
    /// kVp, or when the scan's kVp is unknown, the window is reported as information only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hu_window_kvp: Option<f64>,
    /// Plausibility band at 120 kV: what this material can read on a working CT, miscalibrated
    /// or not; a hole reading outside every material's band is left unassigned, and a material
    /// reading outside its own band fails. Default: `hu_expected` ± max(100, 20 % of |HU|).
    /// Bands of bone-like materials widen away from 120 kV (see [`Material::plausible_band`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hu_band: Option<[f64; 2]>,
    /// An optional material (e.g. the Catphan 600's water vial, which may be empty): when no hole
    /// holds it, that is information, not a failure.
    #[serde(default)]
    pub optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// kVp the manufacturer windows are given at when a definition does not say.
pub const DEFAULT_WINDOW_KVP: f64 = 120.0;
/// A scan's kVp matches a window's within this (kVp are discrete: 70, 80, 100, 120, 140).
const KVP_MATCH: f64 = 2.0;
/// Widening of a bone-like material's plausibility band per kV away from 120 kV (fraction of its
/// expected HU): photoelectric absorption of calcium makes bone read higher at lower kVp.
const BAND_WIDEN_PER_KV: f64 = 0.005;
/// The widening assumed when the scan's kVp is unknown (as at 80 or 160 kV).
const BAND_WIDEN_UNKNOWN: f64 = 0.2;

impl Material {
    /// The plausibility band at `kvp` (see [`Material::hu_band`]). Materials whose expected HU
    /// is above +150 (bone, teflon, delrin) widen by 0.5 % of their expected HU per kV away from
    /// 120 kV (20 % when the kVp is unknown); the others do not depend on kVp enough to matter.
    pub fn plausible_band(&self, kvp: Option<f64>) -> [f64; 2] {
        let e = self.hu_expected;
        let [lo, hi] = self.hu_band.unwrap_or_else(|| {
            let half = (0.2 * e.abs()).max(100.0);
            [e - half, e + half]
        });
        if e <= 150.0 {
            return [lo, hi];
        }
        let f = match kvp.filter(|k| k.is_finite() && *k > 0.0) {
            Some(k) => BAND_WIDEN_PER_KV * (k - 120.0).abs(),
            None => BAND_WIDEN_UNKNOWN,
        };
        [lo - f * e, hi + f * e]
    }

    /// The kVp the window (if any) holds at.
    pub fn window_kvp(&self) -> Option<f64> {
        self.hu_window
            .map(|_| self.hu_window_kvp.unwrap_or(DEFAULT_WINDOW_KVP))
    }

    /// The window, when it holds at `kvp` (a window given at 120 kV does not judge a 100 kV scan).
    pub fn window_at(&self, kvp: Option<f64>) -> Option<[f64; 2]> {
        let w = self.hu_window?;
        let at = self.window_kvp()?;
        let k = kvp?;
        ((k - at).abs() <= KVP_MATCH).then_some(w)
    }
}

/// A complete phantom definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhantomDef {
    pub id: String,
    pub name: String,
    /// Variants of one phantom share a family id (e.g. every Catphan sensitometry module has
    /// `catphan_ctp404`, the id hu-red used before variants existed). A family id is accepted
    /// wherever a phantom id is (`--phantom`, `qa.phantom`, site files, stored baselines) and
    /// stands for "one of these variants, detected from the image".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub outline: Outline,
    /// Nominal HU of the body material.
    pub body_hu: f64,
    /// Thickness along z of the part that holds the inserts (slab or module), if known.
    #[serde(default)]
    pub extent_z_mm: Option<f64>,
    pub localisation: Localisation,
    /// ROI radius as a fraction of the insert radius.
    pub roi_radius_fraction: f64,
    #[serde(default)]
    pub holes: Vec<Hole>,
    /// Hole id → material name.
    #[serde(default)]
    pub layout: BTreeMap<String, String>,
    pub materials: Vec<Material>,
}

impl PhantomDef {
    /// True when `id` names this definition or its family.
    pub fn answers_to(&self, id: &str) -> bool {
        self.id == id || self.family.as_deref() == Some(id)
    }

    pub fn material(&self, name: &str) -> Option<&Material> {
        self.materials.iter().find(|m| m.name == name)
    }

    /// The materials the analysis must measure: every material the layout names, plus for
    /// detection phantoms every non-optional material.
    pub fn expected_materials(&self) -> Vec<&Material> {
        self.materials
            .iter()
            .filter(|m| match self.localisation {
                Localisation::Template => self.layout.values().any(|v| *v == m.name),
                Localisation::Detection => !m.optional,
            })
            .collect()
    }

    /// Check internal consistency; the message names the phantom and what to fix.
    pub fn validate(&self) -> Result<(), PhantomError> {
        let bad = |what: String| PhantomError::Invalid {
            id: self.id.clone(),
            what,
        };
        if !(self.roi_radius_fraction > 0.0 && self.roi_radius_fraction <= 1.0) {
            return Err(bad(format!(
                "roi_radius_fraction must be in (0, 1], got {}",
                self.roi_radius_fraction
            )));
        }
        let (w, h) = self.outline.size_mm();
        if !(w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite()) {
            return Err(bad("outline size must be positive".into()));
        }
        if self.materials.is_empty() {
            return Err(bad("no materials".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for m in &self.materials {
            if !names.insert(m.name.as_str()) {
                return Err(bad(format!("material '{}' is listed twice", m.name)));
            }
            if let Some(r) = m.red {
                if !(r.is_finite() && (0.0..=5.0).contains(&r)) {
                    return Err(bad(format!(
                        "material '{}' has an implausible RED {r}",
                        m.name
                    )));
                }
            }
            if !(m.tolerance_hu.is_finite() && m.tolerance_hu > 0.0) {
                return Err(bad(format!(
                    "material '{}' needs a positive tolerance_hu",
                    m.name
                )));
            }
        }
        let mut hole_ids = std::collections::BTreeSet::new();
        for hole in &self.holes {
            if !hole_ids.insert(hole.id.as_str()) {
                return Err(bad(format!("hole '{}' is listed twice", hole.id)));
            }
            if !(hole.radius_mm > 0.0 && hole.radius_mm.is_finite()) {
                return Err(bad(format!(
                    "hole '{}' needs a positive radius_mm",
                    hole.id
                )));
            }
            if let Some(w) = hole.vial_wall_mm {
                if !(w.is_finite() && w >= 0.0 && w < hole.radius_mm) {
                    return Err(bad(format!(
                        "hole '{}': vial_wall_mm {w} must be at least 0 and less than its radius_mm {}",
                        hole.id, hole.radius_mm
                    )));
                }
            }
        }
        for (hole, mat) in &self.layout {
            if !hole_ids.contains(hole.as_str()) {
                return Err(bad(format!(
                    "layout names hole '{hole}', which is not in holes"
                )));
            }
            if !names.contains(mat.as_str()) {
                return Err(bad(format!(
                    "layout puts material '{mat}' in hole '{hole}', but '{mat}' is not in materials"
                )));
            }
        }
        if self.localisation == Localisation::Template && self.layout.is_empty() {
            return Err(bad("a template phantom needs holes and a layout".into()));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    #[error("phantom '{id}': {what}")]
    Invalid { id: String, what: String },
    #[error("unknown phantom '{id}': use auto or one of {known} (or a phantom defined in the site phantom file)")]
    Unknown { id: String, known: String },
    #[error("cannot read phantom file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("phantom file {path} is not valid: {what}")]
    Parse { path: PathBuf, what: String },
}

/// The set of phantom definitions in force: built-ins, with site overrides applied.
#[derive(Debug, Clone)]
pub struct PhantomSet {
    pub phantoms: Vec<PhantomDef>,
}

impl PhantomSet {
    /// Override constancy tolerances by material name (`qa.tolerances`), in every phantom that
    /// has the material (names compared without case). A name no phantom has is an error
    /// naming it and the known materials, so a typo does not leave the default in force.
    pub fn apply_tolerances(
        &mut self,
        tolerances: &std::collections::BTreeMap<String, f64>,
    ) -> Result<(), String> {
        for (name, tol) in tolerances {
            if !(tol.is_finite() && *tol > 0.0) {
                return Err(format!(
                    "{name} = {tol}: a tolerance must be more than 0 HU"
                ));
            }
            let mut found = false;
            for p in &mut self.phantoms {
                for m in &mut p.materials {
                    if m.name.eq_ignore_ascii_case(name.trim()) {
                        m.tolerance_hu = *tol;
                        found = true;
                    }
                }
            }
            if !found {
                let mut known: Vec<&str> = self
                    .phantoms
                    .iter()
                    .flat_map(|p| p.materials.iter().map(|m| m.name.as_str()))
                    .collect();
                known.sort_unstable();
                known.dedup();
                return Err(format!(
                    "no phantom has a material named {name:?}; materials: {}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The built-ins, with the site file at `site` applied when given (`qa.phantom_config`,
    /// `--config`).
    pub fn load(site: Option<&Path>) -> Result<Self, PhantomError> {
        match site {
            Some(p) => Self::with_site_file(p),
            None => Ok(Self::builtin()),
        }
    }

    /// The three built-in definitions.
    pub fn builtin() -> Self {
        let phantoms = BUILTIN_SOURCES
            .iter()
            .map(|(id, src)| {
                // The built-in files are part of the source tree and are checked by a unit test;
                // a parse failure here is a build defect, not bad user input.
                serde_json::from_str::<PhantomDef>(src)
                    .unwrap_or_else(|e| panic!("built-in phantom {id} is malformed: {e}"))
            })
            .collect();
        PhantomSet { phantoms }
    }

    /// Built-ins with the site file at `path` applied (script or hu-red format).
    pub fn with_site_file(path: &Path) -> Result<Self, PhantomError> {
        let text = std::fs::read_to_string(path).map_err(|source| PhantomError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut set = Self::builtin();
        set.apply_site_json(&text)
            .map_err(|what| PhantomError::Parse {
                path: path.to_path_buf(),
                what,
            })?;
        Ok(set)
    }

    pub fn get(&self, id: &str) -> Result<&PhantomDef, PhantomError> {
        self.phantoms
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| self.unknown(id))
    }

    /// The definitions a phantom id stands for: the one with that id, or every variant of the
    /// family with that id (`catphan_ctp404` → Catphan 503/504, 600, 604, ...).
    pub fn resolve(&self, id: &str) -> Result<Vec<&PhantomDef>, PhantomError> {
        if let Ok(p) = self.get(id) {
            return Ok(vec![p]);
        }
        let family: Vec<&PhantomDef> = self
            .phantoms
            .iter()
            .filter(|p| p.family.as_deref() == Some(id))
            .collect();
        if family.is_empty() {
            Err(self.unknown(id))
        } else {
            Ok(family)
        }
    }

    /// Every id accepted as a phantom: definitions and families, sorted.
    pub fn known_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .phantoms
            .iter()
            .flat_map(|p| std::iter::once(p.id.clone()).chain(p.family.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn unknown(&self, id: &str) -> PhantomError {
        PhantomError::Unknown {
            id: id.to_string(),
            known: self.known_ids().join(", "),
        }
    }

    /// Apply a site override document. Accepted forms, in one file:
    /// - `tolerances_hu`: {material name: ± HU}, applied to every phantom that has the material;
    /// - `phantoms.<id>` in the Python script's form: `roi_radius_fraction` and
    ///   `inserts: [{name, red, hu_hint}]` — the listed inserts replace the built-in materials;
    ///   layout entries naming a material that is no longer listed are dropped (those holes are
    ///   then assigned by expected HU);
    /// - `phantoms.<id>` in hu-red's form: any of the fields of a definition (`holes`, `layout`,
    ///   `materials`, `outline`, ...) replace the built-in ones; an id that is not built in must
    ///   give a complete definition.
    pub fn apply_site_json(&mut self, text: &str) -> Result<(), String> {
        // Work on a copy so that a bad file leaves the set in force untouched.
        let mut work = self.clone();
        work.apply_site_doc(text)?;
        *self = work;
        Ok(())
    }

    fn apply_site_doc(&mut self, text: &str) -> Result<(), String> {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = doc
            .as_object()
            .ok_or("the top level must be a JSON object")?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "tolerances_hu" | "phantoms" | "comment" | "_comment"
            ) {
                return Err(format!(
                    "unknown top-level key '{key}' (expected tolerances_hu, phantoms)"
                ));
            }
        }
        if let Some(phantoms) = obj.get("phantoms") {
            let phantoms = phantoms
                .as_object()
                .ok_or("'phantoms' must be an object keyed by phantom id")?;
            for (id, entry) in phantoms {
                self.apply_phantom_entry(id, entry)?;
            }
        }
        if let Some(tols) = obj.get("tolerances_hu") {
            let tols = tols
                .as_object()
                .ok_or("'tolerances_hu' must be an object {material: HU}")?;
            for (name, v) in tols {
                let tol = v
                    .as_f64()
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .ok_or_else(|| format!("tolerances_hu.{name} must be a positive number"))?;
                for p in &mut self.phantoms {
                    for m in &mut p.materials {
                        if m.name == *name {
                            m.tolerance_hu = tol;
                        }
                    }
                }
            }
        }
        for p in &self.phantoms {
            p.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn apply_phantom_entry(&mut self, id: &str, entry: &serde_json::Value) -> Result<(), String> {
        let obj = entry
            .as_object()
            .ok_or_else(|| format!("phantoms.{id} must be an object"))?;
        // An entry for a definition's id applies to it; one for a family id (the legacy
        // `catphan_ctp404`) to every variant of the family.
        let exact = self.phantoms.iter().position(|p| p.id == id);
        let targets: Vec<usize> = match exact {
            Some(i) => vec![i],
            None => (0..self.phantoms.len())
                .filter(|i| self.phantoms[*i].family.as_deref() == Some(id))
                .collect(),
        };
        if targets.is_empty() {
            let mut full = entry.clone();
            if let Some(o) = full.as_object_mut() {
                o.entry("id")
                    .or_insert(serde_json::Value::String(id.into()));
            }
            let def: PhantomDef = serde_json::from_value(full).map_err(|e| {
                format!("phantoms.{id} is not a built-in phantom, so it needs a complete definition: {e}")
            })?;
            self.phantoms.push(def);
            return Ok(());
        }
        for idx in targets {
            Self::apply_to_def(&mut self.phantoms[idx], id, obj)?;
        }
        Ok(())
    }

    /// Apply one site entry (`phantoms.<id>`) to an existing definition.
    fn apply_to_def(
        def: &mut PhantomDef,
        id: &str,
        obj: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        if obj.contains_key("inserts") {
            #[derive(Deserialize)]
            struct ScriptInsert {
                name: String,
                red: f64,
                #[serde(default)]
                hu_hint: Option<f64>,
            }
            let inserts: Vec<ScriptInsert> = serde_json::from_value(obj["inserts"].clone())
                .map_err(|e| {
                    format!(
                        "phantoms.{id}.inserts: {e} (each needs name and red, optionally hu_hint)"
                    )
                })?;
            if inserts.is_empty() {
                return Err(format!("phantoms.{id}.inserts is empty"));
            }
            let old = std::mem::take(&mut def.materials);
            for ins in inserts {
                let prev = old.iter().find(|m| m.name == ins.name);
                let hu = ins
                    .hu_hint
                    .or(prev.map(|m| m.hu_expected))
                    .ok_or_else(|| {
                        format!(
                            "phantoms.{id}.inserts: '{}' is not a known material, so it needs a hu_hint",
                            ins.name
                        )
                    })?;
                def.materials.push(Material {
                    name: ins.name.clone(),
                    red: Some(ins.red),
                    density_g_cm3: prev.and_then(|m| m.density_g_cm3),
                    hu_expected: hu,
                    tolerance_hu: prev
                        .map(|m| m.tolerance_hu)
                        .unwrap_or_else(|| script_default_tolerance(&ins.name)),
                    hu_window: prev.and_then(|m| m.hu_window),
                    hu_window_kvp: prev.and_then(|m| m.hu_window_kvp),
                    hu_band: prev.and_then(|m| m.hu_band),
                    optional: false,
                    note: None,
                });
            }
            let names: Vec<String> = def.materials.iter().map(|m| m.name.clone()).collect();
            def.layout.retain(|_, m| names.contains(m));
        }
        macro_rules! replace {
            ($field:ident) => {
                if let Some(v) = obj.get(stringify!($field)) {
                    def.$field = serde_json::from_value(v.clone())
                        .map_err(|e| format!("phantoms.{id}.{}: {e}", stringify!($field)))?;
                }
            };
        }
        replace!(roi_radius_fraction);
        replace!(name);
        replace!(outline);
        replace!(body_hu);
        replace!(extent_z_mm);
        replace!(localisation);
        replace!(family);
        replace!(holes);
        replace!(layout);
        replace!(materials);
        for key in obj.keys() {
            let known = [
                "inserts",
                "roi_radius_fraction",
                "name",
                "outline",
                "body_hu",
                "extent_z_mm",
                "localisation",
                "family",
                "holes",
                "layout",
                "materials",
                "source",
                "id",
                "comment",
            ];
            if !known.contains(&key.as_str()) {
                return Err(format!("phantoms.{id}: unknown key '{key}'"));
            }
        }
        Ok(())
    }
}

/// The Python script's default constancy tolerance for an insert name (± HU).
pub fn script_default_tolerance(name: &str) -> f64 {
    match name {
        "water" => 30.0,
        "lung" | "lung_inhale" | "lung_exhale" | "air" | "dense_bone" | "bone" | "foam"
        | "delrin" | "teflon" => 50.0,
        _ => 40.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_validate() {
        let set = PhantomSet::builtin();
        assert_eq!(set.phantoms.len(), 3);
        for p in &set.phantoms {
            p.validate().unwrap();
        }
        let cirs = set.get("cirs062").unwrap();
        assert_eq!(cirs.holes.len(), 17);
        assert_eq!(set.get("catphan_ctp404").unwrap().holes.len(), 8);
        assert_eq!(cirs.layout.len(), 17);
        assert_eq!(cirs.expected_materials().len(), 9);
        let cat = set.get("catphan_ctp404").unwrap();
        let names: Vec<_> = cat
            .expected_materials()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "air",
                "pmp",
                "ldpe",
                "polystyrene",
                "acrylic",
                "delrin",
                "teflon"
            ]
        );
        assert_eq!(cat.material("pmp").unwrap().red, Some(0.853));
        assert!(cat.material("foam").is_none());
        assert_eq!(set.get("easycube").unwrap().expected_materials().len(), 5);
    }

    #[test]
    fn script_config_format_is_accepted() {
        let mut set = PhantomSet::builtin();
        let json = r#"{
          "tolerances_hu": {"water": 25, "liver": 35},
          "phantoms": {"cirs062": {"roi_radius_fraction": 0.6,
             "inserts": [{"name": "water", "red": 1.0, "hu_hint": 0},
                         {"name": "lung_inhale", "red": 0.195, "hu_hint": -810},
                         {"name": "liver", "red": 1.05, "hu_hint": 60}]}}
        }"#;
        set.apply_site_json(json).unwrap();
        let c = set.get("cirs062").unwrap();
        assert_eq!(c.roi_radius_fraction, 0.6);
        assert_eq!(c.materials.len(), 3);
        assert_eq!(c.material("lung_inhale").unwrap().red, Some(0.195));
        assert_eq!(c.material("liver").unwrap().tolerance_hu, 35.0);
        assert_eq!(c.material("water").unwrap().tolerance_hu, 25.0);
        // holes whose material was dropped leave the layout
        assert!(c
            .layout
            .values()
            .all(|m| ["water", "lung_inhale", "liver"].contains(&m.as_str())));
        assert_eq!(c.layout.len(), 5);
    }

    #[test]
    fn site_file_errors_name_the_problem() {
        let mut set = PhantomSet::builtin();
        let e = set
            .apply_site_json(
                r#"{"phantoms": {"cirs062": {"inserts": [{"name": "unobtainium", "red": 1.2}]}}}"#,
            )
            .unwrap_err();
        assert!(e.contains("unobtainium") && e.contains("hu_hint"), "{e}");
        let e = set.apply_site_json(r#"{"tolerance_hu": {}}"#).unwrap_err();
        assert!(e.contains("tolerance_hu"), "{e}");
        let e = set
            .apply_site_json(r#"{"phantoms": {"my_phantom": {"name": "x"}}}"#)
            .unwrap_err();
        assert!(e.contains("complete definition"), "{e}");
    }

    #[test]
    fn hole_vial_wall_is_optional_and_checked() {
        let mut d = PhantomSet::builtin().get("cirs062").unwrap().clone();
        assert!(d.holes.iter().all(|h| h.vial_wall_mm.is_none()));
        d.holes[0].vial_wall_mm = Some(1.0);
        d.validate().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        let back: PhantomDef = serde_json::from_str(&json).unwrap();
        assert_eq!(back.holes[0].vial_wall_mm, Some(1.0));
        assert!(!json.contains("\"vial_wall_mm\":null"));
        d.holes[0].vial_wall_mm = Some(15.0);
        let e = d.validate().unwrap_err().to_string();
        assert!(e.contains("centre") && e.contains("vial_wall_mm"), "{e}");
    }

    #[test]
    fn rich_format_replaces_layout() {
        let mut set = PhantomSet::builtin();
        set.apply_site_json(
            r#"{"phantoms": {"cirs062": {"layout": {"centre": "water", "inner_000": "liver"}}}}"#,
        )
        .unwrap();
        assert_eq!(set.get("cirs062").unwrap().layout.len(), 2);
        let bad =
            set.apply_site_json(r#"{"phantoms": {"cirs062": {"layout": {"nope": "water"}}}}"#);
        assert!(bad.unwrap_err().contains("nope"));
    }
}
