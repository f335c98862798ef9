//! Unit tests of the DIMSE command codec; generated (property) tests in `properties`.

mod properties;

use super::*;

#[test]
fn c_store_rq_round_trip_with_group_length() {
    let bytes = encode_c_store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.456");
    // (0000,0000) UL 4 = length of the rest
    assert_eq!(&bytes[0..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
    let gl = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    assert_eq!(gl, bytes.len() - 12);
    let c = parse_command(&bytes).unwrap();
    assert_eq!(c.field, C_STORE_RQ);
    assert_eq!(c.message_id, Some(7));
    assert!(c.has_data_set);
    assert_eq!(
        c.affected_sop_class.as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.2")
    );
    // odd-length UID padded with NUL on the wire, trimmed when read
    assert_eq!(c.affected_sop_instance.as_deref(), Some("1.2.3.456"));
    assert!(bytes.windows(10).any(|w| w == b"1.2.3.456\0"));
}

#[test]
fn response_fields() {
    let bytes = encode_response(
        C_STORE_RSP,
        513,
        Some("1.2.840.10008.5.1.4.1.1.2"),
        Some("1.2.3"),
        status::OUT_OF_RESOURCES,
        Some("disk full: \\ no space left on device; a very long explanation that goes beyond sixty-four characters"),
    );
    let c = parse_command(&bytes).unwrap();
    assert_eq!(c.field, C_STORE_RSP);
    assert_eq!(c.message_id_responded, Some(513));
    assert_eq!(c.message_id, None);
    assert!(!c.has_data_set);
    assert_eq!(c.status, Some(0xA700));
    let comment = c.error_comment.unwrap();
    assert!(comment.len() <= 64 && comment.starts_with("disk full:"));
    assert!(!comment.contains('\\'));
    // success responses carry no error comment
    let ok = parse_command(&encode_response(
        C_ECHO_RSP,
        1,
        Some("1.2.840.10008.1.1"),
        None,
        0,
        Some("x"),
    ))
    .unwrap();
    assert_eq!(ok.error_comment, None);
    assert_eq!(ok.status, Some(0));
    assert_eq!(ok.affected_sop_instance, None);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(parse_command(&[1, 2, 3]).is_err());
    assert!(parse_command(&[0u8; 64]).is_err());
    let echo = encode_c_echo_rq(3);
    assert!(parse_command(&echo[..echo.len() - 3]).is_err());
}

#[test]
fn status_classes() {
    assert!(status::is_stored(0));
    assert!(status::is_stored(0xB000));
    assert!(!status::is_stored(0xA700));
    assert!(!status::is_stored(0xC000));
    assert_eq!(status::describe(0xA701), "refused: out of resources");
    assert_eq!(status::describe(0xC123), "error: cannot understand");
}

/// Found by `properties::arbitrary_bytes_are_answered_not_panicked`: 13 bytes whose one element
/// claims 0xE72D5784 bytes kept the parser busy (reserving and filling gigabytes) for minutes.
/// Now refused from the element header. Run on a thread so that a regression fails the test
/// instead of hanging the suite.
#[test]
fn a_13_byte_command_claiming_gigabytes_is_refused() {
    let bytes = [
        0x3b, 0xc3, 0x24, 0x4c, 0x84, 0x57, 0x2d, 0xe7, 0x08, 0xd8, 0xd9, 0xde, 0x4d,
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(parse_command(&bytes));
    });
    let answer = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("parse_command answers");
    let e = answer.expect_err("a lied length is an error");
    assert!(e.contains("malformed command set"), "{e}");
}
