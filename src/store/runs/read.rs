//! Reading runs back: rows, a run with its materials and ROIs, the runs whose results are
//! still in a temporary folder.

use crate::store::{
    with_pool, Fingerprint, MaterialRow, NewMaterialResult, NewRoiMeasurement, RoiRow, RowGet,
    RunColumns, RunDetail, RunIdentity, RunRow, RunStatus, Store, StoreError, Verdict,
};

impl Store {
    /// Runs whose outputs are still recorded in a temp folder (`results/tmp-…`): stored just
    /// before a stop, their folder not yet moved to `results/<id>`.
    pub async fn runs_with_temp_outputs(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let what = "listing runs with outputs in a temp folder";
        with_pool!(self, pool => {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, outputs_dir FROM runs WHERE outputs_dir LIKE 'results/tmp-%' \
                 ORDER BY id",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            Ok(rows)
        })
    }

    /// One run row (without its materials and ROIs).
    pub async fn get_run_row(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        let what = format!("reading run {id}");
        with_pool!(self, pool => {
            let row = sqlx::query(concat!("SELECT ", run_cols!(), " FROM runs WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(self.err(what.clone()))?;
            row.map(|r| self.run_row(&r, &what)).transpose()
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
        let Some(run) = self.get_run_row(id).await? else {
            return Ok(None);
        };
        with_pool!(self, pool => {
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
            columns: RunColumns {
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
                identity: RunIdentity {
                    scanner_id: r.opt_text("scanner_id").map_err(e())?,
                    manufacturer: r.opt_text("manufacturer").map_err(e())?,
                    model: r.opt_text("model").map_err(e())?,
                    station_name: r.opt_text("station_name").map_err(e())?,
                    device_serial: r.opt_text("device_serial").map_err(e())?,
                    calling_ae: r.opt_text("calling_ae").map_err(e())?,
                    protocol_key: r.opt_text("protocol_key").map_err(e())?,
                    kvp: r.opt_num("kvp").map_err(e())?,
                    kernel: r.opt_text("kernel").map_err(e())?,
                    slice_thickness_mm: r.opt_num("slice_thickness_mm").map_err(e())?,
                    study_date: r.opt_text("study_date").map_err(e())?,
                    acquired_at: r.opt_int("acquired_at").map_err(e())?,
                },
                baseline_id: r.opt_int("baseline_id").map_err(e())?,
                baseline_provisional: r.opt_flag("baseline_provisional").map_err(e())?,
                baseline_note: r.opt_text("baseline_note").map_err(e())?,
                fingerprint: Fingerprint {
                    n_instances: r.int("instance_count").map_err(e())?,
                    digest: r.text("instance_fingerprint").map_err(e())?,
                },
                phantom_recognised: r.opt_flag("phantom_recognised").map_err(e())?,
            },
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

/// What [`Store::find_runs`] selects (every `None` matches all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// The scanner's label or id (exact, case-sensitive).
    pub scanner: Option<String>,
    pub phantom_id: Option<String>,
    pub verdict: Option<Verdict>,
    /// Acquired (else finished) at or after this, unix ms.
    pub from_ms: Option<i64>,
    /// Acquired (else finished) before this, unix ms.
    pub before_ms: Option<i64>,
}

/// The values the runs have, for the filters' choices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFacets {
    pub scanners: Vec<String>,
    pub phantoms: Vec<String>,
}

impl Store {
    /// A page of the runs `filter` selects, newest first, and how many it selects in all.
    pub async fn find_runs(
        &self,
        filter: &RunFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<RunRow>, u64), StoreError> {
        let what = "listing runs";
        let mut clauses: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut ints: Vec<i64> = Vec::new();
        // text parameters first ($1..), then integers
        if let Some(s) = &filter.scanner {
            texts.push(s.clone());
            let n = texts.len();
            clauses.push(format!("(scanner = ${n} OR scanner_id = ${n})"));
        }
        if let Some(p) = &filter.phantom_id {
            texts.push(p.clone());
            clauses.push(format!("phantom_id = ${}", texts.len()));
        }
        if let Some(v) = filter.verdict {
            texts.push(v.as_str().to_string());
            clauses.push(format!("verdict = ${}", texts.len()));
        }
        let when = "COALESCE(acquired_at, finished_at)";
        let int_clause = |op: &str, v: i64, ints: &mut Vec<i64>| {
            ints.push(v);
            format!("{when} {op} ${}", texts.len() + ints.len())
        };
        if let Some(t) = filter.from_ms {
            let c = int_clause(">=", t, &mut ints);
            clauses.push(c);
        }
        if let Some(t) = filter.before_ms {
            let c = int_clause("<", t, &mut ints);
            clauses.push(c);
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let n = texts.len() + ints.len();
        let page_sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM runs{filter_sql} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            run_cols!(),
            n + 1,
            n + 2
        ));
        let count_sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM runs{filter_sql}"));
        with_pool!(self, pool => {
            let mut page = sqlx::query(page_sql);
            let mut count = sqlx::query_scalar::<_, i64>(count_sql);
            for t in &texts {
                page = page.bind(t.clone());
                count = count.bind(t.clone());
            }
            for i in &ints {
                page = page.bind(*i);
                count = count.bind(*i);
            }
            let rows = page
                .bind(i64::from(limit))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .map_err(self.err(what))?;
            let total = count.fetch_one(pool).await.map_err(self.err(what))?;
            let runs = rows
                .iter()
                .map(|r| self.run_row(r, what))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((runs, u64::try_from(total).unwrap_or(0)))
        })
    }

    /// The scanners and phantoms of the stored runs, sorted.
    pub async fn run_facets(&self) -> Result<RunFacets, StoreError> {
        let what = "listing the scanners and phantoms of the runs";
        with_pool!(self, pool => {
            let scanners: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT scanner FROM runs WHERE scanner IS NOT NULL ORDER BY scanner",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            let phantoms: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT phantom_id FROM runs WHERE phantom_id IS NOT NULL \
                 ORDER BY phantom_id",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            Ok(RunFacets { scanners, phantoms })
        })
    }

    /// Runs per verdict (all time), the undelivered outbox messages, and the finish time of
    /// the last run of each scanner: what `/metrics` reports from the database.
    pub async fn run_statistics(&self) -> Result<RunStatistics, StoreError> {
        let what = "counting runs for /metrics";
        with_pool!(self, pool => {
            let verdicts: Vec<(String, i64)> =
                sqlx::query_as("SELECT verdict, COUNT(*) FROM runs GROUP BY verdict")
                    .fetch_all(pool)
                    .await
                    .map_err(self.err(what))?;
            let outbox_pending: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')",
            )
            .fetch_one(pool)
            .await
            .map_err(self.err(what))?;
            let last_runs: Vec<(String, i64)> = sqlx::query_as(
                "SELECT COALESCE(scanner, scanner_id, 'unknown'), MAX(finished_at) FROM runs \
                 GROUP BY COALESCE(scanner, scanner_id, 'unknown')",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            Ok(RunStatistics {
                verdicts,
                outbox_pending,
                last_runs,
            })
        })
    }
}

/// See [`Store::run_statistics`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStatistics {
    /// (verdict as stored, count).
    pub verdicts: Vec<(String, i64)>,
    pub outbox_pending: i64,
    /// (scanner label or id, unix ms of its last run's finish).
    pub last_runs: Vec<(String, i64)>,
}
