//! The `hu-red` command line.

use clap::{ArgAction, Parser, Subcommand};
use hu_red::cli::analyze::{self, AnalyzeArgs};
use hu_red::cli::baseline::{self, BaselineArgs};
use hu_red::cli::purge::{self, PurgeArgs};
use hu_red::cli::report::{self, ReportArgs};
use hu_red::cli::runs::{self, RunsArgs};
use hu_red::cli::send::{self, SendArgs};
use hu_red::cli::serve::{self, ServeArgs};
use hu_red::cli::simulate::{self, SimulateArgs};
use hu_red::cli::user::{self, UserArgs};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "hu-red",
    disable_version_flag = true,
    arg_required_else_help = true,
    about = "CT HU-to-relative-electron-density calibration QA for radiotherapy",
    long_about = "CT HU-to-relative-electron-density calibration QA for radiotherapy: finds the \
                  phantom (CIRS 062M, Easy Cube, Catphan CTP404) in a CT series, measures the mean \
                  HU of each insert, builds the HU–RED curve and compares it with a baseline."
)]
struct Cli {
    /// More log output on stderr: -v info, -vv debug (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Log format on stderr: "text" (for people) or "json" (one JSON object per line, for a log
    /// collector). Environment: HURED_LOG_FORMAT.
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        env = "HURED_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Print the version and the DICOM transfer syntaxes (codecs) this build decodes.
    #[arg(short = 'V', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn version_text() -> String {
    let mut s = format!("hu-red {}\n", env!("CARGO_PKG_VERSION"));
    s.push_str(
        "transfer syntaxes decoded (accepted by `hu-red serve`, read by `hu-red analyze`):\n",
    );
    let accepted = hu_red::scp::accepted_transfer_syntaxes();
    for (uid, name) in hu_red::scp::TRANSFER_SYNTAXES {
        let mark = if accepted.contains(uid) {
            "yes"
        } else {
            "no (codec not compiled in)"
        };
        s.push_str(&format!("  {name:<55} {uid:<24} {mark}\n"));
    }
    s.push_str(&format!(
        "  {:<55} {:<24} {}\n",
        "JPEG Extended (Process 2 & 4, 12-bit lossy)",
        "1.2.840.10008.1.2.4.51",
        "no (refused: senders fall back to another syntax)"
    ));
    s.push_str("databases: SQLite (embedded), PostgreSQL; mail: file, SMTP (none/STARTTLS/TLS over rustls)\n");
    s
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse a CT phantom series: CSV, summary JSON, curve PNG, console summary.
    /// Exit 0: analysed (and constancy passed); 1: constancy failed; 2: could not analyse.
    Analyze(AnalyzeArgs),
    /// Write a synthetic CT series of a phantom with known ground truth (truth.json).
    Simulate(Box<SimulateArgs>),
    /// Run the DICOM Storage SCP: keep every instance, assemble series, analyse each complete
    /// CT phantom series.
    Serve(ServeArgs),
    /// Send DICOM files or folders to a Storage SCP (C-STORE).
    Send(SendArgs),
    /// Recent series and runs with their state and verdict, and reports not delivered.
    Runs(RunsArgs),
    /// Baselines per scanner, phantom and protocol: set from a run, import a CSV, show, history.
    Baseline(BaselineArgs),
    /// Show a run's report email, write it to a folder, or send it again.
    Report(ReportArgs),
    /// Purge the instances of series past their retention ([retention]); the series, runs,
    /// results and reports are kept. --dry-run lists what would go.
    Purge(PurgeArgs),
    /// Dashboard users ([web]): add (physicist or viewer), list, remove.
    User(UserArgs),
    /// Load and validate the service configuration, then print it.
    CheckConfig(ServeArgs),
}

fn init_logging(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).unwrap_or_else(|_| EnvFilter::new(level))
        }
        _ => EnvFilter::new(level),
    };
    // The JPEG 2000 decoder logs every frame at INFO.
    let filter = match "jpeg2k=warn".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder
            .with_target(verbose >= 2)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
}

fn exit_code(r: anyhow::Result<()>) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hu-red: error: {e:#}");
            2
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = &cli.command else {
        eprintln!("hu-red: a command is needed; see `hu-red --help`");
        return ExitCode::from(2);
    };
    // One-shot commands print to stdout: `hu-red runs | head` must end quietly when the pipe
    // closes (the default SIGPIPE action) instead of panicking on a write error. The service
    // keeps Rust's default (ignored), so that a peer closing a socket never kills it.
    #[cfg(unix)]
    if !matches!(command, Command::Serve(_)) {
        // SAFETY: called before any other thread exists; restores the default disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // The service logs each association and run at INFO by default; one-shot commands are quiet.
    let base = match command {
        Command::Serve(_) => 1,
        _ => 0,
    };
    init_logging(cli.verbose.max(base), cli.log_format);
    // Fault injection for the tests (the `fail` crate): its fail points exist only in builds
    // with its `failpoints` feature, which the dev-dependency turns on for `cargo test`;
    // release builds ignore FAILPOINTS.
    let _failpoints = fail::has_failpoints().then(|| {
        if let Ok(points) = std::env::var("FAILPOINTS") {
            tracing::warn!(%points, "test build: injecting faults (FAILPOINTS)");
        }
        fail::FailScenario::setup()
    });
    let code = match command {
        Command::Analyze(args) => analyze::run(args),
        Command::Simulate(args) => exit_code(simulate::run(args.as_ref().clone())),
        Command::Serve(args) => exit_code(serve::run(args.clone())),
        Command::Send(args) => exit_code(send::run(args.clone())),
        Command::Runs(args) => exit_code(runs::run(args.clone())),
        Command::Baseline(args) => exit_code(baseline::run(args.clone())),
        Command::Report(args) => exit_code(report::run(args.clone())),
        Command::Purge(args) => exit_code(purge::run(args.clone())),
        Command::User(args) => exit_code(user::run(args.clone())),
        Command::CheckConfig(args) => exit_code(serve::check_config(args.clone())),
    };
    ExitCode::from(code)
}
