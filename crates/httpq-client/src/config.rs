//! What a session is configured with: user agent, the timeouts, the
//! proxy, the pool's limits, redirects, decoding, TLS roots, protocol
//! limits, where notifications go, and name resolution.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::resolve::Resolver;
use crate::status::Notification;
use crate::transport::TlsRoots;
use crate::url::{Scheme, Url};
use crate::ClientError;

/// A status callback: called for every notification, in order, on whichever
/// thread raised it, with no lock held (so it may call back into the API).
pub type Callback = Arc<dyn Fn(&Notification) + Send + Sync>;

/// The client timeouts. `None` switches one off.
///
/// ```
/// use std::time::Duration;
/// use httpq_client::Timeouts;
/// let t = Timeouts { connect: Some(Duration::from_secs(5)), ..Timeouts::default() };
/// assert_eq!(t.receive, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Name resolution [30 s].
    pub resolve: Option<Duration>,
    /// TCP connect, proxy tunnel and TLS handshake together [60 s].
    pub connect: Option<Duration>,
    /// Each write of the request [30 s].
    pub send: Option<Duration>,
    /// The response head from when the request was sent, then each body read [30 s].
    pub receive: Option<Duration>,
    /// The whole request, redirects and body included (default: none).
    pub total: Option<Duration>,
    /// Fail when the body arrives slower than this (default: none).
    pub low_speed: Option<LowSpeed>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            resolve: Some(Duration::from_secs(30)),
            connect: Some(Duration::from_secs(60)),
            send: Some(Duration::from_secs(30)),
            receive: Some(Duration::from_secs(30)),
            total: None,
            low_speed: None,
        }
    }
}

/// The low-speed limit: fewer than `bytes_per_sec` on average over `window` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSpeed {
    /// Minimum average rate.
    pub bytes_per_sec: u64,
    /// Over this long.
    pub window: Duration,
}

/// An HTTP proxy: `http://` targets go to it in absolute form, `https://`
/// ones through a CONNECT tunnel; optional Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Proxy host.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// User name and password for Proxy-Authorization: Basic.
    pub credentials: Option<(String, String)>,
}

impl Proxy {
    /// Parses `[http://][user:pass@]host[:port]`; without a port, 1080 (as curl).
    ///
    /// ```
    /// let p = httpq_client::Proxy::parse("http://u:p@proxy:3128").unwrap();
    /// assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
    /// assert_eq!(httpq_client::Proxy::parse("proxy").unwrap().port, 1080);
    /// ```
    pub fn parse(s: &str) -> Result<Proxy, ClientError> {
        let with_scheme = if s.contains("://") {
            s.to_string()
        } else {
            format!("http://{s}")
        };
        let u = Url::parse(&with_scheme)?;
        let authority = with_scheme
            .split_once("://")
            .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
        let hostport = authority.rsplit('@').next().unwrap_or("");
        let explicit_port = hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if u.scheme() != Scheme::Http {
            return Err(ClientError::InvalidUrl(format!(
                "{s}: only http:// proxies are supported"
            )));
        }
        Ok(Proxy {
            host: u.host().to_string(),
            port: if explicit_port { u.port() } else { 1080 },
            credentials: u.credentials().map(|(a, b)| (a.to_string(), b.to_string())),
        })
    }

    /// `Basic` credentials for the proxy, if it has any (Proxy-Authorization).
    pub(crate) fn authorization(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, pw)| basic(u, pw))
    }
}

/// `Basic` credentials (RFC 7617), for a proxy or a URL's userinfo.
pub(crate) fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Session settings.
#[derive(Clone)]
pub struct Config {
    /// The User-Agent header.
    pub user_agent: String,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// An HTTP proxy for every request.
    pub proxy: Option<Proxy>,
    /// Connections per server (scheme, host, port) at once (default: 6).
    pub max_connections_per_server: usize,
    /// How long an idle keep-alive connection stays pooled [90 s].
    pub pool_idle_timeout: Duration,
    /// Follow redirects [true, as WinInet].
    pub follow_redirects: bool,
    /// Redirects followed before [`ClientError::TooManyRedirects`] (default: 10).
    pub max_redirects: u32,
    /// Ask for and decode gzip, deflate and br bodies [false].
    pub decompress: bool,
    /// Largest decoded body of a compressed response (default: 1 GiB):
    /// what one body may take even at an ordinary compression ratio.
    pub max_decoded_bytes: u64,
    /// Largest ratio of decoded to encoded bytes of a compressed response,
    /// once it has decoded past its first MiB (default: 100). gzip and
    /// deflate reach about 1,030:1 on runs of zeros and brotli far more —
    /// a bomb is a few hundred KiB that decode to gigabytes — while text,
    /// HTML, JSON and logs compress 3–20:1 and the most repetitive
    /// ordinary bodies rarely pass 50:1. The first MiB may have any ratio
    /// (a small body of zeros is no threat). 0 switches the guard off.
    pub max_compression_ratio: u32,
    /// Which certificate roots HTTPS trusts.
    pub tls_roots: TlsRoots,
    /// Protocol limits for responses (head size, 1xx count, ...).
    pub limits: httpq_proto::Limits,
    /// The status callback (also settable later with [`Session::set_callback`](crate::Session::set_callback)).
    pub callback: Option<Callback>,
    /// The session handle's context value.
    pub context: u64,
    /// Name resolution; replaceable (tests use a slow one).
    pub resolver: Option<Arc<dyn Resolver>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user_agent: concat!("httpq/", env!("CARGO_PKG_VERSION")).to_string(),
            timeouts: Timeouts::default(),
            proxy: None,
            max_connections_per_server: 6,
            pool_idle_timeout: Duration::from_secs(90),
            follow_redirects: true,
            max_redirects: 10,
            decompress: false,
            max_decoded_bytes: 1 << 30,
            max_compression_ratio: 100,
            tls_roots: TlsRoots::default(),
            limits: httpq_proto::Limits::default(),
            callback: None,
            context: 0,
            resolver: None,
        }
    }
}
