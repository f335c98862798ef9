//! Stage 1 on the overview (all slices, ~2 mm pixels): body per slice, phantom identification
//! with a confidence, the z-run that holds the inserts (found by content, not by the largest
//! outline), the slab of slices to measure, and a coarse pose.

use super::assign::{self, HoleHu};
use super::body::{fit_outline, segment, Body};
use super::image::disc_median;
use super::rods;
use super::template::{
    best_rotation, centroid, contrast_at, evidence, hole_contrasts, hole_xy, refine_pose, wrap_deg,
    VISIBLE_HU,
};
use super::{AnalysisError, AnalysisOptions, Candidate, Detection, Geo, HuStack, Plan, Pose};
use crate::phantom::{Localisation, Outline, PhantomDef};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// Smallest body cross-section considered an object at all, mm².
const MIN_BODY_MM2: f64 = 2000.0;
/// A slice "shows the inserts" at this evidence (fraction of expected holes visible).
const EVIDENCE_MIN: f64 = 0.6;
/// Minimum candidate score for an automatic identification.
const SCORE_MIN: f64 = 0.4;
/// Weight of a detection phantom's score (see `evaluate`).
const DETECTION_WEIGHT: f64 = 0.85;
/// A rival scoring at least this fraction of the best makes the identification "uncertain".
const UNCERTAIN_RATIO: f64 = 0.8;
/// Two candidates closer than this ratio cannot be told apart: no automatic choice.
const TIE_RATIO: f64 = 0.97;

struct SliceBody {
    body: Option<Body>,
    valid: Array2<bool>,
}

/// Per-candidate evaluation.
struct Eval {
    score: f64,
    reason: String,
    /// Run of overview slice positions (indices into the overview) showing the inserts.
    run: Option<(usize, usize)>,
    pose: Pose,
    touches_edge: bool,
    /// Holes whose HU lies within the band of the material assignment gives them (template
    /// phantoms): breaks ties between variants of one family.
    matched: usize,
}

pub fn plan(
    ov: &HuStack,
    phantoms: &[PhantomDef],
    opts: &AnalysisOptions,
) -> Result<Plan, AnalysisError> {
    let n = ov.n_slices();
    if n == 0 || ov.rows() < 16 || ov.cols() < 16 {
        return Err(AnalysisError::TooSmall(format!(
            "{} slices of {}×{} pixels in the overview",
            n,
            ov.rows(),
            ov.cols()
        )));
    }
    let geo = Geo::of(ov);
    let (slices, areas) = bodies(ov, &geo)?;
    let candidates = candidates(phantoms, opts)?;
    let evals = evaluate_candidates(ov, &geo, &slices, &areas, &candidates, opts.kvp);
    let order = ranking(&evals);
    let chosen = choose(&evals, &order, candidates.len(), opts)?;
    let mut warnings = chosen.warnings;
    let (lo, hi) = chosen.run;
    let slab = slab(ov, lo, hi, opts.slab_mm, &mut warnings);
    Ok(Plan {
        phantom_id: chosen.def.id.clone(),
        detection: chosen.detection,
        confidence: round3(chosen.confidence),
        candidates: chosen.report,
        pose: chosen.best.pose,
        centre_index: ov.series_index[slab.centre],
        slab_indices: slab.indices.iter().map(|i| ov.series_index[*i]).collect(),
        insert_z_range_mm: (slab.z_lo, slab.z_hi),
        warnings,
    })
}

/// The body of every overview slice (objects smaller than [`MIN_BODY_MM2`] are none) and its
/// area; an error when no slice holds an object of phantom size.
fn bodies(ov: &HuStack, geo: &Geo) -> Result<(Vec<SliceBody>, Vec<f64>), AnalysisError> {
    let n = ov.n_slices();
    let slices: Vec<SliceBody> = (0..n)
        .into_par_iter()
        .map(|k| {
            let s = ov.hu.index_axis(Axis(0), k);
            SliceBody {
                body: segment(s, geo).filter(|b| b.area_mm2 >= MIN_BODY_MM2),
                valid: s.mapv(|v| v.is_finite()),
            }
        })
        .collect();
    let areas: Vec<f64> = slices
        .iter()
        .map(|s| s.body.as_ref().map_or(0.0, |b| b.area_mm2))
        .collect();
    let max_area = areas.iter().cloned().fold(0.0, f64::max);
    if max_area <= 0.0 {
        return Err(AnalysisError::NoPhantom(
            "no object of phantom size in any slice (only air or noise?)".into(),
        ));
    }
    Ok((slices, areas))
}

/// The definitions to choose from: all, or the one a forced id names, or the variants of the
/// family it names (the variant is told from the image).
fn candidates<'a>(
    phantoms: &'a [PhantomDef],
    opts: &AnalysisOptions,
) -> Result<Vec<&'a PhantomDef>, AnalysisError> {
    Ok(match &opts.phantom {
        Some(id) => {
            let exact: Vec<&PhantomDef> = phantoms.iter().filter(|p| &p.id == id).collect();
            let chosen = if exact.is_empty() {
                phantoms
                    .iter()
                    .filter(|p| p.family.as_deref() == Some(id.as_str()))
                    .collect()
            } else {
                exact
            };
            if chosen.is_empty() {
                return Err(AnalysisError::Definition(format!(
                    "phantom '{id}' is not defined"
                )));
            }
            chosen
        }
        None => phantoms.iter().collect(),
    })
}

/// Every candidate's evaluation. Outlines first (cheap), then the inserts in order of outline
/// fit: a candidate whose outline score (an upper bound of its whole score) is below what would
/// even make the choice uncertain is not evaluated further.
fn evaluate_candidates<'a>(
    ov: &HuStack,
    geo: &Geo,
    slices: &[SliceBody],
    areas: &[f64],
    candidates: &[&'a PhantomDef],
    kvp: Option<f64>,
) -> Vec<(&'a PhantomDef, Eval)> {
    let mut staged: Vec<(&PhantomDef, Result<OutlineFit, Eval>)> = candidates
        .iter()
        .map(|d| (*d, fit_candidate_outline(geo, slices, areas, d)))
        .collect();
    staged.sort_by(|a, b| {
        let s = |x: &Result<OutlineFit, Eval>| x.as_ref().map_or(-1.0, |f| f.s_outline);
        s(&b.1).total_cmp(&s(&a.1))
    });
    let mut best_score: f64 = 0.0;
    let mut evals: Vec<(&PhantomDef, Eval)> = Vec::with_capacity(staged.len());
    for (d, fit) in staged {
        let e = match fit {
            Err(e) => e,
            Ok(f) if f.s_outline < SCORE_MIN.max(UNCERTAIN_RATIO * best_score) => no_match(
                format!(
                    "outline overlap {:.2}: cannot reach the best candidate's score {:.2}, not evaluated further",
                    f.iou, best_score
                ),
            ),
            Ok(f) => evaluate(ov, geo, slices, d, f, kvp),
        };
        best_score = best_score.max(e.score);
        evals.push((d, e));
    }
    evals
}

/// Indices into `evals`, best score first. Variants of one family that fit equally well (a
/// Catphan 504 template also fits the eight holes of a 604): the one whose holes explain more of
/// the image comes first.
fn ranking(evals: &[(&PhantomDef, Eval)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..evals.len()).collect();
    order.sort_by(|a, b| evals[*b].1.score.total_cmp(&evals[*a].1.score));
    if let Some(&top) = order.first() {
        let fam = evals[top].0.family.clone();
        let tied = |i: usize| {
            fam.is_some()
                && evals[i].0.family == fam
                && evals[i].1.score >= TIE_RATIO * evals[top].1.score
        };
        if let Some(pos) = (0..order.len())
            .filter(|&p| tied(order[p]))
            .max_by_key(|&p| (evals[order[p]].1.matched, std::cmp::Reverse(p)))
        {
            let winner = order.remove(pos);
            order.insert(0, winner);
        }
    }
    order
}

/// The phantom identified, with what the plan reports about the choice.
struct Chosen<'a> {
    def: &'a PhantomDef,
    best: &'a Eval,
    /// The winner's run of overview slices showing the inserts.
    run: (usize, usize),
    detection: Detection,
    confidence: f64,
    report: Vec<Candidate>,
    warnings: Vec<String>,
}

/// The first of `order`, when it is a match and no rival ties with it (a tie refuses, unless a
/// forced id names one definition); its confidence and the warnings about the choice.
fn choose<'a>(
    evals: &'a [(&'a PhantomDef, Eval)],
    order: &[usize],
    n_candidates: usize,
    opts: &AnalysisOptions,
) -> Result<Chosen<'a>, AnalysisError> {
    let cand_report: Vec<Candidate> = order
        .iter()
        .map(|i| Candidate {
            id: evals[*i].0.id.clone(),
            score: round3(evals[*i].1.score),
            reason: evals[*i].1.reason.clone(),
        })
        .collect();
    let Some((def, best)) = order.first().map(|&i| &evals[i]) else {
        return Err(AnalysisError::Definition(
            "no phantom definition to choose from".into(),
        ));
    };
    let detection = if opts.phantom.is_some() {
        Detection::Forced
    } else {
        Detection::Auto
    };
    let reasons = cand_report
        .iter()
        .map(|c| format!("{}: {}", c.id, c.reason))
        .collect::<Vec<_>>()
        .join("; ");
    let Some(run) = best.run.filter(|_| best.score >= SCORE_MIN) else {
        return Err(match detection {
            Detection::Auto => AnalysisError::NoPhantom(format!(
                "the object in the images matches none of the phantoms ({reasons}); a uniform cylinder, a patient or an unknown phantom cannot be analysed"
            )),
            Detection::Forced => AnalysisError::NotUsable {
                id: def.id.clone(),
                why: format!("{reasons}; check --phantom and the series"),
            },
        });
    };
    let mut warnings = Vec::new();
    // The strongest rival: a variant of the same family whose holes explain less of the image
    // is no rival (the winner's extra holes hold what its definition says).
    let rival = order[1..].iter().copied().find(|&i| {
        let (d, e) = &evals[i];
        !(d.family.is_some() && d.family == def.family && e.matched < best.matched)
    });
    let second = rival.map(|i| evals[i].1.score).unwrap_or(0.0);
    if let Some(r) = rival.filter(|_| second >= TIE_RATIO * best.score) {
        let other = &evals[r].0.id;
        match detection {
            Detection::Auto => {
                return Err(AnalysisError::NoPhantom(format!(
                    "the images fit {} and {other} equally well ({reasons}); use --phantom to say which phantom was scanned",
                    def.id
                )))
            }
            Detection::Forced if n_candidates > 1 => {
                return Err(AnalysisError::NotUsable {
                    id: opts.phantom.clone().unwrap_or_default(),
                    why: format!(
                        "the variants {} and {other} fit equally well ({reasons}); use --phantom with the variant",
                        def.id
                    ),
                })
            }
            Detection::Forced => {}
        }
    }
    let confidence = if second > 0.0 {
        best.score * (1.0 - 0.5 * (second / best.score).min(1.0))
    } else {
        best.score
    }
    .clamp(0.0, 1.0);
    if let Some(r) =
        rival.filter(|_| detection == Detection::Auto && second >= UNCERTAIN_RATIO * best.score)
    {
        warnings.push(format!(
            "phantom identification is uncertain: {} scored {:.2}, {} scored {:.2}; use --phantom to force it",
            def.id, best.score, evals[r].0.id, second
        ));
    }
    if best.touches_edge {
        warnings.push(
            "the phantom touches the edge of the reconstructed field of view: check that no insert is cut"
                .into(),
        );
    }
    Ok(Chosen {
        def,
        best,
        run,
        detection,
        confidence,
        report: cand_report,
        warnings,
    })
}

/// The insert region in z and the slab of slices measured in it (overview indices).
struct Slab {
    z_lo: f64,
    z_hi: f64,
    indices: Vec<usize>,
    /// The slab slice nearest the region's centre.
    centre: usize,
}

/// The insert region in z: from the first to the last slice of the run `lo..=hi`, widened by
/// half a slice spacing (the slice centres are sampled); the slab: the slices fully inside it
/// within `slab_mm` of its centre (the nearest slice when none is, with a warning).
fn slab(ov: &HuStack, lo: usize, hi: usize, slab_mm: f64, warnings: &mut Vec<String>) -> Slab {
    let n = ov.n_slices();
    let z = &ov.z_mm;
    let half = |i: usize| -> f64 {
        let prev = if i > 0 { z[i] - z[i - 1] } else { f64::NAN };
        let next = if i + 1 < z.len() {
            z[i + 1] - z[i]
        } else {
            f64::NAN
        };
        let d = if prev.is_finite() { prev } else { next };
        if d.is_finite() {
            d / 2.0
        } else {
            ov.thickness_mm / 2.0
        }
    };
    let z_lo = z[lo] - half(lo);
    let z_hi = z[hi] + half(hi);
    let z_c = 0.5 * (z_lo + z_hi);
    if lo == 0 || hi + 1 == n {
        warnings.push(format!(
            "the insert region reaches the {} of the scanned range: the slab may not be centred in the inserts; scan a longer range",
            if lo == 0 { "start" } else { "end" }
        ));
    }
    let t = ov.thickness_mm.max(0.0);
    let slab_half = 0.5 * slab_mm.max(0.0) + 1e-6;
    let mut slab: Vec<usize> = (0..n)
        .filter(|&i| {
            (z[i] - z_c).abs() <= slab_half.max(0.5 * t)
                && z[i] - 0.5 * t >= z_lo - 1e-6
                && z[i] + 0.5 * t <= z_hi + 1e-6
        })
        .collect();
    if slab.is_empty() {
        let nearest = (0..n)
            .min_by(|a, b| (z[*a] - z_c).abs().total_cmp(&(z[*b] - z_c).abs()))
            .unwrap_or(0);
        warnings.push(format!(
            "no slice lies fully inside the insert region (thickness {t} mm, region {:.1}..{:.1} mm): measuring the nearest slice only",
            z_lo, z_hi
        ));
        slab.push(nearest);
    }
    let centre = slab
        .iter()
        .copied()
        .min_by(|a, b| (z[*a] - z_c).abs().total_cmp(&(z[*b] - z_c).abs()))
        .unwrap_or(slab[0]);
    Slab {
        z_lo,
        z_hi,
        indices: slab,
        centre,
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// How well one candidate's outline fits the overview (the cheap first stage of its score).
struct OutlineFit {
    /// Slices whose object has about this phantom's cross-section.
    plausible: Vec<usize>,
    iou: f64,
    /// 0..1; an upper bound of the candidate's whole score.
    s_outline: f64,
    touches_edge: bool,
    rot_outline: f64,
    centre: (f64, f64),
}

fn no_match(reason: String) -> Eval {
    Eval {
        score: 0.0,
        reason,
        run: None,
        pose: Pose {
            centre_x_mm: 0.0,
            centre_y_mm: 0.0,
            rotation_deg: 0.0,
        },
        touches_edge: false,
        matched: 0,
    }
}

/// Stage 1 of a candidate's score: its outline. `Err` is the candidate's (failed) evaluation.
fn fit_candidate_outline(
    geo: &Geo,
    slices: &[SliceBody],
    areas: &[f64],
    def: &PhantomDef,
) -> Result<OutlineFit, Eval> {
    let n = slices.len();
    let expected_area = def.outline.area_mm2();
    // Slices whose object has about this phantom's cross-section (a cut phantom shows less).
    let plausible: Vec<usize> = (0..n)
        .filter(|&k| areas[k] >= 0.45 * expected_area && areas[k] <= 1.3 * expected_area)
        .collect();
    if plausible.is_empty() {
        let amax = areas.iter().cloned().fold(0.0, f64::max);
        return Err(no_match(format!(
            "largest object {:.0} cm², expected about {:.0} cm²",
            amax / 100.0,
            expected_area / 100.0
        )));
    }
    // Outline fit on a few slices spread over the plausible ones; keep the median IoU.
    let picks: Vec<usize> = {
        let m = plausible.len();
        let mut v: Vec<usize> = [m / 4, m / 2, (3 * m) / 4]
            .iter()
            .map(|i| plausible[(*i).min(m - 1)])
            .collect();
        v.dedup();
        v
    };
    let fits: Vec<(f64, (f64, f64), f64, bool)> = picks
        .par_iter()
        .filter_map(|&k| {
            let b = slices[k].body.as_ref()?;
            let (iou, c, r) = fit_outline(b, &slices[k].valid, geo, &def.outline);
            Some((iou, c, r, b.touches_edge))
        })
        .collect();
    let mut ious: Vec<f64> = fits.iter().map(|f| f.0).collect();
    ious.sort_by(|a, b| a.total_cmp(b));
    let iou = ious.get(ious.len() / 2).copied().unwrap_or(0.0);
    let touches_edge = fits.iter().any(|f| f.3);
    // A correct fit overlaps by 0.95 or more; a circle fitted with a square of the same size
    // reaches about 0.84, which must not count as a match.
    let s_outline = ((iou - 0.78) / 0.14).clamp(0.0, 1.0);
    if s_outline <= 0.0 {
        return Err(no_match(format!(
            "outline does not match (overlap {:.2})",
            iou
        )));
    }
    let (rot_outline, centre) = fits
        .iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|f| (f.2, f.1))
        .unwrap_or((0.0, (0.0, 0.0)));
    Ok(OutlineFit {
        plausible,
        iou,
        s_outline,
        touches_edge,
        rot_outline,
        centre,
    })
}

/// Insert evidence of overview slice `k` (the fraction of the expected holes visible), at that
/// slice's own body centre, and the pose found there.
fn slice_evidence(
    ov: &HuStack,
    geo: &Geo,
    slices: &[SliceBody],
    def: &PhantomDef,
    centre: (f64, f64),
    rot_outline: f64,
    k: usize,
) -> Option<(usize, f64, Pose)> {
    let b = slices[k].body.as_ref()?;
    let img = ov.hu.index_axis(Axis(0), k);
    // The centroid of a cut body is biased: shift the fitted centre by this slice's
    // centroid offset from the fitted slice's instead of trusting it.
    let c = if b.touches_edge {
        centre
    } else {
        (geo.x_of(b.centroid.1), geo.y_of(b.centroid.0))
    };
    match def.localisation {
        Localisation::Template => {
            let angles: Vec<f64> = match def.outline {
                Outline::Ellipse { .. } => (-12..=12)
                    .flat_map(|d| {
                        let a = rot_outline + d as f64;
                        [a, a + 180.0]
                    })
                    .collect(),
                // 5° steps: every hole (≥ ±5.8° wide at the Catphan ring) is hit within
                // 2.5°, and the refinement below finishes the angle.
                _ => (0..72).map(|i| i as f64 * 5.0).collect(),
            };
            let (_, rot) = best_rotation(img, geo, def, c, angles.into_iter());
            let start = Pose {
                centre_x_mm: c.0,
                centre_y_mm: c.1,
                rotation_deg: rot,
            };
            let (_, pose) = refine_pose(img, geo, def, start, &[(2.0, 1.0)]);
            let ev = evidence(&hole_contrasts(img, geo, def, &pose), def);
            Some((k, ev, pose))
        }
        Localisation::Detection => {
            // The same rods the measurement finds: blind by contrast, completed from
            // their pattern (the low-contrast rods of a noisy scan).
            let found = rods::find(img, b, geo, c, rot_outline);
            let want = def.expected_materials().len().max(1);
            let n = found.rods.len();
            let ev = (n as f64 / (want.saturating_sub(1)).max(1) as f64).min(1.0);
            let ev = if found.blind >= rods::MIN_BLIND {
                ev
            } else {
                0.0
            };
            Some((
                k,
                ev,
                Pose {
                    centre_x_mm: c.0,
                    centre_y_mm: c.1,
                    rotation_deg: wrap_deg(rot_outline),
                },
            ))
        }
    }
}

/// The best run of consecutive evaluated overview slices showing the inserts (a gap of one
/// sampled slice bridged): the longest, weighted by its mean evidence; (first, last, mean
/// evidence).
fn longest_run(per_slice: &[(usize, f64, Pose)], stride: usize) -> Option<(usize, usize, f64)> {
    let mut best_run: Option<(usize, usize, f64)> = None;
    let good: Vec<&(usize, f64, Pose)> = per_slice
        .iter()
        .filter(|(_, e, _)| *e >= EVIDENCE_MIN)
        .collect();
    let mut i = 0;
    while i < good.len() {
        let mut j = i;
        while j + 1 < good.len() && good[j + 1].0 <= good[j].0 + 2 * stride {
            j += 1;
        }
        let (lo, hi) = (good[i].0, good[j].0);
        let mean_ev = good[i..=j].iter().map(|g| g.1).sum::<f64>() / (j - i + 1) as f64;
        let span = (hi - lo + 1) as f64;
        if best_run.is_none_or(|(l, h, e)| span * mean_ev > (h - l + 1) as f64 * e) {
            best_run = Some((lo, hi, mean_ev));
        }
        i = j + 1;
    }
    best_run
}

/// Stage 2 of a candidate's score: the inserts, slice by slice, and what the holes hold.
fn evaluate(
    ov: &HuStack,
    geo: &Geo,
    slices: &[SliceBody],
    def: &PhantomDef,
    fit: OutlineFit,
    kvp: Option<f64>,
) -> Eval {
    let n = slices.len();
    let OutlineFit {
        plausible,
        iou,
        s_outline,
        touches_edge,
        rot_outline,
        centre,
    } = fit;
    let fail = no_match;

    // Insert evidence of one slice, at that slice's own body centre.
    let eval_slice = |k: usize| slice_evidence(ov, geo, slices, def, centre, rot_outline, k);
    // Evaluate slices about every 5 mm first (an insert region is 25 mm or more), then every
    // slice at the edges of the best run, so that its ends are exact.
    let spacing = median_spacing(&ov.z_mm).unwrap_or(ov.thickness_mm.max(1.0));
    let stride = ((5.0 / spacing).floor() as usize).max(1);
    let sampled: Vec<usize> = plausible.iter().copied().step_by(stride).collect();
    let mut per_slice: Vec<(usize, f64, Pose)> =
        sampled.par_iter().filter_map(|&k| eval_slice(k)).collect();
    // Longest run of consecutive overview slices showing the inserts (one-slice gaps bridged).
    let best_run = longest_run(&per_slice, stride);
    let max_ev = per_slice.iter().map(|p| p.1).fold(0.0, f64::max);
    let Some((mut lo, mut hi, run_ev)) = best_run else {
        return fail(format!(
            "outline matches (overlap {:.2}) but no slice shows the inserts (best {:.0} % of the expected holes visible)",
            iou,
            100.0 * max_ev
        ));
    };
    if stride > 1 {
        let is_plausible = |k: usize| plausible.binary_search(&k).is_ok();
        while lo > 0 && is_plausible(lo - 1) {
            match eval_slice(lo - 1) {
                Some(e) if e.1 >= EVIDENCE_MIN => {
                    lo -= 1;
                    per_slice.push(e);
                }
                _ => break,
            }
        }
        while hi + 1 < n && is_plausible(hi + 1) {
            match eval_slice(hi + 1) {
                Some(e) if e.1 >= EVIDENCE_MIN => {
                    hi += 1;
                    per_slice.push(e);
                }
                _ => break,
            }
        }
    }
    // Pose of the slice nearest the run centre.
    let mid = (lo + hi) / 2;
    let pose = per_slice
        .iter()
        .min_by_key(|p| p.0.abs_diff(mid))
        .map(|p| p.2)
        .unwrap_or(Pose {
            centre_x_mm: centre.0,
            centre_y_mm: centre.1,
            rotation_deg: 0.0,
        });
    // "Some rods inside" is weaker evidence than a whole hole template matching: a template
    // phantom that matches explains the rods, so detection phantoms yield to it. A template's
    // holes must also hold what the definition says (variants with the same holes differ only
    // in their content, e.g. the Catphan 600's water vial).
    let (specificity, agreement, matched) = match def.localisation {
        Localisation::Template => {
            let k = per_slice
                .iter()
                .min_by_key(|p| p.0.abs_diff(mid))
                .map_or(mid, |p| p.0);
            let img = ov.hu.index_axis(Axis(0), k);
            let (a, m) = content_agreement(img, geo, def, &pose, kvp);
            (1.0, a * position_agreement(img, geo, def, &pose), m)
        }
        Localisation::Detection => (DETECTION_WEIGHT, 1.0, 0),
    };
    let content = if def.localisation == Localisation::Template {
        format!(
            ", {} of {} holes hold a material of the definition (agreement {:.2})",
            matched,
            def.holes.len(),
            agreement
        )
    } else {
        String::new()
    };
    Eval {
        score: s_outline * run_ev * specificity * agreement,
        reason: format!(
            "outline overlap {:.2}, inserts visible in {} slice(s) ({:.0} % of the expected holes){content}",
            iou,
            hi - lo + 1,
            100.0 * run_ev
        ),
        run: Some((lo, hi)),
        pose,
        touches_edge,
        matched,
    }
}

/// How well the holes' content at `pose` agrees with the definition (see
/// [`assign::agreement`]): each hole's median HU inside its edge, on one overview slice.
fn content_agreement(
    img: ndarray::ArrayView2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    pose: &Pose,
    kvp: Option<f64>,
) -> (f64, usize) {
    let pxmax = geo.px[0].max(geo.px[1]);
    let hus: Vec<Option<HoleHu>> = def
        .holes
        .iter()
        .map(|h| {
            let (x, y) = hole_xy(h, pose);
            let layout = def.layout.get(&h.id).and_then(|m| def.material(m));
            let r = (h.radius_mm - 1.5 * pxmax).max(0.4 * h.radius_mm);
            let whole = disc_median(img, geo, x, y, r);
            // A rod narrower than its hole (older CIRS bone) fills only the hole's centre: the
            // centre's median, when it is closer to what the layout expects, is the content.
            let centre = disc_median(img, geo, x, y, (0.35 * h.radius_mm).max(1.5 * pxmax));
            let hu = match layout {
                Some(m)
                    if centre.is_finite()
                        && (centre - m.hu_expected).abs() < (whole - m.hu_expected).abs() =>
                {
                    centre
                }
                _ => whole,
            };
            hu.is_finite().then(|| HoleHu {
                hole: h.id.clone(),
                hu,
                layout: def.layout.get(&h.id).cloned(),
            })
        })
        .collect();
    assign::agreement(def, &hus, kvp)
}

/// How well the holes that show lie where the template puts them: the mean over the visible
/// holes of 1 at the template position (within 15 % of the radius plus a pixel), falling to 0 at
/// half a radius away (the local centroid of each hole's contrast). A template whose holes merely
/// overlap another phantom's holes does not fit.
fn position_agreement(
    img: ndarray::ArrayView2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    pose: &Pose,
) -> f64 {
    let pxmax = geo.px[0].max(geo.px[1]);
    let mut sum = 0.0;
    let mut n = 0usize;
    for h in &def.holes {
        let (x, y) = hole_xy(h, pose);
        if contrast_at(img, geo, x, y, h.radius_mm).contrast < VISIBLE_HU {
            continue;
        }
        n += 1;
        let Some((cx, cy)) = centroid(img, geo, x, y, h.radius_mm) else {
            continue;
        };
        let d = (cx - x).hypot(cy - y);
        let (ok, zero) = (0.15 * h.radius_mm + pxmax, 0.5 * h.radius_mm + pxmax);
        sum += ((zero - d) / (zero - ok)).clamp(0.0, 1.0);
    }
    if n == 0 {
        1.0
    } else {
        sum / n as f64
    }
}

/// Median distance between neighbouring slice positions, mm.
fn median_spacing(z: &[f64]) -> Option<f64> {
    let mut d: Vec<f64> = z
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|d| *d > 1e-6)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(|a, b| a.total_cmp(b));
    Some(d[d.len() / 2])
}
