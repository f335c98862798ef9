//! Delivery of the reports queued in the outbox: the MIME message of an outbox row (plain
//! text + HTML + the run's files as attachments), the transports (`file`: .eml files under
//! `data_dir/outbox/`; `smtp`: lettre over rustls), and the sender task of `hu-red serve`.
//!
//! Exactly one email per outbox row: a row is claimed (`pending → sending`), delivered, and
//! marked `sent` only after the server accepted it (or the .eml file is durable). A failure
//! puts it back to `pending` with an exponential backoff; after `mail.max_attempts` failures it
//! is `dead` (logged as an error, listed by `hu-red runs`). A sender that stops while sending
//! leaves the row `sending`: it goes back to `pending` at the next start; if the server had
//! accepted it, the second copy has the same Message-ID (derived from the run id and this
//! database's installation id), which mail systems use to recognise duplicates.

use crate::config::{MailConfig, MailTransport, ScannerConfig, SmtpTls};
use crate::store::{
    now_ms, NewOutboxMessage, OutboxKind, OutboxRow, OutboxState, RunRow, Store, StoreError,
};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::Notify;
use tracing::{error, info, warn};

/// Folder of the file transport, under data_dir.
pub const OUTBOX_DIR: &str = "outbox";

/// Why a report could not be built or delivered. Messages name the message, run or server.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("message {message_id}: {what}")]
    Build { message_id: String, what: String },
    #[error("SMTP server {server} did not accept message {message_id}: {what}")]
    Smtp {
        server: String,
        message_id: String,
        what: String,
    },
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A configured transport.
#[derive(Clone)]
pub enum Transport {
    /// .eml files in this folder.
    File(PathBuf),
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, for messages.
        server: String,
    },
}

/// The mail side of the service: sender address and transport.
#[derive(Clone)]
pub struct Mailer {
    pub from: Mailbox,
    pub transport: Transport,
    /// Domain of the Message-IDs (the sender address's).
    pub domain: String,
}

impl Mailer {
    /// Build the transport of `[mail]` (`data_dir` for the file transport). The SMTP password
    /// comes from the environment only (`HURED_SMTP_PASSWORD`).
    pub fn from_config(mail: &MailConfig, data_dir: &Path) -> Result<Mailer, NotifyError> {
        let from = sender(mail)?;
        let domain = from.email.domain().to_string();
        let transport = match mail.transport {
            MailTransport::File => Transport::File(data_dir.join(OUTBOX_DIR)),
            MailTransport::Smtp => {
                let host = mail.smtp_host.clone().ok_or_else(|| {
                    NotifyError::Config("mail.smtp_host is required for smtp".into())
                })?;
                let port = mail.port();
                let tls = match mail.smtp_tls {
                    SmtpTls::None => Tls::None,
                    SmtpTls::Starttls => Tls::Required(tls_parameters(mail, &host)?),
                    SmtpTls::Tls => Tls::Wrapper(tls_parameters(mail, &host)?),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
                    .port(port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(mail.smtp_timeout_seconds)));
                if let Some(user) = &mail.smtp_user {
                    let password = MailConfig::smtp_password_from_env().ok_or_else(|| {
                        NotifyError::Config(format!(
                            "mail.smtp_user is set but {} is not: the SMTP password comes \
                             from that environment variable only",
                            crate::config::SMTP_PASSWORD_ENV
                        ))
                    })?;
                    b = b.credentials(Credentials::new(user.clone(), password));
                }
                Transport::Smtp {
                    transport: b.build(),
                    server: format!("{host}:{port}"),
                }
            }
        };
        Ok(Mailer {
            from,
            transport,
            domain,
        })
    }

    /// A human description of the transport, for logs.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::File(dir) => format!("file ({})", dir.display()),
            Transport::Smtp { server, .. } => format!("smtp ({server})"),
        }
    }

    /// Deliver one built message (Ok = accepted by the server / written durably).
    pub async fn deliver(&self, message: &Message, message_id: &str) -> Result<(), NotifyError> {
        match &self.transport {
            Transport::File(dir) => {
                let bytes = message.formatted();
                let path = dir.join(eml_file_name(message_id));
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || write_durably(&dir, &path, &bytes))
                    .await
                    .map_err(|e| NotifyError::File {
                        path: PathBuf::from(OUTBOX_DIR),
                        source: std::io::Error::other(e.to_string()),
                    })?
            }
            Transport::Smtp { transport, server } => transport
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| NotifyError::Smtp {
                    server: server.clone(),
                    message_id: message_id.to_string(),
                    what: crate::scp::error_chain(&e),
                }),
        }
    }
}

/// The From mailbox of every report (`mail.from`, or the file transport's default).
pub fn sender(mail: &MailConfig) -> Result<Mailbox, NotifyError> {
    format!("hu-red <{}>", mail.from_address())
        .parse()
        .map_err(|e| NotifyError::Config(format!("mail.from {:?}: {e}", mail.from)))
}

fn tls_parameters(mail: &MailConfig, host: &str) -> Result<TlsParameters, NotifyError> {
    let mut b = TlsParameters::builder(host.to_string());
    if let Some(path) = &mail.smtp_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            NotifyError::Config(format!("mail.smtp_ca_file {}: {e}", path.display()))
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            NotifyError::Config(format!(
                "mail.smtp_ca_file {}: not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| NotifyError::Config(format!("TLS for {host}: {e}")))
}

/// The .eml file name of a message (its Message-ID made safe for a file name).
pub fn eml_file_name(message_id: &str) -> String {
    let safe: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.eml")
}

/// The message file, written durably (see [`crate::durable`]); a re-delivery replaces the
/// same file.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), NotifyError> {
    let err = |source| NotifyError::File {
        path: path.to_path_buf(),
        source,
    };
    crate::durable::create_dir_all(dir).map_err(err)?;
    crate::durable::write(path, bytes).map_err(err)
}

/// The Message-ID (without angle brackets) of a run's report, or of its `resend`-th re-send.
pub fn message_id(run_id: i64, resend: Option<u32>, installation: &str, domain: &str) -> String {
    let short: String = installation.chars().take(12).collect();
    match resend {
        None => format!("hu-red.run-{run_id}.{short}@{domain}"),
        Some(k) => format!("hu-red.run-{run_id}.resend-{k}.{short}@{domain}"),
    }
}

/// A file attached to a report.
#[derive(Debug, Clone)]
pub struct AttachmentFile {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// One of a run's result files (see [`result_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFile {
    pub name: String,
    pub path: std::path::PathBuf,
    pub content_type: &'static str,
}

/// The run's result files, in report order: the CSV, the summary JSON, and the curve,
/// overlay, trend and preview PNGs that exist. Missing folder → none. Only these names are
/// ever listed (reports attach them, the dashboard serves them).
pub fn result_files(run: &RunRow, data_dir: &Path) -> Vec<ResultFile> {
    let Some(dir) = run.outputs_dir.as_deref() else {
        return Vec::new();
    };
    let dir = data_dir.join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u8, ResultFile)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let (rank, content_type) = if name.ends_with("_summary.json") {
            (1, "application/json")
        } else if name.ends_with(".csv") {
            (0, "text/csv; charset=utf-8")
        } else if name.ends_with("_curve.png") {
            (2, "image/png")
        } else if name.ends_with("_overlay.png") {
            (3, "image/png")
        } else if name.ends_with("_trend.png") {
            (4, "image/png")
        } else if name.ends_with("_preview.png") {
            (5, "image/png")
        } else {
            continue;
        };
        files.push((
            rank,
            ResultFile {
                name,
                path: e.path(),
                content_type,
            },
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
    files.into_iter().map(|(_, f)| f).collect()
}

/// The run's files to attach (see [`result_files`]); a file that cannot be read is logged
/// and left out.
pub fn attachments_of(run: &RunRow, data_dir: &Path) -> Vec<AttachmentFile> {
    result_files(run, data_dir)
        .into_iter()
        .filter_map(|f| match std::fs::read(&f.path) {
            Ok(bytes) => Some(AttachmentFile {
                name: f.name,
                content_type: f.content_type,
                bytes,
            }),
            Err(err) => {
                warn!(file = %f.path.display(), "cannot attach: {err}");
                None
            }
        })
        .collect()
}

/// The MIME message of an outbox row: `multipart/mixed` of `multipart/alternative` (text,
/// HTML) and the attachments; Message-ID and Date fixed by the row, so every attempt sends
/// the same message.
pub fn build_message(
    row: &OutboxRow,
    from: &Mailbox,
    attachments: &[AttachmentFile],
) -> Result<Message, NotifyError> {
    let bad = |what: String| NotifyError::Build {
        message_id: row.message_id.clone(),
        what,
    };
    let mut b = Message::builder()
        .from(from.clone())
        .subject(row.subject.clone())
        .message_id(Some(format!("<{}>", row.message_id)))
        .date(UNIX_EPOCH + Duration::from_millis(u64::try_from(row.created_at).unwrap_or(0)))
        .user_agent(format!("hu-red {}", env!("CARGO_PKG_VERSION")));
    for r in &row.recipients {
        let mbox: Mailbox = r
            .parse()
            .map_err(|e| bad(format!("recipient {r:?}: {e}")))?;
        b = b.to(mbox);
    }
    let mut mixed = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
        row.text_body.clone(),
        row.html_body.clone(),
    ));
    for a in attachments {
        let ct = ContentType::parse(a.content_type)
            .map_err(|e| bad(format!("content type of {}: {e}", a.name)))?;
        let part: SinglePart = Attachment::new(a.name.clone()).body(a.bytes.clone(), ct);
        mixed = mixed.singlepart(part);
    }
    b.multipart(mixed).map_err(|e| bad(e.to_string()))
}

/// The recipients of a run's report: `mail.to` plus the matching scanner's, without repeats;
/// with the file transport and nobody configured, the sender address (so the .eml is still
/// written). Empty = nobody to send to.
pub fn recipients(mail: &MailConfig, scanner: Option<&ScannerConfig>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in mail
        .to
        .iter()
        .chain(scanner.map(|s| s.recipients.as_slice()).unwrap_or(&[]))
    {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(r)) {
            out.push(r.clone());
        }
    }
    if out.is_empty() && mail.transport == MailTransport::File {
        out.push(mail.from_address().to_string());
    }
    out
}

/// Delivery policy from `[mail]`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_config(mail: &MailConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: mail.max_attempts,
            initial: Duration::from_secs(mail.retry_initial_seconds),
            max: Duration::from_secs(mail.retry_max_seconds),
        }
    }

    /// The wait after the `failures`-th failure (1 = the first): initial · 2^(failures−1),
    /// at most `max`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(30);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// How long a message waits for its run's results folder to be moved into place before it
/// is sent with what is there.
const OUTPUTS_GRACE_MS: i64 = 60_000;

/// Try to deliver one claimed row; records the outcome in the store. Returns whether it was
/// sent.
pub async fn attempt(
    store: &Store,
    mailer: &Mailer,
    data_dir: &Path,
    policy: RetryPolicy,
    row: &OutboxRow,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let run = store.get_run_row(row.run_id).await?;
    let files = match &run {
        Some(run) => {
            let pending_dir = run
                .outputs_dir
                .as_deref()
                .is_some_and(|d| d.starts_with("results/tmp-"));
            if pending_dir && now - run.finished_at < OUTPUTS_GRACE_MS {
                // the worker is moving the run's files into place: try again in a moment,
                // without counting an attempt
                store.defer_message(row.id, now + 1000).await?;
                return Ok(false);
            }
            attachments_of(run, data_dir)
        }
        None => Vec::new(),
    };
    let result = match build_message(row, &mailer.from, &files) {
        Ok(m) => mailer.deliver(&m, &row.message_id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            store.mark_message_sent(row.id, now_ms()).await?;
            info!(
                run = row.run_id,
                message_id = %row.message_id,
                recipients = row.recipients.join(", "),
                transport = %mailer.describe(),
                "report delivered"
            );
            Ok(true)
        }
        Err(e) => {
            let failures = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
            let dead = failures >= policy.max_attempts;
            let next = now_ms() + policy.backoff(failures).as_millis() as i64;
            store
                .mark_message_failed(row.id, &e.to_string(), next, dead)
                .await?;
            if dead {
                error!(
                    run = row.run_id,
                    message_id = %row.message_id,
                    attempts = failures,
                    "report dead-lettered after {failures} failed attempts: {e}; \
                     `hu-red report --run {} --resend` queues it again",
                    row.run_id
                );
            } else {
                warn!(
                    run = row.run_id,
                    message_id = %row.message_id,
                    attempt = failures,
                    retry_in_s = policy.backoff(failures).as_secs(),
                    "report not delivered: {e}"
                );
            }
            Ok(false)
        }
    }
}

/// The sender task of `hu-red serve`: delivers due messages, then sleeps until the next one
/// is due, `wake` is notified (a run was stored) or 30 s passed; ends on `shutdown` (a message
/// being sent is finished first).
pub async fn run_sender(
    store: Store,
    mailer: Mailer,
    data_dir: PathBuf,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    match store.reset_sending_messages().await {
        Ok(n) if n > 0 => warn!(
            messages = n,
            "reports interrupted while being sent are queued again"
        ),
        Ok(_) => {}
        Err(e) => error!("cannot re-queue interrupted reports: {e}"),
    }
    info!(transport = %mailer.describe(), "report sender started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        match store.claim_due_messages(now_ms(), 16).await {
            Ok(rows) => {
                for row in rows {
                    if let Err(e) = attempt(&store, &mailer, &data_dir, policy, &row).await {
                        error!(message_id = %row.message_id, "cannot record a delivery attempt: {e}");
                        // leave it 'sending': re-queued at the next start
                    }
                }
            }
            Err(e) => error!("cannot read the outbox: {e}"),
        }
        let wait = match store.next_message_due().await {
            Ok(Some(t)) => Duration::from_millis((t - now_ms()).clamp(0, 30_000) as u64),
            Ok(None) => Duration::from_secs(30),
            Err(e) => {
                error!("cannot read the outbox: {e}");
                Duration::from_secs(5)
            }
        };
        if wait.is_zero() {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
    info!("report sender stopped");
}

/// What became of a report sent again ([`resend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    /// Delivered now, to these recipients, by this transport.
    Sent {
        recipients: Vec<String>,
        transport: String,
    },
    /// Queued but not delivered yet (the mail server refused or was unreachable): `hu-red
    /// serve` retries it.
    Queued { why: String },
    /// Queued; a running service claimed it first and delivers it.
    QueuedForService,
}

/// Send a run's report again: a new outbox message (kind `Resend`, its own Message-ID, the
/// recipients configured now, else the report's own), delivered at once when it is still ours
/// to send. `report` is the run's stored report, `earlier` every outbox row of the run.
pub async fn resend(
    store: &Store,
    mail: &MailConfig,
    data_dir: &Path,
    scanners: &[ScannerConfig],
    run: &RunRow,
    report: &OutboxRow,
    earlier: &[OutboxRow],
) -> Result<Resent, NotifyError> {
    // only sending needs the transport (and the SMTP password)
    let mailer = Mailer::from_config(mail, data_dir)?;
    let scanner = crate::config::scanner_for(
        scanners,
        run.identity.calling_ae.as_deref(),
        run.identity.station_name.as_deref(),
    );
    let mut to = recipients(mail, scanner);
    if to.is_empty() {
        to = report.recipients.clone();
    }
    let resends = earlier
        .iter()
        .filter(|r| r.kind == OutboxKind::Resend)
        .count();
    let installation = store.installation_id().await?;
    let message_id = message_id(
        run.id,
        Some(u32::try_from(resends + 1).unwrap_or(u32::MAX)),
        &installation,
        &mailer.domain,
    );
    let id = store
        .queue_message(
            run.id,
            &NewOutboxMessage {
                kind: OutboxKind::Resend,
                recipients: to,
                subject: report.subject.clone(),
                text_body: report.text_body.clone(),
                html_body: report.html_body.clone(),
                message_id,
            },
        )
        .await?;
    // Deliver now if it is still ours to send (a running service may have claimed it first).
    if !store
        .set_outbox_state(id, OutboxState::Pending, OutboxState::Sending)
        .await?
    {
        return Ok(Resent::QueuedForService);
    }
    let Some(row) = store.get_outbox(id).await? else {
        return Err(NotifyError::Build {
            message_id: format!("outbox row {id} of run {}", run.id),
            what: "vanished from the outbox while it was being sent".into(),
        });
    };
    let sent = attempt(
        store,
        &mailer,
        data_dir,
        RetryPolicy::from_config(mail),
        &row,
    )
    .await?;
    let row = store.get_outbox(id).await?.unwrap_or(row);
    Ok(if sent {
        Resent::Sent {
            recipients: row.recipients,
            transport: mailer.describe(),
        }
    } else {
        Resent::Queued {
            why: row
                .last_error
                .unwrap_or_else(|| "not delivered".to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_secs(30),
            max: Duration::from_secs(100),
        };
        assert_eq!(p.backoff(1), Duration::from_secs(30));
        assert_eq!(p.backoff(2), Duration::from_secs(60));
        assert_eq!(p.backoff(3), Duration::from_secs(100));
        assert_eq!(p.backoff(40), Duration::from_secs(100));
    }

    #[test]
    fn message_ids_and_file_names() {
        let id = message_id(42, None, "3f9c1a2b44e1d0aa", "hospital.example");
        assert_eq!(id, "hu-red.run-42.3f9c1a2b44e1@hospital.example");
        assert_ne!(
            id,
            message_id(42, Some(1), "3f9c1a2b44e1d0aa", "hospital.example")
        );
        assert_ne!(
            id,
            message_id(42, None, "0000000000000000", "hospital.example")
        );
        assert_eq!(
            eml_file_name("a/b<c>@d"),
            "a_b_c_@d.eml",
            "no path separators"
        );
    }
}
