//! `hu-red baseline`: set a baseline from a run, import one from a CSV (the Python script's or
//! hu-red's), show the active baselines, list their history.

use crate::cli::load_config;
use crate::cli::{open_existing_store, runtime};
use crate::identity::{Protocol, ProtocolField};
use crate::phantom::PhantomSet;
use crate::report::format::fixed;
use crate::store::{AuditRow, BaselineFilter, BaselineRow, NewBaseline, NewBaselineEntry, Store};
use anyhow::{anyhow, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BaselineCommand {
    /// Make a run the baseline of its scanner, phantom and protocol (confirms a provisional
    /// baseline made from that run).
    Set {
        /// The run (see `hu-red runs`).
        #[arg(long, value_name = "ID")]
        run: i64,
        /// A note kept with the baseline (e.g. "after tube replacement").
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Import a baseline CSV (the Python script's or hu-red's `hu_red_PHANTOM.csv`).
    Import {
        /// The CSV: an `insert` and a `hu_mean` column, one row per material.
        file: PathBuf,
        /// The scanner: its DeviceSerialNumber, StationName or [[scanners]] name, as `hu-red
        /// runs` shows it.
        #[arg(long)]
        scanner: String,
        /// Phantom id (see `hu-red analyze --help`), or a family id: `catphan_ctp404` makes a
        /// baseline for every Catphan variant without one of its own.
        #[arg(long)]
        phantom: String,
        /// Tube voltage of the baseline scan (default: the CSV's KVP column).
        #[arg(long)]
        kvp: Option<f64>,
        /// Reconstruction kernel (default: the CSV's ReconstructionKernel column).
        #[arg(long)]
        kernel: Option<String>,
        /// Slice thickness, mm (default: the CSV's SliceThickness column).
        #[arg(long = "slice-thickness", value_name = "MM")]
        slice_thickness: Option<f64>,
        /// Manufacturer and model (default: the CSV's columns, if any).
        #[arg(long)]
        manufacturer: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// The active baselines, with their values.
    Show {
        #[command(flatten)]
        filter: Filter,
        #[command(flatten)]
        common: Common,
    },
    /// Every baseline, superseded ones included, newest first.
    History {
        #[command(flatten)]
        filter: Filter,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Service configuration file (database, qa.protocol_fields); HURED__ variables work too.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Filter {
    /// Only this scanner (id or label).
    #[arg(long)]
    pub scanner: Option<String>,
    /// Only this phantom id (a variant also shows its family's baselines; a family id every
    /// variant's).
    #[arg(long)]
    pub phantom: Option<String>,
}

pub fn run(args: BaselineArgs) -> anyhow::Result<()> {
    let common = match &args.command {
        BaselineCommand::Set { common, .. }
        | BaselineCommand::Import { common, .. }
        | BaselineCommand::Show { common, .. }
        | BaselineCommand::History { common, .. } => common.clone(),
    };
    let config = load_config(common.config.as_ref())?;
    let fields = ProtocolField::parse_list(&config.qa.protocol_fields)
        .map_err(|e| anyhow!("qa.protocol_fields: {e}"))?;
    runtime()?.block_on(async move {
        let store = open_existing_store(&config).await?;
        let r = match args.command {
            BaselineCommand::Set { run, note, .. } => {
                set_from_run(&store, run, note, &fields, common.json).await
            }
            BaselineCommand::Import {
                file,
                scanner,
                phantom,
                kvp,
                kernel,
                slice_thickness,
                manufacturer,
                model,
                note,
                ..
            } => {
                // A family id (catphan_ctp404) is accepted: its baseline serves every variant
                // that has none of its own for the protocol.
                let phantoms = PhantomSet::load(config.qa.phantom_config.as_deref())?;
                if phantoms.resolve(&phantom).is_err() {
                    bail!(
                        "unknown phantom {phantom:?}: use one of {}",
                        phantoms.known_ids().join(", ")
                    );
                }
                let given = ImportGiven {
                    kvp,
                    kernel,
                    slice_thickness,
                    manufacturer,
                    model,
                    note,
                };
                import(
                    &store,
                    &file,
                    &scanner,
                    &phantom,
                    given,
                    &fields,
                    common.json,
                )
                .await
            }
            BaselineCommand::Show { filter, .. } => {
                list(&store, filter, &config, false, common.json).await
            }
            BaselineCommand::History { filter, .. } => {
                list(&store, filter, &config, true, common.json).await
            }
        };
        store.close().await;
        r
    })
}

async fn set_from_run(
    store: &Store,
    run_id: i64,
    note: Option<String>,
    fields: &[ProtocolField],
    json: bool,
) -> anyhow::Result<()> {
    let set = crate::actions::set_baseline_from_run(
        store,
        run_id,
        note,
        fields,
        &crate::actions::Actor::command_line(),
    )
    .await?;
    println!("{}", set.describe(run_id));
    print_one(store, set.baseline_id, json).await
}

struct ImportGiven {
    kvp: Option<f64>,
    kernel: Option<String>,
    slice_thickness: Option<f64>,
    manufacturer: Option<String>,
    model: Option<String>,
    note: Option<String>,
}

async fn import(
    store: &Store,
    file: &std::path::Path,
    scanner: &str,
    phantom: &str,
    given: ImportGiven,
    fields: &[ProtocolField],
    json: bool,
) -> anyhow::Result<()> {
    let parsed = crate::baseline::read_baseline(file)?;
    if let Some(p) = parsed.protocol.phantom.as_deref().filter(|p| *p != phantom) {
        bail!(
            "{} was measured on phantom {p:?} (its 'phantom' column), not {phantom:?}",
            file.display()
        );
    }
    let recorded = &parsed.protocol.acquisition;
    // a number column the file holds text in is refused, unless the value is given
    let given_for = |column: &str| match column {
        "KVP" => given.kvp.is_some(),
        "SliceThickness" => given.slice_thickness.is_some(),
        _ => false,
    };
    if let Some((column, v)) = parsed
        .protocol
        .not_numbers
        .iter()
        .find(|(c, _)| !given_for(c))
    {
        bail!("{}: {column} {v:?} is not a number", file.display());
    }
    let from_file = recorded.protocol();
    let protocol = Protocol {
        kvp: given.kvp.or(from_file.kvp),
        kernel: given.kernel.or(from_file.kernel),
        slice_thickness_mm: given.slice_thickness.or(from_file.slice_thickness_mm),
    };
    let (scanner_id, label) = resolve_scanner(store, scanner).await?;
    let actor = crate::actions::Actor::command_line();
    let b = NewBaseline {
        scanner_id: scanner_id.clone(),
        scanner_label: Some(label),
        manufacturer: given.manufacturer.or_else(|| recorded.manufacturer.clone()),
        model: given
            .model
            .or_else(|| recorded.manufacturer_model_name.clone()),
        phantom_id: phantom.to_string(),
        protocol_key: protocol.key(fields),
        kvp: protocol.kvp,
        kernel: protocol.kernel.clone(),
        slice_thickness_mm: protocol.slice_thickness_mm,
        source: format!("import {}", file.display()),
        run_id: None,
        provisional: false,
        note: given.note,
        set_by: Some(actor.name.clone()),
        entries: parsed
            .baseline
            .entries
            .iter()
            .map(NewBaselineEntry::from)
            .collect(),
    };
    let id = store.insert_baseline(&b).await?;
    let said = format!(
        "baseline #{id} imported from {} for scanner {scanner_id}, phantom {phantom}, {}",
        file.display(),
        protocol.describe()
    );
    store
        .record_audit(&actor.entry(
            "baseline.import",
            format!("baseline {id}"),
            Some(said.clone()),
        ))
        .await?;
    println!("{said}");
    if fields.iter().any(|f| match f {
        ProtocolField::Kvp => protocol.kvp.is_none(),
        ProtocolField::Kernel => protocol.kernel.is_none(),
        ProtocolField::SliceThickness => protocol.slice_thickness_mm.is_none(),
    }) {
        eprintln!(
            "hu-red: note: the protocol is incomplete ({}); runs are matched to it only as the \
             closest baseline. Give --kvp, --kernel and --slice-thickness to match exactly.",
            protocol.key(fields)
        );
    }
    print_one(store, id, json).await
}

/// The scanner id a `--scanner` value names: an id or label seen in runs or baselines, else
/// the value itself (with a note: baselines match runs by DeviceSerialNumber, else StationName).
async fn resolve_scanner(store: &Store, scanner: &str) -> anyhow::Result<(String, String)> {
    let s = scanner.trim();
    if s.is_empty() {
        bail!("--scanner must not be empty");
    }
    for r in store.list_runs(1000).await? {
        let (Some(id), label) = (r.identity.scanner_id.as_deref(), r.scanner.as_deref()) else {
            continue;
        };
        if id.eq_ignore_ascii_case(s) || label.is_some_and(|l| l.eq_ignore_ascii_case(s)) {
            return Ok((id.to_string(), label.unwrap_or(id).to_string()));
        }
    }
    let known = store
        .list_baselines(&BaselineFilter {
            scanner: Some(s.to_string()),
            history: true,
            ..BaselineFilter::default()
        })
        .await?;
    if let Some(b) = known.first() {
        return Ok((
            b.scanner_id.clone(),
            b.scanner_label.clone().unwrap_or(b.scanner_id.clone()),
        ));
    }
    eprintln!(
        "hu-red: note: no run of a scanner {s:?} yet; this baseline applies to series whose \
         DeviceSerialNumber (or, without one, StationName) is {s:?}"
    );
    Ok((s.to_string(), s.to_string()))
}

async fn print_one(store: &Store, id: i64, json: bool) -> anyhow::Result<()> {
    let b = store
        .get_baseline(id)
        .await?
        .ok_or_else(|| anyhow!("baseline #{id} vanished"))?;
    print_baselines(&[b], json, &[])
}

/// Audit entries `baseline history` reads (the newest; a baseline's are shown under it).
const HISTORY_AUDIT_ROWS: u32 = 100_000;

async fn list(
    store: &Store,
    filter: Filter,
    config: &crate::config::Config,
    history: bool,
    json: bool,
) -> anyhow::Result<()> {
    // `--phantom catphan_604` also lists the family's legacy baselines that serve it;
    // `--phantom catphan_ctp404` every variant's. A site file that cannot be read only loses
    // that widening (listing needs no definitions).
    let phantom_ids = match &filter.phantom {
        Some(p) => match PhantomSet::load(config.qa.phantom_config.as_deref()) {
            Ok(set) => set.baseline_ids(p),
            Err(_) => vec![p.clone()],
        },
        None => Vec::new(),
    };
    let all = store
        .list_baselines(&BaselineFilter {
            scanner: filter.scanner,
            phantom_ids,
            history,
        })
        .await?;
    if all.is_empty() && !json {
        println!(
            "no {}baselines{}",
            if history { "" } else { "active " },
            if history {
                ""
            } else {
                " (set one with `hu-red baseline set --run ID` or `hu-red baseline import`)"
            }
        );
        return Ok(());
    }
    // the history shows, under each baseline, who set, confirmed or imported it and from where
    let audit = if history && !json {
        store.audit_log(HISTORY_AUDIT_ROWS).await?
    } else {
        Vec::new()
    };
    print_baselines(&all, json, &audit)
}

/// The baselines, each with its audit entries among `audit` (oldest first).
fn print_baselines(all: &[BaselineRow], json: bool, audit: &[AuditRow]) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(all)?);
        return Ok(());
    }
    for b in all {
        let state = match (b.superseded_at, b.provisional) {
            (Some(t), _) => format!(
                "superseded {}{}",
                crate::report::utc_date_of_ms(t),
                b.superseded_by
                    .map(|n| format!(" by #{n}"))
                    .unwrap_or_default()
            ),
            (None, true) => "ACTIVE, PROVISIONAL (confirm: hu-red baseline set --run ID)".into(),
            (None, false) => "active".into(),
        };
        let protocol = b.protocol();
        println!(
            "baseline #{} — scanner {}{} — phantom {} — {} — {}",
            b.id,
            b.scanner_label.as_deref().unwrap_or(&b.scanner_id),
            if b.scanner_label
                .as_deref()
                .is_some_and(|l| l != b.scanner_id)
            {
                format!(" ({})", b.scanner_id)
            } else {
                String::new()
            },
            b.phantom_id,
            protocol.describe(),
            state
        );
        println!(
            "  source: {}; set {}{}{}",
            b.source,
            crate::report::utc_date_of_ms(b.created_at),
            b.set_by
                .as_deref()
                .map(|who| format!(" by {who}"))
                .unwrap_or_default(),
            b.note
                .as_deref()
                .map(|n| format!("; note: {n}"))
                .unwrap_or_default()
        );
        let target = format!("baseline {}", b.id);
        for a in audit
            .iter()
            .rev()
            .filter(|a| a.entry.target.as_deref() == Some(target.as_str()))
        {
            let e = &a.entry;
            println!(
                "  audit: {} {} by {}{}{}",
                crate::report::utc_timestamp_of_ms(e.at),
                e.action,
                e.user_name,
                e.address
                    .as_deref()
                    .map(|ad| format!(" from {ad}"))
                    .unwrap_or_default(),
                e.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
        println!("  {:<24} {:>9} {:>7}", "material", "HU", "RED");
        for e in &b.entries {
            println!(
                "  {:<24} {:>9} {:>7}",
                e.insert,
                fixed(e.hu_mean, 1),
                fixed(e.red, 3)
            );
        }
        println!();
    }
    Ok(())
}
