//! Association slots no stranger can hold (issue 11, item 3), against real peers: DCMTK's
//! `echoscu`, and raw sockets for what no real sender does (silent connections, a half-sent
//! A-ASSOCIATE-RQ, a C-STORE dripped a few bytes at a time). The SCP runs in-process (the
//! `scp_dcmtk` harness) with small limits so that each test takes seconds.
//!
//! What the peer sees is asserted: echoscu's exit status and its rejection text, the socket closed
//! or an A-ABORT received within generous bounds, nothing recorded, no temp file left.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dicom_ul::pdu::{
    AbortRQSource, AssociationRQ, Pdu, PresentationContextProposed, UserVariableItem,
};
use hu_red::scp::dimse;
use hu_red::simulate::Syntax;

use crate::scp_dcmtk::{
    closed_within, echoscu, part10, pdata, read_pdu, series, wait_until, Server, AE, CT, EXPLICIT,
};

const VERIFICATION: &str = "1.2.840.10008.1.1";

/// The A-ASSOCIATE-RQ bytes of `calling` → `called`: CT Image Storage on context 1,
/// Verification on context 3 (Explicit VR Little Endian).
fn rq_bytes(calling: &str, called: &str) -> Vec<u8> {
    let rq = Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: calling.into(),
        called_ae_title: called.into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: [(1, CT), (3, VERIFICATION)]
            .iter()
            .map(|(id, a)| PresentationContextProposed {
                id: *id,
                abstract_syntax: a.to_string(),
                transfer_syntaxes: vec![EXPLICIT.to_string()],
            })
            .collect(),
        user_variables: vec![UserVariableItem::MaxLength(16_384)],
    });
    let mut buf = Vec::new();
    dicom_ul::write_pdu(&mut buf, &rq).unwrap();
    buf
}

/// An association from `calling`, accepted.
fn associate(port: u16, calling: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&rq_bytes(calling, AE)).unwrap();
    let ac = read_pdu(&mut s);
    assert!(matches!(ac, Pdu::AssociationAC(_)), "{ac:?}");
    s
}

/// A C-ECHO on an association, answered with success.
fn echo(s: &mut TcpStream, message_id: u16) {
    s.write_all(&pdata(vec![(
        3,
        true,
        true,
        dimse::encode_c_echo_rq(message_id),
    )]))
    .unwrap();
    let Pdu::PData { data } = read_pdu(s) else {
        panic!("expected the C-ECHO-RSP")
    };
    let rsp = dimse::parse_command(&data[0].data).unwrap();
    assert_eq!(
        (rsp.field, rsp.message_id_responded, rsp.status),
        (dimse::C_ECHO_RSP, Some(message_id), Some(0))
    );
}

fn release(mut s: TcpStream) {
    let mut buf = Vec::new();
    dicom_ul::write_pdu(&mut buf, &Pdu::ReleaseRQ).unwrap();
    s.write_all(&buf).unwrap();
    assert_eq!(read_pdu(&mut s), Pdu::ReleaseRP);
}

/// Is the connection still open, with nothing to read (the server neither answered nor closed)?
fn still_open_and_silent(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let open = matches!(s.peek(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

/// echoscu was refused with a transient local-limit rejection.
fn refused_busy(r: &crate::common_service::Out) -> bool {
    !r.ok && r.text.contains("Rejected Transient") && r.text.contains("Local Limit Exceeded")
}

/// Send `next()`'s P-DATA every `every` until the server sends something (or 30 s pass); returns
/// that PDU (`None` if the connection closed without one) and when it came after `t0`.
fn drip_until_answered(
    s: &TcpStream,
    every: Duration,
    t0: Instant,
    mut next: impl FnMut() -> Vec<u8>,
) -> (Option<Pdu>, Duration) {
    let mut reader = s.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let answered = std::thread::spawn(move || {
        let mut buf = bytes::BytesMut::new();
        let pdu =
            dicom_ul::association::read_pdu_from_wire(&mut reader, &mut buf, 1 << 20, false).ok();
        (pdu, t0.elapsed())
    });
    let mut writer = s.try_clone().unwrap();
    while !answered.is_finished() && t0.elapsed() < Duration::from_secs(30) {
        if writer.write_all(&next()).is_err() {
            break;
        }
        std::thread::sleep(every);
    }
    answered.join().unwrap()
}

#[test]
fn twenty_silent_sockets_do_not_keep_an_allowed_echoscu_out() {
    // fewer association slots than silent sockets; the handshake deadline far enough away that
    // the silent sockets are all still there when echoscu comes
    let server = Server::start(|s| {
        s.allowed_calling_aes = vec!["CT01".into()];
        s.max_associations = 4;
        s.handshake_timeout = Duration::from_secs(20);
    });
    let silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    // and five strangers that sent half of a valid A-ASSOCIATE-RQ
    let rq = rq_bytes("CT01", AE);
    let partial: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(&rq[..rq.len() / 2]).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..3 {
        let r = echoscu(server.port, "CT01", AE);
        assert!(r.ok, "echoscu {i} kept out by silent sockets: {}", r.text);
    }
    // a real association beside them, too (and up to max_associations of them)
    let held: Vec<TcpStream> = (0..4).map(|_| associate(server.port, "CT01")).collect();
    assert!(refused_busy(&echoscu(server.port, "CT01", AE)));
    // the silent and half-sent connections were there all along
    assert!(silent.iter().chain(&partial).all(still_open_and_silent));
    for s in held {
        release(s);
    }
    drop(silent);
    drop(partial);
    wait_until("a slot to be free", Duration::from_secs(5), || {
        echoscu(server.port, "CT01", AE).ok
    });
    server.shutdown();
}

#[test]
fn the_handshake_deadline_closes_silent_and_half_sent_connections() {
    let server = Server::start(|s| {
        s.max_associations = 2;
        s.max_handshakes = 3;
        s.handshake_timeout = Duration::from_secs(4);
    });
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let rq = rq_bytes("CT01", AE);
    half.write_all(&rq[..rq.len() / 2]).unwrap();
    let mut one_byte = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    one_byte.write_all(&rq[..1]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // max_handshakes connections in their handshake: one more is closed at once, unanswered
    let mut beyond = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    assert!(
        closed_within(&mut beyond, Duration::from_secs(2)),
        "a connection beyond max_handshakes is closed at once"
    );
    for (name, s) in [
        ("silent", &mut silent),
        ("half-sent", &mut half),
        ("one byte", &mut one_byte),
    ] {
        assert!(
            closed_within(s, Duration::from_secs(15)),
            "{name} connection left open"
        );
        assert!(
            t0.elapsed() >= Duration::from_secs(3),
            "{name} connection closed before the handshake deadline: {:?}",
            t0.elapsed()
        );
    }
    // their handshake permits are free again
    let r = echoscu(server.port, "CT01", AE);
    assert!(r.ok, "{}", r.text);
    server.shutdown();
}

#[test]
fn one_calling_ae_at_its_cap_is_refused_while_another_gets_in() {
    let server = Server::start(|s| {
        s.max_associations = 4;
        s.max_associations_per_ae = 1;
    });
    let held = associate(server.port, "CT01");
    let r = echoscu(server.port, "CT01", AE);
    assert!(
        refused_busy(&r),
        "CT01 beyond its per-AE cap: {} {}",
        r.ok,
        r.text
    );
    let other = echoscu(server.port, "CT02", AE);
    assert!(other.ok, "another AE kept out: {}", other.text);
    let held2 = associate(server.port, "CT02");
    release(held);
    wait_until("CT01's slot to be free", Duration::from_secs(5), || {
        echoscu(server.port, "CT01", AE).ok
    });
    release(held2);
    server.shutdown();
}

#[test]
fn a_wrong_called_ae_or_a_refused_calling_ae_costs_no_slot() {
    let server = Server::start(|s| {
        s.allowed_calling_aes = vec!["CT01".into()];
        s.max_associations = 1;
    });
    let wrong_calling = |r: &crate::common_service::Out| {
        !r.ok
            && r.text.contains("Calling AE Title Not Recognized")
            && !r.text.contains("Local Limit Exceeded")
    };
    let wrong_called = |r: &crate::common_service::Out| {
        !r.ok
            && r.text.contains("Called AE Title Not Recognized")
            && !r.text.contains("Local Limit Exceeded")
    };
    for _ in 0..3 {
        let r = echoscu(server.port, "CT99", AE);
        assert!(wrong_calling(&r), "{}", r.text);
        let r = echoscu(server.port, "CT01", "NOT_HURED");
        assert!(wrong_called(&r), "{}", r.text);
    }
    // the one slot is free
    let held = associate(server.port, "CT01");
    // it is taken: strangers are still told their AE is refused (permanent), not "busy", and
    // only the allowed caller is told to come back later
    let r = echoscu(server.port, "CT99", AE);
    assert!(wrong_calling(&r), "{}", r.text);
    let r = echoscu(server.port, "CT01", "NOT_HURED");
    assert!(wrong_called(&r), "{}", r.text);
    assert!(refused_busy(&echoscu(server.port, "CT01", AE)));
    release(held);
    wait_until("the slot to be free", Duration::from_secs(5), || {
        echoscu(server.port, "CT01", AE).ok
    });
    server.shutdown();
}

#[test]
fn a_slow_drip_c_store_is_cut_at_the_minimum_transfer_rate() {
    let server = Server::start(|s| {
        s.read_timeout = Duration::from_secs(2);
        s.idle_timeout = Duration::from_secs(20);
        s.min_transfer_rate = 8192;
    });
    let work = tempfile::tempdir().unwrap();
    let files = series(&work.path().join("s"), 71, 1, "CT", Syntax::Explicit);
    let (_, sop, data) = part10(&files[0]);
    let mut s = associate(server.port, "CT01");
    echo(&mut s, 1);
    let t0 = Instant::now();
    s.write_all(&pdata(vec![(
        1,
        true,
        true,
        dimse::encode_c_store_rq(2, CT, &sop),
    )]))
    .unwrap();
    // 16 bytes every 200 ms: a PDU well within read_timeout each time, 80 bytes/s in all
    let mut sent = 0usize;
    let (answer, after) = drip_until_answered(&s, Duration::from_millis(200), t0, || {
        let chunk = data[sent..(sent + 16).min(data.len() - 1)].to_vec();
        sent += chunk.len();
        pdata(vec![(1, false, false, chunk)])
    });
    assert!(
        matches!(
            answer,
            Some(Pdu::AbortRQ {
                source: AbortRQSource::ServiceProvider(_)
            })
        ),
        "expected an A-ABORT, got {answer:?} after {after:?}"
    );
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(15),
        "cut after {after:?} (read_timeout 2 s)"
    );
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    wait_until(
        "the temp file to be removed",
        Duration::from_secs(5),
        || server.tmp_files() == 0,
    );
    assert!(server.recorded().is_empty(), "a cut instance was recorded");
    assert!(!server.in_db(&sop));
    let r = echoscu(server.port, "CT01", AE);
    assert!(r.ok, "{}", r.text);
    server.shutdown();
}

#[test]
fn max_association_seconds_cuts_a_long_association_and_its_message() {
    let server = Server::start(|s| {
        s.read_timeout = Duration::from_secs(2);
        s.idle_timeout = Duration::from_secs(20);
        s.max_association_duration = Duration::from_secs(3);
    });
    // a peer that never stops: a C-ECHO every 300 ms (each answered) holds no slot beyond the
    // limit
    let mut s = associate(server.port, "CT01");
    let t0 = Instant::now();
    let mut answered = 0u16;
    let answer = loop {
        let rq = pdata(vec![(3, true, true, dimse::encode_c_echo_rq(answered + 1))]);
        if s.write_all(&rq).is_err() {
            break None;
        }
        let mut buf = bytes::BytesMut::new();
        match dicom_ul::association::read_pdu_from_wire(&mut s, &mut buf, 1 << 20, false) {
            Ok(Pdu::PData { .. }) => answered += 1,
            other => break other.ok(),
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "never cut");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        answered >= 3,
        "only {answered} C-ECHOs answered before the cut"
    );
    assert!(
        matches!(
            answer,
            Some(Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser
            })
        ),
        "{answer:?} after {:?}",
        t0.elapsed()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(2500) && t0.elapsed() < Duration::from_secs(15),
        "cut after {:?} (limit 3 s)",
        t0.elapsed()
    );

    // a C-STORE arriving fast enough, in progress when the limit comes: dropped, not stored
    let work = tempfile::tempdir().unwrap();
    let files = series(&work.path().join("s"), 72, 1, "CT", Syntax::Explicit);
    let (_, sop, data) = part10(&files[0]);
    let mut s = associate(server.port, "CT01");
    let t0 = Instant::now();
    s.write_all(&pdata(vec![(
        1,
        true,
        true,
        dimse::encode_c_store_rq(1, CT, &sop),
    )]))
    .unwrap();
    // 2 KiB every 100 ms (about 20 KiB/s, above the minimum rate), wrapping around the data set
    // and never sending its last fragment
    let mut at = 0usize;
    let (answer, after) = drip_until_answered(&s, Duration::from_millis(100), t0, || {
        let end = (at + 2048).min(data.len());
        let chunk = data[at..end].to_vec();
        at = if end == data.len() { 0 } else { end };
        pdata(vec![(1, false, false, chunk)])
    });
    assert!(
        matches!(
            answer,
            Some(Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser
            })
        ),
        "{answer:?} ({after:?})"
    );
    assert!(
        after >= Duration::from_millis(2500) && after < Duration::from_secs(15),
        "cut after {after:?} (limit 3 s)"
    );
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    wait_until(
        "the temp file to be removed",
        Duration::from_secs(5),
        || server.tmp_files() == 0,
    );
    assert!(server.recorded().is_empty(), "a cut instance was recorded");
    assert!(!server.in_db(&sop));
    server.shutdown();
}

/// An A-ASSOCIATE-RQ larger than the SCP peeks at (128 presentation contexts of many transfer
/// syntaxes, over 64 KiB) from `calling`: the server's answer.
fn large_request(port: u16, calling: &str) -> Pdu {
    let syntaxes: Vec<String> = (0..24)
        .map(|i| format!("1.2.840.10008.1.2.4.{}", 100 + i))
        .chain([EXPLICIT.to_string()])
        .collect();
    let rq = Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: calling.into(),
        called_ae_title: AE.into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: (0..128u16)
            .map(|i| PresentationContextProposed {
                id: (2 * i + 1) as u8,
                abstract_syntax: if i == 0 { VERIFICATION } else { CT }.to_string(),
                transfer_syntaxes: syntaxes.clone(),
            })
            .collect(),
        user_variables: vec![UserVariableItem::MaxLength(16_384)],
    });
    let mut buf = Vec::new();
    dicom_ul::write_pdu(&mut buf, &rq).unwrap();
    assert!(buf.len() > 64 << 10, "{} bytes only", buf.len());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&buf).unwrap();
    read_pdu(&mut s)
}

#[test]
fn a_request_too_large_to_peek_is_admitted_by_the_ae_policy() {
    use dicom_ul::pdu::{
        AssociationRJ, AssociationRJResult, AssociationRJServiceUserReason, AssociationRJSource,
    };
    let server = Server::start(|s| {
        s.allowed_calling_aes = vec!["CT01".into()];
        s.max_associations = 1;
    });
    let rejected = |reason| {
        Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Permanent,
            source: AssociationRJSource::ServiceUser(reason),
        })
    };
    assert_eq!(
        large_request(server.port, "CT99"),
        rejected(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
    );
    let held = associate(server.port, "CT01");
    // at the cap: refused by the AE policy (dicom-ul can only answer "permanent, no reason")
    assert_eq!(
        large_request(server.port, "CT01"),
        rejected(AssociationRJServiceUserReason::NoReasonGiven)
    );
    release(held);
    wait_until("the slot to be free", Duration::from_secs(5), || {
        matches!(large_request(server.port, "CT01"), Pdu::AssociationAC(_))
    });
    // and that accepted association held the slot until it ended (its connection closed)
    wait_until("the slot to be free again", Duration::from_secs(5), || {
        echoscu(server.port, "CT01", AE).ok
    });
    server.shutdown();
}
