//! Durable, bit-preserving storage of received instances (blocking code: run it with
//! `spawn_blocking`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, OpenFileOptions};

use super::dimse::{status, trim_value};
use super::negotiation::is_analysable_sop_class;
use super::StoredInstance;

/// hu-red's Implementation Class UID (file meta group of every stored file).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.78725397283317785588923680621031131737";
/// hu-red's Implementation Version Name (≤ 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("HURED_", env!("CARGO_PKG_VERSION"));

/// A syntactically valid DICOM UID: 1 to 64 characters, digits and dots, no empty component,
/// no leading zero in a multi-digit component. Only such UIDs become path components.
pub fn is_valid_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && !(c.len() > 1 && c.starts_with('0'))
        })
}

/// Why an instance was not stored, with the status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: u16,
    pub reason: String,
}

impl Failure {
    pub fn resources(reason: impl Into<String>) -> Self {
        Failure {
            status: status::OUT_OF_RESOURCES,
            reason: reason.into(),
        }
    }
    pub fn cannot_understand(reason: impl Into<String>) -> Self {
        Failure {
            status: status::CANNOT_UNDERSTAND,
            reason: reason.into(),
        }
    }
}

/// Create `tmp_dir` (and data_dir) if needed and delete what an earlier run left in it.
pub(crate) fn prepare_tmp_dir(tmp_dir: &Path) -> io::Result<()> {
    fs::create_dir_all(tmp_dir)?;
    let mut removed = 0usize;
    for entry in fs::read_dir(tmp_dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} temp file(s) of instances never acknowledged from {}",
            tmp_dir.display()
        );
    }
    Ok(())
}

/// Who sent an instance and how (what the stored row needs besides the data set).
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub calling_ae: String,
    pub called_ae: String,
    pub peer: String,
    pub transfer_syntax: String,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An instance being received: a temp file holding preamble + file meta + the data set bytes
/// received so far (plus a bounded buffer). Removed on drop unless it was moved into place.
pub(crate) struct TempInstance {
    file: Option<File>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes of preamble + DICM + meta group.
    header_len: u64,
    /// Data set bytes received (written or buffered).
    data_len: u64,
    sop_class: String,
    sop_instance: String,
    origin: Origin,
    done: bool,
}

impl TempInstance {
    /// Create the temp file with the file meta group built from the command's Affected SOP
    /// Class/Instance UIDs (already validated) and the negotiated transfer syntax.
    pub fn create(
        tmp_dir: &Path,
        tag: &str,
        sop_class: &str,
        sop_instance: &str,
        origin: Origin,
    ) -> Result<Self, Failure> {
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(sop_class)
            .media_storage_sop_instance_uid(sop_instance)
            .transfer_syntax(origin.transfer_syntax.as_str())
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
            .source_application_entity_title(origin.calling_ae.as_str())
            .build()
            .map_err(|e| {
                Failure::cannot_understand(format!("cannot build the file meta group: {e}"))
            })?;
        let mut header = Vec::with_capacity(512);
        header.extend_from_slice(&[0u8; 128]);
        header.extend_from_slice(b"DICM");
        meta.write(&mut header).map_err(|e| {
            Failure::cannot_understand(format!("cannot encode the file meta group: {e}"))
        })?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = tmp_dir.join(format!("{}-{tag}-{n}.part", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                Failure::resources(format!("cannot create temp file {}: {e}", path.display()))
            })?;
        let mut me = TempInstance {
            file: None,
            path,
            buf: Vec::new(),
            header_len: header.len() as u64,
            data_len: 0,
            sop_class: sop_class.to_string(),
            sop_instance: sop_instance.to_string(),
            origin,
            done: false,
        };
        file.write_all(&header)
            .map_err(|e| me.io_failure("write", &e))?;
        me.file = Some(file);
        Ok(me)
    }

    fn io_failure(&self, what: &str, e: &io::Error) -> Failure {
        Failure::resources(format!("cannot {what} {}: {e}", self.path.display()))
    }

    /// Append received data set bytes (buffered).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.data_len += data.len() as u64;
    }

    /// Whether the buffer should be written out now.
    pub fn should_flush(&self) -> bool {
        self.buf.len() >= super::FLUSH_BYTES
    }

    /// Write the buffered bytes to the temp file (blocking).
    pub fn flush(&mut self) -> Result<(), Failure> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(Failure::resources("temp file already closed"));
        };
        let r = file.write_all(&self.buf);
        self.buf.clear();
        r.map_err(|e| self.io_failure("write", &e))
    }

    /// Everything received: check the data set, make the file durable and move it into place
    /// (blocking). On error the temp file is removed.
    pub fn finish(mut self, data_dir: &Path) -> Result<StoredInstance, Failure> {
        self.flush()?;
        if self.data_len == 0 {
            return Err(Failure::cannot_understand("empty data set"));
        }
        let header = read_header(&self.path)?;
        if header.sop_instance != self.sop_instance {
            return Err(Failure::cannot_understand(format!(
                "SOPInstanceUID of the data set ({}) differs from the command's AffectedSOPInstanceUID ({})",
                header.sop_instance, self.sop_instance
            )));
        }
        if header.sop_class != self.sop_class {
            return Err(Failure {
                status: status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                reason: format!(
                    "SOPClassUID of the data set ({}) differs from the command's AffectedSOPClassUID ({})",
                    header.sop_class, self.sop_class
                ),
            });
        }
        for (name, uid) in [
            ("StudyInstanceUID", &header.study),
            ("SeriesInstanceUID", &header.series),
        ] {
            if !is_valid_uid(uid) {
                return Err(Failure::cannot_understand(format!(
                    "{name} {uid:?} is not a valid DICOM UID"
                )));
            }
        }
        let Some(file) = self.file.take() else {
            return Err(Failure::resources("temp file already closed"));
        };
        file.sync_data().map_err(|e| self.io_failure("fsync", &e))?;
        drop(file);

        let study_dir = data_dir.join(&header.study);
        let series_dir = study_dir.join(&header.series);
        ensure_dir(&study_dir, data_dir).map_err(|e| {
            Failure::resources(format!("cannot create {}: {e}", study_dir.display()))
        })?;
        ensure_dir(&series_dir, &study_dir).map_err(|e| {
            Failure::resources(format!("cannot create {}: {e}", series_dir.display()))
        })?;
        let file_name = format!("{}.dcm", header.sop_instance);
        let final_path = series_dir.join(&file_name);
        fs::rename(&self.path, &final_path).map_err(|e| {
            Failure::resources(format!(
                "cannot rename {} to {}: {e}",
                self.path.display(),
                final_path.display()
            ))
        })?;
        self.done = true;
        fsync_dir(&series_dir).map_err(|e| {
            Failure::resources(format!("cannot fsync {}: {e}", series_dir.display()))
        })?;
        let size = self.header_len + self.data_len;
        Ok(StoredInstance {
            rel_path: format!("{}/{}/{}", header.study, header.series, file_name),
            analysable: is_analysable_sop_class(&header.sop_class),
            sop_instance_uid: header.sop_instance,
            sop_class_uid: header.sop_class,
            series_instance_uid: header.series,
            study_instance_uid: header.study,
            transfer_syntax: self.origin.transfer_syntax.clone(),
            size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            calling_ae: self.origin.calling_ae.clone(),
            called_ae: self.origin.called_ae.clone(),
            peer: self.origin.peer.clone(),
            modality: header.modality,
            station_name: header.station_name,
            series_description: header.series_description,
            path: final_path,
        })
    }
}

impl Drop for TempInstance {
    fn drop(&mut self) {
        if !self.done {
            drop(self.file.take());
            if let Err(e) = fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!("cannot remove temp file {}: {e}", self.path.display());
                }
            }
        }
    }
}

/// Create `dir` if missing; when created, fsync `parent` so the new entry is durable.
fn ensure_dir(dir: &Path, parent: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => fsync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What the SCP reads from a received data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub sop_instance: String,
    pub sop_class: String,
    pub study: String,
    pub series: String,
    pub modality: Option<String>,
    pub station_name: Option<String>,
    pub series_description: Option<String>,
}

/// Parse the temp file up to Pixel Data (the data set in its transfer syntax; deflate inflated).
pub(crate) fn read_header(path: &Path) -> Result<Header, Failure> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| Failure::cannot_understand(format!("unparsable data set: {e}")))?;
    let text = |tag| -> Option<String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| trim_value(&s).to_string())
            .filter(|s| !s.is_empty())
    };
    let uid = |tag, name: &str| -> Result<String, Failure> {
        let v = text(tag).ok_or_else(|| Failure::cannot_understand(format!("no {name}")))?;
        if is_valid_uid(&v) {
            Ok(v)
        } else {
            Err(Failure::cannot_understand(format!(
                "{name} {v:?} is not a valid DICOM UID"
            )))
        }
    };
    Ok(Header {
        sop_instance: uid(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?,
        sop_class: uid(tags::SOP_CLASS_UID, "SOPClassUID")?,
        study: uid(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?,
        series: uid(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?,
        modality: text(tags::MODALITY),
        station_name: text(tags::STATION_NAME),
        series_description: text(tags::SERIES_DESCRIPTION),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_rules() {
        for ok in ["1.2.840.10008.5.1.4.1.1.2", "0", "1.0.3", "2.25.1234567890"] {
            assert!(is_valid_uid(ok), "{ok}");
        }
        for bad in [
            "",
            "1..2",
            "1.2.",
            ".1",
            "1.02",
            "1.2.a",
            "../../etc",
            "1/2",
            "1.2 ",
            &"1.".repeat(32),
        ] {
            assert!(!is_valid_uid(bad), "{bad}");
        }
        let max = format!("1.{}", "2".repeat(62));
        assert_eq!(max.len(), 64);
        assert!(is_valid_uid(&max));
        assert!(!is_valid_uid(&format!("{max}3")));
        assert!(IMPLEMENTATION_VERSION_NAME.len() <= 16);
        assert!(is_valid_uid(IMPLEMENTATION_CLASS_UID));
    }

    fn origin() -> Origin {
        Origin {
            calling_ae: "CT01".into(),
            called_ae: "HURED_QA".into(),
            peer: "127.0.0.1:1".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
        }
    }

    /// A minimal explicit VR LE data set.
    fn data_set(sop: &str, class: &str, study: &str, series: &str) -> Vec<u8> {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        use dicom_object::InMemDicomObject;
        let mut obj = InMemDicomObject::new_empty();
        for (tag, vr, v) in [
            (tags::SOP_CLASS_UID, VR::UI, class),
            (tags::SOP_INSTANCE_UID, VR::UI, sop),
            (tags::MODALITY, VR::CS, "CT"),
            (tags::STATION_NAME, VR::SH, "CT01 "),
            (tags::STUDY_INSTANCE_UID, VR::UI, study),
            (tags::SERIES_INSTANCE_UID, VR::UI, series),
        ] {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        }
        let mut out = Vec::new();
        obj.write_dataset_with_ts(
            &mut out,
            &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .unwrap();
        out
    }

    #[test]
    fn stores_bit_preserving_and_replaces_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        prepare_tmp_dir(&tmp).unwrap();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let ds = data_set("1.2.3.4", ct, "1.2.3", "1.2.3.1");
        for round in 0..2 {
            let mut t = TempInstance::create(&tmp, "1-1", ct, "1.2.3.4", origin()).unwrap();
            // split arbitrarily, as PDVs would
            t.push(&ds[..10]);
            t.push(&ds[10..]);
            let stored = t.finish(dir.path()).unwrap();
            assert_eq!(
                stored.rel_path, "1.2.3/1.2.3.1/1.2.3.4.dcm",
                "round {round}"
            );
            assert!(stored.analysable);
            assert_eq!(stored.station_name.as_deref(), Some("CT01"));
            assert_eq!(stored.modality.as_deref(), Some("CT"));
            let bytes = fs::read(&stored.path).unwrap();
            assert_eq!(bytes.len() as i64, stored.size_bytes);
            assert!(bytes.ends_with(&ds), "data set stored as received");
            assert_eq!(&bytes[128..132], b"DICM");
            let obj = dicom_object::open_file(&stored.path).unwrap();
            assert_eq!(obj.meta().transfer_syntax(), "1.2.840.10008.1.2.1");
            assert_eq!(obj.meta().source_application_entity_title(), Some("CT01"));
            assert_eq!(
                obj.meta().implementation_class_uid(),
                IMPLEMENTATION_CLASS_UID
            );
        }
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "no temp file left");
    }

    #[test]
    fn failures_leave_no_temp_file_and_map_to_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        prepare_tmp_dir(&tmp).unwrap();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let sc = "1.2.840.10008.5.1.4.1.1.7";
        let cases: Vec<(Vec<u8>, &str, &str, u16)> = vec![
            // instance mismatch
            (
                data_set("1.2.3.5", ct, "1.2.3", "1.2.3.1"),
                ct,
                "1.2.3.4",
                0xC000,
            ),
            // class mismatch
            (
                data_set("1.2.3.4", sc, "1.2.3", "1.2.3.1"),
                ct,
                "1.2.3.4",
                0xA900,
            ),
            // path traversal attempt in a UID
            (
                data_set("1.2.3.4", ct, "../..", "1.2.3.1"),
                ct,
                "1.2.3.4",
                0xC000,
            ),
            (
                data_set("1.2.3.4", ct, "1.2.3", "1.02"),
                ct,
                "1.2.3.4",
                0xC000,
            ),
            // garbage
            (vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3], ct, "1.2.3.4", 0xC000),
            (Vec::new(), ct, "1.2.3.4", 0xC000),
        ];
        for (ds, class, sop, expected) in cases {
            let mut t = TempInstance::create(&tmp, "1-2", class, sop, origin()).unwrap();
            t.push(&ds);
            let err = t.finish(dir.path()).unwrap_err();
            assert_eq!(err.status, expected, "{}", err.reason);
        }
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
        // only tmp/ exists: nothing was stored
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        // an unwritable destination (a file where the study folder should be) → out of resources
        fs::write(dir.path().join("1.2.3"), b"x").unwrap();
        let mut t = TempInstance::create(&tmp, "1-3", ct, "1.2.3.4", origin()).unwrap();
        t.push(&data_set("1.2.3.4", ct, "1.2.3", "1.2.3.1"));
        assert_eq!(t.finish(dir.path()).unwrap_err().status, 0xA700);
        // tmp/ not a folder → cannot even create the temp file
        fs::remove_dir(&tmp).unwrap();
        fs::write(&tmp, b"x").unwrap();
        let e = TempInstance::create(&tmp, "1-4", ct, "1.2.3.4", origin())
            .err()
            .unwrap();
        assert_eq!(e.status, 0xA700);
    }

    #[test]
    fn prepare_cleans_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(tmp.join("sub")).unwrap();
        fs::write(tmp.join("a.part"), b"x").unwrap();
        prepare_tmp_dir(&tmp).unwrap();
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }
}
