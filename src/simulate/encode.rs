//! One slice → a Part-10 DICOM object (CT Image Storage, or MR / Secondary Capture for bad-input
//! tests).

use super::{PixelRepresentation, Plan, SimError, SimParams};
use dicom_core::value::C;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

pub(crate) const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub(crate) const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
pub(crate) const SECONDARY_CAPTURE_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7";

/// SOP class and modality code for a requested modality.
pub(crate) fn sop_class(modality: &str) -> (&'static str, &str) {
    match modality {
        "CT" => (CT_IMAGE_STORAGE, modality),
        "MR" => (MR_IMAGE_STORAGE, modality),
        other => (SECONDARY_CAPTURE_IMAGE_STORAGE, other),
    }
}

/// A decimal string (DS) of at most 16 characters.
pub(crate) fn ds(v: f64) -> String {
    for prec in (0..=8).rev() {
        let mut s = format!("{v:.prec$}");
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
        }
        if s == "-0" {
            s = "0".into();
        }
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.3e}")
}

fn ds_multi(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|&v| ds(v)).collect())
}

struct Builder {
    obj: InMemDicomObject,
}

impl Builder {
    fn put(&mut self, tag: Tag, vr: VR, value: PrimitiveValue) {
        self.obj.put(DataElement::new(tag, vr, value));
    }
    fn s(&mut self, tag: Tag, vr: VR, value: &str) {
        self.put(tag, vr, PrimitiveValue::from(value));
    }
    fn empty(&mut self, tag: Tag, vr: VR) {
        self.put(tag, vr, PrimitiveValue::Empty);
    }
    fn us(&mut self, tag: Tag, value: u16) {
        self.put(tag, VR::US, PrimitiveValue::from(value));
    }
}

pub(crate) fn object(
    plan: &Plan,
    p: &SimParams,
    i: usize,
    stored: &[i32],
) -> Result<DefaultDicomObject, SimError> {
    let truth = &plan.truth;
    let slice = &truth.slices[i];
    let modality = truth.modality.as_str();
    let is_ct = modality == "CT";
    let is_mr = modality == "MR";
    let mut b = Builder {
        obj: InMemDicomObject::new_empty(),
    };
    let image_type: &[&str] = if is_mr {
        &["ORIGINAL", "PRIMARY", "M", "ND"]
    } else {
        &["ORIGINAL", "PRIMARY", "AXIAL"]
    };
    b.put(
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(image_type.iter().map(|s| s.to_string()).collect()),
    );
    b.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
    b.s(tags::SOP_CLASS_UID, VR::UI, &truth.sop_class_uid);
    b.s(tags::SOP_INSTANCE_UID, VR::UI, &slice.sop_instance_uid);
    for tag in [tags::STUDY_DATE, tags::SERIES_DATE, tags::CONTENT_DATE] {
        b.s(tag, VR::DA, &p.study_date);
    }
    for tag in [tags::STUDY_TIME, tags::SERIES_TIME, tags::CONTENT_TIME] {
        b.s(tag, VR::TM, &p.study_time);
    }
    b.empty(tags::ACCESSION_NUMBER, VR::SH);
    b.s(tags::MODALITY, VR::CS, modality);
    if !is_ct && !is_mr {
        b.s(tags::CONVERSION_TYPE, VR::CS, "WSD");
    }
    b.s(tags::MANUFACTURER, VR::LO, &p.manufacturer);
    b.empty(tags::REFERRING_PHYSICIAN_NAME, VR::PN);
    b.s(tags::STATION_NAME, VR::SH, &p.station_name);
    b.s(tags::STUDY_DESCRIPTION, VR::LO, "HU-RED QA (simulated)");
    let description = p
        .series_description
        .clone()
        .unwrap_or_else(|| format!("hu-red simulated {}", truth.phantom_id));
    b.s(tags::SERIES_DESCRIPTION, VR::LO, &description);
    b.s(
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        &p.manufacturer_model_name,
    );
    b.s(tags::PATIENT_NAME, VR::PN, &p.patient_name);
    b.s(tags::PATIENT_ID, VR::LO, &p.patient_id);
    b.empty(tags::PATIENT_BIRTH_DATE, VR::DA);
    b.empty(tags::PATIENT_SEX, VR::CS);
    b.s(tags::SLICE_THICKNESS, VR::DS, &ds(truth.slice_thickness_mm));
    b.s(
        tags::SPACING_BETWEEN_SLICES,
        VR::DS,
        &ds(truth.slice_spacing_mm),
    );
    b.s(tags::DEVICE_SERIAL_NUMBER, VR::LO, &p.device_serial_number);
    b.s(tags::SOFTWARE_VERSIONS, VR::LO, &truth.generator);
    b.s(tags::PROTOCOL_NAME, VR::LO, &p.protocol_name);
    if is_ct {
        b.s(tags::KVP, VR::DS, &ds(p.kvp));
        b.s(
            tags::RECONSTRUCTION_DIAMETER,
            VR::DS,
            &ds(truth.cols as f64 * truth.pixel_mm),
        );
        b.s(tags::GANTRY_DETECTOR_TILT, VR::DS, "0");
        b.s(tags::CONVOLUTION_KERNEL, VR::SH, &p.kernel);
    }
    if is_mr {
        b.s(tags::SCANNING_SEQUENCE, VR::CS, "SE");
        b.s(tags::SEQUENCE_VARIANT, VR::CS, "NONE");
        b.empty(tags::SCAN_OPTIONS, VR::CS);
        b.s(tags::MR_ACQUISITION_TYPE, VR::CS, "2D");
        b.s(tags::REPETITION_TIME, VR::DS, "500");
        b.s(tags::ECHO_TIME, VR::DS, "20");
        b.s(tags::ECHO_TRAIN_LENGTH, VR::IS, "1");
        b.s(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "1.5");
        b.s(tags::IMAGED_NUCLEUS, VR::SH, "1H");
    }
    b.s(tags::PATIENT_POSITION, VR::CS, "HFS");
    b.s(tags::STUDY_INSTANCE_UID, VR::UI, &truth.study_uid);
    b.s(tags::SERIES_INSTANCE_UID, VR::UI, &truth.series_uid);
    b.s(tags::STUDY_ID, VR::SH, "1");
    b.s(tags::SERIES_NUMBER, VR::IS, &p.series_number.to_string());
    b.s(tags::ACQUISITION_NUMBER, VR::IS, "1");
    b.s(
        tags::INSTANCE_NUMBER,
        VR::IS,
        &slice.instance_number.to_string(),
    );
    b.put(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        ds_multi(&[
            truth.patient_origin_mm[0],
            truth.patient_origin_mm[1],
            slice.z_mm,
        ]),
    );
    b.put(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
    );
    b.s(
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &truth.frame_of_reference_uid,
    );
    b.empty(tags::POSITION_REFERENCE_INDICATOR, VR::LO);
    b.s(tags::SLICE_LOCATION, VR::DS, &ds(slice.z_mm));
    b.us(tags::SAMPLES_PER_PIXEL, 1);
    b.s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    b.us(tags::ROWS, plan.rows as u16);
    b.us(tags::COLUMNS, plan.cols as u16);
    b.put(tags::PIXEL_SPACING, VR::DS, ds_multi(&[plan.dy, plan.dx]));
    b.us(tags::BITS_ALLOCATED, 16);
    b.us(tags::BITS_STORED, 16);
    b.us(tags::HIGH_BIT, 15);
    let signed = p.pixel_representation == PixelRepresentation::Signed;
    b.us(tags::PIXEL_REPRESENTATION, u16::from(signed));
    if let Some(pad) = slice.padding_value {
        if signed {
            b.put(
                tags::PIXEL_PADDING_VALUE,
                VR::SS,
                PrimitiveValue::from(pad as i16),
            );
        } else {
            b.us(tags::PIXEL_PADDING_VALUE, pad as u16);
        }
    }
    if is_ct {
        b.s(tags::WINDOW_CENTER, VR::DS, "40");
        b.s(tags::WINDOW_WIDTH, VR::DS, "400");
    }
    b.s(
        tags::RESCALE_INTERCEPT,
        VR::DS,
        &ds(slice.rescale_intercept),
    );
    b.s(tags::RESCALE_SLOPE, VR::DS, &ds(plan.slope));
    if is_ct {
        b.s(tags::RESCALE_TYPE, VR::LO, "HU");
    }
    // Stored values are already clamped to the representation's range; store the 16-bit pattern.
    let words: C<u16> = stored
        .iter()
        .map(|&v| if signed { v as i16 as u16 } else { v as u16 })
        .collect();
    b.put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words));
    b.obj
        .with_meta(
            FileMetaTableBuilder::new().transfer_syntax(truth.storage.transfer_syntax_uid.as_str()),
        )
        .map_err(|e| SimError::Dicom {
            index: i,
            what: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::ds;

    #[test]
    fn decimal_strings_fit() {
        assert_eq!(ds(0.48828125), "0.48828125");
        assert_eq!(ds(-1024.0), "-1024");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(2.5), "2.5");
        assert!(ds(-123456.123456789).len() <= 16);
        assert!(ds(1.0e30).len() <= 16);
        assert_eq!(ds(204.39999999999998), "204.4");
    }
}
