//! Admission: from a TCP connection to an accepted association, and who may hold a slot.
//!
//! A slot ([`Ticket`]) is taken only once the calling AE title is known and allowed, so a
//! connection that never sends its A-ASSOCIATE-RQ, or sends one with a wrong called AE or a
//! refused calling AE, holds none. One function decides ([`Admission::admit`]): called AE, calling
//! AE allow-list, the cap on accepted associations (`max_associations`) and the cap per calling AE
//! (`max_associations_per_ae`).
//!
//! The handshake of a plain TCP connection ([`handshake`]): the A-ASSOCIATE-RQ is *peeked* (read
//! without consuming it) within `handshake_timeout` and admitted; a busy answer is our own
//! A-ASSOCIATE-RJ rejected-transient, service-provider (presentation), local-limit-exceeded
//! ([`negotiation::reject_busy`]); otherwise dicom-ul reads the same bytes and negotiates, its
//! access control ([`AePolicy`]) keeping the ticket taken here, or answering the AE refusals.
//! When the request cannot be peeked (larger than [`PEEK_MAX`], or a stream that cannot peek such
//! as TLS), [`AePolicy`] admits it itself; a busy refusal there can only be answered with dicom-ul's
//! rejected-permanent, service-user, no-reason-given (logged as such).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dicom_ul::association::server::AccessControl;
use dicom_ul::association::{AsyncServerAssociation, Error as UlError};
use dicom_ul::pdu::{AssociationRJServiceUserReason, Pdu, UserIdentity};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::negotiation;
use super::{error_chain as chain, ScpSettings, Shared};

/// The largest A-ASSOCIATE-RQ screened by peeking (bytes, header included); a larger one is
/// admitted by [`AePolicy`] while dicom-ul reads it.
pub(crate) const PEEK_MAX: usize = 64 << 10;

/// Association slots: the caps and the slots in use.
#[derive(Debug)]
pub(crate) struct Admission {
    ae_title: String,
    allowed_calling: Vec<String>,
    max_associations: usize,
    /// 0 = no per-AE cap.
    max_per_ae: usize,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    total: usize,
    per_ae: HashMap<String, usize>,
}

/// Why an association is not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The called AE title is not ours.
    CalledAe,
    /// The calling AE title is not on the allow-list.
    CallingAe,
    /// Every slot (`max_associations`) is in use.
    Busy { max: usize },
    /// This calling AE holds all the slots it may (`max_associations_per_ae`).
    BusyForAe { max: usize },
}

impl Refusal {
    /// A transient refusal (the caller may try again later), as opposed to an AE refusal.
    pub fn is_busy(&self) -> bool {
        matches!(self, Refusal::Busy { .. } | Refusal::BusyForAe { .. })
    }

    /// The reason dicom-ul's access control answers it with (rejected-permanent, service-user).
    pub fn service_user_reason(&self) -> AssociationRJServiceUserReason {
        match self {
            Refusal::CalledAe => AssociationRJServiceUserReason::CalledAETitleNotRecognized,
            Refusal::CallingAe => AssociationRJServiceUserReason::CallingAETitleNotRecognized,
            Refusal::Busy { .. } | Refusal::BusyForAe { .. } => {
                AssociationRJServiceUserReason::NoReasonGiven
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::CalledAe => f.write_str("called AE title is not ours"),
            Refusal::CallingAe => f.write_str("calling AE title is not allowed"),
            Refusal::Busy { max } => write!(
                f,
                "all {max} association slots are in use (scp.max_associations)"
            ),
            Refusal::BusyForAe { max } => write!(
                f,
                "this calling AE holds its {max} association slots (scp.max_associations_per_ae)"
            ),
        }
    }
}

/// One admitted association's slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    calling: String,
}

impl Ticket {
    /// The calling AE title it was admitted for (trimmed).
    pub fn calling(&self) -> &str {
        &self.calling
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut used = self.admission.used();
        used.total = used.total.saturating_sub(1);
        if let Some(n) = used.per_ae.get_mut(&self.calling) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                used.per_ae.remove(&self.calling);
            }
        }
    }
}

impl Admission {
    pub fn new(settings: &ScpSettings) -> Arc<Admission> {
        Arc::new(Admission {
            ae_title: settings.ae_title.trim().to_string(),
            allowed_calling: settings
                .allowed_calling_aes
                .iter()
                .map(|a| a.trim().to_string())
                .collect(),
            max_associations: settings.max_associations,
            max_per_ae: settings.max_associations_per_ae,
            used: Mutex::new(Used::default()),
        })
    }

    fn used(&self) -> MutexGuard<'_, Used> {
        // the counters stay consistent under a panic elsewhere: every update is one statement
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit an association from `calling` to `called` (AE titles, compared trimmed): the AE
    /// checks first (they take nothing), then the caps.
    pub fn admit(self: &Arc<Self>, calling: &str, called: &str) -> Result<Ticket, Refusal> {
        let calling = calling.trim();
        if called.trim() != self.ae_title {
            return Err(Refusal::CalledAe);
        }
        if !self.allowed_calling.is_empty() && !self.allowed_calling.iter().any(|a| a == calling) {
            return Err(Refusal::CallingAe);
        }
        let mut used = self.used();
        if used.total >= self.max_associations {
            return Err(Refusal::Busy {
                max: self.max_associations,
            });
        }
        let of_ae = used.per_ae.get(calling).copied().unwrap_or(0);
        if self.max_per_ae > 0 && of_ae >= self.max_per_ae {
            return Err(Refusal::BusyForAe {
                max: self.max_per_ae,
            });
        }
        used.total += 1;
        used.per_ae.insert(calling.to_string(), of_ae + 1);
        Ok(Ticket {
            admission: self.clone(),
            calling: calling.to_string(),
        })
    }

    /// Slots in use: in all, and by `calling`.
    pub fn in_use(&self, calling: &str) -> (usize, usize) {
        let used = self.used();
        (
            used.total,
            used.per_ae.get(calling.trim()).copied().unwrap_or(0),
        )
    }
}

/// The AE titles of an A-ASSOCIATE-RQ as [`AePolicy`] saw them, and its refusal if any (for the
/// log line of a rejection).
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub calling: String,
    pub called: String,
    pub refusal: Option<Refusal>,
}

/// dicom-ul's access control: the association is admitted by [`Admission::admit`] (called AE
/// ours, calling AE on the allow-list, a slot free), unless the handshake already admitted this
/// very request by peeking (then its ticket is in `ticket`). The ticket of an accepted association
/// is left in `ticket`; what was seen is recorded in `seen`.
pub(crate) struct AePolicy {
    pub admission: Arc<Admission>,
    pub ticket: Arc<Mutex<Option<Ticket>>>,
    pub seen: Arc<Mutex<Option<Seen>>>,
}

impl AePolicy {
    pub fn new(admission: Arc<Admission>, ticket: Arc<Mutex<Option<Ticket>>>) -> Self {
        AePolicy {
            admission,
            ticket,
            seen: Arc::default(),
        }
    }
}

impl AccessControl for AePolicy {
    fn check_access(
        &self,
        _this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        let mut ticket = lock(&self.ticket);
        let refusal = match ticket.as_ref() {
            // admitted while peeking at these same bytes
            Some(t) if t.calling() == calling_ae_title.trim() => None,
            _ => {
                *ticket = None;
                match self.admission.admit(calling_ae_title, called_ae_title) {
                    Ok(t) => {
                        *ticket = Some(t);
                        None
                    }
                    Err(refusal) => {
                        if refusal.is_busy() {
                            warn!(
                                calling_ae = %calling_ae_title,
                                "{refusal}: rejected (permanent, service user, no reason given: \
                                 a connection that could not be screened cannot be told \
                                 \"transient, local limit exceeded\")"
                            );
                        }
                        Some(refusal)
                    }
                }
            }
        };
        *lock(&self.seen) = Some(Seen {
            calling: calling_ae_title.to_string(),
            called: called_ae_title.to_string(),
            refusal: refusal.clone(),
        });
        match refusal {
            None => Ok(()),
            Some(r) => Err(r.service_user_reason()),
        }
    }
}

/// What peeking at a new connection's first PDU decided.
#[derive(Debug)]
pub(crate) enum Screened {
    /// A whole A-ASSOCIATE-RQ, admitted.
    Admitted(Ticket),
    /// A whole A-ASSOCIATE-RQ, refused.
    Refused(Refusal),
    /// Left to dicom-ul and [`AePolicy`] (not an A-ASSOCIATE-RQ, unparsable, or too large).
    Unscreened(&'static str),
}

/// Peek at the connection until its first PDU is complete (no byte is consumed), then admit
/// it if it is an A-ASSOCIATE-RQ. Runs until then: the caller bounds it with the handshake
/// deadline. A peer that closes before its first byte gives `Err`.
pub(crate) async fn screen(
    stream: &TcpStream,
    admission: &Arc<Admission>,
    max_pdu: u32,
) -> std::io::Result<Screened> {
    const HEADER: usize = 6;
    let mut buf = vec![0u8; HEADER];
    let mut header_seen = false;
    let mut pause = Duration::from_millis(5);
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if n == buf.len() && !header_seen {
            if buf[0] != 0x01 {
                return Ok(Screened::Unscreened(
                    "the first PDU is not an A-ASSOCIATE-RQ",
                ));
            }
            let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
            if len.saturating_add(HEADER) > PEEK_MAX {
                return Ok(Screened::Unscreened(
                    "the A-ASSOCIATE-RQ is too large to peek",
                ));
            }
            header_seen = true;
            buf.resize(HEADER + len, 0);
            continue;
        }
        if n == buf.len() {
            return Ok(match dicom_ul::read_pdu(&buf[..], max_pdu, true) {
                Ok(Some(Pdu::AssociationRQ(rq))) => {
                    let span = tracing::Span::current();
                    span.record("calling_ae", rq.calling_ae_title.as_str());
                    span.record("called_ae", rq.called_ae_title.as_str());
                    match admission.admit(&rq.calling_ae_title, &rq.called_ae_title) {
                        Ok(ticket) => Screened::Admitted(ticket),
                        Err(refusal) => Screened::Refused(refusal),
                    }
                }
                _ => Screened::Unscreened("the A-ASSOCIATE-RQ cannot be read"),
            });
        }
        // part of the PDU is there: look again shortly (peek does not wait for more bytes)
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// An accepted association and its slot.
pub(crate) struct Admitted<S> {
    pub assoc: AsyncServerAssociation<S>,
    pub ticket: Ticket,
}

/// The handshake of a new plain TCP connection, within `handshake_timeout`: screened, then
/// rejected busy, or negotiated by dicom-ul (see the module docs). `None` when it ended there
/// (logged).
pub(crate) async fn handshake(shared: &Shared, stream: TcpStream) -> Option<Admitted<TcpStream>> {
    let settings = &shared.settings;
    let limit = settings.handshake_timeout;
    let deadline = Instant::now() + limit;
    let screened = tokio::time::timeout_at(
        deadline,
        screen(&stream, &shared.admission, settings.max_pdu),
    )
    .await;
    let ticket = Arc::new(Mutex::new(None));
    match screened {
        Err(_) => {
            warn!("no complete A-ASSOCIATE-RQ within {limit:?} (scp.handshake_seconds): closed");
            return None;
        }
        Ok(Err(e)) => {
            debug!("connection closed before an A-ASSOCIATE-RQ: {e}");
            return None;
        }
        Ok(Ok(Screened::Refused(refusal))) if refusal.is_busy() => {
            let left = deadline.saturating_duration_since(Instant::now());
            negotiation::reject_busy(stream, left, settings.max_pdu, &refusal.to_string()).await;
            return None;
        }
        Ok(Ok(Screened::Admitted(t))) => *lock(&ticket) = Some(t),
        // AE refusals are answered by dicom-ul through AePolicy, with their reason
        Ok(Ok(Screened::Refused(_))) => {}
        Ok(Ok(Screened::Unscreened(why))) => debug!("not screened: {why}"),
    }
    let (options, seen) = acceptor(shared, &ticket);
    let established = tokio::time::timeout_at(deadline, options.establish_async(stream)).await;
    negotiated(shared, established, &ticket, &seen).await
}

/// The handshake of a connection on the TLS port, within `handshake_timeout`: the TLS handshake
/// and the A-ASSOCIATE-RQ, admitted by [`AePolicy`] (an encrypted request cannot be peeked).
/// When every slot is taken before it starts, the request is answered rejected-transient,
/// local-limit-exceeded inside TLS (`tls::reject_busy`); a per-AE cap reached can only be
/// answered by dicom-ul's rejected-permanent (logged as such).
pub(crate) async fn handshake_tls(
    shared: &Shared,
    stream: TcpStream,
    tls: super::tls::ServerTls,
) -> Option<Admitted<dicom_ul::association::server::AsyncTlsStream>> {
    let settings = &shared.settings;
    let limit = settings.handshake_timeout;
    let deadline = Instant::now() + limit;
    let (in_use, _) = shared.admission.in_use("");
    if in_use >= settings.max_associations {
        let why = format!(
            "{in_use} associations in progress (scp.max_associations = {})",
            settings.max_associations
        );
        super::tls::reject_busy(tls, stream, limit, settings.max_pdu, &why).await;
        return None;
    }
    let ticket = Arc::new(Mutex::new(None));
    let (options, seen) = acceptor(shared, &ticket);
    let options = options.tls_config(tls.config());
    let established = tokio::time::timeout_at(deadline, options.establish_tls_async(stream)).await;
    negotiated(shared, established, &ticket, &seen).await
}

/// dicom-ul's acceptor for one connection, its access control admitting through [`AePolicy`]
/// (keeping a ticket already in `ticket`), and what that policy saw (for the logs).
fn acceptor(
    shared: &Shared,
    ticket: &Arc<Mutex<Option<Ticket>>>,
) -> (
    dicom_ul::association::server::ServerAssociationOptions<
        'static,
        AePolicy,
        dicom_ul::association::server::DefaultNegotiation,
    >,
    Arc<Mutex<Option<Seen>>>,
) {
    let settings = &shared.settings;
    let policy = AePolicy::new(shared.admission.clone(), ticket.clone());
    let seen = policy.seen.clone();
    let options = negotiation::server_options(
        &settings.ae_title,
        settings.max_pdu,
        settings.read_timeout,
        &shared.transfer_syntaxes,
        policy,
    );
    (options, seen)
}

/// The outcome of dicom-ul's negotiation: the association and its ticket, or why there is none
/// (logged).
async fn negotiated<S>(
    shared: &Shared,
    established: Result<Result<AsyncServerAssociation<S>, UlError>, tokio::time::error::Elapsed>,
    ticket: &Mutex<Option<Ticket>>,
    seen: &Mutex<Option<Seen>>,
) -> Option<Admitted<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let limit = shared.settings.handshake_timeout;
    let assoc = match established {
        Err(_) => {
            warn!("association not negotiated within {limit:?} (scp.handshake_seconds): closed");
            return None;
        }
        Ok(Err(UlError::Rejected { association_rj, .. })) => {
            let seen = lock(seen).clone().unwrap_or_default();
            let why = seen.refusal.map(|r| format!(": {r}")).unwrap_or_default();
            info!(
                calling_ae = %seen.calling,
                called_ae = %seen.called,
                "association rejected ({:?}, {}){why}",
                association_rj.result,
                association_rj.source,
            );
            return None;
        }
        Ok(Err(e @ (UlError::TlsHandshake { .. } | UlError::TlsConnection { .. }))) => {
            // the cause (rustls' words), without dicom-ul's "does the remote support TLS?"
            let cause = std::error::Error::source(&e).map_or_else(|| chain(&e), chain);
            warn!("TLS handshake failed, connection closed: {cause}");
            return None;
        }
        Ok(Err(e @ UlError::TlsNotSupported)) => {
            warn!("connection closed: {e} (a TLS client on the plain DICOM port?)");
            return None;
        }
        Ok(Err(e)) => {
            warn!("connection dropped during negotiation: {}", chain(&e));
            return None;
        }
        Ok(Ok(a)) => a,
    };
    let Some(ticket) = lock(ticket).take() else {
        // cannot happen: the access control accepts only with a ticket
        warn!("association accepted without a slot: aborted");
        let _ = tokio::time::timeout(Duration::from_secs(2), assoc.abort()).await;
        return None;
    };
    let (total, of_ae) = shared.admission.in_use(ticket.calling());
    debug!(
        slots_in_use = total,
        slots_of_this_ae = of_ae,
        "association admitted"
    );
    Some(Admitted { assoc, ticket })
}

/// Lock a mutex whose data stays valid whatever panicked while it was held.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(allowed: &[&str], max: usize, per_ae: usize) -> Arc<Admission> {
        Admission::new(&ScpSettings {
            ae_title: "HURED_QA".into(),
            allowed_calling_aes: allowed.iter().map(|a| a.to_string()).collect(),
            max_associations: max,
            max_associations_per_ae: per_ae,
            ..ScpSettings::default()
        })
    }

    #[test]
    fn the_total_cap_counts_admitted_associations_and_tickets_give_slots_back() {
        let a = admission(&[], 2, 0);
        let t1 = a.admit("CT01", "HURED_QA").unwrap();
        let t2 = a.admit("CT02", " HURED_QA ").unwrap();
        assert_eq!(a.in_use("CT01"), (2, 1));
        assert_eq!(
            a.admit("CT03", "HURED_QA").unwrap_err(),
            Refusal::Busy { max: 2 }
        );
        drop(t1);
        assert_eq!(a.in_use("CT01"), (1, 0));
        let t3 = a.admit("CT03", "HURED_QA").unwrap();
        assert_eq!(t3.calling(), "CT03");
        drop((t2, t3));
        assert_eq!(a.in_use("CT03"), (0, 0));
        assert!(a.used().per_ae.is_empty(), "no entry left for gone AEs");
    }

    #[test]
    fn the_per_ae_cap_refuses_one_ae_and_admits_another() {
        let a = admission(&[], 4, 2);
        let _t1 = a.admit("CT01", "HURED_QA").unwrap();
        let t2 = a.admit(" CT01", "HURED_QA").unwrap();
        let refused = a.admit("CT01", "HURED_QA").unwrap_err();
        assert_eq!(refused, Refusal::BusyForAe { max: 2 });
        assert!(refused.is_busy());
        assert_eq!(
            refused.service_user_reason(),
            AssociationRJServiceUserReason::NoReasonGiven
        );
        assert!(refused.to_string().contains("scp.max_associations_per_ae"));
        let _t3 = a.admit("CT02", "HURED_QA").unwrap();
        assert_eq!(a.in_use("CT01"), (3, 2));
        drop(t2);
        let _t4 = a.admit("CT01", "HURED_QA").unwrap();
        // AE titles are case-sensitive: "ct01" is another AE
        let _t5 = a.admit("ct01", "HURED_QA").unwrap();
        assert_eq!(
            a.admit("CT02", "HURED_QA").unwrap_err(),
            Refusal::Busy { max: 4 }
        );
    }

    #[test]
    fn ae_refusals_take_no_slot_and_come_before_busy() {
        let a = admission(&["CT01"], 1, 1);
        assert_eq!(a.admit("CT01", "OTHER").unwrap_err(), Refusal::CalledAe);
        assert_eq!(a.admit("CT99", "HURED_QA").unwrap_err(), Refusal::CallingAe);
        assert_eq!(a.in_use("CT01"), (0, 0));
        let _t = a.admit("CT01", "HURED_QA").unwrap();
        // full: a stranger is still told its AE is refused, not that we are busy
        let e = a.admit("CT99", "HURED_QA").unwrap_err();
        assert_eq!(e, Refusal::CallingAe);
        assert!(!e.is_busy());
        assert_eq!(
            e.service_user_reason(),
            AssociationRJServiceUserReason::CallingAETitleNotRecognized
        );
        assert_eq!(
            a.admit("CT01", "OTHER").unwrap_err().service_user_reason(),
            AssociationRJServiceUserReason::CalledAETitleNotRecognized
        );
        assert_eq!(
            a.admit("CT01", "HURED_QA").unwrap_err(),
            Refusal::Busy { max: 1 }
        );
        assert_eq!(a.in_use("CT01"), (1, 1));
    }

    #[test]
    fn tickets_released_from_many_threads_leave_nothing_held() {
        let a = admission(&[], 64, 0);
        std::thread::scope(|s| {
            for i in 0..8 {
                let a = a.clone();
                s.spawn(move || {
                    for _ in 0..200 {
                        let t = a.admit(&format!("AE{}", i % 3), "HURED_QA");
                        drop(t);
                    }
                });
            }
        });
        assert_eq!(a.in_use("AE0"), (0, 0));
    }

    /// The A-ASSOCIATE-RQ bytes of `calling` → `called`.
    fn rq(calling: &str, called: &str) -> Vec<u8> {
        let pdu = Pdu::AssociationRQ(dicom_ul::pdu::AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling.into(),
            called_ae_title: called.into(),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: vec![dicom_ul::pdu::PresentationContextProposed {
                id: 1,
                abstract_syntax: negotiation::VERIFICATION.into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
            }],
            user_variables: vec![dicom_ul::pdu::UserVariableItem::MaxLength(16_384)],
        });
        let mut out = Vec::new();
        dicom_ul::write_pdu(&mut out, &pdu).unwrap();
        out
    }

    /// A connected pair on loopback: (our side, the peer's side).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (ours, _) = l.accept().await.unwrap();
        (ours, peer)
    }

    #[tokio::test]
    async fn screening_peeks_a_request_sent_in_pieces_without_consuming_it() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let a = admission(&["CT01"], 2, 0);
        let (mut ours, mut peer) = pair().await;
        let bytes = rq("CT01", "HURED_QA");
        let sent = bytes.clone();
        let writer = tokio::spawn(async move {
            for piece in sent.chunks(7) {
                peer.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            peer
        });
        let screened = screen(&ours, &a, 16_384).await.unwrap();
        let Screened::Admitted(ticket) = screened else {
            panic!("{screened:?}")
        };
        assert_eq!(ticket.calling(), "CT01");
        let _peer = writer.await.unwrap();
        let mut all = vec![0u8; bytes.len()];
        ours.read_exact(&mut all).await.unwrap();
        assert_eq!(all, bytes, "the request is still there for dicom-ul");

        let (ours, mut peer) = pair().await;
        peer.write_all(&rq("CT99", "HURED_QA")).await.unwrap();
        assert!(matches!(
            screen(&ours, &a, 16_384).await.unwrap(),
            Screened::Refused(Refusal::CallingAe)
        ));
        let (ours, mut peer) = pair().await;
        peer.write_all(&[0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0])
            .await
            .unwrap();
        assert!(matches!(
            screen(&ours, &a, 16_384).await.unwrap(),
            Screened::Unscreened(_)
        ));
        // a zero-length "A-ASSOCIATE-RQ": read once, unreadable, not looped on
        let (ours, mut peer) = pair().await;
        peer.write_all(&[0x01, 0, 0, 0, 0, 0]).await.unwrap();
        let zero = tokio::time::timeout(Duration::from_secs(5), screen(&ours, &a, 16_384)).await;
        assert!(matches!(zero, Ok(Ok(Screened::Unscreened(_)))), "{zero:?}");
        let (ours, mut peer) = pair().await;
        peer.write_all(&[0x01, 0, 0x7f, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        assert!(matches!(
            screen(&ours, &a, 16_384).await.unwrap(),
            Screened::Unscreened(_)
        ));
        assert_eq!(a.in_use("CT01"), (1, 1));
    }

    #[test]
    fn ae_policy_admits_through_the_admission_and_keeps_the_ticket() {
        let admission = Admission::new(&ScpSettings {
            allowed_calling_aes: vec!["CT01".to_string()],
            max_associations: 1,
            max_associations_per_ae: 1,
            ..Default::default()
        });
        let p = AePolicy::new(admission.clone(), Arc::default());
        assert_eq!(p.check_access("HURED_QA", "CT01", "HURED_QA", None), Ok(()));
        assert_eq!(
            lock(&p.ticket).as_ref().map(|t| t.calling().to_string()),
            Some("CT01".to_string())
        );
        assert_eq!(admission.in_use("CT01"), (1, 1));
        // a second request on another connection: no slot left, refused without a reason
        let q = AePolicy::new(admission.clone(), Arc::default());
        assert_eq!(
            q.check_access("HURED_QA", "CT01", "HURED_QA", None),
            Err(AssociationRJServiceUserReason::NoReasonGiven)
        );
        assert!(lock(&q.ticket).is_none());
        assert_eq!(
            q.check_access("HURED_QA", "CT01", "OTHER", None),
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        );
        assert_eq!(
            q.check_access("HURED_QA", "CT02", "HURED_QA", None),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
        let seen = lock(&q.seen).clone().unwrap();
        assert_eq!(
            (seen.calling.as_str(), seen.called.as_str()),
            ("CT02", "HURED_QA")
        );
        assert_eq!(seen.refusal, Some(Refusal::CallingAe));
        // the slot goes back with the ticket
        drop(p);
        assert_eq!(admission.in_use("CT01"), (0, 0));
        // a ticket taken while peeking is kept, not taken twice
        let ticket = admission.admit("CT01", "HURED_QA").unwrap();
        let r = AePolicy::new(admission.clone(), Arc::new(Mutex::new(Some(ticket))));
        assert_eq!(r.check_access("HURED_QA", "CT01", "HURED_QA", None), Ok(()));
        assert_eq!(admission.in_use("CT01"), (1, 1));
    }
}
