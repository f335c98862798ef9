//! Reading baseline CSV files (the Python script's and hu-red's own) into `analysis::Baseline`.
//!
//! A baseline is any CSV with an `insert` and a `hu_mean` column (one row per insert); a `red`
//! column is used when present. Other columns are ignored, except the script's acquisition
//! metadata columns (KVP, ReconstructionKernel, ...), which are kept so that a run can warn when
//! its protocol differs from the baseline's.
//!
//! Value rules (the script's behaviour): an empty, `NaN` or non-finite `hu_mean` gives an entry
//! with no value, which then fails constancy; a non-numeric text is an error (a typo in a
//! baseline must not pass silently); an insert listed twice is an error.

use crate::analysis::{Baseline, BaselineEntry};
use crate::dicom::Acquisition;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a baseline file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("baseline file {path} is not a readable CSV: {what}")]
    Csv { path: PathBuf, what: String },
    #[error(
        "baseline file {path} has no {missing} column (a baseline CSV needs 'insert' and 'hu_mean' columns, e.g. a CSV written by hu-red or by the Python script); columns found: {found}"
    )]
    MissingColumns {
        path: PathBuf,
        /// The needed columns that are absent, e.g. `'hu_mean'`.
        missing: String,
        /// The header as read, comma-separated.
        found: String,
    },
    #[error(
        "baseline file {path}: insert '{insert}' appears twice (lines {first} and {second}); keep one row per insert"
    )]
    Duplicate {
        path: PathBuf,
        insert: String,
        first: u64,
        second: u64,
    },
    #[error("baseline file {path}, line {line}: {what}")]
    BadValue {
        path: PathBuf,
        line: u64,
        what: String,
    },
    #[error("baseline file {path} has a header but no insert rows")]
    Empty { path: PathBuf },
}

/// Acquisition metadata found in a baseline file: the first row's values of the script's
/// metadata columns and of its `phantom` column. Empty when the file has none of those columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaselineProtocol {
    /// What the acquisition columns record (KVP, ReconstructionKernel, Manufacturer, …); its
    /// `protocol()` and `scanner()` are compared with a run's.
    pub acquisition: Acquisition,
    /// The `PixelSpacing` cell ("row,column"), as written.
    pub pixel_spacing: Option<String>,
    /// The phantom id the baseline was measured on (the `phantom` column), if the file says.
    pub phantom: Option<String>,
    /// Number columns whose cell is not a number (column, text), e.g. `("KVP", "120 kV")`:
    /// unknown in `acquisition`; `hu-red baseline import` refuses them.
    pub not_numbers: Vec<(&'static str, String)>,
}

/// The report line for a baseline stored under a family id (`catphan_ctp404`, from before
/// hu-red told the Catphan variants apart) that serves a run of one of its variants: the
/// physicist must know the comparison is with a legacy baseline, and how to replace it.
/// `what` names the baseline (`baseline #12`, `the baseline (base.csv)`), `then` says how to
/// make the variant's own.
pub fn family_baseline_note(what: &str, family: &str, variant: &str, then: &str) -> String {
    format!(
        "{what} was stored under the family id '{family}' (before hu-red told its variants          apart) and serves this '{variant}' series, which has no baseline of its own for this          protocol: check that it was measured on this phantom, then {then}"
    )
}

/// A baseline as read from a file, with the file's acquisition metadata.
#[derive(Debug, Clone)]
pub struct BaselineFile {
    pub baseline: Baseline,
    pub protocol: BaselineProtocol,
}

/// Read a baseline CSV file.
pub fn read_baseline(path: &Path) -> Result<BaselineFile, BaselineError> {
    let bytes = std::fs::read(path).map_err(|source| BaselineError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_baseline(&bytes, path)
}

/// Parse baseline CSV content; `path` names the source in errors and in `Baseline::source`.
pub fn parse_baseline(bytes: &[u8], path: &Path) -> Result<BaselineFile, BaselineError> {
    let csv_err = |e: csv::Error| BaselineError::Csv {
        path: path.to_path_buf(),
        what: e.to_string(),
    };
    // Spreadsheet programs save with a byte-order mark and, in some locales, with ';' or tabs.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let delimiter = sniff_delimiter(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (insert_col, hu_col) = (col("insert"), col("hu_mean"));
    let (Some(insert_col), Some(hu_col)) = (insert_col, hu_col) else {
        let mut missing = Vec::new();
        if insert_col.is_none() {
            missing.push("'insert'");
        }
        if hu_col.is_none() {
            missing.push("'hu_mean'");
        }
        let found = if header.iter().all(|h| h.is_empty()) {
            "(none: the file is empty or has no header line)".to_string()
        } else {
            header
                .iter()
                .map(|h| format!("'{h}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(BaselineError::MissingColumns {
            path: path.to_path_buf(),
            missing: missing.join(" and "),
            found,
        });
    };
    let red_col = col("red");

    let mut entries: Vec<BaselineEntry> = Vec::new();
    let mut first_line: BTreeMap<String, u64> = BTreeMap::new();
    let mut protocol = BaselineProtocol::default();
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let bad = |what: String| BaselineError::BadValue {
            path: path.to_path_buf(),
            line,
            what,
        };
        let insert = record.get(insert_col).unwrap_or("").to_string();
        if insert.is_empty() {
            return Err(bad("the 'insert' cell is empty".into()));
        }
        if let Some(&first) = first_line.get(&insert) {
            return Err(BaselineError::Duplicate {
                path: path.to_path_buf(),
                insert,
                first,
                second: line,
            });
        }
        first_line.insert(insert.clone(), line);
        let hu_mean = parse_number(record.get(hu_col).unwrap_or("")).map_err(|v| {
            bad(format!(
                "hu_mean '{v}' of insert '{insert}' is not a number"
            ))
        })?;
        let red = match red_col {
            Some(i) => parse_number(record.get(i).unwrap_or(""))
                .map_err(|v| bad(format!("red '{v}' of insert '{insert}' is not a number")))?,
            None => None,
        };
        if entries.is_empty() {
            let cell = |name: &str| {
                col(name)
                    .and_then(|i| record.get(i))
                    .filter(|v| !v.is_empty())
            };
            let (acquisition, not_numbers) = Acquisition::from_cells(cell);
            protocol = BaselineProtocol {
                acquisition,
                pixel_spacing: cell("PixelSpacing").map(str::to_string),
                phantom: cell("phantom").map(str::to_string),
                not_numbers,
            };
        }
        entries.push(BaselineEntry {
            insert,
            hu_mean,
            red,
        });
    }
    if entries.is_empty() {
        return Err(BaselineError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(BaselineFile {
        baseline: Baseline {
            source: path.display().to_string(),
            entries,
        },
        protocol,
    })
}

/// A cell as a number: `Ok(None)` for empty, NaN-like or non-finite values (the script and
/// pandas write NaN or an empty cell for a missing value); `Err(text)` for anything else that is
/// not a number.
fn parse_number(cell: &str) -> Result<Option<f64>, String> {
    let t = cell.trim();
    if t.is_empty()
        || ["nan", "na", "n/a", "null", "none", "-nan"]
            .iter()
            .any(|n| t.eq_ignore_ascii_case(n))
    {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(_) => Err(t.to_string()),
    }
}

/// The field delimiter of the header line: ',' unless the header line has no comma but has ';'
/// or a tab.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let count = |c: u8| first.iter().filter(|b| **b == c).count();
    if count(b',') > 0 {
        b','
    } else if count(b';') > 0 {
        b';'
    } else if count(b'\t') > 0 {
        b'\t'
    } else {
        b','
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BaselineFile, BaselineError> {
        parse_baseline(text.as_bytes(), Path::new("/tmp/base.csv"))
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn reads_the_scripts_csv_fixture() {
        let f = read_baseline(&fixture("script_baseline.csv")).unwrap();
        let b = &f.baseline;
        assert!(b.source.ends_with("script_baseline.csv"));
        let names: Vec<&str> = b.entries.iter().map(|e| e.insert.as_str()).collect();
        assert_eq!(
            names,
            [
                "lung_inhale",
                "lung_exhale",
                "adipose",
                "breast",
                "water",
                "muscle",
                "liver",
                "trabecular_bone",
                "dense_bone"
            ]
        );
        let water = b.entries.iter().find(|e| e.insert == "water").unwrap();
        assert_eq!(water.hu_mean, Some(2.1));
        assert_eq!(water.red, Some(1.0));
        let dense = b.entries.iter().find(|e| e.insert == "dense_bone").unwrap();
        assert_eq!(dense.hu_mean, Some(982.4));
        assert_eq!(dense.red, Some(1.456));
        // the script writes NaN for an unmatched insert: kept, with no value
        let liver = b.entries.iter().find(|e| e.insert == "liver").unwrap();
        assert_eq!(liver.hu_mean, None);
        assert_eq!(f.protocol.acquisition.kvp, Some(120.0));
        assert_eq!(
            f.protocol.acquisition.reconstruction_kernel.as_deref(),
            Some("B30f")
        );
        assert_eq!(
            f.protocol.pixel_spacing.as_deref(),
            Some("0.9765625,0.9765625")
        );
        assert_eq!(f.protocol.phantom.as_deref(), Some("cirs062"));
        assert!(f.protocol.not_numbers.is_empty());
    }

    #[test]
    fn the_fixture_header_is_the_scripts() {
        let text = std::fs::read_to_string(fixture("script_baseline.csv")).unwrap();
        let header = text.lines().next().unwrap();
        assert_eq!(
            header,
            "SeriesDescription,ProtocolName,KVP,Manufacturer,ManufacturerModelName,StationName,\
             StudyDate,StudyTime,SliceThickness,ReconstructionKernel,PixelSpacing,\
             selected_slice_index,phantom,dicom_path,insert,red,hu_mean,hu_std,center_x,center_y,\
             roi_radius_px,detected_radius_px,assignment_cost"
        );
    }

    #[test]
    fn minimal_csv_and_missing_values() {
        let f = parse("insert,hu_mean\nwater,1.5\nair,\nbone,nan\nlung,-inf\n").unwrap();
        let e = &f.baseline.entries;
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].hu_mean, Some(1.5));
        assert_eq!(e[0].red, None);
        assert!(e[1..].iter().all(|x| x.hu_mean.is_none()));
        assert_eq!(f.protocol, BaselineProtocol::default());
    }

    #[test]
    fn pandas_index_column_bom_semicolons_and_spaces() {
        // pandas' default to_csv adds an unnamed index column; Excel adds a BOM and, in some
        // locales, uses ';'.
        let f = parse("\u{feff},insert,red,hu_mean\n0,water,1.0,3\n1,air,0.001,-998.5\n").unwrap();
        assert_eq!(f.baseline.entries[1].hu_mean, Some(-998.5));
        assert_eq!(f.baseline.entries[1].red, Some(0.001));
        let f = parse("insert ; hu_mean\n water ; 4.25 \n").unwrap();
        assert_eq!(f.baseline.entries[0].insert, "water");
        assert_eq!(f.baseline.entries[0].hu_mean, Some(4.25));
        let f = parse("insert\thu_mean\nwater\t-1\n").unwrap();
        assert_eq!(f.baseline.entries[0].hu_mean, Some(-1.0));
    }

    #[test]
    fn missing_columns_name_the_file_and_the_header() {
        let e = parse("material,mean\nwater,1\n").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, BaselineError::MissingColumns { .. }));
        assert!(msg.contains("/tmp/base.csv"), "{msg}");
        assert!(msg.contains("'insert' and 'hu_mean'"), "{msg}");
        assert!(msg.contains("'material', 'mean'"), "{msg}");
        let msg = parse("insert,hu\nwater,1\n").unwrap_err().to_string();
        assert!(msg.contains("no 'hu_mean' column"), "{msg}");
        let msg = parse("").unwrap_err().to_string();
        assert!(msg.contains("empty"), "{msg}");
    }

    #[test]
    fn duplicates_bad_numbers_and_empty_files_are_errors() {
        let e = parse("insert,hu_mean\nwater,1\nair,-1000\nwater,2\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                BaselineError::Duplicate {
                    first: 2,
                    second: 4,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("'water' appears twice"), "{msg}");
        let msg = parse("insert,hu_mean\nwater,abc\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2") && msg.contains("'abc'"), "{msg}");
        let msg = parse("insert,hu_mean\n,3\n").unwrap_err().to_string();
        assert!(msg.contains("'insert' cell is empty"), "{msg}");
        let e = parse("insert,hu_mean\n").unwrap_err();
        assert!(matches!(e, BaselineError::Empty { .. }));
        let e = read_baseline(Path::new("/nonexistent/base.csv")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/base.csv"));
    }

    #[test]
    fn protocol_differences() {
        // the file's columns become an acquisition, whose protocol is compared by identity's
        // one rule
        let all = crate::identity::ProtocolField::ALL;
        let file = |kvp: &str| {
            parse(&format!(
                "insert,hu_mean,KVP,ReconstructionKernel,SliceThickness,Manufacturer,StationName\n\
                 water,0,{kvp},B30f,2.0,SIEMENS,CTAWP1\n"
            ))
            .unwrap()
            .protocol
        };
        let p = file("120");
        let mut cur = crate::identity::Protocol {
            kvp: Some(120.0),
            kernel: Some("b30f".into()),
            slice_thickness_mm: Some(2.0),
        };
        assert!(cur.differences(&p.acquisition.protocol(), &all).is_empty());
        cur.kvp = Some(100.0);
        assert_eq!(
            cur.differences(&p.acquisition.protocol(), &all),
            ["kVp 100 (baseline 120)"]
        );
        // a file without a KVP value (or a text in it) does not record the kVp: said so; the
        // text is kept for `baseline import`, which refuses it
        for (kvp, bad) in [("", None), ("n/a", Some("n/a")), ("120 kV", Some("120 kV"))] {
            let q = file(kvp);
            assert_eq!(
                cur.differences(&q.acquisition.protocol(), &all),
                ["kVp 100 (baseline unknown)"]
            );
            let bad: Vec<(&str, String)> =
                bad.map(|b| ("KVP", b.to_string())).into_iter().collect();
            assert_eq!(q.not_numbers, bad);
        }
        // the scanner columns: compared where both know them
        let run = crate::identity::ScannerIdentity::new(
            None,
            Some("ctawp1"),
            Some("GE"),
            Some("X"),
            None,
            None,
        );
        assert_eq!(
            run.differences(&p.acquisition.scanner(None, None)),
            ["manufacturer GE (baseline SIEMENS)"]
        );
    }
}
