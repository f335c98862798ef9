//! Service configuration (`hu-red serve`): `config/default.toml` (embedded) < `--config FILE` <
//! environment `HURED__SECTION__KEY`, deserialised strictly (unknown keys are refused, naming the
//! key) and validated with errors that name the key (`scp.ae_title: ...`).
//!
//! Lists can be given by environment as comma-separated text
//! (`HURED__SCP__ALLOWED_CALLING_AES=CT01,PACS`). The SMTP password is never a key: it comes from
//! the environment variable [`SMTP_PASSWORD_ENV`] only.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded defaults (also the documentation of every key).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variable prefix: `HURED__SCP__BIND` sets `scp.bind`.
pub const ENV_PREFIX: &str = "HURED";

/// The only place the SMTP password is read from.
pub const SMTP_PASSWORD_ENV: &str = "HURED_SMTP_PASSWORD";

/// Sender address used by the file transport when `mail.from` is empty.
pub const DEFAULT_FILE_SENDER: &str = "hu-red@localhost";

/// Bounds accepted for `scp.max_pdu` (bytes). DICOM itself allows any 32-bit length (0 = no
/// limit) and DCMTK caps at 131072; these bounds keep a receive buffer per association sane.
pub const MAX_PDU_RANGE: std::ops::RangeInclusive<u32> = 4096..=1_048_576;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub scp: ScpConfig,
    pub series: SeriesConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub qa: QaConfig,
    #[serde(default)]
    pub scanners: Vec<ScannerConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScpConfig {
    pub ae_title: String,
    pub bind: String,
    /// Empty = any calling AE title.
    #[serde(deserialize_with = "string_list")]
    pub allowed_calling_aes: Vec<String>,
    pub max_associations: usize,
    pub max_pdu: u32,
    pub read_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    pub stable_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Serialised (e.g. to print the configuration in force) without its password.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub from: String,
    #[serde(deserialize_with = "string_list")]
    pub to: Vec<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_tls: SmtpTls,
    pub smtp_user: Option<String>,
    /// Extra CA certificate(s) (PEM) trusted for the SMTP server's TLS certificate, besides the
    /// system's (an internal CA, or a self-signed test server).
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_timeout_seconds: u64,
    /// Delivery attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one, up to
    /// `retry_max_seconds`.
    pub retry_initial_seconds: u64,
    pub retry_max_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaConfig {
    pub phantom: String,
    pub phantom_config: Option<PathBuf>,
    pub slab_mm: f64,
    /// 0 = the number of CPU cores.
    pub workers: usize,
    pub queue_capacity: usize,
    /// The first run of a scanner, phantom and protocol without a baseline becomes its
    /// provisional baseline.
    pub auto_baseline: bool,
    /// What makes two acquisitions "the same protocol" for baselines: "kvp", "kernel",
    /// "slice_thickness" (any subset, in any order).
    #[serde(deserialize_with = "string_list")]
    pub protocol_fields: Vec<String>,
    /// Material name → constancy tolerance in HU, over the phantom definition's value.
    #[serde(default)]
    pub tolerances: std::collections::BTreeMap<String, f64>,
    /// Runs shown in a report's trend plot (this one included).
    pub trend_runs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    pub name: String,
    pub calling_ae: Option<String>,
    pub station_name: Option<String>,
    pub phantom: Option<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub recipients: Vec<String>,
}

/// One invalid value: the key (`scp.ae_title`, `scanners[1].recipients`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the configuration file {} is not valid TOML: {source}", path.display())]
    Syntax {
        path: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    /// Unknown key, wrong type, bad enum value (config-rs names the key and where it came from).
    #[error(
        "invalid configuration ({layers}): {source}. See config/default.toml for every key and \
         its allowed values"
    )]
    Load {
        layers: String,
        #[source]
        source: config::ConfigError,
    },
    #[error("invalid configuration: {}", join_problems(.problems))]
    Invalid { problems: Vec<Problem> },
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConfigError {
    /// The validation problems (empty for load errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

impl Config {
    /// `config/default.toml` (embedded) < `file` (if given) < environment `HURED__SECTION__KEY`,
    /// then [`Config::validate`]. Returns a validated configuration.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, None)
    }

    /// As [`Config::load`], with the environment taken from `env` instead of the process (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Config, ConfigError> {
        use config::{Environment, File, FileFormat};

        let mut builder =
            config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        let mut layers = vec!["defaults".to_string()];
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            // Parse the file alone first so that a syntax error names it.
            config::Config::builder()
                .add_source(File::from_str(&text, FileFormat::Toml))
                .build()
                .map_err(|source| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    source,
                })?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
            layers.push(format!("file {}", path.display()));
        }
        // No `try_parsing`: it would turn an AE title such as "007" into the number 7. Numbers
        // are parsed from text when deserialised; lists accept comma-separated text.
        let environment = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(env);
        builder = builder.add_source(environment);
        layers.push(format!("environment {ENV_PREFIX}__SECTION__KEY"));
        let layers = layers.join(" < ");

        let merged = builder.build().map_err(|source| ConfigError::Load {
            layers: layers.clone(),
            source,
        })?;
        let mut cfg: Config = merged
            .try_deserialize()
            .map_err(|source| ConfigError::Load { layers, source })?;
        cfg.normalise();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parse one TOML document over the defaults (no file, no environment); validated.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        use config::{File, FileFormat};
        let layers = "defaults < TOML text".to_string();
        let merged = config::Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()
            .map_err(|source| ConfigError::Load {
                layers: layers.clone(),
                source,
            })?;
        let mut cfg: Config = merged
            .try_deserialize()
            .map_err(|source| ConfigError::Load { layers, source })?;
        cfg.normalise();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Trim list entries and drop empty ones (`HURED__MAIL__TO=""` means an empty list).
    fn normalise(&mut self) {
        fn clean(list: &mut Vec<String>) {
            for s in list.iter_mut() {
                *s = s.trim().to_string();
            }
            list.retain(|s| !s.is_empty());
        }
        clean(&mut self.scp.allowed_calling_aes);
        clean(&mut self.mail.to);
        for s in &mut self.scanners {
            clean(&mut s.recipients);
        }
        for opt in [&mut self.mail.smtp_host, &mut self.mail.smtp_user] {
            if opt.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *opt = None;
            }
        }
    }

    /// Check every value; the error lists each problem with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();

        // [scp]
        if let Err(m) = check_ae_title(&self.scp.ae_title) {
            p.push("scp.ae_title", m);
        }
        if let Err(e) = self.scp.bind.parse::<SocketAddr>() {
            p.push(
                "scp.bind",
                format!(
                    "{:?} is not an IP:port socket address ({e}); example \"0.0.0.0:11112\"",
                    self.scp.bind
                ),
            );
        }
        for (i, ae) in self.scp.allowed_calling_aes.iter().enumerate() {
            if let Err(m) = check_ae_title(ae) {
                p.push(format!("scp.allowed_calling_aes[{i}]"), m);
            }
        }
        if self.scp.max_associations == 0 {
            p.push("scp.max_associations", "must be at least 1".to_string());
        }
        if !MAX_PDU_RANGE.contains(&self.scp.max_pdu) {
            p.push(
                "scp.max_pdu",
                format!(
                    "{} bytes is outside {}..={} (DCMTK senders use at most 131072)",
                    self.scp.max_pdu,
                    MAX_PDU_RANGE.start(),
                    MAX_PDU_RANGE.end()
                ),
            );
        }
        if self.scp.read_timeout_seconds == 0 {
            p.push(
                "scp.read_timeout_seconds",
                "must be more than 0".to_string(),
            );
        }
        if self.scp.idle_timeout_seconds == 0 {
            p.push(
                "scp.idle_timeout_seconds",
                "must be more than 0".to_string(),
            );
        }

        // [series]
        if self.series.stable_seconds < 1 {
            p.push("series.stable_seconds", "must be at least 1".to_string());
        }

        // [storage]
        if self.storage.data_dir.as_os_str().is_empty() {
            p.push("storage.data_dir", "must not be empty".to_string());
        }

        // [database]
        if let Err(m) = check_database_url(&self.database.url) {
            p.push("database.url", m);
        }
        if self.database.max_connections == 0 {
            p.push("database.max_connections", "must be at least 1".to_string());
        }

        // [mail]
        if self.mail.transport == MailTransport::Smtp {
            if self.mail.smtp_host.is_none() {
                p.push(
                    "mail.smtp_host",
                    "is required when mail.transport = \"smtp\"".to_string(),
                );
            }
            if self.mail.from.trim().is_empty() {
                p.push(
                    "mail.from",
                    "is required when mail.transport = \"smtp\"".to_string(),
                );
            }
        }
        if let Some(host) = &self.mail.smtp_host {
            if host
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == ':')
            {
                p.push(
                    "mail.smtp_host",
                    format!("{host:?} is not a host name (give the port in mail.smtp_port)"),
                );
            }
        }
        if self.mail.smtp_port == Some(0) {
            p.push("mail.smtp_port", "must be 1..=65535".to_string());
        }
        if self.mail.transport == MailTransport::Smtp
            && self.mail.to.is_empty()
            && self.scanners.iter().all(|s| s.recipients.is_empty())
        {
            p.push(
                "mail.to",
                "is empty and no [[scanners]] entry has recipients: with mail.transport = \
                 \"smtp\" no report could be delivered"
                    .to_string(),
            );
        }
        if let Some(ca) = &self.mail.smtp_ca_file {
            if !ca.is_file() {
                p.push(
                    "mail.smtp_ca_file",
                    format!("{} is not a readable file", ca.display()),
                );
            }
        }
        if self.mail.smtp_timeout_seconds == 0 {
            p.push(
                "mail.smtp_timeout_seconds",
                "must be at least 1".to_string(),
            );
        }
        if self.mail.max_attempts == 0 {
            p.push("mail.max_attempts", "must be at least 1".to_string());
        }
        if self.mail.retry_initial_seconds == 0 {
            p.push(
                "mail.retry_initial_seconds",
                "must be at least 1".to_string(),
            );
        }
        if self.mail.retry_max_seconds < self.mail.retry_initial_seconds {
            p.push(
                "mail.retry_max_seconds",
                format!(
                    "{} s is less than mail.retry_initial_seconds ({} s)",
                    self.mail.retry_max_seconds, self.mail.retry_initial_seconds
                ),
            );
        }
        if !self.mail.from.trim().is_empty() {
            if let Err(m) = check_address(&self.mail.from) {
                p.push("mail.from", m);
            }
        }
        for (i, a) in self.mail.to.iter().enumerate() {
            if let Err(m) = check_address(a) {
                p.push(format!("mail.to[{i}]"), m);
            }
        }

        // [qa]
        let known_set = match crate::phantom::PhantomSet::load(self.qa.phantom_config.as_deref()) {
            Ok(set) => Some(set),
            Err(e) => {
                p.push("qa.phantom_config", e.to_string());
                None
            }
        };
        // Definitions and family ids (`catphan_ctp404`: any Catphan variant).
        let known: Option<Vec<String>> = known_set.as_ref().map(|set| set.known_ids());
        if let Some(known) = &known {
            if let Err(m) = check_phantom(&self.qa.phantom, known) {
                p.push("qa.phantom", m);
            }
        }
        if !(self.qa.slab_mm.is_finite() && self.qa.slab_mm > 0.0) {
            p.push(
                "qa.slab_mm",
                format!("{} mm: must be more than 0", self.qa.slab_mm),
            );
        }
        if self.qa.queue_capacity == 0 {
            p.push("qa.queue_capacity", "must be at least 1".to_string());
        }
        if let Err(m) = crate::identity::ProtocolField::parse_list(&self.qa.protocol_fields) {
            p.push("qa.protocol_fields", m);
        }
        for (name, t) in &self.qa.tolerances {
            if !(t.is_finite() && *t > 0.0) {
                p.push(
                    format!("qa.tolerances.{name}"),
                    format!("{t} HU: must be more than 0"),
                );
            }
        }
        if let Some(known) = &known_set {
            let mut set = known.clone();
            if let Err(m) = set.apply_tolerances(&self.qa.tolerances) {
                if !m.contains("more than 0") {
                    p.push("qa.tolerances", m);
                }
            }
        }
        if self.qa.trend_runs < 2 {
            p.push("qa.trend_runs", "must be at least 2".to_string());
        }

        // [[scanners]]
        let mut names = BTreeSet::new();
        for (i, s) in self.scanners.iter().enumerate() {
            let key = |k: &str| format!("scanners[{i}].{k}");
            if s.name.trim().is_empty() {
                p.push(key("name"), "must not be empty".to_string());
            } else if !names.insert(s.name.trim().to_string()) {
                p.push(
                    key("name"),
                    format!("{:?} is used by an earlier scanner entry", s.name),
                );
            }
            if s.calling_ae.is_none() && s.station_name.is_none() {
                p.push(
                    key("calling_ae"),
                    "give calling_ae or station_name (or both) so that series can be matched"
                        .to_string(),
                );
            }
            if let Some(ae) = &s.calling_ae {
                if let Err(m) = check_ae_title(ae) {
                    p.push(key("calling_ae"), m);
                }
            }
            if let Some(st) = &s.station_name {
                if st.trim().is_empty() {
                    p.push(key("station_name"), "must not be empty".to_string());
                }
            }
            if let (Some(ph), Some(known)) = (&s.phantom, &known) {
                if let Err(m) = check_phantom(ph, known) {
                    p.push(key("phantom"), m);
                }
            }
            for (j, a) in s.recipients.iter().enumerate() {
                if let Err(m) = check_address(a) {
                    p.push(format!("scanners[{i}].recipients[{j}]"), m);
                }
            }
        }

        p.into_result()
    }

    /// The scanner entry a series belongs to: the first whose calling AE title equals
    /// `calling_ae` or whose station name equals `station_name` (both compared after trimming
    /// spaces; AE titles are case-sensitive in DICOM).
    pub fn scanner_for(
        &self,
        calling_ae: Option<&str>,
        station_name: Option<&str>,
    ) -> Option<&ScannerConfig> {
        let ae = calling_ae.map(str::trim);
        let st = station_name.map(str::trim);
        self.scanners.iter().find(|s| {
            (s.calling_ae.is_some() && s.calling_ae.as_deref().map(str::trim) == ae)
                || (s.station_name.is_some() && s.station_name.as_deref().map(str::trim) == st)
        })
    }
}

impl ScpConfig {
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_seconds)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }
}

impl SeriesConfig {
    pub fn stable_age(&self) -> Duration {
        Duration::from_secs(self.stable_seconds)
    }
}

impl MailConfig {
    /// The SMTP port in force: `smtp_port`, else 25 / 587 / 465 for none / starttls / tls.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// The sender address: `from`, or [`DEFAULT_FILE_SENDER`] when empty.
    pub fn from_address(&self) -> &str {
        let f = self.from.trim();
        if f.is_empty() {
            DEFAULT_FILE_SENDER
        } else {
            f
        }
    }

    /// The SMTP password from [`SMTP_PASSWORD_ENV`], if set and not empty.
    pub fn smtp_password_from_env() -> Option<String> {
        std::env::var(SMTP_PASSWORD_ENV)
            .ok()
            .filter(|s| !s.is_empty())
    }
}

impl QaConfig {
    /// Worker count in force: `workers`, or the number of CPU cores when 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: String) {
        self.0.push(Problem {
            key: key.into(),
            message,
        });
    }
    fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems: self.0 })
        }
    }
}

/// DICOM AE title (VR AE): 1-16 characters of the default repertoire (printable ASCII, G0),
/// no backslash, no control characters, not all spaces. Leading/trailing spaces are not
/// significant in DICOM, so they are refused here rather than silently compared.
pub fn check_ae_title(ae: &str) -> Result<(), String> {
    if ae.is_empty() {
        return Err("must not be empty (1-16 characters)".to_string());
    }
    if ae.len() > 16 {
        return Err(format!(
            "{ae:?} has {} characters; an AE title has at most 16",
            ae.chars().count()
        ));
    }
    if let Some(c) = ae.chars().find(|c| !(' '..='~').contains(c) || *c == '\\') {
        return Err(format!(
            "{ae:?} contains {c:?}; an AE title uses printable ASCII only (no backslash, no \
             control characters)"
        ));
    }
    if ae.trim().is_empty() {
        return Err("must not be all spaces".to_string());
    }
    if ae.trim() != ae {
        return Err(format!(
            "{ae:?} has leading or trailing spaces (not significant in DICOM); remove them"
        ));
    }
    Ok(())
}

fn check_database_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or("");
        if path.is_empty() {
            return Err(
                "a SQLite URL needs a file path, e.g. \"sqlite://./data/hu-red.sqlite\"".into(),
            );
        }
        Ok(())
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(())
    } else {
        // Do not echo the URL: it may hold a password.
        let scheme = url.split(':').next().unwrap_or("");
        Err(format!(
            "unsupported scheme {scheme:?}: use \"sqlite://PATH\" or \"postgres://USER@HOST/DB\""
        ))
    }
}

/// A plain address `local@domain` (no display name, no spaces or list separators).
pub fn check_address(a: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{a:?} is not an e-mail address ({why}); example \"physics@hospital.example\""
        ))
    };
    let Some((local, domain)) = a.split_once('@') else {
        return bad("no @");
    };
    if local.is_empty() || domain.is_empty() {
        return bad("empty part before or after @");
    }
    if domain.contains('@') {
        return bad("more than one @");
    }
    if a.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
    {
        return bad("spaces, quotes, <>, commas or semicolons");
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return bad("malformed domain");
    }
    Ok(())
}

fn check_phantom(id: &str, known: &[String]) -> Result<(), String> {
    if id == "auto" || known.iter().any(|k| k == id) {
        Ok(())
    } else {
        Err(format!(
            "unknown phantom {id:?}; use \"auto\" or one of: {} (or define it in qa.phantom_config)",
            known.join(", ")
        ))
    }
}

fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::store::redact_url(url))
}

/// A list of strings from a TOML array or from comma-separated text (environment variables).
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of strings or comma-separated text")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split(',').map(|s| s.trim().to_string()).collect())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    /// A valid configuration with `edit` applied, then validated.
    fn invalid_with(edit: impl FnOnce(&mut Config)) -> Vec<Problem> {
        let mut c = defaults();
        edit(&mut c);
        match c.validate() {
            Ok(()) => panic!("expected a validation error"),
            Err(e) => e.problems().to_vec(),
        }
    }

    fn defaults() -> Config {
        Config::load_with_env(None, env(&[])).unwrap()
    }

    #[test]
    fn qa_baseline_keys() {
        let c = defaults();
        assert!(!c.qa.auto_baseline);
        assert_eq!(c.qa.protocol_fields, ["kvp", "kernel", "slice_thickness"]);
        assert!(c.qa.tolerances.is_empty());
        assert_eq!(c.qa.trend_runs, 12);
        assert_problem(
            &invalid_with(|c| c.qa.protocol_fields = vec!["kv".into()]),
            "qa.protocol_fields",
            "unknown field",
        );
        assert_problem(
            &invalid_with(|c| {
                c.qa.tolerances.insert("watr".into(), 4.0);
            }),
            "qa.tolerances",
            "no phantom has a material named \"watr\"",
        );
        assert_problem(
            &invalid_with(|c| {
                c.qa.tolerances.insert("water".into(), -1.0);
            }),
            "qa.tolerances.water",
            "more than 0",
        );
        let mut ok = defaults();
        ok.qa.tolerances.insert("Water".into(), 3.0);
        assert!(ok.validate().is_ok());
        let text = "[qa]\nauto_baseline = true\nprotocol_fields = [\"kvp\"]\n\
                    [qa.tolerances]\nwater = 3.5\n";
        let c = Config::from_toml_str(text).unwrap();
        assert!(c.qa.auto_baseline);
        assert_eq!(c.qa.tolerances.get("water"), Some(&3.5));
    }

    fn assert_problem(problems: &[Problem], key: &str, needle: &str) {
        assert!(
            problems
                .iter()
                .any(|p| p.key == key && p.message.contains(needle)),
            "expected a problem for {key} containing {needle:?}, got {problems:?}"
        );
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = defaults();
        assert_eq!(c.scp.ae_title, "HURED_QA");
        assert_eq!(c.scp.bind, "0.0.0.0:11112");
        assert!(c.scp.allowed_calling_aes.is_empty());
        assert_eq!(c.scp.max_associations, 16);
        assert_eq!(c.scp.max_pdu, 131072);
        assert_eq!(c.scp.read_timeout_seconds, 30);
        assert_eq!(c.scp.idle_timeout_seconds, 120);
        assert_eq!(c.series.stable_seconds, 20);
        assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database.url, "sqlite://./data/hu-red.sqlite");
        assert_eq!(c.database.max_connections, 8);
        assert_eq!(c.mail.transport, MailTransport::File);
        assert_eq!(c.mail.from, "");
        assert_eq!(c.mail.from_address(), DEFAULT_FILE_SENDER);
        assert!(c.mail.to.is_empty());
        assert_eq!(c.mail.smtp_host, None);
        assert_eq!(c.mail.smtp_port, None);
        assert_eq!(c.mail.smtp_tls, SmtpTls::Starttls);
        assert_eq!(c.mail.port(), 587);
        assert_eq!(c.mail.smtp_user, None);
        assert_eq!(c.qa.phantom, "auto");
        assert_eq!(c.qa.phantom_config, None);
        assert_eq!(c.qa.slab_mm, 5.0);
        assert_eq!(c.qa.workers, 0);
        assert!(c.qa.worker_count() >= 1);
        assert_eq!(c.qa.queue_capacity, 64);
        assert!(c.scanners.is_empty());
    }

    #[test]
    fn commented_scanner_examples_are_valid() {
        // The [[scanners]] examples of default.toml, uncommented, must load.
        let examples: String = DEFAULT_TOML
            .lines()
            .skip_while(|l| !l.starts_with("# [[scanners]]"))
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml_str(&examples).unwrap();
        assert_eq!(c.scanners.len(), 2);
        assert_eq!(c.scanners[0].calling_ae.as_deref(), Some("CT_SIM01"));
        assert_eq!(c.scanners[1].phantom.as_deref(), Some("catphan_ctp404"));
        // and the commented SMTP keys too
        let smtp: String = DEFAULT_TOML
            .lines()
            .filter(|l| l.starts_with("# smtp_") || l.starts_with("# phantom_config"))
            .map(|l| l.trim_start_matches("# "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(smtp.contains("smtp_host") && smtp.contains("smtp_user"));
    }

    #[test]
    fn precedence_default_file_env() {
        let f = write_file(
            "[scp]\nae_title = \"FROM_FILE\"\nbind = \"127.0.0.1:4000\"\n\
             [series]\nstable_seconds = 45\n",
        );
        // file over defaults
        let c = Config::load_with_env(Some(f.path()), env(&[])).unwrap();
        assert_eq!(c.scp.ae_title, "FROM_FILE");
        assert_eq!(c.scp.bind, "127.0.0.1:4000");
        assert_eq!(c.series.stable_seconds, 45);
        assert_eq!(c.scp.max_pdu, 131072, "untouched keys keep their defaults");

        // env over file over defaults
        let c = Config::load_with_env(
            Some(f.path()),
            env(&[
                ("HURED__SCP__AE_TITLE", "FROM_ENV"),
                ("HURED__SCP__MAX_PDU", "65536"),
                ("HURED__DATABASE__URL", "postgres://u@h/db"),
                ("HURED__QA__SLAB_MM", "2.5"),
                ("HURED__MAIL__SMTP_TLS", "tls"),
                // not ours: one underscore, different prefix
                ("HURED_SMTP_PASSWORD", "secret"),
                ("HUREDX__SCP__BIND", "junk"),
            ]),
        )
        .unwrap();
        assert_eq!(c.scp.ae_title, "FROM_ENV");
        assert_eq!(
            c.scp.bind, "127.0.0.1:4000",
            "file value stays when env is silent"
        );
        assert_eq!(c.scp.max_pdu, 65536);
        assert_eq!(c.series.stable_seconds, 45);
        assert_eq!(c.database.url, "postgres://u@h/db");
        assert_eq!(c.qa.slab_mm, 2.5);
        assert_eq!(c.mail.smtp_tls, SmtpTls::Tls);
        assert_eq!(c.mail.port(), 465);

        // env over defaults without a file
        let c =
            Config::load_with_env(None, env(&[("HURED__SERIES__STABLE_SECONDS", "7")])).unwrap();
        assert_eq!(c.series.stable_seconds, 7);
        assert_eq!(c.scp.ae_title, "HURED_QA");
    }

    #[test]
    fn env_lists_are_comma_separated_and_ae_titles_stay_text() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("HURED__SCP__ALLOWED_CALLING_AES", "CT01, PACS ,007"),
                ("HURED__MAIL__TO", "a@x.org,b@y.org"),
                ("HURED__SCP__AE_TITLE", "007"),
            ]),
        )
        .unwrap();
        assert_eq!(c.scp.allowed_calling_aes, ["CT01", "PACS", "007"]);
        assert_eq!(c.mail.to, ["a@x.org", "b@y.org"]);
        assert_eq!(c.scp.ae_title, "007");

        let c =
            Config::load_with_env(None, env(&[("HURED__SCP__ALLOWED_CALLING_AES", "")])).unwrap();
        assert!(
            c.scp.allowed_calling_aes.is_empty(),
            "empty text = empty list"
        );

        // a file list is a TOML array
        let f = write_file("[scp]\nallowed_calling_aes = [\"A\", \"B\"]\n");
        let c = Config::load_with_env(Some(f.path()), env(&[])).unwrap();
        assert_eq!(c.scp.allowed_calling_aes, ["A", "B"]);
    }

    #[test]
    fn unknown_keys_are_rejected_naming_the_key() {
        let f = write_file("[scp]\nae_titel = \"X\"\n");
        let e = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("ae_titel") && m.contains("for key `scp`"), "{m}");

        let e = Config::load_with_env(None, env(&[("HURED__SCP__BNID", "1.2.3.4:5")])).unwrap_err();
        assert!(e.to_string().contains("unknown field `bnid`"), "{e}");

        let f = write_file("[scpp]\nbind = \"1.2.3.4:5\"\n");
        let e = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert!(e.to_string().contains("scpp"), "{e}");

        let f = write_file("[[scanners]]\nname = \"a\"\ncalling_ae = \"A\"\nrecipient = []\n");
        let e = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert!(e.to_string().contains("recipient"), "{e}");
    }

    #[test]
    fn wrong_types_and_enum_values_name_the_key() {
        let e = Config::load_with_env(None, env(&[("HURED__SCP__MAX_PDU", "big")])).unwrap_err();
        assert!(e.to_string().contains("scp.max_pdu"), "{e}");
        let e =
            Config::load_with_env(None, env(&[("HURED__MAIL__TRANSPORT", "pigeon")])).unwrap_err();
        assert!(
            e.to_string().contains("pigeon") && e.to_string().contains("mail.transport"),
            "{e}"
        );
        let e = Config::load_with_env(None, env(&[("HURED__MAIL__SMTP_TLS", "ssl")])).unwrap_err();
        assert!(
            e.to_string().contains("ssl") && e.to_string().contains("mail.smtp_tls"),
            "{e}"
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let e = Config::load_with_env(Some(Path::new("/nonexistent/hu-red.toml")), env(&[]))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e.to_string().contains("/nonexistent/hu-red.toml"), "{e}");
        let f = write_file("[scp\nae_title = 1\n");
        let e = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&f.path().display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn ae_title_rules() {
        assert!(check_ae_title("HURED_QA").is_ok());
        assert!(check_ae_title("A").is_ok());
        assert!(check_ae_title("SIXTEEN_CHARS_OK").is_ok());
        assert!(check_ae_title("WITH SPACE").is_ok());
        for (bad, needle) in [
            ("", "empty"),
            ("SEVENTEEN_CHARS_X", "at most 16"),
            ("A\\B", "backslash"),
            ("A\tB", "control"),
            ("ÄRZTE", "printable ASCII"),
            ("    ", "all spaces"),
            (" LEAD", "leading or trailing"),
        ] {
            let m = check_ae_title(bad).unwrap_err();
            assert!(m.contains(needle), "{bad:?}: {m}");
        }
        let p = invalid_with(|c| c.scp.ae_title = "SEVENTEEN_CHARS_X".into());
        assert_problem(&p, "scp.ae_title", "at most 16");
        let p = invalid_with(|c| c.scp.allowed_calling_aes = vec!["OK".into(), "A\\B".into()]);
        assert_problem(&p, "scp.allowed_calling_aes[1]", "backslash");
        // the whole message names the key, too
        let mut c = defaults();
        c.scp.ae_title = "   ".into();
        let m = c.validate().unwrap_err().to_string();
        assert!(m.contains("scp.ae_title: must not be all spaces"), "{m}");
    }

    #[test]
    fn scp_value_rules() {
        assert_problem(
            &invalid_with(|c| c.scp.bind = "localhost".into()),
            "scp.bind",
            "socket address",
        );
        assert_problem(
            &invalid_with(|c| c.scp.bind = "0.0.0.0:99999".into()),
            "scp.bind",
            "socket address",
        );
        assert_problem(
            &invalid_with(|c| c.scp.max_pdu = 4095),
            "scp.max_pdu",
            "4096..=1048576",
        );
        assert_problem(
            &invalid_with(|c| c.scp.max_pdu = 1_048_577),
            "scp.max_pdu",
            "outside",
        );
        assert_problem(
            &invalid_with(|c| c.scp.max_associations = 0),
            "scp.max_associations",
            "at least 1",
        );
        assert_problem(
            &invalid_with(|c| c.scp.read_timeout_seconds = 0),
            "scp.read_timeout_seconds",
            "more than 0",
        );
        assert_problem(
            &invalid_with(|c| c.scp.idle_timeout_seconds = 0),
            "scp.idle_timeout_seconds",
            "more than 0",
        );
        let mut c = defaults();
        c.scp.bind = "[::1]:104".into();
        c.scp.max_pdu = 4096;
        assert!(c.validate().is_ok());
        c.scp.max_pdu = 1_048_576;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn series_storage_database_rules() {
        assert_problem(
            &invalid_with(|c| c.series.stable_seconds = 0),
            "series.stable_seconds",
            "at least 1",
        );
        assert_problem(
            &invalid_with(|c| c.storage.data_dir = PathBuf::new()),
            "storage.data_dir",
            "empty",
        );
        assert_problem(
            &invalid_with(|c| c.database.max_connections = 0),
            "database.max_connections",
            "at least 1",
        );
        let p = invalid_with(|c| c.database.url = "mysql://root:hunter2@db/x".into());
        assert_problem(&p, "database.url", "unsupported scheme \"mysql\"");
        assert!(
            !format!("{p:?}").contains("hunter2"),
            "the password must not be echoed"
        );
        assert_problem(
            &invalid_with(|c| c.database.url = "sqlite://".into()),
            "database.url",
            "file path",
        );
        let mut c = defaults();
        for ok in [
            "sqlite://./x.sqlite",
            "sqlite:/abs/x.db?mode=rwc",
            "postgres://u:p@h:5432/db",
            "postgresql://h/db",
        ] {
            c.database.url = ok.into();
            assert!(c.validate().is_ok(), "{ok}");
        }
    }

    #[test]
    fn mail_rules() {
        let p = invalid_with(|c| c.mail.transport = MailTransport::Smtp);
        assert_problem(
            &p,
            "mail.smtp_host",
            "required when mail.transport = \"smtp\"",
        );
        assert_problem(&p, "mail.from", "required when mail.transport = \"smtp\"");
        let mut c = defaults();
        c.mail.transport = MailTransport::Smtp;
        c.mail.smtp_host = Some("smtp.example.org".into());
        c.mail.from = "qa@example.org".into();
        // nobody to send to
        let e = c.validate().unwrap_err();
        assert_problem(e.problems(), "mail.to", "no report could be delivered");
        c.mail.to = vec!["physics@example.org".into()];
        assert!(c.validate().is_ok());
        // retry policy and timeouts
        let mut bad = c.clone();
        bad.mail.retry_max_seconds = 1;
        bad.mail.max_attempts = 0;
        bad.mail.smtp_ca_file = Some("/nonexistent/ca.pem".into());
        let e = bad.validate().unwrap_err();
        assert_problem(e.problems(), "mail.retry_max_seconds", "less than");
        assert_problem(e.problems(), "mail.max_attempts", "at least 1");
        assert_problem(e.problems(), "mail.smtp_ca_file", "not a readable file");
        assert_problem(
            &invalid_with(|c| c.mail.from = "qa-at-example.org".into()),
            "mail.from",
            "no @",
        );
        assert_problem(
            &invalid_with(|c| c.mail.to = vec!["ok@x.org".into(), "a b@x.org".into()]),
            "mail.to[1]",
            "not an e-mail address",
        );
        assert_problem(
            &invalid_with(|c| c.mail.to = vec!["@x.org".into()]),
            "mail.to[0]",
            "empty part",
        );
        assert_problem(
            &invalid_with(|c| c.mail.smtp_host = Some("smtp.x.org:25".into())),
            "mail.smtp_host",
            "mail.smtp_port",
        );
        assert_problem(
            &invalid_with(|c| c.mail.smtp_port = Some(0)),
            "mail.smtp_port",
            "1..=65535",
        );
        // smtp_tls values are an enum: checked when loading (see wrong_types_...)
        let c = Config::from_toml_str("[mail]\nsmtp_tls = \"none\"\n").unwrap();
        assert_eq!(c.mail.port(), 25);
    }

    #[test]
    fn qa_rules() {
        assert_problem(
            &invalid_with(|c| c.qa.phantom = "cirs".into()),
            "qa.phantom",
            "unknown phantom \"cirs\"",
        );
        assert_problem(
            &invalid_with(|c| c.qa.slab_mm = 0.0),
            "qa.slab_mm",
            "more than 0",
        );
        assert_problem(
            &invalid_with(|c| c.qa.slab_mm = f64::NAN),
            "qa.slab_mm",
            "more than 0",
        );
        assert_problem(
            &invalid_with(|c| c.qa.queue_capacity = 0),
            "qa.queue_capacity",
            "at least 1",
        );
        let mut c = defaults();
        for id in crate::phantom::BUILTIN_IDS
            .into_iter()
            .chain([crate::phantom::CATPHAN_FAMILY])
        {
            c.qa.phantom = id.to_string();
            assert!(c.validate().is_ok(), "{id}");
            c.scanners = vec![ScannerConfig {
                name: "ct1".into(),
                calling_ae: Some("CT01".into()),
                station_name: None,
                phantom: Some(id.to_string()),
                recipients: vec![],
            }];
            assert!(c.validate().is_ok(), "scanners[0].phantom = {id}");
            c.scanners.clear();
        }
        // the message lists the family id with the definitions
        let p = invalid_with(|c| c.qa.phantom = "catphan".into());
        assert_problem(&p, "qa.phantom", "catphan_ctp404");
        assert_problem(&p, "qa.phantom", "gammex_1467_head");
        // a missing phantom_config file is reported under its key
        let p = invalid_with(|c| c.qa.phantom_config = Some("/nonexistent/phantoms.json".into()));
        assert_problem(&p, "qa.phantom_config", "");
    }

    #[test]
    fn phantom_defined_in_site_file_is_known() {
        // A site file that defines a new phantom id by copying a built-in definition.
        let set = crate::phantom::PhantomSet::builtin();
        let def = set.get("easycube").unwrap();
        let mut v = serde_json::to_value(def).unwrap();
        v["id"] = serde_json::Value::String("site_cube".into());
        let doc = serde_json::json!({ "phantoms": { "site_cube": v } });
        let mut f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        std::io::Write::write_all(&mut f, doc.to_string().as_bytes()).unwrap();
        let mut c = defaults();
        c.qa.phantom = "site_cube".into();
        assert_problem(
            c.validate().unwrap_err().problems(),
            "qa.phantom",
            "site_cube",
        );
        c.qa.phantom_config = Some(f.path().to_path_buf());
        c.validate().unwrap();
    }

    #[test]
    fn scanner_rules_and_matching() {
        let s = |name: &str, ae: Option<&str>, st: Option<&str>| ScannerConfig {
            name: name.into(),
            calling_ae: ae.map(Into::into),
            station_name: st.map(Into::into),
            phantom: None,
            recipients: vec![],
        };
        let p = invalid_with(|c| c.scanners = vec![s("", None, None)]);
        assert_problem(&p, "scanners[0].name", "empty");
        assert_problem(&p, "scanners[0].calling_ae", "calling_ae or station_name");
        let p =
            invalid_with(|c| c.scanners = vec![s("a", Some("A"), None), s("a", Some("B"), None)]);
        assert_problem(&p, "scanners[1].name", "earlier scanner");
        let p = invalid_with(|c| c.scanners = vec![s("a", Some("TOO_LONG_FOR_AN_AE"), None)]);
        assert_problem(&p, "scanners[0].calling_ae", "at most 16");
        let p = invalid_with(|c| {
            let mut x = s("a", Some("A"), None);
            x.phantom = Some("nope".into());
            x.recipients = vec!["bad".into()];
            c.scanners = vec![x];
        });
        assert_problem(&p, "scanners[0].phantom", "unknown phantom");
        assert_problem(&p, "scanners[0].recipients[0]", "not an e-mail address");

        let mut c = defaults();
        c.scanners = vec![s("ct1", Some("CT01"), None), s("obi", None, Some("LINAC2"))];
        c.validate().unwrap();
        assert_eq!(c.scanner_for(Some("CT01"), None).unwrap().name, "ct1");
        assert_eq!(
            c.scanner_for(Some("PACS"), Some("LINAC2 ")).unwrap().name,
            "obi"
        );
        assert!(c.scanner_for(Some("PACS"), None).is_none());
        assert!(c.scanner_for(None, None).is_none());
    }

    #[test]
    fn serialised_configuration_hides_the_database_password() {
        let mut c = defaults();
        c.database.url = "postgres://hured:s3cret@db/hured".into();
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("postgres://hured:***@db/hured"), "{text}");
        assert!(text.contains("\"transport\":\"file\""), "{text}");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let mut c = defaults();
        c.scp.max_pdu = 1;
        c.series.stable_seconds = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(e.problems().len(), 2);
        let m = e.to_string();
        assert!(
            m.contains("scp.max_pdu") && m.contains("series.stable_seconds"),
            "{m}"
        );
    }
}
