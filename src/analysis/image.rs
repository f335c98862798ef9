//! Small image primitives on HU slices: masks, morphology (via imageproc), disc and annulus
//! statistics with NaN ("no data") awareness.

use imageproc::distance_transform::Norm;
use imageproc::image::{GrayImage, Luma};
use imageproc::region_labelling::{connected_components, Connectivity};
use ndarray::{Array2, ArrayView2};

/// A binary mask with the same shape as a slice (`[row, col]`).
pub type Mask = Array2<bool>;

pub fn to_gray(mask: &Mask) -> GrayImage {
    let (rows, cols) = mask.dim();
    GrayImage::from_fn(cols as u32, rows as u32, |x, y| {
        Luma([if mask[[y as usize, x as usize]] {
            255
        } else {
            0
        }])
    })
}

pub fn from_gray(img: &GrayImage) -> Mask {
    let (w, h) = img.dimensions();
    Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
        img.get_pixel(c as u32, r as u32)[0] > 0
    })
}

/// Morphological opening with a disc of radius `k` pixels (Euclidean).
pub fn open(mask: &Mask, k: u8) -> Mask {
    if k == 0 {
        return mask.clone();
    }
    from_gray(&imageproc::morphology::open(&to_gray(mask), Norm::L2, k))
}

/// Morphological erosion with a disc of radius `k` pixels.
pub fn erode(mask: &Mask, k: u8) -> Mask {
    if k == 0 {
        return mask.clone();
    }
    from_gray(&imageproc::morphology::erode(&to_gray(mask), Norm::L2, k))
}

/// Connected components (8-connected) of a mask: the label image and each label's pixel count
/// (index 0 = background).
pub fn components(mask: &Mask) -> (Array2<u32>, Vec<usize>) {
    let labels = connected_components(&to_gray(mask), Connectivity::Eight, Luma([0u8]));
    let (w, h) = labels.dimensions();
    let mut out = Array2::<u32>::zeros((h as usize, w as usize));
    let mut counts = vec![0usize; 1];
    for (x, y, p) in labels.enumerate_pixels() {
        let l = p[0];
        out[[y as usize, x as usize]] = l;
        if l as usize >= counts.len() {
            counts.resize(l as usize + 1, 0);
        }
        counts[l as usize] += 1;
    }
    counts[0] = 0;
    (out, counts)
}

/// Fill the holes of a mask: background regions that do not touch the image border.
pub fn fill_holes(mask: &Mask) -> Mask {
    let inv = mask.mapv(|v| !v);
    let (labels, counts) = components(&inv);
    let (rows, cols) = mask.dim();
    let mut touches = vec![false; counts.len()];
    for r in 0..rows {
        for c in [0, cols - 1] {
            touches[labels[[r, c]] as usize] = true;
        }
    }
    for c in 0..cols {
        for r in [0, rows - 1] {
            touches[labels[[r, c]] as usize] = true;
        }
    }
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        mask[[r, c]] || (labels[[r, c]] != 0 && !touches[labels[[r, c]] as usize])
    })
}

/// Running statistics of the finite values in a region.
#[derive(Debug, Clone, Copy, Default)]
pub struct Acc {
    pub n: usize,
    pub n_nan: usize,
    pub sum: f64,
    pub sum2: f64,
}

impl Acc {
    pub fn push(&mut self, v: f32) {
        if v.is_finite() {
            self.n += 1;
            self.sum += v as f64;
            self.sum2 += (v as f64) * (v as f64);
        } else {
            self.n_nan += 1;
        }
    }
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.sum / self.n as f64
        }
    }
}

/// Visit the pixels whose centres lie within `r_in..=r_out` pixels (elliptical when the pixels are
/// not square: radii are given in mm with the pixel size `px = [dy, dx]`) of (row, col).
pub fn for_each_in_annulus(
    rows: usize,
    cols: usize,
    centre: (f64, f64),
    r_in_mm: f64,
    r_out_mm: f64,
    px: [f64; 2],
    mut f: impl FnMut(usize, usize),
) -> usize {
    let (cr, cc) = centre;
    let rr = r_out_mm / px[0];
    let rc = r_out_mm / px[1];
    // Pixels of the full disc that fall outside the image: reported as missing.
    let mut outside = 0usize;
    let r_in2 = r_in_mm * r_in_mm;
    let r_out2 = r_out_mm * r_out_mm;
    let rs = (cr - rr).floor() as isize;
    let re = (cr + rr).ceil() as isize;
    let cs = (cc - rc).floor() as isize;
    let ce = (cc + rc).ceil() as isize;
    for r in rs..=re {
        let dy = (r as f64 - cr) * px[0];
        for c in cs..=ce {
            let dx = (c as f64 - cc) * px[1];
            let d2 = dx * dx + dy * dy;
            if d2 > r_out2 || d2 < r_in2 {
                continue;
            }
            if r < 0 || c < 0 || r >= rows as isize || c >= cols as isize {
                outside += 1;
                continue;
            }
            f(r as usize, c as usize);
        }
    }
    outside
}

/// Statistics of a disc (r_in = 0) or annulus on one slice; pixels outside the image count as NaN.
pub fn annulus_stats(
    img: ArrayView2<f32>,
    centre: (f64, f64),
    r_in_mm: f64,
    r_out_mm: f64,
    px: [f64; 2],
) -> Acc {
    let (rows, cols) = img.dim();
    let mut acc = Acc::default();
    let outside = for_each_in_annulus(rows, cols, centre, r_in_mm, r_out_mm, px, |r, c| {
        acc.push(img[[r, c]])
    });
    acc.n_nan += outside;
    acc
}

/// Median of the finite pixels within `r` mm of (x, y) (image frame of `geo`).
pub fn disc_median(img: ArrayView2<f32>, geo: &super::Geo, x: f64, y: f64, r: f64) -> f64 {
    let (rows, cols) = img.dim();
    let mut v = Vec::new();
    for_each_in_annulus(
        rows,
        cols,
        (geo.row_of(y), geo.col_of(x)),
        0.0,
        r,
        geo.px,
        |rr, cc| {
            let x = img[[rr, cc]];
            if x.is_finite() {
                v.push(x);
            }
        },
    );
    median(&mut v)
}

/// Mean over slices, ignoring NaN; a pixel with no finite value stays NaN.
pub fn nan_mean_slices(stack: &ndarray::Array3<f32>) -> Array2<f32> {
    let (n, rows, cols) = stack.dim();
    let mut out = Array2::<f32>::from_elem((rows, cols), f32::NAN);
    for r in 0..rows {
        for c in 0..cols {
            let mut s = 0.0f64;
            let mut k = 0usize;
            for i in 0..n {
                let v = stack[[i, r, c]];
                if v.is_finite() {
                    s += v as f64;
                    k += 1;
                }
            }
            if k > 0 {
                out[[r, c]] = (s / k as f64) as f32;
            }
        }
    }
    out
}

/// Median of a slice of finite values (reordered in place; linear-time selection).
pub fn median(values: &mut [f32]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, |a, b| a.total_cmp(b));
    let upper = *upper as f64;
    if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().fold(f32::MIN, f32::max) as f64;
        (below + upper) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn fill_holes_fills_enclosed_background_only() {
        let mut m = Array2::from_elem((9, 9), false);
        for r in 1..8 {
            for c in 1..8 {
                m[[r, c]] = !(r == 4 && c == 4);
            }
        }
        let f = fill_holes(&m);
        assert!(f[[4, 4]]);
        assert!(!f[[0, 0]]);
        assert_eq!(f.iter().filter(|v| **v).count(), 49);
    }

    #[test]
    fn disc_stats_count_pixels_and_outside() {
        let img = Array2::from_elem((21, 21), 5.0f32);
        let a = annulus_stats(img.view(), (10.0, 10.0), 0.0, 3.0, [1.0, 1.0]);
        assert_eq!(a.n, 29);
        assert_eq!(a.n_nan, 0);
        assert!((a.mean() - 5.0).abs() < 1e-9);
        let b = annulus_stats(img.view(), (0.0, 0.0), 0.0, 3.0, [1.0, 1.0]);
        assert_eq!(b.n + b.n_nan, 29);
        assert!(b.n_nan > 0);
    }

    #[test]
    fn opening_removes_thin_plate() {
        let mut m = Array2::from_elem((40, 40), false);
        for r in 5..25 {
            for c in 5..25 {
                m[[r, c]] = true;
            }
        }
        for c in 0..40 {
            m[[30, c]] = true;
            m[[31, c]] = true;
        }
        let o = open(&m, 3);
        assert!(o[[15, 15]]);
        assert!(!o[[30, 20]]);
    }
}
