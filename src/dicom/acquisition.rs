//! The acquisition metadata of a CT series: who scanned it, how and when. One type, filled once
//! when a header is parsed, carried by every slice header and by the series' metadata, embedded
//! in the run summary (its JSON keys are the serde names below, the Python script's) and read
//! back from a baseline file's columns (the same names). The protocol and scanner a series is
//! filed and compared under come from it by [`Acquisition::protocol`] and
//! [`Acquisition::scanner`].

use serde::{Deserialize, Serialize};

use crate::identity::{Protocol, ScannerIdentity};

/// Acquisition metadata, under the Python script's names in JSON (the serde names); hu-red's
/// DeviceSerialNumber last. Strings are trimmed of DICOM padding; numbers are finite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Acquisition {
    /// SeriesDescription (0008,103E).
    #[serde(rename = "SeriesDescription")]
    pub series_description: Option<String>,
    /// ProtocolName (0018,1030).
    #[serde(rename = "ProtocolName")]
    pub protocol_name: Option<String>,
    /// KVP (0018,0060), kV; of an Enhanced CT object, from its CT X-Ray Details when absent at
    /// the top level.
    #[serde(rename = "KVP")]
    pub kvp: Option<f64>,
    /// Manufacturer (0008,0070).
    #[serde(rename = "Manufacturer")]
    pub manufacturer: Option<String>,
    /// ManufacturerModelName (0008,1090).
    #[serde(rename = "ManufacturerModelName")]
    pub manufacturer_model_name: Option<String>,
    /// StationName (0008,1010).
    #[serde(rename = "StationName")]
    pub station_name: Option<String>,
    /// StudyDate (0008,0020), `YYYYMMDD` as stored.
    #[serde(rename = "StudyDate")]
    pub study_date: Option<String>,
    /// StudyTime (0008,0030), as stored.
    #[serde(rename = "StudyTime")]
    pub study_time: Option<String>,
    /// SliceThickness (0018,0050), mm, positive; of one frame of an Enhanced CT object, the
    /// frame's.
    #[serde(rename = "SliceThickness")]
    pub slice_thickness: Option<f64>,
    /// ConvolutionKernel (0018,1210), multiple values joined by a backslash (the script calls
    /// it ReconstructionKernel).
    #[serde(rename = "ReconstructionKernel")]
    pub reconstruction_kernel: Option<String>,
    /// DeviceSerialNumber (0018,1000).
    #[serde(rename = "DeviceSerialNumber")]
    pub device_serial_number: Option<String>,
    /// AcquisitionDate (0008,0022), `YYYYMMDD` as stored.
    #[serde(rename = "AcquisitionDate")]
    pub acquisition_date: Option<String>,
    /// AcquisitionTime (0008,0032), as stored.
    #[serde(rename = "AcquisitionTime")]
    pub acquisition_time: Option<String>,
    /// AcquisitionDateTime (0008,002A), as stored (an Enhanced CT object's, which has no
    /// AcquisitionDate/Time).
    #[serde(rename = "AcquisitionDateTime")]
    pub acquisition_datetime: Option<String>,
    /// SeriesDate (0008,0021), `YYYYMMDD` as stored.
    #[serde(rename = "SeriesDate")]
    pub series_date: Option<String>,
    /// SeriesTime (0008,0031), as stored.
    #[serde(rename = "SeriesTime")]
    pub series_time: Option<String>,
}

/// One field of [`Acquisition::SCRIPT_COLUMNS`] as a table cell is made from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Text(Option<&'a str>),
    Number(Option<f64>),
}

impl Acquisition {
    /// The script's acquisition columns (its CSV's first columns, before PixelSpacing), in its
    /// order: the serde names of every field but DeviceSerialNumber.
    pub const SCRIPT_COLUMNS: [&'static str; 10] = [
        "SeriesDescription",
        "ProtocolName",
        "KVP",
        "Manufacturer",
        "ManufacturerModelName",
        "StationName",
        "StudyDate",
        "StudyTime",
        "SliceThickness",
        "ReconstructionKernel",
    ];

    /// The values of [`Acquisition::SCRIPT_COLUMNS`], in that order.
    pub fn script_values(&self) -> [FieldValue<'_>; 10] {
        use FieldValue::{Number, Text};
        [
            Text(self.series_description.as_deref()),
            Text(self.protocol_name.as_deref()),
            Number(self.kvp),
            Text(self.manufacturer.as_deref()),
            Text(self.manufacturer_model_name.as_deref()),
            Text(self.station_name.as_deref()),
            Text(self.study_date.as_deref()),
            Text(self.study_time.as_deref()),
            Number(self.slice_thickness),
            Text(self.reconstruction_kernel.as_deref()),
        ]
    }

    /// The acquisition a table row records under [`Acquisition::SCRIPT_COLUMNS`]
    /// (`cell(column)`: the row's text in that column, if it has one): texts trimmed, blank =
    /// unknown; a number that is not finite is unknown. A number column holding something that
    /// is not a number is unknown too, and returned with its text (e.g. `("KVP", "120 kV")`).
    pub fn from_cells<'c>(
        cell: impl Fn(&str) -> Option<&'c str>,
    ) -> (Acquisition, Vec<(&'static str, String)>) {
        let [series_description, protocol_name, kvp, manufacturer, manufacturer_model_name, station_name, study_date, study_time, slice_thickness, reconstruction_kernel] =
            Self::SCRIPT_COLUMNS.map(|column| {
                let text = cell(column).map(str::trim).filter(|t| !t.is_empty());
                (column, text)
            });
        let text = |(_, t): (&str, Option<&str>)| t.map(str::to_string);
        let mut not_numbers = Vec::new();
        let mut number = |(column, t): (&'static str, Option<&str>)| {
            let t = t?;
            match t.parse::<f64>() {
                Ok(v) => Some(v).filter(|v| v.is_finite()),
                Err(_) => {
                    not_numbers.push((column, t.to_string()));
                    None
                }
            }
        };
        let acquisition = Acquisition {
            kvp: number(kvp),
            slice_thickness: number(slice_thickness),
            series_description: text(series_description),
            protocol_name: text(protocol_name),
            manufacturer: text(manufacturer),
            manufacturer_model_name: text(manufacturer_model_name),
            station_name: text(station_name),
            study_date: text(study_date),
            study_time: text(study_time),
            reconstruction_kernel: text(reconstruction_kernel),
            ..Acquisition::default()
        };
        (acquisition, not_numbers)
    }

    /// When the series was acquired, as unix milliseconds of that wall-clock time read as UTC
    /// (DICOM dates and times carry no zone; a time zone offset in a DateTime is ignored): the
    /// first of AcquisitionDate/AcquisitionTime, AcquisitionDateTime, SeriesDate/SeriesTime,
    /// StudyDate/StudyTime with a valid date. A source with a date but no valid time takes the
    /// time of a later source of the same day, else midnight. `None`: no valid date at all.
    pub fn acquired_at_ms(&self) -> Option<i64> {
        let dt = self.acquisition_datetime.as_deref().map(str::trim);
        let sources: [(Option<&str>, Option<&str>); 4] = [
            (
                self.acquisition_date.as_deref(),
                self.acquisition_time.as_deref(),
            ),
            (dt.and_then(|s| s.get(..8)), dt.and_then(|s| s.get(8..))),
            (self.series_date.as_deref(), self.series_time.as_deref()),
            (self.study_date.as_deref(), self.study_time.as_deref()),
        ];
        let parsed: Vec<(Option<i64>, Option<i64>)> = sources
            .iter()
            .map(|(d, t)| (d.and_then(dicom_day), t.and_then(dicom_time_ms)))
            .collect();
        let first = parsed.iter().position(|(d, _)| d.is_some())?;
        let day = parsed[first].0?;
        let time = parsed[first..]
            .iter()
            .filter(|(d, _)| *d == Some(day))
            .find_map(|(_, t)| *t)
            .unwrap_or(0);
        Some(day * 86_400_000 + time)
    }

    /// The protocol the series is filed and compared under: kVp, kernel, slice thickness.
    pub fn protocol(&self) -> Protocol {
        Protocol {
            kvp: self.kvp,
            kernel: self.reconstruction_kernel.clone(),
            slice_thickness_mm: self.slice_thickness,
        }
    }

    /// The scanner that made the series (serial number, station, make and model), with the
    /// calling AE title and the configured name when the service knows them.
    pub fn scanner(
        &self,
        calling_ae: Option<&str>,
        configured_name: Option<&str>,
    ) -> ScannerIdentity {
        ScannerIdentity::new(
            self.device_serial_number.as_deref(),
            self.station_name.as_deref(),
            self.manufacturer.as_deref(),
            self.manufacturer_model_name.as_deref(),
            calling_ae,
            configured_name,
        )
    }
}

/// Days since 1970-01-01 of a DICOM date (DA): `YYYYMMDD`, or the old `YYYY.MM.DD`.
fn dicom_day(da: &str) -> Option<i64> {
    let d: String = da.trim().chars().filter(|c| *c != '.').collect();
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    days_from_civil(
        d[..4].parse().ok()?,
        d[4..6].parse().ok()?,
        d[6..].parse().ok()?,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date; `None` for a month or day that does
/// not exist (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, day: i64) -> Option<i64> {
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Milliseconds since midnight of a DICOM time (TM): `HH[MM[SS[.F…]]]`, or the old
/// `HH:MM:SS`; of a DateTime's time part, anything after the fraction (a zone offset) is
/// ignored.
fn dicom_time_ms(tm: &str) -> Option<i64> {
    let t: String = tm.trim().chars().filter(|c| *c != ':').collect();
    let end = t.find(['+', '-']).unwrap_or(t.len());
    let t = &t[..end];
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty()
        || whole.len() % 2 != 0
        || whole.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let part = |i: usize| -> i64 {
        whole
            .get(i..i + 2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    let (h, m, s) = (part(0), part(2), part(4));
    // 60: a leap second, as DICOM allows
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap_or(0);
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Acquisition {
        Acquisition {
            series_description: Some("QA HU-RED".into()),
            protocol_name: Some("Head".into()),
            kvp: Some(120.0),
            manufacturer: Some("SIEMENS".into()),
            manufacturer_model_name: Some("go.Open".into()),
            station_name: Some("CT01".into()),
            study_date: Some("20240312".into()),
            study_time: Some("093512.123".into()),
            slice_thickness: Some(0.625),
            reconstruction_kernel: Some("B30f".into()),
            device_serial_number: Some("SN1".into()),
            acquisition_date: Some("20240312".into()),
            acquisition_time: Some("094001".into()),
            acquisition_datetime: None,
            series_date: Some("20240312".into()),
            series_time: Some("093900".into()),
        }
    }

    #[test]
    fn serde_names_are_the_script_columns_in_order_then_the_serial() {
        let json = serde_json::to_string(&full()).expect("json");
        let mut names: Vec<&str> = Acquisition::SCRIPT_COLUMNS.to_vec();
        names.extend([
            "DeviceSerialNumber",
            "AcquisitionDate",
            "AcquisitionTime",
            "AcquisitionDateTime",
            "SeriesDate",
            "SeriesTime",
        ]);
        let at: Vec<usize> = names
            .iter()
            .map(|n| json.find(&format!("\"{n}\":")).expect(n))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).expect("value");
        assert_eq!(v.as_object().map(|o| o.len()), Some(names.len()), "{json}");
        // the JSON reads back, and a missing key is unknown
        let back: Acquisition = serde_json::from_str(&json).expect("back");
        assert_eq!(back, full());
        let partial: Acquisition = serde_json::from_str(r#"{"KVP":100}"#).expect("partial");
        assert_eq!(partial.kvp, Some(100.0));
        assert_eq!(partial.manufacturer, None);
    }

    #[test]
    fn cells_round_trip_and_bad_numbers_are_unknown_and_named() {
        let a = full();
        let cells: Vec<String> = a
            .script_values()
            .iter()
            .map(|v| match v {
                FieldValue::Text(t) => t.unwrap_or_default().to_string(),
                FieldValue::Number(n) => n.map(|x| x.to_string()).unwrap_or_default(),
            })
            .collect();
        let cell = |c: &str| {
            Acquisition::SCRIPT_COLUMNS
                .iter()
                .position(|n| *n == c)
                .map(|i| cells[i].as_str())
        };
        let (back, bad) = Acquisition::from_cells(cell);
        assert!(bad.is_empty());
        // the columns the script has: not the serial number, nor the acquisition and series
        // dates
        assert_eq!(
            back,
            Acquisition {
                device_serial_number: None,
                acquisition_date: None,
                acquisition_time: None,
                series_date: None,
                series_time: None,
                ..a
            }
        );
        let (b, bad) = Acquisition::from_cells(|c| match c {
            "KVP" => Some(" 120 kV "),
            "SliceThickness" => Some("NaN"),
            "StationName" => Some("  "),
            "ReconstructionKernel" => Some(" FC13\\AIDR 3D "),
            _ => None,
        });
        assert_eq!(bad, [("KVP", "120 kV".to_string())]);
        assert_eq!(
            (b.kvp, b.slice_thickness, b.station_name),
            (None, None, None)
        );
        assert_eq!(b.reconstruction_kernel.as_deref(), Some("FC13\\AIDR 3D"));
    }

    #[test]
    fn protocol_and_scanner_come_from_the_acquisition() {
        let a = full();
        let p = a.protocol();
        assert_eq!(
            p.key(&crate::identity::ProtocolField::ALL),
            "kvp=120|kernel=B30F|slice=0.625"
        );
        let s = a.scanner(Some("CTAE"), None);
        assert_eq!((s.id.as_str(), s.label.as_str()), ("SN1", "CT01"));
        assert_eq!(s.model.as_deref(), Some("go.Open"));
        assert_eq!(s.calling_ae.as_deref(), Some("CTAE"));
        assert_eq!(Acquisition::default().protocol(), Protocol::default());
    }

    #[test]
    fn acquired_at_prefers_the_acquisition_then_the_series_then_the_study() {
        let day = |d: &str| dicom_day(d).expect(d) * 86_400_000;
        let a = full();
        // 2024-03-12 09:40:01 UTC = 1710236401 s
        assert_eq!(a.acquired_at_ms(), Some(1_710_236_401_000));
        assert_eq!(day("20240312"), 1_710_201_600_000);
        assert_eq!(day("19700101"), 0);
        // no acquisition date: the series'
        let b = Acquisition {
            acquisition_date: None,
            ..full()
        };
        assert_eq!(b.acquired_at_ms(), Some(day("20240312") + 34_740_000));
        // an acquisition date without a time takes the series time of the same day
        let c = Acquisition {
            acquisition_time: Some("garbage".into()),
            ..full()
        };
        assert_eq!(c.acquired_at_ms(), Some(day("20240312") + 34_740_000));
        // ... not another day's: midnight
        let d = Acquisition {
            acquisition_date: Some("20240315".into()),
            acquisition_time: None,
            ..full()
        };
        assert_eq!(d.acquired_at_ms(), Some(day("20240315")));
        // only the study: its date and time (fraction kept to the millisecond)
        let e = Acquisition {
            study_date: Some("20261125".into()),
            study_time: Some("102233.5".into()),
            ..Acquisition::default()
        };
        assert_eq!(
            e.acquired_at_ms(),
            Some(day("20261125") + ((10 * 60 + 22) * 60 + 33) * 1000 + 500)
        );
        // an Enhanced CT object's DateTime, its zone offset ignored
        let f = Acquisition {
            acquisition_datetime: Some("20250102030405.25+0100".into()),
            study_date: Some("20200101".into()),
            ..Acquisition::default()
        };
        assert_eq!(f.acquired_at_ms(), Some(day("20250102") + 11_045_250));
        // old forms, invalid dates
        let g = Acquisition {
            series_date: Some("2024.02.29".into()),
            series_time: Some("23:59:59".into()),
            ..Acquisition::default()
        };
        assert_eq!(g.acquired_at_ms(), Some(day("20240229") + 86_399_000));
        for bad in [
            "20230229", "20241301", "2024031", "", "abcdefgh", "20240300",
        ] {
            assert_eq!(dicom_day(bad), None, "{bad}");
        }
        for bad in ["2460", "1", "12a0", "250000", "1200.x"] {
            assert_eq!(dicom_time_ms(bad), None, "{bad}");
        }
        assert_eq!(dicom_time_ms("07"), Some(7 * 3_600_000));
        assert_eq!(Acquisition::default().acquired_at_ms(), None);
    }
}
