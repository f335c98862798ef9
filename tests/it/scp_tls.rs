//! DICOM TLS against real peers: DCMTK `echoscu`/`storescu` with TLS (`+tla` anonymous, `+tls`
//! with a client certificate, `+cf CA`), hu-red's own SCU (`hu-red send --tls-ca`), the
//! in-process SCP (plain and TLS listeners side by side, a real SQLite store behind them) and
//! `hu-red serve` configured by `HURED__SCP__TLS__*`. The certificates are made at test time
//! with the `openssl` command line; openssl and a DCMTK built with TLS are required (a missing
//! one fails the test).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hu_red::config::Config;
use hu_red::scp::tls::{ClientTls, ClientTlsFiles, ServerTls, ServerTlsFiles, TlsListener};
use hu_red::scp::{self, InstanceSink, ScpError, ScpSettings};
use hu_red::store::Store;

use crate::common_db::Kind;
use crate::common_service::{
    hured, part10, run, small, tool, wait_until, Harness, Out, Series, AE, STORE_OK,
};

// ---------------------------------------------------------------- certificates (openssl)

/// A test PKI: a CA, a server certificate for 127.0.0.1/localhost and a client certificate
/// signed by it, and a second CA nobody here trusts with a client certificate of its own.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn make(dir: &Path) -> Pki {
        fs::create_dir_all(dir).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        for ca in ["ca", "other-ca"] {
            let (key, pem, subject) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=hu-red test {ca}"),
            );
            pki.openssl(&[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", &key,
                "-out", &pem, "-subj", &subject,
            ]);
        }
        pki.signed(
            ("server", "/CN=localhost"),
            "ca",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        let client = "extendedKeyUsage=clientAuth\n";
        pki.signed(("client", "/CN=CTSIM1"), "ca", client);
        pki.signed(("stranger", "/CN=CTSIM1"), "other-ca", client);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl is needed for the DICOM TLS tests (apt-get install -y openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `name.key` and `name.pem`, a certificate signed by `ca` with the extensions `ext`.
    fn signed(&self, (name, subject): (&str, &str), ca: &str, ext: &str) {
        let cnf = format!("{name}.cnf");
        fs::write(
            self.path(&cnf),
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n{ext}"),
        )
        .unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        self.openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-in",
            &csr,
            "-out",
            &pem,
            "-extfile",
            &cnf,
        ]);
    }
}

/// This DCMTK was built with TLS (`echoscu --help` lists `+tls`).
fn assert_dcmtk_has_tls() {
    let help = run(tool("echoscu").arg("--help"));
    assert!(
        help.text.contains("+tls") && help.text.contains("--anonymous-tls"),
        "this DCMTK's echoscu has no TLS options (a DCMTK built with OpenSSL is needed):\n{}",
        help.text
    );
}

// ---------------------------------------------------------------- DCMTK and hu-red send

fn echoscu(port: u16, tls: &[&str]) -> Out {
    run(tool("echoscu")
        .args(["-aet", "CTSIM1", "-aec", AE])
        .args(tls)
        .arg("127.0.0.1")
        .arg(port.to_string()))
}

/// storescu -v; the number of instances acknowledged with success.
fn storescu(port: u16, tls: &[&str], files: &[PathBuf]) -> (usize, Out) {
    let out = run(tool("storescu")
        .args(["-v", "-aet", "CTSIM1", "-aec", AE])
        .args(tls)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(files));
    (out.text.matches(STORE_OK).count(), out)
}

/// `hu-red send` to 127.0.0.1:port with the extra arguments.
fn hured_send(cwd: &Path, port: u16, extra: &[&str], files: &[PathBuf]) -> Out {
    let out = hured(cwd)
        .args(["send", "--to", &format!("127.0.0.1:{port}"), "--aet", AE])
        .args(["--timeout", "10"])
        .args(extra)
        .args(files)
        .output()
        .expect("run hu-red send");
    Out {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

// ---------------------------------------------------------------- the in-process SCP

/// The SCP with its plain and TLS listeners, a real SQLite store as its sink.
struct TlsScp {
    rt: tokio::runtime::Runtime,
    plain: u16,
    tls: u16,
    data_dir: PathBuf,
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), ScpError>>>,
    _dir: tempfile::TempDir,
}

impl TlsScp {
    fn start(files: &ServerTlsFiles) -> TlsScp {
        Self::start_with(files, |_| {})
    }

    fn start_with(files: &ServerTlsFiles, tweak: impl FnOnce(&mut ScpSettings)) -> TlsScp {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "hu_red=info".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut settings = ScpSettings {
            ae_title: AE.into(),
            data_dir: data_dir.clone(),
            read_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            ..ScpSettings::default()
        };
        tweak(&mut settings);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let url = format!("sqlite://{}", dir.path().join("db/hu-red.sqlite").display());
        let store = rt.block_on(Store::connect(&url)).unwrap();
        let bind = || {
            rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap()
        };
        let (plain, tls) = (bind(), bind());
        let ports = (
            plain.local_addr().unwrap().port(),
            tls.local_addr().unwrap().port(),
        );
        let tls = TlsListener::new(tls, ServerTls::load(files).unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let sink: Arc<dyn InstanceSink> = Arc::new(hu_red::series::StoreSink {
            store: store.clone(),
        });
        let handle = rt.spawn(scp::serve_with_tls(
            plain,
            Some(tls),
            settings,
            sink,
            async move {
                let _ = rx.await;
            },
        ));
        TlsScp {
            rt,
            plain: ports.0,
            tls: ports.1,
            data_dir,
            store,
            stop: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// Every file of `s` is recorded and stored with its data set bytes.
    fn assert_stored(&self, s: &Series) {
        for f in &s.files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let sop = &s.sop_by_file[&name];
            assert!(
                self.rt.block_on(self.store.instance_exists(sop)).unwrap(),
                "{name} not recorded"
            );
            let stored = s.stored_path(&self.data_dir, sop);
            assert_eq!(part10(&stored).1, part10(f).1, "{name} not stored as sent");
        }
    }

    fn none_stored(&self, s: &Series) -> bool {
        s.sop_by_file
            .values()
            .all(|sop| !self.rt.block_on(self.store.instance_exists(sop)).unwrap())
    }

    fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().unwrap();
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(15), handle).await })
            .expect("serve_with_tls returns after shutdown")
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
}

impl Drop for TlsScp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn server_files(pki: &Pki, client_ca: bool) -> ServerTlsFiles {
    ServerTlsFiles {
        cert_file: pki.path("server.pem"),
        key_file: pki.path("server.key"),
        client_ca_file: client_ca.then(|| pki.path("ca.pem")),
    }
}

// ---------------------------------------------------------------- tests

/// DCMTK stores over TLS trusting our CA; a plain connection to the TLS port, a TLS client on
/// the plain port and clients that do not trust the server's CA fail, while a silent connection
/// holds a TLS handshake open, and none of them keeps the others from storing.
#[test]
fn dcmtk_stores_over_tls_and_the_wrong_peers_fail() {
    assert_dcmtk_has_tls();
    let w = tempfile::tempdir().unwrap();
    let pki = Pki::make(&w.path().join("pki"));
    let scp = TlsScp::start(&server_files(&pki, false));
    let (ca, other) = (pki.arg("ca.pem"), pki.arg("other-ca.pem"));
    let trusting = ["+tla", "+cf", ca.as_str()];

    let echo = echoscu(scp.tls, &trusting);
    assert!(echo.ok, "echoscu +tla +cf CA: {}", echo.text);
    let s1 = small(&w.path().join("s1"), 1, 3, |_| {});
    let (acked, out) = storescu(scp.tls, &trusting, &s1.files);
    assert!(
        out.ok && acked == 3,
        "storescu over TLS: {acked} of 3:\n{}",
        out.text
    );
    scp.assert_stored(&s1);

    // a connection that never starts its handshake holds nothing up
    let silent = std::net::TcpStream::connect(("127.0.0.1", scp.tls)).unwrap();
    // plain DICOM to the TLS port
    let plain = echoscu(scp.tls, &[]);
    assert!(!plain.ok, "a plain echoscu on the TLS port: {}", plain.text);
    // TLS to the plain port
    let wrong_port = echoscu(scp.plain, &trusting);
    assert!(
        !wrong_port.ok,
        "echoscu +tla on the plain port: {}",
        wrong_port.text
    );
    // clients that do not trust the server's CA
    let untrusted = echoscu(scp.tls, &["+tla", "+cf", other.as_str()]);
    assert!(
        !untrusted.ok,
        "echoscu trusting another CA: {}",
        untrusted.text
    );
    let s2 = small(&w.path().join("s2"), 2, 2, |_| {});
    let (acked, out) = storescu(scp.tls, &["+tla", "+cf", other.as_str()], &s2.files);
    assert!(
        acked == 0,
        "storescu trusting another CA stored:\n{}",
        out.text
    );
    let send = hured_send(w.path(), scp.tls, &["--tls-ca", &other], &s2.files);
    assert!(!send.ok, "hu-red send --tls-ca OTHER: {}", send.text);
    assert!(scp.none_stored(&s2));
    // hu-red send trusting no CA at all: plain DICOM to the TLS port
    let send = hured_send(w.path(), scp.tls, &[], &s2.files);
    assert!(
        !send.ok,
        "hu-red send without TLS to the TLS port: {}",
        send.text
    );

    // both listeners still serve, the silent connection still open
    let (acked, out) = storescu(scp.plain, &[], &s2.files);
    assert!(
        out.ok && acked == 2,
        "plain storescu: {acked} of 2:\n{}",
        out.text
    );
    scp.assert_stored(&s2);
    let s3 = small(&w.path().join("s3"), 3, 2, |_| {});
    let send = hured_send(w.path(), scp.tls, &["--tls-ca", &ca], &s3.files);
    assert!(
        send.ok && send.text.contains("sent 2 of 2") && send.text.contains("over TLS"),
        "hu-red send --tls-ca CA: {}",
        send.text
    );
    scp.assert_stored(&s3);
    drop(silent);
    scp.shutdown();
}

/// With `client_ca_file`, only clients with a certificate from that CA associate: DCMTK with
/// `+tls key cert`, `hu-red send --tls-cert/--tls-key`.
#[test]
fn client_certificates_are_required_with_client_ca_file() {
    assert_dcmtk_has_tls();
    let w = tempfile::tempdir().unwrap();
    let pki = Pki::make(&w.path().join("pki"));
    let scp = TlsScp::start(&server_files(&pki, true));
    let ca = pki.arg("ca.pem");
    let (key, cert) = (pki.arg("client.key"), pki.arg("client.pem"));
    let with_cert = ["+tls", key.as_str(), cert.as_str(), "+cf", ca.as_str()];

    let anonymous = echoscu(scp.tls, &["+tla", "+cf", ca.as_str()]);
    assert!(
        !anonymous.ok,
        "echoscu without a client certificate: {}",
        anonymous.text
    );
    // a client certificate our CA did not sign
    let (skey, scert) = (pki.arg("stranger.key"), pki.arg("stranger.pem"));
    let foreign = echoscu(scp.tls, &["+tls", &skey, &scert, "+cf", &ca]);
    assert!(
        !foreign.ok,
        "echoscu with a foreign certificate: {}",
        foreign.text
    );

    let echo = echoscu(scp.tls, &with_cert);
    assert!(echo.ok, "echoscu +tls KEY CERT +cf CA: {}", echo.text);
    let s1 = small(&w.path().join("s1"), 11, 3, |_| {});
    let (acked, out) = storescu(scp.tls, &with_cert, &s1.files);
    assert!(
        out.ok && acked == 3,
        "storescu +tls: {acked} of 3:\n{}",
        out.text
    );
    scp.assert_stored(&s1);

    let s2 = small(&w.path().join("s2"), 12, 2, |_| {});
    let send = hured_send(w.path(), scp.tls, &["--tls-ca", &ca], &s2.files);
    assert!(!send.ok, "hu-red send without --tls-cert: {}", send.text);
    assert!(scp.none_stored(&s2));
    let send = hured_send(
        w.path(),
        scp.tls,
        &["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key],
        &s2.files,
    );
    assert!(send.ok, "hu-red send --tls-cert --tls-key: {}", send.text);
    scp.assert_stored(&s2);
    scp.shutdown();
}

/// Beyond `max_associations`, a TLS client is told "too busy" inside TLS (A-ASSOCIATE-RJ
/// transient, local limit exceeded), like a plain one.
#[test]
fn too_busy_is_answered_inside_tls() {
    assert_dcmtk_has_tls();
    let w = tempfile::tempdir().unwrap();
    let pki = Pki::make(&w.path().join("pki"));
    let scp = TlsScp::start_with(&server_files(&pki, false), |s| s.max_associations = 1);
    let ca = pki.arg("ca.pem");
    let client = ClientTls::load(&ClientTlsFiles {
        ca_file: pki.path("ca.pem"),
        cert_and_key: None,
    })
    .unwrap();
    // one association over TLS holds the only slot
    let held = dicom_ul::association::ClientAssociationOptions::new()
        .with_abstract_syntax(scp::VERIFICATION_SOP_CLASS)
        .calling_ae_title("HOLDER")
        .called_ae_title(AE)
        .tls_config(client.config())
        .server_name("127.0.0.1")
        .establish_tls(("127.0.0.1", scp.tls))
        .unwrap();
    let busy = echoscu(scp.tls, &["+tla", "+cf", ca.as_str()]);
    assert!(
        !busy.ok
            && busy.text.contains("Rejected Transient")
            && busy.text.contains("Local Limit Exceeded"),
        "echoscu over TLS while busy: {}",
        busy.text
    );
    held.release().unwrap();
    let echo = wait_for_echo(scp.tls, &["+tla", "+cf", ca.as_str()]);
    assert!(echo.ok, "echoscu once the slot is free: {}", echo.text);
    scp.shutdown();
}

/// echoscu until it succeeds (the released slot is given back just after the release), at
/// most 5 s.
fn wait_for_echo(port: u16, tls: &[&str]) -> Out {
    let t0 = std::time::Instant::now();
    loop {
        let out = echoscu(port, tls);
        if out.ok || t0.elapsed() > Duration::from_secs(5) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `hu-red serve` with `[scp.tls]` from the environment: `hu-red send --tls-ca` stores into it,
/// a plain connection to its TLS port is logged and closed, the plain port keeps working.
#[test]
fn the_service_listens_for_tls_as_configured_by_env() {
    let h = Harness::new(Kind::Sqlite);
    let pki = Pki::make(&h.root().join("pki"));
    let (cert, key) = (pki.arg("server.pem"), pki.arg("server.key"));
    let server = h.serve_with(
        1,
        &[
            ("HURED__SCP__TLS__BIND", "127.0.0.1:0"),
            ("HURED__SCP__TLS__CERT_FILE", &cert),
            ("HURED__SCP__TLS__KEY_FILE", &key),
        ],
    );
    let tls = wait_until("the DICOM TLS listening line", &server, || {
        let log = server.log_text();
        let line = log.lines().find(|l| l.contains("DICOM TLS listening"))?;
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))?;
        addr.rsplit(':').next()?.parse::<u16>().ok()
    });
    assert_ne!(tls, server.port);

    let s = small(&h.root().join("s1"), 21, 2, |_| {});
    let send = hured_send(h.root(), tls, &["--tls-ca", &pki.arg("ca.pem")], &s.files);
    assert!(
        send.ok,
        "hu-red send --tls-ca: {}\n{}",
        send.text,
        server.log_tail()
    );
    for sop in s.sop_by_file.values() {
        assert!(h.instance_exists(sop), "{sop} not recorded");
    }
    let plain = hured_send(h.root(), tls, &[], &s.files);
    assert!(
        !plain.ok,
        "plain hu-red send to the TLS port: {}",
        plain.text
    );
    wait_until("the failed handshake logged", &server, || {
        server
            .log_text()
            .contains("TLS handshake failed, connection closed")
            .then_some(())
    });
    let send = hured_send(h.root(), server.port, &[], &s.files);
    assert!(send.ok, "plain hu-red send: {}", send.text);
}

/// `[scp.tls]` from the environment, and every unusable file named by its key and path.
#[test]
fn tls_files_are_checked_naming_the_key() {
    let w = tempfile::tempdir().unwrap();
    let pki = Pki::make(&w.path().join("pki"));
    let p = |name: &str| pki.arg(name);
    let load = |cert: &str, key: &str, ca: &str| {
        let env = [
            ("HURED__SCP__TLS__BIND", "0.0.0.0:2762"),
            ("HURED__SCP__TLS__CERT_FILE", cert),
            ("HURED__SCP__TLS__KEY_FILE", key),
            ("HURED__SCP__TLS__CLIENT_CA_FILE", ca),
        ];
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_with_env(None, Some(env.collect())).map_err(Box::new)
    };
    let c = load(&p("server.pem"), &p("server.key"), &p("ca.pem")).unwrap();
    assert_eq!(c.scp.tls.bind, "0.0.0.0:2762");
    assert_eq!(c.scp.tls.cert_file, pki.path("server.pem"));
    assert_eq!(c.scp.tls.key_file, pki.path("server.key"));
    assert_eq!(c.scp.tls.client_ca_file, pki.path("ca.pem"));
    let files = c.scp.tls.files().unwrap();
    assert!(ServerTls::load(&files)
        .unwrap()
        .requires_client_certificates());
    let c = load(&p("server.pem"), &p("server.key"), "").unwrap();
    assert_eq!(c.scp.tls.files().unwrap().client_ca_file, None);

    fs::write(
        pki.path("garbage-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let truncated = fs::read_to_string(pki.path("server.pem")).unwrap();
    fs::write(pki.path("truncated.pem"), &truncated[..truncated.len() / 2]).unwrap();
    let missing = w.path().join("missing.pem").display().to_string();
    for ((cert, key, ca), want_key, want) in [
        (
            (p("server.pem"), missing.clone(), p("ca.pem")),
            "scp.tls.key_file",
            "cannot read it",
        ),
        (
            (p("server.key"), p("server.key"), p("ca.pem")),
            "scp.tls.cert_file",
            "no PEM certificate",
        ),
        (
            (p("server.pem"), p("server.pem"), p("ca.pem")),
            "scp.tls.key_file",
            "no PEM private key",
        ),
        (
            (p("server.pem"), p("client.key"), p("ca.pem")),
            "scp.tls.key_file",
            "does not belong to the certificate",
        ),
        (
            (p("truncated.pem"), p("server.key"), p("ca.pem")),
            "scp.tls.cert_file",
            "not a valid PEM file",
        ),
        (
            (p("server.pem"), p("server.key"), p("garbage-ca.pem")),
            "scp.tls.client_ca_file",
            "cannot be a trusted CA",
        ),
    ] {
        let e = load(&cert, &key, &ca).unwrap_err();
        let problem = e
            .problems()
            .iter()
            .find(|q| q.key == want_key)
            .unwrap_or_else(|| panic!("no problem for {want_key}: {e}"));
        assert!(problem.message.contains(want), "{want_key}: {problem}");
        // the message names the file
        assert!(e.to_string().contains(w.path().to_str().unwrap()), "{e}");
    }

    // hu-red send names its flag and file
    let send = hured_send(w.path(), 9, &["--tls-ca", &missing], &[pki.path("ca.pem")]);
    assert!(
        !send.ok
            && send
                .text
                .contains(&format!("--tls-ca {missing}: cannot read it")),
        "{}",
        send.text
    );
    let send = hured_send(
        w.path(),
        9,
        &[
            "--tls-ca",
            &p("ca.pem"),
            "--tls-cert",
            &p("client.pem"),
            "--tls-key",
            &p("server.key"),
        ],
        &[pki.path("ca.pem")],
    );
    assert!(
        !send.ok && send.text.contains("--tls-key") && send.text.contains("does not belong"),
        "{}",
        send.text
    );
}
