//! `cargo bench --bench analyze`: the whole offline pipeline (`hu_red::pipeline::analyze`: load,
//! overview, plan, slab, measure) on simulated 512² series of 64 slices for every built-in phantom
//! and 300 slices for one of each family (Catphan, CIRS, Gammex, Easy Cube).
//! The series are written once to a temporary folder (outside the timing); the timing includes
//! reading and decoding the files, as `hu-red analyze` does. Wall time and peak RSS of the
//! binary itself: `benches/rss.sh`.
//!
//! Targets (2-core machine): 64 slices ≤ 0.5 s, 300 slices ≤ 2 s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hu_red::analysis::AnalysisOptions;
use hu_red::phantom::PhantomSet;
use hu_red::pipeline::{self, AnalyzeRequest, SeriesSource};
use hu_red::simulate::{self, SimParams};

/// The benchmark series: 512², 0.8 mm pixels; 64 × 2.5 mm or 300 × 1 mm slices; couch,
/// reconstruction circle, 10 HU noise (the simulator's defaults otherwise).
pub fn bench_params(n_slices: usize) -> SimParams {
    SimParams {
        matrix: 512,
        pixel_mm: 0.8,
        n_slices,
        slice_thickness_mm: if n_slices >= 200 { 1.0 } else { 2.5 },
        couch: true,
        recon_circle: true,
        noise_sigma_hu: 10.0,
        rotation_deg: 7.0,
        shift_x_mm: 12.0,
        shift_y_mm: -8.0,
        seed: 42,
        ..SimParams::default()
    }
}

/// Every built-in phantom (the definitions in config/phantoms).
const ALL_PHANTOMS: &[&str] = &[
    "catphan_504",
    "catphan_600",
    "catphan_604",
    "catphan_700",
    "cirs062",
    "cirs062_head",
    "gammex_467",
    "gammex_1467_body",
    "gammex_1467_head",
    "easycube",
];

fn make_series(root: &Path, phantom: &str, n_slices: usize) -> PathBuf {
    let dir = root.join(format!("{phantom}_{n_slices}"));
    let set = PhantomSet::builtin();
    let def = set.get(phantom).expect("built-in phantom");
    simulate::render_to_dir(&bench_params(n_slices), def, &dir).expect("simulate the series");
    dir
}

fn analyze_dir(dir: &Path, phantom: &str) {
    let req = AnalyzeRequest {
        source: SeriesSource::Path(dir.to_path_buf()),
        series_uid: None,
        phantoms: PhantomSet::builtin(),
        options: AnalysisOptions::default(),
        baseline: None,
        baseline_protocol: None,
    };
    let out = pipeline::analyze(req).unwrap_or_else(|e| panic!("analyze {}: {e}", dir.display()));
    assert_eq!(out.measurement.phantom_id, phantom, "{}", dir.display());
    assert!(!out.measurement.inserts.is_empty());
}

fn bench_analyze(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("temporary folder");
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for n_slices in [64usize, 300] {
        group.measurement_time(Duration::from_secs(if n_slices > 100 { 30 } else { 8 }));
        let phantoms: &[&str] = if n_slices > 100 {
            &["catphan_504", "cirs062", "gammex_467", "easycube"]
        } else {
            ALL_PHANTOMS
        };
        for &phantom in phantoms {
            let dir = make_series(root.path(), phantom, n_slices);
            // Sanity outside the timing: the analysis succeeds on this series.
            analyze_dir(&dir, phantom);
            group.bench_with_input(
                BenchmarkId::new(phantom, format!("{n_slices}x512x512")),
                &dir,
                |b, dir| b.iter(|| analyze_dir(dir, phantom)),
            );
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    group.finish();
}

criterion_group!(benches, bench_analyze);
criterion_main!(benches);
