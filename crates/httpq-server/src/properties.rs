//! Server properties: the HTTP Server API's timeouts and limits, set on the
//! session and overridable per URL group (the group wins; zero restores the default).

use std::time::Duration;

use httpq_proto::Limits;

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

/// What to do with a request when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Answer `503 Service Unavailable` and close the connection.
    #[default]
    ServiceUnavailable,
    /// Reset the connection.
    Reset,
    /// Answer 503 with a short reason body, and keep the connection.
    ServiceUnavailableWithReason,
}

/// The six HTTP Server API timeouts. A zero duration means "use the default".
///
/// ```
/// use std::time::Duration;
/// use httpq_server::Timeouts;
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

/// TCP keepalive probing of idle connections: after `idle` without
/// traffic, a probe every `interval`; after `retries` unanswered probes the
/// kernel resets the connection and its waiters see `Reset`. So a peer
/// that vanished silently is noticed after about
/// `idle + interval * retries`.
///
/// ```
/// use std::time::Duration;
/// use httpq_server::properties::TcpKeepalive;
/// let k = TcpKeepalive { idle: Duration::from_secs(10), ..TcpKeepalive::default() };
/// assert_eq!((k.interval, k.retries), (Duration::from_secs(10), 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub retries: u32,
}

impl Default for TcpKeepalive {
    fn default() -> Self {
        TcpKeepalive {
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            retries: 3,
        }
    }
}

/// Session-wide properties.
///
/// ```
/// use httpq_server::Properties;
/// let p = Properties { max_connections: 10_000, ..Properties::default() };
/// assert_eq!(p.limits.max_headers, 100);
/// ```
#[derive(Debug, Clone)]
pub struct Properties {
    /// The timeouts, unless a URL group overrides them.
    pub timeouts: Timeouts,
    /// Protocol limits for request heads and bodies.
    pub limits: Limits,
    /// Open connections allowed at once; beyond it, accepting pauses.
    pub max_connections: usize,
    /// The `Server` header written on every response (`None`: no header).
    pub server_header: Option<String>,
    /// What a client's FIN means.
    pub half_close: HalfClosePolicy,
    /// TCP keepalive, to find peers that vanished silently (`None`: off).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Requests parsed ahead on one connection (pipelining depth).
    pub max_pipelined: usize,
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_connections: 100_000,
            server_header: Some(concat!("httpq/", env!("CARGO_PKG_VERSION")).to_string()),
            half_close: HalfClosePolicy::Disconnect,
            tcp_keepalive: Some(TcpKeepalive::default()),
            max_pipelined: 32,
        }
    }
}
