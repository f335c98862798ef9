//! A C-STORE SCU (`hu-red send`): pushes DICOM files to a Storage SCP, each in its own transfer
//! syntax, bit-preserving (the data set bytes of the file are sent as they are).
//!
//! Files are grouped by (SOP class, transfer syntax); each pair gets one presentation context
//! proposing the file's own syntax, plus Explicit and Implicit VR Little Endian as fallbacks when
//! the pixel data is native (not encapsulated): only then may a file be re-encoded (to the
//! fallback the SCP accepted; a lossless change of the data set encoding). Compressed files are
//! never transcoded: if the SCP refuses their syntax they fail. At most 128 presentation
//! contexts fit in one association; more pairs make several associations, one after the other.
//! Every C-STORE-RQ carries a new MessageID and its response must answer it.
//!
//! With [`ScuOptions::tls`] every association runs inside TLS (DICOM TLS, `hu-red send
//! --tls-ca`): see `connect.rs`.

mod connect;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::meta::FileMetaTable;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::client::{ClientAssociation, CloseSocket};
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use tracing::{debug, info, warn};

use crate::dicom::raw::{self, FileLayout};
use crate::scp::dimse::{self, status};
use crate::scp::tls::ClientTls;
use connect::{establish, options, Connected};

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// Presentation context ids are odd numbers 1..=255.
const MAX_CONTEXTS: usize = 128;

/// Where and as whom to send.
#[derive(Debug, Clone)]
pub struct ScuOptions {
    /// `HOST:PORT` of the SCP.
    pub addr: String,
    /// The SCP's AE title (called AE).
    pub called_ae: String,
    /// Our AE title (calling AE).
    pub calling_ae: String,
    /// The largest PDU we accept from the SCP.
    pub max_pdu: u32,
    /// Connection, read and write timeout.
    pub timeout: Duration,
    /// DICOM TLS: the server's certificate must chain to these CAs (and carry the host of
    /// `addr`); `None` = plain TCP.
    pub tls: Option<ClientTls>,
}

impl Default for ScuOptions {
    fn default() -> Self {
        ScuOptions {
            addr: "127.0.0.1:11112".into(),
            called_ae: "HURED_QA".into(),
            calling_ae: "HURED_SCU".into(),
            max_pdu: 131_072,
            timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScuError {
    #[error("send: cannot read {path}: {source}")]
    Path { path: PathBuf, source: io::Error },
    #[error("send: no DICOM file found in the given paths")]
    NoFiles,
    #[error("send: association with {called_ae}@{addr} failed: {what}")]
    Association {
        addr: String,
        called_ae: String,
        what: String,
    },
    #[error("send: C-ECHO to {called_ae}@{addr} answered status {status:#06x}")]
    Echo {
        addr: String,
        called_ae: String,
        status: u16,
    },
}

/// The outcome for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileResult {
    /// The SCP answered success (0x0000) or a warning (0xB...): it kept the instance.
    Stored { status: u16 },
    /// Not stored: the SCP's failure status (with its error comment), or why it was not sent.
    Failed { status: Option<u16>, reason: String },
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub sop_instance_uid: Option<String>,
    /// The transfer syntax the data set was sent in.
    pub transfer_syntax: Option<String>,
    pub result: FileResult,
}

#[derive(Debug, Clone, Default)]
pub struct SendSummary {
    pub files: Vec<FileReport>,
    /// Files found while walking folders that are not DICOM files (with why).
    pub skipped: Vec<(PathBuf, String)>,
    /// Files without the DICOM Part-10 header (raw data sets, or a file meta group without
    /// preamble) that were found and sent as their data sets.
    pub headerless: Vec<PathBuf>,
}

impl SendSummary {
    pub fn stored(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(f.result, FileResult::Stored { .. }))
            .count()
    }
    pub fn failed(&self) -> usize {
        self.files.len() - self.stored()
    }
}

/// A readable DICOM file: Part-10, or without the Part-10 header (a raw data set, or a file
/// meta group without preamble).
#[derive(Debug, Clone)]
struct FileInfo {
    path: PathBuf,
    layout: FileLayout,
    sop_class: String,
    sop_instance: String,
    ts: String,
    /// Offset of the data set in the file.
    data_offset: u64,
    data_len: u64,
}

fn trim(s: &str) -> String {
    dimse::trim_value(s).to_string()
}

/// Where the data set is and what it is; `Err` when the file is not DICOM. A Part-10 file's
/// file meta group says it; a raw data set (no preamble, no file meta) is the whole file, its
/// transfer syntax as detected and its SOP class/instance read from its header.
fn inspect(path: &Path) -> Result<FileInfo, String> {
    let layout = raw::sniff(path)
        .map_err(|e| e.to_string())?
        .ok_or("not a DICOM file (no DICM marker, and not a raw DICOM data set)")?;
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let info = match layout {
        FileLayout::RawDataSet { .. } => {
            let obj = raw::open(path, layout, Some(dicom_dictionary_std::tags::PIXEL_DATA))
                .map_err(|e| format!("unreadable raw data set: {e}"))?;
            let meta = obj.meta();
            FileInfo {
                path: path.to_path_buf(),
                layout,
                sop_class: trim(meta.media_storage_sop_class_uid()),
                sop_instance: trim(meta.media_storage_sop_instance_uid()),
                ts: trim(meta.transfer_syntax()),
                data_offset: 0,
                data_len: size,
            }
        }
        FileLayout::Part10 | FileLayout::MetaWithoutPreamble => {
            let mut head = [0u8; 132];
            let n = read_up_to(&mut f, &mut head).map_err(|e| e.to_string())?;
            let meta_start = if n == 132 && &head[128..132] == b"DICM" {
                128
            } else {
                0
            };
            f.seek(SeekFrom::Start(meta_start))
                .map_err(|e| e.to_string())?;
            // without "DICM" (a meta group at byte 0), the marker is put in front for the reader
            let magic: &[u8] = if layout == FileLayout::MetaWithoutPreamble {
                b"DICM"
            } else {
                b""
            };
            let mut counting = Counting {
                inner: magic.chain(io::BufReader::new(f).take(1 << 20)),
                n: 0,
            };
            let meta = FileMetaTable::from_reader(&mut counting)
                .map_err(|e| format!("unreadable file meta group: {e}"))?;
            let data_offset = meta_start + counting.n - magic.len() as u64;
            FileInfo {
                path: path.to_path_buf(),
                layout,
                sop_class: trim(meta.media_storage_sop_class_uid()),
                sop_instance: trim(meta.media_storage_sop_instance_uid()),
                ts: trim(meta.transfer_syntax()),
                data_offset,
                data_len: size.saturating_sub(data_offset),
            }
        }
    };
    if info.sop_class.is_empty() || info.sop_instance.is_empty() || info.ts.is_empty() {
        return Err(if layout == FileLayout::Part10 {
            "file meta group without SOP class, SOP instance or transfer syntax".into()
        } else {
            format!(
                "{} without SOP Class UID, SOP Instance UID or transfer syntax",
                layout.describe()
            )
        });
    }
    Ok(info)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// Files to send: each path that is a file, and every file under each folder (recursively,
/// sorted). Folder entries that are not DICOM are skipped; named files that are not DICOM fail.
fn collect(
    paths: &[PathBuf],
) -> Result<(Vec<Result<FileInfo, FileReport>>, SendSummary), ScuError> {
    let mut out = Vec::new();
    let mut summary = SendSummary::default();
    for p in paths {
        let md = std::fs::metadata(p).map_err(|source| ScuError::Path {
            path: p.clone(),
            source,
        })?;
        if md.is_dir() {
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in walkdir::WalkDir::new(p).follow_links(true) {
                let entry = entry.map_err(|e| ScuError::Path {
                    path: e.path().map(Path::to_path_buf).unwrap_or_else(|| p.clone()),
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| io::Error::other("file system loop")),
                })?;
                if entry.file_type().is_file() {
                    found.push(entry.into_path());
                }
            }
            found.sort();
            for f in found {
                match inspect(&f) {
                    Ok(info) => out.push(Ok(info)),
                    Err(why) => summary.skipped.push((f, why)),
                }
            }
        } else {
            out.push(inspect(p).map_err(|why| FileReport {
                path: p.clone(),
                sop_instance_uid: None,
                transfer_syntax: None,
                result: FileResult::Failed {
                    status: None,
                    reason: why,
                },
            }));
        }
    }
    Ok((out, summary))
}

fn is_native(ts: &str) -> bool {
    TransferSyntaxRegistry
        .get(ts)
        .is_some_and(|t| !t.is_encapsulated_pixel_data())
}

/// The transfer syntaxes proposed for files of syntax `ts`.
fn proposal(ts: &str) -> Vec<String> {
    let mut v = vec![ts.to_string()];
    if is_native(ts) {
        for f in [EXPLICIT_LE, IMPLICIT_LE] {
            if !v.iter().any(|x| x == f) {
                v.push(f.to_string());
            }
        }
    }
    v
}

/// Send every DICOM file under `paths`. Errors only for unreadable paths or when no DICOM file
/// is found; per-file outcomes (including association failures) are in the summary.
pub fn send(opts: &ScuOptions, paths: &[PathBuf]) -> Result<SendSummary, ScuError> {
    let (found, mut summary) = collect(paths)?;
    let mut infos = Vec::new();
    for f in found {
        match f {
            Ok(info) => {
                if info.layout.is_headerless() {
                    summary.headerless.push(info.path.clone());
                }
                infos.push(info)
            }
            Err(report) => summary.files.push(report),
        }
    }
    if infos.is_empty() && summary.files.is_empty() {
        return Err(ScuError::NoFiles);
    }
    // (class, ts) pairs in order of first appearance, chunked into associations
    let mut pairs: Vec<(String, String)> = Vec::new();
    for i in &infos {
        let key = (i.sop_class.clone(), i.ts.clone());
        if !pairs.contains(&key) {
            pairs.push(key);
        }
    }
    for chunk in pairs.chunks(MAX_CONTEXTS) {
        let files: Vec<&FileInfo> = infos
            .iter()
            .filter(|i| chunk.iter().any(|(c, t)| *c == i.sop_class && *t == i.ts))
            .collect();
        send_chunk(opts, chunk, &files, &mut summary);
    }
    info!(
        stored = summary.stored(),
        failed = summary.failed(),
        skipped = summary.skipped.len(),
        "send finished"
    );
    Ok(summary)
}

fn describe_ul(e: &UlError) -> String {
    crate::scp::error_chain(e)
}

/// Every file of `files` failed for the same reason.
fn fail_all(summary: &mut SendSummary, files: &[&FileInfo], why: &str) {
    for f in files {
        summary.files.push(report(
            f,
            None,
            FileResult::Failed {
                status: None,
                reason: why.to_string(),
            },
        ));
    }
}

fn send_chunk(
    opts: &ScuOptions,
    pairs: &[(String, String)],
    files: &[&FileInfo],
    summary: &mut SendSummary,
) {
    let mut o = options(opts);
    for (class, ts) in pairs {
        o = o.with_presentation_context(class.clone(), proposal(ts));
    }
    match establish(opts, o) {
        Ok(Connected::Plain(assoc)) => send_files(assoc, files, summary),
        Ok(Connected::Tls(assoc)) => send_files(*assoc, files, summary),
        Err(e) => {
            let why = format!(
                "association with {}@{} failed: {}",
                opts.called_ae,
                opts.addr,
                describe_ul(&e)
            );
            warn!("{why}");
            fail_all(summary, files, &why);
        }
    }
}

/// Send `files` on an established association, then release it.
fn send_files<S>(mut assoc: ClientAssociation<S>, files: &[&FileInfo], summary: &mut SendSummary)
where
    S: CloseSocket + Read + Write,
{
    let accepted: Vec<(u8, String, String)> = assoc
        .presentation_contexts()
        .iter()
        .map(|pc| {
            (
                pc.id,
                pc.abstract_syntax.clone(),
                pc.transfer_syntax.clone(),
            )
        })
        .collect();
    debug!(?accepted, "association established");
    let mut message_id: u16 = 0;
    for (k, f) in files.iter().enumerate() {
        // the file's own syntax if any context accepted it, else a native fallback
        let exact = accepted
            .iter()
            .find(|(_, c, t)| *c == f.sop_class && *t == f.ts);
        let fallback = || {
            accepted.iter().find(|(_, c, t)| {
                *c == f.sop_class && is_native(&f.ts) && (t == EXPLICIT_LE || t == IMPLICIT_LE)
            })
        };
        let Some((pc, _, ts)) = exact.or_else(fallback) else {
            summary.files.push(report(
                f,
                None,
                FileResult::Failed {
                    status: None,
                    reason: format!(
                        "the SCP accepted no presentation context for SOP class {} in {}",
                        f.sop_class, f.ts
                    ),
                },
            ));
            continue;
        };
        message_id = message_id.wrapping_add(1).max(1);
        match store_one(&mut assoc, *pc, ts, f, message_id) {
            Ok(result) => summary.files.push(report(f, Some(ts), result)),
            Err(why) => {
                warn!(
                    "association broken while sending {}: {why}",
                    f.path.display()
                );
                summary.files.push(report(
                    f,
                    Some(ts),
                    FileResult::Failed {
                        status: None,
                        reason: why.clone(),
                    },
                ));
                fail_all(
                    summary,
                    &files[k + 1..],
                    &format!("not sent: the association ended ({why})"),
                );
                let _ = assoc.abort();
                return;
            }
        }
    }
    if let Err(e) = assoc.release() {
        warn!("release of the association failed: {}", describe_ul(&e));
    }
}

fn report(f: &FileInfo, ts: Option<&str>, result: FileResult) -> FileReport {
    FileReport {
        path: f.path.clone(),
        sop_instance_uid: Some(f.sop_instance.clone()),
        transfer_syntax: ts.map(str::to_string),
        result,
    }
}

/// The data set bytes to send in `ts`: the file's own bytes, or a re-encoding (native fallback).
enum Payload {
    Raw(File, u64),
    Encoded(Vec<u8>),
}

fn payload(f: &FileInfo, ts: &str) -> Result<Payload, FileResult> {
    let failed = |reason: String| FileResult::Failed {
        status: None,
        reason,
    };
    if ts == f.ts {
        let mut file = File::open(&f.path).map_err(|e| failed(format!("cannot open: {e}")))?;
        file.seek(SeekFrom::Start(f.data_offset))
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        return Ok(Payload::Raw(file, f.data_len));
    }
    let target = TransferSyntaxRegistry
        .get(ts)
        .ok_or_else(|| failed(format!("unknown transfer syntax {ts}")))?;
    let obj = raw::open(&f.path, f.layout, None)
        .map_err(|e| failed(format!("cannot read the data set to re-encode it: {e}")))?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, target)
        .map_err(|e| failed(format!("cannot re-encode the data set in {ts}: {e}")))?;
    debug!(file = %f.path.display(), from = %f.ts, to = %ts, "re-encoded (native fallback)");
    Ok(Payload::Encoded(out))
}

/// One C-STORE. `Err` = the association is no longer usable.
fn store_one<S: CloseSocket + Read + Write>(
    assoc: &mut ClientAssociation<S>,
    pc: u8,
    ts: &str,
    f: &FileInfo,
    message_id: u16,
) -> Result<FileResult, String> {
    let payload = match payload(f, ts) {
        Ok(p) => p,
        Err(result) => return Ok(result),
    };
    let command = dimse::encode_c_store_rq(message_id, &f.sop_class, &f.sop_instance);
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        })
        .map_err(|e| format!("cannot send the command: {}", describe_ul(&e)))?;
    {
        let mut writer = assoc.send_pdata(pc);
        let copied = match payload {
            Payload::Raw(file, len) => {
                let mut src = io::BufReader::with_capacity(256 * 1024, file.take(len));
                io::copy(&mut src, &mut writer)
            }
            Payload::Encoded(bytes) => io::copy(&mut bytes.as_slice(), &mut writer),
        };
        copied.map_err(|e| format!("cannot send the data set: {e}"))?;
        writer
            .finish()
            .map_err(|e| format!("cannot send the data set: {e}"))?;
    }
    // the response (possibly fragmented)
    let mut buf = Vec::new();
    loop {
        let pdu = assoc
            .receive()
            .map_err(|e| format!("no response: {}", describe_ul(&e)))?;
        match pdu {
            Pdu::PData { data } => {
                let mut complete = false;
                for pdv in data {
                    if pdv.value_type == PDataValueType::Command {
                        buf.extend_from_slice(&pdv.data);
                        complete |= pdv.is_last;
                    }
                }
                if complete {
                    break;
                }
            }
            Pdu::AbortRQ { source } => return Err(format!("the SCP aborted ({source:?})")),
            other => return Err(format!("unexpected {}", other.short_description())),
        }
    }
    let rsp = dimse::parse_command(&buf)?;
    if rsp.field != dimse::C_STORE_RSP {
        return Err(format!(
            "expected C-STORE-RSP, got command {:#06x}",
            rsp.field
        ));
    }
    if rsp.message_id_responded != Some(message_id) {
        return Err(format!(
            "C-STORE-RSP answers message {:?}, expected {message_id}",
            rsp.message_id_responded
        ));
    }
    let st = rsp.status.ok_or("C-STORE-RSP without Status")?;
    Ok(if status::is_stored(st) {
        FileResult::Stored { status: st }
    } else {
        FileResult::Failed {
            status: Some(st),
            reason: match rsp.error_comment {
                Some(c) => format!("{}: {c}", status::describe(st)),
                None => status::describe(st).to_string(),
            },
        }
    })
}

/// C-ECHO (Verification).
pub fn echo(opts: &ScuOptions) -> Result<(), ScuError> {
    let assoc_err = |what: String| ScuError::Association {
        addr: opts.addr.clone(),
        called_ae: opts.called_ae.clone(),
        what,
    };
    let o = options(opts).with_abstract_syntax(crate::scp::VERIFICATION_SOP_CLASS);
    match establish(opts, o).map_err(|e| assoc_err(describe_ul(&e)))? {
        Connected::Plain(assoc) => echo_on(opts, assoc),
        Connected::Tls(assoc) => echo_on(opts, *assoc),
    }
}

fn echo_on<S: CloseSocket + Read + Write>(
    opts: &ScuOptions,
    mut assoc: ClientAssociation<S>,
) -> Result<(), ScuError> {
    let assoc_err = |what: String| ScuError::Association {
        addr: opts.addr.clone(),
        called_ae: opts.called_ae.clone(),
        what,
    };
    let pc = assoc
        .presentation_contexts()
        .first()
        .map(|pc| pc.id)
        .ok_or_else(|| assoc_err("Verification not accepted".into()))?;
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data: dimse::encode_c_echo_rq(1),
            }],
        })
        .map_err(|e| assoc_err(describe_ul(&e)))?;
    let mut buf = Vec::new();
    loop {
        match assoc.receive().map_err(|e| assoc_err(describe_ul(&e)))? {
            Pdu::PData { data } => {
                let mut complete = false;
                for pdv in data {
                    buf.extend_from_slice(&pdv.data);
                    complete |= pdv.is_last;
                }
                if complete {
                    break;
                }
            }
            other => {
                return Err(assoc_err(format!(
                    "unexpected {}",
                    other.short_description()
                )))
            }
        }
    }
    let rsp = dimse::parse_command(&buf).map_err(assoc_err)?;
    let _ = assoc.release();
    match (rsp.field, rsp.message_id_responded, rsp.status) {
        (dimse::C_ECHO_RSP, Some(1), Some(0)) => Ok(()),
        (_, _, Some(st)) => Err(ScuError::Echo {
            addr: opts.addr.clone(),
            called_ae: opts.called_ae.clone(),
            status: st,
        }),
        _ => Err(assoc_err("malformed C-ECHO-RSP".into())),
    }
}

/// Files per (SOP class, transfer syntax), for summaries.
pub fn count_by_syntax(summary: &SendSummary) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in &summary.files {
        if let (Some(ts), FileResult::Stored { .. }) = (&f.transfer_syntax, &f.result) {
            *m.entry(ts.clone()).or_insert(0) += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals() {
        assert_eq!(proposal(EXPLICIT_LE), vec![EXPLICIT_LE, IMPLICIT_LE]);
        assert_eq!(proposal(IMPLICIT_LE), vec![IMPLICIT_LE, EXPLICIT_LE]);
        assert_eq!(
            proposal("1.2.840.10008.1.2.1.99"),
            vec!["1.2.840.10008.1.2.1.99", EXPLICIT_LE, IMPLICIT_LE]
        );
        // compressed: its own syntax only (never transcoded)
        assert_eq!(
            proposal("1.2.840.10008.1.2.4.80"),
            vec!["1.2.840.10008.1.2.4.80"]
        );
        assert_eq!(proposal("1.2.840.10008.1.2.5"), vec!["1.2.840.10008.1.2.5"]);
    }

    #[test]
    fn inspect_finds_the_data_set() {
        let dir = tempfile::tempdir().unwrap();
        let set = crate::phantom::PhantomSet::builtin();
        let params = crate::simulate::SimParams {
            matrix: 128,
            pixel_mm: 2.0,
            n_slices: 1,
            catphan_modules: false,
            ..Default::default()
        };
        let (paths, _) =
            crate::simulate::render_to_dir(&params, set.get("catphan_504").unwrap(), dir.path())
                .unwrap();
        let dcm = paths
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "dcm"))
            .unwrap();
        let info = inspect(dcm).unwrap();
        let bytes = std::fs::read(dcm).unwrap();
        assert_eq!(info.data_offset + info.data_len, bytes.len() as u64);
        let obj = dicom_object::open_file(dcm).unwrap();
        assert_eq!(
            info.sop_instance,
            trim(obj.meta().media_storage_sop_instance_uid())
        );
        assert_eq!(info.ts, EXPLICIT_LE);
        // the data set starts with a group 0008 element, right after the meta group
        let ds = &bytes[info.data_offset as usize..];
        assert_eq!(&ds[0..2], &[0x08, 0x00]);
        // not DICOM
        let json = paths
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap();
        assert!(inspect(json).is_err());
    }

    #[test]
    fn inspect_reads_files_without_the_part10_header() {
        let dir = tempfile::tempdir().unwrap();
        let set = crate::phantom::PhantomSet::builtin();
        let def = set.get("cirs062").unwrap();
        let params = crate::simulate::SimParams {
            matrix: 96,
            pixel_mm: 4.0,
            n_slices: 1,
            ..Default::default()
        };
        let raw_params = crate::simulate::SimParams {
            part10: false,
            transfer_syntax: crate::simulate::Syntax::Implicit,
            ..params.clone()
        };
        let (p10, _) =
            crate::simulate::render_to_dir(&params, def, &dir.path().join("p10")).unwrap();
        let (raw, truth) =
            crate::simulate::render_to_dir(&raw_params, def, &dir.path().join("raw")).unwrap();
        // a raw data set: the whole file is the data set, its identity read from it
        let info = inspect(&raw[0]).unwrap();
        assert_eq!(info.layout, FileLayout::RawDataSet { explicit: false });
        assert_eq!(info.ts, IMPLICIT_LE);
        assert_eq!(info.data_offset, 0);
        assert_eq!(info.data_len, std::fs::metadata(&raw[0]).unwrap().len());
        assert_eq!(info.sop_instance, truth.slices[0].sop_instance_uid);
        assert_eq!(info.sop_class, truth.sop_class_uid);
        // re-encoding (the native fallback) reads it too
        match payload(&info, EXPLICIT_LE) {
            Ok(Payload::Encoded(bytes)) => assert_eq!(&bytes[0..2], &[0x08, 0x00]),
            _ => panic!("no re-encoded payload"),
        }
        // a file meta group without preamble and DICM: the data set starts after it
        let bytes = std::fs::read(&p10[0]).unwrap();
        let meta_only = dir.path().join("meta_only");
        std::fs::write(&meta_only, &bytes[132..]).unwrap();
        let info = inspect(&meta_only).unwrap();
        let whole = inspect(&p10[0]).unwrap();
        assert_eq!(info.layout, FileLayout::MetaWithoutPreamble);
        assert_eq!(info.data_offset, whole.data_offset - 132);
        assert_eq!(info.data_len, whole.data_len);
        assert_eq!(info.sop_instance, whole.sop_instance);
        // text is still refused
        let txt = dir.path().join("notes");
        std::fs::write(&txt, "phantom QA").unwrap();
        assert!(inspect(&txt).unwrap_err().contains("not a DICOM file"));
    }
}
