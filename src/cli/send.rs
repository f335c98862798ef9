//! `hu-red send`: push DICOM files or folders to a Storage SCP (C-STORE SCU), each file in its
//! own transfer syntax. Prints a summary; fails (non-zero exit) when any file was not stored.

use crate::scp::tls::{ClientTls, ClientTlsFiles};
use crate::scu::{self, FileResult, ScuOptions};
use anyhow::bail;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// The Storage SCP, HOST:PORT.
    #[arg(long = "to", value_name = "HOST:PORT")]
    pub to: String,
    /// The SCP's AE title (the called AE title; hu-red serve's is scp.ae_title, "HURED_QA" by
    /// default).
    #[arg(long = "aet", value_name = "CALLED_AE")]
    pub aet: String,
    /// Our AE title (the calling AE title).
    #[arg(long = "aec", value_name = "OUR_AE", default_value = "HURED_SCU")]
    pub aec: String,
    /// Largest PDU we accept from the SCP, bytes.
    #[arg(long = "max-pdu", value_name = "N", default_value_t = 131_072,
          value_parser = clap::value_parser!(u32).range(4096..))]
    pub max_pdu: u32,
    /// Connection, read and write timeout, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// DICOM files, or folders searched recursively (files that are not DICOM are skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// DICOM TLS (`hu-red serve`'s `scp.tls.bind`, usually port 2762).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// DICOM TLS: connect inside TLS and trust the server's certificate only if it chains to
    /// these CA certificates (PEM) and names the host of --to.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Our certificate (PEM), for a server that requires client certificates (with --tls-key).
    #[arg(long = "tls-cert", value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

fn check_ae(flag: &str, ae: &str) -> anyhow::Result<()> {
    let t = ae.trim();
    if t.is_empty() || t.len() > 16 || t.contains('\\') || !t.is_ascii() {
        bail!("{flag} {ae:?}: an AE title is 1 to 16 ASCII characters without backslash");
    }
    Ok(())
}

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    check_ae("--aet", &args.aet)?;
    check_ae("--aec", &args.aec)?;
    let tls = match &args.tls.tls_ca {
        None => None,
        Some(ca) => Some(ClientTls::load(&ClientTlsFiles {
            ca_file: ca.clone(),
            cert_and_key: args.tls.tls_cert.clone().zip(args.tls.tls_key.clone()),
        })?),
    };
    let opts = ScuOptions {
        addr: args.to.clone(),
        called_ae: args.aet.trim().to_string(),
        calling_ae: args.aec.trim().to_string(),
        max_pdu: args.max_pdu,
        timeout: Duration::from_secs(args.timeout),
        tls,
    };
    let summary = scu::send(&opts, &args.paths)?;
    let total = summary.files.len();
    let stored = summary.stored();
    let failed = summary.failed();
    let by_syntax = scu::count_by_syntax(&summary);
    let syntaxes: Vec<String> = by_syntax
        .iter()
        .map(|(ts, n)| format!("{n} in {ts}"))
        .collect();
    println!(
        "sent {stored} of {total} file(s) to {}@{}{}{}",
        opts.called_ae,
        opts.addr,
        if opts.tls.is_some() { " over TLS" } else { "" },
        if syntaxes.is_empty() {
            String::new()
        } else {
            format!(" ({})", syntaxes.join(", "))
        }
    );
    for f in &summary.files {
        match &f.result {
            FileResult::Stored { status } if *status != 0 => {
                println!("  warning {status:#06x}: {}", f.path.display())
            }
            FileResult::Stored { .. } => {}
            FileResult::Failed { status, reason } => match status {
                Some(st) => println!("  FAILED {}: status {st:#06x} ({reason})", f.path.display()),
                None => println!("  FAILED {}: {reason}", f.path.display()),
            },
        }
    }
    if !summary.headerless.is_empty() {
        println!(
            "note: {} file(s) have no DICOM Part-10 header (no preamble/file meta, e.g. {}); their data sets were sent as read",
            summary.headerless.len(),
            summary.headerless[0].display()
        );
    }
    if !summary.skipped.is_empty() {
        println!(
            "skipped {} file(s) that are not DICOM (e.g. {})",
            summary.skipped.len(),
            summary.skipped[0].0.display()
        );
    }
    if failed > 0 {
        bail!("{failed} of {total} file(s) were not stored");
    }
    Ok(())
}
