//! The top-level image attributes and the length native Pixel Data must have.

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use super::Incomplete;

#[derive(Debug, Clone, Copy)]
pub(super) enum Pixels {
    Native(u64),
    Encapsulated,
}

/// The top-level attributes Pixel Data's length depends on.
#[derive(Debug, Default)]
pub(super) struct Image {
    pub rows: Option<u16>,
    pub columns: Option<u16>,
    pub samples: Option<u16>,
    pub bits: Option<u16>,
    pub frames: Option<u64>,
    /// YBR_FULL_422 / YBR_PARTIAL_422: two samples stored per pixel (PS3.3 C.7.6.3.1.2).
    pub subsampled: bool,
    pub pixels: Option<Pixels>,
}

impl Image {
    pub fn wants(tag: Tag) -> bool {
        [
            tags::ROWS,
            tags::COLUMNS,
            tags::SAMPLES_PER_PIXEL,
            tags::BITS_ALLOCATED,
            tags::NUMBER_OF_FRAMES,
            tags::PHOTOMETRIC_INTERPRETATION,
        ]
        .contains(&tag)
    }

    pub fn set(&mut self, tag: Tag, v: &[u8]) -> Result<(), Incomplete> {
        let us = |name: &'static str| -> Result<Option<u16>, Incomplete> {
            match v {
                [] => Ok(None),
                [a, b, ..] => Ok(Some(u16::from_le_bytes([*a, *b]))),
                _ => Err(Incomplete::BadAttribute {
                    name,
                    value: format!("{v:?}"),
                }),
            }
        };
        match tag {
            tags::ROWS => self.rows = us("Rows")?,
            tags::COLUMNS => self.columns = us("Columns")?,
            tags::SAMPLES_PER_PIXEL => self.samples = us("SamplesPerPixel")?,
            tags::BITS_ALLOCATED => self.bits = us("BitsAllocated")?,
            tags::PHOTOMETRIC_INTERPRETATION => {
                let text = String::from_utf8_lossy(v);
                let t = text.trim_matches(|c: char| c == ' ' || c == '\0');
                self.subsampled = t == "YBR_FULL_422" || t == "YBR_PARTIAL_422";
            }
            tags::NUMBER_OF_FRAMES => {
                let text = String::from_utf8_lossy(v);
                let first = text.split('\\').next().unwrap_or("");
                let t = first.trim_matches(|c: char| c == ' ' || c == '\0');
                self.frames = if t.is_empty() {
                    None
                } else {
                    Some(t.trim_start_matches('+').parse::<u64>().map_err(|_| {
                        Incomplete::BadAttribute {
                            name: "NumberOfFrames",
                            value: text.to_string(),
                        }
                    })?)
                };
            }
            _ => {}
        }
        Ok(())
    }

    pub fn check(&self, image_class: bool) -> Result<(), Incomplete> {
        let len = match self.pixels {
            Some(Pixels::Encapsulated) => return Ok(()),
            Some(Pixels::Native(len)) => len,
            None if image_class => {
                return Err(Incomplete::NoPixelData {
                    why: "an image storage SOP class",
                })
            }
            None if self.rows.is_some() || self.columns.is_some() => {
                return Err(Incomplete::NoPixelData {
                    why: "Rows/Columns given",
                })
            }
            None => return Ok(()),
        };
        let rows = self.rows.ok_or(Incomplete::MissingAttribute("Rows"))?;
        let columns = self
            .columns
            .ok_or(Incomplete::MissingAttribute("Columns"))?;
        let bits = self
            .bits
            .ok_or(Incomplete::MissingAttribute("BitsAllocated"))?;
        let samples = self.samples.unwrap_or(1);
        // 4:2:2 stores Y Y Cb Cr for two pixels: two samples a pixel
        let stored_samples = if self.subsampled && samples == 3 {
            2
        } else {
            samples
        };
        let frames = self.frames.unwrap_or(1);
        let total_bits = u128::from(rows)
            * u128::from(columns)
            * u128::from(stored_samples)
            * u128::from(bits)
            * u128::from(frames);
        let expected = total_bits.div_ceil(8);
        let padded = expected + expected % 2;
        if u128::from(len) == expected || u128::from(len) == padded {
            Ok(())
        } else {
            Err(Incomplete::PixelDataLength {
                len,
                expected: padded,
                rows,
                columns,
                samples: stored_samples,
                bits,
                frames,
            })
        }
    }
}
