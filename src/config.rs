//! Service configuration (`hu-red serve`): `config/default.toml` (embedded) < `--config FILE` <
//! environment `HURED__SECTION__KEY`, deserialised strictly (unknown keys are refused, naming the
//! key) and validated with errors that name the key (`scp.ae_title: ...`).
//!
//! Lists can be given by environment as comma-separated text
//! (`HURED__SCP__ALLOWED_CALLING_AES=CT01,PACS`). The SMTP password is never a key: it comes from
//! the environment variable [`SMTP_PASSWORD_ENV`] only.

mod validate;

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashMap;
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
    pub retention: RetentionConfig,
    pub web: WebConfig,
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
    /// Accepted associations at once.
    pub max_associations: usize,
    /// Accepted associations at once of one calling AE title; 0 = no per-AE cap.
    pub max_associations_per_ae: usize,
    /// Connections still in their handshake (A-ASSOCIATE-RQ not yet answered).
    pub max_handshakes: usize,
    /// A new connection must send its whole A-ASSOCIATE-RQ within this.
    pub handshake_seconds: u64,
    /// An association is aborted this long after it was accepted.
    pub max_association_seconds: u64,
    /// Bytes per second a message in progress must average once it is older than
    /// `read_timeout_seconds`; 0 = no minimum.
    pub min_transfer_rate: u64,
    pub max_pdu: u32,
    pub read_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
    /// DICOM TLS, a second listener beside `bind`.
    pub tls: ScpTlsConfig,
}

/// `[scp.tls]`: DICOM TLS (off while `bind` is empty). Paths left empty are not set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScpTlsConfig {
    /// IP:port of the TLS listener; empty = no TLS listener.
    pub bind: String,
    /// The server's certificate (PEM; then its intermediate certificates).
    pub cert_file: PathBuf,
    /// The server's private key (PEM).
    pub key_file: PathBuf,
    /// CA certificates (PEM) client certificates must chain to; empty = no client certificate
    /// asked for.
    pub client_ca_file: PathBuf,
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
    /// The `[ERROR]` report of a series where no phantom was recognised shows (and keeps) a
    /// picture of a slice: off by default, since such a series may be a patient's.
    pub error_preview: bool,
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

/// `[retention]`: how long received instances are kept (results and reports are always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after which the instances of a series with no CT image or no phantom recognised
    /// are purged; 0 = kept.
    pub unrecognised_days: u32,
    /// Days after which the instances of a phantom series are purged; 0 = kept.
    pub instances_days: u32,
}

/// `[web]`: the dashboard and the operations endpoints (`/healthz`, `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address the dashboard listens on (`127.0.0.1:8080`); empty = no web server.
    pub bind: String,
    /// How long a login lasts, hours.
    pub session_hours: u32,
    /// Mark the session cookie `Secure` (behind an HTTPS reverse proxy).
    pub secure_cookies: bool,
    /// Pages and `/api/*` readable without logging in (actions still need a physicist).
    pub public_read: bool,
}

impl WebConfig {
    /// `None` when the web server is off (`bind` empty).
    pub fn bind_addr(&self) -> Option<&str> {
        Some(self.bind.trim()).filter(|b| !b.is_empty())
    }
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

/// A configuration that passed [`Config::validate`]; only [`Config::validated`] makes one, so
/// whoever holds it (the service, the CLI commands) never validates again.
#[derive(Debug, Clone)]
pub struct ValidConfig(Config);

impl std::ops::Deref for ValidConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.0
    }
}

impl Config {
    /// Validate once (see [`Config::validate`]).
    pub fn validated(self) -> Result<ValidConfig, ConfigError> {
        self.validate()?;
        Ok(ValidConfig(self))
    }

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

    /// The scanner entry a series belongs to (see [`scanner_for`]).
    pub fn scanner_for(
        &self,
        calling_ae: Option<&str>,
        station_name: Option<&str>,
    ) -> Option<&ScannerConfig> {
        scanner_for(&self.scanners, calling_ae, station_name)
    }
}

/// The scanner entry a series belongs to: the first whose calling AE title equals
/// `calling_ae` or whose station name equals `station_name` (both compared after trimming
/// spaces; AE titles are case-sensitive in DICOM).
pub fn scanner_for<'a>(
    scanners: &'a [ScannerConfig],
    calling_ae: Option<&str>,
    station_name: Option<&str>,
) -> Option<&'a ScannerConfig> {
    let ae = calling_ae.map(str::trim);
    let st = station_name.map(str::trim);
    scanners.iter().find(|s| {
        (s.calling_ae.is_some() && s.calling_ae.as_deref().map(str::trim) == ae)
            || (s.station_name.is_some() && s.station_name.as_deref().map(str::trim) == st)
    })
}

impl ScpTlsConfig {
    /// The TLS listener is configured (`bind` not empty).
    pub fn enabled(&self) -> bool {
        !self.bind.trim().is_empty()
    }

    /// The files of the TLS listener, when it is enabled.
    pub fn files(&self) -> Option<crate::scp::tls::ServerTlsFiles> {
        self.enabled().then(|| crate::scp::tls::ServerTlsFiles {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_ca_file: (!self.client_ca_file.as_os_str().is_empty())
                .then(|| self.client_ca_file.clone()),
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
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_seconds)
    }
    pub fn max_association_duration(&self) -> Duration {
        Duration::from_secs(self.max_association_seconds)
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
mod tests;
