//! Phantom definitions: what a phantom looks like (outline, holes, layout) and what its materials
//! are (RED, expected HU, tolerance). Owns the built-in definitions (data files under
//! `config/phantoms/`, embedded at build time) and the site override files, in both the Python
//! script's format and hu-red's richer one. No analysis happens here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The phantom ids hu-red knows out of the box (a contract with users: `--phantom`). Variants of
/// one phantom also answer to their family id (see [`PhantomDef::family`]): `catphan_ctp404`
/// stands for every Catphan; [`PhantomSet::known_ids`] lists definitions and families.
pub const BUILTIN_IDS: [&str; 10] = [
    "cirs062",
    "cirs062_head",
    "easycube",
    "catphan_504",
    "catphan_600",
    "catphan_604",
    "catphan_700",
    "gammex_467",
    "gammex_1467_body",
    "gammex_1467_head",
];

/// The family id of the Catphan variants (the single Catphan id of hu-red before variants).
pub const CATPHAN_FAMILY: &str = "catphan_ctp404";

/// The built-in definitions, in this order: [`PhantomSet::resolve`] lists a family's variants in
/// it, so the first Catphan (the 503/504, which the family id meant before variants existed) is
/// the one a command that needs a single definition takes for the family id.
const BUILTIN_SOURCES: [(&str, &str); 10] = [
    (
        "cirs062",
        include_str!("../../config/phantoms/cirs062.json"),
    ),
    (
        "cirs062_head",
        include_str!("../../config/phantoms/cirs062_head.json"),
    ),
    (
        "easycube",
        include_str!("../../config/phantoms/easycube.json"),
    ),
    (
        "catphan_504",
        include_str!("../../config/phantoms/catphan_504.json"),
    ),
    (
        "catphan_600",
        include_str!("../../config/phantoms/catphan_600.json"),
    ),
    (
        "catphan_604",
        include_str!("../../config/phantoms/catphan_604.json"),
    ),
    (
        "catphan_700",
        include_str!("../../config/phantoms/catphan_700.json"),
    ),
    (
        "gammex_467",
        include_str!("../../config/phantoms/gammex_467.json"),
    ),
    (
        "gammex_1467_body",
        include_str!("../../config/phantoms/gammex_1467_body.json"),
    ),
    (
        "gammex_1467_head",
        include_str!("../../config/phantoms/gammex_1467_head.json"),
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

    /// Whether a disc of `radius_mm` centred at (`x_mm`, `y_mm`) (phantom coordinates at
    /// rotation 0) lies inside the outline. An ellipse is checked at the disc's point farthest
    /// from the centre, which is exact enough for inserts small against the outline.
    pub fn contains_disc(&self, x_mm: f64, y_mm: f64, radius_mm: f64) -> bool {
        match *self {
            Outline::Circle { diameter_mm } => x_mm.hypot(y_mm) + radius_mm <= diameter_mm / 2.0,
            Outline::Square { side_mm } => {
                x_mm.abs() + radius_mm <= side_mm / 2.0 && y_mm.abs() + radius_mm <= side_mm / 2.0
            }
            Outline::Ellipse {
                width_mm,
                height_mm,
            } => {
                let d = x_mm.hypot(y_mm);
                let (ux, uy) = if d > 0.0 {
                    (x_mm / d, y_mm / d)
                } else {
                    (0.0, 1.0)
                };
                let (fx, fy) = (x_mm + radius_mm * ux, y_mm + radius_mm * uy);
                let (a, b) = (width_mm / 2.0, height_mm / 2.0);
                (fx / a).powi(2) + (fy / b).powi(2) <= 1.0
            }
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
    /// Hole id → material name. Empty in a template phantom whose inserts are interchangeable
    /// (Gammex): every hole is then assigned by its HU, and a site gives its own layout in the
    /// site phantom file (`phantoms.<id>.layout`).
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

    /// True for a template phantom without a layout: its holes are known, the material in each
    /// is assigned by HU (interchangeable plugs, e.g. Gammex without a site layout).
    pub fn assigned_by_hu(&self) -> bool {
        self.localisation == Localisation::Template && self.layout.is_empty()
    }

    /// The materials the analysis must measure: every material the layout names (an optional
    /// one among them may be missing without failing); for detection phantoms and template
    /// phantoms assigned by HU ([`PhantomDef::assigned_by_hu`]) every non-optional material.
    pub fn expected_materials(&self) -> Vec<&Material> {
        let by_layout = self.localisation == Localisation::Template && !self.layout.is_empty();
        self.materials
            .iter()
            .filter(|m| {
                if by_layout {
                    self.layout.values().any(|v| *v == m.name)
                } else {
                    !m.optional
                }
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
            let inside = hole.x_mm.is_finite()
                && hole.y_mm.is_finite()
                && self
                    .outline
                    .contains_disc(hole.x_mm, hole.y_mm, hole.radius_mm);
            if !inside {
                return Err(bad(format!(
                    "hole '{}' (x {} mm, y {} mm, radius {} mm) does not fit inside the outline",
                    hole.id, hole.x_mm, hole.y_mm, hole.radius_mm
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
        if self.localisation == Localisation::Template && self.holes.is_empty() {
            return Err(bad(
                "a template phantom needs holes (its layout may be empty: holes are then assigned by HU)"
                    .into(),
            ));
        }
        if self.family.as_deref() == Some(self.id.as_str()) {
            return Err(bad("its family id must differ from its own id".into()));
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

    /// The built-in definitions (see [`BUILTIN_IDS`]).
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
    /// family with that id (`catphan_ctp404` → Catphan 503/504, 600, 604, 700), in definition
    /// order (built-ins first, in [`BUILTIN_IDS`] order; then those of the site file).
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

    /// True when `id` is a family id (not the id of a definition) that some definition has.
    pub fn is_family(&self, id: &str) -> bool {
        self.get(id).is_err()
            && self
                .phantoms
                .iter()
                .any(|p| p.family.as_deref() == Some(id))
    }

    /// The phantom ids whose stored baselines concern `id`: `id` itself; for a variant also its
    /// family id (baselines stored before hu-red told the variants apart); for a family id also
    /// every variant. An unknown id gives just itself.
    pub fn baseline_ids(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_string()];
        if let Ok(d) = self.get(id) {
            out.extend(d.family.clone());
        } else if let Ok(variants) = self.resolve(id) {
            out.extend(variants.into_iter().map(|d| d.id.clone()));
        }
        out
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
        self.validate().map_err(|e| e.to_string())
    }

    /// Check every definition and the set: ids are unique, and no family id is also the id of
    /// a definition (an id must say whether it means one phantom or a family).
    pub fn validate(&self) -> Result<(), PhantomError> {
        let mut ids = std::collections::BTreeSet::new();
        for p in &self.phantoms {
            p.validate()?;
            if !ids.insert(p.id.as_str()) {
                return Err(PhantomError::Invalid {
                    id: p.id.clone(),
                    what: "defined twice".into(),
                });
            }
        }
        for p in &self.phantoms {
            if let Some(f) = p.family.as_deref().filter(|f| ids.contains(f)) {
                return Err(PhantomError::Invalid {
                    id: p.id.clone(),
                    what: format!(
                        "its family '{f}' is the id of a phantom definition: choose another family id"
                    ),
                });
            }
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
                    // a material of the definition keeps what the script form cannot say
                    // (the Catphan 600's vial stays optional)
                    optional: prev.is_some_and(|m| m.optional),
                    note: prev.and_then(|m| m.note.clone()),
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

    fn names(ms: Vec<&Material>) -> Vec<String> {
        ms.iter().map(|m| m.name.clone()).collect()
    }

    /// (angle in degrees, 0 = image right, +90 = image bottom; radius) of a hole.
    fn polar(h: &Hole) -> (f64, f64) {
        (
            h.y_mm.atan2(h.x_mm).to_degrees().rem_euclid(360.0),
            h.x_mm.hypot(h.y_mm),
        )
    }

    fn hole_at<'a>(p: &'a PhantomDef, material: &str) -> Vec<&'a Hole> {
        p.holes
            .iter()
            .filter(|h| p.layout.get(&h.id).map(String::as_str) == Some(material))
            .collect()
    }

    #[test]
    fn builtins_parse_and_validate() {
        let set = PhantomSet::builtin();
        assert_eq!(set.phantoms.len(), BUILTIN_IDS.len());
        for (p, id) in set.phantoms.iter().zip(BUILTIN_IDS) {
            assert_eq!(p.id, id);
            p.validate().unwrap();
        }
        set.validate().unwrap();
        let holes = |id: &str| set.get(id).unwrap().holes.len();
        assert_eq!(
            [
                holes("cirs062"),
                holes("cirs062_head"),
                holes("catphan_504"),
                holes("catphan_600"),
                holes("catphan_604"),
                holes("catphan_700"),
                holes("gammex_467"),
                holes("gammex_1467_body"),
                holes("gammex_1467_head"),
            ],
            [17, 9, 8, 8, 10, 11, 16, 15, 9]
        );
        let cirs = set.get("cirs062").unwrap();
        assert_eq!(cirs.layout.len(), 17);
        assert_eq!(cirs.expected_materials().len(), 9);
        let cat = set.get("catphan_504").unwrap();
        assert_eq!(
            names(cat.expected_materials()),
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
        // the 504 holds only its own materials now (the water vial and bones are other variants')
        assert_eq!(cat.materials.len(), 7);
        assert_eq!(set.get("easycube").unwrap().expected_materials().len(), 5);
        // no two holes of a phantom overlap
        for p in &set.phantoms {
            for (i, a) in p.holes.iter().enumerate() {
                for b in &p.holes[i + 1..] {
                    let d = (a.x_mm - b.x_mm).hypot(a.y_mm - b.y_mm);
                    assert!(
                        d > a.radius_mm + b.radius_mm,
                        "{}: {} and {}",
                        p.id,
                        a.id,
                        b.id
                    );
                }
            }
        }
    }

    #[test]
    fn catphan_504_keeps_the_ids_and_layout_of_catphan_ctp404() {
        let set = PhantomSet::builtin();
        let cat = set.get("catphan_504").unwrap();
        assert_eq!(cat.family.as_deref(), Some(CATPHAN_FAMILY));
        assert_eq!(cat.name, "Catphan 503/504 (CTP404)");
        let layout: Vec<(&str, &str)> = cat
            .holes
            .iter()
            .map(|h| (h.id.as_str(), cat.layout[&h.id].as_str()))
            .collect();
        assert_eq!(
            layout,
            [
                ("ring_270", "air"),
                ("ring_240", "pmp"),
                ("ring_180", "ldpe"),
                ("ring_120", "polystyrene"),
                ("ring_060", "acrylic"),
                ("ring_000", "delrin"),
                ("ring_300", "teflon"),
                ("ring_090", "air"),
            ]
        );
        for h in &cat.holes {
            let (a, r) = polar(h);
            let named: f64 = h.id["ring_".len()..].parse().unwrap();
            assert!(
                (a - named).abs() < 0.01 && (r - 58.7).abs() < 0.01,
                "{}",
                h.id
            );
            assert_eq!(h.radius_mm, 6.0);
        }
        // the old id is gone as a definition but stands for the family
        assert!(set.get(CATPHAN_FAMILY).is_err());
        assert!(set.is_family(CATPHAN_FAMILY));
        assert!(!set.is_family("catphan_504") && !set.is_family("nope"));
    }

    #[test]
    fn catphan_variants_follow_pylinac_angles() {
        let set = PhantomSet::builtin();
        let angle = |id: &str, m: &str| -> Vec<f64> {
            let p = set.get(id).unwrap();
            hole_at(p, m).iter().map(|h| polar(h).0.round()).collect()
        };
        // 600: the 504 turned by 180 deg, the water vial in the top hole (no second air hole)
        for (m, a) in [
            ("air", 90.0),
            ("pmp", 60.0),
            ("ldpe", 0.0),
            ("polystyrene", 300.0),
            ("acrylic", 240.0),
            ("delrin", 180.0),
            ("teflon", 120.0),
            ("water", 270.0),
        ] {
            assert_eq!(angle("catphan_600", m), [a], "600 {m}");
        }
        let c600 = set.get("catphan_600").unwrap();
        assert!(c600.material("water").unwrap().optional);
        assert_eq!(c600.expected_materials().len(), 8);
        // 604: the 504 plus the bones at -150 and +30; two air holes as on the 504
        assert_eq!(angle("catphan_604", "air"), [270.0, 90.0]);
        assert_eq!(angle("catphan_604", "bone_50"), [210.0]);
        assert_eq!(angle("catphan_604", "bone_20"), [30.0]);
        let c604 = set.get("catphan_604").unwrap();
        let c504 = set.get("catphan_504").unwrap();
        for h in &c504.holes {
            assert_eq!(c604.layout[&h.id], c504.layout[&h.id], "{}", h.id);
        }
        for (name, window) in [("bone_20", [211.0, 263.0]), ("bone_50", [667.0, 783.0])] {
            let m = c604.material(name).unwrap();
            assert_eq!(m.red, None, "{name}: no public RED");
            assert!(m.note.as_deref().unwrap().contains("certificate"));
            assert_eq!(m.hu_window, Some(window));
            assert_eq!(m.window_at(Some(120.0)), Some(window));
            assert_eq!(m.window_at(Some(100.0)), None);
            assert!(!m.optional);
        }
        // 700: 10 inserts on 58.7 mm, the optional vial at -45 deg on 28 mm
        let c700 = set.get("catphan_700").unwrap();
        for (m, a) in [
            ("air", 270.0),
            ("pmp", 300.0),
            ("lung_7112", 345.0),
            ("delrin", 15.0),
            ("polystyrene", 60.0),
            ("teflon", 90.0),
            ("bone_20", 120.0),
            ("ldpe", 165.0),
            ("bone_50", 195.0),
            ("acrylic", 240.0),
            ("water", 315.0),
        ] {
            assert_eq!(angle("catphan_700", m), [a], "700 {m}");
        }
        let vial = hole_at(c700, "water")[0];
        assert!((polar(vial).1 - 28.0).abs() < 0.01);
        assert!(c700.material("water").unwrap().optional);
        assert!(c700.source.as_deref().unwrap().contains("[code]"));
        // every Catphan: 200 mm body, 6 mm holes, windows at 120 kV, family catphan_ctp404
        let family = set.resolve(CATPHAN_FAMILY).unwrap();
        let ids: Vec<&str> = family.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["catphan_504", "catphan_600", "catphan_604", "catphan_700"]
        );
        for p in family {
            assert_eq!(p.outline, Outline::Circle { diameter_mm: 200.0 });
            assert!(p.holes.iter().all(|h| h.radius_mm == 6.0));
            for m in &p.materials {
                assert_eq!(m.window_kvp(), Some(120.0), "{} {}", p.id, m.name);
            }
        }
    }

    #[test]
    fn family_id_is_known_and_resolves() {
        let set = PhantomSet::builtin();
        let known = set.known_ids();
        for id in BUILTIN_IDS {
            assert!(known.iter().any(|k| k == id), "{id}");
            assert_eq!(set.resolve(id).unwrap().len(), 1);
        }
        assert!(known.iter().any(|k| k == CATPHAN_FAMILY));
        assert_eq!(known.len(), BUILTIN_IDS.len() + 1);
        let e = set.resolve("catphan").unwrap_err().to_string();
        assert!(
            e.contains(CATPHAN_FAMILY) && e.contains("gammex_467"),
            "{e}"
        );
        assert!(set.get("catphan_604").unwrap().answers_to(CATPHAN_FAMILY));
        assert!(!set.get("cirs062_head").unwrap().answers_to("cirs062"));
        // the ids whose stored baselines concern an id
        assert_eq!(
            set.baseline_ids("catphan_604"),
            ["catphan_604", CATPHAN_FAMILY]
        );
        assert_eq!(
            set.baseline_ids(CATPHAN_FAMILY),
            [
                CATPHAN_FAMILY,
                "catphan_504",
                "catphan_600",
                "catphan_604",
                "catphan_700"
            ]
        );
        assert_eq!(set.baseline_ids("cirs062_head"), ["cirs062_head"]);
        assert_eq!(set.baseline_ids("old_site_id"), ["old_site_id"]);
    }

    #[test]
    fn cirs_head_is_the_inner_disc_of_the_body() {
        let set = PhantomSet::builtin();
        let body = set.get("cirs062").unwrap();
        let head = set.get("cirs062_head").unwrap();
        assert_eq!(head.family, None);
        assert_eq!(head.outline, Outline::Circle { diameter_mm: 180.0 });
        assert_eq!(head.extent_z_mm, Some(50.0));
        assert_eq!(head.materials, body.materials);
        for h in &head.holes {
            let b = body.holes.iter().find(|b| b.id == h.id).unwrap();
            assert_eq!(h, b);
            assert_eq!(head.layout[&h.id], body.layout[&h.id]);
            assert!(h.id == "centre" || (polar(h).1 - 60.0).abs() < 0.01);
        }
        assert_eq!(head.expected_materials().len(), 9);
    }

    #[test]
    fn cirs_bands_separate_what_must_not_be_confused() {
        let set = PhantomSet::builtin();
        let cirs = set.get("cirs062").unwrap();
        let band = |m: &str| cirs.material(m).unwrap().plausible_band(Some(120.0));
        let inside = |b: [f64; 2], v: f64| b[0] <= v && v <= b[1];
        // an empty hole (air) is not lung
        assert!(!inside(band("lung_inhale"), -1000.0));
        assert!(!inside(band("lung_exhale"), -1000.0));
        // 800 mg/cc: +850..+1250 at 120 kV, but not a 1250 mg/cc rod (about +1450)
        let dense = band("dense_bone");
        assert!(inside(dense, 850.0) && inside(dense, 1250.0));
        assert!(!inside(dense, 1450.0));
        assert!(inside(band("dense_bone_1250"), 1450.0));
        // still apart at 100 kV, where bone reads higher and the bands widen
        let d100 = cirs
            .material("dense_bone")
            .unwrap()
            .plausible_band(Some(100.0));
        assert!(d100[1] < 1.1 * 1450.0);
        // soft tissues: a scanner ~80 HU off still reads inside the band
        for m in [
            "adipose",
            "breast",
            "water",
            "muscle",
            "liver",
            "trabecular_bone",
        ] {
            let e = cirs.material(m).unwrap().hu_expected;
            assert!(
                inside(band(m), e - 80.0) && inside(band(m), e + 80.0),
                "{m}"
            );
        }
        // an estimated RED stays out of the curve
        assert_eq!(cirs.material("dense_bone_1750").unwrap().red, None);
    }

    #[test]
    fn gammex_definitions() {
        let set = PhantomSet::builtin();
        let g = set.get("gammex_467").unwrap();
        assert_eq!(g.outline, Outline::Circle { diameter_mm: 330.0 });
        assert!(g.assigned_by_hu() && g.layout.is_empty());
        assert!(g.source.as_deref().unwrap().contains("[code]"));
        let on_step = |a: f64, start: f64| {
            let k = (a - start) / 45.0;
            (k - k.round()).abs() < 1e-4
        };
        for h in &g.holes {
            let (a, r) = polar(h);
            assert_eq!(h.radius_mm, 14.0);
            if h.ring.as_deref() == Some("inner") {
                assert!((r - 50.0).abs() < 0.01 && on_step(a, 0.0), "{}", h.id);
            } else {
                assert!((r - 108.24).abs() < 0.01, "{}", h.id);
                assert!(on_step(a, 22.5), "{}", h.id);
            }
            let named: f64 = h.id[6..].parse().unwrap();
            assert_eq!(named, (a + 1e-6).floor(), "{}", h.id);
        }
        let standard = [
            "ln300",
            "ln450",
            "ap6_adipose",
            "br12_breast",
            "solid_water",
            "brn_sr2_brain",
            "lv1_liver",
            "ib3_inner_bone",
            "b200_bone",
            "cb2_30",
            "cb2_50",
            "sb3_cortical_bone",
        ];
        // assigned by HU: every standard plug is expected; true water is optional
        assert_eq!(names(g.expected_materials()), standard);
        assert!(g.material("water").unwrap().optional);
        for p in ["gammex_1467_body", "gammex_1467_head"] {
            let d = set.get(p).unwrap();
            assert!(d.assigned_by_hu());
            assert!(d.name.contains("ESTIMATED") && d.source.as_deref().unwrap().contains("[est]"));
            assert!(d.holes.iter().all(|h| h.radius_mm == 14.3));
            assert!(d.material("ln350").is_some() && d.material("ln300").is_none());
            // the same names and REDs as the 467 for the plugs they share
            for m in &d.materials {
                if let Some(m467) = g.material(&m.name) {
                    assert_eq!((m.red, m.hu_expected), (m467.red, m467.hu_expected));
                }
            }
        }
        // the head holds 9 plugs of the site's choice: nothing is required without a layout
        assert!(set
            .get("gammex_1467_head")
            .unwrap()
            .expected_materials()
            .is_empty());
        // told apart from the CIRS by hole positions: no 1467 ring at the CIRS radii
        let cirs = set.get("cirs062").unwrap();
        for p in ["gammex_1467_body", "gammex_1467_head"] {
            for h in &set.get(p).unwrap().holes {
                if h.id == "centre" {
                    continue;
                }
                let nearest = cirs
                    .holes
                    .iter()
                    .map(|c| (c.x_mm - h.x_mm).hypot(c.y_mm - h.y_mm))
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest >= 5.0, "{p} {}", h.id);
            }
        }
        // tolerances: the script's where the name matches, else 40, lungs and bones 50
        for p in &set.phantoms {
            for m in &p.materials {
                let script = script_default_tolerance(&m.name);
                if script != 40.0 {
                    assert_eq!(m.tolerance_hu, script, "{} {}", p.id, m.name);
                }
            }
        }
        for m in &g.materials {
            let want =
                if m.name.starts_with("ln") || m.name.contains("bone") || m.name.starts_with("cb2")
                {
                    50.0
                } else if m.name == "water" {
                    30.0
                } else {
                    40.0
                };
            assert_eq!(m.tolerance_hu, want, "{}", m.name);
        }
    }

    #[test]
    fn site_layout_for_a_gammex_467_example_file() {
        let text = include_str!("../../config/examples/gammex_467_layout.json");
        let mut set = PhantomSet::builtin();
        set.apply_site_json(text).unwrap();
        let g = set.get("gammex_467").unwrap();
        assert_eq!(g.layout.len(), 16);
        assert!(!g.assigned_by_hu());
        // with a layout, exactly its materials are expected (the true water plug is not)
        let mut expected = names(g.expected_materials());
        expected.sort();
        assert_eq!(expected.len(), 12);
        assert!(!expected.contains(&"water".to_string()));
        // the same file through the loader used for --config / qa.phantom_config
        let mut f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        let loaded = PhantomSet::load(Some(f.path())).unwrap();
        assert_eq!(loaded.get("gammex_467").unwrap().layout, g.layout);
        // a hole or material that the definition does not have is named
        let e = PhantomSet::builtin()
            .apply_site_json(r#"{"phantoms": {"gammex_467": {"layout": {"inner_010": "ln300"}}}}"#)
            .unwrap_err();
        assert!(e.contains("inner_010"), "{e}");
        let e = PhantomSet::builtin()
            .apply_site_json(r#"{"phantoms": {"gammex_467": {"layout": {"inner_000": "ln350"}}}}"#)
            .unwrap_err();
        assert!(e.contains("ln350"), "{e}");
    }

    #[test]
    fn family_entry_in_a_site_file_applies_to_every_variant() {
        let mut set = PhantomSet::builtin();
        set.apply_site_json(
            r#"{"phantoms": {"catphan_ctp404": {"roi_radius_fraction": 0.8}},
                "tolerances_hu": {"teflon": 45}}"#,
        )
        .unwrap();
        for p in &set.phantoms {
            let want = if p.family.as_deref() == Some(CATPHAN_FAMILY) {
                0.8
            } else {
                0.65
            };
            assert_eq!(p.roi_radius_fraction, want, "{}", p.id);
            if let Some(t) = p.material("teflon") {
                assert_eq!(t.tolerance_hu, 45.0);
            }
        }
        // an entry for one variant leaves the others alone
        set.apply_site_json(r#"{"phantoms": {"catphan_604": {"roi_radius_fraction": 0.7}}}"#)
            .unwrap();
        assert_eq!(set.get("catphan_604").unwrap().roi_radius_fraction, 0.7);
        assert_eq!(set.get("catphan_600").unwrap().roi_radius_fraction, 0.8);
        // a layout for the family must fit every variant: the 504 has no ring_030
        let e = set
            .apply_site_json(r#"{"phantoms": {"catphan_ctp404": {"layout": {"ring_030": "air"}}}}"#)
            .unwrap_err();
        assert!(e.contains("ring_030"), "{e}");
        assert_eq!(set.get("catphan_504").unwrap().layout.len(), 8);
    }

    #[test]
    fn validation_of_layouts_families_and_holes() {
        let set = PhantomSet::builtin();
        // a template phantom may have an empty layout (assigned by HU), not zero holes
        let mut d = set.get("cirs062").unwrap().clone();
        d.layout.clear();
        d.validate().unwrap();
        assert!(d.assigned_by_hu());
        assert_eq!(d.expected_materials().len(), 9);
        d.holes.clear();
        assert!(d
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs holes"));
        // a hole outside the outline
        let mut d = set.get("cirs062_head").unwrap().clone();
        d.holes[1].y_mm = -80.0;
        let e = d.validate().unwrap_err().to_string();
        assert!(e.contains("inner_270") && e.contains("outline"), "{e}");
        // the ellipse's flat-ish bottom: the CIRS outer hole at 110 mm fits, at 125 it would not
        let el = Outline::Ellipse {
            width_mm: 330.0,
            height_mm: 270.0,
        };
        assert!(el.contains_disc(0.0, 110.0, 15.0));
        assert!(!el.contains_disc(0.0, 125.0, 15.0));
        assert!(el.contains_disc(150.0, 0.0, 15.0) && !el.contains_disc(155.0, 0.0, 15.0));
        // a site phantom whose family is the id of a definition
        let mut site = set.get("easycube").unwrap().clone();
        site.id = "site_cube".into();
        site.family = Some("cirs062".into());
        let doc = serde_json::json!({ "phantoms": { "site_cube": site } });
        let e = PhantomSet::builtin()
            .apply_site_json(&doc.to_string())
            .unwrap_err();
        assert!(e.contains("family") && e.contains("cirs062"), "{e}");
        // a site variant joining the Catphan family is resolved with the others, last
        let mut v = set.get("catphan_504").unwrap().clone();
        v.id = "catphan_site".into();
        let doc = serde_json::json!({ "phantoms": { "catphan_site": v } });
        let mut s2 = PhantomSet::builtin();
        s2.apply_site_json(&doc.to_string()).unwrap();
        let fam = s2.resolve(CATPHAN_FAMILY).unwrap();
        assert_eq!(fam.len(), 5);
        assert_eq!(fam[0].id, "catphan_504");
        assert_eq!(fam[4].id, "catphan_site");
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
    fn certificate_reds_in_the_script_form_keep_the_rest() {
        // a 604 site gives its certificate's REDs, bones included
        let mut set = PhantomSet::builtin();
        set.apply_site_json(
            r#"{"phantoms": {"catphan_604": {"inserts": [
                {"name": "air", "red": 0.001}, {"name": "pmp", "red": 0.853},
                {"name": "ldpe", "red": 0.945}, {"name": "polystyrene", "red": 0.998},
                {"name": "acrylic", "red": 1.147}, {"name": "bone_20", "red": 1.11},
                {"name": "delrin", "red": 1.363}, {"name": "bone_50", "red": 1.35},
                {"name": "teflon", "red": 1.868}]}}}"#,
        )
        .unwrap();
        let c = set.get("catphan_604").unwrap();
        let b = c.material("bone_20").unwrap();
        assert_eq!(b.red, Some(1.11));
        assert_eq!((b.hu_expected, b.hu_window), (237.0, Some([211.0, 263.0])));
        assert_eq!(c.layout.len(), 10);
        // the 600's vial stays optional when listed
        set.apply_site_json(
            r#"{"phantoms": {"catphan_600": {"inserts": [
                {"name": "air", "red": 0.001}, {"name": "water", "red": 1.0}]}}}"#,
        )
        .unwrap();
        assert!(
            set.get("catphan_600")
                .unwrap()
                .material("water")
                .unwrap()
                .optional
        );
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
