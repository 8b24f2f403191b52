//! The session: the handle every other handle descends from, and the
//! calls that open them. What it is configured with is [`Config`].

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::handle::{HandleCore, Notifier};
use crate::pool::Pool;
use crate::request::{ConnectHandle, RequestHandle};
use crate::shared::SessionInner;
use crate::status::Notification;
use crate::url::{Scheme, Url};
use crate::ClientError;

pub use crate::config::{Callback, Config, LowSpeed, Proxy, Timeouts};

/// Closes the session handle when the last [`Session`] clone goes.
struct SessionHandle {
    core: Arc<HandleCore>,
    inner: Arc<SessionInner>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.core.close();
        self.inner.pool.clear();
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
            .unwrap_or_else(|| Arc::new(crate::resolve::SystemResolver));
        let inner = Arc::new(SessionInner {
            notifier: Arc::new(Notifier::new(config.callback.clone())),
            pool: Arc::new(Pool::new(
                config.max_connections_per_server.max(1),
                config.pool_idle_timeout,
            )),
            config,
            tls,
            resolver,
        });
        let core = HandleCore::new(&inner.notifier, None, inner.config.context)?;
        Ok(Session {
            handle: Arc::new(SessionHandle {
                core,
                inner: inner.clone(),
            }),
            inner,
        })
    }

    /// The session handle's id.
    pub fn id(&self) -> u64 {
        self.handle.core.id
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Sets (or clears) the status callback (`InternetSetStatusCallback`).
    pub fn set_callback(&self, cb: Option<Callback>) {
        *self
            .inner
            .notifier
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = cb;
    }

    /// A stream of every notification from now on.
    pub fn events(&self) -> mpsc::UnboundedReceiver<Notification> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .notifier
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
        let mut req = RequestHandle::create(
            &self.inner,
            &self.handle.core,
            http::Method::GET,
            url,
            context,
        )?;
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
        RequestHandle::create(&self.inner, &self.handle.core, method, url, context)
    }

    /// A connect handle for a server (`InternetConnect`): no I/O yet.
    pub fn connect(
        &self,
        scheme: Scheme,
        host: &str,
        port: u16,
        context: u64,
    ) -> Result<ConnectHandle, ClientError> {
        ConnectHandle::create(&self.inner, &self.handle.core, scheme, host, port, context)
    }

    /// Connections open to servers right now (pooled and in use).
    pub fn open_connections(&self) -> usize {
        self.inner.pool.open_count()
    }

    /// Closes the session: every handle opened from it is closed (pending
    /// operations complete as cancelled) and pooled connections are closed.
    pub fn close(&self) {
        self.handle.core.close();
        self.inner.pool.clear();
    }
}
