//! DICOM files with or without the Part-10 header.
//!
//! Some exports (GE among others) write each image as a bare data set: no 128-byte preamble, no
//! "DICM", no file meta group, usually implicit VR little endian, under any file name. pydicom and
//! DCMTK read them; so does hu-red. [`sniff`] tells from a file's first bytes how it is laid out
//! (and whether it is DICOM at all), [`open`] reads every layout into the same in-memory object.
//!
//! For a bare data set a file meta group is synthesised: Transfer Syntax = the detected one,
//! Media Storage SOP Class / Instance UID = SOP Class / Instance UID of the data set. It is put
//! in front of the file's bytes and the whole is read by dicom-object (`OpenFileOptions`, which
//! keeps `read_until` for header scans); everything downstream (header parsing, pixel decoding
//! with dicom-pixeldata, re-encoding) sees an ordinary object. The parsing is dicom-object's:
//! [`sniff`] only looks at the first few element headers to keep arbitrary files (text, images,
//! `truth.json`, a README) from being taken for data sets.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::uids;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

/// How many bytes of a file [`sniff`] looks at.
const HEAD_LEN: usize = 4096;
/// Element headers [`sniff`] checks before it is convinced.
const ELEMENTS_CHECKED: usize = 8;
/// The first element of a bare data set must be in a group from 0008 (identification) to 0028
/// (image pixel description): exports start with group 0008, stripped ones a little later.
const FIRST_GROUP: std::ops::RangeInclusive<u16> = 0x0008..=0x0028;

/// How a DICOM file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FileLayout {
    /// Part 10: 128-byte preamble, "DICM", file meta group, data set (or the same without the
    /// preamble, starting with "DICM", which dicom-object reads as it is).
    Part10,
    /// The file meta group at byte 0, without preamble and without "DICM".
    MetaWithoutPreamble,
    /// A bare data set: no preamble, no "DICM", no file meta group.
    RawDataSet {
        /// Explicit VR little endian (else implicit VR little endian).
        explicit: bool,
    },
}

impl FileLayout {
    /// The transfer syntax of a bare data set.
    pub(crate) fn raw_transfer_syntax(self) -> Option<&'static str> {
        match self {
            FileLayout::RawDataSet { explicit: true } => Some(uids::EXPLICIT_VR_LITTLE_ENDIAN),
            FileLayout::RawDataSet { explicit: false } => Some(uids::IMPLICIT_VR_LITTLE_ENDIAN),
            _ => None,
        }
    }

    /// Without the Part-10 header (the file meta group or the preamble and "DICM" missing).
    pub(crate) fn is_headerless(self) -> bool {
        self != FileLayout::Part10
    }

    /// A short description for messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FileLayout::Part10 => "DICOM Part-10 file",
            FileLayout::MetaWithoutPreamble => "file meta group without preamble and DICM marker",
            FileLayout::RawDataSet { explicit: true } => "raw explicit VR little endian",
            FileLayout::RawDataSet { explicit: false } => "raw implicit VR little endian",
        }
    }
}

/// Why a file could not be opened as DICOM.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a DICOM file (no DICM marker, and the first bytes are not a DICOM data set)")]
    NotDicom,
    #[error("{0}")]
    Read(#[from] dicom_object::ReadError),
    #[error("cannot synthesise a file meta group: {0}")]
    Meta(#[from] dicom_object::meta::Error),
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The explicit-VR element header is 12 bytes long (2 reserved bytes, 32-bit length) for these.
fn has_long_header(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        OB | OD | OF | OL | OV | OW | SQ | UC | UN | UR | UT | SV | UV
    )
}

fn vr_at(head: &[u8], at: usize) -> Option<VR> {
    let (a, b) = (head[at], head[at + 1]);
    if a.is_ascii_uppercase() && b.is_ascii_uppercase() {
        VR::from_binary([a, b])
    } else {
        None
    }
}

/// Do the first element headers of `head` (the start of a file of `file_len` bytes) read as a
/// data set in this encoding: tags strictly increasing, in groups 0008 and above, values within
/// the file? Checks up to [`ELEMENTS_CHECKED`] elements; at least two must be seen unless the
/// first one ends the file. A value running past the end after two good elements is accepted
/// (a truncated file: the parse will say so).
fn walks_as_data_set(head: &[u8], file_len: u64, explicit: bool) -> bool {
    let mut pos = 0usize;
    let mut prev: Option<Tag> = None;
    let mut n = 0usize;
    loop {
        if pos as u64 == file_len {
            return n >= 1;
        }
        if n >= ELEMENTS_CHECKED {
            return true;
        }
        if pos + 8 > head.len() {
            return n >= 2;
        }
        let tag = Tag(le16(head, pos), le16(head, pos + 2));
        if tag.group() < 0x0008 || tag.group() == 0xFFFE || prev.is_some_and(|p| tag <= p) {
            return false;
        }
        let (header_len, len, undefined_ok) = if explicit {
            let Some(vr) = vr_at(head, pos + 4) else {
                return false;
            };
            if has_long_header(vr) {
                if pos + 12 > head.len() {
                    return n >= 2;
                }
                if head[pos + 6] != 0 || head[pos + 7] != 0 {
                    return false;
                }
                let undefined_ok = matches!(vr, VR::SQ | VR::UN | VR::OB | VR::OW);
                (12usize, le32(head, pos + 8), undefined_ok)
            } else {
                (8, u32::from(le16(head, pos + 6)), false)
            }
        } else {
            // implicit VR: any element may be a sequence of undefined length
            (8, le32(head, pos + 4), true)
        };
        n += 1;
        if len == u32::MAX {
            // undefined length (a sequence, or encapsulated pixel data): items follow, stop here
            return undefined_ok && n >= 2;
        }
        let end = pos as u64 + header_len as u64 + u64::from(len);
        if end > file_len {
            return n >= 2;
        }
        pos = end as usize;
        prev = Some(tag);
    }
}

/// The layout of a file from its first bytes (`head`, up to [`HEAD_LEN`]) and its size;
/// `None` when it does not look like DICOM at all.
pub(crate) fn sniff_bytes(head: &[u8], file_len: u64) -> Option<FileLayout> {
    if (head.len() >= 132 && &head[128..132] == b"DICM") || head.starts_with(b"DICM") {
        return Some(FileLayout::Part10);
    }
    if head.len() < 8 {
        return None;
    }
    let group = le16(head, 0);
    if group == 0x0002 {
        // the file meta group is always explicit VR little endian
        return vr_at(head, 4).map(|_| FileLayout::MetaWithoutPreamble);
    }
    if group % 2 != 0 || !FIRST_GROUP.contains(&group) {
        return None;
    }
    // two upper-case letters forming a VR right after the first tag: explicit VR (in implicit VR
    // these bytes are the low half of the length, which would be ≥ 0x4141 for the first element)
    let order: &[bool] = if vr_at(head, 4).is_some() {
        &[true, false]
    } else {
        &[false]
    };
    order
        .iter()
        .copied()
        .find(|&explicit| walks_as_data_set(head, file_len, explicit))
        .map(|explicit| FileLayout::RawDataSet { explicit })
}

/// The layout of the file at `path`; `Ok(None)` when it is not DICOM.
pub(crate) fn sniff(path: &Path) -> io::Result<Option<FileLayout>> {
    let f = File::open(path)?;
    let file_len = f.metadata()?.len();
    let mut head = Vec::with_capacity(HEAD_LEN);
    f.take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(sniff_bytes(&head, file_len))
}

/// "DICM" and a file meta group for a bare data set in `ts`, with empty Media Storage SOP Class
/// and Instance UIDs: dicom-object fills them from the data set's SOP Class / Instance UID.
fn synthetic_meta(ts: &str) -> Result<Vec<u8>, dicom_object::meta::Error> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .media_storage_sop_class_uid("")
        .media_storage_sop_instance_uid("")
        .build()?;
    let mut bytes = b"DICM".to_vec();
    meta.write(&mut bytes)?;
    Ok(bytes)
}

/// Read the file at `path`, laid out as `layout` (from [`sniff`]), into an object with a file
/// meta group; with `read_until`, stop before that tag (as `OpenFileOptions::read_until`).
pub(crate) fn open(
    path: &Path,
    layout: FileLayout,
    read_until: Option<Tag>,
) -> Result<DefaultDicomObject, OpenError> {
    let mut options = OpenFileOptions::new();
    if let Some(tag) = read_until {
        options = options.read_until(tag);
    }
    let obj = match layout {
        FileLayout::Part10 => options.open_file(path)?,
        FileLayout::MetaWithoutPreamble => {
            let file = BufReader::new(File::open(path)?);
            options
                .read_preamble(ReadPreamble::Never)
                .from_reader(io::Cursor::new(b"DICM").chain(file))?
        }
        FileLayout::RawDataSet { .. } => {
            let ts = layout
                .raw_transfer_syntax()
                .unwrap_or(uids::IMPLICIT_VR_LITTLE_ENDIAN);
            let meta = synthetic_meta(ts)?;
            let file = BufReader::new(File::open(path)?);
            options
                .read_preamble(ReadPreamble::Never)
                .from_reader(io::Cursor::new(meta).chain(file))?
        }
    };
    Ok(obj)
}

/// Sniff and read a whole file, whatever its layout.
pub(crate) fn open_any(path: &Path) -> Result<(DefaultDicomObject, FileLayout), OpenError> {
    let layout = sniff(path)?.ok_or(OpenError::NotDicom)?;
    Ok((open(path, layout, None)?, layout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::header::Header;
    use dicom_core::value::PrimitiveValue;
    use dicom_core::DataElement;
    use dicom_dictionary_std::tags;
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    use dicom_object::InMemDicomObject;
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

    const SOP: &str = "1.2.826.0.1.3680043.8.498.77";

    fn ct_object() -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        let mut put = |tag, vr, v: PrimitiveValue| obj.put(DataElement::new(tag, vr, v));
        put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100".into());
        put(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL".into());
        put(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE.into());
        put(tags::SOP_INSTANCE_UID, VR::UI, SOP.into());
        put(tags::MODALITY, VR::CS, "CT".into());
        put(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3".into());
        put(tags::ROWS, VR::US, 4u16.into());
        put(tags::COLUMNS, VR::US, 3u16.into());
        put(tags::BITS_ALLOCATED, VR::US, 16u16.into());
        let words: Vec<u16> = (0..12).collect();
        put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()));
        obj
    }

    fn raw_bytes(obj: &InMemDicomObject, ts: &str) -> Vec<u8> {
        let ts = TransferSyntaxRegistry.get(ts).unwrap();
        let mut out = Vec::new();
        obj.write_dataset_with_ts(&mut out, ts).unwrap();
        out
    }

    fn part10_bytes(obj: &InMemDicomObject, ts: &str) -> Vec<u8> {
        let file = obj
            .clone()
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(ts))
            .unwrap();
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        file.meta().write(&mut out).unwrap();
        out.extend_from_slice(&raw_bytes(obj, ts));
        out
    }

    fn sniff_of(bytes: &[u8]) -> Option<FileLayout> {
        sniff_bytes(&bytes[..bytes.len().min(HEAD_LEN)], bytes.len() as u64)
    }

    #[test]
    fn sniff_tells_the_layouts_apart() {
        let obj = ct_object();
        let implicit = raw_bytes(&obj, uids::IMPLICIT_VR_LITTLE_ENDIAN);
        let explicit = raw_bytes(&obj, uids::EXPLICIT_VR_LITTLE_ENDIAN);
        let p10 = part10_bytes(&obj, uids::IMPLICIT_VR_LITTLE_ENDIAN);
        assert_eq!(
            sniff_of(&implicit),
            Some(FileLayout::RawDataSet { explicit: false })
        );
        assert_eq!(
            sniff_of(&explicit),
            Some(FileLayout::RawDataSet { explicit: true })
        );
        assert_eq!(sniff_of(&p10), Some(FileLayout::Part10));
        assert_eq!(sniff_of(&p10[128..]), Some(FileLayout::Part10));
        assert_eq!(sniff_of(&p10[132..]), Some(FileLayout::MetaWithoutPreamble));
        // a raw file cut in its pixel data, or in its header after a few elements, is still a
        // (damaged) data set: the parse reports it
        assert!(sniff_of(&implicit[..implicit.len() - 5]).is_some());
        assert!(sniff_of(&implicit[..60]).is_some());
    }

    #[test]
    fn sniff_refuses_what_is_not_a_data_set() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
        ];
        let mut json = br#"{"generator": "hu-red simulate", "seed": 1}"#.to_vec();
        json.extend_from_slice(&[b' '; 300]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("text", b"phantom scan of 2025-01-01\n".to_vec()),
            ("json", json),
            ("png", png.to_vec()),
            ("zeros", vec![0u8; 300]),
            ("ff", vec![0xFFu8; 300]),
            // group 0008 but the length runs past the end of the file at once
            ("bad length", vec![0x08, 0, 0x05, 0, 0xFF, 0xFF, 0, 0, 1, 2]),
            // group 0008, then a tag going backwards
            (
                "decreasing tags",
                vec![
                    0x08, 0, 0x16, 0, 2, 0, 0, 0, b'1', 0, 0x08, 0, 0x05, 0, 2, 0, 0, 0, b'1', 0,
                ],
            ),
            // an odd group first
            ("odd group", vec![0x09, 0, 0x10, 0, 2, 0, 0, 0, b'G', b'E']),
            // a group beyond the first ones an export starts with
            (
                "pixel data first",
                vec![0xE0, 0x7F, 0x10, 0, 2, 0, 0, 0, 1, 2],
            ),
        ];
        for (what, bytes) in cases {
            assert_eq!(sniff_of(&bytes), None, "{what}");
        }
        // pseudo-random bytes: never a data set
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..512)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            assert_eq!(sniff_of(&bytes), None, "{:?}", &bytes[..8]);
        }
    }

    #[test]
    fn every_layout_opens_to_the_same_object_with_a_file_meta_group() {
        let dir = tempfile::tempdir().unwrap();
        let obj = ct_object();
        for (ts, explicit) in [
            (uids::IMPLICIT_VR_LITTLE_ENDIAN, false),
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, true),
        ] {
            let p10 = part10_bytes(&obj, ts);
            let reference = dir.path().join("reference.dcm");
            std::fs::write(&reference, &p10).unwrap();
            let reference = dicom_object::open_file(&reference).unwrap();
            let elements = |o: &DefaultDicomObject| -> Vec<(Tag, Vec<u8>)> {
                o.iter()
                    .map(|e| (e.tag(), e.to_bytes().unwrap().to_vec()))
                    .collect()
            };
            let files = [
                ("p10.dcm", p10.clone(), FileLayout::Part10),
                ("nopre", p10[128..].to_vec(), FileLayout::Part10),
                (
                    "metaonly",
                    p10[132..].to_vec(),
                    FileLayout::MetaWithoutPreamble,
                ),
                (
                    "IM0001",
                    raw_bytes(&obj, ts),
                    FileLayout::RawDataSet { explicit },
                ),
            ];
            for (name, bytes, layout) in files {
                let path = dir.path().join(name);
                std::fs::write(&path, &bytes).unwrap();
                let (got, got_layout) = open_any(&path).unwrap();
                assert_eq!(got_layout, layout, "{ts} {name}");
                assert_eq!(got.meta().transfer_syntax(), ts, "{ts} {name}");
                assert_eq!(got.meta().media_storage_sop_instance_uid(), SOP);
                assert_eq!(
                    got.meta().media_storage_sop_class_uid(),
                    uids::CT_IMAGE_STORAGE
                );
                // the same data set, element for element, as the Part-10 file's
                assert_eq!(elements(&got), elements(&reference), "{ts} {name}");
                // the header only
                let head = open(&path, layout, Some(tags::PIXEL_DATA)).unwrap();
                assert!(head.get(tags::PIXEL_DATA).is_none());
                assert!(head.get(tags::ROWS).is_some());
            }
        }
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "not dicom").unwrap();
        assert!(matches!(open_any(&txt), Err(OpenError::NotDicom)));
        // a raw file cut in its pixel data: the header reads, the whole file does not
        let cut = dir.path().join("IM0002");
        let bytes = raw_bytes(&obj, uids::IMPLICIT_VR_LITTLE_ENDIAN);
        std::fs::write(&cut, &bytes[..bytes.len() - 6]).unwrap();
        let layout = sniff(&cut).unwrap().unwrap();
        assert!(open(&cut, layout, Some(tags::PIXEL_DATA)).is_ok());
        assert!(open(&cut, layout, None).is_err());
    }
}
