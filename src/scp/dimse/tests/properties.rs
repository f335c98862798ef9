//! Generated command sets (proptest): what we encode parses back to the same fields, and no
//! mutation of a command set (flipped, inserted or dropped bytes, truncation, element lengths
//! that lie, up to 0xFFFFFFFF) makes [`parse_command`] panic or allocate what the bytes do not
//! hold: it answers `Ok` or `Err`. 256 cases per property keep CI fast; for a longer local
//! run: `PROPTEST_CASES=20000 cargo test --lib dimse::tests::properties`.

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::super::*;

/// 256 cases unless `PROPTEST_CASES` says otherwise; no regression files written into `src/`.
fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config.failure_persistence = None;
    config
}

/// A syntactically valid UID of 1 to 64 characters.
fn uid() -> impl Strategy<Value = String> {
    prop::collection::vec(0u32..100_000, 1..8)
        .prop_map(|parts| {
            parts
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".")
        })
        .prop_filter("at most 64 characters", |u| u.len() <= 64)
}

/// One of the command sets the SCP and SCU exchange.
fn command() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<u16>(), uid(), uid()).prop_map(|(id, c, i)| encode_c_store_rq(id, &c, &i)),
        any::<u16>().prop_map(encode_c_echo_rq),
        (
            any::<u16>(),
            uid(),
            any::<u16>(),
            prop::option::of("[ -~]{0,80}")
        )
            .prop_map(|(id, c, st, comment)| encode_response(
                C_STORE_RSP,
                id,
                Some(&c),
                Some(&c),
                st,
                comment.as_deref()
            )),
    ]
}

/// A change an unfriendly or broken peer could make to a command set.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        xor: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    /// Overwrite the 4-byte length of the element header found at or after `at`.
    LieAboutLength {
        at: usize,
        length: u32,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let length = prop_oneof![
        Just(0xFFFF_FFFFu32),
        Just(0xFFFF_FFF0),
        Just(0x7FFF_FFFF),
        any::<u32>(),
        0u32..256,
    ];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), length).prop_map(|(at, length)| Mutation::LieAboutLength { at, length }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match m {
        Mutation::Flip { at, xor } => bytes[at % n] ^= xor,
        Mutation::Insert { at, bytes: b } => {
            let at = at % (n + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let at = at % n;
            bytes.drain(at..(at + len).min(n));
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::LieAboutLength { at, length } => {
            // implicit VR LE element headers: tag (4 bytes), length (4 bytes); they start at
            // multiples of 2 in what we encode, so aim at an even offset
            let headers = n.saturating_sub(8) / 2 + 1;
            let start = (at % headers) * 2 + 4;
            if start + 4 <= n {
                bytes[start..start + 4].copy_from_slice(&length.to_le_bytes());
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn store_requests_round_trip(id in any::<u16>(), class in uid(), instance in uid()) {
        let c = parse_command(&encode_c_store_rq(id, &class, &instance));
        let c = c.map_err(TestCaseError::fail)?;
        prop_assert_eq!(c.field, C_STORE_RQ);
        prop_assert_eq!(c.message_id, Some(id));
        prop_assert!(c.has_data_set);
        prop_assert_eq!(c.affected_sop_class, Some(class));
        prop_assert_eq!(c.affected_sop_instance, Some(instance));
    }

    #[test]
    fn responses_round_trip(
        id in any::<u16>(),
        st in any::<u16>(),
        comment in prop::option::of("[ -~]{0,200}"),
    ) {
        let bytes = encode_response(C_STORE_RSP, id, Some(VERIFICATION_UID), None, st, comment.as_deref());
        let c = parse_command(&bytes).map_err(TestCaseError::fail)?;
        prop_assert_eq!(c.field, C_STORE_RSP);
        prop_assert_eq!(c.message_id_responded, Some(id));
        prop_assert_eq!(c.status, Some(st));
        prop_assert!(!c.has_data_set);
        if let Some(sent) = c.error_comment {
            // only failures carry one, at most 64 characters, never a backslash (VR LO)
            prop_assert!(st != status::SUCCESS);
            prop_assert!(sent.len() <= 64 && !sent.contains('\\'));
        }
    }

    #[test]
    fn mutated_commands_are_answered_not_panicked(
        bytes in command(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut bytes = bytes;
        for m in &mutations {
            apply(&mut bytes, m);
        }
        // Ok or Err, both fine: what matters is no panic and no allocation of a lied length
        let _ = parse_command(&bytes);
    }

    #[test]
    fn arbitrary_bytes_are_answered_not_panicked(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_command(&bytes);
    }
}

const VERIFICATION_UID: &str = "1.2.840.10008.1.1";

/// The property above depends on lied lengths being reached; make sure they are, and that the
/// answer to one is an error (the command holds far fewer bytes).
#[test]
fn a_lied_length_is_an_error() {
    let mut bytes = encode_c_store_rq(1, "1.2.840.10008.5.1.4.1.1.2", "1.2.3");
    // the second element header after the group length: (0000,0002) Affected SOP Class UID
    let at = 12 + 4;
    for length in [0xFFFF_FFF0u32, 0x7FFF_FFFF, 0xFFFF_FFFE] {
        bytes[at..at + 4].copy_from_slice(&length.to_le_bytes());
        assert!(
            parse_command(&bytes).is_err(),
            "length {length:#x} accepted"
        );
    }
}
