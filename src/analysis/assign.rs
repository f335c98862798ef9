//! Which material is in which hole.
//!
//! Three ways, by what the definition knows:
//! - **layout** (CIRS, Catphan, a Gammex with the site's layout): the layout holds unless the
//!   measured HUs contradict it clearly (a monotone scanner drift never does); then the
//!   materials are re-assigned among the holes by expected HU, within their plausibility bands;
//! - **by HU** (a template phantom without a layout, e.g. Gammex plugs placed by the user): each
//!   hole gets the material whose band holds its HU, the nearest when several do;
//! - **detection** (Easy Cube): detected rods get one material each, by expected HU.
//!
//! In every mode a hole whose HU lies outside the plausibility band of every material of the
//! definition (an empty hole, a site's own 1250 mg/cc rod) is left **unassigned**: reported, never
//! pooled into a material.

use super::AssignmentMethod;
use crate::phantom::{Material, PhantomDef};
use pathfinding::prelude::{kuhn_munkres_min, Matrix};

/// What assignment needs of one measured hole.
#[derive(Debug, Clone)]
pub struct HoleHu {
    pub hole: String,
    pub hu: f64,
    /// The layout's material for this hole, if any.
    pub layout: Option<String>,
}

/// The outcome: per hole (same order as given), the index of its material in `def.materials`,
/// or `None` (unassigned; `why` says why).
#[derive(Debug, Clone)]
pub struct Assignment {
    pub material: Vec<Option<usize>>,
    pub why: Vec<Option<String>>,
    pub method: AssignmentMethod,
    pub warnings: Vec<String>,
}

/// How materials are given to the holes of `def`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Layout,
    ByHu,
    Detection,
}

impl Mode {
    pub fn of(def: &PhantomDef) -> Mode {
        match def.localisation {
            crate::phantom::Localisation::Detection => Mode::Detection,
            crate::phantom::Localisation::Template if def.layout.is_empty() => Mode::ByHu,
            crate::phantom::Localisation::Template => Mode::Layout,
        }
    }
}

/// A cost above every in-band cost: a slot outside the band is never taken.
const OUT_OF_BAND: i64 = 1_000_000_000;
/// Cost of leaving a hole unassigned: worse than any in-band slot (in-band costs are ≤ 1 in
/// units of the band's half-width squared, scaled by 10⁴).
const UNASSIGNED: i64 = 30_000;
/// A small preference for the layout's own material among equally good choices (≈ 4 HU² at a
/// soft tissue's ±100 HU band: only a near tie keeps the layout).
const LAYOUT_BONUS: i64 = 20;

/// Squared distance of `hu` to the material's expected HU in units of the band's half-width on
/// that side, ×10⁴; `None` outside the band.
fn band_cost(m: &Material, hu: f64, kvp: Option<f64>) -> Option<i64> {
    let [lo, hi] = m.plausible_band(kvp);
    if !(hu.is_finite() && hu >= lo && hu <= hi) {
        return None;
    }
    let e = m.hu_expected;
    let half = if hu >= e { hi - e } else { e - lo };
    let d = if half > 0.0 { (hu - e) / half } else { 0.0 };
    Some((d * d * 1e4).round() as i64)
}

/// Assign materials to the measured holes (`None` = the hole could not be measured).
pub fn assign(def: &PhantomDef, holes: &[Option<HoleHu>], kvp: Option<f64>) -> Assignment {
    let n = holes.len();
    let mut out = Assignment {
        material: vec![None; n],
        why: vec![None; n],
        method: match Mode::of(def) {
            Mode::Layout => AssignmentMethod::Layout,
            Mode::ByHu => AssignmentMethod::ByHu,
            Mode::Detection => AssignmentMethod::Detection,
        },
        warnings: Vec::new(),
    };
    // 1. Holes that fit no material of the definition at all.
    let mut open: Vec<Open> = Vec::new();
    for (i, h) in holes.iter().enumerate() {
        let Some(h) = h else { continue };
        if def
            .materials
            .iter()
            .any(|m| band_cost(m, h.hu, kvp).is_some())
        {
            open.push(Open { i, h });
        } else {
            out.why[i] = Some(format!(
                "reads {:.0} HU, which fits no material of the phantom definition (an empty hole? a different insert, e.g. another bone density?)",
                h.hu
            ));
        }
    }
    match Mode::of(def) {
        Mode::Layout => assign_layout(def, &open, kvp, &mut out),
        Mode::ByHu => {
            for o in &open {
                out.material[o.i] = nearest_in_band(def, o.h.hu, kvp);
            }
            let close = close_pairs(def, &out);
            if !close.is_empty() {
                out.warnings.push(format!(
                    "no layout for {}: plugs were assigned by HU, and {} read within 40 HU of each other, so a drifting scanner can swap them; give the layout (hole → material) in the site phantom file",
                    def.id,
                    close.join(", ")
                ));
            }
        }
        Mode::Detection => {
            // One slot per material, then second copies at a penalty.
            let mats: Vec<usize> = (0..def.materials.len())
                .filter(|j| !def.materials[*j].optional)
                .collect();
            let slots: Vec<(usize, i64)> = mats
                .iter()
                .map(|&j| (j, 0))
                .chain(mats.iter().map(|&j| (j, 5_000)))
                .collect();
            hungarian(def, &open, &slots, kvp, |_, _| 0, &mut out);
        }
    }
    for (i, m) in out.material.iter().enumerate() {
        if m.is_none() && out.why[i].is_none() && holes[i].is_some() {
            out.why[i] = Some(
                "fits a material of the definition, but every hole of that material is taken"
                    .into(),
            );
        }
    }
    out
}

/// A measured hole still to be assigned: its index among all holes, and its values.
#[derive(Clone, Copy)]
struct Open<'a> {
    i: usize,
    h: &'a HoleHu,
}

fn assign_layout(def: &PhantomDef, open: &[Open], kvp: Option<f64>, out: &mut Assignment) {
    let idx = |name: &str| def.materials.iter().position(|m| m.name == name);
    // Holes with a layout material (a hole the layout leaves empty is assigned by HU below).
    let with_layout: Vec<(Open, usize)> = open
        .iter()
        .filter_map(|o| Some((*o, idx(o.h.layout.as_deref()?)?)))
        .collect();
    let consistent = with_layout
        .iter()
        .all(|(o, j)| band_cost(&def.materials[*j], o.h.hu, kvp).is_some());
    // A monotone drift keeps the layout the optimal (sorted) assignment, so only a real
    // rearrangement makes another assignment much cheaper (squared HU distance, no bands).
    let contradicted = !consistent && {
        let vals: Vec<f64> = with_layout.iter().map(|(o, _)| o.h.hu).collect();
        let mats: Vec<&Material> = with_layout
            .iter()
            .map(|(_, j)| &def.materials[*j])
            .collect();
        let layout_cost: f64 = vals
            .iter()
            .zip(&mats)
            .map(|(h, m)| (h - m.hu_expected).powi(2))
            .sum();
        let opt_cost = optimal_sq_cost(&vals, &mats);
        layout_cost - opt_cost > 200.0 && opt_cost < 0.5 * layout_cost
    };
    // Materials of the definition the layout does not use (optional ones such as a CIRS
    // dense_bone_1250): a hole that reads one of them holds it, not its layout material.
    let unused: Vec<usize> = (0..def.materials.len())
        .filter(|j| !def.layout.values().any(|v| *v == def.materials[*j].name))
        .collect();
    if !contradicted {
        for (o, j) in &with_layout {
            let fits_layout = band_cost(&def.materials[*j], o.h.hu, kvp).is_some();
            // An optional insert that is not there (the Catphan 600's vial, empty): the hole
            // is reported, not judged as that material nor pooled into another.
            if !fits_layout && def.materials[*j].optional {
                out.why[o.i] = Some(format!(
                    "the layout's optional {} is not there (an empty vial or hole?)",
                    def.materials[*j].name
                ));
                continue;
            }
            let other = unused
                .iter()
                .filter_map(|&k| band_cost(&def.materials[k], o.h.hu, kvp).map(|c| (k, c)))
                .min_by_key(|(_, c)| *c)
                .map(|(k, _)| k);
            match other {
                Some(k) if !fits_layout => {
                    out.material[o.i] = Some(k);
                    out.warnings.push(format!(
                        "hole {} reads {:.0} HU: it holds {}, not the layout's {}; update the layout in the phantom file if this is your phantom's arrangement",
                        o.h.hole, o.h.hu, def.materials[k].name, def.materials[*j].name
                    ));
                }
                _ => out.material[o.i] = Some(*j),
            }
        }
    } else {
        let slots: Vec<(usize, i64)> = with_layout
            .iter()
            .map(|(_, j)| (*j, 0))
            .chain(unused.iter().map(|&k| (k, 2_000)))
            .collect();
        let ids: Vec<Open> = with_layout.iter().map(|(o, _)| *o).collect();
        let layout_of = |i: usize| with_layout.iter().find(|(o, _)| o.i == i).map(|(_, j)| *j);
        hungarian(
            def,
            &ids,
            &slots,
            kvp,
            |i, j| {
                if layout_of(i) == Some(j) {
                    -LAYOUT_BONUS
                } else {
                    0
                }
            },
            out,
        );
        let mut changes = Vec::new();
        for (o, j) in &with_layout {
            if out.material[o.i] != Some(*j) {
                changes.push(format!(
                    "{}: layout {} → {} ({:.0} HU)",
                    o.h.hole,
                    def.materials[*j].name,
                    out.material[o.i]
                        .map(|k| def.materials[k].name.as_str())
                        .unwrap_or("unassigned"),
                    o.h.hu
                ));
            }
        }
        if !changes.is_empty() {
            out.method = AssignmentMethod::Reassigned;
            out.warnings.push(format!(
                "the measured HUs contradict the phantom layout: materials re-assigned by expected HU ({}); check the insert positions and update the layout in the phantom file",
                changes.join(", ")
            ));
        }
    }
    // Holes the layout leaves empty: by HU.
    for o in open {
        if o.h.layout.as_deref().and_then(idx).is_none() {
            out.material[o.i] = nearest_in_band(def, o.h.hu, kvp);
        }
    }
}

/// Optimal assignment of the holes `ids` to `slots` (material index, extra cost), each slot at
/// most once; holes may stay unassigned (at a cost above every in-band slot). `bonus(hole index,
/// material index)` is added to a pair's cost.
fn hungarian(
    def: &PhantomDef,
    ids: &[Open],
    slots: &[(usize, i64)],
    kvp: Option<f64>,
    bonus: impl Fn(usize, usize) -> i64,
    out: &mut Assignment,
) {
    let nv = ids.len();
    if nv == 0 {
        return;
    }
    // Columns: the slots, then one "unassigned" column per hole.
    let nc = slots.len() + nv;
    let w = Matrix::from_fn(nv, nc, |(r, c)| {
        let o = ids[r];
        if c < slots.len() {
            let (j, extra) = slots[c];
            match band_cost(&def.materials[j], o.h.hu, kvp) {
                Some(cost) => cost + extra + bonus(o.i, j),
                None => OUT_OF_BAND,
            }
        } else {
            UNASSIGNED
        }
    });
    let (_, a) = kuhn_munkres_min(&w);
    for (r, c) in a.into_iter().enumerate() {
        out.material[ids[r].i] = (c < slots.len() && w[(r, c)] < OUT_OF_BAND).then(|| slots[c].0);
    }
}

/// How well the measured holes agree with the definition: the mean over all holes of
/// 1 − (distance to the assigned material's expected HU in band half-widths)², 0 for a hole that
/// is unmeasured, unassigned or outside its material's band; and the number of holes within the
/// band of their material. Identification multiplies its score by the first and breaks ties
/// between variants of one family with the second.
pub fn agreement(def: &PhantomDef, holes: &[Option<HoleHu>], kvp: Option<f64>) -> (f64, usize) {
    if holes.is_empty() {
        return (1.0, 0);
    }
    let a = assign(def, holes, kvp);
    let mut sum = 0.0;
    let mut matched = 0;
    for (h, m) in holes.iter().zip(&a.material) {
        let (Some(h), Some(j)) = (h, m) else { continue };
        if let Some(c) = band_cost(&def.materials[*j], h.hu, kvp) {
            sum += 1.0 - (c as f64 / 1e4).min(1.0);
            matched += 1;
        }
    }
    (sum / holes.len() as f64, matched)
}

/// Sum of squared HU distances of the optimal assignment of `vals` to `mats` (no bands).
fn optimal_sq_cost(vals: &[f64], mats: &[&Material]) -> f64 {
    if vals.is_empty() || mats.len() < vals.len() {
        return 0.0;
    }
    let w = Matrix::from_fn(vals.len(), mats.len(), |(v, m)| {
        let d = vals[v] - mats[m].hu_expected;
        if d.is_finite() {
            (d * d).round().min(1e15) as i64
        } else {
            1_000_000_000_000
        }
    });
    let (_, a) = kuhn_munkres_min(&w);
    a.iter()
        .enumerate()
        .map(|(v, &m)| (vals[v] - mats[m].hu_expected).powi(2))
        .sum()
}

/// The material whose band holds `hu`, the nearest (in band units) when several do.
fn nearest_in_band(def: &PhantomDef, hu: f64, kvp: Option<f64>) -> Option<usize> {
    (0..def.materials.len())
        .filter_map(|j| band_cost(&def.materials[j], hu, kvp).map(|c| (j, c)))
        .min_by_key(|(_, c)| *c)
        .map(|(j, _)| j)
}

/// Pairs of materials assigned by HU whose expected HUs are within 40 HU of each other.
fn close_pairs(def: &PhantomDef, a: &Assignment) -> Vec<String> {
    let mut used: Vec<usize> = a.material.iter().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    let mut out = Vec::new();
    for (k, &x) in used.iter().enumerate() {
        for &y in &used[k + 1..] {
            let (mx, my) = (&def.materials[x], &def.materials[y]);
            if (mx.hu_expected - my.hu_expected).abs() < 40.0 {
                out.push(format!("{}/{}", mx.name, my.name));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::PhantomSet;

    fn holes(def: &PhantomDef, hus: &[(&str, f64)]) -> Vec<Option<HoleHu>> {
        hus.iter()
            .map(|(hole, hu)| {
                Some(HoleHu {
                    hole: hole.to_string(),
                    hu: *hu,
                    layout: def.layout.get(*hole).cloned(),
                })
            })
            .collect()
    }

    fn names(def: &PhantomDef, a: &Assignment) -> Vec<Option<String>> {
        a.material
            .iter()
            .map(|m| m.map(|j| def.materials[j].name.clone()))
            .collect()
    }

    fn cirs() -> PhantomDef {
        PhantomSet::builtin().get("cirs062").unwrap().clone()
    }

    /// The CIRS layout read at the expected HU plus `drift`, except the given holes.
    fn cirs_reading(def: &PhantomDef, drift: f64, except: &[(&str, f64)]) -> Vec<(String, f64)> {
        def.holes
            .iter()
            .map(|h| {
                let hu = except
                    .iter()
                    .find(|(id, _)| *id == h.id)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| {
                        def.material(&def.layout[&h.id]).unwrap().hu_expected + drift
                    });
                (h.id.clone(), hu)
            })
            .collect()
    }

    fn run(def: &PhantomDef, r: &[(String, f64)]) -> Assignment {
        let v: Vec<(&str, f64)> = r.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        assign(def, &holes(def, &v), Some(120.0))
    }

    #[test]
    fn layout_holds_under_drift() {
        let def = cirs();
        let a = run(&def, &cirs_reading(&def, 25.0, &[]));
        assert_eq!(a.method, AssignmentMethod::Layout);
        let got = names(&def, &a);
        for (h, g) in def.holes.iter().zip(&got) {
            assert_eq!(g.as_deref(), Some(def.layout[&h.id].as_str()));
        }
    }

    #[test]
    fn empty_hole_and_foreign_rod_are_left_unassigned() {
        let def = cirs();
        let lung_ex = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "lung_exhale")
            .unwrap()
            .id
            .clone();
        let bone = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "dense_bone")
            .unwrap()
            .id
            .clone();
        let r = cirs_reading(&def, 0.0, &[(&lung_ex, -1000.0), (&bone, 1450.0)]);
        // The built-in CIRS knows the optional 1250 mg/cc rod: that hole holds it.
        let a = run(&def, &r);
        let k = r.iter().position(|(id, _)| *id == bone).unwrap();
        assert_eq!(
            a.material[k].map(|j| def.materials[j].name.as_str()),
            Some("dense_bone_1250"),
            "{:?}",
            a.warnings
        );
        // A definition without it leaves that hole unassigned, like the empty one.
        let mut def = def.clone();
        def.materials.retain(|m| !m.name.starts_with("dense_bone_"));
        let a = run(&def, &r);
        assert_eq!(a.method, AssignmentMethod::Layout, "{:?}", a.warnings);
        for (k, (id, _)) in r.iter().enumerate() {
            if *id == lung_ex || *id == bone {
                assert!(a.material[k].is_none(), "{id} must stay unassigned");
                assert!(a.why[k].as_deref().unwrap().contains("fits no material"));
            } else {
                assert_eq!(
                    a.material[k].map(|j| def.materials[j].name.as_str()),
                    Some(def.layout[id].as_str())
                );
            }
        }
    }

    #[test]
    fn swapped_inserts_are_reassigned() {
        let def = cirs();
        // Swap the HUs of a lung_inhale hole and a trabecular_bone hole.
        let li = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "lung_inhale")
            .unwrap()
            .id
            .clone();
        let tb = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "trabecular_bone")
            .unwrap()
            .id
            .clone();
        let hu_li = def.material("lung_inhale").unwrap().hu_expected;
        let hu_tb = def.material("trabecular_bone").unwrap().hu_expected;
        let r = cirs_reading(&def, 0.0, &[(&li, hu_tb), (&tb, hu_li)]);
        let a = run(&def, &r);
        assert_eq!(a.method, AssignmentMethod::Reassigned);
        let k = r.iter().position(|(id, _)| *id == li).unwrap();
        assert_eq!(
            a.material[k].map(|j| def.materials[j].name.as_str()),
            Some("trabecular_bone")
        );
    }

    #[test]
    fn water_far_off_keeps_the_layout_and_is_left_to_the_checks() {
        // +60 HU on every material (a badly calibrated scanner): the layout holds; the
        // plausibility check then judges each material.
        let def = cirs();
        let a = run(&def, &cirs_reading(&def, 60.0, &[]));
        assert_eq!(a.method, AssignmentMethod::Layout);
        assert!(a.material.iter().all(|m| m.is_some()));
    }

    #[test]
    fn an_empty_optional_vial_is_reported_not_judged() {
        let set = PhantomSet::builtin();
        let def = set.get("catphan_600").unwrap().clone();
        let vial = def
            .holes
            .iter()
            .find(|h| def.layout[&h.id] == "water")
            .unwrap()
            .id
            .clone();
        let r: Vec<(String, f64)> = def
            .holes
            .iter()
            .map(|h| {
                let hu = if h.id == vial {
                    -1000.0
                } else {
                    def.material(&def.layout[&h.id]).unwrap().hu_expected
                };
                (h.id.clone(), hu)
            })
            .collect();
        let a = run(&def, &r);
        let k = r.iter().position(|(id, _)| *id == vial).unwrap();
        assert!(a.material[k].is_none());
        assert!(a.why[k].as_deref().unwrap().contains("optional water"));
        assert_eq!(
            a.material.iter().filter(|m| m.is_some()).count(),
            def.holes.len() - 1
        );
    }

    #[test]
    fn a_layout_turned_by_180_degrees_is_reassigned() {
        let def = cirs();
        // Each hole reads the material the layout puts in the hole opposite it.
        let opposite = |id: &str| -> String {
            let h = def.holes.iter().find(|h| h.id == id).unwrap();
            def.holes
                .iter()
                .min_by(|a, b| {
                    let da = (a.x_mm + h.x_mm).hypot(a.y_mm + h.y_mm);
                    let db = (b.x_mm + h.x_mm).hypot(b.y_mm + h.y_mm);
                    da.total_cmp(&db)
                })
                .unwrap()
                .id
                .clone()
        };
        let r: Vec<(String, f64)> = def
            .holes
            .iter()
            .map(|h| {
                let m = &def.layout[&opposite(&h.id)];
                (h.id.clone(), def.material(m).unwrap().hu_expected)
            })
            .collect();
        let a = run(&def, &r);
        assert_eq!(a.method, AssignmentMethod::Reassigned, "{:?}", a.warnings);
        for (k, (id, _)) in r.iter().enumerate() {
            let want = &def.layout[&opposite(id)];
            assert_eq!(
                a.material[k].map(|j| def.materials[j].name.as_str()),
                Some(want.as_str()),
                "{id}"
            );
        }
    }
}
