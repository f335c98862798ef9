//! Pixel data → HU: decode one slice (dicom-pixeldata), read the stored values, mask padding,
//! rescale with the slice's own slope/intercept, mask the outside of the reconstruction circle,
//! and (for the overview) block-average right away so that no full-resolution stack is ever held.

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

use super::header::Source;
use super::DicomError;

/// HU below this is no data (outside the reconstruction circle, padding written as −2000/−3024
/// HU); real air is −1000.
pub const MIN_VALID_HU: f32 = -1500.0;

/// Everything needed to turn one slice's pixel data into HU.
#[derive(Debug, Clone)]
pub(crate) struct SliceRecipe {
    pub source: Source,
    /// Frame of a multi-frame object; `None` = the single frame of a classic image.
    pub frame: Option<u32>,
    pub label: String,
    pub rows: usize,
    pub cols: usize,
    pub slope: f64,
    pub intercept: f64,
    /// Stored values in this inclusive range are padding (PixelPaddingValue, up to
    /// PixelPaddingRangeLimit when present).
    pub padding: Option<(i64, i64)>,
}

/// Read a stored value: `bits_allocated` 8/16/32 little-endian, masked to `bits_stored` and sign
/// extended when signed.
#[derive(Debug, Clone, Copy)]
struct Layout {
    bytes: usize,
    bits_stored: u32,
    signed: bool,
}

impl Layout {
    #[inline]
    fn value(&self, b: &[u8]) -> i64 {
        let raw: u32 = match self.bytes {
            1 => u32::from(b[0]),
            2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        };
        let bits = self.bits_stored;
        if bits >= 32 {
            return if self.signed {
                i64::from(raw as i32)
            } else {
                i64::from(raw)
            };
        }
        let masked = raw & ((1u32 << bits) - 1);
        if self.signed && (masked >> (bits - 1)) & 1 == 1 {
            i64::from(masked) - (1i64 << bits)
        } else {
            i64::from(masked)
        }
    }
}

impl SliceRecipe {
    /// Decode this slice and hand its HU values (row-major, NaN = no data) to `f`.
    /// The decoded object and buffers are dropped when this returns.
    pub(crate) fn with_hu<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Result<R, DicomError> {
        match &self.source {
            Source::Memory(o) => self.hu_from(o, f),
            Source::File(p, layout) => {
                let obj =
                    super::raw::open(p, *layout, None).map_err(|e| self.err(e.to_string()))?;
                self.hu_from(&obj, f)
            }
        }
    }

    /// Like [`SliceRecipe::with_hu`], from this slice's object already in memory.
    pub(crate) fn hu_from<R>(
        &self,
        obj: &DefaultDicomObject,
        f: impl FnOnce(&[f32]) -> R,
    ) -> Result<R, DicomError> {
        let decoded = obj
            .decode_pixel_data_frame(self.frame.unwrap_or(0))
            .map_err(|e| self.err(e.to_string()))?;
        if decoded.rows() as usize != self.rows || decoded.columns() as usize != self.cols {
            return Err(self.err(format!(
                "decoded image is {}×{}, the header says {}×{}",
                decoded.rows(),
                decoded.columns(),
                self.rows,
                self.cols
            )));
        }
        if decoded.samples_per_pixel() != 1 {
            return Err(self.err(format!(
                "{} samples per pixel: a CT image has 1",
                decoded.samples_per_pixel()
            )));
        }
        let ba = decoded.bits_allocated();
        let bs = decoded.bits_stored();
        if !matches!(ba, 8 | 16 | 32) || bs == 0 || bs > ba {
            return Err(self.err(format!(
                "unsupported pixel format: BitsAllocated {ba}, BitsStored {bs}"
            )));
        }
        let layout = Layout {
            bytes: usize::from(ba / 8),
            bits_stored: u32::from(bs),
            signed: decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed,
        };
        let data = decoded
            .frame_data(0)
            .map_err(|e| self.err(format!("pixel data too short: {e}")))?;
        let n = self.rows * self.cols;
        if data.len() < n * layout.bytes {
            return Err(self.err(format!(
                "pixel data holds {} bytes, {} expected",
                data.len(),
                n * layout.bytes
            )));
        }
        let to_hu = |v: i64| -> f32 {
            let is_pad = matches!(self.padding, Some((lo, hi)) if v >= lo && v <= hi);
            let h = (v as f64 * self.slope + self.intercept) as f32;
            if is_pad || h < MIN_VALID_HU {
                f32::NAN
            } else {
                h
            }
        };
        let mut hu = vec![0f32; n];
        match layout.bytes {
            // 8 and 16 bits: a look-up table over all stored bit patterns
            1 => {
                let lut: Vec<f32> = (0..=255u8).map(|b| to_hu(layout.value(&[b]))).collect();
                for (out, &b) in hu.iter_mut().zip(&data[..n]) {
                    *out = lut[usize::from(b)];
                }
            }
            2 => {
                let lut: Vec<f32> = (0..=u16::MAX)
                    .map(|w| to_hu(layout.value(&w.to_le_bytes())))
                    .collect();
                for (out, w) in hu.iter_mut().zip(data[..2 * n].chunks_exact(2)) {
                    *out = lut[usize::from(u16::from_le_bytes([w[0], w[1]]))];
                }
            }
            _ => {
                for (out, w) in hu.iter_mut().zip(data[..4 * n].chunks_exact(4)) {
                    *out = to_hu(layout.value(w));
                }
            }
        }
        drop(decoded);
        Ok(f(&hu))
    }

    fn err(&self, reason: String) -> DicomError {
        DicomError::Decode {
            file: self.label.clone(),
            reason,
        }
    }
}

/// Block mean over `factor`×`factor` pixels, ignoring NaN (a block with no valid pixel is NaN).
/// Output is `rows / factor` × `cols / factor` (the last incomplete row/column of blocks, at most
/// `factor - 1` pixels at the bottom/right edge, is dropped so that every block has the same
/// centre offset `(factor - 1) / 2`).
pub(crate) fn block_mean(hu: &[f32], rows: usize, cols: usize, factor: usize, out: &mut [f32]) {
    let f = factor.max(1);
    let (orows, ocols) = (rows / f, cols / f);
    debug_assert_eq!(out.len(), orows * ocols);
    if f == 1 {
        out.copy_from_slice(&hu[..rows * cols]);
        return;
    }
    let mut sum = vec![0f64; ocols];
    let mut cnt = vec![0u32; ocols];
    for orow in 0..orows {
        sum.iter_mut().for_each(|s| *s = 0.0);
        cnt.iter_mut().for_each(|c| *c = 0);
        for r in orow * f..(orow + 1) * f {
            let line = &hu[r * cols..r * cols + ocols * f];
            for (oc, block) in line.chunks_exact(f).enumerate() {
                for &v in block {
                    if !v.is_nan() {
                        sum[oc] += f64::from(v);
                        cnt[oc] += 1;
                    }
                }
            }
        }
        let dst = &mut out[orow * ocols..(orow + 1) * ocols];
        for ((d, s), c) in dst.iter_mut().zip(&sum).zip(&cnt) {
            *d = if *c == 0 {
                f32::NAN
            } else {
                (*s / f64::from(*c)) as f32
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sign_extends_from_bits_stored() {
        let l = Layout {
            bytes: 2,
            bits_stored: 12,
            signed: true,
        };
        // 0x0FFF is -1 in 12-bit two's complement; high garbage bits ignored
        assert_eq!(l.value(&0x0FFFu16.to_le_bytes()), -1);
        assert_eq!(l.value(&0xFFFFu16.to_le_bytes()), -1);
        assert_eq!(l.value(&0x0800u16.to_le_bytes()), -2048);
        assert_eq!(l.value(&0x07FFu16.to_le_bytes()), 2047);
        let l16 = Layout {
            bytes: 2,
            bits_stored: 16,
            signed: true,
        };
        assert_eq!(l16.value(&(-2000i16).to_le_bytes()), -2000);
        let u = Layout {
            bytes: 2,
            bits_stored: 12,
            signed: false,
        };
        assert_eq!(u.value(&0xF123u16.to_le_bytes()), 0x123);
        let u16l = Layout {
            bytes: 2,
            bits_stored: 16,
            signed: false,
        };
        assert_eq!(u16l.value(&0xFFFFu16.to_le_bytes()), 65535);
        let b = Layout {
            bytes: 1,
            bits_stored: 8,
            signed: true,
        };
        assert_eq!(b.value(&[0x80]), -128);
        let w = Layout {
            bytes: 4,
            bits_stored: 32,
            signed: true,
        };
        assert_eq!(w.value(&(-70000i32).to_le_bytes()), -70000);
    }

    #[test]
    fn block_mean_ignores_nan_and_drops_partial_blocks() {
        // 5x5 image, factor 2 -> 2x2 output; last row/col dropped
        let mut hu = vec![0f32; 25];
        for r in 0..5 {
            for c in 0..5 {
                hu[r * 5 + c] = (r * 10 + c) as f32;
            }
        }
        hu[0] = f32::NAN; // block (0,0) = mean of 1, 10, 11
        hu[2] = f32::NAN;
        hu[3] = f32::NAN;
        hu[7] = f32::NAN;
        hu[8] = f32::NAN; // block (0,1) all NaN
        let mut out = vec![0f32; 4];
        block_mean(&hu, 5, 5, 2, &mut out);
        assert!((out[0] - (1.0 + 10.0 + 11.0) / 3.0).abs() < 1e-6);
        assert!(out[1].is_nan());
        assert!((out[2] - (20.0 + 21.0 + 30.0 + 31.0) / 4.0).abs() < 1e-6);
        assert!((out[3] - (22.0 + 23.0 + 32.0 + 33.0) / 4.0).abs() < 1e-6);
    }

    #[test]
    fn block_mean_factor_one_copies() {
        let hu = vec![1.0f32, f32::NAN, 3.0, 4.0];
        let mut out = vec![0f32; 4];
        block_mean(&hu, 2, 2, 1, &mut out);
        assert_eq!(out[0], 1.0);
        assert!(out[1].is_nan());
        assert_eq!(out[3], 4.0);
    }
}
