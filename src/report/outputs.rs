//! Writing every output of one analysis into a folder (the CLI's `--outdir`, the service's
//! `data_dir/results/<run id>/`): CSV, curve PNG, overlay PNG, then the summary JSON last, with
//! every output path in it.

use super::{
    csv_file_name, curve_png_name, overlay_png_name, summary_file_name, write_csv, write_curve_png,
    write_overlay_png, write_summary_json, ReportError, Summary,
};
use crate::analysis::{Baseline, HuStack};
use crate::phantom::PhantomDef;
use std::path::Path;

/// Which optional outputs to write and how to name them in the summary.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    pub curve: bool,
    pub overlay: bool,
    /// Record bare file names in `summary.outputs` (the folder moves, e.g. a service run's
    /// results folder) instead of full paths.
    pub relative_paths: bool,
}

/// Write the outputs of a successful analysis into `dir` (which must exist). The CSV and the
/// summary JSON are required: their failure is an error. A plot that cannot be drawn is a
/// warning in the summary, not a failure of the run.
pub fn write_outputs(
    dir: &Path,
    summary: &mut Summary,
    slab: &HuStack,
    phantom: &PhantomDef,
    baseline: Option<&Baseline>,
    opts: OutputOptions,
) -> Result<(), ReportError> {
    let id = summary.phantom.id.clone();
    let name = |file: String| -> (std::path::PathBuf, String) {
        let path = dir.join(&file);
        let shown = if opts.relative_paths {
            file
        } else {
            path.display().to_string()
        };
        (path, shown)
    };
    let (csv, shown) = name(csv_file_name(&id));
    write_csv(summary, &csv)?;
    summary.outputs.csv = Some(shown);
    if opts.curve {
        let (png, shown) = name(curve_png_name(&id));
        match write_curve_png(summary, baseline, &png) {
            Ok(()) => summary.outputs.curve_png = Some(shown),
            Err(e) => plot_warning(summary, format!("the curve plot was not written: {e}")),
        }
    }
    if opts.overlay {
        let (png, shown) = name(overlay_png_name(&id));
        match write_overlay_png(summary, slab, Some(phantom), &png) {
            Ok(()) => summary.outputs.overlay_png = Some(shown),
            Err(e) => plot_warning(summary, format!("the overlay was not written: {e}")),
        }
    }
    let (json, shown) = name(summary_file_name(&id));
    summary.outputs.summary_json = Some(shown);
    write_summary_json(summary, &json)
}

fn plot_warning(summary: &mut Summary, w: String) {
    tracing::warn!("{w}");
    summary.warnings.push(w);
}
