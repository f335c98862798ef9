//! The report outbox: messages queued with their run, claimed by the sender, marked sent only
//! after the mail server accepted them, retried with backoff, dead-lettered after the last
//! attempt.

use super::{with_pool, RowGet, Store, StoreError};
use serde::Serialize;
use std::fmt;

text_enum! {
    /// Delivery state of an outbox message (issue 4).
    OutboxState {
        /// Waiting for its (next) attempt at `next_attempt_at`.
        Pending = "pending",
        /// Claimed by a sender (back to pending at start if the sender died).
        Sending = "sending",
        /// Accepted by the mail server (or written by the file transport).
        Sent = "sent",
        /// Given up after `mail.max_attempts` failures (dead-lettered; `hu-red runs` lists it).
        Dead = "dead",
    }
}

text_enum! {
    /// Why an outbox message exists.
    OutboxKind {
        /// The report of a run (exactly one per run).
        Report = "report",
        /// An explicit `hu-red report --run ID --resend`.
        Resend = "resend",
    }
}

/// A report email to queue (with its run, in the same transaction, or as a re-send).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOutboxMessage {
    pub kind: OutboxKind,
    /// At least one address.
    pub recipients: Vec<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// The Message-ID without angle brackets (unique: a run's report has one, each re-send its
    /// own), e.g. `run-42.3f9c1a2b@hospital.example`.
    pub message_id: String,
}

/// A stored outbox message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub run_id: i64,
    pub kind: OutboxKind,
    pub recipients: Vec<String>,
    pub subject: String,
    #[serde(skip)]
    pub text_body: String,
    #[serde(skip)]
    pub html_body: String,
    pub message_id: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// The outbox table's columns, in the order `Store::outbox_row` reads them.
macro_rules! outbox_cols {
    () => {
        "id, run_id, kind, recipients, subject, text_body, html_body, message_id, state, \
         attempts, created_at, next_attempt_at, last_error, sent_at"
    };
}

/// Insert an outbox row inside the open transaction `$tx` (expanded inside `with_pool!`).
macro_rules! insert_outbox_tx {
    ($store:expr, $tx:expr, $run_id:expr, $msg:expr, $now:expr) => {{
        let store: &$crate::store::Store = $store;
        let m: &$crate::store::NewOutboxMessage = $msg;
        let what = || format!("queueing the report of run {}", $run_id);
        async {
            if m.recipients.is_empty() {
                return Err(store.data_err(what(), "the message has no recipient"));
            }
            let recipients = serde_json::to_string(&m.recipients)
                .map_err(|e| store.data_err(what(), format!("recipients: {e}")))?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO outbox (run_id, kind, recipients, subject, text_body, html_body, \
                 message_id, state, attempts, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8) RETURNING id",
            )
            .bind($run_id)
            .bind(m.kind.as_str())
            .bind(&recipients)
            .bind(&m.subject)
            .bind(&m.text_body)
            .bind(&m.html_body)
            .bind(&m.message_id)
            .bind($now)
            .fetch_one(&mut *$tx)
            .await
            .map_err(store.err(what()))?;
            Ok::<i64, $crate::store::StoreError>(id)
        }
        .await
    }};
}
pub(crate) use insert_outbox_tx;

impl Store {
    /// Queue a message for an existing run (a re-send). Returns the outbox id.
    pub async fn queue_message(
        &self,
        run_id: i64,
        msg: &NewOutboxMessage,
    ) -> Result<i64, StoreError> {
        let what = format!("queueing a message for run {run_id}");
        let now = super::now_ms();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what.clone()))?;
            let id = insert_outbox_tx!(self, tx, run_id, msg, now)?;
            tx.commit().await.map_err(self.err(what.clone()))?;
            Ok(id)
        })
    }

    /// The outbox rows of a run, oldest first.
    pub async fn outbox_for_run(&self, run_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.query_outbox(
            &format!("reading the outbox of run {run_id}"),
            "run_id = $1 ORDER BY id",
            Some(run_id),
        )
        .await
    }

    /// One outbox row.
    pub async fn get_outbox(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        Ok(self
            .query_outbox(&format!("reading outbox message {id}"), "id = $1", Some(id))
            .await?
            .into_iter()
            .next())
    }

    /// Messages not (yet) delivered: pending, sending and dead, newest first (for `hu-red
    /// runs`).
    pub async fn undelivered(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        self.query_outbox(
            "listing undelivered messages",
            "state <> 'sent' ORDER BY id DESC LIMIT $1",
            Some(i64::from(limit)),
        )
        .await
    }

    /// Claim the messages due at `now` (pending → sending), oldest first, at most `limit`.
    pub async fn claim_due_messages(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let due = self
            .query_outbox(
                "listing messages due",
                "state = 'pending' AND next_attempt_at <= $1 ORDER BY id",
                Some(now),
            )
            .await?;
        let mut claimed = Vec::new();
        for m in due.into_iter().take(limit as usize) {
            if self
                .set_outbox_state(m.id, OutboxState::Pending, OutboxState::Sending)
                .await?
            {
                claimed.push(OutboxRow {
                    state: OutboxState::Sending,
                    ..m
                });
            }
        }
        Ok(claimed)
    }

    /// When the next pending message is due (unix ms), if any.
    pub async fn next_message_due(&self) -> Result<Option<i64>, StoreError> {
        let what = "reading when the next message is due";
        with_pool!(self, pool => {
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
            )
            .fetch_one(pool)
            .await
            .map_err(self.err(what))?;
            Ok(v)
        })
    }

    /// The server accepted the message.
    pub async fn mark_message_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let what = format!("marking message {id} sent");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET state = 'sent', sent_at = $2, attempts = attempts + 1, \
                 last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map_err(self.err(what))?;
            Ok(())
        })
    }

    /// An attempt failed: back to pending until `next_attempt_at`, or dead (`dead = true`).
    pub async fn mark_message_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
        dead: bool,
    ) -> Result<(), StoreError> {
        let what = format!("recording a failed attempt of message {id}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET state = $2, attempts = attempts + 1, last_error = $3, \
                 next_attempt_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(if dead { OutboxState::Dead } else { OutboxState::Pending }.as_str())
            .bind(error)
            .bind(next_attempt_at)
            .execute(pool)
            .await
            .map_err(self.err(what))?;
            Ok(())
        })
    }

    /// Put a claimed message back to `pending` until `next_attempt_at` without counting an
    /// attempt (it was not ready to send).
    pub async fn defer_message(&self, id: i64, next_attempt_at: i64) -> Result<(), StoreError> {
        let what = format!("deferring message {id}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_at = $2 WHERE id = $1")
                .bind(id)
                .bind(next_attempt_at)
                .execute(pool)
                .await
                .map_err(self.err(what))?;
            Ok(())
        })
    }

    /// At start: messages left `sending` by a stopped sender go back to `pending` (the server
    /// may have accepted one already: the same Message-ID lets the recipient's mail system
    /// recognise a duplicate). Returns how many.
    pub async fn reset_sending_messages(&self) -> Result<u64, StoreError> {
        let what = "returning interrupted messages to the queue";
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let n = sqlx::query("UPDATE outbox SET state = 'pending' WHERE state = 'sending'")
                .execute(pool)
                .await
                .map_err(self.err(what))?
                .rows_affected();
            Ok(n)
        })
    }

    /// Compare-and-set of a message's state.
    pub async fn set_outbox_state(
        &self,
        id: i64,
        from: OutboxState,
        to: OutboxState,
    ) -> Result<bool, StoreError> {
        let what = format!("moving message {id} from {from} to {to}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let n = sqlx::query("UPDATE outbox SET state = $3 WHERE id = $1 AND state = $2")
                .bind(id)
                .bind(from.as_str())
                .bind(to.as_str())
                .execute(pool)
                .await
                .map_err(self.err(what))?
                .rows_affected();
            Ok(n == 1)
        })
    }

    async fn query_outbox(
        &self,
        what: &str,
        filter: &str,
        arg: Option<i64>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM outbox WHERE {filter}",
            outbox_cols!()
        ));
        with_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            if let Some(a) = arg {
                q = q.bind(a);
            }
            let rows = q.fetch_all(pool).await.map_err(self.err(what))?;
            rows.iter().map(|r| self.outbox_row(r, what)).collect()
        })
    }

    fn outbox_row(&self, r: &impl RowGet, what: &str) -> Result<OutboxRow, StoreError> {
        let e = || self.err(what.to_string());
        let state_text = r.text("state").map_err(e())?;
        let state = OutboxState::parse(&state_text)
            .ok_or_else(|| self.data_err(what, format!("unknown outbox state {state_text:?}")))?;
        let kind_text = r.text("kind").map_err(e())?;
        let kind = OutboxKind::parse(&kind_text)
            .ok_or_else(|| self.data_err(what, format!("unknown outbox kind {kind_text:?}")))?;
        let recipients_text = r.text("recipients").map_err(e())?;
        let recipients: Vec<String> = serde_json::from_str(&recipients_text)
            .map_err(|err| self.data_err(what, format!("recipients are not a JSON list: {err}")))?;
        Ok(OutboxRow {
            id: r.int("id").map_err(e())?,
            run_id: r.int("run_id").map_err(e())?,
            kind,
            recipients,
            subject: r.text("subject").map_err(e())?,
            text_body: r.text("text_body").map_err(e())?,
            html_body: r.text("html_body").map_err(e())?,
            message_id: r.text("message_id").map_err(e())?,
            state,
            attempts: r.int("attempts").map_err(e())?,
            created_at: r.int("created_at").map_err(e())?,
            next_attempt_at: r.int("next_attempt_at").map_err(e())?,
            last_error: r.opt_text("last_error").map_err(e())?,
            sent_at: r.opt_int("sent_at").map_err(e())?,
        })
    }
}
