//! One slice → a Part-10 DICOM object (CT Image Storage, or MR / Secondary Capture for bad-input
//! tests).

use super::{PixelRepresentation, Plan, SimError, SimParams, Truth, TruthSlice};
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

/// The slice being encoded: the plan, the parameters, and what the elements of every module read.
struct SliceCtx<'a> {
    plan: &'a Plan,
    p: &'a SimParams,
    truth: &'a Truth,
    slice: &'a TruthSlice,
    modality: &'a str,
    is_ct: bool,
    is_mr: bool,
}

impl Builder {
    /// Image type, SOP, dates and times, equipment, and the patient / study / series descriptions.
    fn patient_study_series(&mut self, s: &SliceCtx) {
        let (truth, slice, p) = (s.truth, s.slice, s.p);
        let image_type: &[&str] = if s.is_mr {
            &["ORIGINAL", "PRIMARY", "M", "ND"]
        } else {
            &["ORIGINAL", "PRIMARY", "AXIAL"]
        };
        self.put(
            tags::IMAGE_TYPE,
            VR::CS,
            PrimitiveValue::Strs(image_type.iter().map(|s| s.to_string()).collect()),
        );
        self.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
        self.s(tags::SOP_CLASS_UID, VR::UI, &truth.sop_class_uid);
        self.s(tags::SOP_INSTANCE_UID, VR::UI, &slice.sop_instance_uid);
        for tag in [tags::STUDY_DATE, tags::SERIES_DATE, tags::CONTENT_DATE] {
            self.s(tag, VR::DA, &p.study_date);
        }
        for tag in [tags::STUDY_TIME, tags::SERIES_TIME, tags::CONTENT_TIME] {
            self.s(tag, VR::TM, &p.study_time);
        }
        self.empty(tags::ACCESSION_NUMBER, VR::SH);
        self.s(tags::MODALITY, VR::CS, s.modality);
        if !s.is_ct && !s.is_mr {
            self.s(tags::CONVERSION_TYPE, VR::CS, "WSD");
        }
        self.s(tags::MANUFACTURER, VR::LO, &p.manufacturer);
        self.empty(tags::REFERRING_PHYSICIAN_NAME, VR::PN);
        self.s(tags::STATION_NAME, VR::SH, &p.station_name);
        self.s(tags::STUDY_DESCRIPTION, VR::LO, "HU-RED QA (simulated)");
        let description = p
            .series_description
            .clone()
            .unwrap_or_else(|| format!("hu-red simulated {}", truth.phantom_id));
        self.s(tags::SERIES_DESCRIPTION, VR::LO, &description);
        self.s(
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            &p.manufacturer_model_name,
        );
        self.s(tags::PATIENT_NAME, VR::PN, &p.patient_name);
        self.s(tags::PATIENT_ID, VR::LO, &p.patient_id);
        self.empty(tags::PATIENT_BIRTH_DATE, VR::DA);
        self.empty(tags::PATIENT_SEX, VR::CS);
    }

    /// Acquisition: slice thickness and spacing, device, protocol, the CT or MR parameters, and
    /// the patient position.
    fn acquisition(&mut self, s: &SliceCtx) {
        let (truth, p) = (s.truth, s.p);
        self.s(tags::SLICE_THICKNESS, VR::DS, &ds(truth.slice_thickness_mm));
        self.s(
            tags::SPACING_BETWEEN_SLICES,
            VR::DS,
            &ds(truth.slice_spacing_mm),
        );
        self.s(tags::DEVICE_SERIAL_NUMBER, VR::LO, &p.device_serial_number);
        self.s(tags::SOFTWARE_VERSIONS, VR::LO, &truth.generator);
        self.s(tags::PROTOCOL_NAME, VR::LO, &p.protocol_name);
        if s.is_ct {
            self.s(tags::KVP, VR::DS, &ds(p.kvp));
            self.s(
                tags::RECONSTRUCTION_DIAMETER,
                VR::DS,
                &ds(truth.cols as f64 * truth.pixel_mm),
            );
            self.s(tags::GANTRY_DETECTOR_TILT, VR::DS, "0");
            self.s(tags::CONVOLUTION_KERNEL, VR::SH, &p.kernel);
        }
        if s.is_mr {
            self.s(tags::SCANNING_SEQUENCE, VR::CS, "SE");
            self.s(tags::SEQUENCE_VARIANT, VR::CS, "NONE");
            self.empty(tags::SCAN_OPTIONS, VR::CS);
            self.s(tags::MR_ACQUISITION_TYPE, VR::CS, "2D");
            self.s(tags::REPETITION_TIME, VR::DS, "500");
            self.s(tags::ECHO_TIME, VR::DS, "20");
            self.s(tags::ECHO_TRAIN_LENGTH, VR::IS, "1");
            self.s(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "1.5");
            self.s(tags::IMAGED_NUCLEUS, VR::SH, "1H");
        }
        self.s(tags::PATIENT_POSITION, VR::CS, "HFS");
    }

    /// Study / series / instance identification, the image plane (position, orientation, frame of
    /// reference, slice location).
    fn identification_and_plane(&mut self, s: &SliceCtx) {
        let (truth, slice, p) = (s.truth, s.slice, s.p);
        self.s(tags::STUDY_INSTANCE_UID, VR::UI, &truth.study_uid);
        self.s(tags::SERIES_INSTANCE_UID, VR::UI, &truth.series_uid);
        self.s(tags::STUDY_ID, VR::SH, "1");
        self.s(tags::SERIES_NUMBER, VR::IS, &p.series_number.to_string());
        self.s(tags::ACQUISITION_NUMBER, VR::IS, "1");
        self.s(
            tags::INSTANCE_NUMBER,
            VR::IS,
            &slice.instance_number.to_string(),
        );
        self.put(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds_multi(&[
                truth.patient_origin_mm[0],
                truth.patient_origin_mm[1],
                slice.z_mm,
            ]),
        );
        self.put(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds_multi(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        );
        self.s(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            &truth.frame_of_reference_uid,
        );
        self.empty(tags::POSITION_REFERENCE_INDICATOR, VR::LO);
        self.s(tags::SLICE_LOCATION, VR::DS, &ds(slice.z_mm));
    }

    /// Image pixel description (size, bits, representation, padding), window, rescale, and the
    /// pixel data from the `stored` values.
    fn pixels(&mut self, s: &SliceCtx, stored: &[i32]) {
        let (plan, slice, p) = (s.plan, s.slice, s.p);
        self.us(tags::SAMPLES_PER_PIXEL, 1);
        self.s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        self.us(tags::ROWS, plan.rows as u16);
        self.us(tags::COLUMNS, plan.cols as u16);
        self.put(tags::PIXEL_SPACING, VR::DS, ds_multi(&[plan.dy, plan.dx]));
        self.us(tags::BITS_ALLOCATED, 16);
        self.us(tags::BITS_STORED, 16);
        self.us(tags::HIGH_BIT, 15);
        let signed = p.pixel_representation == PixelRepresentation::Signed;
        self.us(tags::PIXEL_REPRESENTATION, u16::from(signed));
        if let Some(pad) = slice.padding_value {
            if signed {
                self.put(
                    tags::PIXEL_PADDING_VALUE,
                    VR::SS,
                    PrimitiveValue::from(pad as i16),
                );
            } else {
                self.us(tags::PIXEL_PADDING_VALUE, pad as u16);
            }
        }
        if s.is_ct {
            self.s(tags::WINDOW_CENTER, VR::DS, "40");
            self.s(tags::WINDOW_WIDTH, VR::DS, "400");
        }
        self.s(
            tags::RESCALE_INTERCEPT,
            VR::DS,
            &ds(slice.rescale_intercept),
        );
        self.s(tags::RESCALE_SLOPE, VR::DS, &ds(plan.slope));
        if s.is_ct {
            self.s(tags::RESCALE_TYPE, VR::LO, "HU");
        }
        // Stored values are already clamped to the representation's range; store the 16-bit
        // pattern.
        let words: C<u16> = stored
            .iter()
            .map(|&v| if signed { v as i16 as u16 } else { v as u16 })
            .collect();
        self.put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words));
    }
}

/// Slice `i` of `plan` with its `stored` pixel values as a Part-10 object.
pub(crate) fn object(
    plan: &Plan,
    p: &SimParams,
    i: usize,
    stored: &[i32],
) -> Result<DefaultDicomObject, SimError> {
    let truth = &plan.truth;
    let modality = truth.modality.as_str();
    let ctx = SliceCtx {
        plan,
        p,
        truth,
        slice: &truth.slices[i],
        modality,
        is_ct: modality == "CT",
        is_mr: modality == "MR",
    };
    let mut b = Builder {
        obj: InMemDicomObject::new_empty(),
    };
    b.patient_study_series(&ctx);
    b.acquisition(&ctx);
    b.identification_and_plane(&ctx);
    b.pixels(&ctx, stored);
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
