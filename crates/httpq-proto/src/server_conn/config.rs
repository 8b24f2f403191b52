//! What a server connection is configured with: the six HTTP Server API
//! timeouts, the half-close policy, and the limits of one connection.

use std::time::Duration;

use crate::Limits;

/// Request-body bytes buffered for the application before reading pauses.
pub const PIPE_CAP: usize = 64 * 1024;

/// A connection's write budget: response bytes held in memory, waiting for
/// the socket, before a sender is made to wait. Bytes of a file body are
/// not counted (they stay in the file until they are sent), so a slow
/// reader costs at most this much beyond the kernel's socket buffer.
pub const WRITE_BUDGET: usize = 64 * 1024;

/// What a client's FIN means while a request is outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HalfClosePolicy {
    /// A FIN is a disconnect: waiters complete and the request is abandoned.
    #[default]
    Disconnect,
    /// A FIN only means the client sends no more requests; the responses
    /// still go out, and the disconnect fires when the connection ends.
    Allow,
}

/// Which server timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The request head did not arrive in time.
    HeaderWait,
    /// The body stalled while the application waited for it.
    EntityBody,
    /// Draining an unread body took too long.
    DrainEntityBody,
    /// The connection sat idle between requests.
    IdleConnection,
    /// A request waited in its queue too long.
    RequestQueue,
    /// The client read the response slower than the minimum send rate.
    MinSendRate,
}

impl TimeoutKind {
    /// All six, in the HTTP Server API's order.
    pub const ALL: [TimeoutKind; 6] = [
        TimeoutKind::EntityBody,
        TimeoutKind::DrainEntityBody,
        TimeoutKind::RequestQueue,
        TimeoutKind::IdleConnection,
        TimeoutKind::HeaderWait,
        TimeoutKind::MinSendRate,
    ];
}

/// The six HTTP Server API timeouts. A zero duration means "use the default".
///
/// ```
/// use std::time::Duration;
/// use httpq_proto::server_conn::Timeouts;
/// let t = Timeouts { header_wait: Duration::from_secs(5), ..Timeouts::default() };
/// assert_eq!(t.idle_connection, Duration::from_secs(120));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to receive a whole request head, however slowly it trickles.
    pub header_wait: Duration,
    /// Longest gap between body bytes the application is waiting for.
    pub entity_body: Duration,
    /// Time allowed to drain an unread body after the response.
    pub drain_entity_body: Duration,
    /// Time a keep-alive connection may sit idle between requests.
    pub idle_connection: Duration,
    /// Time a request may wait in its queue before anyone receives it.
    pub request_queue: Duration,
    /// Minimum send rate in bytes per second; a slower client is disconnected.
    pub min_send_rate: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        let two_min = Duration::from_secs(120);
        Timeouts {
            header_wait: two_min,
            entity_body: two_min,
            drain_entity_body: two_min,
            idle_connection: two_min,
            request_queue: two_min,
            min_send_rate: 150,
        }
    }
}

impl Timeouts {
    /// `self` with zero fields replaced by the defaults.
    pub fn normalized(self) -> Timeouts {
        self.or(Timeouts::default())
    }

    /// `self` with zero fields taken from `base` (how a URL group's
    /// timeouts fall back to the session's).
    pub fn or(self, base: Timeouts) -> Timeouts {
        let pick = |v: Duration, b: Duration| if v.is_zero() { b } else { v };
        Timeouts {
            header_wait: pick(self.header_wait, base.header_wait),
            entity_body: pick(self.entity_body, base.entity_body),
            drain_entity_body: pick(self.drain_entity_body, base.drain_entity_body),
            idle_connection: pick(self.idle_connection, base.idle_connection),
            request_queue: pick(self.request_queue, base.request_queue),
            min_send_rate: if self.min_send_rate == 0 {
                base.min_send_rate
            } else {
                self.min_send_rate
            },
        }
    }
}

/// Why a connection ended. Every wait form reports one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client closed its side (FIN) — a disconnect under the default half-close policy.
    ClientClosed,
    /// The client reset the connection (RST), or the socket reported an error.
    Reset,
    /// Writing to the client failed.
    WriteFailed,
    /// A server timeout fired.
    Timeout(TimeoutKind),
    /// The server closed the connection: a response sent with DISCONNECT, or
    /// the end of a non-keep-alive exchange.
    ServerClosed,
    /// The application cancelled a request on the connection.
    Cancelled,
    /// The client sent a malformed request; it got an error status.
    ProtocolError(crate::Error),
    /// The request queue the connection's requests go to was shut down.
    QueueShutdown,
    /// The server session shut down.
    ServerShutdown,
    /// The connection closed long enough ago that its reason was forgotten.
    Closed,
    /// HTTP/2: the client reset this request's stream (RST_STREAM, with
    /// its error code). Only the request is gone; its connection may
    /// still carry other streams.
    StreamReset(u32),
    /// HTTP/2: a protocol error with this code ended the connection
    /// (GOAWAY, sent or received) or, where the error was one stream's,
    /// only the request's stream (the server's RST_STREAM).
    Http2Error(u32),
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::ClientClosed => f.write_str("client closed the connection"),
            DisconnectReason::Reset => f.write_str("connection reset"),
            DisconnectReason::WriteFailed => f.write_str("write to the client failed"),
            DisconnectReason::Timeout(k) => write!(f, "{k:?} timeout"),
            DisconnectReason::ServerClosed => f.write_str("server closed the connection"),
            DisconnectReason::Cancelled => f.write_str("request cancelled"),
            DisconnectReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
            DisconnectReason::QueueShutdown => f.write_str("request queue shut down"),
            DisconnectReason::ServerShutdown => f.write_str("server shut down"),
            DisconnectReason::Closed => f.write_str("connection closed"),
            DisconnectReason::StreamReset(code) => {
                write!(f, "client reset the stream (HTTP/2 error code {code})")
            }
            DisconnectReason::Http2Error(code) => {
                write!(f, "HTTP/2 connection error (code {code})")
            }
        }
    }
}

/// The settings of one server connection.
///
/// ```
/// use httpq_proto::server_conn::ConnConfig;
/// let c = ConnConfig::default();
/// assert_eq!(c.max_pipelined, 32);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConnConfig {
    /// Limits on request heads and bodies.
    pub limits: Limits,
    /// The session's timeouts; a routed request's URL group may override
    /// them (see [`ServerConn::accept`](super::ServerConn::accept)).
    pub timeouts: Timeouts,
    /// What a client's FIN means.
    pub half_close: HalfClosePolicy,
    /// Requests parsed ahead and not yet fully answered, at most.
    pub max_pipelined: usize,
    /// Keep a [`Done`](super::Done) record of every retired response for
    /// [`ServerConn::take_done`](super::ServerConn::take_done) (metrics,
    /// access logs). Off, nothing is kept.
    pub report_done: bool,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            half_close: HalfClosePolicy::Disconnect,
            max_pipelined: 32,
            report_done: false,
        }
    }
}
