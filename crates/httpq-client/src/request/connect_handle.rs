//! Connect handles (`InternetConnect`) and closers: a server to open
//! requests on, and a way to close any handle from elsewhere.

use std::sync::Arc;

use http::Method;

use super::RequestHandle;
use crate::handle::HandleCore;
use crate::shared::SessionInner;
use crate::url::{Scheme, Url};
use crate::ClientError;

/// A connect handle (`InternetConnect`): a server to open requests on. No
/// I/O happens until a request is sent. Dropping it closes it and its requests.
pub struct ConnectHandle {
    core: Arc<HandleCore>,
    session: Arc<SessionInner>,
    scheme: Scheme,
    host: String,
    port: u16,
}

impl ConnectHandle {
    pub(crate) fn create(
        session: &Arc<SessionInner>,
        parent: &Arc<HandleCore>,
        scheme: Scheme,
        host: &str,
        port: u16,
        context: u64,
    ) -> Result<ConnectHandle, ClientError> {
        // Validated as a URL would be.
        let url = Url::parse(&format!("{}://{}:{port}/", scheme.as_str(), bracket(host)))?;
        Ok(ConnectHandle {
            core: HandleCore::new(&session.notifier, Some(parent), context)?,
            session: session.clone(),
            scheme,
            host: url.host().to_string(),
            port,
        })
    }

    /// The handle id.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// A request handle for `method target` on this server (`HttpOpenRequest`).
    ///
    /// ```no_run
    /// # async fn f(s: httpq_client::Session) -> Result<(), httpq_client::ClientError> {
    /// use httpq_client::Scheme;
    /// let server = s.connect(Scheme::Http, "127.0.0.1", 8080, 1)?;
    /// let mut req = server.open_request("PUT", "/upload", 2)?;
    /// req.send_headers(Some(6)).await?;
    /// req.write(b"hello\n").await?;
    /// req.end_request().await?;
    /// assert!(req.status() < 500);
    /// # Ok(()) }
    /// ```
    pub fn open_request(
        &self,
        method: &str,
        target: &str,
        context: u64,
    ) -> Result<RequestHandle, ClientError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad method {method:?}")))?;
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        let url = Url::parse(&format!(
            "{}://{}:{}{}",
            self.scheme.as_str(),
            bracket(&self.host),
            self.port,
            target
        ))?;
        RequestHandle::create(&self.session, &self.core, method, url, context)
    }

    /// A handle that can close this one from elsewhere.
    pub fn closer(&self) -> Closer {
        Closer(self.core.clone())
    }

    /// Closes the handle and every request opened on it.
    pub fn close(self) {}
}

impl Drop for ConnectHandle {
    fn drop(&mut self) {
        self.core.close();
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Closes a handle from another task, a callback, or a signal handler:
/// a pending operation completes as cancelled, then HANDLE_CLOSING.
#[derive(Clone)]
pub struct Closer(pub(super) Arc<HandleCore>);

impl Closer {
    /// Closes the handle (and its children). Idempotent.
    pub fn close(&self) {
        self.0.close();
    }

    /// The handle's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }
}
