//! Who scanned and how: the scanner identity and the protocol a run is filed under, and the
//! choice of the baseline a run is evaluated against (pure: values in, values out).
//!
//! - Scanner identity: DeviceSerialNumber (0018,1000), else StationName (0008,1010), else the
//!   calling AE title, together with Manufacturer and ManufacturerModelName. Baselines are
//!   kept under the id; a baseline whose manufacturer or model differs from the run's (both
//!   known) is not used.
//! - Protocol: kVp, ConvolutionKernel and SliceThickness, the fields that shift HU; which of
//!   them count is configurable (`qa.protocol_fields`). The key is e.g.
//!   `kvp=120|kernel=B30F|slice=2`.
//! - Whether a run's protocol is a baseline's ([`Protocol::differences`]: the one rule of the
//!   service's baseline choice and of `hu-red analyze --baseline`): a field is the same when its
//!   part of the key is, i.e. numbers equal once rounded to 0.001 (kV, mm: far below any real
//!   protocol step), the kernel equal once trimmed, without case. A value known on one side
//!   only is a difference, shown as `unknown` (`kVp 120 (baseline unknown)`): a baseline that
//!   does not record its kVp is never taken for the run's. A value unknown on both sides is the
//!   same key part (`kvp=?`): nothing recorded differs, and the service files such runs under
//!   one key.
//! - Scanner differences ([`ScannerIdentity::differences`]): manufacturer, model, station name
//!   and serial number, each compared only when both sides know it (trimmed, without case), as
//!   [`ScannerIdentity::same_make`] does.

use serde::Serialize;

/// A field of the protocol key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolField {
    Kvp,
    Kernel,
    SliceThickness,
}

impl ProtocolField {
    pub const ALL: [ProtocolField; 3] = [
        ProtocolField::Kvp,
        ProtocolField::Kernel,
        ProtocolField::SliceThickness,
    ];

    /// How reports name the field: `kVp`, `kernel`, `slice thickness`.
    pub fn label(self) -> &'static str {
        match self {
            ProtocolField::Kvp => "kVp",
            ProtocolField::Kernel => "kernel",
            ProtocolField::SliceThickness => "slice thickness",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProtocolField::Kvp => "kvp",
            ProtocolField::Kernel => "kernel",
            ProtocolField::SliceThickness => "slice_thickness",
        }
    }

    /// Parse `qa.protocol_fields`: known names, no repeats (an empty list = every run of a
    /// scanner and phantom shares one baseline).
    pub fn parse_list(names: &[String]) -> Result<Vec<ProtocolField>, String> {
        let mut out = Vec::new();
        for n in names {
            let f = ProtocolField::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(n.trim()))
                .ok_or_else(|| {
                    format!("unknown field {n:?}: use \"kvp\", \"kernel\" or \"slice_thickness\"")
                })?;
            if out.contains(&f) {
                return Err(format!("{n:?} is listed twice"));
            }
            out.push(f);
        }
        Ok(out)
    }
}

/// The acquisition parameters that shift HU.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Protocol {
    pub kvp: Option<f64>,
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
}

/// A number for a key or a label: integers without decimals, else up to 3 decimals.
fn num(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        let s = format!("{r:.3}");
        s.trim_end_matches('0').to_string()
    }
}

impl Protocol {
    /// The key of the fields in force, e.g. `kvp=120|kernel=B30F|slice=2` (`?` = unknown;
    /// the kernel compared without case and surrounding spaces).
    pub fn key(&self, fields: &[ProtocolField]) -> String {
        fields
            .iter()
            .map(|f| match f {
                ProtocolField::Kvp => format!(
                    "kvp={}",
                    self.kvp
                        .filter(|v| v.is_finite())
                        .map(num)
                        .unwrap_or("?".into())
                ),
                ProtocolField::Kernel => format!(
                    "kernel={}",
                    self.kernel
                        .as_deref()
                        .map(|k| k.trim().to_ascii_uppercase())
                        .filter(|k| !k.is_empty())
                        .unwrap_or("?".into())
                ),
                ProtocolField::SliceThickness => format!(
                    "slice={}",
                    self.slice_thickness_mm
                        .filter(|v| v.is_finite())
                        .map(num)
                        .unwrap_or("?".into())
                ),
            })
            .collect::<Vec<_>>()
            .join("|")
    }

    /// Human readable, e.g. `120 kV, B30f, 2 mm` (unknown fields left out).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(k) = self.kvp.filter(|v| v.is_finite()) {
            parts.push(format!("{} kV", num(k)));
        }
        if let Some(k) = self
            .kernel
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            parts.push(k.to_string());
        }
        if let Some(t) = self.slice_thickness_mm.filter(|v| v.is_finite()) {
            parts.push(format!("{} mm", num(t)));
        }
        if parts.is_empty() {
            "protocol unknown".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// One field as a report shows it: the number (up to 3 decimals) or the trimmed kernel;
    /// `unknown` when missing.
    fn shown(&self, field: ProtocolField) -> String {
        let value = match field {
            ProtocolField::Kvp => self.kvp.filter(|v| v.is_finite()).map(num),
            ProtocolField::Kernel => self
                .kernel
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            ProtocolField::SliceThickness => {
                self.slice_thickness_mm.filter(|v| v.is_finite()).map(num)
            }
        };
        value.unwrap_or_else(|| "unknown".to_string())
    }

    /// How `self` (the run) differs from `base` (the baseline) on `fields`, one line per field
    /// whose key part differs (the module's rule: a value known on one side only differs), e.g.
    /// `kVp 100 (baseline 120)`, `kernel B30f (baseline unknown)`. Empty exactly when the keys
    /// over `fields` are equal.
    pub fn differences(&self, base: &Protocol, fields: &[ProtocolField]) -> Vec<String> {
        fields
            .iter()
            .filter(|f| self.key(&[**f]) != base.key(&[**f]))
            .map(|f| {
                format!(
                    "{} {} (baseline {})",
                    f.label(),
                    self.shown(*f),
                    base.shown(*f)
                )
            })
            .collect()
    }

    /// How far `other` is from `self` on `fields` (0 = same key). kVp weighs most (it shifts
    /// the HU of dense materials by tens of HU), then the kernel, then the slice thickness; an
    /// unknown value on either side counts as a moderate difference.
    pub fn distance(&self, other: &Protocol, fields: &[ProtocolField]) -> f64 {
        let mut d = 0.0;
        for f in fields {
            d += match f {
                ProtocolField::Kvp => match (self.kvp, other.kvp) {
                    (Some(a), Some(b)) => (a - b).abs(), // 20 kV apart = 20
                    (None, None) => 0.0,
                    _ => 15.0,
                },
                ProtocolField::Kernel => {
                    if self.key(&[*f]) == other.key(&[*f]) {
                        0.0
                    } else {
                        5.0
                    }
                }
                ProtocolField::SliceThickness => {
                    match (self.slice_thickness_mm, other.slice_thickness_mm) {
                        (Some(a), Some(b)) => (a - b).abs(),
                        (None, None) => 0.0,
                        _ => 2.0,
                    }
                }
            };
        }
        d
    }
}

/// The scanner a run is filed under.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScannerIdentity {
    /// DeviceSerialNumber, else StationName, else `AE:<calling AE>`, else `unknown`.
    pub id: String,
    /// What reports call it: the matching `[[scanners]]` name, else StationName, else the
    /// serial number, else the calling AE title.
    pub label: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub station_name: Option<String>,
    pub device_serial: Option<String>,
    pub calling_ae: Option<String>,
}

fn clean(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Whether two texts may name the same thing: equal once trimmed, without case; an unknown
/// (missing or blank) side does not count against it.
fn may_match(a: Option<&str>, b: Option<&str>) -> bool {
    match (clean(a), clean(b)) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y),
        _ => true,
    }
}

impl ScannerIdentity {
    pub fn new(
        device_serial: Option<&str>,
        station_name: Option<&str>,
        manufacturer: Option<&str>,
        model: Option<&str>,
        calling_ae: Option<&str>,
        configured_name: Option<&str>,
    ) -> ScannerIdentity {
        let device_serial = clean(device_serial);
        let station_name = clean(station_name);
        let calling_ae = clean(calling_ae);
        let id = device_serial
            .clone()
            .or_else(|| station_name.clone())
            .or_else(|| calling_ae.as_ref().map(|a| format!("AE:{a}")))
            .unwrap_or_else(|| "unknown".to_string());
        let label = clean(configured_name)
            .or_else(|| station_name.clone())
            .or_else(|| device_serial.clone())
            .or_else(|| calling_ae.clone())
            .unwrap_or_else(|| "unknown scanner".to_string());
        ScannerIdentity {
            id,
            label,
            manufacturer: clean(manufacturer),
            model: clean(model),
            station_name,
            device_serial,
            calling_ae,
        }
    }

    /// Whether a baseline recorded with this manufacturer and model may serve this scanner
    /// (an unknown value on either side does not count against it).
    pub fn same_make(&self, manufacturer: Option<&str>, model: Option<&str>) -> bool {
        may_match(self.manufacturer.as_deref(), manufacturer)
            && may_match(self.model.as_deref(), model)
    }

    /// How this scanner differs from `base`'s (the one a baseline was measured on): one line
    /// per field both know and that differs (manufacturer, model, station, serial number;
    /// trimmed, without case), e.g. `manufacturer GE (baseline SIEMENS)`.
    pub fn differences(&self, base: &ScannerIdentity) -> Vec<String> {
        [
            ("manufacturer", &self.manufacturer, &base.manufacturer),
            ("model", &self.model, &base.model),
            ("station", &self.station_name, &base.station_name),
            ("serial number", &self.device_serial, &base.device_serial),
        ]
        .into_iter()
        .filter_map(|(name, now, then)| match (now, then) {
            (Some(a), Some(b)) if !may_match(Some(a), Some(b)) => {
                Some(format!("{name} {a} (baseline {b})"))
            }
            _ => None,
        })
        .collect()
    }
}

/// A baseline candidate for [`choose`]: its protocol, key and age.
pub trait Candidate {
    fn protocol(&self) -> Protocol;
    fn protocol_key(&self) -> &str;
    fn id(&self) -> i64;
}

/// The baseline a run is evaluated against: the one with the run's protocol key, else the
/// closest by [`Protocol::distance`] (ties: the newest), with what differs (`None` when the
/// protocol is the same).
pub fn choose<'a, C: Candidate>(
    candidates: &'a [C],
    run: &Protocol,
    fields: &[ProtocolField],
) -> Option<(&'a C, Option<Vec<String>>)> {
    choose_preferring(candidates, run, fields, |_| false)
}

/// [`choose`] among candidates of which some are `preferred`: the protocol still decides first
/// (the run's key, else the closest), a preferred candidate wins among those that match the
/// protocol equally well, then the newest. The worker prefers a baseline stored under the
/// run's own phantom id to one stored under its family id (`catphan_ctp404`), so that a legacy
/// baseline serves a variant only where the variant has none for that protocol.
pub fn choose_preferring<'a, C: Candidate>(
    candidates: &'a [C],
    run: &Protocol,
    fields: &[ProtocolField],
    preferred: impl Fn(&C) -> bool,
) -> Option<(&'a C, Option<Vec<String>>)> {
    let key = run.key(fields);
    if let Some(exact) = candidates
        .iter()
        .filter(|c| c.protocol_key() == key)
        .max_by_key(|c| (preferred(c), c.id()))
    {
        return Some((exact, None));
    }
    let best = candidates.iter().min_by(|a, b| {
        let (da, db) = (
            run.distance(&a.protocol(), fields),
            run.distance(&b.protocol(), fields),
        );
        da.total_cmp(&db)
            .then(preferred(b).cmp(&preferred(a)))
            .then(b.id().cmp(&a.id()))
    })?;
    let diffs = run.differences(&best.protocol(), fields);
    Some((best, Some(diffs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kvp: Option<f64>, kernel: Option<&str>, st: Option<f64>) -> Protocol {
        Protocol {
            kvp,
            kernel: kernel.map(str::to_string),
            slice_thickness_mm: st,
        }
    }

    struct C(i64, Protocol, String);
    impl Candidate for C {
        fn protocol(&self) -> Protocol {
            self.1.clone()
        }
        fn protocol_key(&self) -> &str {
            &self.2
        }
        fn id(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn keys_and_descriptions() {
        let all = ProtocolField::ALL;
        let a = p(Some(120.0), Some(" b30f "), Some(2.0));
        assert_eq!(a.key(&all), "kvp=120|kernel=B30F|slice=2");
        assert_eq!(a.describe(), "120 kV, b30f, 2 mm");
        let b = p(Some(120.0), Some("B30f"), Some(0.625));
        assert_eq!(b.key(&all), "kvp=120|kernel=B30F|slice=0.625");
        assert_eq!(p(None, None, None).key(&all), "kvp=?|kernel=?|slice=?");
        assert_eq!(p(None, None, None).describe(), "protocol unknown");
        // only the configured fields count
        assert_eq!(a.key(&[ProtocolField::Kvp]), b.key(&[ProtocolField::Kvp]));
        assert_ne!(a.key(&all), b.key(&all));
        assert_eq!(
            b.differences(&a, &all),
            vec!["slice thickness 0.625 (baseline 2)".to_string()]
        );
    }

    #[test]
    fn one_rule_for_unknown_values_numbers_and_kernels() {
        let all = ProtocolField::ALL;
        let run = p(Some(120.0), Some("B30f"), Some(2.0));
        // numbers to 0.001, kernels trimmed and without case: the same protocol
        let same = p(Some(120.0004), Some(" b30F "), Some(2.0));
        assert!(run.differences(&same, &all).is_empty());
        assert_eq!(run.key(&all), same.key(&all));
        // a baseline that does not record a field is not the run's protocol: said as unknown
        let unknown = p(None, None, Some(2.0));
        assert_eq!(
            run.differences(&unknown, &all),
            vec![
                "kVp 120 (baseline unknown)".to_string(),
                "kernel B30f (baseline unknown)".to_string()
            ]
        );
        assert_eq!(
            unknown.differences(&run, &all),
            vec![
                "kVp unknown (baseline 120)".to_string(),
                "kernel unknown (baseline B30f)".to_string()
            ]
        );
        // unknown on both sides: the same key part, nothing recorded differs
        assert!(unknown.differences(&unknown, &all).is_empty());
        // a non-finite number is unknown
        let nan = p(Some(f64::NAN), Some("B30f"), Some(2.0));
        assert_eq!(
            nan.differences(&run, &all),
            vec!["kVp unknown (baseline 120)".to_string()]
        );
        // only the fields in force count
        assert!(run
            .differences(&unknown, &[ProtocolField::SliceThickness])
            .is_empty());
    }

    #[test]
    fn scanner_differences_compare_what_both_know() {
        let run = ScannerIdentity::new(
            Some("SN1"),
            Some("CT1"),
            Some("SIEMENS"),
            Some("go.Open"),
            None,
            None,
        );
        let base = ScannerIdentity::new(None, Some(" ct1 "), Some("siemens"), None, None, None);
        assert!(run.differences(&base).is_empty());
        let other = ScannerIdentity::new(
            Some("SN2"),
            Some("CT2"),
            Some("GE MEDICAL SYSTEMS"),
            Some("go.Open"),
            None,
            None,
        );
        assert_eq!(
            run.differences(&other),
            vec![
                "manufacturer SIEMENS (baseline GE MEDICAL SYSTEMS)".to_string(),
                "station CT1 (baseline CT2)".to_string(),
                "serial number SN1 (baseline SN2)".to_string()
            ]
        );
    }

    #[test]
    fn field_lists() {
        let ok = ProtocolField::parse_list(&["KVP".into(), "slice_thickness".into()]).unwrap();
        assert_eq!(ok, vec![ProtocolField::Kvp, ProtocolField::SliceThickness]);
        assert!(ProtocolField::parse_list(&["kv".into()])
            .unwrap_err()
            .contains("unknown field"));
        assert!(ProtocolField::parse_list(&["kvp".into(), "kvp".into()])
            .unwrap_err()
            .contains("twice"));
        assert!(ProtocolField::parse_list(&[]).unwrap().is_empty());
    }

    #[test]
    fn identity_prefers_serial_then_station_then_ae() {
        let a = ScannerIdentity::new(
            Some(" 12345 "),
            Some("CTAWP1"),
            Some("SIEMENS"),
            Some("go.Open"),
            Some("CT01"),
            Some("CT-SIM-1"),
        );
        assert_eq!(a.id, "12345");
        assert_eq!(a.label, "CT-SIM-1");
        let b = ScannerIdentity::new(None, Some("CTAWP1"), None, None, Some("CT01"), None);
        assert_eq!((b.id.as_str(), b.label.as_str()), ("CTAWP1", "CTAWP1"));
        let c = ScannerIdentity::new(Some(""), None, None, None, Some("CT01"), None);
        assert_eq!((c.id.as_str(), c.label.as_str()), ("AE:CT01", "CT01"));
        let d = ScannerIdentity::new(None, None, None, None, None, None);
        assert_eq!(d.id, "unknown");
        assert!(a.same_make(Some("siemens"), None));
        assert!(!a.same_make(Some("GE MEDICAL SYSTEMS"), Some("go.Open")));
    }

    #[test]
    fn exact_protocol_first_then_closest() {
        let all = ProtocolField::ALL;
        let p120 = p(Some(120.0), Some("B30f"), Some(2.0));
        let p100 = p(Some(100.0), Some("B30f"), Some(2.0));
        let p120k = p(Some(120.0), Some("B60f"), Some(2.0));
        let cands = vec![
            C(1, p100.clone(), p100.key(&all)),
            C(2, p120k.clone(), p120k.key(&all)),
            C(3, p120.clone(), p120.key(&all)),
        ];
        let (c, diff) = choose(&cands, &p120, &all).unwrap();
        assert_eq!((c.0, diff), (3, None));
        // a 120 kV run with another slice thickness: the 120 kV baseline (distance 1) beats
        // the other kernel (5) and 100 kV (20)
        let run = p(Some(120.0), Some("B30f"), Some(3.0));
        let (c, diff) = choose(&cands, &run, &all).unwrap();
        assert_eq!(c.0, 3);
        assert_eq!(
            diff.unwrap(),
            vec!["slice thickness 3 (baseline 2)".to_string()]
        );
        // a 100 kV run with a sharp kernel: kVp weighs more than the kernel
        let run = p(Some(100.0), Some("B60f"), Some(2.0));
        let (c, diff) = choose(&cands, &run, &all).unwrap();
        assert_eq!(c.0, 1);
        assert_eq!(
            diff.unwrap(),
            vec!["kernel B60f (baseline B30f)".to_string()]
        );
        assert!(choose::<C>(&[], &run, &all).is_none());
    }

    #[test]
    fn own_phantom_id_preferred_at_an_equal_protocol_match() {
        // ids 1..: the odd ones stored under the run's own phantom id, the even ones under its
        // family id (legacy)
        let all = ProtocolField::ALL;
        let own = |c: &C| c.0 % 2 == 1;
        let p120 = p(Some(120.0), Some("B30f"), Some(2.0));
        let p100 = p(Some(100.0), Some("B30f"), Some(2.0));
        let c = |id: i64, pr: &Protocol| C(id, pr.clone(), pr.key(&all));
        // same key: the own one wins even when the legacy one is newer
        let cands = vec![c(1, &p120), c(4, &p120)];
        let (b, d) = choose_preferring(&cands, &p120, &all, own).unwrap();
        assert_eq!((b.0, d), (1, None));
        // without the preference: the newest
        assert_eq!(choose(&cands, &p120, &all).unwrap().0 .0, 4);
        // only a legacy baseline has the run's protocol: it serves
        let cands = vec![c(1, &p100), c(2, &p120)];
        let (b, d) = choose_preferring(&cands, &p120, &all, own).unwrap();
        assert_eq!((b.0, d), (2, None));
        // neither has it: the closest protocol, the own one at equal distance
        let p110a = p(Some(110.0), Some("B30f"), Some(2.0));
        let cands = vec![c(2, &p120), c(3, &p100), c(6, &p120)];
        let (b, d) = choose_preferring(&cands, &p110a, &all, own).unwrap();
        assert_eq!(b.0, 3);
        assert_eq!(d.unwrap(), vec!["kVp 110 (baseline 100)".to_string()]);
        let cands = vec![c(2, &p120), c(4, &p120)];
        let (b, _) = choose_preferring(&cands, &p110a, &all, own).unwrap();
        assert_eq!(b.0, 4, "only legacy ones: the newest");
    }
}
