//! The DICOM Storage SCP of `hu-red serve` (Verification and Storage service classes on
//! dicom-ul's async associations).
//!
//! dicom-ul stops at the PDU level; this module does the rest: association admission (called AE,
//! calling-AE allow-list, caps on accepted associations in all and per calling AE, answered with a
//! hand-written A-ASSOCIATE-RJ; see `admission`), DIMSE (command sets in Implicit VR Little Endian, fragmented or not, data sets
//! spanning many P-DATA PDUs, C-ECHO and C-STORE), timeouts, and the durable storage of every
//! instance before it is acknowledged.
//!
//! # The path of one instance
//! 1. C-STORE-RQ command (fragments concatenated until the last one); the Affected SOP Class /
//!    Instance UIDs are validated as DICOM UIDs and the context's abstract syntax must be the
//!    Affected SOP Class.
//! 2. A temp file `data_dir/tmp/<association>-<message>-<n>.part` is created with the 128-byte
//!    preamble, `DICM` and the file meta group (Media Storage SOP Class / Instance UID from the
//!    command, Transfer Syntax UID = the negotiated one, hu-red's Implementation Class UID and
//!    Version Name, Source AE Title = the calling AE), and the data set bytes are appended
//!    **exactly as received** as they arrive, in chunks of [`WRITE_CHUNK_BYTES`] written off the
//!    reactor while the next PDUs are received (never the whole instance in memory); the kernel
//!    is asked to start writing each chunk back at once (Linux `sync_file_range`), so that the
//!    fsync of step 4 has little left to do.
//! 3. When the last data fragment arrived, the data set is first walked to its end in the
//!    negotiated transfer syntax (`completeness`; from memory when the whole data set is there
//!    and not deflated, else from the temp file off the reactor): element headers only, values
//!    skipped by seeking (deflated ones inflated as a stream and dropped), so a 512 MiB instance
//!    costs a few KiB of reads. No element may run past the end of the data set or of its
//!    item/sequence, every undefined-length sequence and item must be delimited, native Pixel
//!    Data must hold Rows × Columns × SamplesPerPixel × BitsAllocated/8 × NumberOfFrames bytes
//!    (padded to even or not), encapsulated Pixel Data must end with its sequence delimitation
//!    item, and an image SOP class (or a data set with Rows/Columns) must have Pixel Data.
//!    Only then (dicom-object reserves what an element length says, so lengths must be known
//!    true first) is the header of the data set parsed up to Pixel Data from the first 64 KiB
//!    kept in memory (from the temp file when the header is longer, or deflated beyond them;
//!    the reader inflates deflate): SOP Instance/Class UID (must equal the command's),
//!    Study/Series Instance UID (valid UIDs: they become path components), Modality,
//!    StationName, SeriesDescription. Any failure: 0xC000 with the reason in the Error Comment,
//!    the temp file removed, nothing recorded. (Command sets get the same walk before they are
//!    parsed.)
//! 4. fsync of the file, rename to `data_dir/<Study>/<Series>/<SOP>.dcm` (directories created,
//!    their parents fsynced when created; a re-sent instance replaces the file), fsync of the
//!    series directory.
//! 5. [`InstanceSink::record`] (the service records it in the database, durable when it returns).
//! 6. Only then C-STORE-RSP 0x0000: the data set is complete, its file durable in place and its
//!    row committed. Any failure gives a failure status (see [`status`]) and never
//!    success: out of resources (0xA700) for disk and database errors (and a temp file that
//!    cannot be read back), cannot understand (0xC000) for unparsable or incomplete data sets and
//!    missing/invalid UIDs, 0xA900 when the data set's SOP Class differs from the command's.
//!
//! # Accepted SOP classes and transfer syntaxes
//! See [`ACCEPTED_SOP_CLASSES`] and [`TRANSFER_SYNTAXES`]; anything else is rejected per
//! presentation context (abstract syntax / transfer syntaxes not supported) while the other
//! contexts of the association proceed.
//!
//! # DICOM TLS
//! [`serve_with_tls`] runs the same SCP on a second listener whose connections start with a TLS
//! handshake (rustls, ring provider; see [`tls`]): the same settings, association cap, sink and
//! shutdown as the plain listener, one accept loop for both. `tls::ServerTls::load` reads the
//! PEM files (`[scp.tls]` `cert_file`, `key_file`, optional `client_ca_file`: then clients must
//! present a certificate issued by that CA) and names the setting and the file when one is
//! unusable. The association code is generic over the stream (TCP or TLS). A handshake that fails
//! (an untrusted or missing client certificate, plain DICOM on the TLS port) is logged and the
//! connection closed; a TLS client on the plain port likewise. A connection beyond the cap on the
//! TLS port gets its "too busy" rejection inside TLS, after the handshake.
//!
//! # Timeouts, limits, shutdown
//! A connection holds nothing but a handshake permit until its A-ASSOCIATE-RQ is admitted; a
//! peer that is not allowed in, or says nothing, cannot keep allowed callers out.
//! - `max_handshakes`: connections accepted by TCP whose A-ASSOCIATE-RQ is not yet answered; one
//!   more is closed at once without an answer. `handshake_timeout` (`scp.handshake_seconds`):
//!   the whole A-ASSOCIATE-RQ (on the TLS port: the TLS handshake and the A-ASSOCIATE-RQ together)
//!   must have arrived within it, else the connection is closed.
//! - The A-ASSOCIATE-RQ is peeked and admitted once (`admission`): called AE ours, calling AE on
//!   the allow-list (either refused: rejected-permanent with that reason, no slot taken), then a
//!   slot: `max_associations` accepted associations in all and `max_associations_per_ae` of one
//!   calling AE title (0 = no per-AE cap; above `max_associations`, the same as it). Beyond
//!   either: A-ASSOCIATE-RJ rejected-transient, source service-provider (presentation), reason
//!   local-limit-exceeded, the log naming the cap. The slot is given back when the association
//!   ends.
//! - `read_timeout`: while a message is incomplete (a command or data set in progress), the next
//!   PDU must arrive within it; it is also the write timeout. `min_transfer_rate`: once a message
//!   has been in progress for longer than `read_timeout`, its bytes must average at least this
//!   per second since its first PDU (checked at each PDU and when the wait for the next one
//!   would make it fail; 0 = no minimum), so a peer dripping a few bytes now and then is cut.
//!   `idle_timeout`: an association with no message in progress that receives nothing for that
//!   long is aborted. `max_association_duration` (`scp.max_association_seconds`): an association
//!   is aborted that long after it was accepted, whatever it is doing. Each of these ends the
//!   association with an A-ABORT; a message in progress is dropped (its temp file removed, never
//!   acknowledged).
//! - `max_pdu`: the largest P-DATA PDU we accept (announced in the A-ASSOCIATE-AC). dicom-ul runs
//!   in strict mode: a peer PDU above it aborts that association (this bounds the memory a peer
//!   can make us allocate). What we send is bounded by the peer's announced maximum.
//! - Shutdown (the future given to [`serve`] completes): stop accepting; associations with no
//!   message in progress are aborted at once; the others finish their current message (stored,
//!   recorded, answered) and are then aborted; after `shutdown_grace` whatever is still running
//!   is aborted without a response (its temp file removed; the sender sees the instance failed).

mod admission;
mod association;
mod completeness;
pub mod dimse;
mod limits;
mod negotiation;
mod storage;
#[cfg(test)]
mod tests;
pub mod tls;

pub use dimse::status;
pub use negotiation::VERIFICATION as VERIFICATION_SOP_CLASS;
pub use negotiation::{
    accepted_transfer_syntaxes, is_analysable_sop_class, SopClass, ACCEPTED_SOP_CLASSES,
    TRANSFER_SYNTAXES,
};
pub use storage::{is_valid_uid, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn, Instrument};

/// Data set bytes buffered per association before they are written to the temp file (about
/// a PDU at the default `max_pdu`; at most one such write is in flight per association).
pub const WRITE_CHUNK_BYTES: usize = 64 << 10;

/// What the SCP needs to run (the service builds it from `[scp]` and `[storage]`).
#[derive(Debug, Clone)]
pub struct ScpSettings {
    /// Our AE title; the called AE title of every association must equal it.
    pub ae_title: String,
    /// Calling AE titles allowed to associate; empty = any.
    pub allowed_calling_aes: Vec<String>,
    /// Accepted associations at once (counted once the calling AE is known and admitted);
    /// one more is rejected transient, local limit exceeded.
    pub max_associations: usize,
    /// Accepted associations at once of one calling AE title (0 = no per-AE cap; above
    /// `max_associations` it is `max_associations`).
    pub max_associations_per_ae: usize,
    /// Connections still in the handshake (accepted by TCP, A-ASSOCIATE-RQ not yet answered);
    /// one more is closed without an answer. At least `max_associations`.
    pub max_handshakes: usize,
    /// A new connection must have sent its whole A-ASSOCIATE-RQ within this.
    pub handshake_timeout: Duration,
    /// An association is aborted this long after it was accepted, whatever it is doing.
    pub max_association_duration: Duration,
    /// Bytes per second a message (command and data set) must average once it has been in
    /// progress for longer than `read_timeout`; 0 = no minimum.
    pub min_transfer_rate: u64,
    /// Maximum P-DATA PDU length we receive (announced to the peer).
    pub max_pdu: u32,
    /// Gap allowed between PDUs of one message, write timeout.
    pub read_timeout: Duration,
    /// An association with no message in progress is aborted after this long without a PDU.
    pub idle_timeout: Duration,
    /// Instances go to `data_dir/<Study>/<Series>/<SOP>.dcm`; temp files to `data_dir/tmp/`.
    pub data_dir: PathBuf,
    /// How long a shutdown waits for in-flight messages before aborting them.
    pub shutdown_grace: Duration,
    /// Counted here: associations accepted, instances stored and failed (`/metrics`).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Default for ScpSettings {
    fn default() -> Self {
        ScpSettings {
            ae_title: "HURED_QA".into(),
            allowed_calling_aes: Vec::new(),
            max_associations: 16,
            max_associations_per_ae: 8,
            max_handshakes: 64,
            handshake_timeout: Duration::from_secs(5),
            max_association_duration: Duration::from_secs(3600),
            min_transfer_rate: 8192,
            max_pdu: 131_072,
            read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            data_dir: PathBuf::from("./data"),
            shutdown_grace: Duration::from_secs(30),
            metrics: Default::default(),
        }
    }
}

/// One durably stored instance, handed to the [`InstanceSink`]: its record and where its
/// file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    /// What the store records of it (`store::NewInstance` is this type).
    pub record: InstanceRecord,
    /// `data_dir.join(record.rel_path)`.
    pub path: PathBuf,
}

/// An instance as the SCP received and stored it: the one description of a received instance,
/// recorded by the store as is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceRecord {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    /// The negotiated transfer syntax (that of the stored file).
    pub transfer_syntax: String,
    /// Relative to data_dir, '/' separated: `<Study>/<Series>/<SOP>.dcm`.
    pub rel_path: String,
    /// Size of the Part-10 file in bytes.
    pub size_bytes: i64,
    pub calling_ae: String,
    pub called_ae: String,
    /// The peer's socket address.
    pub peer: String,
    pub modality: Option<String>,
    pub station_name: Option<String>,
    pub series_description: Option<String>,
    /// CT Image Storage or Enhanced CT Image Storage.
    pub analysable: bool,
}

/// A failure of the sink (e.g. the database); the instance is answered with 0xA700.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
}

impl SinkError {
    pub fn new(message: impl std::fmt::Display) -> Self {
        SinkError {
            message: message.to_string(),
        }
    }
}

/// A boxed `Send` future (what [`InstanceSink::record`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where stored instances are recorded. The service implements it with
/// `Store::record_instance` (`series::StoreSink`).
pub trait InstanceSink: Send + Sync + 'static {
    /// Record this instance (committed when it returns `Ok`). Called while its file is being
    /// made durable, before the response; the SCP answers success only when both succeeded.
    fn record(&self, instance: StoredInstance) -> BoxFuture<'_, Result<(), SinkError>>;
    /// Undo [`InstanceSink::record`]: the file could not be put in place at `instance.path`.
    /// If a file is there anyway (the earlier copy of a re-sent instance) it is what the
    /// record must describe; otherwise the record goes.
    fn forget(&self, instance: StoredInstance) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// Errors that stop [`serve`] from starting.
#[derive(Debug, thiserror::Error)]
pub enum ScpError {
    #[error("scp: invalid setting {name}: {what}")]
    Setting { name: &'static str, what: String },
    #[error("scp: cannot prepare the temp folder {path}: {source}; check storage.data_dir exists and is writable")]
    TempDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ScpSettings {
    /// Checks what the SCP itself relies on (the config layer gives key-named messages first).
    pub fn validate(&self) -> Result<(), ScpError> {
        let bad = |name, what: &str| {
            Err(ScpError::Setting {
                name,
                what: what.to_string(),
            })
        };
        let ae = self.ae_title.trim();
        if ae.is_empty()
            || ae.len() > 16
            || !ae.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
        {
            return bad(
                "ae_title",
                "must be 1 to 16 printable ASCII characters without backslash",
            );
        }
        if self.max_associations == 0 {
            return bad("max_associations", "must be at least 1");
        }
        if self.max_handshakes < self.max_associations {
            return bad("max_handshakes", "must be at least max_associations");
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake_timeout", "must be positive");
        }
        if self.max_association_duration.is_zero() {
            return bad("max_association_duration", "must be positive");
        }
        if !(4096..=dicom_ul::pdu::MAXIMUM_PDU_SIZE).contains(&self.max_pdu) {
            return bad("max_pdu", "must be between 4096 and 4294967288 bytes");
        }
        if self.read_timeout.is_zero() {
            return bad("read_timeout", "must be positive");
        }
        if self.idle_timeout.is_zero() {
            return bad("idle_timeout", "must be positive");
        }
        Ok(())
    }
}

/// Render an error with its sources.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

/// Shutdown level broadcast to the association tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Running,
    /// Finish the message in progress, then abort.
    Graceful,
    /// Abort now.
    Hard,
}

/// What every association task shares.
pub(crate) struct Shared {
    pub settings: ScpSettings,
    /// Who gets an association slot.
    pub admission: Arc<admission::Admission>,
    pub sink: Arc<dyn InstanceSink>,
    pub tmp_dir: PathBuf,
    pub transfer_syntaxes: Vec<&'static str>,
    pub shutdown: watch::Receiver<Level>,
}

static NEXT_ASSOCIATION: AtomicU64 = AtomicU64::new(1);

/// Run the SCP on `listener` until `shutdown` completes (e.g. `token.cancelled_owned()` of a
/// tokio-util CancellationToken, `async { rx.changed().await.ok(); }` of a watch channel, or a
/// signal future), then shut down gracefully (see the module docs) and return.
///
/// At start, `data_dir/tmp/` is created and emptied (temp files are incomplete instances that
/// were never acknowledged). Errors only at start; everything later is logged and answered.
pub async fn serve<F>(
    listener: TcpListener,
    settings: ScpSettings,
    sink: Arc<dyn InstanceSink>,
    shutdown: F,
) -> Result<(), ScpError>
where
    F: Future<Output = ()> + Send,
{
    serve_with_tls(listener, None, settings, sink, shutdown).await
}

/// [`serve`] on the plain `listener` and, when given, the DICOM TLS listener `tls` beside it:
/// one SCP (the same settings, association cap, sink and shutdown) on both.
pub async fn serve_with_tls<F>(
    listener: TcpListener,
    tls: Option<tls::TlsListener>,
    settings: ScpSettings,
    sink: Arc<dyn InstanceSink>,
    shutdown: F,
) -> Result<(), ScpError>
where
    F: Future<Output = ()> + Send,
{
    settings.validate()?;
    let tmp_dir = settings.data_dir.join("tmp");
    storage::prepare_tmp_dir(&tmp_dir).map_err(|source| ScpError::TempDir {
        path: tmp_dir.clone(),
        source,
    })?;
    let transfer_syntaxes = accepted_transfer_syntaxes();
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    info!(
        addr = %local,
        ae_title = %settings.ae_title,
        max_associations = settings.max_associations,
        max_associations_per_ae = settings.max_associations_per_ae,
        max_handshakes = settings.max_handshakes,
        max_pdu = settings.max_pdu,
        transfer_syntaxes = ?transfer_syntaxes,
        "DICOM SCP listening"
    );
    if let Some(t) = &tls {
        t.log_listening();
    }

    let (level_tx, level_rx) = watch::channel(Level::Running);
    let handshakes = Arc::new(Semaphore::new(settings.max_handshakes));
    let grace = settings.shutdown_grace;
    let shared = Arc::new(Shared {
        admission: admission::Admission::new(&settings),
        settings,
        sink,
        tmp_dir,
        transfer_syntaxes,
        shutdown: level_rx,
    });
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (accepted, transport) = tls::accept(&listener, tls.as_ref()) => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        warn!(%peer, "cannot set TCP_NODELAY: {e}");
                    }
                    spawn_connection(&shared, &handshakes, &mut tasks, stream, transport, peer);
                }
                Err(e) => {
                    // e.g. EMFILE: keep serving, but do not spin
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => log_join(done),
        }
    }
    drop(listener);
    drop(tls);
    info!(
        in_flight = tasks.len(),
        "DICOM SCP: shutting down, no longer accepting associations"
    );
    let _ = level_tx.send(Level::Graceful);
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(done) => log_join(done),
                None => break,
            },
            _ = &mut deadline => {
                warn!(still_running = tasks.len(), "shutdown grace of {grace:?} over: aborting the remaining associations");
                let _ = level_tx.send(Level::Hard);
                let hard = tokio::time::sleep(Duration::from_secs(2));
                tokio::pin!(hard);
                loop {
                    tokio::select! {
                        done = tasks.join_next() => match done {
                            Some(done) => log_join(done),
                            None => break,
                        },
                        _ = &mut hard => { tasks.abort_all(); break; }
                    }
                }
                while let Some(done) = tasks.join_next().await {
                    log_join(done);
                }
                break;
            }
        }
    }
    info!("DICOM SCP stopped");
    Ok(())
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("association task panicked: {e}");
        }
    }
}

/// One task per connection, if a handshake permit is free (else the connection is closed at
/// once, without an answer: `max_handshakes` connections are still in their handshake).
fn spawn_connection(
    shared: &Arc<Shared>,
    handshakes: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    stream: tokio::net::TcpStream,
    transport: tls::Transport,
    peer: SocketAddr,
) {
    let id = NEXT_ASSOCIATION.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "association",
        id,
        peer = %peer,
        tls = transport.is_tls(),
        calling_ae = tracing::field::Empty,
        called_ae = tracing::field::Empty
    );
    match handshakes.clone().try_acquire_owned() {
        Ok(permit) => {
            let shared = shared.clone();
            tasks.spawn(
                association::handle(shared, stream, transport, peer, id, permit).instrument(span),
            );
        }
        Err(_) => {
            let _enter = span.enter();
            warn!(
                "{} connections are in their handshake (scp.max_handshakes): closed without an answer",
                shared.settings.max_handshakes
            );
            drop(stream);
        }
    }
}
