//! Request handles (`HttpOpenRequest` / `InternetOpenUrl`): sending a
//! request (in one step or as headers, body chunks and an end), receiving
//! its head through 1xx and redirects, then reading the body into caller
//! buffers — every phase notified, every wait under its timeout and
//! cancellable by close.
//!
//! | part | module |
//! |---|---|
//! | the handle, its public calls, the body stream | this module |
//! | connect handles and closers | [`connect_handle`] |
//! | sending, the response head, redirects | `exchange` |
//! | reading and decoding the body | `body` |

mod body;
pub mod connect_handle;
mod exchange;

use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;
use httpq_proto::{BodyDecoder, BodyLength, ResponseHead, ResponseParser, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::connect::establish;
use crate::decode::{ContentDecoder, DecodeLimits};
use crate::error::Violation;
use crate::handle::HandleCore;
use crate::pool::{Checkout, Connection, PoolKey};
use crate::shared::SessionInner;
use crate::status::{Payload, Status, Timings};
use crate::url::{Scheme, Url};
use crate::{ClientError, TimeoutKind, Timeouts};

pub use connect_handle::{Closer, ConnectHandle};

/// What [`RequestHandle::query_info`] can be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The status code.
    StatusCode,
    /// The reason phrase.
    StatusText,
    /// Content-Length, if the response has one.
    ContentLength,
    /// All header lines as received (status line included).
    RawHeaders,
    /// One header's value (the first, if repeated).
    Header(String),
}

enum State {
    Created,
    Uploading(Box<Upload>),
    Receiving(Box<Receiving>),
    Failed,
}

struct Upload {
    conn: Connection,
    chunked: bool,
    remaining: Option<u64>,
}

struct Receiving {
    head: ResponseHead,
    conn: Option<Connection>,
    body: BodyDecoder,
    content: ContentDecoder,
    /// Decoded body bytes ready for the caller.
    ready: BytesMut,
    scratch: Vec<u8>,
    done: bool,
    /// The connection may go back to the pool once the body is read.
    keep_alive: bool,
    low_speed_start: Instant,
    low_speed_bytes: u64,
    /// When the last socket read returned: the time from then until the
    /// next wait is the caller's, not the server's, so no low-speed window
    /// counts it.
    last_read: Instant,
}

/// A request handle (`HttpOpenRequest` / `InternetOpenUrl`): send, then
/// query the response and read its body. Closing or dropping it cancels
/// what is pending; after that nothing of it remains (its connection is
/// closed unless the body was read to the end, when it is pooled).
pub struct RequestHandle {
    core: Arc<HandleCore>,
    session: Arc<SessionInner>,
    method: Method,
    url: Url,
    headers: HeaderMap,
    state: State,
    clock: Clock,
    redirects: u32,
    reused: bool,
    remote: Option<std::net::SocketAddr>,
    /// Default fields the caller removed (Host, User-Agent, Accept, ...).
    removed: Vec<HeaderName>,
    /// The heads of the redirect responses followed, in order.
    redirect_heads: Vec<Bytes>,
    /// This request's timeouts (the session's unless set).
    timeouts: Timeouts,
}

impl RequestHandle {
    pub(crate) fn create(
        session: &Arc<SessionInner>,
        parent: &Arc<HandleCore>,
        method: Method,
        url: Url,
        context: u64,
    ) -> Result<RequestHandle, ClientError> {
        Ok(RequestHandle {
            core: HandleCore::new(&session.notifier, Some(parent), context)?,
            session: session.clone(),
            method,
            url,
            headers: HeaderMap::new(),
            state: State::Created,
            clock: Clock::new(session.config.timeouts.total),
            redirects: 0,
            reused: false,
            remote: None,
            removed: Vec::new(),
            redirect_heads: Vec::new(),
            timeouts: session.config.timeouts,
        })
    }

    /// The handle id.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// The context value given when the handle was made.
    pub fn context(&self) -> u64 {
        self.core.context
    }

    /// A handle that can close this one from another task or a callback.
    pub fn closer(&self) -> Closer {
        Closer(self.core.clone())
    }

    /// The URL now (after redirects, the last one).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Redirects followed.
    pub fn redirect_count(&self) -> u32 {
        self.redirects
    }

    /// Whether the (last) request went over a pooled connection.
    pub fn connection_reused(&self) -> bool {
        self.reused
    }

    /// The address the (last) request went to (the proxy's, through one).
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.remote
    }

    /// Per-phase timings so far.
    pub fn timings(&self) -> Timings {
        self.clock.timings
    }

    /// This request's timeouts: the session's, unless set with
    /// [`set_timeouts`](Self::set_timeouts).
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Gives this request timeouts of its own (WinInet's
    /// `InternetSetOption` on a request handle). A total timeout counts
    /// from now if the request has not been sent.
    ///
    /// ```no_run
    /// # async fn f(session: httpq_client::Session) -> Result<(), httpq_client::ClientError> {
    /// use std::time::Duration;
    /// let mut req = session.request("GET", "http://127.0.0.1:8080/slow", 1)?;
    /// let t = req.timeouts();
    /// req.set_timeouts(httpq_client::Timeouts { receive: Some(Duration::from_millis(500)), ..t });
    /// req.send(None).await?; // a head later than 500 ms is ClientError::Timeout(Receive)
    /// # Ok(()) }
    /// ```
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        if matches!(self.state, State::Created) {
            self.clock = Clock::new(timeouts.total);
        }
        self.timeouts = timeouts;
    }

    /// Adds a request header (before sending).
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<(), ClientError> {
        if !matches!(self.state, State::Created) {
            return Err(ClientError::InvalidState("headers after send"));
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad header name {name:?}")))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| ClientError::InvalidRequest(format!("bad value for {name}")))?;
        self.headers.append(n, v);
        Ok(())
    }

    /// Removes a request header: any value added for it, and the one the
    /// client would send by default (`Host`, `User-Agent`, `Accept`,
    /// `Accept-Encoding`, `Authorization` from URL credentials) — as
    /// WinInet's replace-with-nothing and curl's `-H 'Name:'` do.
    ///
    /// ```no_run
    /// # async fn f(s: httpq_client::Session) -> Result<(), httpq_client::ClientError> {
    /// let mut req = s.request("GET", "http://127.0.0.1:8080/", 0)?;
    /// req.remove_header("accept")?;
    /// req.send(None).await?;
    /// # Ok(()) }
    /// ```
    pub fn remove_header(&mut self, name: &str) -> Result<(), ClientError> {
        if !matches!(self.state, State::Created) {
            return Err(ClientError::InvalidState("headers after send"));
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad header name {name:?}")))?;
        self.headers.remove(&n);
        if !self.removed.contains(&n) {
            self.removed.push(n);
        }
        Ok(())
    }

    /// The raw heads of the redirect responses followed to get here, oldest first.
    pub fn redirect_heads(&self) -> &[Bytes] {
        &self.redirect_heads
    }

    /// Sends the request with an optional body and waits for the response
    /// head (following redirects per the session config). Pending: ends
    /// with REQUEST_COMPLETE.
    pub async fn send(&mut self, body: Option<Bytes>) -> Result<(), ClientError> {
        self.pending_op(async |h| h.send_inner(body).await).await
    }

    /// Runs a send-side operation that always waits on the network: one
    /// REQUEST_COMPLETE at its end; after a failure the request is spent.
    async fn pending_op<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Self) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut op = self.core.begin()?;
        op.set_pending();
        // The send side only: reads (the hot loop) enter no span.
        let span = tracing::debug_span!(
            "request",
            handle = self.core.id,
            context = self.core.context,
            method = %self.method,
            url = %self.url,
        );
        let r = tracing::Instrument::instrument(f(self), span).await;
        if r.is_err() {
            self.state = State::Failed;
        }
        let r = op.finish(r);
        if r.is_err() {
            // Cancelled by a close after it succeeded: spent all the same,
            // and a closed handle keeps no connection.
            self.state = State::Failed;
        }
        r
    }

    /// Sends the head only (`HttpSendRequestEx`): `Some(n)` announces a
    /// Content-Length, `None` sends the body chunked. Follow with
    /// [`write`](Self::write) and [`end_request`](Self::end_request).
    pub async fn send_headers(&mut self, length: Option<u64>) -> Result<(), ClientError> {
        self.pending_op(async |h| h.send_headers_inner(length).await)
            .await
    }

    /// Writes body bytes after [`send_headers`](Self::send_headers).
    pub async fn write(&mut self, data: &[u8]) -> Result<usize, ClientError> {
        self.pending_op(async |h| h.write_inner(data).await.map(|()| data.len()))
            .await
    }

    /// Ends the body (`HttpEndRequest`) and waits for the response head.
    pub async fn end_request(&mut self) -> Result<(), ClientError> {
        self.pending_op(async |h| h.end_request_inner().await).await
    }

    fn receiving(&self) -> Option<&Receiving> {
        match &self.state {
            State::Receiving(r) => Some(r),
            _ => None,
        }
    }

    /// The status code (0 before the response).
    pub fn status(&self) -> u16 {
        self.receiving().map_or(0, |r| r.head.status())
    }

    /// The response headers.
    pub fn headers(&self) -> HeaderMap {
        self.receiving()
            .map(|r| r.head.header_map())
            .unwrap_or_default()
    }

    /// `HttpQueryInfo`: one fact about the response, as text.
    pub fn query_info(&self, q: Query) -> Option<String> {
        let r = self.receiving()?;
        match q {
            Query::StatusCode => Some(r.head.status().to_string()),
            Query::StatusText => Some(String::from_utf8_lossy(r.head.reason()).into_owned()),
            Query::ContentLength => match r.head.body() {
                BodyLength::Length(n) => Some(n.to_string()),
                _ => r
                    .head
                    .header("content-length")
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            },
            Query::RawHeaders => Some(String::from_utf8_lossy(r.head.as_bytes()).into_owned()),
            Query::Header(name) => r
                .head
                .header(&name)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        }
    }

    /// The body length announced by the server, if any.
    pub fn content_length(&self) -> Option<u64> {
        match self.receiving()?.head.body() {
            BodyLength::Length(n) if self.receiving()?.content.is_identity() => Some(n),
            BodyLength::Empty => Some(0),
            _ => None,
        }
    }

    /// Reads body bytes into `buf`; 0 at the end. Completes at once from
    /// buffered bytes, else is pending (REQUEST_COMPLETE when done).
    ///
    /// Dropping a pending read's future (a `select!` or `timeout` around
    /// it) cancels the request, as closing would: REQUEST_COMPLETE reports
    /// it cancelled, its connection closes, and later calls on the handle
    /// fail. Use the session's timeouts to bound a read instead.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(n) = self.try_read(buf)? {
            return Ok(n);
        }
        let mut op = self.core.begin()?;
        op.set_pending();
        let r = if self.direct_ok() {
            self.read_direct(buf).await
        } else {
            let r = self.fill().await;
            r.map(|()| self.take_ready(buf))
        };
        let r = op.finish(r);
        self.release_if_closed();
        r
    }

    /// Reads without waiting: `Some(n)` bytes (0 at the end of the body),
    /// `None` when nothing is buffered yet.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ClientError> {
        self.check_open()?;
        if self
            .receiving()
            .is_some_and(|r| r.content.is_identity() && r.ready.is_empty())
        {
            return self.copy_buffered(buf);
        }
        self.pump()?;
        let Some(r) = self.receiving() else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        if !r.ready.is_empty() {
            return Ok(Some(self.take_ready(buf)));
        }
        Ok(r.done.then_some(0))
    }

    /// How many bytes a read would return without waiting; waits for some
    /// if none are buffered (`InternetQueryDataAvailable`); 0 at the end.
    pub async fn data_available(&mut self) -> Result<usize, ClientError> {
        self.check_open()?;
        self.pump()?;
        let Some(r) = self.receiving() else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        if !r.ready.is_empty() || r.done {
            return Ok(r.ready.len());
        }
        let mut op = self.core.begin()?;
        op.set_pending();
        let r = self.fill().await;
        let r = r.map(|()| self.receiving().map_or(0, |r| r.ready.len()));
        let r = op.finish(r);
        self.release_if_closed();
        r
    }

    /// The next piece of the body as `Bytes` (no copy into a caller
    /// buffer); `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.check_open()?;
        self.pump()?;
        if self
            .receiving()
            .is_some_and(|r| r.ready.is_empty() && !r.done)
        {
            let mut op = self.core.begin()?;
            op.set_pending();
            let r = self.fill().await;
            let r = op.finish(r);
            self.release_if_closed();
            r?;
        }
        match &mut self.state {
            State::Receiving(r) if !r.ready.is_empty() => Ok(Some(r.ready.split().freeze())),
            State::Receiving(_) => Ok(None),
            _ => Err(ClientError::InvalidState("no response to read")),
        }
    }

    /// Reads the rest of the body into one buffer.
    pub async fn bytes(&mut self) -> Result<Bytes, ClientError> {
        let mut all = BytesMut::new();
        while let Some(c) = self.chunk().await? {
            all.extend_from_slice(&c);
        }
        Ok(all.freeze())
    }

    /// Closes the handle: a pending operation completes as cancelled, then
    /// HANDLE_CLOSING; the connection closes unless the body was read.
    pub fn close(self) {}
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        if let State::Receiving(r) = &mut self.state {
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        if let State::Uploading(_) = &self.state {
            self.state = State::Failed;
        }
        self.core.close();
    }
}

type ChunkFuture = std::pin::Pin<
    Box<dyn Future<Output = (RequestHandle, Result<Option<Bytes>, ClientError>)> + Send>,
>;

/// The body as a stream of [`Bytes`] ([`RequestHandle::into_stream`]).
pub struct BodyStream {
    handle: Option<RequestHandle>,
    next: Option<ChunkFuture>,
}

impl RequestHandle {
    /// The rest of the body as a `futures` stream of `Bytes` pieces.
    ///
    /// ```no_run
    /// # async fn f(req: httpq_client::RequestHandle) {
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// use futures_core::Stream;
    /// let mut body = req.into_stream();
    /// while let Some(piece) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
    ///     println!("{} bytes", piece.unwrap().len());
    /// }
    /// # }
    /// ```
    pub fn into_stream(self) -> BodyStream {
        BodyStream {
            handle: Some(self),
            next: None,
        }
    }
}

impl futures_core::Stream for BodyStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.next.is_none() {
            let Some(mut h) = self.handle.take() else {
                return std::task::Poll::Ready(None);
            };
            self.next = Some(Box::pin(async move {
                let r = h.chunk().await;
                (h, r)
            }));
        }
        let fut = self.next.as_mut().expect("set above");
        let (h, r) = std::task::ready!(fut.as_mut().poll(cx));
        self.next = None;
        match r {
            Ok(Some(b)) => {
                self.handle = Some(h);
                std::task::Poll::Ready(Some(Ok(b)))
            }
            Ok(None) => std::task::Poll::Ready(None),
            Err(e) => std::task::Poll::Ready(Some(Err(e))),
        }
    }
}
