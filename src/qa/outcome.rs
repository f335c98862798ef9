//! What one series came to: the engine's outcome and summary, or why it could not be
//! analysed, with everything the run's row and report are made of.

use crate::identity::{Protocol, ScannerIdentity};
use crate::pipeline;
use crate::report::Summary;
use crate::store::BaselineRow;

/// An analysed run: the engine's outcome and its summary.
pub(super) struct RunResult {
    pub(super) outcome: pipeline::AnalyzeOutcome,
    pub(super) summary: Summary,
}

/// Everything the run's row and report are made of.
pub(super) struct RunOutcome {
    pub(super) result: Option<RunResult>,
    pub(super) summary: Option<Summary>,
    pub(super) error: Option<String>,
    /// hu-red itself failed (files), not the data.
    pub(super) internal: bool,
    pub(super) wrote_outputs: bool,
    pub(super) identity: Option<(ScannerIdentity, Protocol)>,
    pub(super) baseline: Option<(BaselineRow, Option<Vec<String>>)>,
    pub(super) auto_baseline: bool,
    /// File names written (the report's attachments).
    pub(super) attachments: Vec<String>,
    /// What to check, for an ERROR report.
    pub(super) hints: Vec<String>,
    /// A phantom was recognised (the run's `phantom_recognised`; `None`: unknown, hu-red's
    /// own failure before or without the analysis).
    pub(super) phantom_recognised: Option<bool>,
}

impl RunOutcome {
    /// hu-red's own failure (`internal`), with nothing written.
    pub(super) fn error(e: String) -> Self {
        RunOutcome {
            result: None,
            summary: None,
            error: Some(e),
            internal: true,
            wrote_outputs: false,
            identity: None,
            baseline: None,
            auto_baseline: false,
            attachments: Vec::new(),
            hints: Vec::new(),
            phantom_recognised: None,
        }
    }
}
