//! Checking a [`SimParams`] against its phantom before anything is planned: ranges, DICOM text
//! values and UIDs, each error naming the parameter.

use super::{is_valid_uid, SimError, SimParams};
use crate::phantom::PhantomDef;

pub(super) fn param_err(name: &'static str, what: impl Into<String>) -> SimError {
    SimError::Param {
        name,
        what: what.into(),
    }
}

fn check_range(name: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), SimError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(param_err(name, format!("{v} is outside [{lo}, {hi}]")))
    }
}

fn check_text(name: &'static str, v: &str, max: usize) -> Result<(), SimError> {
    if v.len() > max {
        return Err(param_err(
            name,
            format!("'{v}' is longer than {max} characters"),
        ));
    }
    if !v.is_ascii() || v.contains('\\') || v.chars().any(|c| c.is_control()) {
        return Err(param_err(
            name,
            format!("'{v}' must be printable ASCII without a backslash"),
        ));
    }
    Ok(())
}

pub(super) fn validate(p: &SimParams, def: &PhantomDef) -> Result<(), SimError> {
    check_range("rotation_deg", p.rotation_deg, -3600.0, 3600.0)?;
    check_range("shift_x_mm", p.shift_x_mm, -1000.0, 1000.0)?;
    check_range("shift_y_mm", p.shift_y_mm, -1000.0, 1000.0)?;
    check_range("pixel_mm", p.pixel_mm, 0.05, 5.0)?;
    if !(16..=2048).contains(&p.matrix) {
        return Err(param_err(
            "matrix",
            format!("{} is outside [16, 2048]", p.matrix),
        ));
    }
    check_range("slice_thickness_mm", p.slice_thickness_mm, 0.05, 50.0)?;
    check_range("slice_spacing_mm", p.spacing_mm(), 0.05, 100.0)?;
    if !(1..=5000).contains(&p.n_slices) {
        return Err(param_err(
            "n_slices",
            format!("{} is outside [1, 5000]", p.n_slices),
        ));
    }
    check_range("z_offset_mm", p.z_offset_mm, -10000.0, 10000.0)?;
    check_range("noise_sigma_hu", p.noise_sigma_hu, 0.0, 1000.0)?;
    check_range("noise_corr_mm", p.noise_corr_mm, 0.0, 20.0)?;
    check_range("blur_mm", p.blur_mm, 0.0, 20.0)?;
    check_range("air_gap_mm", p.air_gap_mm, 0.0, 10.0)?;
    check_range("padding_hu", p.padding_hu, -100000.0, 100000.0)?;
    if let Some(s) = p.slab_mm {
        check_range("slab_mm", s, 0.1, 1000.0)?;
    }
    if let Some(b) = p.body_hu {
        check_range("body_hu", b, -1000.0, 4000.0)?;
    }
    check_range(
        "rescale_intercept",
        p.rescale_intercept,
        -100000.0,
        100000.0,
    )?;
    check_range("rescale_slope", p.rescale_slope, 1e-4, 1000.0)?;
    check_range("kvp", p.kvp, 1.0, 1000.0)?;
    for (name, off) in &p.hu_offsets {
        if def.material(name).is_none() {
            let known: Vec<&str> = def.materials.iter().map(|m| m.name.as_str()).collect();
            return Err(param_err(
                "hu_offsets",
                format!(
                    "'{name}' is not a material of {} (known: {})",
                    def.id,
                    known.join(", ")
                ),
            ));
        }
        check_range("hu_offsets", *off, -5000.0, 5000.0)?;
    }
    if p.modality.is_empty()
        || p.modality.len() > 16
        || !p
            .modality
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(param_err(
            "modality",
            format!(
                "'{}' is not a DICOM modality code (e.g. CT, MR)",
                p.modality
            ),
        ));
    }
    check_text("station_name", &p.station_name, 16)?;
    check_text("kernel", &p.kernel, 16)?;
    check_text("device_serial_number", &p.device_serial_number, 64)?;
    check_text("manufacturer", &p.manufacturer, 64)?;
    check_text("manufacturer_model_name", &p.manufacturer_model_name, 64)?;
    check_text("protocol_name", &p.protocol_name, 64)?;
    check_text("patient_id", &p.patient_id, 64)?;
    check_text("patient_name", &p.patient_name, 64)?;
    if let Some(d) = &p.series_description {
        check_text("series_description", d, 64)?;
    }
    if !(p.study_date.len() == 8 && p.study_date.bytes().all(|b| b.is_ascii_digit())) {
        return Err(param_err(
            "study_date",
            format!("'{}' is not YYYYMMDD", p.study_date),
        ));
    }
    if !(p.study_time.len() >= 2
        && p.study_time.len() <= 13
        && p.study_time
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.'))
    {
        return Err(param_err(
            "study_time",
            format!("'{}' is not HHMMSS", p.study_time),
        ));
    }
    for (name, uid) in [("series_uid", &p.series_uid), ("study_uid", &p.study_uid)] {
        if let Some(u) = uid {
            if !is_valid_uid(u) {
                return Err(param_err(
                    name,
                    format!(
                        "'{u}' is not a valid DICOM UID (digits and dots, at most 64 characters)"
                    ),
                ));
            }
        }
    }
    Ok(())
}
