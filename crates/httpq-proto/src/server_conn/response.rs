//! Responses as the application hands them over, the send flags, file
//! bodies, and the framing the server adds (Content-Length, chunked, or
//! close-delimited).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Flags for sending a response or more of its body.
///
/// ```
/// use httpq_proto::server_conn::SendFlags;
/// let f = SendFlags::MORE_DATA | SendFlags::DISCONNECT;
/// assert!(f.contains(SendFlags::MORE_DATA));
/// assert!(!SendFlags::NONE.contains(SendFlags::DISCONNECT));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendFlags(u8);

impl SendFlags {
    /// No flags: this call completes the response.
    pub const NONE: SendFlags = SendFlags(0);
    /// More body follows in later calls (chunked for HTTP/1.1,
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

/// A byte range of an open file, sent as body without being read into
/// memory (`sendfile`), like the HTTP Server API's `HttpDataChunkFromFileHandle`.
///
/// ```no_run
/// use std::sync::Arc;
/// use httpq_proto::server_conn::FileChunk;
/// let f = Arc::new(std::fs::File::open("big.iso")?);
/// let whole = FileChunk::whole(f)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileChunk {
    /// The file, shared: an open-file cache can hand the same one to many responses.
    pub file: Arc<std::fs::File>,
    /// Where the range starts.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

impl FileChunk {
    /// The whole file, as long as it is now.
    pub fn whole(file: Arc<std::fs::File>) -> std::io::Result<FileChunk> {
        let len = file.metadata()?.len();
        Ok(FileChunk {
            file,
            offset: 0,
            len,
        })
    }
}

/// A response: status, optional reason phrase, headers and (first part of the) body.
///
/// The server adds `Date` and `Server`, and the framing headers unless the
/// application set Content-Length itself.
///
/// ```
/// use httpq_proto::server_conn::Response;
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
    /// (`Transfer-Encoding`, `Connection`, `Date`, `Server`) are replaced.
    pub headers: HeaderMap,
    /// The body sent with the head (more may follow with MORE_DATA).
    pub body: Bytes,
    /// A file range sent after `body`, straight from the file.
    pub file: Option<FileChunk>,
}

/// Header maps kept per thread for the next responses: a map's storage
/// is allocated on its first field, so without this every response with a
/// field allocates and frees it (two allocations per static file answer).
mod maps {
    use std::cell::RefCell;

    use http::HeaderMap;

    /// Enough for a thread's responses in flight; beyond it maps are freed.
    const KEEP: usize = 16;
    /// Larger maps are freed, not kept.
    const MAX_CAPACITY: usize = 64;

    thread_local! {
        static FREE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take() -> HeaderMap {
        FREE.try_with(|f| f.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub(super) fn put(mut map: HeaderMap) {
        if map.capacity() == 0 || map.capacity() > MAX_CAPACITY {
            return;
        }
        map.clear();
        let _ = FREE.try_with(move |f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                f.push(map);
            }
        });
    }
}

impl Response {
    /// A response with `status` (an invalid code becomes 500) and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            reason: None,
            headers: maps::take(),
            body: Bytes::new(),
            file: None,
        }
    }

    /// Done with: its header map's storage is kept for the next response
    /// made on this thread (what a server does once a response is encoded).
    pub fn recycle(self) {
        maps::put(self.headers);
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

    /// Sends `chunk` of a file as the body (after any bytes set with
    /// [`body`](Self::body)), without reading it into memory.
    pub fn file(mut self, chunk: FileChunk) -> Response {
        self.file = Some(chunk);
        self
    }

    /// Sets the reason phrase.
    pub fn reason(mut self, reason: &str) -> Response {
        self.reason = Some(reason.to_string());
        self
    }

    /// Body bytes this response carries (memory and file).
    pub fn body_len(&self) -> u64 {
        self.body.len() as u64 + self.file.as_ref().map_or(0, |f| f.len)
    }
}

/// How the server frames a response body on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes may be written (HEAD, 204, 304).
    NoBody,
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked; the terminating chunk is written when the response completes.
    Chunked,
    /// Everything until the connection closes.
    Close,
}

/// The `Server` and `Date` field lines of this second, and the same after
/// `HTTP/1.1 200 OK`: what every response starts with, kept ready by the
/// caller (the protocol core has no clock) so writing them is one copy.
#[derive(Debug, Clone, Copy)]
pub struct FixedLines<'a> {
    /// `Server: …\r\nDate: …\r\n` (the Server line only if one is configured).
    pub fields: &'a [u8],
    /// `HTTP/1.1 200 OK\r\n` followed by `fields`.
    pub ok_11: &'a [u8],
}
