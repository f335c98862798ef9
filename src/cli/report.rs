//! `hu-red report --run ID [--resend] [--out DIR]`: show a run's report email, write it as an
//! .eml (and its HTML) file, or send it again.

use crate::cli::load_config;
use crate::cli::{open_existing_store, runtime};
use crate::notify::{self, Resent};
use crate::store::OutboxKind;
use anyhow::{anyhow, Context};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The run (see `hu-red runs`).
    #[arg(long, value_name = "ID")]
    pub run: i64,
    /// Send the report again, now, to the recipients configured now (a new message with its
    /// own Message-ID); if the mail server cannot be reached it stays queued for `hu-red serve`.
    #[arg(long)]
    pub resend: bool,
    /// Write the message (`.eml`, attachments included) and its HTML body into this folder
    /// instead of printing the text body.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Service configuration file (database, [mail]); HURED__ variables work too.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    runtime()?.block_on(async move {
        let store = open_existing_store(&config).await?;
        let result = async {
            let detail = store
                .get_run(args.run)
                .await?
                .ok_or_else(|| anyhow!("no run {} (see `hu-red runs`)", args.run))?;
            let rows = store.outbox_for_run(args.run).await?;
            let report = rows
                .iter()
                .find(|r| r.kind == OutboxKind::Report)
                .ok_or_else(|| {
                    anyhow!(
                        "run {} has no stored report (no recipients were configured when it \
                         ran, or it was stored by an hu-red without reports)",
                        args.run
                    )
                })?;
            let files = notify::attachments_of(&detail.run, &config.storage.data_dir);
            if let Some(dir) = &args.out {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let msg = notify::build_message(report, &notify::sender(&config.mail)?, &files)?;
                let eml = dir.join(notify::eml_file_name(&report.message_id));
                std::fs::write(&eml, msg.formatted())
                    .with_context(|| format!("cannot write {}", eml.display()))?;
                let html = dir.join(format!("report-run-{}.html", args.run));
                std::fs::write(&html, &report.html_body)
                    .with_context(|| format!("cannot write {}", html.display()))?;
                println!("{}\n{}", eml.display(), html.display());
            } else if !args.resend {
                println!("Subject: {}", report.subject);
                println!("To: {}", report.recipients.join(", "));
                println!(
                    "State: {}{}",
                    report.state,
                    report
                        .last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
                println!(
                    "Attachments: {}",
                    files
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!();
                print!("{}", report.text_body);
            }
            if args.resend {
                match notify::resend(
                    &store,
                    &config.mail,
                    &config.storage.data_dir,
                    &config.scanners,
                    &detail.run,
                    report,
                    &rows,
                )
                .await?
                {
                    Resent::Sent {
                        recipients,
                        transport,
                    } => println!(
                        "report of run {} sent again to {} ({transport})",
                        args.run,
                        recipients.join(", ")
                    ),
                    Resent::Queued { why } => println!(
                        "report of run {} queued, not sent yet: {why}; `hu-red serve` retries it",
                        args.run
                    ),
                    Resent::QueuedForService => {
                        println!("report of run {} queued for `hu-red serve`", args.run)
                    }
                }
            }
            anyhow::Ok(())
        }
        .await;
        store.close().await;
        result
    })
}
