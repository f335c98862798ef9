//! The deployment files are valid: the systemd unit (`systemd-analyze verify`), the compose
//! file (parsed as YAML by Debian's python3-yaml and checked), the production example
//! configuration (`hu-red check-config`), and the Containerfile's build inputs. Missing tools
//! fail the test (CI installs them: systemd, python3-yaml).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hu-red");

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn systemd_unit_verifies() {
    let unit = fs::read_to_string(repo("deploy/hu-red.service")).unwrap();
    for key in [
        "User=hu-red",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/hu-red",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(key), "the unit sets {key:?}");
    }
    assert!(
        !unit.lines().any(|l| l.starts_with("AmbientCapabilities")),
        "no capability unless port 104 is used"
    );
    // verify resolves the executables: point them at the binary under test
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("hu-red.service");
    fs::write(&local, unit.replace("/usr/local/bin/hu-red", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .expect("systemd-analyze is needed (Debian package systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about the unit itself; other units of the host may have their own complaints.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("hu-red.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn compose_file_parses_and_wires_the_services() {
    let script = r#"
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
print(json.dumps(doc))
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(repo("deploy/compose.yaml"))
        .output()
        .expect("/usr/bin/python3 is needed");
    assert!(
        out.status.success(),
        "compose.yaml is not valid YAML (python3-yaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = v["services"].as_object().expect("a services map");
    for s in ["hu-red", "postgres", "mail"] {
        assert!(services.contains_key(s), "service {s}");
    }
    let h = &v["services"]["hu-red"];
    assert_eq!(h["build"]["dockerfile"], "deploy/Containerfile");
    assert_eq!(h["ports"][0], "11112:11112");
    assert_eq!(h["ports"][1], "8080:8080", "the dashboard");
    let env = h["environment"].as_object().unwrap();
    assert!(env["HURED__DATABASE__URL"]
        .as_str()
        .unwrap()
        .starts_with("postgres://"));
    assert_eq!(env["HURED__MAIL__SMTP_HOST"], "mail");
    assert_eq!(
        h["depends_on"]["postgres"]["condition"], "service_healthy",
        "hu-red waits for the database"
    );
    assert!(v["volumes"]
        .as_object()
        .unwrap()
        .contains_key("hu-red-data"));
    // every environment key is a real configuration key: the service accepts them
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("check-config");
    for (k, val) in env {
        cmd.env(k, val.as_str().unwrap());
    }
    cmd.env("HURED__STORAGE__DATA_DIR", data.path());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "check-config with the compose environment: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn production_example_is_valid() {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(repo("config/production.example.toml"))
        .env("HURED_SMTP_PASSWORD", "example")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("smtp (smtp.hospital.example:587)"), "{text}");
    assert!(text.contains("CT-SIM-2"));
    // without the password from the environment, the SMTP user cannot log in: refused
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(repo("config/production.example.toml"))
        .env_remove("HURED_SMTP_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HURED_SMTP_PASSWORD"));
}

#[test]
fn containerfile_builds_from_files_that_exist() {
    let text = fs::read_to_string(repo("deploy/Containerfile")).unwrap();
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "multi-stage: {stages:?}");
    let build = text.split("FROM ").nth(1).unwrap();
    assert!(build.contains("cmake"), "cmake in the build stage (charls)");
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(repo(src).exists(), "COPY source {src} exists");
        }
    }
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root"), "{user}");
    assert!(text.contains("VOLUME [\"/data\"]"));
}

#[test]
fn version_lists_the_codecs() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("hu-red {}", env!("CARGO_PKG_VERSION"))));
    for (uid, name) in hu_red::scp::TRANSFER_SYNTAXES {
        let line = text
            .lines()
            .find(|l| l.contains(uid) && l.contains(name))
            .unwrap_or_else(|| panic!("{name} listed:\n{text}"));
        assert!(line.trim_end().ends_with("yes"), "{line}");
    }
    assert!(text.contains("1.2.840.10008.1.2.4.51") && text.contains("refused"));
}
