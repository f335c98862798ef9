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
            device_serial_number: None,
        };
        (acquisition, not_numbers)
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
        }
    }

    #[test]
    fn serde_names_are_the_script_columns_in_order_then_the_serial() {
        let json = serde_json::to_string(&full()).expect("json");
        let mut names: Vec<&str> = Acquisition::SCRIPT_COLUMNS.to_vec();
        names.push("DeviceSerialNumber");
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
        assert_eq!(
            back,
            Acquisition {
                device_serial_number: None,
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
}
