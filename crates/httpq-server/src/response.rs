//! Responses as the application hands them over, the send flags, and the
//! framing the server adds (Content-Length, chunked, or close-delimited).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Flags for [`send_response`](crate::RequestQueue::send_response) and
/// [`send_body`](crate::RequestQueue::send_body).
///
/// ```
/// use httpq_server::SendFlags;
/// let f = SendFlags::MORE_DATA | SendFlags::DISCONNECT;
/// assert!(f.contains(SendFlags::MORE_DATA));
/// assert!(!SendFlags::NONE.contains(SendFlags::DISCONNECT));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendFlags(u8);

impl SendFlags {
    /// No flags: this call completes the response.
    pub const NONE: SendFlags = SendFlags(0);
    /// More body follows in later `send_body` calls (chunked for HTTP/1.1,
    /// close-delimited for HTTP/1.0, unless the application set Content-Length).
    pub const MORE_DATA: SendFlags = SendFlags(1);
    /// Close the connection once this response is complete.
    pub const DISCONNECT: SendFlags = SendFlags(2);

    /// True if every flag in `other` is set.
    pub fn contains(self, other: SendFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for SendFlags {
    type Output = SendFlags;
    fn bitor(self, rhs: SendFlags) -> SendFlags {
        SendFlags(self.0 | rhs.0)
    }
}

/// A response: status, optional reason phrase, headers and (first part of the) body.
///
/// The server adds `Date` and `Server`, and the framing headers unless the
/// application set Content-Length itself.
///
/// ```
/// use httpq_server::Response;
/// let r = Response::new(200).header("content-type", "text/plain").body("hello");
/// assert_eq!(r.status.as_u16(), 200);
/// assert_eq!(r.body.len(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase; `None` uses the canonical one.
    pub reason: Option<String>,
    /// Header fields. Hop-by-hop framing fields the server manages
    /// (`Transfer-Encoding`, `Date`) are replaced.
    pub headers: HeaderMap,
    /// The body sent with the head (more may follow with MORE_DATA).
    pub body: Bytes,
}

impl Response {
    /// A response with `status` (an invalid code becomes 500) and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            reason: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header; invalid names or values are ignored, since a response
    /// is never allowed to carry them.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.append(n, v);
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// Sets the reason phrase.
    pub fn reason(mut self, reason: &str) -> Response {
        self.reason = Some(reason.to_string());
        self
    }
}

/// How the server frames a response body on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body bytes may be written (HEAD, 1xx, 204, 304).
    NoBody,
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked; the terminating chunk is written when the response completes.
    Chunked,
    /// Everything until the connection closes.
    Close,
}
