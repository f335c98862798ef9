//! The completeness check on hand-encoded data sets (every shape it meets: nested sequences of
//! defined and undefined length, UN sequences, encapsulated pixel data), on data sets written by
//! dicom-object in every accepted transfer syntax, and under proptest (truncations and
//! mutations).

mod properties;

use super::*;
use crate::scp::TRANSFER_SYNTAXES;

pub(super) const EXPLICIT: &str = "1.2.840.10008.1.2.1";
pub(super) const IMPLICIT: &str = "1.2.840.10008.1.2";
pub(super) const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A data element to encode by hand.
#[derive(Debug, Clone)]
pub(super) enum El {
    Prim {
        tag: Tag,
        vr: [u8; 2],
        value: Vec<u8>,
    },
    /// A sequence (`defined`: with its length, else with a delimiter) and its items (each
    /// `(defined, elements)`); `vr` is SQ, or UN for an undefined-length UN.
    Seq {
        tag: Tag,
        vr: [u8; 2],
        defined: bool,
        items: Vec<(bool, Vec<El>)>,
    },
    /// Encapsulated Pixel Data: its items (the first is the offset table).
    Fragments(Vec<Vec<u8>>),
}

fn put_tag(out: &mut Vec<u8>, tag: Tag) {
    out.extend_from_slice(&tag.group().to_le_bytes());
    out.extend_from_slice(&tag.element().to_le_bytes());
}

fn put_header(out: &mut Vec<u8>, tag: Tag, vr: [u8; 2], len: u32, explicit: bool) {
    put_tag(out, tag);
    if explicit {
        out.extend_from_slice(&vr);
        if has_long_length(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&len.to_le_bytes());
        } else {
            out.extend_from_slice(&(len as u16).to_le_bytes());
        }
    } else {
        out.extend_from_slice(&len.to_le_bytes());
    }
}

fn put_item(out: &mut Vec<u8>, tag: Tag, len: u32) {
    put_tag(out, tag);
    out.extend_from_slice(&len.to_le_bytes());
}

/// Encode elements as they are given (in explicit or implicit VR LE).
pub(super) fn encode(els: &[El], explicit: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for el in els {
        match el {
            El::Prim { tag, vr, value } => {
                put_header(&mut out, *tag, *vr, value.len() as u32, explicit);
                out.extend_from_slice(value);
            }
            El::Seq {
                tag,
                vr,
                defined,
                items,
            } => {
                // the items of an undefined-length UN are implicit VR LE
                let inner = explicit && vr != b"UN";
                let mut body = Vec::new();
                for (item_defined, content) in items {
                    let c = encode(content, inner);
                    if *item_defined {
                        put_item(&mut body, ITEM, c.len() as u32);
                        body.extend_from_slice(&c);
                    } else {
                        put_item(&mut body, ITEM, UNDEFINED);
                        body.extend_from_slice(&c);
                        put_item(&mut body, ITEM_DELIMITER, 0);
                    }
                }
                if *defined {
                    put_header(&mut out, *tag, *vr, body.len() as u32, explicit);
                    out.extend_from_slice(&body);
                } else {
                    put_header(&mut out, *tag, *vr, UNDEFINED, explicit);
                    out.extend_from_slice(&body);
                    put_item(&mut out, SEQUENCE_DELIMITER, 0);
                }
            }
            El::Fragments(items) => {
                put_header(&mut out, tags::PIXEL_DATA, *b"OB", UNDEFINED, explicit);
                for f in items {
                    put_item(&mut out, ITEM, f.len() as u32);
                    out.extend_from_slice(f);
                }
                put_item(&mut out, SEQUENCE_DELIMITER, 0);
            }
        }
    }
    out
}

pub(super) fn prim(tag: Tag, vr: &[u8; 2], value: &[u8]) -> El {
    El::Prim {
        tag,
        vr: *vr,
        value: value.to_vec(),
    }
}

pub(super) fn us(tag: Tag, v: u16) -> El {
    prim(tag, b"US", &v.to_le_bytes())
}

/// The image attributes of a `rows`×`columns` image.
pub(super) fn image_attrs(rows: u16, columns: u16, samples: u16, bits: u16) -> Vec<El> {
    vec![
        us(tags::SAMPLES_PER_PIXEL, samples),
        us(tags::ROWS, rows),
        us(tags::COLUMNS, columns),
        us(tags::BITS_ALLOCATED, bits),
    ]
}

pub(super) fn native(len: usize) -> El {
    prim(tags::PIXEL_DATA, b"OW", &vec![0x5a; len])
}

/// A small CT-like data set: a few header elements, then the image.
fn ct(rows: u16, columns: u16, pixel: El) -> Vec<El> {
    let mut els = vec![
        prim(tags::SOP_CLASS_UID, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0"),
        prim(tags::MODALITY, b"CS", b"CT"),
    ];
    els.extend(image_attrs(rows, columns, 1, 16));
    els.push(pixel);
    els
}

fn deflate(explicit_bytes: &[u8]) -> Vec<u8> {
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    use std::io::Write;
    let ts = TransferSyntaxRegistry.get(DEFLATED).unwrap();
    let Codec::Dataset(Some(adapter)) = ts.codec() else {
        panic!("deflate compiled in")
    };
    let mut out = Vec::new();
    {
        let mut w = adapter.adapt_writer(Box::new(&mut out));
        w.write_all(explicit_bytes).unwrap();
        w.flush().unwrap();
    }
    out
}

/// Check through memory and through a temp file (at an offset, as in the SCP's temp files);
/// the two must agree.
pub(super) fn check(data: &[u8], ts: &str, image: bool) -> Result<(), Incomplete> {
    let memory = check_bytes(data, ts, image);
    let mut f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut f, &[7u8; 300]).unwrap();
    std::io::Write::write_all(&mut f, data).unwrap();
    let file = check_file(f, 300, data.len() as u64, ts, image);
    assert_eq!(memory, file, "memory and file disagree");
    memory
}

#[test]
fn complete_data_sets_pass() {
    for explicit in [true, false] {
        let ts = if explicit { EXPLICIT } else { IMPLICIT };
        let full = encode(&ct(4, 3, native(24)), explicit);
        assert_eq!(check(&full, ts, true), Ok(()), "{ts}");
        let enc = encode(
            &ct(4, 3, El::Fragments(vec![vec![], vec![1, 2, 3, 4]])),
            explicit,
        );
        assert_eq!(check(&enc, ts, true), Ok(()), "{ts}");
    }
    let full = encode(&ct(4, 3, native(24)), true);
    assert_eq!(check(&deflate(&full), DEFLATED, true), Ok(()));
    // a data set without an image (an SR, a presentation state) needs no Pixel Data
    let sr = encode(&[prim(tags::MODALITY, b"CS", b"SR")], true);
    assert_eq!(check(&sr, EXPLICIT, false), Ok(()));
}

#[test]
fn truncated_at_half_of_pixel_data_and_one_byte_short() {
    for explicit in [true, false] {
        let ts = if explicit { EXPLICIT } else { IMPLICIT };
        let full = encode(&ct(16, 16, native(512)), explicit);
        let at = full.len() - 512;
        let half = &full[..at + 256];
        assert_eq!(
            check(half, ts, true),
            Err(Incomplete::ValuePastEnd {
                tag: tags::PIXEL_DATA,
                offset: (at - if explicit { 12 } else { 8 }) as u64,
                len: 512,
                left: 256
            }),
            "{ts}"
        );
        let short = &full[..full.len() - 1];
        assert!(
            matches!(
                check(short, ts, true),
                Err(Incomplete::ValuePastEnd { left: 511, .. })
            ),
            "{ts}"
        );
        // one byte too many: the data set ends inside an element header
        let mut more = full.clone();
        more.push(0);
        assert_eq!(
            check(&more, ts, true),
            Err(Incomplete::TruncatedHeader {
                offset: full.len() as u64,
                have: 1
            })
        );
        // deflated: the deflate stream cut, and a complete stream of a cut data set
        if explicit {
            let d = deflate(&full);
            for cut in [d.len() / 2, d.len() - 1] {
                assert!(
                    matches!(
                        check(&d[..cut], DEFLATED, true),
                        Err(Incomplete::Inflate(_) | Incomplete::ValuePastEnd { .. })
                    ),
                    "deflate cut at {cut} of {}",
                    d.len()
                );
            }
            assert!(matches!(
                check(&deflate(half), DEFLATED, true),
                Err(Incomplete::ValuePastEnd { left: 256, .. })
            ));
        }
    }
}

#[test]
fn native_pixel_data_has_the_length_of_the_image() {
    // a consistent element of half the length (what storescu sends of a cut file)
    let half = encode(&ct(16, 16, native(256)), true);
    let e = check(&half, EXPLICIT, true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Pixel Data has 256 bytes, not 512 = Rows x Columns x SamplesPerPixel x \
         BitsAllocated/8 x NumberOfFrames = 16x16x1x16/8x1"
    );
    let odd = encode(&ct(16, 16, native(511)), true);
    assert!(matches!(
        check(&odd, EXPLICIT, true),
        Err(Incomplete::PixelDataLength { len: 511, .. })
    ));
    let long = encode(&ct(16, 16, native(514)), true);
    assert!(check(&long, EXPLICIT, true).is_err());

    let image = |attrs: Vec<El>, len: usize| {
        let mut els = attrs;
        els.push(native(len));
        check(&encode(&els, true), EXPLICIT, true)
    };
    // 3×3 8-bit: 9 bytes, or 10 padded to even
    for (len, ok) in [(9, true), (10, true), (8, false), (11, false)] {
        assert_eq!(image(image_attrs(3, 3, 1, 8), len).is_ok(), ok, "{len}");
    }
    // 1 bit: 3×5 = 15 bits → 2 bytes; RGB; frames (IS, padded); 4:2:2
    assert!(image(image_attrs(3, 5, 1, 1), 2).is_ok());
    assert!(image(image_attrs(3, 5, 1, 1), 4).is_err());
    assert!(image(image_attrs(2, 2, 3, 8), 12).is_ok());
    let mut frames = image_attrs(2, 2, 1, 16);
    frames.push(prim(tags::NUMBER_OF_FRAMES, b"IS", b"3 "));
    assert!(image(frames.clone(), 24).is_ok());
    assert!(image(frames, 8).is_err());
    let mut ybr = image_attrs(2, 2, 3, 8);
    ybr.push(prim(
        tags::PHOTOMETRIC_INTERPRETATION,
        b"CS",
        b"YBR_FULL_422",
    ));
    assert!(image(ybr, 8).is_ok());
    // what the length cannot be checked without, or with
    let no_rows = vec![us(tags::COLUMNS, 2), us(tags::BITS_ALLOCATED, 8)];
    assert_eq!(image(no_rows, 4), Err(Incomplete::MissingAttribute("Rows")));
    let mut bad = image_attrs(2, 2, 1, 8);
    bad.push(prim(tags::NUMBER_OF_FRAMES, b"IS", b"x2"));
    assert!(matches!(
        image(bad, 4),
        Err(Incomplete::BadAttribute {
            name: "NumberOfFrames",
            ..
        })
    ));
}

#[test]
fn images_have_pixel_data() {
    let mut els = ct(4, 4, native(32));
    els.pop();
    let no_pixels = encode(&els, true);
    assert!(matches!(
        check(&no_pixels, EXPLICIT, true),
        Err(Incomplete::NoPixelData { .. })
    ));
    // not an image class, but Rows/Columns say it is an image
    assert!(matches!(
        check(&no_pixels, EXPLICIT, false),
        Err(Incomplete::NoPixelData { .. })
    ));
    // an image class cut before its image attributes
    let header = encode(&[prim(tags::MODALITY, b"CS", b"CT")], true);
    assert!(check(&header, EXPLICIT, true).is_err());
    assert!(check(&header, EXPLICIT, false).is_ok());
    assert!(requires_pixel_data(CT));
    assert!(!requires_pixel_data("1.2.840.10008.5.1.4.1.1.88.67"));
    for uid in IMAGE_SOP_CLASSES {
        assert!(
            crate::scp::ACCEPTED_SOP_CLASSES
                .iter()
                .any(|c| c.uid == *uid),
            "{uid} is not accepted"
        );
    }
}

#[test]
fn encapsulated_pixel_data_ends_with_its_delimiter() {
    let frags = vec![vec![], vec![9u8; 10], vec![8u8; 6]];
    for explicit in [true, false] {
        let ts = if explicit { EXPLICIT } else { IMPLICIT };
        let full = encode(&ct(4, 4, El::Fragments(frags.clone())), explicit);
        assert_eq!(check(&full, ts, true), Ok(()));
        // without its sequence delimiter (the last 8 bytes)
        assert_eq!(
            check(&full[..full.len() - 8], ts, true),
            Err(Incomplete::UnterminatedPixelData { items: 3 })
        );
        // a fragment cut
        assert!(matches!(
            check(&full[..full.len() - 11], ts, true),
            Err(Incomplete::ValuePastEnd { tag: ITEM, .. })
        ));
        // an item of undefined length, or an element instead of an item
        let mut undefined = full[..full.len() - 8].to_vec();
        put_item(&mut undefined, ITEM, UNDEFINED);
        assert!(matches!(
            check(&undefined, ts, true),
            Err(Incomplete::UndefinedFragment { .. })
        ));
        let mut stray = full[..full.len() - 8].to_vec();
        put_item(&mut stray, tags::ROWS, 0);
        assert!(matches!(
            check(&stray, ts, true),
            Err(Incomplete::Unexpected {
                found: tags::ROWS,
                ..
            })
        ));
    }
}

/// Sequences of undefined and defined length nested in each other, with items of both kinds,
/// and an undefined-length UN (implicit VR LE inside, even in an explicit VR data set).
pub(super) fn nested() -> Vec<El> {
    let leaf = vec![prim(tags::CODE_VALUE, b"SH", b"113691")];
    let inner = El::Seq {
        tag: tags::CONCEPT_CODE_SEQUENCE,
        vr: *b"SQ",
        defined: false,
        items: vec![(false, leaf.clone()), (true, leaf.clone())],
    };
    let middle = El::Seq {
        tag: tags::REFERENCED_IMAGE_SEQUENCE,
        vr: *b"SQ",
        defined: true,
        items: vec![(true, vec![inner.clone()]), (false, vec![inner.clone()])],
    };
    let outer = El::Seq {
        tag: tags::PROCEDURE_CODE_SEQUENCE,
        vr: *b"SQ",
        defined: false,
        items: vec![(false, vec![middle.clone(), inner]), (true, vec![])],
    };
    let un = El::Seq {
        tag: Tag(0x0009, 0x1010),
        vr: *b"UN",
        defined: false,
        items: vec![(false, vec![middle])],
    };
    let mut els = vec![outer, un];
    els.extend(image_attrs(2, 2, 1, 16));
    els.push(native(8));
    els
}

#[test]
fn nested_sequences_are_walked_to_their_ends() {
    for explicit in [true, false] {
        let ts = if explicit { EXPLICIT } else { IMPLICIT };
        let full = encode(&nested(), explicit);
        assert_eq!(check(&full, ts, true), Ok(()), "{ts}");
        // every cut is refused, also at element and item boundaries inside the sequences
        for cut in 0..full.len() {
            assert!(
                check(&full[..cut], ts, true).is_err(),
                "{ts}: cut at {cut} of {}",
                full.len()
            );
        }
        // the last item delimiter of the outer sequence missing
        let els = nested();
        let outer = encode(&els[..1], explicit);
        let mut broken = outer[..outer.len() - 8].to_vec();
        broken.extend(encode(&els[2..], explicit));
        assert!(check(&broken, ts, true).is_err(), "{ts}");
    }
    // a defined-length item whose content runs past it
    let mut item = Vec::new();
    put_item(&mut item, ITEM, 4);
    put_header(&mut item, tags::CODE_VALUE, *b"SH", 6, true);
    item.extend_from_slice(b"113691");
    let mut seq = Vec::new();
    put_header(
        &mut seq,
        tags::CONCEPT_CODE_SEQUENCE,
        *b"SQ",
        UNDEFINED,
        true,
    );
    seq.extend(item);
    put_item(&mut seq, SEQUENCE_DELIMITER, 0);
    assert!(matches!(
        check(&seq, EXPLICIT, false),
        Err(Incomplete::PastContainer { .. })
    ));
}

#[test]
fn nesting_is_bounded() {
    let mut data = Vec::new();
    for _ in 0..10_000 {
        put_header(
            &mut data,
            tags::CONCEPT_CODE_SEQUENCE,
            *b"SQ",
            UNDEFINED,
            true,
        );
        put_item(&mut data, ITEM, UNDEFINED);
    }
    assert_eq!(check(&data, EXPLICIT, false), Err(Incomplete::TooDeep));
}

#[test]
fn every_accepted_transfer_syntax_as_dicom_object_writes_it() {
    use dicom_core::value::{PixelFragmentSequence, Value};
    use dicom_core::{DataElement, PrimitiveValue};
    use dicom_object::InMemDicomObject;

    for (uid, name) in TRANSFER_SYNTAXES {
        let ts = TransferSyntaxRegistry.get(uid).unwrap();
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(CT),
        ));
        let item = InMemDicomObject::from_element_iter([DataElement::new(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(CT),
        )]);
        obj.put(DataElement::new(
            tags::REFERENCED_IMAGE_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ));
        for (tag, v) in [
            (tags::SAMPLES_PER_PIXEL, 1u16),
            (tags::ROWS, 8),
            (tags::COLUMNS, 6),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 12),
        ] {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        }
        obj.put(if ts.is_encapsulated_pixel_data() {
            let fragments = PixelFragmentSequence::new(vec![], vec![vec![1u8; 30], vec![2u8; 4]]);
            DataElement::new_with_len(
                tags::PIXEL_DATA,
                VR::OB,
                dicom_core::Length::UNDEFINED,
                Value::from(fragments),
            )
        } else {
            DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(vec![3u16; 48].into()),
            )
        });
        let mut data = Vec::new();
        obj.write_dataset_with_ts(&mut data, ts).unwrap();
        assert_eq!(check(&data, uid, true), Ok(()), "{name}");
        for cut in [0, data.len() / 2, data.len() - 1] {
            assert!(
                check(&data[..cut], uid, true).is_err(),
                "{name}: cut at {cut} of {}",
                data.len()
            );
        }
    }
}

#[test]
fn unreadable_syntaxes_are_refused() {
    let data = encode(&ct(1, 1, native(2)), true);
    assert!(matches!(
        check_bytes(&data, "1.2.840.10008.1.2.2", true),
        Err(Incomplete::Syntax(_))
    ));
    assert!(matches!(
        check_bytes(&data, "1.2.3.4", true),
        Err(Incomplete::Syntax(_))
    ));
    // the file meta group's padding is ignored
    assert_eq!(check_bytes(&data, "1.2.840.10008.1.2.1\0", true), Ok(()));
}

/// A 512 MiB instance is checked without reading its values: the file is sparse, and the walk
/// reads its headers only (a read of 512 MiB would take far longer than the bound).
#[test]
fn large_files_are_checked_by_seeking() {
    let mut head = encode(&image_attrs(16_384, 16_384, 1, 16), true);
    let len: u32 = 16_384 * 16_384 * 2;
    put_header(&mut head, tags::PIXEL_DATA, *b"OW", len, true);
    let f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut &f, &head).unwrap();
    f.set_len(head.len() as u64 + u64::from(len)).unwrap();
    let t = std::time::Instant::now();
    let total = head.len() as u64 + u64::from(len);
    assert_eq!(check_file(f, 0, total, EXPLICIT, true), Ok(()));
    assert!(
        t.elapsed() < std::time::Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}
