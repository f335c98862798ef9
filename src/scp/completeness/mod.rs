//! The check before an acknowledgement: the received data set is complete.
//!
//! A sender whose association broke, whose disk returned a short read, or whose software cut a
//! file, may still send a well-formed C-STORE whose data set stops early, and the header parser
//! (which reads up to Pixel Data) does not notice. Before C-STORE-RSP 0x0000 the data set is
//! therefore walked to its end, element by element, in the negotiated transfer syntax:
//!
//! - every element's value lies inside the data set (and inside its item or sequence, when
//!   those have a defined length); the data set does not end inside an element header;
//! - every sequence and item of undefined length ends with its delimitation item;
//! - encapsulated Pixel Data ends with its sequence delimitation item, and every fragment is
//!   whole;
//! - native Pixel Data (top level) has exactly Rows × Columns × SamplesPerPixel ×
//!   BitsAllocated/8 × NumberOfFrames bytes (SamplesPerPixel and NumberOfFrames default to 1; the
//!   product in bits rounded up to whole bytes, so 1-bit images count right; that length or the
//!   length padded to even; YBR_FULL_422/YBR_PARTIAL_422 store two samples a pixel);
//! - an image (an image storage SOP class, or a data set with Rows or Columns) has Pixel Data.
//!
//! What fails is answered 0xC000 with the reason (see [`Incomplete`]).
//!
//! # Streaming
//! Only tags and lengths are read, through a bounded buffer: the values are skipped, by seeking
//! in the temp file (a few KiB read whatever the size of the instance) or by slicing the bytes
//! kept in memory. The only values read are the top-level image attributes (Rows, Columns,
//! SamplesPerPixel, BitsAllocated, NumberOfFrames, PhotometricInterpretation; at most 64 bytes
//! each). Nesting is followed with an explicit stack of at most [`MAX_DEPTH`] levels (no
//! recursion a peer could overflow).
//!
//! # Transfer syntaxes
//! - Explicit VR Little Endian and every encapsulated syntax (JPEG, JPEG-LS, JPEG 2000, RLE):
//!   explicit VR LE element headers. An undefined-length UN holds Implicit VR LE items
//!   (PS3.5 6.2.2); a defined-length SQ is walked into, any other value is skipped.
//! - Implicit VR Little Endian: a defined-length element is a sequence (walked into) when the
//!   standard dictionary says SQ; undefined length means a sequence (or, for Pixel Data,
//!   fragments).
//! - Deflated Explicit VR Little Endian: the data set is inflated as a stream by the transfer
//!   syntax registry's own adapter (flate2 underneath, already compiled in for the header parser:
//!   no new dependency; nothing inflated is kept: skipped values are inflated into a small buffer
//!   and dropped) and walked as explicit VR LE. A deflate stream that ends early or is corrupt
//!   is refused; bytes after the end of a complete deflate stream are not looked at. Inflating
//!   costs CPU in proportion to the data set, so deflated data sets are always checked off the
//!   async reactor.
//! - Big endian is not among the accepted syntaxes ([`super::TRANSFER_SYNTAXES`]); a syntax this
//!   check cannot read is refused rather than acknowledged unchecked.

mod image;
mod source;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use image::{Image, Pixels};
use source::{FileSource, Inflating, Slice, Source};

/// Sequences and items nested deeper than this are refused (no CT goes beyond a handful).
const MAX_DEPTH: usize = 64;

/// Read buffer of the temp file (element headers are read through it; values are seeked over).
const READ_BUFFER: usize = 16 << 10;

/// Implicit VR Little Endian, the one accepted syntax without explicit VRs.
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Image storage SOP classes among the accepted ones: their data sets must hold Pixel Data.
const IMAGE_SOP_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.2",
    "1.2.840.10008.5.1.4.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.2.2",
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.1",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4",
];

/// Must a data set of this SOP class hold Pixel Data?
pub(crate) fn requires_pixel_data(sop_class: &str) -> bool {
    IMAGE_SOP_CLASSES.contains(&sop_class)
}

/// Why a data set is not acknowledged. The messages go into the response's Error Comment,
/// which holds 64 characters: each one says what is wrong first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Incomplete {
    #[error("truncated or stray bytes: {have} bytes of an element header at byte {offset}")]
    TruncatedHeader { offset: u64, have: usize },
    #[error("truncated: {tag} at byte {offset} has {len} bytes, {left} are left")]
    ValuePastEnd {
        tag: Tag,
        offset: u64,
        len: u64,
        left: u64,
    },
    #[error("{tag} at byte {offset} runs past the end of its item or sequence at byte {end}")]
    PastContainer { tag: Tag, offset: u64, end: u64 },
    #[error("truncated: the data set ends inside sequence {tag}")]
    UnterminatedSequence { tag: Tag },
    #[error("truncated: the data set ends inside an item of {tag}")]
    UnterminatedItem { tag: Tag },
    #[error(
        "truncated: encapsulated Pixel Data without its sequence delimiter (after {items} items)"
    )]
    UnterminatedPixelData { items: u64 },
    #[error("unexpected {found} at byte {offset} in {within}")]
    Unexpected {
        found: Tag,
        offset: u64,
        within: &'static str,
    },
    #[error("item of undefined length in encapsulated Pixel Data at byte {offset}")]
    UndefinedFragment { offset: u64 },
    #[error("Pixel Data has {len} bytes, not {expected} = Rows x Columns x SamplesPerPixel x BitsAllocated/8 x NumberOfFrames = {rows}x{columns}x{samples}x{bits}/8x{frames}")]
    PixelDataLength {
        len: u64,
        expected: u128,
        rows: u16,
        columns: u16,
        samples: u16,
        bits: u16,
        frames: u64,
    },
    #[error("no Pixel Data in an image ({why})")]
    NoPixelData { why: &'static str },
    #[error("native Pixel Data without {0}: its length cannot be checked")]
    MissingAttribute(&'static str),
    #[error("{name} {value:?} is not valid")]
    BadAttribute { name: &'static str, value: String },
    #[error("sequences nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("deflated data set: {0}")]
    Inflate(String),
    #[error("transfer syntax {0}: the data set cannot be checked in it")]
    Syntax(String),
    /// Reading the received bytes failed (the temp file): not the sender's fault.
    #[error("cannot read the received data set: {0}")]
    Unreadable(String),
}

impl Incomplete {
    /// A failure to read our own temp file (answered "out of resources"), not a data set fault.
    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Incomplete::Unreadable(_))
    }
}

/// How the data set bytes of a transfer syntax are walked.
enum Encoding {
    Plain { explicit: bool },
    Deflated(&'static dicom_encoding::transfer_syntax::DynDataRWAdapter),
}

fn encoding(ts_uid: &str) -> Result<Encoding, Incomplete> {
    let uid = ts_uid.trim_end_matches(['\0', ' ']);
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| Incomplete::Syntax(format!("{uid} (unknown)")))?;
    if ts.endianness() != Endianness::Little {
        return Err(Incomplete::Syntax(format!("{uid} (big endian)")));
    }
    match ts.codec() {
        Codec::Dataset(Some(adapter)) => Ok(Encoding::Deflated(adapter)),
        Codec::Dataset(None) => Err(Incomplete::Syntax(format!("{uid} (no reader)"))),
        Codec::None | Codec::EncapsulatedPixelData(..) => Ok(Encoding::Plain {
            explicit: uid != IMPLICIT_VR_LE,
        }),
    }
}

/// Is `ts_uid` deflated? Its data sets are checked by inflating them: not on the async reactor.
pub(crate) fn is_deflated(ts_uid: &str) -> bool {
    matches!(encoding(ts_uid), Ok(Encoding::Deflated(_)))
}

/// Check a data set held in memory (cheap unless deflated: headers only).
pub(crate) fn check_bytes(data: &[u8], ts_uid: &str, image: bool) -> Result<(), Incomplete> {
    match encoding(ts_uid)? {
        Encoding::Plain { explicit } => Walker::new(Slice(data), explicit, image).run(),
        Encoding::Deflated(adapter) => {
            let inflated = adapter.adapt_reader(Box::new(data));
            Walker::new(Inflating(inflated), true, image).run()
        }
    }
}

/// Check the data set that fills `file` from byte `offset` on, `len` bytes (blocking).
pub(crate) fn check_file(
    mut file: File,
    offset: u64,
    len: u64,
    ts_uid: &str,
    image: bool,
) -> Result<(), Incomplete> {
    let encoding = encoding(ts_uid)?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Incomplete::Unreadable(e.to_string()))?;
    let reader = BufReader::with_capacity(READ_BUFFER, file);
    match encoding {
        Encoding::Plain { explicit } => {
            Walker::new(FileSource { reader, left: len }, explicit, image).run()
        }
        Encoding::Deflated(adapter) => {
            let inflated = adapter.adapt_reader(Box::new(reader.take(len)));
            Walker::new(Inflating(inflated), true, image).run()
        }
    }
}

// ------------------------------------------------------------------------------ the walk

/// What a level of nesting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Data elements: the data set itself (level 0) or an item of a sequence.
    Elements,
    /// Items of a sequence.
    Items,
    /// Fragments of encapsulated pixel data.
    Fragments,
}

#[derive(Debug, Clone, Copy)]
struct Level {
    kind: Kind,
    /// The sequence or Pixel Data element this level belongs to (level 0: none).
    tag: Tag,
    /// Absolute end for a defined length; `None`: ends with a delimiter (or, at level 0, with
    /// the data).
    end: Option<u64>,
    explicit: bool,
    /// Fragments seen (encapsulated pixel data).
    items: u64,
}

/// An element (or item) header.
#[derive(Debug, Clone, Copy)]
struct Header {
    tag: Tag,
    /// The explicit VR (`None` in implicit VR and for items and delimiters).
    vr: Option<[u8; 2]>,
    len: u32,
    /// Byte offset of the header in the data set.
    offset: u64,
}

struct Walker<S> {
    src: S,
    pos: u64,
    levels: Vec<Level>,
    image: Image,
    /// The SOP class is an image class (Pixel Data required).
    image_class: bool,
}

impl<S: Source> Walker<S> {
    fn new(src: S, explicit: bool, image_class: bool) -> Self {
        Walker {
            src,
            pos: 0,
            levels: vec![Level {
                kind: Kind::Elements,
                tag: Tag(0, 0),
                end: None,
                explicit,
                items: 0,
            }],
            image: Image::default(),
            image_class,
        }
    }

    fn run(mut self) -> Result<(), Incomplete> {
        while let Some(&level) = self.levels.last() {
            if level.end == Some(self.pos) {
                self.levels.pop();
                continue;
            }
            match level.kind {
                Kind::Elements => self.element(level)?,
                Kind::Items => self.item(level)?,
                Kind::Fragments => self.fragment(level)?,
            }
        }
        self.image.check(self.image_class)
    }

    /// The nearest defined end of the enclosing levels (values must not pass it).
    fn limit(&self) -> Option<u64> {
        self.levels.iter().rev().find_map(|l| l.end)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Incomplete> {
        let n = self.src.fill(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// The next header, `None` at the end of the data (exactly between two elements).
    fn header(&mut self, explicit: bool) -> Result<Option<Header>, Incomplete> {
        let offset = self.pos;
        let mut b = [0u8; 8];
        match self.read(&mut b)? {
            0 => return Ok(None),
            8 => {}
            have => return Err(Incomplete::TruncatedHeader { offset, have }),
        }
        let tag = Tag(
            u16::from_le_bytes([b[0], b[1]]),
            u16::from_le_bytes([b[2], b[3]]),
        );
        let mut header = Header {
            tag,
            vr: None,
            len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            offset,
        };
        if explicit && tag.group() != 0xFFFE {
            let vr = [b[4], b[5]];
            header.vr = Some(vr);
            header.len = if has_long_length(vr) {
                let mut l = [0u8; 4];
                let n = self.read(&mut l)?;
                if n != 4 {
                    return Err(Incomplete::TruncatedHeader {
                        offset,
                        have: 8 + n,
                    });
                }
                u32::from_le_bytes(l)
            } else {
                u32::from(u16::from_le_bytes([b[6], b[7]]))
            };
        }
        if let Some(end) = self.limit() {
            if self.pos > end {
                return Err(Incomplete::PastContainer { tag, offset, end });
            }
        }
        Ok(Some(header))
    }

    /// Enter a level whose content starts here.
    fn push(&mut self, kind: Kind, h: &Header, explicit: bool) -> Result<(), Incomplete> {
        if self.levels.len() > MAX_DEPTH {
            return Err(Incomplete::TooDeep);
        }
        let end = if h.len == UNDEFINED {
            None
        } else {
            let end = self.pos + u64::from(h.len);
            if let Some(limit) = self.limit() {
                if end > limit {
                    return Err(Incomplete::PastContainer {
                        tag: h.tag,
                        offset: h.offset,
                        end: limit,
                    });
                }
            }
            Some(end)
        };
        let tag = match kind {
            // an item belongs to its sequence
            Kind::Elements => self.levels.last().map_or(h.tag, |l| l.tag),
            _ => h.tag,
        };
        self.levels.push(Level {
            kind,
            tag,
            end,
            explicit,
            items: 0,
        });
        Ok(())
    }

    /// Skip a value of `len` bytes: inside its container and inside the data.
    fn skip(&mut self, h: &Header) -> Result<(), Incomplete> {
        let len = u64::from(h.len);
        if let Some(end) = self.limit() {
            if self.pos + len > end {
                return Err(Incomplete::PastContainer {
                    tag: h.tag,
                    offset: h.offset,
                    end,
                });
            }
        }
        let skipped = self.src.skip(len)?;
        self.pos += skipped;
        if skipped < len {
            return Err(Incomplete::ValuePastEnd {
                tag: h.tag,
                offset: h.offset,
                len,
                left: skipped,
            });
        }
        Ok(())
    }

    /// A small value (an image attribute), read.
    fn value(&mut self, h: &Header) -> Result<Vec<u8>, Incomplete> {
        if let Some(end) = self.limit() {
            if self.pos + u64::from(h.len) > end {
                return Err(Incomplete::PastContainer {
                    tag: h.tag,
                    offset: h.offset,
                    end,
                });
            }
        }
        let mut v = vec![0u8; h.len as usize];
        let n = self.read(&mut v)?;
        if n < v.len() {
            return Err(Incomplete::ValuePastEnd {
                tag: h.tag,
                offset: h.offset,
                len: u64::from(h.len),
                left: n as u64,
            });
        }
        Ok(v)
    }

    /// One data element of the data set or of an item.
    fn element(&mut self, level: Level) -> Result<(), Incomplete> {
        let depth = self.levels.len() - 1;
        let Some(h) = self.header(level.explicit)? else {
            if depth == 0 {
                self.levels.pop();
                return Ok(());
            }
            return Err(Incomplete::UnterminatedItem { tag: level.tag });
        };
        match h.tag {
            ITEM_DELIMITER if depth > 0 && level.end.is_none() => {
                self.levels.pop();
                return Ok(());
            }
            // a stray item delimiter between top-level elements is skipped (as dicom-rs does)
            ITEM_DELIMITER if depth == 0 => return Ok(()),
            t if t.group() == 0xFFFE => {
                return Err(Incomplete::Unexpected {
                    found: t,
                    offset: h.offset,
                    within: if depth == 0 {
                        "the data set"
                    } else {
                        "an item"
                    },
                })
            }
            _ => {}
        }
        if h.len == UNDEFINED {
            if h.tag == tags::PIXEL_DATA {
                if depth == 0 {
                    self.image.pixels = Some(Pixels::Encapsulated);
                }
                return self.push(Kind::Fragments, &h, level.explicit);
            }
            // a sequence; an undefined-length UN holds implicit VR LE items (PS3.5 6.2.2)
            let explicit = level.explicit && h.vr != Some(*b"UN");
            return self.push(Kind::Items, &h, explicit);
        }
        if is_sequence(&h) {
            return self.push(Kind::Items, &h, level.explicit);
        }
        if depth == 0 {
            if h.tag == tags::PIXEL_DATA {
                self.image.pixels = Some(Pixels::Native(u64::from(h.len)));
            } else if Image::wants(h.tag) && h.len <= 64 {
                let v = self.value(&h)?;
                return self.image.set(h.tag, &v);
            }
        }
        self.skip(&h)
    }

    /// One item (or the delimiter) of a sequence.
    fn item(&mut self, level: Level) -> Result<(), Incomplete> {
        let Some(h) = self.header(false)? else {
            return Err(Incomplete::UnterminatedSequence { tag: level.tag });
        };
        match h.tag {
            ITEM => self.push(Kind::Elements, &h, level.explicit),
            SEQUENCE_DELIMITER if level.end.is_none() => {
                self.levels.pop();
                Ok(())
            }
            t => Err(Incomplete::Unexpected {
                found: t,
                offset: h.offset,
                within: "a sequence",
            }),
        }
    }

    /// One fragment (or the delimiter) of encapsulated pixel data.
    fn fragment(&mut self, level: Level) -> Result<(), Incomplete> {
        let Some(h) = self.header(false)? else {
            return Err(Incomplete::UnterminatedPixelData { items: level.items });
        };
        match h.tag {
            ITEM if h.len == UNDEFINED => Err(Incomplete::UndefinedFragment { offset: h.offset }),
            ITEM => {
                self.skip(&h)?;
                if let Some(l) = self.levels.last_mut() {
                    l.items += 1;
                }
                Ok(())
            }
            SEQUENCE_DELIMITER => {
                self.levels.pop();
                Ok(())
            }
            t => Err(Incomplete::Unexpected {
                found: t,
                offset: h.offset,
                within: "encapsulated Pixel Data",
            }),
        }
    }
}

/// Explicit VRs with a 4-byte length (PS3.5 7.1.2); an unknown VR is read as UN, as dicom-rs
/// reads it.
fn has_long_length(vr: [u8; 2]) -> bool {
    !matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// A defined-length sequence: SQ in explicit VR, the dictionary's SQ in implicit VR.
fn is_sequence(h: &Header) -> bool {
    match h.vr {
        Some(vr) => &vr == b"SQ",
        None => StandardDataDictionary
            .by_tag(h.tag)
            .is_some_and(|e| e.vr() == VirtualVr::Exact(VR::SQ)),
    }
}

#[cfg(test)]
mod tests;
