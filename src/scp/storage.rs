//! Durable, bit-preserving storage of received instances (blocking code: run it with
//! `spawn_blocking`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{FileMetaTableBuilder, OpenFileOptions};

use super::completeness::{self, requires_pixel_data, Incomplete};
use super::dimse::{status, trim_value};
use super::negotiation::is_analysable_sop_class;
use super::{InstanceRecord, StoredInstance};
use crate::durable;

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

impl From<Incomplete> for Failure {
    /// An incomplete data set cannot be understood; a temp file that cannot be read back is
    /// ours to fix.
    fn from(e: Incomplete) -> Self {
        if e.is_local() {
            Failure::resources(e.to_string())
        } else {
            Failure::cannot_understand(e.to_string())
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

/// Data set bytes kept in memory to parse the header from (no second read of the file when the
/// elements before Pixel Data fit, as they do in every CT image).
const HEADER_PREFIX_BYTES: usize = 64 << 10;

/// An instance being received: a temp file holding preamble + file meta + the data set bytes
/// received so far. The data set is written in chunks of about [`super::WRITE_CHUNK_BYTES`] while
/// the rest arrives, and the kernel is asked to start writing each chunk back at once, so that
/// the fsync before the response has little left to wait for. Removed on drop unless it was
/// moved into place.
pub(crate) struct TempInstance {
    file: Option<Arc<File>>,
    path: PathBuf,
    /// Preamble + DICM + meta group (also written at the start of the file).
    header: Vec<u8>,
    /// Data set bytes received and not yet handed to a write.
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    written: u64,
    /// The first [`HEADER_PREFIX_BYTES`] of the data set.
    prefix: Vec<u8>,
    /// Data set bytes received (written or buffered).
    data_len: u64,
    sop_class: String,
    sop_instance: String,
    origin: Origin,
    done: bool,
}

/// Bytes to write at an offset of a temp file (blocking: [`WriteChunk::write`]).
pub(crate) struct WriteChunk {
    file: Arc<File>,
    path: PathBuf,
    offset: u64,
    bytes: Vec<u8>,
}

impl WriteChunk {
    /// Write the bytes at their offset and start their writeback (blocking). Returns the
    /// emptied buffer for reuse.
    pub fn write(self) -> Result<Vec<u8>, Failure> {
        use std::os::unix::fs::FileExt;
        let WriteChunk {
            file,
            path,
            offset,
            mut bytes,
        } = self;
        file.write_all_at(&bytes, offset)
            .map_err(|e| Failure::resources(format!("cannot write {}: {e}", path.display())))?;
        start_writeback(&file, offset, bytes.len() as u64);
        bytes.clear();
        Ok(bytes)
    }
}

/// Ask the kernel to start writing a range of `file` to disk without waiting (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`); durability still comes from the fsync before the
/// response, this only makes that fsync shorter. Elsewhere a no-op.
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is open for the lifetime of `file`; the call only reads its
        // arguments. A failure is harmless (the fsync does the work).
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
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
            written: header.len() as u64,
            header,
            buf: Vec::new(),
            prefix: Vec::new(),
            data_len: 0,
            sop_class: sop_class.to_string(),
            sop_instance: sop_instance.to_string(),
            origin,
            done: false,
        };
        file.write_all(&me.header)
            .map_err(|e| me.io_failure("write", &e))?;
        me.file = Some(Arc::new(file));
        Ok(me)
    }

    fn io_failure(&self, what: &str, e: &io::Error) -> Failure {
        Failure::resources(format!("cannot {what} {}: {e}", self.path.display()))
    }

    /// Append received data set bytes (buffered until [`TempInstance::take_chunk`]).
    pub fn push(&mut self, data: &[u8]) {
        if self.prefix.len() < HEADER_PREFIX_BYTES {
            let n = (HEADER_PREFIX_BYTES - self.prefix.len()).min(data.len());
            self.prefix.extend_from_slice(&data[..n]);
        }
        self.buf.extend_from_slice(data);
        self.data_len += data.len() as u64;
    }

    /// Whether enough is buffered to be written out now.
    pub fn should_flush(&self) -> bool {
        self.buf.len() >= super::WRITE_CHUNK_BYTES
    }

    /// Hand the buffered bytes to a write (run it off the reactor); `spare` becomes the new
    /// buffer (an emptied buffer of an earlier chunk, so no allocation per chunk).
    pub fn take_chunk(&mut self, spare: Vec<u8>) -> Result<WriteChunk, Failure> {
        let Some(file) = self.file.clone() else {
            return Err(Failure::resources("temp file already closed"));
        };
        let bytes = std::mem::replace(&mut self.buf, spare);
        let offset = self.written;
        self.written += bytes.len() as u64;
        Ok(WriteChunk {
            file,
            path: self.path.clone(),
            offset,
            bytes,
        })
    }

    /// The data set's header parsed from the bytes kept in memory, when they hold it (no I/O).
    fn header_from_memory(&self) -> Option<Header> {
        OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .read_preamble(ReadPreamble::Never)
            .from_reader(self.header[128..].chain(self.prefix.as_slice()))
            .ok()
            // A prefix cut at an element boundary parses as a shorter data set: it is trusted
            // when it holds SeriesInstanceUID (header_of requires it), since the elements read
            // all have lower tags and are complete.
            .and_then(|obj| header_of(&obj).ok())
    }

    /// Everything received: parse and check the data set's header, check that the data set is
    /// complete (see [`completeness`]) and say where the instance goes. Cheap and free of I/O
    /// when the whole data set is in the bytes kept in memory and not deflated (call it on the
    /// reactor and, on `Ok(None)`, call [`TempInstance::describe_from_file`] off it).
    pub fn describe(&self, data_dir: &Path) -> Result<Option<StoredInstance>, Failure> {
        if self.data_len == 0 {
            return Err(Failure::cannot_understand("empty data set"));
        }
        let in_memory = self.data_len == self.prefix.len() as u64
            && !completeness::is_deflated(&self.origin.transfer_syntax);
        if !in_memory {
            return Ok(None);
        }
        // the walk first: the header parser trusts element lengths (it reserves what they say)
        completeness::check_bytes(
            &self.prefix,
            &self.origin.transfer_syntax,
            requires_pixel_data(&self.sop_class),
        )?;
        let Some(header) = self.header_from_memory() else {
            return Ok(None);
        };
        Ok(Some(self.stored(header, data_dir)?))
    }

    /// [`TempInstance::describe`] with the temp file (blocking): writes the bytes not yet
    /// written, walks the data set in the file (its element headers only: values are skipped by
    /// seeking, deflated ones inflated as a stream), then reads the header from memory or else
    /// from the file.
    pub fn describe_from_file(&mut self, data_dir: &Path) -> Result<StoredInstance, Failure> {
        self.write_rest()?;
        if self.data_len == 0 {
            return Err(Failure::cannot_understand("empty data set"));
        }
        // the walk first: the header parser trusts element lengths (it reserves what they say)
        let file = File::open(&self.path).map_err(|e| self.io_failure("open", &e))?;
        completeness::check_file(
            file,
            self.header.len() as u64,
            self.data_len,
            &self.origin.transfer_syntax,
            requires_pixel_data(&self.sop_class),
        )?;
        let header = match self.header_from_memory() {
            Some(h) => h,
            None => read_header(&self.path)?,
        };
        self.stored(header, data_dir)
    }

    fn write_rest(&mut self) -> Result<(), Failure> {
        if !self.buf.is_empty() {
            self.take_chunk(Vec::new())?.write()?;
        }
        Ok(())
    }

    /// Check the header against the command and build the record of the stored instance.
    fn stored(&self, header: Header, data_dir: &Path) -> Result<StoredInstance, Failure> {
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
        let rel_path = format!(
            "{}/{}/{}.dcm",
            header.study, header.series, header.sop_instance
        );
        let size = self.header.len() as u64 + self.data_len;
        Ok(StoredInstance {
            path: data_dir.join(&rel_path),
            record: InstanceRecord {
                rel_path,
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
            },
        })
    }

    /// Make the file durable and move it to `to.path` (blocking): write what is left, fsync,
    /// create the study/series folders (their parents fsynced when created), rename (a re-sent
    /// instance replaces its file), fsync the series folder. On error the temp file is removed.
    pub fn commit_file(mut self, data_dir: &Path, to: &StoredInstance) -> Result<(), Failure> {
        self.write_rest()?;
        let Some(file) = self.file.take() else {
            return Err(Failure::resources("temp file already closed"));
        };
        file.sync_data().map_err(|e| self.io_failure("fsync", &e))?;
        drop(file);

        let series_dir = data_dir
            .join(&to.record.study_instance_uid)
            .join(&to.record.series_instance_uid);
        durable::create_dir_all(&series_dir).map_err(|e| {
            Failure::resources(format!("cannot create {}: {e}", series_dir.display()))
        })?;
        durable::rename(&self.path, &to.path).map_err(|e| {
            Failure::resources(format!(
                "cannot move {} to {} durably: {e}",
                self.path.display(),
                to.path.display()
            ))
        })?;
        self.done = true;
        Ok(())
    }

    /// [`TempInstance::describe`] (from memory or the file) then [`TempInstance::commit_file`],
    /// in turn (blocking).
    #[cfg(test)]
    pub fn finish(mut self, data_dir: &Path) -> Result<StoredInstance, Failure> {
        let stored = match self.describe(data_dir)? {
            Some(s) => s,
            None => self.describe_from_file(data_dir)?,
        };
        self.commit_file(data_dir, &stored)?;
        Ok(stored)
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

/// Remove a stored instance's file that could not be recorded, durably (its folder fsynced).
pub(crate) fn remove_stored(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => path.parent().map_or(Ok(()), durable::sync_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
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
    header_of(&obj)
}

/// The SCP's fields of a parsed data set (UIDs required and valid).
fn header_of(obj: &dicom_object::DefaultDicomObject) -> Result<Header, Failure> {
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

    /// A minimal explicit VR LE data set with a 2×2 image.
    fn data_set(sop: &str, class: &str, study: &str, series: &str) -> Vec<u8> {
        image_data_set(sop, class, study, series, 2)
    }

    /// An explicit VR LE data set with a `side`×`side` 16-bit image.
    fn image_data_set(sop: &str, class: &str, study: &str, series: &str, side: u16) -> Vec<u8> {
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
        for (tag, v) in [
            (tags::SAMPLES_PER_PIXEL, 1u16),
            (tags::ROWS, side),
            (tags::COLUMNS, side),
            (tags::BITS_ALLOCATED, 16),
        ] {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        }
        let pixels = vec![0x0400u16; usize::from(side) * usize::from(side)];
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.into()),
        ));
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
                stored.record.rel_path, "1.2.3/1.2.3.1/1.2.3.4.dcm",
                "round {round}"
            );
            assert!(stored.record.analysable);
            assert_eq!(stored.record.station_name.as_deref(), Some("CT01"));
            assert_eq!(stored.record.modality.as_deref(), Some("CT"));
            let bytes = fs::read(&stored.path).unwrap();
            assert_eq!(bytes.len() as i64, stored.record.size_bytes);
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

    /// Writes go through chunks at offsets while data arrives; a header longer than the bytes
    /// kept in memory is read back from the temp file.
    #[test]
    fn chunked_writes_and_a_header_beyond_the_memory_prefix() {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        prepare_tmp_dir(&tmp).unwrap();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let plain = data_set("1.2.3.7", ct, "1.2.3", "1.2.3.1");
        // a 100 KiB private element (group 0009) before StudyInstanceUID (0020,000D)
        let mut obj = dicom_object::InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            dicom_core::Tag(0x0009, 0x0010),
            VR::LO,
            PrimitiveValue::from("HURED TEST"),
        ));
        obj.put(DataElement::new(
            dicom_core::Tag(0x0009, 0x1000),
            VR::OB,
            PrimitiveValue::from(vec![7u8; 100 << 10]),
        ));
        let mut long = Vec::new();
        obj.write_dataset_with_ts(
            &mut long,
            &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .unwrap();
        // the private elements sort between (0008,xxxx) and (0020,xxxx): splice them in
        let split = plain
            .windows(4)
            .position(|w| w == [0x20, 0x00, 0x0d, 0x00])
            .unwrap();
        let mut ds = plain[..split].to_vec();
        ds.extend_from_slice(&long);
        ds.extend_from_slice(&plain[split..]);

        for (data, sop, from_memory) in [(plain.clone(), "1.2.3.7", true), (ds, "1.2.3.7", false)] {
            let mut t = TempInstance::create(&tmp, "1-9", ct, sop, origin()).unwrap();
            let mut spare = Vec::new();
            for piece in data.chunks(40_000) {
                t.push(piece);
                if t.buf.len() >= 30_000 {
                    spare = t.take_chunk(spare).unwrap().write().unwrap();
                }
            }
            assert_eq!(t.describe(dir.path()).unwrap().is_some(), from_memory);
            let stored = t.finish(dir.path()).unwrap();
            assert_eq!(stored.record.series_instance_uid, "1.2.3.1");
            let bytes = fs::read(&stored.path).unwrap();
            assert!(bytes.ends_with(&data), "data set stored as received");
            assert_eq!(bytes.len() as i64, stored.record.size_bytes);
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
        ];
        for (ds, class, sop, expected) in cases {
            let mut t = TempInstance::create(&tmp, "1-2", class, sop, origin()).unwrap();
            t.push(&ds);
            let err = t.finish(dir.path()).unwrap_err();
            assert_eq!(err.status, expected, "{}", err.reason);
        }
        // a private element claiming 3.6 GiB in a data set of a few hundred bytes: refused by
        // the walk (its reason), never handed to the header parser (which reserves what a
        // length says, and took seconds and gigabytes to give up on this one)
        let mut lying = vec![0x09, 0x00, 0x00, 0x10, b'O', b'B', 0, 0];
        lying.extend_from_slice(&0xE72D_5784u32.to_le_bytes());
        lying.extend_from_slice(&data_set("1.2.3.4", ct, "1.2.3", "1.2.3.1"));
        let mut t = TempInstance::create(&tmp, "1-2", ct, "1.2.3.4", origin()).unwrap();
        t.push(&lying);
        let err = t.finish(dir.path()).unwrap_err();
        assert_eq!(err.status, 0xC000, "{}", err.reason);
        assert!(err.reason.contains("(0009,1000)"), "{}", err.reason);
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

    /// Issue 11: a data set cut short, or one byte long, is refused with 0xC000 and leaves
    /// nothing; checked from memory (small) and from the temp file (larger than the bytes kept
    /// in memory), written in chunks as the SCP writes it.
    #[test]
    fn incomplete_data_sets_are_refused_from_memory_and_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        prepare_tmp_dir(&tmp).unwrap();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        // 2×2 (in memory) and 256×256 (128 KiB of pixels: from the file)
        for side in [2u16, 256] {
            let full = image_data_set("1.2.3.4", ct, "1.2.3", "1.2.3.1", side);
            let pixels = usize::from(side) * usize::from(side) * 2;
            let mut longer = full.clone();
            longer.push(0);
            for (what, data) in [
                (
                    "cut at 50 % of Pixel Data",
                    &full[..full.len() - pixels / 2],
                ),
                ("one byte short", &full[..full.len() - 1]),
                ("one byte too many", &longer[..]),
            ] {
                let mut t = TempInstance::create(&tmp, "1-5", ct, "1.2.3.4", origin()).unwrap();
                let mut spare = Vec::new();
                for piece in data.chunks(40_000) {
                    t.push(piece);
                    if t.should_flush() {
                        spare = t.take_chunk(spare).unwrap().write().unwrap();
                    }
                }
                let in_memory = t.describe(dir.path());
                assert_eq!(in_memory.is_err(), side == 2, "{side}: {what}");
                let err = t.finish(dir.path()).unwrap_err();
                assert_eq!(err.status, 0xC000, "{side}: {what}: {}", err.reason);
                assert!(
                    err.reason.contains("truncated") || err.reason.contains("Pixel Data"),
                    "{side}: {what}: {}",
                    err.reason
                );
            }
            let mut t = TempInstance::create(&tmp, "1-6", ct, "1.2.3.4", origin()).unwrap();
            t.push(&full);
            t.finish(dir.path()).unwrap();
        }
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "no temp file left");
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
