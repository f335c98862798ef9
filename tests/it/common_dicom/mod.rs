//! Builders for small DICOM test objects (CT slices, localizers, MR images, non-image objects),
//! written with dicom-object. Used by tests/it/loader.rs and tests/it/decoders.rs (`use crate::common_dicom;`).

#![allow(dead_code)]

use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};

pub const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.1";

/// One CT slice (or, with `sop_class`/`modality` changed, another image) to write.
#[derive(Debug, Clone)]
pub struct Slice {
    pub sop_class: String,
    pub modality: String,
    pub transfer_syntax: String,
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub series_description: Option<String>,
    pub series_number: Option<i64>,
    pub image_type: String,
    pub instance_number: Option<i64>,
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    pub rows: usize,
    pub cols: usize,
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub bits_stored: u16,
    pub signed: bool,
    pub slope: Option<f64>,
    pub intercept: Option<f64>,
    pub padding: Option<i64>,
    pub padding_limit: Option<i64>,
    /// Stored values, row-major, `rows * cols`.
    pub stored: Vec<i64>,
    /// Write no Pixel Data at all.
    pub no_pixel_data: bool,
    pub kernel: Option<String>,
    /// Write LossyImageCompression "01".
    pub lossy: bool,
}

impl Slice {
    /// A signed 16-bit CT slice, intercept 0, slope 1, axial, 1 mm pixels, at z with the given
    /// stored values (all `fill`).
    pub fn ct(series_uid: &str, index: i64, z: f64, rows: usize, cols: usize, fill: i64) -> Slice {
        Slice {
            sop_class: uids::CT_IMAGE_STORAGE.to_string(),
            modality: "CT".into(),
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
            series_uid: series_uid.to_string(),
            sop_instance_uid: format!("{series_uid}.{}", index + 1000),
            series_description: Some("Test CT".into()),
            series_number: Some(2),
            image_type: "ORIGINAL\\PRIMARY\\AXIAL".into(),
            instance_number: Some(index),
            position: Some([-10.0, -20.0, z]),
            orientation: Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            rows,
            cols,
            pixel_spacing: Some([1.0, 1.0]),
            slice_thickness: Some(2.5),
            bits_stored: 16,
            signed: true,
            slope: Some(1.0),
            intercept: Some(0.0),
            padding: None,
            padding_limit: None,
            stored: vec![fill; rows * cols],
            no_pixel_data: false,
            kernel: Some("B30f".into()),
            lossy: false,
        }
    }

    pub fn with_stored(mut self, f: impl Fn(usize, usize) -> i64) -> Slice {
        for r in 0..self.rows {
            for c in 0..self.cols {
                self.stored[r * self.cols + c] = f(r, c);
            }
        }
        self
    }

    pub fn object(&self) -> DefaultDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        let s = |v: &str| PrimitiveValue::from(v.to_string());
        let ds = |v: &[f64]| {
            PrimitiveValue::Strs(v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().into())
        };
        obj.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            s("ISO_IR 100"),
        ));
        obj.put(DataElement::new(
            tags::IMAGE_TYPE,
            VR::CS,
            PrimitiveValue::Strs(
                self.image_type
                    .split('\\')
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .into(),
            ),
        ));
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            s(&self.sop_class),
        ));
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            s(&self.sop_instance_uid),
        ));
        obj.put(DataElement::new(tags::STUDY_DATE, VR::DA, s("20240115")));
        obj.put(DataElement::new(tags::STUDY_TIME, VR::TM, s("101500")));
        obj.put(DataElement::new(tags::MODALITY, VR::CS, s(&self.modality)));
        obj.put(DataElement::new(tags::MANUFACTURER, VR::LO, s("ACME")));
        obj.put(DataElement::new(tags::STATION_NAME, VR::SH, s("CT01")));
        if let Some(d) = &self.series_description {
            obj.put(DataElement::new(tags::SERIES_DESCRIPTION, VR::LO, s(d)));
        }
        obj.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            s("Phantom^Test"),
        ));
        obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, s("QA")));
        if let Some(t) = self.slice_thickness {
            obj.put(DataElement::new(tags::SLICE_THICKNESS, VR::DS, ds(&[t])));
        }
        obj.put(DataElement::new(tags::KVP, VR::DS, ds(&[120.0])));
        if let Some(k) = &self.kernel {
            obj.put(DataElement::new(
                tags::CONVOLUTION_KERNEL,
                VR::SH,
                PrimitiveValue::Strs(
                    k.split('\\')
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .into(),
                ),
            ));
        }
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            s(STUDY_UID),
        ));
        obj.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            s(&self.series_uid),
        ));
        if let Some(n) = self.series_number {
            obj.put(DataElement::new(
                tags::SERIES_NUMBER,
                VR::IS,
                s(&n.to_string()),
            ));
        }
        if let Some(n) = self.instance_number {
            obj.put(DataElement::new(
                tags::INSTANCE_NUMBER,
                VR::IS,
                s(&n.to_string()),
            ));
        }
        if let Some(p) = self.position {
            obj.put(DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds(&p),
            ));
        }
        if let Some(o) = self.orientation {
            obj.put(DataElement::new(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                ds(&o),
            ));
        }
        obj.put(DataElement::new(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            s(STUDY_UID),
        ));
        if self.rows > 0 {
            obj.put(DataElement::new(
                tags::SAMPLES_PER_PIXEL,
                VR::US,
                PrimitiveValue::from(1u16),
            ));
            obj.put(DataElement::new(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                s("MONOCHROME2"),
            ));
            obj.put(DataElement::new(
                tags::ROWS,
                VR::US,
                PrimitiveValue::from(self.rows as u16),
            ));
            obj.put(DataElement::new(
                tags::COLUMNS,
                VR::US,
                PrimitiveValue::from(self.cols as u16),
            ));
            if let Some(ps) = self.pixel_spacing {
                obj.put(DataElement::new(tags::PIXEL_SPACING, VR::DS, ds(&ps)));
            }
            obj.put(DataElement::new(
                tags::BITS_ALLOCATED,
                VR::US,
                PrimitiveValue::from(16u16),
            ));
            obj.put(DataElement::new(
                tags::BITS_STORED,
                VR::US,
                PrimitiveValue::from(self.bits_stored),
            ));
            obj.put(DataElement::new(
                tags::HIGH_BIT,
                VR::US,
                PrimitiveValue::from(self.bits_stored - 1),
            ));
            obj.put(DataElement::new(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(u16::from(self.signed)),
            ));
            let xs = |v: i64| {
                if self.signed {
                    (VR::SS, PrimitiveValue::from(v as i16))
                } else {
                    (VR::US, PrimitiveValue::from(v as u16))
                }
            };
            if let Some(p) = self.padding {
                let (vr, v) = xs(p);
                obj.put(DataElement::new(tags::PIXEL_PADDING_VALUE, vr, v));
            }
            if let Some(p) = self.padding_limit {
                let (vr, v) = xs(p);
                obj.put(DataElement::new(tags::PIXEL_PADDING_RANGE_LIMIT, vr, v));
            }
            if let Some(i) = self.intercept {
                obj.put(DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, ds(&[i])));
            }
            if let Some(sl) = self.slope {
                obj.put(DataElement::new(tags::RESCALE_SLOPE, VR::DS, ds(&[sl])));
            }
        }
        if self.lossy {
            obj.put(DataElement::new(
                tags::LOSSY_IMAGE_COMPRESSION,
                VR::CS,
                s("01"),
            ));
        }
        if !self.no_pixel_data {
            let mask: i64 = (1i64 << self.bits_stored) - 1;
            let words: Vec<u16> = self.stored.iter().map(|&v| (v & mask) as u16).collect();
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(words.into()),
            ));
        }
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(self.transfer_syntax.as_str())
                .media_storage_sop_class_uid(self.sop_class.as_str())
                .media_storage_sop_instance_uid(self.sop_instance_uid.as_str()),
        )
        .expect("valid file meta")
    }

    pub fn write(&self, path: &Path) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        self.object().write_to_file(path).unwrap();
    }

    /// The HU the loader must produce for this slice (NaN = padding or < −1500 HU).
    pub fn expected_hu(&self) -> Vec<f32> {
        let slope = self.slope.unwrap_or(1.0);
        let intercept = self.intercept.unwrap_or(0.0);
        let pad = self.padding.map(|p| match self.padding_limit {
            Some(l) => (p.min(l), p.max(l)),
            None => (p, p),
        });
        self.stored
            .iter()
            .map(|&v| {
                if matches!(pad, Some((lo, hi)) if v >= lo && v <= hi) {
                    return f32::NAN;
                }
                let h = (v as f64 * slope + intercept) as f32;
                if h < -1500.0 {
                    f32::NAN
                } else {
                    h
                }
            })
            .collect()
    }
}

/// A non-image object (RT Structure Set, SR, ...): no pixel data.
pub fn non_image(
    sop_class: &str,
    modality: &str,
    series_uid: &str,
    sop_uid: &str,
) -> DefaultDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    let s = |v: &str| PrimitiveValue::from(v.to_string());
    obj.put(DataElement::new(tags::SOP_CLASS_UID, VR::UI, s(sop_class)));
    obj.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, s(sop_uid)));
    obj.put(DataElement::new(tags::MODALITY, VR::CS, s(modality)));
    obj.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        s(STUDY_UID),
    ));
    obj.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        s(series_uid),
    ));
    obj.put(DataElement::new(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        s("not an image"),
    ));
    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(sop_class)
            .media_storage_sop_instance_uid(sop_uid),
    )
    .expect("valid file meta")
}

/// Assert two HU images are equal, NaN matching NaN.
pub fn assert_hu_eq(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || g == w,
            "{what}: pixel {i}: got {g}, want {w}"
        );
    }
}

/// One frame of an Enhanced CT object: position z (axial), rescale, stored values.
#[derive(Debug, Clone)]
pub struct Frame {
    pub z: f64,
    pub intercept: f64,
    pub slope: f64,
    pub in_stack_position: i64,
    pub frame_type: String,
    pub stored: Vec<i64>,
}

/// An Enhanced CT Image Storage object (signed 16-bit, explicit VR LE) with shared functional
/// groups (orientation, pixel measures, frame type) and per-frame ones (position, frame content,
/// rescale). `frames` in storage order.
pub fn enhanced_ct(
    series_uid: &str,
    sop_uid: &str,
    rows: usize,
    cols: usize,
    frames: &[Frame],
) -> DefaultDicomObject {
    use dicom_core::value::DataSetSequence;
    let s = |v: &str| PrimitiveValue::from(v.to_string());
    let ds = |v: &[f64]| {
        PrimitiveValue::Strs(v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().into())
    };
    let item =
        |elems: Vec<DataElement<InMemDicomObject>>| InMemDicomObject::from_element_iter(elems);
    let seq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    };

    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(
            vec![
                "ORIGINAL".to_string(),
                "PRIMARY".to_string(),
                "AXIAL".to_string(),
                "NONE".to_string(),
            ]
            .into(),
        ),
    ));
    obj.put(DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        s(uids::ENHANCED_CT_IMAGE_STORAGE),
    ));
    obj.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, s(sop_uid)));
    obj.put(DataElement::new(tags::MODALITY, VR::CS, s("CT")));
    obj.put(DataElement::new(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        s("Enhanced test"),
    ));
    obj.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        s(STUDY_UID),
    ));
    obj.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        s(series_uid),
    ));
    obj.put(DataElement::new(tags::INSTANCE_NUMBER, VR::IS, s("1")));
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        s(&frames.len().to_string()),
    ));
    obj.put(DataElement::new(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    obj.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        s("MONOCHROME2"),
    ));
    obj.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(rows as u16),
    ));
    obj.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(cols as u16),
    ));
    obj.put(DataElement::new(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    obj.put(DataElement::new(
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    obj.put(DataElement::new(
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(15u16),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_PADDING_VALUE,
        VR::SS,
        PrimitiveValue::from(-2000i16),
    ));
    let shared = item(vec![
        seq(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![item(vec![DataElement::new(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                ds(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            )])],
        ),
        seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(vec![
                DataElement::new(tags::SLICE_THICKNESS, VR::DS, ds(&[1.5])),
                DataElement::new(tags::PIXEL_SPACING, VR::DS, ds(&[0.5, 0.5])),
            ])],
        ),
        seq(
            tags::CTX_RAY_DETAILS_SEQUENCE,
            vec![item(vec![DataElement::new(
                tags::KVP,
                VR::DS,
                ds(&[140.0]),
            )])],
        ),
        seq(
            tags::CT_RECONSTRUCTION_SEQUENCE,
            vec![item(vec![DataElement::new(
                tags::CONVOLUTION_KERNEL,
                VR::SH,
                s("FC17"),
            )])],
        ),
    ]);
    obj.put(seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]));
    let per_frame: Vec<InMemDicomObject> = frames
        .iter()
        .map(|f| {
            item(vec![
                seq(
                    tags::FRAME_CONTENT_SEQUENCE,
                    vec![item(vec![DataElement::new(
                        tags::IN_STACK_POSITION_NUMBER,
                        VR::UL,
                        PrimitiveValue::from(f.in_stack_position as u32),
                    )])],
                ),
                seq(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![DataElement::new(
                        tags::IMAGE_POSITION_PATIENT,
                        VR::DS,
                        ds(&[-5.0, -5.0, f.z]),
                    )])],
                ),
                seq(
                    tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                    vec![item(vec![
                        DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, ds(&[f.intercept])),
                        DataElement::new(tags::RESCALE_SLOPE, VR::DS, ds(&[f.slope])),
                        DataElement::new(tags::RESCALE_TYPE, VR::LO, s("HU")),
                    ])],
                ),
                seq(
                    tags::CT_IMAGE_FRAME_TYPE_SEQUENCE,
                    vec![item(vec![DataElement::new(
                        tags::FRAME_TYPE,
                        VR::CS,
                        PrimitiveValue::Strs(
                            f.frame_type
                                .split('\\')
                                .map(|x| x.to_string())
                                .collect::<Vec<_>>()
                                .into(),
                        ),
                    )])],
                ),
            ])
        })
        .collect();
    obj.put(seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));
    let words: Vec<u16> = frames
        .iter()
        .flat_map(|f| f.stored.iter().map(|&v| v as u16))
        .collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(words.into()),
    ));
    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(uids::ENHANCED_CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(sop_uid),
    )
    .expect("valid file meta")
}
