//! The session: user agent, timeouts, proxy, per-server connection limit,
//! the keep-alive pool, and where notifications go (a callback and/or
//! event streams). Every other handle descends from a session.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::connect::Resolver;
use crate::handle::{Delivery, HandleCore};
use crate::pool::Pool;
use crate::request::{ConnectHandle, RequestHandle};
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
    /// The whole request, redirects and body included [none].
    pub total: Option<Duration>,
    /// Fail when the body arrives slower than this [none].
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
    /// Connections per server (scheme, host, port) at once [6].
    pub max_connections_per_server: usize,
    /// How long an idle keep-alive connection stays pooled [90 s].
    pub pool_idle_timeout: Duration,
    /// Follow redirects [true, as WinInet].
    pub follow_redirects: bool,
    /// Redirects followed before [`ClientError::TooManyRedirects`] [10].
    pub max_redirects: u32,
    /// Ask for and decode gzip, deflate and br bodies [false].
    pub decompress: bool,
    /// Largest decoded body of a compressed response [1 GiB].
    pub max_decoded_bytes: u64,
    /// Which certificate roots HTTPS trusts.
    pub tls_roots: TlsRoots,
    /// Protocol limits for responses (head size, 1xx count, ...).
    pub limits: httpq_proto::Limits,
    /// The status callback (also settable later with [`Session::set_callback`]).
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
            tls_roots: TlsRoots::default(),
            limits: httpq_proto::Limits::default(),
            callback: None,
            context: 0,
            resolver: None,
        }
    }
}

pub(crate) struct SessionInner {
    pub started: Instant,
    pub config: Config,
    pub delivery: Delivery,
    callback: Mutex<Option<Callback>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Notification>>>,
    pub pool: Arc<Pool>,
    pub tls: crate::transport::TlsConfig,
    pub resolver: Arc<dyn Resolver>,
}

impl SessionInner {
    pub(crate) fn deliver(&self, n: &Notification) {
        let cb = self
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(cb) = cb {
            cb(n);
        }
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if !subs.is_empty() {
            subs.retain(|s| s.send(n.clone()).is_ok());
        }
    }
}

/// Closes the session handle when the last [`Session`] clone goes.
struct SessionHandle(Arc<HandleCore>);

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.0.close();
        self.0.session.pool.clear(&self.0.session);
    }
}

/// A client session (WinInet's `InternetOpen` handle). Cheap to clone;
/// dropping the last clone closes it and everything opened from it.
///
/// ```no_run
/// # async fn f() -> Result<(), httpq_client::ClientError> {
/// use httpq_client::{Config, Session};
/// let session = Session::new(Config::default())?;
/// let mut req = session.open_url("http://127.0.0.1:8080/", 7).await?;
/// let mut buf = [0u8; 4096];
/// while req.read(&mut buf).await? > 0 {}
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
    handle: Arc<SessionHandle>,
}

impl Session {
    /// A session with `config`. Its HANDLE_CREATED goes to `config.callback`.
    pub fn new(config: Config) -> Result<Session, ClientError> {
        let tls = crate::transport::TlsConfig::new(&config.tls_roots)?;
        let resolver = config
            .resolver
            .clone()
            .unwrap_or_else(|| Arc::new(crate::connect::SystemResolver));
        let inner = Arc::new(SessionInner {
            started: Instant::now(),
            callback: Mutex::new(config.callback.clone()),
            pool: Arc::new(Pool::new(
                config.max_connections_per_server.max(1),
                config.pool_idle_timeout,
            )),
            config,
            delivery: Delivery::default(),
            subscribers: Mutex::new(Vec::new()),
            tls,
            resolver,
        });
        let core = HandleCore::new(&inner, None, inner.config.context)?;
        Ok(Session {
            inner,
            handle: Arc::new(SessionHandle(core)),
        })
    }

    /// The session handle's id.
    pub fn id(&self) -> u64 {
        self.handle.0.id
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Sets (or clears) the status callback (`InternetSetStatusCallback`).
    pub fn set_callback(&self, cb: Option<Callback>) {
        *self
            .inner
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = cb;
    }

    /// A stream of every notification from now on.
    pub fn events(&self) -> mpsc::UnboundedReceiver<Notification> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Sends a GET for `url` and waits for the response head, following
    /// redirects per the config (WinInet's `InternetOpenUrl`). `context` is
    /// carried on every notification of the new handle.
    pub async fn open_url(&self, url: &str, context: u64) -> Result<RequestHandle, ClientError> {
        let url = Url::parse(url)?;
        let mut req =
            RequestHandle::create(&self.inner, &self.handle.0, http::Method::GET, url, context)?;
        req.send(None).await?;
        Ok(req)
    }

    /// A request handle for `method url`, not yet sent; set headers, then
    /// [`send`](RequestHandle::send) or [`send_headers`](RequestHandle::send_headers).
    pub fn request(
        &self,
        method: &str,
        url: &str,
        context: u64,
    ) -> Result<RequestHandle, ClientError> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad method {method:?}")))?;
        let url = Url::parse(url)?;
        RequestHandle::create(&self.inner, &self.handle.0, method, url, context)
    }

    /// A connect handle for a server (`InternetConnect`): no I/O yet.
    pub fn connect(
        &self,
        scheme: Scheme,
        host: &str,
        port: u16,
        context: u64,
    ) -> Result<ConnectHandle, ClientError> {
        ConnectHandle::create(&self.inner, &self.handle.0, scheme, host, port, context)
    }

    /// Connections open to servers right now (pooled and in use).
    pub fn open_connections(&self) -> usize {
        self.inner.pool.open_count()
    }

    /// Closes the session: every handle opened from it is closed (pending
    /// operations complete as cancelled) and pooled connections are closed.
    pub fn close(&self) {
        self.handle.0.close();
        self.inner.pool.clear(&self.inner);
    }
}
