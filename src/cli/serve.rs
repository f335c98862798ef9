//! `hu-red serve` and `hu-red check-config`.

use crate::cli::load_config;
use crate::service;
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Configuration file (TOML); every key can also be set with HURED__SECTION__KEY.
    /// Without it: the embedded defaults (config/default.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hu-red")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move { service::run(config, shutdown_signal()).await })?;
    Ok(())
}

/// SIGTERM (systemd, containers) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `hu-red check-config`: load, validate and print the configuration in force.
pub fn check_config(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    // What only the environment or the files can tell: the SMTP password, the CA file, the
    // site tolerances against the phantom definitions.
    let mailer = crate::notify::Mailer::from_config(&config.mail, &config.storage.data_dir)?;
    let mut phantoms = crate::phantom::PhantomSet::load(config.qa.phantom_config.as_deref())?;
    phantoms
        .apply_tolerances(&config.qa.tolerances)
        .map_err(|e| anyhow::anyhow!("qa.tolerances: {e}"))?;
    println!("configuration valid (embedded defaults < file < HURED__ environment):");
    println!("{}", toml_like(&config));
    println!("reports: {}", mailer.describe());
    Ok(())
}

/// The configuration in force as TOML (the database password redacted).
fn toml_like(config: &crate::config::Config) -> String {
    match serde_json::to_value(config) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| format!("{config:#?}")),
        Err(_) => format!("{config:#?}"),
    }
}
