//! DICOM TLS (PS3.15 Annex B, the secure transport connection profiles): the certificates and
//! keys read from PEM files into rustls configurations (the ring crypto provider, named
//! explicitly: no process-wide default is relied on; TLS 1.2 and 1.3), the TLS listener beside
//! the plain one, and the handshake of a connection refused as "too busy".
//!
//! Server side (`[scp.tls]`): `cert_file` (the server's certificate, then its chain), `key_file`
//! (its private key: PKCS#8, PKCS#1 or SEC1) and, optionally, `client_ca_file` (the CA
//! certificates client certificates must chain to; when given, a client without a valid
//! certificate fails the handshake). The TLS handshake and the A-ASSOCIATE-RQ that follows it
//! share the association's handshake deadline (`read_timeout`); a failed handshake, or a plain
//! DICOM connection to the TLS port, is logged and closed and touches nothing else.
//!
//! Client side (`hu-red send --tls-ca`): the CA certificates the server's certificate must chain
//! to (its name, or IP address, checked against the host of `--to`), and optionally a client
//! certificate and key (`--tls-cert`, `--tls-key`) for a server that requires one.
//!
//! Every problem with a file is a [`TlsError`] naming the setting (`scp.tls.cert_file`,
//! `--tls-ca`, ...), the file and what is wrong with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

/// What is wrong with a TLS file.
#[derive(Debug, thiserror::Error)]
pub enum TlsProblem {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("not a valid PEM file: {0}")]
    Pem(String),
    #[error(
        "no PEM certificate (-----BEGIN CERTIFICATE-----) in it (a DER file can be converted: \
         openssl x509 -inform der -in FILE -out FILE.pem)"
    )]
    NoCertificate,
    #[error(
        "no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY) in it"
    )]
    NoKey,
    #[error("the private key cannot be used: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the certificate in {}", .cert.display())]
    KeyMismatch { cert: PathBuf },
    #[error("the certificate cannot be used: {0}")]
    BadCertificate(String),
    #[error("a certificate in it cannot be a trusted CA: {0}")]
    BadCa(String),
}

/// A TLS file that cannot be used: the setting that named it, the file, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {}: {problem}", path.display())]
pub struct TlsError {
    /// The configuration key or command-line flag (`scp.tls.key_file`, `--tls-ca`).
    pub setting: &'static str,
    pub path: PathBuf,
    #[source]
    pub problem: TlsProblem,
}

/// The files of the server side (`[scp.tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When given, client certificates are required and must chain to one of these CAs.
    pub client_ca_file: Option<PathBuf>,
}

/// A loaded server configuration (cheap to clone).
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    client_auth: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// The files of the client side (`hu-red send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CA certificates the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// Our certificate and key, for a server that requires client certificates.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

/// A loaded client configuration (cheap to clone).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| err(setting, path, TlsProblem::Read(e)))
}

fn err(setting: &'static str, path: &Path, problem: TlsProblem) -> TlsError {
    TlsError {
        setting,
        path: path.to_path_buf(),
        problem,
    }
}

/// Every certificate of a PEM file (at least one).
fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(setting, path, TlsProblem::Pem(e.to_string())))?;
    if certs.is_empty() {
        return Err(err(setting, path, TlsProblem::NoCertificate));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn private_key(setting: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let problem = match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsProblem::NoKey,
            other => TlsProblem::Pem(other.to_string()),
        };
        err(setting, path, problem)
    })
}

/// The CA certificates of a PEM file as trust anchors.
fn roots(setting: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(setting, path)? {
        roots
            .add(cert)
            .map_err(|e| err(setting, path, TlsProblem::BadCa(e.to_string())))?;
    }
    Ok(roots)
}

/// A certificate chain and its key, checked to belong together.
fn certified_key(
    (cert_setting, cert_file): (&'static str, &Path),
    (key_setting, key_file): (&'static str, &Path),
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let chain = certificates(cert_setting, cert_file)?;
    let key = private_key(key_setting, key_file)?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| err(key_setting, key_file, TlsProblem::BadKey(e.to_string())))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(err(
            key_setting,
            key_file,
            TlsProblem::KeyMismatch {
                cert: cert_file.to_path_buf(),
            },
        )),
        Err(e) => Err(err(
            cert_setting,
            cert_file,
            TlsProblem::BadCertificate(e.to_string()),
        )),
    }
}

/// Serves one certified key to every client (no SNI choice).
#[derive(Debug)]
struct OneKey(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneKey {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for OneKey {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ServerTls {
    /// Read and check the files (the key must belong to the certificate; every certificate of
    /// `client_ca_file` must be usable as a trust anchor).
    pub fn load(files: &ServerTlsFiles) -> Result<ServerTls, TlsError> {
        let provider = provider();
        let key = certified_key(
            ("scp.tls.cert_file", &files.cert_file),
            ("scp.tls.key_file", &files.key_file),
            &provider,
        )?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                err(
                    "scp.tls.cert_file",
                    &files.cert_file,
                    TlsProblem::BadCertificate(e.to_string()),
                )
            })?;
        let builder = match &files.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                const SETTING: &str = "scp.tls.client_ca_file";
                let roots = roots(SETTING, ca)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| err(SETTING, ca, TlsProblem::BadCa(e.to_string())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_cert_resolver(Arc::new(OneKey(key)));
        Ok(ServerTls {
            config: Arc::new(config),
            client_auth: files.client_ca_file.is_some(),
        })
    }

    /// The rustls configuration (for dicom-ul's `tls_config`).
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// Client certificates are required.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_auth
    }
}

impl ClientTls {
    /// Read and check the files (`--tls-ca`, and `--tls-cert`/`--tls-key` when given).
    pub fn load(files: &ClientTlsFiles) -> Result<ClientTls, TlsError> {
        let provider = provider();
        let roots = roots("--tls-ca", &files.ca_file)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err("--tls-ca", &files.ca_file, TlsProblem::BadCa(e.to_string())))?
            .with_root_certificates(roots);
        let config = match &files.cert_and_key {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key = certified_key(("--tls-cert", cert), ("--tls-key", key), &provider)?;
                builder.with_client_cert_resolver(Arc::new(OneKey(key)))
            }
        };
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration (for dicom-ul's `tls_config`).
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// The DICOM TLS listener, beside the plain one: same settings, sink and shutdown.
pub struct TlsListener {
    listener: TcpListener,
    tls: ServerTls,
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: ServerTls) -> TlsListener {
        TlsListener { listener, tls }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The start-up log line.
    pub(crate) fn log_listening(&self) {
        let addr = self
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        info!(
            addr = %addr,
            client_certificates = if self.tls.client_auth { "required" } else { "not asked for" },
            "DICOM TLS listening"
        );
    }
}

/// How a connection's association is established: over plain TCP or after a TLS handshake.
#[derive(Clone)]
pub(crate) enum Transport {
    Plain,
    Tls(ServerTls),
}

impl Transport {
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

/// The next connection on either listener, with the transport it came in by.
pub(crate) async fn accept(
    plain: &TcpListener,
    tls: Option<&TlsListener>,
) -> (std::io::Result<(TcpStream, SocketAddr)>, Transport) {
    match tls {
        None => (plain.accept().await, Transport::Plain),
        Some(t) => tokio::select! {
            r = plain.accept() => (r, Transport::Plain),
            r = t.listener.accept() => (r, Transport::Tls(t.tls.clone())),
        },
    }
}

/// Answer a TLS connection that is admitted no slot (`why`, for the log) with A-ASSOCIATE-RJ
/// (see `negotiation::reject_busy`) after the TLS handshake (within `limit`), so the rejection is
/// readable, and only by a client the handshake accepted.
pub(crate) async fn reject_busy(
    tls: ServerTls,
    stream: TcpStream,
    limit: Duration,
    max_pdu: u32,
    why: &str,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => super::negotiation::reject_busy(stream, limit, max_pdu, why).await,
        Ok(Err(e)) => warn!("too many connections, and the TLS handshake failed: {e}"),
        Err(_) => info!("too many connections, and no TLS handshake within {limit:?}"),
    }
}
