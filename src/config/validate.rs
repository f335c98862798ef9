//! Validation of a loaded [`Config`]: one check per section, in the file's order, each problem
//! naming its key; [`Config::validate`] reports them all at once.

use super::{
    check_address, check_ae_title, Config, ConfigError, MailTransport, Problem, MAX_PDU_RANGE,
};
use std::collections::BTreeSet;
use std::net::SocketAddr;

impl Config {
    /// Check every value; the error lists each problem with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        self.validate_scp(&mut p);
        self.validate_series(&mut p);
        self.validate_storage(&mut p);
        self.validate_database(&mut p);
        self.validate_mail(&mut p);
        let known = self.validate_qa(&mut p);
        self.validate_retention(&mut p);
        self.validate_web(&mut p);
        self.validate_scanners(known.as_deref(), &mut p);
        p.into_result()
    }

    /// `[scp]`.
    fn validate_scp(&self, p: &mut Problems) {
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
        self.validate_scp_limits(p);
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
        self.validate_scp_tls(p);
    }

    /// `[scp.tls]`: when `bind` is set, an address other than `scp.bind`, and the certificate,
    /// key and CA files read and checked as the listener will use them.
    fn validate_scp_tls(&self, p: &mut Problems) {
        let tls = &self.scp.tls;
        if !tls.enabled() {
            return;
        }
        match tls.bind.parse::<SocketAddr>() {
            Err(e) => p.push(
                "scp.tls.bind",
                format!(
                    "{:?} is not an IP:port socket address ({e}); example \"0.0.0.0:2762\" \
                     (empty = no TLS listener)",
                    tls.bind
                ),
            ),
            Ok(a) if self.scp.bind.parse::<SocketAddr>() == Ok(a) && a.port() != 0 => p.push(
                "scp.tls.bind",
                format!("{a} is scp.bind too: the TLS listener needs its own port (usually 2762)"),
            ),
            Ok(_) => {}
        }
        let mut missing = false;
        for (key, path) in [
            ("scp.tls.cert_file", &tls.cert_file),
            ("scp.tls.key_file", &tls.key_file),
        ] {
            if path.as_os_str().is_empty() {
                p.push(key, "is required when scp.tls.bind is set".to_string());
                missing = true;
            }
        }
        if missing {
            return;
        }
        if let Some(files) = tls.files() {
            if let Err(e) = crate::scp::tls::ServerTls::load(&files) {
                p.push(e.setting, format!("{}: {}", e.path.display(), e.problem));
            }
        }
    }

    /// `[scp]`: the caps and time limits of associations.
    fn validate_scp_limits(&self, p: &mut Problems) {
        let scp = &self.scp;
        if scp.max_associations == 0 {
            p.push("scp.max_associations", "must be at least 1".to_string());
        }
        if scp.max_handshakes < scp.max_associations {
            p.push(
                "scp.max_handshakes",
                format!(
                    "{} is less than scp.max_associations ({}): connections in their handshake \
                     must be allowed at least as many",
                    scp.max_handshakes, scp.max_associations
                ),
            );
        }
        if scp.handshake_seconds == 0 {
            p.push("scp.handshake_seconds", "must be more than 0".to_string());
        }
        if scp.max_association_seconds == 0 {
            p.push(
                "scp.max_association_seconds",
                "must be more than 0".to_string(),
            );
        }
    }

    /// `[series]`.
    fn validate_series(&self, p: &mut Problems) {
        if self.series.stable_seconds < 1 {
            p.push("series.stable_seconds", "must be at least 1".to_string());
        }
    }

    /// `[retention]` (whole days, at least 0 by their type).
    fn validate_retention(&self, p: &mut Problems) {
        let max = crate::retention::MAX_DAYS;
        for (key, days) in [
            (
                "retention.unrecognised_days",
                self.retention.unrecognised_days,
            ),
            ("retention.instances_days", self.retention.instances_days),
        ] {
            if days > max {
                p.push(
                    key,
                    format!("{days} days is more than {max} (100 years); 0 keeps the instances"),
                );
            }
        }
    }

    /// `[web]`.
    fn validate_web(&self, p: &mut Problems) {
        if let Some(bind) = self.web.bind_addr() {
            if bind.parse::<std::net::SocketAddr>().is_err() {
                p.push(
                    "web.bind",
                    format!("{bind:?} is not an address and port such as 127.0.0.1:8080 (\"\" turns the web server off)"),
                );
            }
        }
        if !(1..=720).contains(&self.web.session_hours) {
            p.push(
                "web.session_hours",
                format!("{} is outside 1 to 720 hours", self.web.session_hours),
            );
        }
    }

    /// `[storage]`.
    fn validate_storage(&self, p: &mut Problems) {
        if self.storage.data_dir.as_os_str().is_empty() {
            p.push("storage.data_dir", "must not be empty".to_string());
        }
    }

    /// `[database]`.
    fn validate_database(&self, p: &mut Problems) {
        if let Err(m) = check_database_url(&self.database.url) {
            p.push("database.url", m);
        }
        if self.database.max_connections == 0 {
            p.push("database.max_connections", "must be at least 1".to_string());
        }
    }

    /// `[mail]`.
    fn validate_mail(&self, p: &mut Problems) {
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
        self.validate_mail_delivery(p);
    }

    /// `[mail]`: timeouts, retries and addresses.
    fn validate_mail_delivery(&self, p: &mut Problems) {
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
    }

    /// `[qa]`; returns the known phantom ids (definitions and family ids) when the phantom
    /// definitions loaded.
    fn validate_qa(&self, p: &mut Problems) -> Option<Vec<String>> {
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
        known
    }

    /// `[[scanners]]` (`known`: the phantom ids, when they could be loaded).
    fn validate_scanners(&self, known: Option<&[String]>, p: &mut Problems) {
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
            if let (Some(ph), Some(known)) = (&s.phantom, known) {
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
