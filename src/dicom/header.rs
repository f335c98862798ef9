//! What one DICOM object tells us before its pixel data is read: identity, geometry, pixel format
//! and acquisition metadata. Read once per file at load time (header only).

use std::path::PathBuf;
use std::sync::Arc;

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::raw::FileLayout;
use super::Acquisition;

/// Where a slice's pixel data comes from when it is decoded.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A file, re-opened (in full, as laid out) when its pixels are decoded.
    File(PathBuf, FileLayout),
    /// An object already in memory (handed over by the service).
    Memory(Arc<DefaultDicomObject>),
}

/// The header of one DICOM object (file or in-memory).
#[derive(Debug, Clone)]
pub(crate) struct SliceHeader {
    pub source: Source,
    /// File path or caller's label, for messages.
    pub label: String,
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub modality: String,
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub image_type: Vec<String>,
    /// Who scanned, how and when (for one frame of an Enhanced CT object: the frame's slice
    /// thickness).
    pub acquisition: Acquisition,
    pub series_number: Option<i64>,
    pub spacing_between_slices: Option<f64>,
    pub instance_number: Option<i64>,
    pub image_position: Option<[f64; 3]>,
    pub image_orientation: Option<[f64; 6]>,
    pub rows: Option<usize>,
    pub columns: Option<usize>,
    pub pixel_spacing: Option<[f64; 2]>,
    pub samples_per_pixel: Option<u16>,
    pub photometric_interpretation: Option<String>,
    pub bits_allocated: Option<u16>,
    pub number_of_frames: Option<i64>,
    pub rescale_slope: Option<f64>,
    pub rescale_intercept: Option<f64>,
    /// PixelPaddingValue as stored (before rescale), reinterpreted for the pixel representation.
    pub padding_value: Option<i64>,
    pub padding_range_limit: Option<i64>,
    /// LossyImageCompression is "01": the pixel values were altered by a lossy compression.
    pub lossy: bool,
    /// For one frame of a multi-frame (Enhanced CT) object: its index (0-based).
    pub frame: Option<u32>,
    /// For an Enhanced CT object before [`SliceHeader::expand_frames`]: what the functional
    /// groups say about each frame.
    pub frames: Vec<FrameInfo>,
}

/// Per-frame attributes of a multi-frame object (from the per-frame functional group, else the
/// shared one).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FrameInfo {
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub spacing_between_slices: Option<f64>,
    pub rescale_slope: Option<f64>,
    pub rescale_intercept: Option<f64>,
    pub frame_type: Vec<String>,
    pub in_stack_position: Option<i64>,
}

/// CT image storage SOP classes that we load (classic, one slice per file).
pub(crate) fn is_classic_ct(sop_class_uid: &str) -> bool {
    sop_class_uid == uids::CT_IMAGE_STORAGE
        || sop_class_uid == uids::CT_IMAGE_STORAGE_FOR_PROCESSING
}

/// Multi-frame CT classes we recognise but do not load yet.
pub(crate) fn is_enhanced_ct(sop_class_uid: &str) -> bool {
    matches!(
        sop_class_uid,
        uids::ENHANCED_CT_IMAGE_STORAGE
            | uids::LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE
            | uids::ENHANCED_CT_IMAGE_STORAGE_FOR_PROCESSING
            | uids::LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE_FOR_PROCESSING
    )
}

/// A short human name for the SOP classes one meets in a CT export folder.
pub(crate) fn sop_class_name(uid: &str) -> String {
    let name = match uid {
        uids::CT_IMAGE_STORAGE => "CT Image",
        uids::CT_IMAGE_STORAGE_FOR_PROCESSING => "CT Image (for processing)",
        uids::ENHANCED_CT_IMAGE_STORAGE => "Enhanced CT Image",
        uids::LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE => "Legacy Converted Enhanced CT Image",
        uids::MR_IMAGE_STORAGE => "MR Image",
        uids::ENHANCED_MR_IMAGE_STORAGE => "Enhanced MR Image",
        uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE => "PET Image",
        uids::NUCLEAR_MEDICINE_IMAGE_STORAGE => "NM Image",
        uids::SECONDARY_CAPTURE_IMAGE_STORAGE => "Secondary Capture Image",
        uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE => "CR Image",
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION => "DX Image",
        uids::RT_IMAGE_STORAGE => "RT Image",
        uids::RT_STRUCTURE_SET_STORAGE => "RT Structure Set",
        uids::RT_PLAN_STORAGE => "RT Plan",
        uids::RT_ION_PLAN_STORAGE => "RT Ion Plan",
        uids::RT_DOSE_STORAGE => "RT Dose",
        uids::BASIC_TEXT_SR_STORAGE => "Basic Text SR",
        uids::ENHANCED_SR_STORAGE => "Enhanced SR",
        uids::COMPREHENSIVE_SR_STORAGE => "Comprehensive SR",
        uids::X_RAY_RADIATION_DOSE_SR_STORAGE => "X-Ray Radiation Dose SR",
        uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE => "Key Object Selection",
        uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE => "Grayscale Presentation State",
        uids::SPATIAL_REGISTRATION_STORAGE => "Spatial Registration",
        uids::ENCAPSULATED_PDF_STORAGE => "Encapsulated PDF",
        uids::MEDIA_STORAGE_DIRECTORY_STORAGE => "DICOMDIR",
        "" => "unknown SOP class",
        other => return format!("SOP class {other}"),
    };
    name.to_string()
}

/// Trim the padding DICOM strings carry (spaces, NUL) at both ends.
fn clean(s: &str) -> String {
    s.trim_matches(|c: char| c == ' ' || c == '\0').to_string()
}

fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = clean(&obj.get(tag)?.to_str().ok()?);
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn strings(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<String>> {
    let v: Vec<String> = obj
        .get(tag)?
        .to_multi_str()
        .ok()?
        .iter()
        .map(|s| clean(s))
        .collect();
    if v.iter().all(|s| s.is_empty()) {
        None
    } else {
        Some(v)
    }
}

/// Numbers of a DS/IS/FD/US... element; `None` if absent, empty or not all finite numbers.
fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let elem = obj.get(tag)?;
    let parsed: Option<Vec<f64>> = match elem.to_multi_str() {
        Ok(strs) => strs.iter().map(|s| clean(s).parse::<f64>().ok()).collect(),
        Err(_) => None,
    };
    let v = match parsed {
        Some(v) => v,
        None => elem.to_multi_float64().ok()?,
    };
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        None
    } else {
        Some(v)
    }
}

fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    let x = float(obj, tag)?;
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Some(x as i64)
    } else {
        None
    }
}

fn small_uint(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    let x = int(obj, tag)?;
    u16::try_from(x).ok()
}

/// A US-or-SS value (PixelPaddingValue and friends) read back as the stored integer, whatever VR
/// the parser guessed (implicit VR files give no VR; an SS -2000 may come back as US 63536).
fn us_or_ss(obj: &InMemDicomObject, tag: Tag, signed: bool, bits_allocated: u16) -> Option<i64> {
    let v = int(obj, tag)?;
    let width = if bits_allocated == 32 { 32 } else { 16 };
    let span = 1i64 << width;
    let half = 1i64 << (width - 1);
    Some(if signed && v >= half {
        v - span
    } else if !signed && v < 0 {
        v + span
    } else {
        v
    })
}

fn first_item(obj: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    obj.get(seq)?.items()?.first()
}

/// Functional-group lookup for one frame: the macro `seq` in the frame's per-frame item, else in
/// the shared item; then `f` on the macro's first item.
fn fg<T>(
    per_frame: Option<&InMemDicomObject>,
    shared: Option<&InMemDicomObject>,
    seq: Tag,
    f: impl Fn(&InMemDicomObject) -> Option<T>,
) -> Option<T> {
    per_frame
        .and_then(|p| first_item(p, seq))
        .and_then(&f)
        .or_else(|| shared.and_then(|s| first_item(s, seq)).and_then(&f))
}

/// The acquisition metadata of a data set; an Enhanced CT object's kVp and kernel from its
/// shared functional groups when they are not at the top level.
fn acquisition(ds: &InMemDicomObject, enhanced: bool) -> Acquisition {
    let kvp = float(ds, tags::KVP).or_else(|| {
        enhanced
            .then(|| shared_attr(ds, tags::CTX_RAY_DETAILS_SEQUENCE, |o| float(o, tags::KVP)))
            .flatten()
    });
    let reconstruction_kernel = strings(ds, tags::CONVOLUTION_KERNEL)
        .or_else(|| {
            enhanced
                .then(|| {
                    shared_attr(ds, tags::CT_RECONSTRUCTION_SEQUENCE, |o| {
                        strings(o, tags::CONVOLUTION_KERNEL)
                    })
                })
                .flatten()
        })
        .map(|v| v.join("\\"));
    Acquisition {
        series_description: string(ds, tags::SERIES_DESCRIPTION),
        protocol_name: string(ds, tags::PROTOCOL_NAME),
        kvp,
        manufacturer: string(ds, tags::MANUFACTURER),
        manufacturer_model_name: string(ds, tags::MANUFACTURER_MODEL_NAME),
        station_name: string(ds, tags::STATION_NAME),
        study_date: string(ds, tags::STUDY_DATE),
        study_time: string(ds, tags::STUDY_TIME),
        slice_thickness: float(ds, tags::SLICE_THICKNESS).filter(|t| *t > 0.0),
        reconstruction_kernel,
        device_serial_number: string(ds, tags::DEVICE_SERIAL_NUMBER),
        acquisition_date: string(ds, tags::ACQUISITION_DATE),
        acquisition_time: string(ds, tags::ACQUISITION_TIME),
        acquisition_datetime: string(ds, tags::ACQUISITION_DATE_TIME),
        series_date: string(ds, tags::SERIES_DATE),
        series_time: string(ds, tags::SERIES_TIME),
    }
}

fn frame_infos(ds: &InMemDicomObject, n_frames: usize) -> Vec<FrameInfo> {
    let shared = first_item(ds, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame: &[InMemDicomObject] = ds
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[]);
    (0..n_frames)
        .map(|k| {
            let pf = per_frame.get(k);
            let v3 = |o: &InMemDicomObject| {
                floats(o, tags::IMAGE_POSITION_PATIENT)
                    .filter(|v| v.len() == 3)
                    .map(|v| [v[0], v[1], v[2]])
            };
            let v6 = |o: &InMemDicomObject| {
                floats(o, tags::IMAGE_ORIENTATION_PATIENT)
                    .filter(|v| v.len() == 6)
                    .map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]])
            };
            let ps = |o: &InMemDicomObject| {
                floats(o, tags::PIXEL_SPACING)
                    .filter(|v| v.len() == 2 && v[0] > 0.0 && v[1] > 0.0)
                    .map(|v| [v[0], v[1]])
            };
            FrameInfo {
                position: fg(pf, shared, tags::PLANE_POSITION_SEQUENCE, v3),
                orientation: fg(pf, shared, tags::PLANE_ORIENTATION_SEQUENCE, v6),
                pixel_spacing: fg(pf, shared, tags::PIXEL_MEASURES_SEQUENCE, ps),
                slice_thickness: fg(pf, shared, tags::PIXEL_MEASURES_SEQUENCE, |o| {
                    float(o, tags::SLICE_THICKNESS).filter(|t| *t > 0.0)
                }),
                spacing_between_slices: fg(pf, shared, tags::PIXEL_MEASURES_SEQUENCE, |o| {
                    float(o, tags::SPACING_BETWEEN_SLICES).filter(|t| *t > 0.0)
                }),
                rescale_slope: fg(pf, shared, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
                    float(o, tags::RESCALE_SLOPE)
                }),
                rescale_intercept: fg(pf, shared, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
                    float(o, tags::RESCALE_INTERCEPT)
                }),
                frame_type: fg(pf, shared, tags::CT_IMAGE_FRAME_TYPE_SEQUENCE, |o| {
                    strings(o, tags::FRAME_TYPE)
                })
                .unwrap_or_default(),
                in_stack_position: fg(pf, shared, tags::FRAME_CONTENT_SEQUENCE, |o| {
                    int(o, tags::IN_STACK_POSITION_NUMBER)
                }),
            }
        })
        .collect()
}

/// An attribute of an Enhanced CT object that may sit at the top level, in a shared functional
/// group macro, or (Legacy Converted) in the unassigned shared converted attributes.
fn shared_attr<T>(
    ds: &InMemDicomObject,
    macro_seq: Tag,
    f: impl Fn(&InMemDicomObject) -> Option<T>,
) -> Option<T> {
    let shared = first_item(ds, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    shared
        .and_then(|s| first_item(s, macro_seq))
        .and_then(&f)
        .or_else(|| {
            shared
                .and_then(|s| first_item(s, tags::UNASSIGNED_SHARED_CONVERTED_ATTRIBUTES_SEQUENCE))
                .and_then(&f)
        })
}

impl SliceHeader {
    /// Read what we need from a parsed object (which may lack its pixel data).
    pub(crate) fn from_object(obj: &DefaultDicomObject, source: Source, label: String) -> Self {
        let meta = obj.meta();
        let ds: &InMemDicomObject = obj;
        let transfer_syntax = clean(meta.transfer_syntax());
        let sop_class_uid = string(ds, tags::SOP_CLASS_UID)
            .unwrap_or_else(|| clean(&meta.media_storage_sop_class_uid));
        let sop_instance_uid = string(ds, tags::SOP_INSTANCE_UID)
            .unwrap_or_else(|| clean(&meta.media_storage_sop_instance_uid));

        let pixel_representation = small_uint(ds, tags::PIXEL_REPRESENTATION);
        let bits_allocated = small_uint(ds, tags::BITS_ALLOCATED);
        let signed = pixel_representation == Some(1);
        let ba = bits_allocated.unwrap_or(16);

        let image_position = floats(ds, tags::IMAGE_POSITION_PATIENT)
            .filter(|v| v.len() == 3)
            .map(|v| [v[0], v[1], v[2]]);
        let image_orientation = floats(ds, tags::IMAGE_ORIENTATION_PATIENT)
            .filter(|v| v.len() == 6)
            .map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]);
        let pixel_spacing = floats(ds, tags::PIXEL_SPACING)
            .filter(|v| v.len() == 2 && v[0] > 0.0 && v[1] > 0.0)
            .map(|v| [v[0], v[1]]);

        let enhanced = is_enhanced_ct(&sop_class_uid);
        let number_of_frames = int(ds, tags::NUMBER_OF_FRAMES);
        let frames = if enhanced {
            let n = number_of_frames.unwrap_or(1).clamp(1, 100_000) as usize;
            frame_infos(ds, n)
        } else {
            Vec::new()
        };
        SliceHeader {
            source,
            label,
            transfer_syntax,
            sop_class_uid,
            sop_instance_uid,
            modality: string(ds, tags::MODALITY).unwrap_or_default(),
            series_instance_uid: string(ds, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
            study_instance_uid: string(ds, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
            image_type: strings(ds, tags::IMAGE_TYPE).unwrap_or_default(),
            acquisition: acquisition(ds, enhanced),
            series_number: int(ds, tags::SERIES_NUMBER),
            spacing_between_slices: float(ds, tags::SPACING_BETWEEN_SLICES).filter(|t| *t > 0.0),
            instance_number: int(ds, tags::INSTANCE_NUMBER),
            image_position,
            image_orientation,
            rows: int(ds, tags::ROWS).and_then(|v| usize::try_from(v).ok()),
            columns: int(ds, tags::COLUMNS).and_then(|v| usize::try_from(v).ok()),
            pixel_spacing,
            samples_per_pixel: small_uint(ds, tags::SAMPLES_PER_PIXEL),
            photometric_interpretation: string(ds, tags::PHOTOMETRIC_INTERPRETATION),
            bits_allocated,
            number_of_frames,
            rescale_slope: float(ds, tags::RESCALE_SLOPE),
            rescale_intercept: float(ds, tags::RESCALE_INTERCEPT),
            padding_value: us_or_ss(ds, tags::PIXEL_PADDING_VALUE, signed, ba),
            padding_range_limit: us_or_ss(ds, tags::PIXEL_PADDING_RANGE_LIMIT, signed, ba),
            lossy: string(ds, tags::LOSSY_IMAGE_COMPRESSION).as_deref() == Some("01"),
            frame: None,
            frames,
        }
    }

    /// ImageType contains LOCALIZER (scout / topogram).
    pub(crate) fn is_localizer(&self) -> bool {
        self.image_type
            .iter()
            .any(|t| t.eq_ignore_ascii_case("LOCALIZER"))
    }

    /// One header per frame of an Enhanced CT object, with the frame's own geometry and rescale
    /// (functional groups override the top level); frames whose FrameType says LOCALIZER are
    /// left out. A classic (single-frame) header is returned as is.
    pub(crate) fn expand_frames(mut self) -> Vec<SliceHeader> {
        if self.frames.is_empty() {
            return vec![self];
        }
        let frames = std::mem::take(&mut self.frames);
        frames
            .into_iter()
            .enumerate()
            .filter(|(_, f)| {
                !f.frame_type
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case("LOCALIZER"))
            })
            .map(|(k, f)| {
                let mut h = self.clone();
                h.label = format!("{} [frame {}]", self.label, k + 1);
                h.frame = Some(k as u32);
                h.image_position = f.position.or(h.image_position);
                h.image_orientation = f.orientation.or(h.image_orientation);
                h.pixel_spacing = f.pixel_spacing.or(h.pixel_spacing);
                h.acquisition.slice_thickness = f.slice_thickness.or(h.acquisition.slice_thickness);
                h.spacing_between_slices = f.spacing_between_slices.or(h.spacing_between_slices);
                h.rescale_slope = f.rescale_slope.or(h.rescale_slope);
                h.rescale_intercept = f.rescale_intercept.or(h.rescale_intercept);
                // frames are told apart by their position in the stack (or their number)
                h.instance_number = f.in_stack_position.or(Some(k as i64 + 1));
                h.sop_instance_uid = format!("{} [frame {}]", self.sop_instance_uid, k + 1);
                h
            })
            .collect()
    }

    /// Bytes one frame's native pixel data must hold.
    pub(crate) fn expected_frame_bytes(&self) -> Option<usize> {
        let rows = self.rows?;
        let cols = self.columns?;
        let spp = usize::from(self.samples_per_pixel.unwrap_or(1));
        let ba = usize::from(self.bits_allocated?);
        if ba == 0 || ba % 8 != 0 {
            return None;
        }
        rows.checked_mul(cols)?
            .checked_mul(spp)?
            .checked_mul(ba / 8)
    }

    /// Unit normal of the slice plane (row cosines × column cosines), if the orientation is
    /// present and sane.
    pub(crate) fn normal(&self) -> Option<[f64; 3]> {
        let o = self.image_orientation?;
        let n = [
            o[1] * o[5] - o[2] * o[4],
            o[2] * o[3] - o[0] * o[5],
            o[0] * o[4] - o[1] * o[3],
        ];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        if len.is_nan() || len <= 1e-6 {
            return None;
        }
        Some([n[0] / len, n[1] / len, n[2] / len])
    }

    /// Axial (transverse) slices: the normal is within ~25° of the patient z axis. Gantry-tilted
    /// axial scans qualify. Unknown orientation counts as axial (the caller warns).
    pub(crate) fn is_axial(&self) -> bool {
        match self.normal() {
            Some(n) => n[2].abs() > 0.9,
            None => true,
        }
    }

    pub(crate) fn orientation_name(&self) -> &'static str {
        match self.normal() {
            None => "unknown orientation",
            Some(n) if n[2].abs() > 0.9 => "axial",
            Some(n) if n[1].abs() > 0.9 => "coronal",
            Some(n) if n[0].abs() > 0.9 => "sagittal",
            Some(_) => "oblique",
        }
    }
}

#[cfg(test)]
impl SliceHeader {
    /// A header with only identity and geometry set, for unit tests.
    pub(crate) fn for_test(
        label: &str,
        position: Option<[f64; 3]>,
        orientation: Option<[f64; 6]>,
        instance_number: Option<i64>,
    ) -> SliceHeader {
        SliceHeader {
            source: Source::File(PathBuf::from(label), FileLayout::Part10),
            label: label.to_string(),
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
            sop_instance_uid: format!("1.2.3.{label}"),
            modality: "CT".into(),
            series_instance_uid: "1.2.3".into(),
            study_instance_uid: "1.2".into(),
            image_type: vec!["ORIGINAL".into(), "PRIMARY".into(), "AXIAL".into()],
            acquisition: Acquisition {
                slice_thickness: Some(2.0),
                ..Acquisition::default()
            },
            series_number: None,
            spacing_between_slices: None,
            instance_number,
            image_position: position,
            image_orientation: orientation,
            rows: Some(4),
            columns: Some(4),
            pixel_spacing: Some([1.0, 1.0]),
            samples_per_pixel: Some(1),
            photometric_interpretation: Some("MONOCHROME2".into()),
            bits_allocated: Some(16),
            number_of_frames: None,
            rescale_slope: Some(1.0),
            rescale_intercept: Some(0.0),
            padding_value: None,
            padding_range_limit: None,
            lossy: false,
            frame: None,
            frames: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_object::FileMetaTableBuilder;

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

    #[test]
    fn normal_and_orientation_names() {
        let h = SliceHeader::for_test("a", None, Some(AXIAL), None);
        assert_eq!(h.normal(), Some([0.0, 0.0, 1.0]));
        assert!(h.is_axial());
        let cor = SliceHeader::for_test("c", None, Some([1.0, 0.0, 0.0, 0.0, 0.0, -1.0]), None);
        assert_eq!(cor.orientation_name(), "coronal");
        assert!(!cor.is_axial());
        // 20° gantry tilt is still axial
        let t = 20f64.to_radians();
        let tilt = SliceHeader::for_test(
            "t",
            None,
            Some([1.0, 0.0, 0.0, 0.0, t.cos(), t.sin()]),
            None,
        );
        assert!(tilt.is_axial());
        let degenerate =
            SliceHeader::for_test("d", None, Some([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]), None);
        assert_eq!(degenerate.normal(), None);
    }

    fn object_with(elems: Vec<DataElement<InMemDicomObject>>) -> DefaultDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        for e in elems {
            obj.put(e);
        }
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid("1.2.3.4"),
        )
        .unwrap()
    }

    #[test]
    fn reads_padded_strings_numbers_and_us_or_ss() {
        let obj = object_with(vec![
            DataElement::new(
                tags::SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2\0"),
            ),
            DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT ")),
            DataElement::new(
                tags::RESCALE_INTERCEPT,
                VR::DS,
                PrimitiveValue::from(" -1024 "),
            ),
            DataElement::new(tags::RESCALE_SLOPE, VR::DS, PrimitiveValue::from("1.0")),
            DataElement::new(
                tags::PIXEL_SPACING,
                VR::DS,
                PrimitiveValue::Strs(vec!["0.48828125".to_string(), "0.5 ".to_string()].into()),
            ),
            DataElement::new(
                tags::CONVOLUTION_KERNEL,
                VR::SH,
                PrimitiveValue::Strs(vec!["FC13".to_string(), "AIDR 3D ".to_string()].into()),
            ),
            DataElement::new(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(1u16),
            ),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
            // SS -2000 read back as US (implicit VR files give no VR)
            DataElement::new(
                tags::PIXEL_PADDING_VALUE,
                VR::US,
                PrimitiveValue::from(63536u16),
            ),
            DataElement::new(
                tags::IMAGE_TYPE,
                VR::CS,
                PrimitiveValue::Strs(
                    vec![
                        "ORIGINAL".to_string(),
                        "PRIMARY".to_string(),
                        "LOCALIZER ".to_string(),
                    ]
                    .into(),
                ),
            ),
            DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from(" 12")),
            DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                PrimitiveValue::from("1\\2"),
            ),
        ]);
        let h = SliceHeader::from_object(
            &obj,
            Source::Memory(std::sync::Arc::new(obj.clone())),
            "x".into(),
        );
        assert_eq!(h.sop_class_uid, uids::CT_IMAGE_STORAGE);
        assert_eq!(h.modality, "CT");
        assert_eq!(h.rescale_intercept, Some(-1024.0));
        assert_eq!(h.pixel_spacing, Some([0.48828125, 0.5]));
        assert_eq!(
            h.acquisition.reconstruction_kernel.as_deref(),
            Some("FC13\\AIDR 3D")
        );
        assert_eq!(h.padding_value, Some(-2000));
        assert!(h.is_localizer());
        assert_eq!(h.instance_number, Some(12));
        assert_eq!(h.image_position, None, "two values are not a position");
        assert_eq!(h.acquisition.series_description, None);
        assert_eq!(h.transfer_syntax, uids::IMPLICIT_VR_LITTLE_ENDIAN);
    }

    #[test]
    fn unsigned_padding_read_as_ss_is_reinterpreted() {
        let obj = object_with(vec![
            DataElement::new(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(0u16),
            ),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
            DataElement::new(
                tags::PIXEL_PADDING_VALUE,
                VR::SS,
                PrimitiveValue::from(-1i16),
            ),
        ]);
        let h = SliceHeader::from_object(
            &obj,
            Source::File("y".into(), FileLayout::Part10),
            "y".into(),
        );
        assert_eq!(h.padding_value, Some(65535));
    }
}
