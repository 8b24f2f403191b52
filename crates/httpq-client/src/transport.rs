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
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth();
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
