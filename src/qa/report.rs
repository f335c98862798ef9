//! The report of a run, as data: what the email shows (scanner, protocol, date, baseline,
//! trend, attachments, hints for an ERROR), rendered with the run's id inside the run's
//! transaction (see `record.rs`) so the outbox row and the run commit together.

use super::baseline::BaselineContext;
use super::outcome::RunOutcome;
use crate::config::ScannerConfig;
use crate::identity::{Protocol, ScannerIdentity};
use crate::notify;
use crate::pipeline;
use crate::report::email::{
    self, BaselineInfo, ReportData, ReportKind, ScannerInfo, Trend, TrendBaseline, TrendRun,
};
use crate::report::{utc_date_of_ms, Summary};
use crate::store::{now_ms, NewOutboxMessage, OutboxKind, Verdict};
use tracing::warn;

/// The report's kind for a stored verdict.
pub(super) fn report_kind(v: Verdict) -> ReportKind {
    match v {
        Verdict::Pass => ReportKind::Pass,
        Verdict::None => ReportKind::NoBaseline,
        Verdict::Fail => ReportKind::Fail,
        Verdict::Error => ReportKind::Error,
    }
}

/// Everything of a run's report but its id; [`ReportDraft::render`] makes the outbox message.
pub(super) struct ReportDraft {
    recipients: Vec<String>,
    kind: ReportKind,
    scanner: ScannerInfo,
    protocol: String,
    date: String,
    summary: Option<Summary>,
    baseline: Option<BaselineInfo>,
    provisional_from_this_run: bool,
    amended: bool,
    attachments: Vec<String>,
    hints: Vec<String>,
    installation: String,
    domain: String,
}

/// Who the report is for and where its Message-ID comes from.
pub(super) struct Addressing<'a> {
    pub(super) mail: &'a crate::config::MailConfig,
    pub(super) scanner: Option<&'a ScannerConfig>,
    pub(super) installation: &'a str,
    pub(super) domain: &'a str,
}

impl ReportDraft {
    /// The report of `outcome` (stored with `verdict`), dated by the scan (`study_date`) or
    /// else by `finished_ms`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        to: Addressing<'_>,
        outcome: &RunOutcome,
        verdict: Verdict,
        identity: &ScannerIdentity,
        protocol: &Protocol,
        study_date: Option<String>,
        finished_ms: i64,
        amended: bool,
    ) -> ReportDraft {
        let recipients = notify::recipients(to.mail, to.scanner);
        if recipients.is_empty() {
            warn!(
                scanner = %identity.label,
                "no recipients for this run's report (mail.to is empty and the scanner entry \
                 has none): no email is sent"
            );
        }
        let run_phantom = outcome
            .result
            .as_ref()
            .map(|r| r.outcome.measurement.phantom_id.as_str());
        ReportDraft {
            recipients,
            kind: report_kind(verdict),
            scanner: identity.clone(),
            protocol: if outcome.identity.is_some() {
                protocol.describe()
            } else {
                String::new()
            },
            date: study_date.unwrap_or_else(|| utc_date_of_ms(finished_ms)),
            summary: outcome.summary.clone(),
            baseline: outcome
                .baseline
                .as_ref()
                .map(|(b, diffs)| baseline_info(b, diffs.as_deref(), run_phantom)),
            provisional_from_this_run: outcome.result.is_some() && outcome.auto_baseline,
            amended,
            attachments: outcome.attachments.clone(),
            hints: outcome.hints.clone(),
            installation: to.installation.to_string(),
            domain: to.domain.to_string(),
        }
    }

    /// The outbox message of run `id` (`None`: nobody to send to, or nothing to report).
    pub(super) fn render(self, id: i64) -> Option<NewOutboxMessage> {
        if self.recipients.is_empty() {
            return None;
        }
        let summary = self.summary.as_ref()?;
        let data = ReportData {
            run_id: id,
            kind: self.kind,
            scanner: self.scanner,
            protocol: self.protocol,
            date: self.date,
            summary,
            baseline: self.baseline,
            provisional_from_this_run: self.provisional_from_this_run,
            amended: self.amended,
            attachments: self.attachments,
            hints: self.hints,
        };
        let r = email::render(&data);
        Some(NewOutboxMessage {
            kind: OutboxKind::Report,
            recipients: self.recipients,
            subject: r.subject,
            text_body: r.text,
            html_body: r.html,
            message_id: notify::message_id(id, None, &self.installation, &self.domain),
        })
    }
}

/// The report's baseline block; a legacy baseline of the family (see
/// [`crate::baseline::family_baseline_note`]) says so where the report names the baseline.
fn baseline_info(
    b: &crate::store::BaselineRow,
    diffs: Option<&[String]>,
    run_phantom: Option<&str>,
) -> BaselineInfo {
    BaselineInfo {
        id: b.id,
        source: match run_phantom {
            Some(p) if p != b.phantom_id => {
                format!("{} (stored under the family id {})", b.source, b.phantom_id)
            }
            _ => b.source.clone(),
        },
        created: utc_date_of_ms(b.created_at),
        provisional: b.provisional,
        protocol: b.protocol().describe(),
        protocol_differs: diffs.map(|d| d.join(", ")),
    }
}

/// The trend of the report: the earlier runs (by acquisition) and this one, with the
/// baselines they were evaluated against.
pub(super) fn trend_of(ctx: &BaselineContext, o: &pipeline::AnalyzeOutcome) -> Trend {
    let tolerance = |name: &str| {
        o.evaluation
            .per_insert
            .iter()
            .find(|c| c.insert == name)
            .map(|c| c.tolerance_hu)
            .or_else(|| o.phantom.material(name).map(|m| m.tolerance_hu))
            .unwrap_or(f64::NAN)
    };
    let materials: Vec<(String, f64)> = o
        .measurement
        .inserts
        .iter()
        .map(|m| (m.insert.clone(), tolerance(&m.insert)))
        .collect();
    let mut runs: Vec<TrendRun> = ctx
        .trend
        .runs
        .iter()
        .map(|t| TrendRun {
            run_id: t.run_id,
            this_run: false,
            at_ms: t.at(),
            baseline_id: t.baseline_id,
            delta_hu: t
                .materials
                .iter()
                .map(|m| (m.insert.clone(), m.delta_hu))
                .collect(),
        })
        .collect();
    let delta = |insert: &str| {
        o.evaluation
            .per_insert
            .iter()
            .find(|c| c.insert == insert)
            .and_then(|c| c.delta_hu)
    };
    runs.push(TrendRun {
        run_id: 0,
        this_run: true,
        at_ms: o.meta.acquisition.acquired_at_ms().unwrap_or_else(now_ms),
        baseline_id: ctx.baseline.as_ref().map(|(b, _)| b.id),
        delta_hu: o
            .measurement
            .inserts
            .iter()
            .map(|m| (m.insert.clone(), delta(&m.insert)))
            .collect(),
    });
    let baselines = ctx
        .trend
        .baselines
        .iter()
        .map(|b| TrendBaseline {
            id: b.id,
            run_id: b.run_id,
            run_at_ms: b.run_at,
        })
        .collect();
    Trend {
        materials,
        runs,
        baselines,
    }
}

/// What to check when a series could not be analysed.
pub(super) fn hints_for(
    stage: Option<pipeline::Stage>,
    error: &str,
    forced: Option<&str>,
) -> Vec<String> {
    let mut out = stage_hints(stage, forced);
    if error.contains("no phantom") || error.contains("not recognised") {
        out.push(
            "A series of a patient or of another phantom ends here too: it is not a QA scan."
                .into(),
        );
    }
    out.push(
        "After fixing, send the series again (hu-red send --to HOST:PORT --aet AE DIR, or from \
         the scanner): it is analysed as a new run."
            .to_string(),
    );
    out
}

/// The hints of the stage an analysis stopped at (`None`: no CT image at all).
fn stage_hints(stage: Option<pipeline::Stage>, forced: Option<&str>) -> Vec<String> {
    use pipeline::Stage;
    match stage {
        None => vec![
            "The series holds no CT image: check that the phantom CT series itself was sent, \
             not only a dose report or screenshots."
                .to_string(),
        ],
        Some(Stage::Setup) => vec![
            "The phantom named by qa.phantom or by the scanner's [[scanners]] entry is not \
             defined: fix the name (hu-red check-config lists the problems)."
                .to_string(),
        ],
        Some(Stage::Load) => vec![
            "Check that the whole axial series was sent (all slices, one SeriesInstanceUID, \
             same image size and orientation) and that the files are readable CT images."
                .to_string(),
        ],
        Some(Stage::Overview | Stage::Plan) => vec![
            "Check that the phantom is in the field of view, roughly centred and level, and \
             that the series covers its insert section."
                .to_string(),
            match forced {
                None => "If the phantom is not recognised automatically, set the phantom for \
                         this scanner (phantom = \"...\" in its [[scanners]] entry) or \
                         qa.phantom."
                    .to_string(),
                Some(f) => format!(
                    "The phantom was set to {f:?} for this scanner: check that this is the \
                     phantom scanned."
                ),
            },
        ],
        Some(Stage::Slab | Stage::Measure) => vec![
            "The inserts could not be measured: check for artefacts, inserts missing or \
             swapped, air bubbles, and that the slices through the inserts were sent."
                .to_string(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Stage;
    use crate::report::RunVerdict;

    #[test]
    fn the_report_kind_follows_the_stored_verdict() {
        for (v, kind) in [
            (Verdict::Pass, ReportKind::Pass),
            (Verdict::Fail, ReportKind::Fail),
            (Verdict::None, ReportKind::NoBaseline),
            (Verdict::Error, ReportKind::Error),
        ] {
            assert_eq!(report_kind(v), kind);
        }
        assert_eq!(
            ReportKind::from(RunVerdict::NoBaseline),
            ReportKind::NoBaseline
        );
    }

    #[test]
    fn hints_name_the_stage_the_forced_phantom_and_always_how_to_resend() {
        let h = hints_for(None, "the series has no CT image to analyse", None);
        assert!(h[0].contains("no CT image"));
        assert_eq!(h.len(), 2);
        let h = hints_for(Some(Stage::Plan), "no phantom recognised", Some("cirs062"));
        assert!(h[1].contains("\"cirs062\""), "{h:?}");
        assert!(h.iter().any(|l| l.contains("patient")), "{h:?}");
        let h = hints_for(Some(Stage::Plan), "no phantom recognised", None);
        assert!(h[1].contains("[[scanners]]"), "{h:?}");
        for stage in [Stage::Setup, Stage::Load, Stage::Slab, Stage::Measure] {
            let h = hints_for(Some(stage), "x", None);
            assert_eq!(h.len(), 2, "{stage:?}: {h:?}");
            assert!(h[1].starts_with("After fixing, send the series again"));
        }
    }
}
