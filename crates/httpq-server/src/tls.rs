//! TLS serving: certificates bound to an IP:port or to a host name (the
//! HTTP Server API's SSL and SNI certificate bindings), the handshake that
//! picks one from the ClientHello, and what a request learns of its TLS
//! session. rustls does the TLS, with ring as the one crypto provider.
//!
//! Bindings are looked up at each handshake, so replacing a certificate
//! (a reload) affects new handshakes only: connections keep theirs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::ServerError;

/// A certificate chain and its private key, ready to serve.
///
/// ```no_run
/// use httpq_server::tls::Certificate;
/// let cert = Certificate::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
/// println!("SHA-256 {}", cert.fingerprint());
/// # Ok::<(), httpq_server::ServerError>(())
/// ```
#[derive(Clone)]
pub struct Certificate {
    key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

fn bad_cert(why: String) -> ServerError {
    ServerError::Certificate(why)
}

impl Certificate {
    /// From DER: the chain (leaf first) and its key (PKCS#8, PKCS#1 RSA or
    /// SEC1 EC). The key must match the leaf.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Certificate, ServerError> {
        if chain.is_empty() {
            return Err(bad_cert("no certificate in the chain".into()));
        }
        let provider = rustls::crypto::ring::default_provider();
        let key = CertifiedKey::from_der(chain, key, &provider)
            .map_err(|e| bad_cert(format!("the key does not fit the certificate: {e}")))?;
        Ok(Certificate { key: Arc::new(key) })
    }

    /// From PEM text: every `CERTIFICATE` block of `chain_pem` (leaf first)
    /// and the first private key of `key_pem` (`PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Certificate, ServerError> {
        Self::parse_pem(chain_pem, key_pem, "certificate PEM", "private key PEM")
    }

    /// From PEM files; errors name the file.
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Certificate, ServerError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| bad_cert(format!("cannot read {}: {e}", p.display())))
        };
        let (c, k) = (read(chain)?, read(key)?);
        Self::parse_pem(
            &c,
            &k,
            &chain.display().to_string(),
            &key.display().to_string(),
        )
    }

    /// PEM to DER; errors start with `chain_name` or `key_name`.
    fn parse_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        chain_name: &str,
        key_name: &str,
    ) -> Result<Certificate, ServerError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_cert(format!("{chain_name}: {e}")))?;
        if chain.is_empty() {
            return Err(bad_cert(format!(
                "{chain_name}: no CERTIFICATE block found"
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| bad_cert(format!("{key_name}: no usable private key ({e})")))?;
        Self::from_der(chain, key)
    }

    /// The leaf certificate's SHA-256 fingerprint, as `AB:CD:…` (what
    /// browsers and `openssl x509 -fingerprint -sha256` show).
    pub fn fingerprint(&self) -> String {
        let leaf = &self.key.cert[0];
        let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> &[u8] {
        self.key.cert[0].as_ref()
    }
}

/// Where a certificate applies, as the HTTP Server API binds them:
/// to an IP and port (`0.0.0.0:port` or `[::]:port` for every address),
/// or to a host name and port that the client names in its SNI.
/// A host-name binding wins over an address binding, an exact address
/// over the wildcard.
///
/// ```
/// use httpq_server::tls::CertBinding;
/// let b = CertBinding::host("Example.com", 443);
/// assert_eq!(b, CertBinding::Host("example.com".into(), 443));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertBinding {
    /// `IP:port` (HttpServiceConfigSSLCertInfo).
    Addr(SocketAddr),
    /// `hostname:port` (HttpServiceConfigSslSniCertInfo); lower case.
    Host(String, u16),
}

impl CertBinding {
    /// Every address on `port` (IPv4 and IPv6).
    pub fn any(port: u16) -> CertBinding {
        CertBinding::Addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
    }

    /// A host-name binding (the name is lower-cased).
    pub fn host(name: &str, port: u16) -> CertBinding {
        CertBinding::Host(name.to_ascii_lowercase(), port)
    }
}

/// What a request learns of its connection's TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3` or `TLSv1_2`.
    pub version: &'static str,
    /// The cipher suite, as IANA names it (`TLS13_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
    /// The host name the client asked for (SNI), if it sent one.
    pub sni: Option<String>,
    /// The protocol agreed by ALPN (`h2`, `http/1.1`), if any.
    pub alpn: Option<String>,
}

/// The session's certificate bindings, each with its rustls configuration.
pub(crate) struct TlsStore {
    configs: RwLock<HashMap<CertBinding, Arc<ServerConfig>>>,
}

/// rustls' resolver for one fixed certificate (the binding was chosen
/// before the handshake, from the ClientHello).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl TlsStore {
    pub(crate) fn new() -> TlsStore {
        TlsStore {
            configs: RwLock::new(HashMap::new()),
        }
    }

    /// Binds (or replaces) a certificate. `h2`: offer HTTP/2 by ALPN.
    pub(crate) fn set(
        &self,
        binding: CertBinding,
        cert: &Certificate,
        h2: bool,
    ) -> Result<(), ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad_cert(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(cert.key.clone())));
        config.alpn_protocols = if h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        self.configs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(binding, Arc::new(config));
        Ok(())
    }

    pub(crate) fn remove(&self, binding: &CertBinding) -> bool {
        self.configs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(binding)
            .is_some()
    }

    /// The configuration for a handshake on `local` naming `sni`: the host
    /// binding, else the exact address, else the port's wildcard.
    pub(crate) fn lookup(&self, sni: Option<&str>, local: SocketAddr) -> Option<Arc<ServerConfig>> {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        let port = local.port();
        if let Some(name) = sni {
            if let Some(c) = configs.get(&CertBinding::host(name, port)) {
                return Some(c.clone());
            }
        }
        // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = match local.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        [
            SocketAddr::new(ip, port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]
        .iter()
        .find_map(|a| configs.get(&CertBinding::Addr(*a)).cloned())
    }
}

/// Why a handshake failed (counted, logged, never fatal to the worker).
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The client's ClientHello or later flight was bad, or the socket failed.
    Io(std::io::Error),
    /// No certificate is bound for the address or name asked for.
    NoCertificate(Option<String>),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::NoCertificate(Some(n)) => write!(f, "no certificate bound for {n}"),
            HandshakeError::NoCertificate(None) => f.write_str("no certificate bound"),
        }
    }
}

/// Runs the server side of a handshake on `stream`: reads the
/// ClientHello, picks the binding, completes the handshake. The caller
/// bounds it in time (the HeaderWait timeout).
pub(crate) async fn handshake(
    store: &TlsStore,
    stream: TcpStream,
    local: SocketAddr,
) -> Result<(TlsStream<TcpStream>, TlsInfo), HandshakeError> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
        .await
        .map_err(HandshakeError::Io)?;
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let Some(config) = store.lookup(sni.as_deref(), local) else {
        return Err(HandshakeError::NoCertificate(sni));
    };
    let tls = start
        .into_stream(config)
        .await
        .map_err(HandshakeError::Io)?;
    let c = tls.get_ref().1;
    let info = TlsInfo {
        version: c
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("TLS"),
        cipher: c
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown"),
        sni,
        alpn: c
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    };
    Ok((tls, info))
}
