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
    assert_eq!(c.scp.max_associations_per_ae, 8);
    assert_eq!(c.scp.max_handshakes, 64);
    assert_eq!(c.scp.handshake_seconds, 5);
    assert_eq!(c.scp.handshake_timeout(), Duration::from_secs(5));
    assert_eq!(c.scp.max_association_seconds, 3600);
    assert_eq!(c.scp.max_association_duration(), Duration::from_secs(3600));
    assert_eq!(c.scp.min_transfer_rate, 8192);
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
    assert_eq!(c.retention.unrecognised_days, 7);
    assert_eq!(c.retention.instances_days, 0);
    assert!(c.scanners.is_empty());
}

#[test]
fn retention_rules() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("HURED__RETENTION__UNRECOGNISED_DAYS", "3"),
            ("HURED__RETENTION__INSTANCES_DAYS", "365"),
        ]),
    )
    .unwrap();
    assert_eq!(c.retention.unrecognised_days, 3);
    assert_eq!(c.retention.instances_days, 365);
    for (var, key) in [
        (
            "HURED__RETENTION__UNRECOGNISED_DAYS",
            "retention.unrecognised_days",
        ),
        (
            "HURED__RETENTION__INSTANCES_DAYS",
            "retention.instances_days",
        ),
    ] {
        for bad in ["-1", "1.5", "seven"] {
            let e = Config::load_with_env(None, env(&[(var, bad)])).unwrap_err();
            assert!(e.to_string().contains(key), "{var}={bad}: {e}");
        }
    }
    assert_problem(
        &invalid_with(|c| c.retention.unrecognised_days = 36_501),
        "retention.unrecognised_days",
        "more than 36500",
    );
    assert_problem(
        &invalid_with(|c| c.retention.instances_days = u32::MAX),
        "retention.instances_days",
        "more than 36500",
    );
    let e = Config::from_toml_str("[retention]\nkeep_days = 3\n").unwrap_err();
    assert!(e.to_string().contains("keep_days"), "{e}");
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
            ("HURED__SCP__HANDSHAKE_SECONDS", "3"),
            ("HURED__SCP__MAX_ASSOCIATIONS_PER_AE", "2"),
            ("HURED__SCP__MAX_ASSOCIATION_SECONDS", "600"),
            ("HURED__SCP__MAX_HANDSHAKES", "100"),
            ("HURED__SCP__MIN_TRANSFER_RATE", "0"),
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
    assert_eq!(
        (
            c.scp.handshake_seconds,
            c.scp.max_associations_per_ae,
            c.scp.max_association_seconds,
            c.scp.max_handshakes,
            c.scp.min_transfer_rate
        ),
        (3, 2, 600, 100, 0)
    );
    assert_eq!(c.series.stable_seconds, 45);
    assert_eq!(c.database.url, "postgres://u@h/db");
    assert_eq!(c.qa.slab_mm, 2.5);
    assert_eq!(c.mail.smtp_tls, SmtpTls::Tls);
    assert_eq!(c.mail.port(), 465);

    // env over defaults without a file
    let c = Config::load_with_env(None, env(&[("HURED__SERIES__STABLE_SECONDS", "7")])).unwrap();
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

    let c = Config::load_with_env(None, env(&[("HURED__SCP__ALLOWED_CALLING_AES", "")])).unwrap();
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
    let e = Config::load_with_env(None, env(&[("HURED__MAIL__TRANSPORT", "pigeon")])).unwrap_err();
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
    let e =
        Config::load_with_env(Some(Path::new("/nonexistent/hu-red.toml")), env(&[])).unwrap_err();
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
    assert_problem(
        &invalid_with(|c| c.scp.max_handshakes = 15),
        "scp.max_handshakes",
        "less than scp.max_associations (16)",
    );
    assert_problem(
        &invalid_with(|c| c.scp.handshake_seconds = 0),
        "scp.handshake_seconds",
        "more than 0",
    );
    assert_problem(
        &invalid_with(|c| c.scp.max_association_seconds = 0),
        "scp.max_association_seconds",
        "more than 0",
    );
    let mut c = defaults();
    // 0 = no per-AE cap, the caps may equal each other, and no minimum rate
    c.scp.max_associations_per_ae = 0;
    c.scp.max_handshakes = 16;
    c.scp.min_transfer_rate = 0;
    assert!(c.validate().is_ok());
    // a per-AE cap above max_associations is that cap (lowering max_associations alone stays
    // valid)
    c.scp.max_associations_per_ae = 17;
    assert!(c.validate().is_ok());
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
    let p = invalid_with(|c| c.scanners = vec![s("a", Some("A"), None), s("a", Some("B"), None)]);
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

#[test]
fn scp_tls_is_off_by_default_and_checked_when_on() {
    let c = defaults();
    assert_eq!(c.scp.tls.bind, "");
    assert!(!c.scp.tls.enabled());
    assert!(c.scp.tls.files().is_none());
    // env keys reach [scp.tls]: the files named there are the ones refused
    let e = Config::load_with_env(
        None,
        env(&[
            ("HURED__SCP__TLS__BIND", "0.0.0.0:2762"),
            ("HURED__SCP__TLS__CERT_FILE", "/nonexistent/server.pem"),
            ("HURED__SCP__TLS__KEY_FILE", "/nonexistent/server.key"),
        ]),
    )
    .unwrap_err();
    assert_problem(
        e.problems(),
        "scp.tls.cert_file",
        "/nonexistent/server.pem: cannot read it",
    );
    // bind set, files missing
    let p = invalid_with(|c| c.scp.tls.bind = "0.0.0.0:2762".into());
    assert_problem(&p, "scp.tls.cert_file", "required when scp.tls.bind is set");
    assert_problem(&p, "scp.tls.key_file", "required when scp.tls.bind is set");
    // not an address; the plain listener's address
    assert_problem(
        &invalid_with(|c| c.scp.tls.bind = "2762".into()),
        "scp.tls.bind",
        "not an IP:port",
    );
    assert_problem(
        &invalid_with(|c| c.scp.tls.bind = c.scp.bind.clone()),
        "scp.tls.bind",
        "is scp.bind too",
    );
    // an empty value from the environment switches it off again
    let c = Config::load_with_env(None, env(&[("HURED__SCP__TLS__BIND", "")])).unwrap();
    assert!(!c.scp.tls.enabled());
}
