//! What a running session shows of itself: metrics summed from every
//! worker, the `netsh http show servicestate` view, recent disconnects, and the access log.
//!
//! Counting adds no lock and no shared atomic to the request path: each
//! worker counts in its own counters block, and a snapshot reads them all. The state view walks the session's URL groups
//! and connections when asked, taking each connection's lock briefly.

mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

pub use crate::record::{
    timeout_name, AccessLog, DisconnectRecord, DISCONNECT_REASONS, DURATION_BOUNDS,
    RECENT_DISCONNECTS, TIMEOUT_NAMES,
};
use crate::record::{Metrics, Summed};

use crate::counters::CounterSnapshot;
use crate::properties::{Properties, Timeouts};

/// Every worker's counters and metrics, summed: what `/metrics` shows.
///
/// ```
/// let s = httpq_server::MetricsSnapshot::default();
/// assert_eq!(s.timeouts.len(), 0); // a session's snapshot always has all six
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// The plain counters (as [`ServerSession::counters`](crate::ServerSession::counters)).
    pub counters: CounterSnapshot,
    /// Responses completed, by method and status class; non-zero entries only.
    pub requests: Vec<RequestCount>,
    /// Request duration: from the parsed head to the response's last byte
    /// written (HTTP/1.1) or handed to its stream (HTTP/2).
    pub duration: Histogram,
    /// Requests that lost their client, by reason; every reason present.
    pub disconnects: Vec<(&'static str, u64)>,
    /// Timeouts fired, by http.sys name; all six present.
    pub timeouts: Vec<(&'static str, u64)>,
    /// Body bytes of completed responses.
    pub response_body_bytes: u64,
    /// Requests routed to a queue and not yet answered.
    pub in_flight: u64,
}

/// Completed responses of one method and status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCount {
    /// `GET`, `HEAD`, … or `other`.
    pub method: &'static str,
    /// `1xx` to `5xx`.
    pub class: &'static str,
    pub count: u64,
}

/// A histogram with fixed bucket bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending, without +Inf.
    pub bounds: &'static [f64],
    /// Per bucket, not cumulative; one more than `bounds` (+Inf last).
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

/// A session as `netsh http show servicestate` shows one.
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub session: SessionState,
    pub url_groups: Vec<UrlGroupState>,
    pub request_queues: Vec<QueueState>,
    /// Empty when the state was taken without connections.
    pub connections: Vec<ConnectionState>,
    /// Newest first, at most [`RECENT_DISCONNECTS`].
    pub recent_disconnects: Vec<DisconnectRecord>,
}

/// The server session.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub id: u64,
    pub workers: usize,
    pub listening: Vec<SocketAddr>,
    pub properties: Properties,
    pub uptime: Duration,
}

/// A URL group with its prefixes.
#[derive(Debug, Clone)]
pub struct UrlGroupState {
    pub id: u64,
    pub prefixes: Vec<PrefixState>,
    /// In effect: the group's own over the session's.
    pub timeouts: Timeouts,
    /// The group sets timeouts of its own.
    pub own_timeouts: bool,
    /// The name of the queue it is bound to.
    pub queue: Option<String>,
}

/// One registered prefix.
#[derive(Debug, Clone)]
pub struct PrefixState {
    pub url: String,
    pub context: u64,
}

/// A request queue.
#[derive(Debug, Clone)]
pub struct QueueState {
    pub id: u64,
    pub name: String,
    /// Requests waiting to be received.
    pub length: usize,
    /// `receive` calls waiting now.
    pub consumers: usize,
    /// Received by a consumer and not yet answered (with `connections`
    /// only: they are counted on the walk over the connections).
    pub in_flight: usize,
}

/// An open connection.
#[derive(Debug, Clone)]
pub struct ConnectionState {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    pub tls: bool,
    /// `active` (requests in flight) or `idle`.
    pub state: &'static str,
    pub in_flight: usize,
    /// The request last read on it, while requests are in flight.
    pub current_request: Option<CurrentRequest>,
}

/// A request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentRequest {
    pub id: u64,
    pub method: String,
    /// The request target's path (no query).
    pub path: String,
}

/// Sums every worker's metrics into a snapshot.
pub(crate) fn snapshot<'a>(
    counters: CounterSnapshot,
    all: impl IntoIterator<Item = &'a Metrics>,
    in_flight: u64,
) -> MetricsSnapshot {
    let mut s = Summed::default();
    for m in all {
        s.add(m);
    }
    const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let mut requests = Vec::new();
    for (m, row) in httpq_proto::MethodKind::ALL.iter().zip(&s.requests) {
        for (class, &count) in CLASSES.iter().zip(row) {
            if count > 0 {
                requests.push(RequestCount {
                    method: m.as_str(),
                    class,
                    count,
                });
            }
        }
    }
    MetricsSnapshot {
        counters,
        requests,
        duration: Histogram {
            bounds: &DURATION_BOUNDS,
            count: s.duration.iter().sum(),
            counts: s.duration.to_vec(),
            sum_seconds: s.duration_sum.as_secs_f64(),
        },
        disconnects: DISCONNECT_REASONS.into_iter().zip(s.disconnects).collect(),
        timeouts: TIMEOUT_NAMES.into_iter().zip(s.timeouts).collect(),
        response_body_bytes: s.body_bytes,
        in_flight,
    }
}

/// In-flight requests per queue id, from every connection.
pub(crate) type PerQueue = BTreeMap<u64, usize>;
