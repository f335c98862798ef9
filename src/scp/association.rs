//! One connection: its handshake (`admission`), then the DIMSE loop until release, abort, a
//! timeout or limit (`limits`), or shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_ul::association::{Association, AsyncServerAssociation, Error as UlError};
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, PDataValue, PDataValueType, Pdu,
    PresentationContextResultReason,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, info, warn};

use super::admission::{self, Admitted};
use super::dimse::{self, status, Command};
use super::limits::{Expiry, Limits};
use super::negotiation;
use super::storage::{self, is_valid_uid, Failure, Origin, TempInstance};
use super::tls::Transport;
use super::{error_chain as chain, Level, Shared, StoredInstance};

/// Largest command set we accept (real ones are a few hundred bytes).
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Accept (or reject) one connection and serve it: on the TLS port its TLS handshake first
/// (the TLS handshake and the A-ASSOCIATE-RQ within `handshake_timeout`). The handshake permit
/// is given back once the association is accepted (or the connection ends); the association's
/// slot (its ticket) when it ends.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    stream: TcpStream,
    transport: Transport,
    peer: SocketAddr,
    id: u64,
    handshake_permit: OwnedSemaphorePermit,
) {
    match transport {
        Transport::Plain => {
            let Some(admitted) = admission::handshake(&shared, stream).await else {
                return;
            };
            drop(handshake_permit);
            serve(shared, admitted, peer, id).await;
        }
        Transport::Tls(tls) => {
            let Some(admitted) = admission::handshake_tls(&shared, stream, tls).await else {
                return;
            };
            drop(handshake_permit);
            serve(shared, admitted, peer, id).await;
        }
    }
}

/// Serve an admitted association until it ends; its slot is given back then.
async fn serve<S>(shared: Arc<Shared>, admitted: Admitted<S>, peer: SocketAddr, id: u64)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Admitted { assoc, ticket } = admitted;
    let accepted_at = Instant::now();
    let calling = assoc.peer_ae_title().to_string();
    let called = assoc.called_ae_title().to_string();
    let span = tracing::Span::current();
    span.record("calling_ae", calling.as_str());
    span.record("called_ae", called.as_str());
    let accepted: Vec<String> = assoc
        .presentation_contexts()
        .iter()
        .map(|pc| {
            format!(
                "{}:{}:{}",
                pc.id,
                pc.abstract_syntax,
                if pc.reason == PresentationContextResultReason::Acceptance {
                    pc.transfer_syntax.as_str()
                } else {
                    "rejected"
                }
            )
        })
        .collect();
    debug!(
        peer_max_pdu = assoc.requestor_max_pdu_length(),
        contexts = ?accepted,
        "association accepted"
    );
    shared.settings.metrics.association();
    let mut conn = Connection {
        shared: shared.clone(),
        assoc,
        id,
        origin: Origin {
            calling_ae: calling,
            called_ae: called,
            peer: peer.to_string(),
            transfer_syntax: String::new(),
        },
        pending: Pending::Idle,
        stats: Stats::default(),
        shutdown: shared.shutdown.clone(),
        limits: Limits::new(&shared.settings, accepted_at),
    };
    let end = conn.run().await;
    let s = &conn.stats;
    info!(
        peer = %peer,
        calling_ae = %conn.origin.calling_ae,
        called_ae = %conn.origin.called_ae,
        end = %end,
        stored = s.stored,
        failed = s.failed,
        echoes = s.echoes,
        bytes = s.bytes,
        duration_ms = accepted_at.elapsed().as_millis() as u64,
        "association ended"
    );
    drop(ticket);
}

#[derive(Debug, Default)]
struct Stats {
    stored: u64,
    failed: u64,
    echoes: u64,
    bytes: u64,
}

/// How the association ended (for the summary line).
#[derive(Debug)]
enum End {
    Released,
    AbortedByPeer,
    ClosedByPeer,
    IdleTimeout,
    ReadTimeout,
    /// The message in progress averaged less than `min_transfer_rate`.
    TooSlow {
        bytes: u64,
        elapsed: Duration,
        rate: u64,
    },
    /// `max_association_duration` reached.
    TimeLimit(Duration),
    Shutdown,
    ProtocolError(String),
    ConnectionError(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Released => f.write_str("released"),
            End::AbortedByPeer => f.write_str("aborted by peer"),
            End::ClosedByPeer => f.write_str("connection closed by peer without release"),
            End::IdleTimeout => f.write_str("aborted: idle timeout"),
            End::ReadTimeout => f.write_str("aborted: read timeout in the middle of a message"),
            End::TooSlow {
                bytes,
                elapsed,
                rate,
            } => write!(
                f,
                "aborted: transfer too slow: {bytes} bytes of the message in progress in {:.1} s, \
                 below {rate} bytes/s (scp.min_transfer_rate)",
                elapsed.as_secs_f64()
            ),
            End::TimeLimit(limit) => write!(
                f,
                "aborted: association time limit of {} s reached (scp.max_association_seconds)",
                limit.as_secs()
            ),
            End::Shutdown => f.write_str("aborted: server shutdown"),
            End::ProtocolError(e) => write!(f, "aborted: protocol error: {e}"),
            End::ConnectionError(e) => write!(f, "connection error: {e}"),
        }
    }
}

/// Where the DIMSE message assembly stands.
enum Pending {
    Idle,
    /// Command fragments received so far.
    Command {
        pc: u8,
        buf: Vec<u8>,
    },
    /// Command complete, its data set is arriving.
    Data {
        pc: u8,
        cmd: Command,
        sink: DataSink,
    },
}

enum DataSink {
    /// A C-STORE being written to its temp file.
    Store(Receiving),
    /// A C-STORE that already failed (the data set is read and dropped, then answered).
    Failed(Failure),
    /// A request we do not implement: read and drop its data set, then answer.
    Unsupported,
}

/// A C-STORE whose data set is arriving: its temp file and the chunk being written (at most
/// one write in flight, so the file is written in order while the next PDUs are received).
struct Receiving {
    temp: Box<TempInstance>,
    write: Option<tokio::task::JoinHandle<Result<Vec<u8>, Failure>>>,
}

impl Receiving {
    /// Wait for the write in flight; its emptied buffer is returned for reuse.
    async fn settle(&mut self) -> Result<Vec<u8>, Failure> {
        match self.write.take() {
            None => Ok(Vec::new()),
            Some(handle) => handle
                .await
                .map_err(|e| Failure::resources(format!("write task failed: {e}")))?,
        }
    }

    /// Start writing the buffered bytes off the reactor (after the previous write finished).
    async fn flush(&mut self) -> Result<(), Failure> {
        let spare = self.settle().await?;
        let chunk = self.temp.take_chunk(spare)?;
        self.write = Some(tokio::task::spawn_blocking(move || chunk.write()));
        Ok(())
    }
}

struct Connection<S> {
    shared: Arc<Shared>,
    assoc: AsyncServerAssociation<S>,
    id: u64,
    origin: Origin,
    pending: Pending,
    stats: Stats,
    shutdown: tokio::sync::watch::Receiver<Level>,
    limits: Limits,
}

/// A fatal condition for this association (answered with A-ABORT).
struct Fatal(End);

fn protocol(what: impl Into<String>) -> Fatal {
    Fatal(End::ProtocolError(what.into()))
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn run(&mut self) -> End {
        let end = loop {
            let busy = !matches!(self.pending, Pending::Idle);
            let level = *self.shutdown.borrow();
            if level == Level::Hard || (level == Level::Graceful && !busy) {
                break End::Shutdown;
            }
            let (deadline, expiry) = self.limits.deadline(Instant::now());
            let received = tokio::select! {
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        // the server is gone: nothing will ever signal again
                        break End::Shutdown;
                    }
                    continue;
                }
                r = tokio::time::timeout_at(deadline.into(), self.assoc.receive()) => r,
            };
            let pdu = match received {
                Err(_) => break self.expired(expiry),
                Ok(Err(UlError::ConnectionClosed { .. })) => break End::ClosedByPeer,
                Ok(Err(e @ UlError::ReceivePdu { .. })) => {
                    let msg = chain(&e);
                    if msg.contains("closed") || msg.contains("reset") {
                        break End::ConnectionError(msg);
                    }
                    break End::ProtocolError(msg);
                }
                Ok(Err(e)) => break End::ConnectionError(chain(&e)),
                Ok(Ok(pdu)) => pdu,
            };
            match pdu {
                Pdu::PData { data } => {
                    if let Err(Fatal(end)) = self.on_pdata(data).await {
                        break end;
                    }
                    if matches!(self.pending, Pending::Idle) {
                        self.limits.message_done();
                    }
                    if let Some(expiry) = self.limits.check(Instant::now()) {
                        break self.expired(expiry);
                    }
                }
                Pdu::ReleaseRQ => {
                    if busy {
                        warn!("A-RELEASE-RQ in the middle of a message: that message is dropped");
                    }
                    self.pending = Pending::Idle;
                    if let Err(e) = self.assoc.send(&Pdu::ReleaseRP).await {
                        break End::ConnectionError(format!(
                            "cannot send A-RELEASE-RP: {}",
                            chain(&e)
                        ));
                    }
                    let _ = self.assoc.inner_stream().shutdown().await;
                    break End::Released;
                }
                Pdu::AbortRQ { .. } => break End::AbortedByPeer,
                other => {
                    break End::ProtocolError(format!("unexpected {}", other.short_description()))
                }
            }
        };
        // whatever was in progress is dropped (its temp file removed, never acknowledged)
        self.pending = Pending::Idle;
        let abort = match &end {
            End::Released | End::AbortedByPeer | End::ClosedByPeer | End::ConnectionError(_) => {
                None
            }
            End::IdleTimeout | End::Shutdown => Some(AbortRQSource::ServiceUser),
            End::TimeLimit(_) => Some(AbortRQSource::ServiceUser),
            End::ReadTimeout | End::TooSlow { .. } => Some(AbortRQSource::ServiceProvider(
                AbortRQServiceProviderReason::ReasonNotSpecified,
            )),
            End::ProtocolError(e) => Some(AbortRQSource::ServiceProvider(
                if e.contains("unexpected") {
                    AbortRQServiceProviderReason::UnexpectedPdu
                } else if e.contains("too large") || e.contains("PDU") {
                    AbortRQServiceProviderReason::InvalidPduParameter
                } else {
                    AbortRQServiceProviderReason::ReasonNotSpecified
                },
            )),
        };
        match &end {
            End::Released | End::AbortedByPeer | End::IdleTimeout | End::Shutdown => {}
            other => warn!("{other}"),
        }
        if let Some(source) = abort {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = self.assoc.send(&Pdu::AbortRQ { source }).await;
                let _ = self.assoc.inner_stream().shutdown().await;
            })
            .await;
        }
        end
    }

    /// How the association ends when a limit was reached.
    fn expired(&self, expiry: Expiry) -> End {
        match expiry {
            Expiry::Idle => End::IdleTimeout,
            Expiry::Read => End::ReadTimeout,
            Expiry::TooSlow { bytes, elapsed } => End::TooSlow {
                bytes,
                elapsed,
                rate: self.shared.settings.min_transfer_rate,
            },
            Expiry::TimeLimit => End::TimeLimit(self.shared.settings.max_association_duration),
        }
    }

    async fn on_pdata(&mut self, pdvs: Vec<PDataValue>) -> Result<(), Fatal> {
        let now = Instant::now();
        for pdv in pdvs {
            let PDataValue {
                presentation_context_id: pc,
                value_type,
                is_last,
                data,
            } = pdv;
            if matches!(self.pending, Pending::Idle) {
                self.limits.start_message(now);
            }
            self.limits.add(data.len());
            match value_type {
                PDataValueType::Command => {
                    match &self.pending {
                        Pending::Idle => {
                            self.pending = Pending::Command {
                                pc,
                                buf: Vec::with_capacity(data.len()),
                            }
                        }
                        Pending::Command { pc: p, .. } if *p == pc => {}
                        Pending::Command { pc: p, .. } => {
                            return Err(protocol(format!(
                                "command fragment on presentation context {pc} while the command on context {p} is incomplete"
                            )))
                        }
                        Pending::Data { .. } => {
                            return Err(protocol("command fragment while a data set was expected"))
                        }
                    }
                    let Pending::Command { buf, .. } = &mut self.pending else {
                        unreachable!()
                    };
                    buf.extend_from_slice(&data);
                    if buf.len() > MAX_COMMAND_BYTES {
                        return Err(protocol("command set larger than 64 KiB"));
                    }
                    if is_last {
                        let Pending::Command { pc, buf } =
                            std::mem::replace(&mut self.pending, Pending::Idle)
                        else {
                            unreachable!()
                        };
                        self.on_command(pc, &buf).await?;
                    }
                }
                PDataValueType::Data => {
                    let Pending::Data { pc: p, sink, .. } = &mut self.pending else {
                        return Err(protocol("data fragment without a command"));
                    };
                    if *p != pc {
                        return Err(protocol(format!(
                            "data fragment on presentation context {pc}, the command was on {p}"
                        )));
                    }
                    self.stats.bytes += data.len() as u64;
                    if let DataSink::Store(rx) = sink {
                        rx.temp.push(&data);
                        // (the last fragment is written with the fsync that follows)
                        if rx.temp.should_flush() && !is_last {
                            self.flush_temp().await;
                        }
                    }
                    if is_last {
                        let Pending::Data { pc, cmd, sink } =
                            std::mem::replace(&mut self.pending, Pending::Idle)
                        else {
                            unreachable!()
                        };
                        self.on_data_set(pc, cmd, sink).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Start writing the buffered data to the temp file off the reactor; a failure turns the
    /// store into a failed one (its remaining data is dropped, the answer is 0xA700).
    async fn flush_temp(&mut self) {
        let Pending::Data { sink, .. } = &mut self.pending else {
            return;
        };
        let DataSink::Store(rx) = sink else {
            return;
        };
        if let Err(f) = rx.flush().await {
            *sink = DataSink::Failed(f);
        }
    }

    /// The accepted presentation context `pc`, or a protocol error.
    fn context(&self, pc: u8) -> Result<(String, String), Fatal> {
        self.assoc
            .presentation_contexts()
            .iter()
            .find(|c| c.id == pc && c.reason == PresentationContextResultReason::Acceptance)
            .map(|c| (c.abstract_syntax.clone(), c.transfer_syntax.clone()))
            .ok_or_else(|| {
                protocol(format!(
                    "message on presentation context {pc}, which was not accepted"
                ))
            })
    }

    async fn on_command(&mut self, pc: u8, bytes: &[u8]) -> Result<(), Fatal> {
        let (abstract_syntax, transfer_syntax) = self.context(pc)?;
        let cmd = dimse::parse_command(bytes).map_err(protocol)?;
        debug!(
            pc,
            field = format_args!("{:#06x}", cmd.field),
            message_id = ?cmd.message_id,
            "command"
        );
        match cmd.field {
            dimse::C_ECHO_RQ if !cmd.has_data_set => {
                let id = cmd
                    .message_id
                    .ok_or_else(|| protocol("C-ECHO-RQ without MessageID"))?;
                self.stats.echoes += 1;
                self.respond(
                    pc,
                    dimse::C_ECHO_RSP,
                    id,
                    Some(
                        cmd.affected_sop_class
                            .as_deref()
                            .unwrap_or(negotiation::VERIFICATION),
                    ),
                    None,
                    status::SUCCESS,
                    None,
                )
                .await
            }
            dimse::C_STORE_RQ if cmd.has_data_set => {
                if cmd.message_id.is_none() {
                    return Err(protocol("C-STORE-RQ without MessageID"));
                }
                let sink = self
                    .start_store(&cmd, &abstract_syntax, &transfer_syntax)
                    .await;
                self.pending = Pending::Data { pc, cmd, sink };
                Ok(())
            }
            dimse::C_STORE_RQ => {
                // a C-STORE without a data set cannot be stored
                let id = cmd
                    .message_id
                    .ok_or_else(|| protocol("C-STORE-RQ without MessageID"))?;
                self.stats.failed += 1;
                self.respond(
                    pc,
                    dimse::C_STORE_RSP,
                    id,
                    cmd.affected_sop_class.as_deref(),
                    cmd.affected_sop_instance.as_deref(),
                    status::CANNOT_UNDERSTAND,
                    Some("C-STORE-RQ without a data set"),
                )
                .await
            }
            dimse::C_CANCEL_RQ => Ok(()), // nothing of ours can be cancelled; no response
            field if field & 0x8000 != 0 => Err(protocol(format!(
                "unexpected response command {field:#06x} (this SCP sends no requests)"
            ))),
            _ if cmd.has_data_set => {
                self.pending = Pending::Data {
                    pc,
                    cmd,
                    sink: DataSink::Unsupported,
                };
                Ok(())
            }
            _ => self.answer_unsupported(pc, &cmd).await,
        }
    }

    async fn answer_unsupported(&mut self, pc: u8, cmd: &Command) -> Result<(), Fatal> {
        let id = cmd.message_id.ok_or_else(|| {
            protocol(format!(
                "unsupported command {:#06x} without MessageID",
                cmd.field
            ))
        })?;
        warn!(
            "unsupported command {:#06x} (message {id}): answered {:#06x}",
            cmd.field,
            status::UNRECOGNIZED_OPERATION
        );
        self.respond(
            pc,
            cmd.field | 0x8000,
            id,
            cmd.affected_sop_class.as_deref(),
            cmd.affected_sop_instance.as_deref(),
            status::UNRECOGNIZED_OPERATION,
            Some("operation not supported by this SCP"),
        )
        .await
    }

    /// Validate the C-STORE command and open its temp file (or decide its failure now).
    async fn start_store(
        &mut self,
        cmd: &Command,
        abstract_syntax: &str,
        transfer_syntax: &str,
    ) -> DataSink {
        let (Some(class), Some(instance)) = (
            cmd.affected_sop_class.clone(),
            cmd.affected_sop_instance.clone(),
        ) else {
            return DataSink::Failed(Failure::cannot_understand(
                "C-STORE-RQ without AffectedSOPClassUID/AffectedSOPInstanceUID",
            ));
        };
        if !is_valid_uid(&class) || !is_valid_uid(&instance) {
            return DataSink::Failed(Failure::cannot_understand(format!(
                "invalid Affected SOP Class/Instance UID {class:?} / {instance:?}"
            )));
        }
        if class != abstract_syntax {
            return DataSink::Failed(Failure {
                status: status::SOP_CLASS_NOT_SUPPORTED,
                reason: format!(
                    "AffectedSOPClassUID {class} sent on the presentation context of {abstract_syntax}"
                ),
            });
        }
        let mut origin = self.origin.clone();
        origin.transfer_syntax = transfer_syntax.to_string();
        let tmp_dir = self.shared.tmp_dir.clone();
        let tag = format!("{}-{}", self.id, cmd.message_id.unwrap_or(0));
        let created = tokio::task::spawn_blocking(move || {
            TempInstance::create(&tmp_dir, &tag, &class, &instance, origin)
        })
        .await;
        match created {
            Ok(Ok(t)) => DataSink::Store(Receiving {
                temp: Box::new(t),
                write: None,
            }),
            Ok(Err(f)) => DataSink::Failed(f),
            Err(e) => DataSink::Failed(Failure::resources(format!("temp file task failed: {e}"))),
        }
    }

    async fn on_data_set(&mut self, pc: u8, cmd: Command, sink: DataSink) -> Result<(), Fatal> {
        let id = cmd.message_id.unwrap_or(0);
        let class = cmd.affected_sop_class.clone();
        let instance = cmd.affected_sop_instance.clone();
        let outcome = match sink {
            DataSink::Unsupported => return self.answer_unsupported(pc, &cmd).await,
            DataSink::Failed(f) => Err(f),
            DataSink::Store(mut rx) => match rx.settle().await {
                Ok(_) => self.store(rx.temp).await,
                Err(f) => Err(f),
            },
        };
        let (st, comment) = match outcome {
            Ok(_) => {
                self.stats.stored += 1;
                self.shared.settings.metrics.stored();
                (status::SUCCESS, None)
            }
            Err(f) => {
                self.stats.failed += 1;
                self.shared.settings.metrics.failed();
                warn!(
                    sop_instance_uid = instance.as_deref().unwrap_or("?"),
                    status = format_args!("{:#06x}", f.status),
                    "C-STORE failed: {}",
                    f.reason
                );
                (f.status, Some(f.reason))
            }
        };
        self.respond(
            pc,
            dimse::C_STORE_RSP,
            id,
            class.as_deref(),
            instance.as_deref(),
            st,
            comment.as_deref(),
        )
        .await
    }

    /// Make the file durable and record it, the two at once. Ok only when both are done: the
    /// file fsynced, renamed into place and its folder fsynced, and its row committed. If the
    /// file fails after the row was committed, the row is undone ([`InstanceSink::forget`]); a
    /// crash in between leaves a row without its file, which the service's start-up recovery
    /// removes (it was never acknowledged).
    async fn store(&self, mut temp: Box<TempInstance>) -> Result<StoredInstance, Failure> {
        let data_dir = self.shared.settings.data_dir.clone();
        let t0 = Instant::now();
        // Header and completeness: a data set held whole in the bytes kept in memory (not
        // deflated) is checked here, without I/O; a larger one (every CT image) is walked in its
        // temp file off the reactor (element headers only, values skipped by seeking). Nothing
        // is recorded or renamed before this passed.
        let (temp, stored) = match temp.describe(&data_dir)? {
            Some(stored) => (temp, stored),
            None => {
                let dir = data_dir.clone();
                tokio::task::spawn_blocking(move || {
                    temp.describe_from_file(&dir).map(|stored| (temp, stored))
                })
                .await
                .map_err(|e| Failure::resources(format!("storage task failed: {e}")))??
            }
        };
        let file = {
            let to = stored.clone();
            tokio::task::spawn_blocking(move || {
                let r = temp.commit_file(&data_dir, &to);
                (r, Instant::now())
            })
        };
        let record = async {
            let r = self.shared.sink.record(stored.clone()).await;
            (r, Instant::now())
        };
        let (file, (recorded, t_record)) = tokio::join!(file, record);
        let (filed, t_file) = match file {
            Ok((r, t)) => (r, t),
            Err(e) => (
                Err(Failure::resources(format!("storage task failed: {e}"))),
                Instant::now(),
            ),
        };
        match (filed, recorded) {
            (Ok(()), Ok(())) => {
                debug!(
                    sop_instance_uid = %stored.record.sop_instance_uid,
                    path = %stored.record.rel_path,
                    bytes = stored.record.size_bytes,
                    file_us = (t_file - t0).as_micros() as u64,
                    record_us = (t_record - t0).as_micros() as u64,
                    "stored"
                );
                Ok(stored)
            }
            (Err(f), Ok(())) => {
                if let Err(e) = self.shared.sink.forget(stored.clone()).await {
                    warn!(
                        sop_instance_uid = %stored.record.sop_instance_uid,
                        "the record of an instance whose file failed cannot be undone: {e}; \
                         the next start of the service removes it"
                    );
                }
                Err(f)
            }
            // Not recorded: the sender is told the instance failed (0xA700) and sends it again;
            // nothing unacknowledged is kept (a file in place is removed).
            (filed, Err(e)) => {
                if filed.is_ok() {
                    let path = stored.path.clone();
                    let removed =
                        tokio::task::spawn_blocking(move || storage::remove_stored(&path)).await;
                    if !matches!(removed, Ok(Ok(()))) {
                        warn!(
                            sop_instance_uid = %stored.record.sop_instance_uid,
                            "the file of an instance that could not be recorded cannot be \
                             removed; the next start of the service records it"
                        );
                    }
                }
                Err(Failure::resources(format!(
                    "cannot record the instance: {e}"
                )))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn respond(
        &mut self,
        pc: u8,
        field: u16,
        message_id: u16,
        class: Option<&str>,
        instance: Option<&str>,
        st: u16,
        comment: Option<&str>,
    ) -> Result<(), Fatal> {
        let data = dimse::encode_response(field, message_id, class, instance, st, comment);
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data,
            }],
        };
        self.assoc.send(&pdu).await.map_err(|e| {
            Fatal(End::ConnectionError(format!(
                "cannot send the response: {}",
                chain(&e)
            )))
        })
    }
}
