//! Report writers: CSV, strict JSON summary, PNG plots (curve, overlay), console table.
//!
//! Everything here reads plain values (the analysis types and a [`Summary`]); nothing here
//! analyses. File names are a contract (`hu_red_PHANTOM.csv`, `hu_red_PHANTOM_summary.json`,
//! `hu_red_PHANTOM_curve.png`, `hu_red_PHANTOM_overlay.png`).

pub mod console;
mod csv_table;
pub mod email;
pub(crate) mod format;
mod outputs;
mod plots;
mod summary;
mod time;
pub mod timeline;

pub use console::console_summary;
pub use csv_table::{write_csv, CSV_COLUMNS};
pub use outputs::{write_outputs, OutputOptions};
pub use plots::{write_curve_png, write_overlay_png, write_preview_png, write_trend_png};
pub use summary::{
    absolute_failures, material_check, verdict, Constancy, MaterialCheck, Metadata, OkParts,
    Outputs, PhantomSummary, RunVerdict, Status, Summary, Timings,
};
pub use time::{utc_date_of_ms, utc_minute_of_ms, utc_timestamp, utc_timestamp_of_ms};

use std::path::{Path, PathBuf};

/// The phantom id used in file names when the phantom is not known (a failed auto-detection).
pub const UNKNOWN_PHANTOM: &str = "unknown";

pub fn csv_file_name(phantom_id: &str) -> String {
    format!("hu_red_{}.csv", file_safe(phantom_id))
}
pub fn summary_file_name(phantom_id: &str) -> String {
    format!("hu_red_{}_summary.json", file_safe(phantom_id))
}
pub fn curve_png_name(phantom_id: &str) -> String {
    format!("hu_red_{}_curve.png", file_safe(phantom_id))
}
pub fn overlay_png_name(phantom_id: &str) -> String {
    format!("hu_red_{}_overlay.png", file_safe(phantom_id))
}
pub fn trend_png_name(phantom_id: &str) -> String {
    format!("hu_red_{}_trend.png", file_safe(phantom_id))
}
pub fn preview_png_name(phantom_id: &str) -> String {
    format!("hu_red_{}_preview.png", file_safe(phantom_id))
}

/// A phantom id made safe for a file name (site-defined ids are free text).
fn file_safe(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        UNKNOWN_PHANTOM.to_string()
    } else {
        s
    }
}

/// Why a report file could not be written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {what}")]
    Other { path: PathBuf, what: String },
}

impl ReportError {
    fn other(path: &Path, what: impl std::fmt::Display) -> Self {
        ReportError::Other {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }
}

/// Write `summary` as pretty, strict JSON (non-finite numbers become `null`).
pub fn write_summary_json(summary: &Summary, path: &Path) -> Result<(), ReportError> {
    let text = summary.to_json_string();
    write_atomically(path, text.as_bytes())
}

/// Write a file durably (see [`crate::durable`]): a reader (or a crash) never sees half a
/// report, and a run's row never points at files that a power loss can take back.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::durable::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A finite value or `None`.
pub(crate) fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_the_contract() {
        assert_eq!(csv_file_name("cirs062"), "hu_red_cirs062.csv");
        assert_eq!(
            summary_file_name("catphan_ctp404"),
            "hu_red_catphan_ctp404_summary.json"
        );
        assert_eq!(curve_png_name("easycube"), "hu_red_easycube_curve.png");
        assert_eq!(overlay_png_name("cirs062"), "hu_red_cirs062_overlay.png");
        assert_eq!(
            summary_file_name(UNKNOWN_PHANTOM),
            "hu_red_unknown_summary.json"
        );
        assert_eq!(csv_file_name("../x y"), "hu_red_.._x_y.csv");
        assert_eq!(csv_file_name(".."), "hu_red_unknown.csv");
    }
}

#[cfg(test)]
mod writer_fixture;
#[cfg(test)]
mod writer_tests;
