//! Finding DICOM files, reading their headers (not their pixel data) and checking, cheaply, that
//! the pixel data of the CT images is complete.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rayon::prelude::*;

use super::header::{is_classic_ct, is_enhanced_ct, SliceHeader, Source};
use super::raw::{self, sniff, FileLayout};
use super::DicomError;

/// What reading one file's header gave.
pub(crate) enum Scanned {
    Header(Box<SliceHeader>),
    /// Not a DICOM file (no "DICM" marker, and not a raw data set either): a README, a
    /// thumbnail, ...
    NotDicom {
        path: PathBuf,
        reason: String,
    },
    /// A DICOM file we could not use: unreadable header, truncated pixel data, ...
    Unreadable {
        path: PathBuf,
        reason: String,
        /// The series it belongs to, when the header could be read.
        series_uid: Option<String>,
    },
}

/// All regular files under `path` (recursively), sorted; or `path` itself if it is a file.
pub(crate) fn list_files(path: &Path) -> Result<(Vec<PathBuf>, Vec<String>), DicomError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DicomError::PathNotFound {
                path: path.to_path_buf(),
            }
        } else {
            DicomError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    if meta.is_file() {
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for entry in walkdir::WalkDir::new(path).follow_links(true) {
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            Err(e) => problems.push(format!("could not list {}: {e}", path_of(&e, path))),
        }
    }
    files.sort();
    Ok((files, problems))
}

fn path_of(e: &walkdir::Error, root: &Path) -> String {
    e.path().unwrap_or(root).display().to_string()
}

/// Read the headers of all files in parallel.
pub(crate) fn scan_files(files: &[PathBuf]) -> Vec<Scanned> {
    files.par_iter().map(|p| scan_file(p)).collect()
}

pub(crate) fn scan_file(path: &Path) -> Scanned {
    let layout = match sniff(path) {
        Ok(Some(layout)) => layout,
        Ok(None) => {
            return Scanned::NotDicom {
                path: path.to_path_buf(),
                reason: "no DICM marker, not a DICOM data set".into(),
            }
        }
        Err(e) => {
            return Scanned::Unreadable {
                path: path.to_path_buf(),
                reason: format!("cannot read: {e}"),
                series_uid: None,
            }
        }
    };
    let obj = match raw::open(path, layout, Some(tags::PIXEL_DATA)) {
        Ok(o) => o,
        Err(e) => {
            let what = if layout.is_headerless() {
                format!(" ({})", layout.describe())
            } else {
                String::new()
            };
            return Scanned::Unreadable {
                path: path.to_path_buf(),
                reason: format!("cannot parse the DICOM header{what}: {e}"),
                series_uid: None,
            };
        }
    };
    let header = SliceHeader::from_object(
        &obj,
        Source::File(path.to_path_buf(), layout),
        path.display().to_string(),
    );
    drop(obj);
    if layout.is_headerless() && !looks_like_an_instance(&header) {
        // the first bytes parsed, but what came out is no DICOM instance: not DICOM after all
        return Scanned::NotDicom {
            path: path.to_path_buf(),
            reason: "no DICM marker, and no SOP Instance UID or image attributes when read as a raw data set".into(),
        };
    }
    if is_classic_ct(&header.sop_class_uid) || is_enhanced_ct(&header.sop_class_uid) {
        if let Err(reason) = check_file_pixel_data(path, layout, &header) {
            return Scanned::Unreadable {
                path: path.to_path_buf(),
                reason,
                series_uid: Some(header.series_instance_uid.clone()),
            };
        }
    }
    Scanned::Header(Box::new(header))
}

/// A data set read without a Part-10 header is taken for a DICOM instance only when it has a
/// SOP Instance UID or image attributes (Rows and Columns).
fn looks_like_an_instance(h: &SliceHeader) -> bool {
    !h.sop_instance_uid.is_empty() || (h.rows.is_some() && h.columns.is_some())
}

/// Check that a file's pixel data is all there, without reading it: for native syntaxes the
/// Pixel Data element must be the last one and hold Rows × Columns × BitsAllocated/8 × frames
/// bytes; for encapsulated ones the file must end with the sequence delimiter. When this quick
/// look is inconclusive (deflate, trailing elements, ...), the whole file is parsed.
fn check_file_pixel_data(path: &Path, layout: FileLayout, h: &SliceHeader) -> Result<(), String> {
    let frames = h.number_of_frames.unwrap_or(1).max(1) as usize;
    let expected = h
        .expected_frame_bytes()
        .and_then(|b| b.checked_mul(frames))
        .ok_or_else(|| {
            format!(
                "incomplete image attributes (Rows {:?}, Columns {:?}, BitsAllocated {:?})",
                h.rows, h.columns, h.bits_allocated
            )
        })?;
    match quick_pixel_check(path, &h.transfer_syntax, expected) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(format!("cannot read: {e}")),
    }
    // inconclusive: parse the whole file
    let obj = raw::open(path, layout, None)
        .map_err(|e| format!("cannot read the whole file (truncated or damaged?): {e}"))?;
    check_object_pixel_data(&obj, h)
}

/// The quick look: `Ok(true)` when the file certainly holds complete pixel data of `expected`
/// bytes (native) or ends with the pixel sequence delimiter (encapsulated); `Ok(false)` when
/// that cannot be told this way.
fn quick_pixel_check(path: &Path, ts_uid: &str, expected: usize) -> std::io::Result<bool> {
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return Ok(false);
    };
    let mut f = File::open(path)?;
    let size = f.metadata()?.len();
    if ts.is_encapsulated_pixel_data() {
        if size < 8 {
            return Ok(false);
        }
        let mut tail = [0u8; 8];
        f.seek(SeekFrom::Start(size - 8))?;
        f.read_exact(&mut tail)?;
        return Ok(tail == [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    }
    let explicit = match ts.uid() {
        uids::EXPLICIT_VR_LITTLE_ENDIAN => true,
        uids::IMPLICIT_VR_LITTLE_ENDIAN => false,
        _ => return Ok(false),
    };
    let header_len: u64 = if explicit { 12 } else { 8 };
    for value_len in [expected as u64, expected as u64 + 1] {
        let Some(start) = size.checked_sub(value_len + header_len) else {
            continue;
        };
        let mut buf = [0u8; 12];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..header_len as usize])?;
        let tag_ok = buf[0..4] == [0xE0, 0x7F, 0x10, 0x00];
        let len_ok = if explicit {
            (&buf[4..6] == b"OW" || &buf[4..6] == b"OB")
                && u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as u64 == value_len
        } else {
            u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as u64 == value_len
        };
        if tag_ok && len_ok {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Check an in-memory object's pixel data: present, and long enough when native.
pub(crate) fn check_object_pixel_data(
    obj: &dicom_object::DefaultDicomObject,
    h: &SliceHeader,
) -> Result<(), String> {
    let frames = h.number_of_frames.unwrap_or(1).max(1) as usize;
    let expected = h
        .expected_frame_bytes()
        .and_then(|b| b.checked_mul(frames))
        .ok_or_else(|| {
            format!(
                "incomplete image attributes (Rows {:?}, Columns {:?}, BitsAllocated {:?})",
                h.rows, h.columns, h.bits_allocated
            )
        })?;
    let elem = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| "no Pixel Data".to_string())?;
    match elem.value() {
        dicom_core::DicomValue::PixelSequence(seq) => {
            if seq.fragments().is_empty() {
                Err("encapsulated Pixel Data has no fragments".into())
            } else {
                Ok(())
            }
        }
        dicom_core::DicomValue::Primitive(p) => {
            let have = p.calculate_byte_len();
            if have < expected {
                Err(format!(
                    "Pixel Data holds {have} bytes, {expected} expected for {}×{} pixels of {} bits: the file is truncated",
                    h.rows.unwrap_or(0),
                    h.columns.unwrap_or(0),
                    h.bits_allocated.unwrap_or(0)
                ))
            } else {
                Ok(())
            }
        }
        dicom_core::DicomValue::Sequence(_) => Err("Pixel Data is a sequence".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

    fn write_ct(path: &Path, ts: &str, rows: u16, cols: u16) {
        let mut obj = InMemDicomObject::new_empty();
        let put = |o: &mut InMemDicomObject, tag, vr, v: PrimitiveValue| {
            o.put(DataElement::new(tag, vr, v));
        };
        put(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::CT_IMAGE_STORAGE.into(),
        );
        put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4".into());
        put(&mut obj, tags::MODALITY, VR::CS, "CT".into());
        put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3".into());
        put(&mut obj, tags::SAMPLES_PER_PIXEL, VR::US, 1u16.into());
        put(&mut obj, tags::ROWS, VR::US, rows.into());
        put(&mut obj, tags::COLUMNS, VR::US, cols.into());
        put(&mut obj, tags::BITS_ALLOCATED, VR::US, 16u16.into());
        put(&mut obj, tags::BITS_STORED, VR::US, 16u16.into());
        put(&mut obj, tags::HIGH_BIT, VR::US, 15u16.into());
        put(&mut obj, tags::PIXEL_REPRESENTATION, VR::US, 1u16.into());
        let words = vec![7u16; usize::from(rows) * usize::from(cols)];
        put(
            &mut obj,
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(words.into()),
        );
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid("1.2.3.4"),
        )
        .unwrap()
        .write_to_file(path)
        .unwrap();
    }

    #[test]
    fn quick_check_accepts_complete_native_files_and_rejects_cut_ones() {
        let dir = tempfile::tempdir().unwrap();
        for ts in [
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            uids::IMPLICIT_VR_LITTLE_ENDIAN,
        ] {
            let p = dir.path().join("ct.dcm");
            write_ct(&p, ts, 8, 6);
            assert!(quick_pixel_check(&p, ts, 8 * 6 * 2).unwrap(), "{ts}");
            // the whole scan agrees
            match scan_file(&p) {
                Scanned::Header(h) => assert_eq!(h.rows, Some(8)),
                _ => panic!("{ts}: complete file refused"),
            }
            // cut 10 bytes of pixel data: the quick look fails, and the full parse too
            let len = std::fs::metadata(&p).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(len - 10)
                .unwrap();
            assert!(!quick_pixel_check(&p, ts, 8 * 6 * 2).unwrap(), "{ts}");
            match scan_file(&p) {
                Scanned::Unreadable {
                    reason, series_uid, ..
                } => {
                    assert_eq!(series_uid.as_deref(), Some("1.2.3"));
                    assert!(reason.contains("truncated"), "{reason}");
                }
                _ => panic!("{ts}: truncated file accepted"),
            }
        }
    }

    /// The data set of a Part-10 file, written bare (no preamble, no file meta) in `ts`.
    fn strip_to_raw(part10: &Path, raw: &Path, ts: &str) {
        let obj = dicom_object::open_file(part10).unwrap();
        let ts = TransferSyntaxRegistry.get(ts).unwrap();
        let mut out = Vec::new();
        obj.write_dataset_with_ts(&mut out, ts).unwrap();
        std::fs::write(raw, out).unwrap();
    }

    #[test]
    fn raw_data_sets_scan_like_part10_files() {
        let dir = tempfile::tempdir().unwrap();
        for (ts, explicit) in [
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, true),
            (uids::IMPLICIT_VR_LITTLE_ENDIAN, false),
        ] {
            let p10 = dir.path().join("ct.dcm");
            write_ct(&p10, ts, 8, 6);
            let raw = dir.path().join("IM0001");
            strip_to_raw(&p10, &raw, ts);
            assert!(quick_pixel_check(&raw, ts, 8 * 6 * 2).unwrap(), "{ts}");
            match scan_file(&raw) {
                Scanned::Header(h) => {
                    assert_eq!(h.rows, Some(8));
                    assert_eq!(h.transfer_syntax, ts);
                    assert_eq!(h.sop_instance_uid, "1.2.3.4");
                    assert!(matches!(
                        h.source,
                        Source::File(_, FileLayout::RawDataSet { explicit: e }) if e == explicit
                    ));
                }
                _ => panic!("{ts}: raw file refused"),
            }
            // cut: reported as a truncated file of its series, as a Part-10 file would be
            let len = std::fs::metadata(&raw).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&raw)
                .unwrap()
                .set_len(len - 10)
                .unwrap();
            match scan_file(&raw) {
                Scanned::Unreadable {
                    reason, series_uid, ..
                } => {
                    assert_eq!(series_uid.as_deref(), Some("1.2.3"));
                    assert!(reason.contains("truncated"), "{reason}");
                }
                _ => panic!("{ts}: truncated raw file accepted"),
            }
        }
        // a data set that parses but holds no instance (no SOP Instance UID, no image): not DICOM
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from("ISO_IR 100"),
        ));
        obj.put(DataElement::new(
            tags::STUDY_DATE,
            VR::DA,
            PrimitiveValue::from("20250101"),
        ));
        let mut out = Vec::new();
        obj.write_dataset_with_ts(
            &mut out,
            TransferSyntaxRegistry
                .get(uids::IMPLICIT_VR_LITTLE_ENDIAN)
                .unwrap(),
        )
        .unwrap();
        let odd = dir.path().join("odd");
        std::fs::write(&odd, out).unwrap();
        match scan_file(&odd) {
            Scanned::NotDicom { reason, .. } => assert!(reason.contains("no DICM"), "{reason}"),
            _ => panic!("an empty data set taken for an instance"),
        }
    }

    #[test]
    fn trailing_elements_fall_back_to_a_full_parse() {
        // a complete file with bytes after the pixel data: the quick look cannot tell, the full
        // parse accepts it
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ct.dcm");
        write_ct(&p, uids::EXPLICIT_VR_LITTLE_ENDIAN, 4, 4);
        let mut bytes = std::fs::read(&p).unwrap();
        // (FFFC,FFFC) DataSetTrailingPadding, OB, 4 bytes
        bytes.extend_from_slice(&[
            0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
        ]);
        std::fs::write(&p, &bytes).unwrap();
        assert!(!quick_pixel_check(&p, uids::EXPLICIT_VR_LITTLE_ENDIAN, 32).unwrap());
        assert!(matches!(scan_file(&p), Scanned::Header(_)));
    }

    #[test]
    fn non_dicom_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x.txt"), "x").unwrap();
        std::fs::write(dir.path().join("y"), vec![0u8; 10]).unwrap();
        let (files, problems) = list_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(problems.is_empty());
        assert!(files
            .iter()
            .all(|f| matches!(scan_file(f), Scanned::NotDicom { .. })));
        assert!(matches!(
            list_files(&dir.path().join("missing")),
            Err(DicomError::PathNotFound { .. })
        ));
    }
}
