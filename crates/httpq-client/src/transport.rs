//! The byte stream under a connection — plain TCP or TLS (rustls) over TCP —
//! and the session's TLS settings (which roots are trusted).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::ClientError;

/// Which certificate authorities HTTPS trusts.
#[derive(Debug, Clone, Default)]
pub struct TlsRoots {
    /// The Mozilla roots bundled in the binary (webpki-roots) (default: on).
    pub bundled: bool,
    /// The system's roots (rustls-native-certs) (default: off).
    pub system: bool,
    /// Extra roots, DER-encoded (a test CA, a company CA).
    pub extra: Vec<Vec<u8>>,
    /// Skip bundled/system defaults even when nothing else is set.
    pub only_extra: bool,
    /// Accept any certificate for any name (curl's `-k`): the connection
    /// is encrypted but the server is not authenticated. For development
    /// against self-signed servers only.
    pub insecure: bool,
}

impl TlsRoots {
    /// The bundled roots.
    pub fn bundled() -> Self {
        TlsRoots {
            bundled: true,
            ..TlsRoots::default()
        }
    }

    /// Only the given DER certificate (for a private or test CA).
    pub fn only(der: Vec<u8>) -> Self {
        TlsRoots {
            extra: vec![der],
            only_extra: true,
            ..TlsRoots::default()
        }
    }

    /// Only the certificates of a PEM bundle (curl's `--cacert`): every
    /// `CERTIFICATE` block, none of the default roots.
    ///
    /// ```
    /// use httpq_client::TlsRoots;
    /// assert!(TlsRoots::only_pem(b"no certificate here").is_err());
    /// ```
    pub fn only_pem(pem: &[u8]) -> Result<Self, ClientError> {
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Tls(format!("bad CA certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ClientError::Tls("no CERTIFICATE in the CA file".into()));
        }
        Ok(TlsRoots {
            extra: certs,
            only_extra: true,
            ..TlsRoots::default()
        })
    }
}

/// `-k`: every certificate chain and name is accepted; the handshake's
/// signatures are still checked against the key the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The session's rustls client configuration, built once.
pub(crate) struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
}

impl TlsConfig {
    pub(crate) fn new(roots: &TlsRoots) -> Result<TlsConfig, ClientError> {
        let mut store = rustls::RootCertStore::empty();
        let use_bundled = roots.bundled || (!roots.system && !roots.only_extra);
        if use_bundled {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if roots.system {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
        }
        for der in &roots.extra {
            store
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| ClientError::Tls(format!("bad root certificate: {e}")))?;
        }
        // The provider is named explicitly: two enabled at once would panic.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth();
        if roots.insecure {
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)));
        }
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }

    /// Runs the TLS handshake for `host` over `tcp`.
    pub(crate) async fn handshake(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<Stream, ClientError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ClientError::Tls(format!("invalid server name {host:?}")))?;
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A connection's byte stream.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP connection under it.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
