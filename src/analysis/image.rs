//! Small image primitives on HU slices: masks, morphology (Euclidean discs, the same results as
//! imageproc's distance-transform morphology, which the tests compare against, at a fraction of
//! its cost for the small radii used here), connected components, disc and annulus statistics
//! with NaN ("no data") awareness.

use ndarray::{Array2, ArrayView2};

/// A binary mask with the same shape as a slice (`[row, col]`).
pub type Mask = Array2<bool>;

/// Half-widths of a Euclidean disc of radius `k` pixels, per row offset `-k..=k`: the offsets
/// (dy, dx) with dy² + dx² ≤ k².
fn disc_rows(k: u8) -> Vec<(isize, usize)> {
    let k = k as isize;
    (-k..=k)
        .map(|dy| {
            let mut w = 0;
            while (w + 1) * (w + 1) + dy * dy <= k * k {
                w += 1;
            }
            (dy, w as usize)
        })
        .collect()
}

/// Dilation (`grow`) or erosion of a mask by a Euclidean disc of radius `k` pixels; pixels
/// outside the image count as neither (as imageproc's distance-transform morphology). Separable
/// by rows: per half-width w, whether a row window [c − w, c + w] holds any pixel of interest
/// (set for dilation, unset for erosion); then, per pixel, over the disc's rows.
fn morph(mask: &Mask, k: u8, grow: bool) -> Mask {
    if k == 0 {
        return mask.clone();
    }
    let (rows, cols) = mask.dim();
    let m = mask.as_standard_layout();
    let Some(src) = m.as_slice() else {
        return mask.clone();
    };
    let disc = disc_rows(k);
    let kmax = k as usize;
    // hit[w][r*cols + c]: the row window of half-width w round (r, c) holds a pixel of
    // interest; each width from the previous one by one more pixel on either side.
    let mut hit: Vec<Vec<bool>> = Vec::with_capacity(kmax + 1);
    hit.push(src.iter().map(|&v| v == grow).collect());
    for w in 1..=kmax {
        let prev = &hit[w - 1];
        let mut next = prev.clone();
        for r in 0..rows {
            let p = &prev[r * cols..(r + 1) * cols];
            let n = &mut next[r * cols..(r + 1) * cols];
            if cols > 1 {
                for (o, &x) in n[1..].iter_mut().zip(&p[..cols - 1]) {
                    *o |= x;
                }
                for (o, &x) in n[..cols - 1].iter_mut().zip(&p[1..]) {
                    *o |= x;
                }
            }
        }
        hit.push(next);
    }
    let mut out = vec![false; rows * cols];
    for r in 0..rows {
        let dst = &mut out[r * cols..(r + 1) * cols];
        dst.copy_from_slice(&src[r * cols..(r + 1) * cols]);
        for &(dy, w) in &disc {
            let rr = r as isize + dy;
            if rr < 0 || rr >= rows as isize {
                continue;
            }
            let h = &hit[w][rr as usize * cols..(rr as usize + 1) * cols];
            for (d, &x) in dst.iter_mut().zip(h) {
                // Dilation: set where any disc row hits a set pixel; erosion: unset where any
                // disc row hits an unset one.
                *d = if grow { *d || x } else { *d && !x };
            }
        }
    }
    Array2::from_shape_vec((rows, cols), out).unwrap_or_else(|_| mask.clone())
}

/// Morphological opening with a disc of radius `k` pixels (Euclidean).
pub fn open(mask: &Mask, k: u8) -> Mask {
    morph(&morph(mask, k, false), k, true)
}

/// Morphological erosion with a disc of radius `k` pixels: set pixels with no unset pixel of
/// the image within distance `k`.
pub fn erode(mask: &Mask, k: u8) -> Mask {
    morph(mask, k, false)
}

/// The mask in a flat buffer with a one-pixel frame of `frame` round it (row length cols + 2).
fn framed(mask: &Mask, frame: bool) -> Vec<bool> {
    let (rows, cols) = mask.dim();
    let w = cols + 2;
    let mut out = vec![frame; (rows + 2) * w];
    for ((r, c), &v) in mask.indexed_iter() {
        out[(r + 1) * w + c + 1] = v;
    }
    out
}

/// Connected components (8-connected) of a mask: the label image and each label's pixel count
/// (index 0 = background). Labels are numbered in raster order of each component's first pixel.
pub fn components(mask: &Mask) -> (Array2<u32>, Vec<usize>) {
    let (rows, cols) = mask.dim();
    let w = cols + 2;
    let mut todo = framed(mask, false);
    let mut lab = vec![0u32; (rows + 2) * w];
    let mut counts = vec![0usize];
    let nb = [w - 1, w, w + 1, 1];
    let mut stack: Vec<usize> = Vec::new();
    for r in 1..=rows {
        for i in r * w + 1..r * w + 1 + cols {
            if !todo[i] {
                continue;
            }
            let l = counts.len() as u32;
            let mut n = 0usize;
            todo[i] = false;
            stack.push(i);
            while let Some(p) = stack.pop() {
                n += 1;
                lab[p] = l;
                for d in nb {
                    for q in [p - d, p + d] {
                        if todo[q] {
                            todo[q] = false;
                            stack.push(q);
                        }
                    }
                }
            }
            counts.push(n);
        }
    }
    let labels = Array2::from_shape_fn((rows, cols), |(r, c)| lab[(r + 1) * w + c + 1]);
    (labels, counts)
}

/// Fill the holes of a mask: background regions (8-connected) that do not touch the image
/// border.
pub fn fill_holes(mask: &Mask) -> Mask {
    let (rows, cols) = mask.dim();
    let w = cols + 2;
    // Flood the background from a frame of background round the image: what it does not reach
    // is a hole (the frame touches only border pixels, so it joins nothing else).
    let mut open_bg: Vec<bool> = framed(mask, false).into_iter().map(|v| !v).collect();
    let nb = [w - 1, w, w + 1, 1];
    let mut stack: Vec<usize> = Vec::new();
    let n = open_bg.len();
    // The frame itself is reached; start from its pixels.
    for i in (0..w).chain(n - w..n) {
        open_bg[i] = false;
        stack.push(i);
    }
    for r in 1..=rows {
        for i in [r * w, r * w + w - 1] {
            open_bg[i] = false;
            stack.push(i);
        }
    }
    while let Some(p) = stack.pop() {
        for d in nb {
            for q in [p.wrapping_sub(d), p + d] {
                if q < n && open_bg[q] {
                    open_bg[q] = false;
                    stack.push(q);
                }
            }
        }
    }
    // Reached background is now false in `open_bg`; the holes are still true.
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        mask[[r, c]] || open_bg[(r + 1) * w + c + 1]
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
    use imageproc::image::{GrayImage, Luma};

    fn to_gray(mask: &Mask) -> GrayImage {
        let (rows, cols) = mask.dim();
        GrayImage::from_fn(cols as u32, rows as u32, |x, y| {
            Luma([if mask[[y as usize, x as usize]] {
                255
            } else {
                0
            }])
        })
    }

    fn from_gray(img: &GrayImage) -> Mask {
        let (w, h) = img.dimensions();
        Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
            img.get_pixel(c as u32, r as u32)[0] > 0
        })
    }

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

    /// Pseudo-random masks with blobs, thin lines and pixels on the border.
    fn random_mask(rows: usize, cols: usize, seed: u64, density: u64) -> Mask {
        let mut state = seed.max(1);
        Array2::from_shape_fn((rows, cols), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 100 < density
        })
    }

    #[test]
    fn morphology_and_labels_match_imageproc() {
        use imageproc::distance_transform::Norm;
        use imageproc::region_labelling::{connected_components, Connectivity};
        for (seed, density) in [(1u64, 20u64), (2, 50), (3, 75), (4, 90), (5, 97)] {
            let m = random_mask(37, 53, seed, density);
            // A smoothed version has blobs and holes of several sizes.
            let m2 = from_gray(&imageproc::morphology::close(&to_gray(&m), Norm::L2, 1));
            for mask in [&m, &m2] {
                for k in 1..=6u8 {
                    let g = to_gray(mask);
                    let e = from_gray(&imageproc::morphology::erode(&g, Norm::L2, k));
                    assert_eq!(erode(mask, k), e, "erode k={k} seed={seed}");
                    let o = from_gray(&imageproc::morphology::open(&g, Norm::L2, k));
                    assert_eq!(open(mask, k), o, "open k={k} seed={seed}");
                }
                let lab = connected_components(&to_gray(mask), Connectivity::Eight, Luma([0u8]));
                let (ours, counts) = components(mask);
                let mut n = vec![0usize; counts.len()];
                for (x, y, p) in lab.enumerate_pixels() {
                    assert_eq!(ours[[y as usize, x as usize]], p[0], "label at {x},{y}");
                    n[p[0] as usize] += 1;
                }
                n[0] = 0;
                assert_eq!(counts, n);
                // Holes: background components of the complement not touching the border.
                let inv = mask.mapv(|v| !v);
                let lab = connected_components(&to_gray(&inv), Connectivity::Eight, Luma([0u8]));
                let (rows, cols) = mask.dim();
                let mut touches = std::collections::HashSet::new();
                for (x, y, p) in lab.enumerate_pixels() {
                    let (r, c) = (y as usize, x as usize);
                    if r == 0 || c == 0 || r + 1 == rows || c + 1 == cols {
                        touches.insert(p[0]);
                    }
                }
                let want = Array2::from_shape_fn((rows, cols), |(r, c)| {
                    let l = lab.get_pixel(c as u32, r as u32)[0];
                    mask[[r, c]] || (l != 0 && !touches.contains(&l))
                });
                assert_eq!(fill_holes(mask), want, "fill_holes seed={seed}");
            }
        }
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
