//! Gaussian blur of the ideal image and correlated Gaussian noise.

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// A normalised (sum 1) 1-D Gaussian kernel of standard deviation `sigma_px`, truncated at 4σ.
/// `None` for σ below 0.05 px (no filtering).
pub(crate) fn gaussian_kernel(sigma_px: f64) -> Option<Vec<f32>> {
    if sigma_px.is_nan() || sigma_px < 0.05 {
        return None;
    }
    let radius = (4.0 * sigma_px).ceil().max(1.0) as i64;
    let mut k: Vec<f64> = (-radius..=radius)
        .map(|i| (-0.5 * (i as f64 / sigma_px).powi(2)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    for v in &mut k {
        *v /= sum;
    }
    Some(k.into_iter().map(|v| v as f32).collect())
}

/// Separable Gaussian blur in place (edges replicated).
pub(crate) fn blur(img: &mut [f32], rows: usize, cols: usize, kernel: &[f32]) {
    let rad = (kernel.len() / 2) as i64;
    let mut tmp = vec![0f32; rows * cols];
    tmp.par_chunks_mut(cols).enumerate().for_each(|(r, out)| {
        let src = &img[r * cols..(r + 1) * cols];
        for (c, o) in out.iter_mut().enumerate() {
            let mut acc = 0f32;
            for (j, &w) in kernel.iter().enumerate() {
                let cc = (c as i64 + j as i64 - rad).clamp(0, cols as i64 - 1) as usize;
                acc += w * src[cc];
            }
            *o = acc;
        }
    });
    img.par_chunks_mut(cols).enumerate().for_each(|(r, out)| {
        out.fill(0.0);
        for (j, &w) in kernel.iter().enumerate() {
            let rr = (r as i64 + j as i64 - rad).clamp(0, rows as i64 - 1) as usize;
            let src = &tmp[rr * cols..(rr + 1) * cols];
            for (o, &s) in out.iter_mut().zip(src) {
                *o += w * s;
            }
        }
    });
}

/// Noise model: white Gaussian noise, optionally filtered by a Gaussian kernel, scaled so that
/// the per-pixel standard deviation is exactly `sigma` in expectation.
#[derive(Debug, Clone)]
pub(crate) struct NoiseModel {
    pub sigma: f32,
    /// The correlation kernel (normalised to sum 1), if any.
    pub kernel: Option<Vec<f32>>,
    /// Factor applied after filtering so that the std is `sigma`.
    pub scale: f32,
    /// (Σk)²/Σk² of the 2-D kernel: the number of pixels that act as one independent sample
    /// (the variance of a large ROI's mean is σ²·n_corr/N). 1 for white noise.
    pub n_corr: f64,
}

impl NoiseModel {
    pub(crate) fn new(sigma_hu: f64, corr_px: f64) -> Self {
        let kernel = gaussian_kernel(corr_px);
        match kernel {
            None => NoiseModel {
                sigma: sigma_hu as f32,
                kernel: None,
                scale: sigma_hu as f32,
                n_corr: 1.0,
            },
            Some(k) => {
                let s1: f64 = k.iter().map(|&v| v as f64).sum();
                let s2: f64 = k.iter().map(|&v| (v as f64).powi(2)).sum();
                // 2-D kernel k⊗k: Σ(k⊗k)² = (Σk²)², so the filtered std is Σk².
                NoiseModel {
                    sigma: sigma_hu as f32,
                    scale: (sigma_hu / s2) as f32,
                    n_corr: s1.powi(4) / s2.powi(2),
                    kernel: Some(k),
                }
            }
        }
    }

    /// Add one noise field (seeded by `seed`) to `img`.
    pub(crate) fn add(&self, img: &mut [f32], rows: usize, cols: usize, seed: u64) {
        if self.sigma <= 0.0 {
            return;
        }
        let mut rng = StdRng::seed_from_u64(seed);
        match &self.kernel {
            None => {
                for v in img.iter_mut() {
                    let n: f32 = rng.sample(StandardNormal);
                    *v += self.scale * n;
                }
            }
            Some(k) => {
                // White noise on a padded grid, filtered with 'valid' borders: no edge effects.
                let rad = k.len() / 2;
                let pr = rows + 2 * rad;
                let pc = cols + 2 * rad;
                let white: Vec<f32> = (0..pr * pc).map(|_| rng.sample(StandardNormal)).collect();
                let mut horiz = vec![0f32; pr * cols];
                for r in 0..pr {
                    let src = &white[r * pc..(r + 1) * pc];
                    let dst = &mut horiz[r * cols..(r + 1) * cols];
                    for (c, d) in dst.iter_mut().enumerate() {
                        let mut acc = 0f32;
                        for (j, &w) in k.iter().enumerate() {
                            acc += w * src[c + j];
                        }
                        *d = acc;
                    }
                }
                for r in 0..rows {
                    let out = &mut img[r * cols..(r + 1) * cols];
                    for (j, &w) in k.iter().enumerate() {
                        let src = &horiz[(r + j) * cols..(r + j + 1) * cols];
                        let w = w * self.scale;
                        for (o, &s) in out.iter_mut().zip(src) {
                            *o += w * s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(v: &[f32]) -> f64 {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    }

    #[test]
    fn noise_std_matches_sigma_white_and_correlated() {
        for corr in [0.0, 0.8, 2.0] {
            let model = NoiseModel::new(12.0, corr);
            let mut img = vec![0f32; 256 * 256];
            model.add(&mut img, 256, 256, 7);
            let s = std_of(&img);
            assert!((s - 12.0).abs() < 0.5, "corr {corr}: std {s}");
            if corr > 1.0 {
                // neighbouring pixels are correlated
                let c: f64 = (0..255 * 256)
                    .filter(|i| i % 256 != 255)
                    .map(|i| img[i] as f64 * img[i + 1] as f64)
                    .sum::<f64>()
                    / (255.0 * 255.0 * 144.0);
                assert!(c > 0.5, "neighbour correlation {c}");
                assert!(model.n_corr > 10.0);
            }
        }
    }

    #[test]
    fn blur_preserves_constant_and_mean() {
        let k = gaussian_kernel(1.5).unwrap();
        let mut img = vec![5.0f32; 32 * 40];
        blur(&mut img, 32, 40, &k);
        assert!(img.iter().all(|&v| (v - 5.0).abs() < 1e-4));
        let mut img = vec![0.0f32; 32 * 40];
        img[16 * 40 + 20] = 1.0;
        blur(&mut img, 32, 40, &k);
        let s: f32 = img.iter().sum();
        assert!((s - 1.0).abs() < 1e-4);
    }
}
