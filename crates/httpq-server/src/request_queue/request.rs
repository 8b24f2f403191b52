//! A request as the application receives it: ids, URL context, method,
//! raw and cooked URL, version, headers, addresses, and the body bytes
//! that came with it.

use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use httpq_proto::{CookedUrl, RequestHead, Version};

use crate::conn::Conn;
use crate::disconnect::DisconnectReason;
use crate::registry;
use crate::stream::Stream;
use crate::tls::TlsInfo;

/// A request as the application receives it: ids, URL context, method,
/// raw and cooked URL, version, headers, addresses and body state.
///
/// ```no_run
/// # async fn f(queue: httpq_server::RequestQueue) -> Result<(), httpq_server::ServerError> {
/// let req = queue.receive().await?;
/// println!("{} {} from {}", req.method(), req.url().path, req.remote_addr());
/// # Ok(()) }
/// ```
pub struct Request(pub(super) ManuallyDrop<Box<RequestInner>>);

impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: the box is taken exactly once, here, and `self.0` is never
        // touched again (the request is being dropped).
        let inner = unsafe { ManuallyDrop::take(&mut self.0) };
        recycle::put(inner);
    }
}

/// Request allocations kept per thread for the next requests: with requests
/// made and dropped in pipelined batches, malloc's per-size cache (7 entries)
/// overflows and each ~450-byte box cost about 380 instructions to allocate
/// and free (callgrind, pipelined plaintext). A kept box stays a valid
/// request with everything it owned released, so reusing it writes only the
/// few fields that change (no ~450-byte initialisation per request).
mod recycle {
    use std::cell::RefCell;
    use std::sync::OnceLock;

    use super::RequestInner;

    /// Enough for several pipelined batches; beyond it boxes are freed.
    const KEEP: usize = 256;

    thread_local! {
        // Boxes, not values: a recycled box is handed out as the request's
        // own allocation.
        #[allow(clippy::vec_box)]
        static FREE: RefCell<Vec<Box<RequestInner>>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take() -> Option<Box<RequestInner>> {
        FREE.try_with(|f| f.borrow_mut().pop()).ok().flatten()
    }

    pub(super) fn put(mut inner: Box<RequestInner>) {
        // Released now, not when the box is reused: the connection, the
        // read buffer the head and body point into, the lazily built parts.
        inner.conn = None;
        inner.stream = None;
        inner.head.clear();
        inner.body = bytes::Bytes::new();
        if *inner.lazy.get_mut() {
            inner.url = OnceLock::new();
            inner.headers = OnceLock::new();
            *inner.lazy.get_mut() = false;
        }
        let _ = FREE.try_with(move |f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                f.push(inner);
            }
        });
    }
}

/// Boxed so a request moves through queues and futures as one pointer.
///
/// In declaration order (`repr(C)`), what every request touches first and
/// the lazily built parts last: pipelined batches keep hundreds of requests
/// in flight, and with the compiler's order a request touched six or seven
/// cache lines instead of three (callgrind's cache simulation).
#[repr(C)]
pub(crate) struct RequestInner {
    /// Always set while the request is in use (`None` only in a recycled box).
    conn: Option<Arc<Conn>>,
    id: u64,
    url_context: u64,
    /// When the request has waited too long in its queue (RequestQueue timeout).
    pub(super) expires: Instant,
    seq: u32,
    /// More body follows what came with the request.
    more_body: bool,
    /// `url` or `headers` has been set: only then does recycling touch them.
    lazy: AtomicBool,
    /// Body bytes that came with the request.
    body: Bytes,
    head: RequestHead,
    /// The cooked URL, built on first use unless routing needed it already.
    url: OnceLock<CookedUrl>,
    headers: OnceLock<http::HeaderMap>,
    /// The HTTP/2 stream the request came on (`None`: HTTP/1.x).
    stream: Option<Arc<Stream>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.0.id)
            .field("connection_id", &self.0.conn().id)
            .field("method", &String::from_utf8_lossy(self.0.head.method()))
            .field("target", &String::from_utf8_lossy(self.0.head.target()))
            .finish()
    }
}

impl RequestInner {
    pub(crate) fn conn(&self) -> &Arc<Conn> {
        self.conn
            .as_ref()
            .expect("a request in use has its connection")
    }
}

/// What routing decided about a parsed request.
pub(crate) struct Filled {
    pub seq: u32,
    pub url_context: u64,
    pub cooked: Option<CookedUrl>,
    pub expires: Instant,
    pub body: Bytes,
    pub more_body: bool,
}

impl Request {
    /// An empty request of `conn` for the parser to fill in place, in a
    /// recycled allocation when there is one. `now`: any instant (the real
    /// expiry comes with [`fill`](Self::fill)).
    pub(crate) fn blank(conn: &Arc<Conn>, now: Instant) -> Request {
        let inner = match recycle::take() {
            Some(mut spare) => {
                spare.conn = Some(conn.clone());
                spare
            }
            None => Box::new(RequestInner {
                id: 0,
                conn: Some(conn.clone()),
                seq: 0,
                url_context: 0,
                more_body: false,
                lazy: AtomicBool::new(false),
                body: Bytes::new(),
                head: RequestHead::default(),
                url: OnceLock::new(),
                headers: OnceLock::new(),
                expires: now,
                stream: None,
            }),
        };
        Request(ManuallyDrop::new(inner))
    }

    /// The request's place in its connection's order.
    pub(crate) fn seq(&self) -> u32 {
        self.0.seq
    }

    pub(crate) fn conn(&self) -> &Arc<Conn> {
        self.0.conn()
    }

    /// The head, for the parser to fill.
    pub(crate) fn head_mut(&mut self) -> &mut RequestHead {
        &mut self.0.head
    }

    /// Completes a parsed request with what routing decided.
    pub(crate) fn fill(&mut self, f: Filled) {
        let inner = &mut *self.0;
        inner.id = registry::request_id(inner.conn().id, f.seq);
        inner.seq = f.seq;
        inner.url_context = f.url_context;
        inner.expires = f.expires;
        inner.body = f.body;
        inner.more_body = f.more_body;
        if let Some(u) = f.cooked {
            *inner.lazy.get_mut() = true;
            let _ = inner.url.set(u);
        }
    }

    /// The request came on HTTP/2 stream `stream`.
    pub(crate) fn set_stream(&mut self, stream: Arc<Stream>) {
        self.0.stream = Some(stream);
    }

    /// The request id: unique, never reused; answer the request with it.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The connection id: the same for every request on a keep-alive connection.
    pub fn connection_id(&self) -> u64 {
        self.0.conn().id
    }

    /// The context value of the URL prefix that matched.
    pub fn url_context(&self) -> u64 {
        self.0.url_context
    }

    /// The method (unknown methods included).
    pub fn method(&self) -> http::Method {
        self.0.head.http_method()
    }

    /// The method token exactly as sent.
    pub fn method_bytes(&self) -> &[u8] {
        self.0.head.method()
    }

    /// The raw request target bytes.
    pub fn raw_target(&self) -> &[u8] {
        self.0.head.target()
    }

    /// The cooked URL: decoded, normalised path; host; port; raw query.
    pub fn url(&self) -> &CookedUrl {
        self.0.url.get_or_init(|| {
            self.0.lazy.store(true, Ordering::Relaxed);
            let conn = self.0.conn();
            // Only targets that already passed `simple_path` get here, and
            // their cooked form cannot fail; the fallback is unreachable.
            self.0
                .head
                .cooked_url(conn.scheme(), conn.local, &conn.env.limits)
                .unwrap_or_else(|_| CookedUrl {
                    scheme: conn.scheme(),
                    host: String::new(),
                    port: conn.local.port(),
                    path: "/".to_string(),
                    query: String::new(),
                })
        })
    }

    /// The cooked (decoded, normalised) path, without building the whole
    /// cooked URL when the target needed no decoding (the common case:
    /// no allocation).
    pub fn path(&self) -> &str {
        if let Some(u) = self.0.url.get() {
            return &u.path;
        }
        match self.0.head.simple_path(&self.0.conn().env.limits) {
            // A simple path is ASCII, and it is its own cooked form.
            Some(p) => std::str::from_utf8(p).unwrap_or("/"),
            None => &self.url().path,
        }
    }

    /// The protocol version ([`Version::Http2`] for a request that came
    /// on an HTTP/2 stream).
    pub fn version(&self) -> Version {
        if self.0.stream.is_some() {
            return Version::Http2;
        }
        self.0.head.version()
    }

    /// The TLS session's details (version, cipher, SNI name, ALPN), for a
    /// request that came over TLS.
    ///
    /// ```no_run
    /// # fn f(req: &httpq_server::Request) {
    /// if let Some(tls) = req.tls() {
    ///     println!("{} {} sni={:?}", tls.version, tls.cipher, tls.sni);
    /// }
    /// # }
    /// ```
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.0.conn().tls.as_deref()
    }

    /// The header fields (built on first use; values share the request's memory).
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers.get_or_init(|| {
            self.0.lazy.store(true, Ordering::Relaxed);
            self.0.head.header_map()
        })
    }

    /// The first value of header `name`, without building the map.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.head.header(name)
    }

    /// The parsed head (zero-copy access to everything the client sent).
    pub fn head(&self) -> &RequestHead {
        &self.0.head
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.0.conn().remote
    }

    /// The local address the request arrived on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.conn().local
    }

    /// Bytes of the request head.
    pub fn bytes_received(&self) -> u64 {
        self.0.head.as_bytes().len() as u64
    }

    /// True if a body follows the head (whether or not it came with the request).
    pub fn has_body(&self) -> bool {
        match &self.0.stream {
            // An h2 body never travels with the request: it is all "more".
            Some(_) => self.0.more_body,
            None => !self.0.head.body().is_empty(),
        }
    }

    /// The body bytes that came with the request — all of it when
    /// [`more_body`](Self::more_body) is false. Only when the queue copies
    /// bodies (see [`RequestQueue::set_copy_body`](crate::RequestQueue::set_copy_body));
    /// the rest is read with `receive_body`, which continues after these bytes.
    ///
    /// ```no_run
    /// # async fn f(queue: httpq_server::RequestQueue) -> Result<(), httpq_server::ServerError> {
    /// use httpq_server::{Response, SendFlags};
    /// queue.set_copy_body(64 * 1024);
    /// let req = queue.receive().await?;
    /// if !req.more_body() {
    ///     // The whole body is here: answer in one call.
    ///     let echo = Response::new(200).body(req.body().clone());
    ///     queue.send_response(req.id(), echo, SendFlags::NONE).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn body(&self) -> &Bytes {
        &self.0.body
    }

    /// True when body follows beyond [`body`](Self::body) (http.sys's
    /// `HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS`).
    pub fn more_body(&self) -> bool {
        self.0.more_body
    }

    /// True while the client's connection is open (and, on HTTP/2, the
    /// request's stream has not been reset).
    pub fn is_connected(&self) -> bool {
        if let Some(s) = &self.0.stream {
            if s.ended().is_some() {
                return false;
            }
        }
        self.0.conn().is_connected()
    }

    /// Completes when this request's connection breaks, with the reason —
    /// or, on HTTP/2, when the client resets the request's stream
    /// ([`DisconnectReason::StreamReset`]) while the connection goes on.
    /// Cancel-safe: dropping it deregisters.
    pub async fn disconnected(&self) -> DisconnectReason {
        match &self.0.stream {
            // A stream answered and forgotten ends with its connection.
            Some(s) => tokio::select! {
                r = s.wait_ended() => r,
                r = wait_conn(self.0.conn()) => r,
            },
            None => wait_conn(self.0.conn()).await,
        }
    }
}

/// Completes when `conn` ends, with why.
pub(crate) async fn wait_conn(conn: &Conn) -> DisconnectReason {
    loop {
        let notified = conn.gone.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(r) = conn.lock().reason {
            return r;
        }
        notified.await;
    }
}
