//! Slice order: position along the slice normal, duplicates, gaps.

use super::header::SliceHeader;

/// Two slices closer than this along the normal are at the same position.
const SAME_POSITION_MM: f64 = 0.01;
/// Largest allowed difference between two slices' orientation cosines.
const ORIENTATION_TOL: f64 = 1e-3;

/// The outcome of sorting one series' slices.
#[derive(Debug)]
pub(crate) struct Sorted {
    /// Indices into the input, in increasing position along the normal; duplicates left out.
    pub order: Vec<usize>,
    /// Position of each kept slice along the normal, mm, strictly increasing.
    pub z_mm: Vec<f64>,
    pub warnings: Vec<String>,
}

fn fmt_list(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

fn dot(a: &[f64; 3], b: &[f64]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Sort by the projection of ImagePositionPatient on the normal of the first slice's
/// ImageOrientationPatient; fall back to InstanceNumber (with a warning) when positions are
/// missing. `Err` says why the slices cannot form one stack.
pub(crate) fn sort_slices(headers: &[SliceHeader]) -> Result<Sorted, String> {
    let mut warnings = Vec::new();
    if headers.is_empty() {
        return Err("no slices".into());
    }
    let all_positioned = headers
        .iter()
        .all(|h| h.image_position.is_some() && h.normal().is_some());

    // (input index, position) before de-duplication
    let mut pos = if all_positioned {
        positions_along_normal(headers)?
    } else {
        let (pos, warning) = positions_by_instance_number(headers)?;
        warnings.push(warning);
        pos
    };
    sort_positions(headers, &mut pos);
    let (order, z_mm, duplicates) = drop_duplicates(headers, &pos);
    warnings.extend(duplicates);
    warnings.extend(spacing_warning(&z_mm));
    Ok(Sorted {
        order,
        z_mm,
        warnings,
    })
}

/// (input index, position along the first slice's normal) of every slice; `Err` when the
/// slices' orientations differ.
fn positions_along_normal(headers: &[SliceHeader]) -> Result<Vec<(usize, f64)>, String> {
    let first = headers[0].image_orientation.unwrap_or_default();
    let normal = headers[0].normal().unwrap_or([0.0, 0.0, 1.0]);
    let mut differing = Vec::new();
    for h in headers {
        let o = h.image_orientation.unwrap_or_default();
        let d = o
            .iter()
            .zip(first.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if d > ORIENTATION_TOL {
            differing.push(format!("{} has {:?}", h.label, o));
        }
    }
    if !differing.is_empty() {
        return Err(format!(
            "slices have different ImageOrientationPatient (first slice {:?}; {}): not one stack of parallel slices",
            first,
            fmt_list(&differing, 3)
        ));
    }
    Ok(headers
        .iter()
        .enumerate()
        .map(|(i, h)| (i, dot(&normal, &h.image_position.unwrap_or_default())))
        .collect())
}

/// (input index, InstanceNumber × assumed spacing) in InstanceNumber order, for slices some of
/// which lack a position, and the warning saying so; `Err` when InstanceNumber is missing too.
fn positions_by_instance_number(
    headers: &[SliceHeader],
) -> Result<(Vec<(usize, f64)>, String), String> {
    let missing: Vec<String> = headers
        .iter()
        .filter(|h| h.image_position.is_none() || h.normal().is_none())
        .map(|h| h.label.clone())
        .collect();
    if headers.iter().any(|h| h.instance_number.is_none()) {
        return Err(format!(
            "ImagePositionPatient/ImageOrientationPatient missing or invalid in {} file(s) ({}) and InstanceNumber missing too: the slices cannot be ordered",
            missing.len(),
            fmt_list(&missing, 3)
        ));
    }
    let step = headers[0]
        .spacing_between_slices
        .or(headers[0].acquisition.slice_thickness)
        .unwrap_or(1.0);
    let warning = format!(
        "ImagePositionPatient/ImageOrientationPatient missing or invalid in {} file(s) ({}): slices ordered by InstanceNumber, positions assumed {step} mm apart",
        missing.len(),
        fmt_list(&missing, 3)
    );
    let mut by_number: Vec<usize> = (0..headers.len()).collect();
    by_number.sort_by_key(|&i| (headers[i].instance_number, i));
    let pos = by_number
        .iter()
        .map(|&i| (i, headers[i].instance_number.unwrap_or(0) as f64 * step))
        .collect();
    Ok((pos, warning))
}

/// Sort (input index, position) pairs by position, then InstanceNumber, then label.
fn sort_positions(headers: &[SliceHeader], pos: &mut [(usize, f64)]) {
    pos.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then(inst_key(&headers[a.0]).cmp(&inst_key(&headers[b.0])))
            .then(headers[a.0].label.cmp(&headers[b.0].label))
    });
}

/// Collapse runs of (nearly) equal positions in the sorted `pos`, keeping the lowest
/// InstanceNumber: (kept indices, their positions, the duplicate-slices warning if any).
fn drop_duplicates(
    headers: &[SliceHeader],
    pos: &[(usize, f64)],
) -> (Vec<usize>, Vec<f64>, Option<String>) {
    let mut order = Vec::new();
    let mut z_mm = Vec::new();
    let mut dup_msgs = Vec::new();
    let mut i = 0;
    while i < pos.len() {
        let mut j = i + 1;
        while j < pos.len() && (pos[j].1 - pos[i].1).abs() < SAME_POSITION_MM {
            j += 1;
        }
        let run = &pos[i..j];
        let keep = run
            .iter()
            .min_by(|a, b| {
                inst_key(&headers[a.0])
                    .cmp(&inst_key(&headers[b.0]))
                    .then(headers[a.0].label.cmp(&headers[b.0].label))
            })
            .map(|p| p.0)
            .unwrap_or(run[0].0);
        if run.len() > 1 {
            dup_msgs.push(duplicate_message(headers, run, keep));
        }
        order.push(keep);
        z_mm.push(pos[i].1);
        i = j;
    }
    let warning = (!dup_msgs.is_empty()).then(|| {
        format!(
            "{} slice position(s) occur more than once (duplicate slices): {}",
            dup_msgs.len(),
            fmt_list(&dup_msgs, 5)
        )
    });
    (order, z_mm, warning)
}

/// What a run of slices at one position kept (`keep`) and left out.
fn duplicate_message(headers: &[SliceHeader], run: &[(usize, f64)], keep: usize) -> String {
    let kept = &headers[keep];
    let dropped: Vec<String> = run
        .iter()
        .filter(|p| p.0 != keep)
        .map(|p| {
            let h = &headers[p.0];
            let same = if h.sop_instance_uid == kept.sop_instance_uid {
                ", same SOPInstanceUID"
            } else {
                ""
            };
            format!(
                "{} (InstanceNumber {}{same})",
                h.label,
                num(h.instance_number)
            )
        })
        .collect();
    format!(
        "z = {:.3} mm: kept {} (InstanceNumber {}), left out {}",
        run[0].1,
        kept.label,
        num(kept.instance_number),
        dropped.join(", ")
    )
}

/// The warning about gaps or irregular spacing between the kept positions, if any (3 slices or
/// more).
fn spacing_warning(z_mm: &[f64]) -> Option<String> {
    if z_mm.len() < 3 {
        return None;
    }
    let mut d: Vec<f64> = z_mm.windows(2).map(|w| w[1] - w[0]).collect();
    let diffs = d.clone();
    d.sort_by(f64::total_cmp);
    let median = d[d.len() / 2];
    let tol = (0.05 * median).max(0.02);
    let irregular: Vec<String> = diffs
        .iter()
        .enumerate()
        .filter(|(_, &x)| (x - median).abs() > tol)
        .map(|(k, &x)| format!("{:.2} → {:.2} mm ({:.2} mm)", z_mm[k], z_mm[k + 1], x))
        .collect();
    (!irregular.is_empty()).then(|| {
        format!(
            "irregular slice spacing (usual spacing {median:.2} mm; missing slices?): {}",
            fmt_list(&irregular, 5)
        )
    })
}

fn inst_key(h: &SliceHeader) -> (bool, i64) {
    (h.instance_number.is_none(), h.instance_number.unwrap_or(0))
}

fn num(n: Option<i64>) -> String {
    n.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
}

/// Median of the spacings between consecutive positions (None for fewer than 2 slices).
pub(crate) fn median_spacing(z_mm: &[f64]) -> Option<f64> {
    if z_mm.len() < 2 {
        return None;
    }
    let mut d: Vec<f64> = z_mm.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort_by(f64::total_cmp);
    Some(d[d.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

    fn h(label: &str, z: f64, n: i64) -> SliceHeader {
        SliceHeader::for_test(label, Some([5.0, -3.0, z]), Some(AXIAL), Some(n))
    }

    #[test]
    fn sorts_by_position_and_reports_nothing_for_a_regular_stack() {
        let hs = vec![
            h("a", 4.0, 1),
            h("b", 0.0, 3),
            h("c", 2.0, 2),
            h("d", 6.0, 0),
        ];
        let s = sort_slices(&hs).unwrap();
        assert_eq!(s.order, vec![1, 2, 0, 3]);
        assert_eq!(s.z_mm, vec![0.0, 2.0, 4.0, 6.0]);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn tilted_stack_sorts_along_its_normal() {
        // 10° tilt: the normal is (0, -sin, cos); positions move along z only (table feed)
        let t = 10f64.to_radians();
        let o = [1.0, 0.0, 0.0, 0.0, t.cos(), t.sin()];
        let hs: Vec<SliceHeader> = (0..4)
            .map(|k| {
                SliceHeader::for_test(
                    &format!("s{k}"),
                    Some([0.0, 0.0, 10.0 - 3.0 * k as f64]),
                    Some(o),
                    Some(k),
                )
            })
            .collect();
        let s = sort_slices(&hs).unwrap();
        assert_eq!(s.order, vec![3, 2, 1, 0]);
        let spacing = 3.0 * t.cos();
        for w in s.z_mm.windows(2) {
            assert!((w[1] - w[0] - spacing).abs() < 1e-9);
        }
    }

    #[test]
    fn duplicates_keep_lowest_instance_number_and_warn() {
        let hs = vec![
            h("a", 0.0, 5),
            h("b", 2.0, 9),
            h("c", 2.004, 3),
            h("d", 4.0, 1),
        ];
        let s = sort_slices(&hs).unwrap();
        assert_eq!(s.order, vec![0, 2, 3]);
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].contains("kept c (InstanceNumber 3)"),
            "{:?}",
            s.warnings
        );
        assert!(
            s.warnings[0].contains("left out b (InstanceNumber 9)"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn gaps_warn_with_positions() {
        let zs = [0.0, 1.0, 2.0, 3.0, 6.0, 7.0];
        let hs: Vec<SliceHeader> = zs
            .iter()
            .enumerate()
            .map(|(k, &z)| h(&format!("s{k}"), z, k as i64))
            .collect();
        let s = sort_slices(&hs).unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].contains("3.00 → 6.00 mm (3.00 mm)"),
            "{:?}",
            s.warnings
        );
        assert_eq!(median_spacing(&s.z_mm), Some(1.0));
    }

    #[test]
    fn mixed_orientation_is_an_error() {
        let mut hs = vec![h("a", 0.0, 1), h("b", 1.0, 2), h("c", 2.0, 3)];
        hs[1].image_orientation = Some([1.0, 0.0, 0.0, 0.0, 0.0, -1.0]);
        let e = sort_slices(&hs).unwrap_err();
        assert!(
            e.contains("different ImageOrientationPatient") && e.contains("b has"),
            "{e}"
        );
    }

    #[test]
    fn missing_positions_fall_back_to_instance_number_or_fail() {
        let mut hs = vec![h("a", 0.0, 3), h("b", 1.0, 1), h("c", 2.0, 2)];
        hs[0].image_position = None;
        let s = sort_slices(&hs).unwrap();
        assert_eq!(s.order, vec![1, 2, 0]);
        assert_eq!(
            s.z_mm,
            vec![2.0, 4.0, 6.0],
            "InstanceNumber × SliceThickness"
        );
        assert!(s.warnings[0].contains("InstanceNumber"), "{:?}", s.warnings);
        hs[1].instance_number = None;
        let e = sort_slices(&hs).unwrap_err();
        assert!(e.contains("cannot be ordered"), "{e}");
    }
}
