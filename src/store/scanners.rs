//! The scanners table: a copy of the configuration's `[[scanners]]`, for reports and queries.

use super::{now_ms, with_pool, RowGet, Store, StoreError};
use crate::config::ScannerConfig;
use serde::Serialize;

/// A stored scanner entry (see [`super::Store::sync_scanners`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScannerRow {
    pub name: String,
    pub calling_ae: Option<String>,
    pub station_name: Option<String>,
    pub phantom: Option<String>,
    pub recipients: Vec<String>,
    pub updated_at: i64,
}

impl Store {
    /// Replace the stored scanners with the configured ones (one transaction). Runs keep the
    /// scanner name they were made with, so removing an entry loses no history.
    pub async fn sync_scanners(&self, scanners: &[ScannerConfig]) -> Result<(), StoreError> {
        let what = "storing the configured scanners";
        let now = now_ms();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what))?;
            sqlx::query("DELETE FROM scanners")
                .execute(&mut *tx)
                .await
                .map_err(self.err(what))?;
            for s in scanners {
                let recipients = serde_json::to_string(&s.recipients)
                    .map_err(|e| self.data_err(what, e.to_string()))?;
                sqlx::query(
                    "INSERT INTO scanners (name, calling_ae, station_name, phantom, recipients, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.name)
                .bind(&s.calling_ae)
                .bind(&s.station_name)
                .bind(&s.phantom)
                .bind(recipients)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(self.err(format!("{what}: {}", s.name)))?;
            }
            tx.commit().await.map_err(self.err(what))?;
            Ok(())
        })
    }

    /// The stored scanners, by name.
    pub async fn list_scanners(&self) -> Result<Vec<ScannerRow>, StoreError> {
        let what = "listing the scanners";
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT name, calling_ae, station_name, phantom, recipients, updated_at \
                 FROM scanners ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            rows.iter()
                .map(|r| {
                    let e = || self.err(what);
                    let recipients_text = r.text("recipients").map_err(e())?;
                    let recipients: Vec<String> = serde_json::from_str(&recipients_text)
                        .map_err(|err| {
                            self.data_err(what, format!("recipients are not a JSON list: {err}"))
                        })?;
                    Ok(ScannerRow {
                        name: r.text("name").map_err(e())?,
                        calling_ae: r.opt_text("calling_ae").map_err(e())?,
                        station_name: r.opt_text("station_name").map_err(e())?,
                        phantom: r.opt_text("phantom").map_err(e())?,
                        recipients,
                        updated_at: r.int("updated_at").map_err(e())?,
                    })
                })
                .collect()
        })
    }
}
