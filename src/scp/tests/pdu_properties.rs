//! Generated PDUs (proptest) through the PDU reader the SCP runs (dicom-ul's, strict, with our
//! default `max_pdu`): what a DICOM peer sends reads back as sent; no mutation of it (flipped,
//! inserted or dropped bytes, truncation, lengths that lie, up to 0xFFFFFFFF) makes the reader
//! panic, and a PDU longer than `max_pdu` is refused from its header, before its bytes are read
//! (what bounds the memory a peer can make us allocate). 256 cases per property keep CI fast;
//! for a longer local run: `PROPTEST_CASES=20000 cargo test --lib scp::tests::pdu_properties`.

use dicom_ul::pdu::{
    read_pdu, AssociationRQ, PDataValue, PDataValueType, Pdu, PresentationContextProposed,
    UserVariableItem,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::scp::ScpSettings;

fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config.failure_persistence = None;
    config
}

fn max_pdu() -> u32 {
    ScpSettings::default().max_pdu
}

fn write(pdu: &Pdu) -> Vec<u8> {
    let mut out = Vec::new();
    dicom_ul::write_pdu(&mut out, pdu).expect("a generated PDU encodes");
    out
}

fn read(bytes: &[u8]) -> Result<Option<Pdu>, dicom_ul::pdu::ReadError> {
    read_pdu(bytes, max_pdu(), true)
}

fn ae() -> impl Strategy<Value = String> {
    "[A-Z0-9_]{1,16}"
}

fn uid() -> impl Strategy<Value = String> {
    prop::collection::vec(0u32..100_000, 2..8).prop_map(|parts| {
        let mut u = parts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".");
        u.truncate(64);
        u.trim_end_matches('.').to_string()
    })
}

fn association_rq() -> impl Strategy<Value = AssociationRQ> {
    (
        ae(),
        ae(),
        prop::collection::vec((uid(), prop::collection::vec(uid(), 1..4)), 1..12),
        4096u32..1_048_576,
    )
        .prop_map(|(calling, called, contexts, peer_max)| AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling,
            called_ae_title: called,
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: contexts
                .into_iter()
                .enumerate()
                .map(
                    |(i, (abstract_syntax, transfer_syntaxes))| PresentationContextProposed {
                        id: (2 * i + 1) as u8,
                        abstract_syntax,
                        transfer_syntaxes,
                    },
                )
                .collect(),
            user_variables: vec![
                UserVariableItem::MaxLength(peer_max),
                UserVariableItem::ImplementationClassUID("1.2.3.4".into()),
            ],
        })
}

fn p_data() -> impl Strategy<Value = Vec<PDataValue>> {
    prop::collection::vec(
        (
            (1u8..128).prop_map(|id| id * 2 - 1),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..2000),
        )
            .prop_map(|(id, command, is_last, data)| PDataValue {
                presentation_context_id: id,
                value_type: if command {
                    PDataValueType::Command
                } else {
                    PDataValueType::Data
                },
                is_last,
                data,
            }),
        1..4,
    )
}

fn any_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        association_rq().prop_map(Pdu::AssociationRQ),
        p_data().prop_map(|data| Pdu::PData { data }),
        Just(Pdu::ReleaseRQ),
        Just(Pdu::ReleaseRP),
    ]
}

/// A change an unfriendly or broken peer could make to the bytes of a PDU.
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
    /// Overwrite the 2 or 4 bytes at `at` (a PDU, item or PDV length, if it lands on one).
    Length {
        at: usize,
        value: u32,
        wide: bool,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        Just(u32::MAX),
        Just(0u32),
        Just(0xFFFF),
        any::<u32>(),
        0u32..64
    ];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), value, any::<bool>()).prop_map(|(at, value, wide)| Mutation::Length {
            at,
            value,
            wide
        }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    if n == 0 {
        return;
    }
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
        Mutation::Length { at, value, wide } => {
            let width = if *wide { 4 } else { 2 };
            if n >= width {
                let at = at % (n - width + 1);
                let be = value.to_be_bytes();
                bytes[at..at + width].copy_from_slice(&be[4 - width..]);
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn what_a_peer_sends_reads_back(pdu in any_pdu()) {
        let bytes = write(&pdu);
        let back = read(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, Some(pdu));
    }

    #[test]
    fn a_cut_pdu_is_incomplete_never_misread(pdu in any_pdu(), cut in any::<usize>()) {
        let bytes = write(&pdu);
        let cut = cut % bytes.len();
        // what the connection does with a partial PDU: wait for more bytes
        prop_assert!(matches!(read(&bytes[..cut]), Ok(None)), "cut at {cut} of {}", bytes.len());
    }

    #[test]
    fn mutated_pdus_are_answered_not_panicked(
        pdu in any_pdu(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut bytes = write(&pdu);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(Some(Pdu::PData { data })) = read(&bytes) {
            let total: usize = data.iter().map(|v| v.data.len()).sum();
            prop_assert!(total <= max_pdu() as usize);
        }
    }

    #[test]
    fn a_pdu_above_max_pdu_is_refused_from_its_header(
        pdu_type in prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 7, 0x42]),
        excess in 1u32..=(u32::MAX - 131_072),
    ) {
        let length = max_pdu().saturating_add(excess);
        let mut bytes = vec![pdu_type, 0];
        bytes.extend_from_slice(&length.to_be_bytes());
        // no body at all: the refusal cannot have come from reading one
        prop_assert!(read(&bytes).is_err());
    }
}
