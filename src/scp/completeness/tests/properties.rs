//! Generated data sets (proptest): a valid image passes, every truncation of it is refused, one
//! more byte is refused; without image attributes exactly the cuts between top-level elements
//! pass; no mutation makes the check panic (or the memory and file walks disagree). 256 cases per property keep CI fast; for a longer local run:
//! `PROPTEST_CASES=20000 cargo test --lib completeness::tests::properties`.

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::*;

/// A private element with a short value of some VR.
fn leaf() -> impl Strategy<Value = El> {
    (
        0x1000u16..0x10ff,
        prop::sample::select(vec![*b"LO", *b"OB", *b"US", *b"DS", *b"UN", *b"UT", *b"XX"]),
        prop::collection::vec(any::<u8>(), 0..12),
    )
        .prop_map(|(element, vr, value)| El::Prim {
            tag: Tag(0x0009, element),
            vr,
            value,
        })
}

/// Elements and sequences nested up to 3 levels, of defined and undefined lengths, SQ or UN.
fn element() -> impl Strategy<Value = El> {
    leaf().prop_recursive(3, 24, 3, |inner| {
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((any::<bool>(), prop::collection::vec(inner, 0..3)), 0..3),
        )
            .prop_map(|(defined, private, items)| El::Seq {
                tag: if private {
                    Tag(0x0009, 0x1020)
                } else {
                    tags::REFERENCED_IMAGE_SEQUENCE
                },
                // an undefined-length UN: implicit VR LE items
                vr: if private && !defined { *b"UN" } else { *b"SQ" },
                defined,
                items,
            })
    })
}

/// A data set ending with its Pixel Data (native of the right length, or fragments) and the
/// syntax to encode it in (0 explicit, 1 implicit, 2 deflated explicit VR LE).
fn data_set() -> impl Strategy<Value = (Vec<El>, u8)> {
    (
        prop::collection::vec(element(), 0..4),
        (
            1u16..6,
            1u16..6,
            prop::sample::select(vec![1u16, 8, 16]),
            1u16..4,
        ),
        prop::option::of(prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..10),
            1..4,
        )),
        0u8..3,
    )
        .prop_map(|(mut els, (rows, columns, bits, samples), fragments, ts)| {
            els.extend(image_attrs(rows, columns, samples, bits));
            match fragments {
                Some(f) => els.push(El::Fragments(f)),
                None => {
                    let bits = usize::from(rows * columns * samples * bits);
                    let n = bits.div_ceil(8);
                    els.push(native(n + n % 2));
                }
            }
            (els, ts)
        })
}

fn bytes(els: &[El], ts: u8) -> (Vec<u8>, &'static str) {
    match ts {
        0 => (encode(els, true), EXPLICIT),
        1 => (encode(els, false), IMPLICIT),
        _ => (deflate(&encode(els, true)), DEFLATED),
    }
}

/// 256 cases unless `PROPTEST_CASES` says otherwise; no regression files written into `src/`.
fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config.failure_persistence = None;
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_truncation_is_refused((els, ts) in data_set()) {
        let (data, uid) = bytes(&els, ts);
        prop_assert_eq!(check(&data, uid, true), Ok(()));
        for cut in 0..data.len() {
            prop_assert!(
                check_bytes(&data[..cut], uid, true).is_err(),
                "{} cut at {} of {}", uid, cut, data.len()
            );
        }
        prop_assert!(check(&data[..data.len() / 2], uid, true).is_err());
        if uid != DEFLATED {
            let mut more = data.clone();
            more.push(0);
            prop_assert!(check_bytes(&more, uid, true).is_err());
        }
    }

    /// Without image attributes nothing says how long the data set is: a cut between two
    /// top-level elements is a complete data set; every other cut is refused.
    #[test]
    fn only_cuts_between_top_level_elements_pass(
        els in prop::collection::vec(element(), 1..5),
        explicit in any::<bool>(),
    ) {
        let uid = if explicit { EXPLICIT } else { IMPLICIT };
        let mut data = Vec::new();
        let mut boundaries = vec![0];
        for el in &els {
            data.extend(encode(std::slice::from_ref(el), explicit));
            boundaries.push(data.len());
        }
        for cut in 0..=data.len() {
            let r = check_bytes(&data[..cut], uid, false);
            prop_assert_eq!(
                r.is_ok(),
                boundaries.contains(&cut),
                "{} cut at {} of {}: {:?}", uid, cut, data.len(), r
            );
        }
    }

    #[test]
    fn mutations_never_panic(
        (els, ts) in data_set(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let (mut data, uid) = bytes(&els, ts);
        for (i, b, op) in edits {
            if data.is_empty() {
                data.push(b);
                continue;
            }
            let at = i.index(data.len());
            match op {
                0 => data[at] = b,
                1 => {
                    data.remove(at);
                }
                2 => data.insert(at, b),
                // a length field set to something large
                _ => {
                    let end = (at + 4).min(data.len());
                    data[at..end].fill(0xff);
                }
            }
        }
        for syntax in [EXPLICIT, IMPLICIT, DEFLATED] {
            let _ = check_bytes(&data, syntax, true);
            let _ = check_bytes(&data, syntax, false);
        }
        // the file walk agrees with the memory walk (asserted inside)
        let _ = check(&data, uid, true);
    }
}
