//! Storing a run: the row, its materials and ROIs, the series update and, in the same
//! transaction, its report in the outbox and a provisional baseline.

use super::RUN_ID_PLACEHOLDER;
use crate::store::{
    finite, flag, now_ms, opt_finite, opt_flag, with_pool, NewOutboxMessage, NewRun, Store,
    StoreError,
};

/// Insert the run row inside the open transaction `$tx` (expanded inside `with_pool!`); gives
/// the new run id.
macro_rules! insert_run_row_tx {
    ($store:expr, $tx:expr, $run:expr, $warnings:expr, $what:expr) => {{
        let store: &Store = $store;
        let run: &NewRun = $run;
        let what = $what;
        let warnings: &String = $warnings;
        async {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (series_instance_uid, started_at, finished_at, status, verdict, \
                 phantom_id, phantom_name, detection, confidence, pose_centre_x_mm, \
                 pose_centre_y_mm, pose_rotation_deg, slab_centre_index, slab_n_slices, slab_mm, \
                 slab_centre_z_mm, assignment, absolute_pass, constancy_pass, pearson_r, \
                 baseline_source, warnings, error, summary_json, outputs_dir, amended, scanner, \
                 instance_count, instance_fingerprint, scanner_id, manufacturer, model, \
                 station_name, device_serial, calling_ae, protocol_key, kvp, kernel, \
                 slice_thickness_mm, study_date, baseline_id, baseline_provisional, \
                 baseline_note, phantom_recognised, acquired_at) VALUES ($1, $2, $3, $4, $5, \
                 $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
                 $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, \
                 $39, $40, $41, $42, $43, $44, $45) RETURNING id",
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
            .bind(warnings)
            .bind(&run.error)
            .bind(&run.summary_json)
            .bind(&run.outputs_dir)
            .bind(flag(run.amended))
            .bind(&run.scanner)
            .bind(run.fingerprint.n_instances)
            .bind(&run.fingerprint.digest)
            .bind(&run.identity.scanner_id)
            .bind(&run.identity.manufacturer)
            .bind(&run.identity.model)
            .bind(&run.identity.station_name)
            .bind(&run.identity.device_serial)
            .bind(&run.identity.calling_ae)
            .bind(&run.identity.protocol_key)
            .bind(opt_finite(run.identity.kvp))
            .bind(&run.identity.kernel)
            .bind(opt_finite(run.identity.slice_thickness_mm))
            .bind(&run.identity.study_date)
            .bind(run.baseline_id)
            .bind(opt_flag(run.baseline_provisional))
            .bind(&run.baseline_note)
            .bind(opt_flag(run.phantom_recognised))
            .bind(run.identity.acquired_at)
            .fetch_one(&mut *$tx)
            .await
            .map_err(store.err(what()))?;
            Ok::<i64, StoreError>(id)
        }
        .await
    }};
}

/// Insert the run's material_results rows, in order, inside the open transaction `$tx`.
macro_rules! insert_materials_tx {
    ($store:expr, $tx:expr, $id:expr, $run:expr, $what:expr) => {{
        let store: &Store = $store;
        let run: &NewRun = $run;
        let what = $what;
        let id: i64 = $id;
        async {
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
                .execute(&mut *$tx)
                .await
                .map_err(store.err(format!(
                    "{}: material {}",
                    what(),
                    m.insert
                )))?;
            }
            Ok::<(), StoreError>(())
        }
        .await
    }};
}

/// Insert the run's roi_measurements rows, in order, inside the open transaction `$tx`.
macro_rules! insert_rois_tx {
    ($store:expr, $tx:expr, $id:expr, $run:expr, $what:expr) => {{
        let store: &Store = $store;
        let run: &NewRun = $run;
        let what = $what;
        let id: i64 = $id;
        async {
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
                .execute(&mut *$tx)
                .await
                .map_err(store.err(format!("{}: ROI {}", what(), r.hole)))?;
            }
            Ok::<(), StoreError>(())
        }
        .await
    }};
}

/// The series update of a stored run inside the open transaction `$tx`: state done/failed
/// (only if still `analysing`), last_run_id and the analysed fingerprint.
macro_rules! update_series_tx {
    ($store:expr, $tx:expr, $id:expr, $run:expr, $series_state:expr, $now:expr, $what:expr) => {{
        let store: &Store = $store;
        let run: &NewRun = $run;
        let what = $what;
        let id: i64 = $id;
        let series_state = $series_state;
        let now: i64 = $now;
        async {
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
            .execute(&mut *$tx)
            .await
            .map_err(store.err(what()))?
            .rows_affected();
            if updated != 1 {
                return Err(store.data_err(what(), "the series does not exist"));
            }
            Ok::<(), StoreError>(())
        }
        .await
    }};
}

impl Store {
    /// Store a finished run in one transaction: the run row, its material_results and
    /// roi_measurements rows (in the given order), the series update (state done/failed from
    /// the run status — only if the series is still `analysing`: a series re-opened by an
    /// arrival during the analysis stays `receiving` and will be analysed again —, last_run_id
    /// and the analysed fingerprint), and when given a provisional
    /// baseline made from the run. Returns the run id.
    pub async fn insert_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        self.insert_run_with(run, |_| None).await
    }

    /// [`Store::insert_run`] with the outbox message made from the new run id (the report
    /// names its run; `render` runs inside the transaction, so it must be quick and pure).
    pub async fn insert_run_with<F>(&self, run: &NewRun, render: F) -> Result<i64, StoreError>
    where
        F: FnOnce(i64) -> Option<NewOutboxMessage> + Send,
    {
        let what = || format!("storing a run of series {}", run.series_instance_uid);
        let warnings = serde_json::to_string(&run.warnings)
            .map_err(|e| self.data_err(what(), format!("warnings: {e}")))?;
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

            let id = insert_run_row_tx!(self, tx, run, &warnings, what)?;

            if let Some(dir) = run.outputs_dir.as_deref().filter(|d| d.contains(RUN_ID_PLACEHOLDER)) {
                sqlx::query("UPDATE runs SET outputs_dir = $2 WHERE id = $1")
                    .bind(id)
                    .bind(dir.replace(RUN_ID_PLACEHOLDER, &id.to_string()))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err(what()))?;
            }

            insert_materials_tx!(self, tx, id, run, what)?;

            insert_rois_tx!(self, tx, id, run, what)?;

            update_series_tx!(self, tx, id, run, series_state, now, what)?;

            if let Some(b) = &run.provisional_baseline {
                let mut b = b.clone();
                b.run_id = Some(id);
                b.source = format!("run {id}");
                crate::store::baselines::insert_baseline_tx!(
                    self,
                    tx,
                    &b,
                    now,
                    crate::store::baselines::OnExisting::Keep
                )?;
            }

            if let Some(o) = render(id) {
                if o.recipients.is_empty() {
                    return Err(self.data_err(
                        format!("{}: queueing its notification", what()),
                        "the message has no recipient",
                    ));
                }
                crate::store::outbox::insert_outbox_tx!(self, tx, id, &o, now)?;
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

    /// Record where a run's outputs are (relative to data_dir), or that they are lost.
    pub async fn set_outputs_dir(&self, id: i64, dir: Option<&str>) -> Result<(), StoreError> {
        let what = format!("recording the results folder of run {id}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query("UPDATE runs SET outputs_dir = $2 WHERE id = $1")
                .bind(id)
                .bind(dir)
                .execute(pool)
                .await
                .map_err(self.err(what))?;
            Ok(())
        })
    }
}
