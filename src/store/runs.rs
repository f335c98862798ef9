//! Runs, their materials and ROIs, and the outbox rows queued with them.

use super::{finite, flag, now_ms, opt_finite, opt_flag, with_pool, RowGet, Store, StoreError};
use super::{
    Fingerprint, MaterialRow, NewMaterialResult, NewRoiMeasurement, NewRun, OutboxRow, OutboxState,
    RoiRow, RunDetail, RunRow, RunStatus, Verdict,
};

macro_rules! run_cols {
    () => {
        "id, series_instance_uid, started_at, finished_at, status, verdict, phantom_id, \
         phantom_name, detection, confidence, pose_centre_x_mm, pose_centre_y_mm, \
         pose_rotation_deg, slab_centre_index, slab_n_slices, slab_mm, slab_centre_z_mm, \
         assignment, absolute_pass, constancy_pass, pearson_r, baseline_source, warnings, error, \
         summary_json, outputs_dir, amended, scanner, instance_count, instance_fingerprint"
    };
}

/// Placeholder in [`NewRun::outputs_dir`] replaced by the new run id.
pub const RUN_ID_PLACEHOLDER: &str = "{run_id}";

impl Store {
    /// Store a finished run in one transaction: the run row, its material_results and
    /// roi_measurements rows (in the given order), the series update (state done/failed from
    /// the run status — only if the series is still `analysing`: a series re-opened by an
    /// arrival during the analysis stays `receiving` and will be analysed again —, last_run_id
    /// and the analysed fingerprint) and, when given, the outbox row. Returns the run id.
    pub async fn insert_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        let what = || format!("storing a run of series {}", run.series_instance_uid);
        let warnings = serde_json::to_string(&run.warnings)
            .map_err(|e| self.data_err(what(), format!("warnings: {e}")))?;
        let recipients = match &run.outbox {
            Some(o) => Some(
                serde_json::to_string(&o.recipients)
                    .map_err(|e| self.data_err(what(), format!("recipients: {e}")))?,
            ),
            None => None,
        };
        let now = now_ms();
        let series_state = run.status.series_state();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = if self.is_postgres() {
                pool.begin().await
            } else {
                pool.begin_with("BEGIN IMMEDIATE").await
            }
            .map_err(self.err(what()))?;

            let id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (series_instance_uid, started_at, finished_at, status, verdict, \
                 phantom_id, phantom_name, detection, confidence, pose_centre_x_mm, \
                 pose_centre_y_mm, pose_rotation_deg, slab_centre_index, slab_n_slices, slab_mm, \
                 slab_centre_z_mm, assignment, absolute_pass, constancy_pass, pearson_r, \
                 baseline_source, warnings, error, summary_json, outputs_dir, amended, scanner, \
                 instance_count, instance_fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
                 $25, $26, $27, $28, $29) RETURNING id",
            )
            .bind(&run.series_instance_uid)
            .bind(run.started_at)
            .bind(run.finished_at)
            .bind(run.status.as_str())
            .bind(run.verdict.as_str())
            .bind(&run.phantom_id)
            .bind(&run.phantom_name)
            .bind(&run.detection)
            .bind(opt_finite(run.confidence))
            .bind(opt_finite(run.pose_centre_x_mm))
            .bind(opt_finite(run.pose_centre_y_mm))
            .bind(opt_finite(run.pose_rotation_deg))
            .bind(run.slab_centre_index)
            .bind(run.slab_n_slices)
            .bind(opt_finite(run.slab_mm))
            .bind(opt_finite(run.slab_centre_z_mm))
            .bind(&run.assignment)
            .bind(opt_flag(run.absolute_pass))
            .bind(opt_flag(run.constancy_pass))
            .bind(opt_finite(run.pearson_r))
            .bind(&run.baseline_source)
            .bind(&warnings)
            .bind(&run.error)
            .bind(&run.summary_json)
            .bind(&run.outputs_dir)
            .bind(flag(run.amended))
            .bind(&run.scanner)
            .bind(run.fingerprint.n_instances)
            .bind(&run.fingerprint.digest)
            .fetch_one(&mut *tx)
            .await
            .map_err(self.err(what()))?;

            if let Some(dir) = run.outputs_dir.as_deref().filter(|d| d.contains(RUN_ID_PLACEHOLDER)) {
                sqlx::query("UPDATE runs SET outputs_dir = $2 WHERE id = $1")
                    .bind(id)
                    .bind(dir.replace(RUN_ID_PLACEHOLDER, &id.to_string()))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err(what()))?;
            }

            for (seq, m) in run.materials.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO material_results (run_id, seq, insert_name, red, hu_mean, \
                     hu_std, hu_median, n_rois, n_pixels, hu_expected, hu_window_low, \
                     hu_window_high, within_window, baseline_hu, delta_hu, tolerance_hu, \
                     within_tolerance, delta_red_percent, note) VALUES ($1, $2, $3, $4, $5, $6, \
                     $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(&m.insert)
                .bind(opt_finite(m.red))
                .bind(finite(m.hu_mean))
                .bind(finite(m.hu_std))
                .bind(finite(m.hu_median))
                .bind(m.n_rois)
                .bind(m.n_pixels)
                .bind(opt_finite(m.hu_expected))
                .bind(opt_finite(m.hu_window.map(|w| w[0])))
                .bind(opt_finite(m.hu_window.map(|w| w[1])))
                .bind(opt_flag(m.within_window))
                .bind(opt_finite(m.baseline_hu))
                .bind(opt_finite(m.delta_hu))
                .bind(opt_finite(m.tolerance_hu))
                .bind(opt_flag(m.within_tolerance))
                .bind(opt_finite(m.delta_red_percent))
                .bind(&m.note)
                .execute(&mut *tx)
                .await
                .map_err(self.err(format!("{}: material {}", what(), m.insert)))?;
            }

            for (seq, r) in run.rois.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO roi_measurements (run_id, seq, hole, ring, insert_name, \
                     center_x_mm, center_y_mm, center_col_px, center_row_px, roi_radius_mm, \
                     roi_radius_px, insert_radius_mm, hu_mean, hu_std, hu_median, n_pixels, \
                     n_slices, refine_shift_mm, contrast_hu) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                     $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(&r.hole)
                .bind(&r.ring)
                .bind(&r.insert)
                .bind(finite(r.center_x_mm))
                .bind(finite(r.center_y_mm))
                .bind(finite(r.center_col_px))
                .bind(finite(r.center_row_px))
                .bind(finite(r.roi_radius_mm))
                .bind(finite(r.roi_radius_px))
                .bind(finite(r.insert_radius_mm))
                .bind(finite(r.hu_mean))
                .bind(finite(r.hu_std))
                .bind(finite(r.hu_median))
                .bind(r.n_pixels)
                .bind(r.n_slices)
                .bind(finite(r.refine_shift_mm))
                .bind(finite(r.contrast_hu))
                .execute(&mut *tx)
                .await
                .map_err(self.err(format!("{}: ROI {}", what(), r.hole)))?;
            }

            let updated = sqlx::query(
                "UPDATE series SET \
                 state = CASE WHEN state = 'analysing' THEN $2 ELSE state END, \
                 state_changed_at = CASE WHEN state = 'analysing' THEN $3 ELSE state_changed_at END, \
                 last_run_id = $4, analysed_instance_count = $5, analysed_fingerprint = $6 \
                 WHERE series_instance_uid = $1",
            )
            .bind(&run.series_instance_uid)
            .bind(series_state.as_str())
            .bind(now)
            .bind(id)
            .bind(run.fingerprint.n_instances)
            .bind(&run.fingerprint.digest)
            .execute(&mut *tx)
            .await
            .map_err(self.err(what()))?
            .rows_affected();
            if updated != 1 {
                return Err(self.data_err(what(), "the series does not exist"));
            }

            if let (Some(o), Some(recipients)) = (&run.outbox, &recipients) {
                sqlx::query(
                    "INSERT INTO outbox (run_id, recipients, subject, state, attempts, \
                     created_at, next_attempt_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
                )
                .bind(id)
                .bind(recipients)
                .bind(&o.subject)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(self.err(format!("{}: queueing its notification", what())))?;
            }

            tx.commit().await.map_err(self.err(what()))?;
            tracing::info!(
                run_id = id,
                series = %run.series_instance_uid,
                status = %run.status,
                verdict = %run.verdict,
                "run stored"
            );
            Ok(id)
        })
    }

    /// The most recent runs first (without materials and ROIs).
    pub async fn list_runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        let what = "listing recent runs";
        with_pool!(self, pool => {
            let rows = sqlx::query(concat!("SELECT ", run_cols!(), " FROM runs ORDER BY id DESC LIMIT $1"))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(self.err(what))?;
            rows.iter().map(|r| self.run_row(r, what)).collect()
        })
    }

    /// The runs of one series, oldest first.
    pub async fn series_runs(&self, uid: &str) -> Result<Vec<RunRow>, StoreError> {
        let what = format!("listing the runs of series {uid}");
        with_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", run_cols!(), " FROM runs WHERE series_instance_uid = $1 ORDER BY id"
            ))
            .bind(uid)
            .fetch_all(pool)
            .await
            .map_err(self.err(what.clone()))?;
            rows.iter().map(|r| self.run_row(r, &what)).collect()
        })
    }

    /// A run with its materials and ROIs.
    pub async fn get_run(&self, id: i64) -> Result<Option<RunDetail>, StoreError> {
        let what = format!("reading run {id}");
        with_pool!(self, pool => {
            let Some(row) = sqlx::query(concat!("SELECT ", run_cols!(), " FROM runs WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(self.err(what.clone()))?
            else {
                return Ok(None);
            };
            let run = self.run_row(&row, &what)?;
            let materials = sqlx::query(
                "SELECT run_id, seq, insert_name, red, hu_mean, hu_std, hu_median, n_rois, \
                 n_pixels, hu_expected, hu_window_low, hu_window_high, within_window, \
                 baseline_hu, delta_hu, tolerance_hu, within_tolerance, delta_red_percent, note \
                 FROM material_results WHERE run_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .map_err(self.err(what.clone()))?
            .iter()
            .map(|r| material_row(r).map_err(self.err(what.clone())))
            .collect::<Result<Vec<_>, _>>()?;
            let rois = sqlx::query(
                "SELECT run_id, seq, hole, ring, insert_name, center_x_mm, center_y_mm, \
                 center_col_px, center_row_px, roi_radius_mm, roi_radius_px, insert_radius_mm, \
                 hu_mean, hu_std, hu_median, n_pixels, n_slices, refine_shift_mm, contrast_hu \
                 FROM roi_measurements WHERE run_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .map_err(self.err(what.clone()))?
            .iter()
            .map(|r| roi_row(r).map_err(self.err(what.clone())))
            .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(RunDetail { run, materials, rois }))
        })
    }

    /// The outbox rows queued for a run (issue 4 adds the delivery queries).
    pub async fn outbox_for_run(&self, run_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let what = format!("reading the outbox of run {run_id}");
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, run_id, recipients, subject, state, attempts, created_at, \
                 next_attempt_at, last_error, message_id, sent_at FROM outbox \
                 WHERE run_id = $1 ORDER BY id",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await
            .map_err(self.err(what.clone()))?;
            rows.iter().map(|r| self.outbox_row(r, &what)).collect()
        })
    }

    fn run_row(&self, r: &impl RowGet, what: &str) -> Result<RunRow, StoreError> {
        let e = || self.err(what.to_string());
        let status_text = r.text("status").map_err(e())?;
        let status = RunStatus::parse(&status_text)
            .ok_or_else(|| self.data_err(what, format!("unknown run status {status_text:?}")))?;
        let verdict_text = r.text("verdict").map_err(e())?;
        let verdict = Verdict::parse(&verdict_text)
            .ok_or_else(|| self.data_err(what, format!("unknown verdict {verdict_text:?}")))?;
        let warnings_text = r.text("warnings").map_err(e())?;
        let warnings: Vec<String> = serde_json::from_str(&warnings_text)
            .map_err(|err| self.data_err(what, format!("warnings are not a JSON list: {err}")))?;
        Ok(RunRow {
            id: r.int("id").map_err(e())?,
            series_instance_uid: r.text("series_instance_uid").map_err(e())?,
            started_at: r.int("started_at").map_err(e())?,
            finished_at: r.int("finished_at").map_err(e())?,
            status,
            verdict,
            phantom_id: r.opt_text("phantom_id").map_err(e())?,
            phantom_name: r.opt_text("phantom_name").map_err(e())?,
            detection: r.opt_text("detection").map_err(e())?,
            confidence: r.opt_num("confidence").map_err(e())?,
            pose_centre_x_mm: r.opt_num("pose_centre_x_mm").map_err(e())?,
            pose_centre_y_mm: r.opt_num("pose_centre_y_mm").map_err(e())?,
            pose_rotation_deg: r.opt_num("pose_rotation_deg").map_err(e())?,
            slab_centre_index: r.opt_int("slab_centre_index").map_err(e())?,
            slab_n_slices: r.opt_int("slab_n_slices").map_err(e())?,
            slab_mm: r.opt_num("slab_mm").map_err(e())?,
            slab_centre_z_mm: r.opt_num("slab_centre_z_mm").map_err(e())?,
            assignment: r.opt_text("assignment").map_err(e())?,
            absolute_pass: r.opt_flag("absolute_pass").map_err(e())?,
            constancy_pass: r.opt_flag("constancy_pass").map_err(e())?,
            pearson_r: r.opt_num("pearson_r").map_err(e())?,
            baseline_source: r.opt_text("baseline_source").map_err(e())?,
            warnings,
            error: r.opt_text("error").map_err(e())?,
            summary_json: r.opt_text("summary_json").map_err(e())?,
            outputs_dir: r.opt_text("outputs_dir").map_err(e())?,
            amended: r.flag("amended").map_err(e())?,
            scanner: r.opt_text("scanner").map_err(e())?,
            fingerprint: Fingerprint {
                n_instances: r.int("instance_count").map_err(e())?,
                digest: r.text("instance_fingerprint").map_err(e())?,
            },
        })
    }

    fn outbox_row(&self, r: &impl RowGet, what: &str) -> Result<OutboxRow, StoreError> {
        let e = || self.err(what.to_string());
        let state_text = r.text("state").map_err(e())?;
        let state = OutboxState::parse(&state_text)
            .ok_or_else(|| self.data_err(what, format!("unknown outbox state {state_text:?}")))?;
        let recipients_text = r.text("recipients").map_err(e())?;
        let recipients: Vec<String> = serde_json::from_str(&recipients_text)
            .map_err(|err| self.data_err(what, format!("recipients are not a JSON list: {err}")))?;
        Ok(OutboxRow {
            id: r.int("id").map_err(e())?,
            run_id: r.int("run_id").map_err(e())?,
            recipients,
            subject: r.text("subject").map_err(e())?,
            state,
            attempts: r.int("attempts").map_err(e())?,
            created_at: r.int("created_at").map_err(e())?,
            next_attempt_at: r.int("next_attempt_at").map_err(e())?,
            last_error: r.opt_text("last_error").map_err(e())?,
            message_id: r.opt_text("message_id").map_err(e())?,
            sent_at: r.opt_int("sent_at").map_err(e())?,
        })
    }
}

fn material_row(r: &impl RowGet) -> Result<MaterialRow, sqlx::Error> {
    let low = r.opt_num("hu_window_low")?;
    let high = r.opt_num("hu_window_high")?;
    Ok(MaterialRow {
        run_id: r.int("run_id")?,
        seq: r.int("seq")?,
        values: NewMaterialResult {
            insert: r.text("insert_name")?,
            red: r.opt_num("red")?,
            hu_mean: r.num("hu_mean")?,
            hu_std: r.num("hu_std")?,
            hu_median: r.num("hu_median")?,
            n_rois: r.int("n_rois")?,
            n_pixels: r.int("n_pixels")?,
            hu_expected: r.opt_num("hu_expected")?,
            hu_window: low.zip(high).map(|(l, h)| [l, h]),
            within_window: r.opt_flag("within_window")?,
            baseline_hu: r.opt_num("baseline_hu")?,
            delta_hu: r.opt_num("delta_hu")?,
            tolerance_hu: r.opt_num("tolerance_hu")?,
            within_tolerance: r.opt_flag("within_tolerance")?,
            delta_red_percent: r.opt_num("delta_red_percent")?,
            note: r.opt_text("note")?,
        },
    })
}

fn roi_row(r: &impl RowGet) -> Result<RoiRow, sqlx::Error> {
    Ok(RoiRow {
        run_id: r.int("run_id")?,
        seq: r.int("seq")?,
        values: NewRoiMeasurement {
            hole: r.text("hole")?,
            ring: r.opt_text("ring")?,
            insert: r.text("insert_name")?,
            center_x_mm: r.num("center_x_mm")?,
            center_y_mm: r.num("center_y_mm")?,
            center_col_px: r.num("center_col_px")?,
            center_row_px: r.num("center_row_px")?,
            roi_radius_mm: r.num("roi_radius_mm")?,
            roi_radius_px: r.num("roi_radius_px")?,
            insert_radius_mm: r.num("insert_radius_mm")?,
            hu_mean: r.num("hu_mean")?,
            hu_std: r.num("hu_std")?,
            hu_median: r.num("hu_median")?,
            n_pixels: r.int("n_pixels")?,
            n_slices: r.int("n_slices")?,
            refine_shift_mm: r.num("refine_shift_mm")?,
            contrast_hu: r.num("contrast_hu")?,
        },
    })
}
