//! Who scanned a series and how (its identity and protocol), and baseline choice for a run: the active baselines of its scanner (same make and model) and
//! phantom — its own id, and its family id from before hu-red told the variants apart — the
//! one of the same protocol, else the closest (saying what differs); the trend of that scanner
//! and phantom; and the notes a run's summary carries about the baseline it was compared with.

use super::Context;
use crate::config::ScannerConfig;
use crate::identity::{self, Protocol, ScannerIdentity};
use crate::report::Metadata;
use crate::store::{BaselineRow, RunTrend, SeriesRow, StoreError};

/// What the second blocking step needs from the database.
#[derive(Default)]
pub(super) struct BaselineContext {
    /// The chosen baseline and, when its protocol differs, what differs.
    pub(super) baseline: Option<(BaselineRow, Option<Vec<String>>)>,
    /// The chosen baseline has the run's protocol.
    pub(super) exact: bool,
    /// Earlier runs of the scanner and phantom, oldest first by acquisition, with their
    /// baselines and the chosen one.
    pub(super) trend: RunTrend,
    /// This run becomes the provisional baseline of its scanner, phantom and protocol.
    pub(super) auto_baseline: bool,
    pub(super) scanner_label: String,
}

/// The baseline and trend of a run measured as `phantom` (its id and family id; `None`: the
/// series could not be measured).
pub(super) async fn baseline_context(
    ctx: &Context,
    identity: &ScannerIdentity,
    protocol: &Protocol,
    phantom: Option<(&str, Option<&str>)>,
) -> Result<BaselineContext, StoreError> {
    let settings = &ctx.settings;
    let mut context = BaselineContext::default();
    if let Some((phantom_id, family)) = phantom {
        // The run's own baselines, and those stored under its family id before hu-red told
        // the variants apart (`catphan_ctp404` for a `catphan_604` run): at an equal protocol
        // match the run's own id wins.
        let mut ids = vec![phantom_id];
        ids.extend(family.filter(|f| *f != phantom_id));
        let candidates: Vec<BaselineRow> = ctx
            .store
            .active_baselines_any(&identity.id, &ids)
            .await?
            .into_iter()
            .filter(|b| identity.same_make(b.manufacturer.as_deref(), b.model.as_deref()))
            .collect();
        context.baseline =
            identity::choose_preferring(&candidates, protocol, &settings.protocol_fields, |b| {
                b.phantom_id == phantom_id
            })
            .map(|(b, diffs)| (b.clone(), diffs));
        context.exact = context.baseline.as_ref().is_some_and(|(_, d)| d.is_none());
        context.trend = ctx
            .store
            .trend(
                &identity.id,
                &ids,
                i64::MAX,
                settings.trend_runs.saturating_sub(1),
            )
            .await?;
        // this run's baseline is drawn too, even when no earlier run used it
        if let Some((b, _)) = &context.baseline {
            if context.trend.baseline(b.id).is_none() {
                let chosen = ctx.store.trend_baselines(&[b.id]).await?;
                context.trend.baselines.extend(chosen);
            }
        }
    }
    context.auto_baseline = settings.auto_baseline && !context.exact;
    context.scanner_label = identity.label.clone();
    Ok(context)
}

/// "the protocol differs from the baseline's" note of a run.
pub(super) fn protocol_note(b: &BaselineRow, diffs: &[String]) -> String {
    format!(
        "no baseline for this protocol: evaluated against the closest baseline #{} ({}); \
         differs: {}",
        b.id,
        b.protocol().describe(),
        diffs.join(", ")
    )
}

/// The warnings of a run compared with `ctx`'s baseline: stored under the family id, of
/// another protocol, provisional.
pub(super) fn baseline_warnings(ctx: &BaselineContext, phantom_id: &str) -> Vec<String> {
    let Some((b, diffs)) = &ctx.baseline else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if b.phantom_id != phantom_id {
        out.push(crate::baseline::family_baseline_note(
            &format!("the baseline #{}", b.id),
            &b.phantom_id,
            phantom_id,
            "make this variant's own with `hu-red baseline set --run` and this run's id \
             (see `hu-red runs`)",
        ));
    }
    if let Some(d) = diffs {
        out.push(protocol_note(b, d));
    }
    if b.provisional {
        out.push(format!(
            "the baseline #{} is PROVISIONAL (set automatically from {}): confirm it with \
             `hu-red baseline set --run {}`",
            b.id,
            b.source,
            b.run_id.map(|r| r.to_string()).unwrap_or("ID".into())
        ));
    }
    out
}

/// The scanner and protocol of a series: from its headers when they were read (`meta`), else
/// from what the SCP recorded (station name, calling AE) and the scanner entry's name.
pub(super) fn identity_of(
    meta: Option<&Metadata>,
    series: &SeriesRow,
    scanner: Option<&ScannerConfig>,
) -> (ScannerIdentity, Protocol) {
    let mut acquisition = meta.map(|m| m.acquisition.clone()).unwrap_or_default();
    if acquisition.station_name.is_none() {
        acquisition.station_name = series.station_name.clone();
    }
    let identity = acquisition.scanner(
        series.calling_ae.as_deref(),
        scanner.map(|s| s.name.as_str()),
    );
    (identity, acquisition.protocol())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewBaseline, NewBaselineEntry};

    fn new_baseline(phantom: &str, kvp: f64, model: &str) -> NewBaseline {
        NewBaseline {
            scanner_id: "SN1".into(),
            scanner_label: Some("CT1".into()),
            manufacturer: Some("ACME".into()),
            model: Some(model.into()),
            phantom_id: phantom.into(),
            protocol_key: format!("kvp={kvp}"),
            kvp: Some(kvp),
            kernel: None,
            slice_thickness_mm: None,
            source: "import test".into(),
            run_id: None,
            provisional: false,
            note: None,
            set_by: None,
            entries: vec![NewBaselineEntry {
                insert: "water".into(),
                hu_mean: Some(0.0),
                red: Some(1.0),
            }],
        }
    }

    #[tokio::test]
    async fn the_variants_own_baseline_wins_and_another_make_is_never_chosen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = super::super::jobs::tests::context(dir.path()).await;
        let mut settings = (*ctx.settings).clone();
        settings.protocol_fields =
            identity::ProtocolField::parse_list(&["kvp".to_string()]).expect("fields");
        settings.auto_baseline = true;
        ctx.settings = std::sync::Arc::new(settings);
        let store = &ctx.store;
        let family = store
            .insert_baseline(&new_baseline("catphan_ctp404", 120.0, "X1"))
            .await
            .expect("insert");
        let own = store
            .insert_baseline(&new_baseline("catphan_604", 120.0, "X1"))
            .await
            .expect("insert");
        store
            .insert_baseline(&new_baseline("catphan_604", 80.0, "OTHER"))
            .await
            .expect("insert");
        let identity =
            ScannerIdentity::new(Some("SN1"), None, Some("ACME"), Some("X1"), None, None);
        let protocol = Protocol {
            kvp: Some(120.0),
            ..Protocol::default()
        };
        let m = Some(("catphan_604", Some("catphan_ctp404")));
        let c = baseline_context(&ctx, &identity, &protocol, m)
            .await
            .expect("context");
        let (b, diffs) = c.baseline.as_ref().expect("a baseline");
        assert_eq!(b.id, own);
        assert_ne!(b.id, family);
        assert!(diffs.is_none() && c.exact && !c.auto_baseline);
        assert!(baseline_warnings(&c, "catphan_604").is_empty());

        // 80 kV: the exact protocol is another make's; the closest of this make is used, said
        // so, and this run may become the baseline
        let other = Protocol {
            kvp: Some(80.0),
            ..Protocol::default()
        };
        let c = baseline_context(&ctx, &identity, &other, m)
            .await
            .expect("context");
        assert_eq!(c.baseline.as_ref().map(|(b, _)| b.id), Some(own));
        assert!(!c.exact && c.auto_baseline);
        let w = baseline_warnings(&c, "catphan_604");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("no baseline for this protocol"), "{w:?}");

        // nothing measured: no baseline, no trend
        let c = baseline_context(&ctx, &identity, &protocol, None)
            .await
            .expect("context");
        assert!(c.baseline.is_none() && c.trend.runs.is_empty());
        assert_eq!(c.scanner_label, identity.label);
    }
}
