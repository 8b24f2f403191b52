//! The client's one error type: every way a request can fail, typed, with
//! the timeout or the protocol rule that fired named in it.

use std::fmt;

/// Which client timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// Name resolution took too long.
    Resolve,
    /// TCP connect (plus proxy tunnel and TLS handshake) took too long.
    Connect,
    /// A write of the request made no progress in time.
    Send,
    /// No response bytes in time (from when the request was sent, then per read).
    Receive,
    /// The whole request, body included, passed its deadline.
    Total,
    /// The body arrived slower than the low-speed limit over its window.
    LowSpeed,
}

impl TimeoutKind {
    /// A short lowercase name (`"connect"`, `"low-speed"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TimeoutKind::Resolve => "resolve",
            TimeoutKind::Connect => "connect",
            TimeoutKind::Send => "send",
            TimeoutKind::Receive => "receive",
            TimeoutKind::Total => "total",
            TimeoutKind::LowSpeed => "low-speed",
        }
    }
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A response the client refuses to trust (DESIGN.md §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The head or body framing broke a rule of the protocol core.
    #[error("{0}")]
    Parse(#[from] httpq_proto::Error),
    /// The server closed the connection before a complete response head.
    #[error("connection closed before the response")]
    ClosedBeforeResponse,
    /// The server closed the connection before the end of the body.
    #[error("connection closed {received} bytes into the body")]
    ShortBody {
        /// Body bytes received before the close.
        received: u64,
    },
    /// A compressed body did not decode.
    #[error("{0} body does not decode")]
    Decoding(&'static str),
    /// A redirect without a usable Location.
    #[error("redirect without a valid Location")]
    BadRedirect,
}

/// Which limit on a response body fired (see [`ClientError::LimitExceeded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyLimit {
    /// The decoded body grew past [`Config::max_decoded_bytes`](crate::Config::max_decoded_bytes).
    #[error("the decoded body is larger than {0} bytes")]
    DecodedSize(u64),
    /// The body decoded to more than
    /// [`Config::max_compression_ratio`](crate::Config::max_compression_ratio)
    /// times its encoded size (past the first MiB): a decompression bomb.
    #[error("the body decodes to more than {0} times its encoded size")]
    CompressionRatio(u32),
}

/// Everything a client operation can fail with.
///
/// ```
/// use httpq_client::{ClientError, TimeoutKind};
/// let e = ClientError::Timeout(TimeoutKind::Connect);
/// assert_eq!(e.to_string(), "connect timeout");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an absolute http or https URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The request cannot be sent as given (bad method or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    CannotResolve {
        /// The name looked up.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// No address of the host accepted a connection.
    #[error("cannot connect to {host}: {reason}")]
    CannotConnect {
        /// Host and port.
        host: String,
        /// The last connect error.
        reason: String,
    },
    /// A timeout fired; which one is named.
    #[error("{0} timeout")]
    Timeout(TimeoutKind),
    /// The TLS handshake or certificate check failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The proxy refused or broke the tunnel.
    #[error("proxy: {0}")]
    Proxy(String),
    /// The server broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(#[from] Violation),
    /// Writing the request failed.
    #[error("send failed: {0}")]
    Send(String),
    /// Reading the response failed (reset, and the like).
    #[error("receive failed: {0}")]
    Receive(String),
    /// More redirects than the limit.
    #[error("too many redirects (limit {0})")]
    TooManyRedirects(u32),
    /// The body is larger than the protocol limits allow.
    #[error("body too large")]
    BodyTooLarge,
    /// Decoding the body passed one of the session's limits; says which.
    #[error("{0}")]
    LimitExceeded(BodyLimit),
    /// The operation was cancelled by closing its handle.
    #[error("cancelled")]
    Cancelled,
    /// The handle is closed (or in the wrong state for this call).
    #[error("invalid handle state: {0}")]
    InvalidState(&'static str),
}

impl From<httpq_proto::Error> for ClientError {
    fn from(e: httpq_proto::Error) -> Self {
        match e {
            httpq_proto::Error::BodyTooLarge => ClientError::BodyTooLarge,
            e => ClientError::Protocol(Violation::Parse(e)),
        }
    }
}
