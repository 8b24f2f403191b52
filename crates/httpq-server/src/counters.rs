//! Counters for everything the server does, readable at any time through
//! [`ServerSession::counters`](crate::ServerSession::counters). Each worker
//! counts in its own block (no cache line shared between workers on the
//! request path); a snapshot sums them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::record::Metrics;
use httpq_proto::server_conn::TimeoutKind;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// One worker's counters, on cache lines of their own.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub(crate) struct Counters {
            $(pub $name: AtomicU64,)*
            /// Responses by method, class and duration; disconnects and timeouts by kind.
            pub metrics: Metrics,
        }

        /// A snapshot of the server's counters.
        ///
        /// ```
        /// let s = httpq_server::CounterSnapshot::default();
        /// assert_eq!(s.requests_received, 0);
        /// ```
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct CounterSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            /// The sum of every worker's counters.
            pub(crate) fn sum<'a>(all: impl IntoIterator<Item = &'a Counters>) -> CounterSnapshot {
                let mut s = CounterSnapshot::default();
                for c in all {
                    $(s.$name = s.$name.wrapping_add(c.$name.load(Relaxed));)*
                }
                s
            }
        }

        impl CounterSnapshot {
            /// `(name, value)` pairs, in declaration order (for JSON output).
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters! {
    /// Connections accepted.
    connections_accepted,
    /// Connections open now.
    connections_open,
    /// Requests parsed and routed (including those answered by the server itself).
    requests_received,
    /// Responses completed (application and server-generated).
    responses_sent,
    /// Connections the client broke (FIN under the default half-close policy,
    /// RST, a failed write, or a timeout) while the application held a request on them.
    disconnects,
    /// Requests handed to the application whose connection broke before the response completed.
    requests_abandoned,
    /// Requests refused because their queue was full or shut down.
    queue_rejections,
    /// Malformed requests answered with an error status.
    protocol_errors,
    /// Connections ended by a server timeout.
    timeouts,
    /// Requests that matched no URL prefix (answered 400).
    unrouted,
    /// Bytes read from clients.
    bytes_received,
    /// Bytes written to clients.
    bytes_sent,
    /// HTTP/2 streams opened by clients (each is also a request received).
    h2_streams,
    /// HTTP/2 streams the client reset before their response completed
    /// (each is also a request abandoned, not a disconnect).
    h2_resets,
    /// TLS handshakes completed.
    tls_handshakes,
    /// TLS handshakes that failed or timed out.
    tls_handshake_failures,
    /// Access log lines dropped because the log's writer was too far behind.
    access_log_dropped,
}

impl Counters {
    #[inline]
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
    #[inline]
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
    #[inline]
    pub(crate) fn dec(c: &AtomicU64) {
        c.fetch_sub(1, Relaxed);
    }

    /// A timeout fired: counted in `timeouts` and by its kind.
    pub(crate) fn timed_out(&self, kind: TimeoutKind, conn: u64) {
        Self::inc(&self.timeouts);
        self.metrics.timeout(kind);
        // An idle keep-alive connection closing, or a connection that never
        // sent a head (scanners, browsers' spare sockets), is routine.
        if matches!(kind, TimeoutKind::IdleConnection | TimeoutKind::HeaderWait) {
            tracing::debug!(conn, timeout = crate::record::timeout_name(kind), "timeout");
            return;
        }
        tracing::info!(conn, timeout = crate::record::timeout_name(kind), "timeout");
    }
}
