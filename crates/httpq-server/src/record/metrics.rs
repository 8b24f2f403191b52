//! One worker's metrics — responses by method and status class, their
//! durations, disconnects by reason, timeouts by kind — summed at scrape time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use httpq_proto::server_conn::{Done, TimeoutKind};
use httpq_proto::MethodKind;

use httpq_proto::server_conn::DisconnectReason;

/// Upper bounds of the request-duration buckets, in seconds (as
/// Prometheus' defaults, with finer steps below a millisecond, where a
/// static file is answered).
pub const DURATION_BOUNDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The bounds in nanoseconds, for the request path (no float math there).
const BOUNDS_NS: [u64; 16] = {
    let mut b = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        b[i] = (DURATION_BOUNDS[i] * 1e9) as u64;
        i += 1;
    }
    b
};

/// Reasons a request can lose its client, as labels.
pub const DISCONNECT_REASONS: [&str; 6] = [
    "client_closed",
    "reset",
    "write_failed",
    "timeout",
    "http2_error",
    "stream_reset",
];

/// The six HTTP Server API timeouts, as labels, in [`TimeoutKind::ALL`] order.
pub const TIMEOUT_NAMES: [&str; 6] = [
    "entity_body",
    "drain_entity_body",
    "request_queue",
    "idle_connection",
    "header_wait",
    "min_send_rate",
];

/// The label of a timeout.
pub fn timeout_name(kind: TimeoutKind) -> &'static str {
    let i = TimeoutKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    TIMEOUT_NAMES[i]
}

/// The label of a reason a client was lost, if it is one.
pub(crate) fn disconnect_index(r: DisconnectReason) -> Option<usize> {
    Some(match r {
        DisconnectReason::ClientClosed => 0,
        DisconnectReason::Reset => 1,
        DisconnectReason::WriteFailed => 2,
        DisconnectReason::Timeout(_) => 3,
        DisconnectReason::Http2Error(_) => 4,
        DisconnectReason::StreamReset(_) => 5,
        _ => return None,
    })
}

const METHODS: usize = MethodKind::ALL.len();

/// A worker's metrics. Only its own worker writes them (relaxed adds on
/// lines no other worker touches); a scrape reads every worker's.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Responses completed, by method and status class (1xx–5xx).
    requests: [[AtomicU64; 5]; METHODS],
    /// Per bucket, not cumulative; the last is +Inf.
    duration: [AtomicU64; 17],
    duration_sum_ns: AtomicU64,
    body_bytes: AtomicU64,
    disconnects: [AtomicU64; 6],
    timeouts: [AtomicU64; 6],
}

impl Metrics {
    /// A response was written out completely.
    #[inline]
    pub(crate) fn record(&self, d: &Done) {
        self.batch().add(d);
    }

    /// Records responses in a batch: the atomic adds of a run of alike
    /// responses (a pipelined burst) are made once, when the run ends.
    pub(crate) fn batch(&self) -> Batch<'_> {
        Batch {
            m: self,
            request: (usize::MAX, 0),
            bucket: (usize::MAX, 0),
            sum_ns: 0,
            body_bytes: 0,
        }
    }

    /// A timeout fired.
    pub(crate) fn timeout(&self, kind: TimeoutKind) {
        let i = TimeoutKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.timeouts[i].fetch_add(1, Relaxed);
    }

    /// A client was lost with requests held (or a stream was reset).
    pub(crate) fn disconnect(&self, reason: DisconnectReason) {
        if let Some(i) = disconnect_index(reason) {
            self.disconnects[i].fetch_add(1, Relaxed);
        }
    }
}

/// Responses being recorded; see [`Metrics::batch`]. Dropping it makes the adds.
pub(crate) struct Batch<'a> {
    m: &'a Metrics,
    /// A (method, class) cell and how many responses of it are pending.
    request: (usize, u64),
    /// A duration bucket and its pending count.
    bucket: (usize, u64),
    sum_ns: u64,
    body_bytes: u64,
}

impl Batch<'_> {
    #[inline]
    pub(crate) fn add(&mut self, d: &Done) {
        let class = usize::from(d.status / 100).clamp(1, 5) - 1;
        let cell = d.method.index() * 5 + class;
        if cell != self.request.0 {
            self.flush_request();
            self.request.0 = cell;
        }
        self.request.1 += 1;
        let ns = u64::try_from(d.elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(16);
        if bucket != self.bucket.0 {
            self.flush_bucket();
            self.bucket.0 = bucket;
        }
        self.bucket.1 += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.body_bytes += d.body_bytes;
    }

    fn flush_request(&mut self) {
        if self.request.1 > 0 {
            let (m, c) = (self.request.0 / 5, self.request.0 % 5);
            self.m.requests[m][c].fetch_add(self.request.1, Relaxed);
            self.request.1 = 0;
        }
    }

    fn flush_bucket(&mut self) {
        if self.bucket.1 > 0 {
            self.m.duration[self.bucket.0].fetch_add(self.bucket.1, Relaxed);
            self.bucket.1 = 0;
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.flush_request();
        self.flush_bucket();
        if self.sum_ns > 0 {
            self.m.duration_sum_ns.fetch_add(self.sum_ns, Relaxed);
        }
        if self.body_bytes > 0 {
            self.m.body_bytes.fetch_add(self.body_bytes, Relaxed);
        }
    }
}

/// Every worker's metrics added up.
#[derive(Debug, Default)]
pub(crate) struct Summed {
    pub requests: [[u64; 5]; METHODS],
    pub duration: [u64; 17],
    pub duration_sum: Duration,
    pub body_bytes: u64,
    pub disconnects: [u64; 6],
    pub timeouts: [u64; 6],
}

impl Summed {
    pub(crate) fn add(&mut self, m: &Metrics) {
        for (row, mrow) in self.requests.iter_mut().zip(&m.requests) {
            for (a, b) in row.iter_mut().zip(mrow) {
                *a += b.load(Relaxed);
            }
        }
        for (a, b) in self.duration.iter_mut().zip(&m.duration) {
            *a += b.load(Relaxed);
        }
        self.duration_sum += Duration::from_nanos(m.duration_sum_ns.load(Relaxed));
        self.body_bytes += m.body_bytes.load(Relaxed);
        for (a, b) in self.disconnects.iter_mut().zip(&m.disconnects) {
            *a += b.load(Relaxed);
        }
        for (a, b) in self.timeouts.iter_mut().zip(&m.timeouts) {
            *a += b.load(Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(method: MethodKind, status: u16, ms: u64) -> Done {
        Done {
            seq: 1,
            method,
            status,
            body_bytes: 10,
            elapsed: Duration::from_millis(ms),
        }
    }

    #[test]
    fn responses_land_in_their_method_class_and_bucket() {
        let m = Metrics::default();
        m.record(&done(MethodKind::Get, 200, 0));
        m.record(&done(MethodKind::Get, 404, 3));
        m.record(&done(MethodKind::Other, 999, 60_000));
        m.timeout(TimeoutKind::MinSendRate);
        m.disconnect(DisconnectReason::StreamReset(8));
        m.disconnect(DisconnectReason::ServerClosed);
        let mut s = Summed::default();
        s.add(&m);
        s.add(&m);
        assert_eq!(s.requests[MethodKind::Get.index()], [0, 2, 0, 2, 0]);
        assert_eq!(s.requests[MethodKind::Other.index()][4], 2, "999 is 5xx");
        assert_eq!(s.duration[0], 2, "0 ms in the first bucket");
        assert_eq!(s.duration[5], 2, "3 ms under 5 ms");
        assert_eq!(s.duration[16], 2, "60 s past the last bound");
        assert_eq!(s.duration_sum, Duration::from_millis(2 * 60_003));
        assert_eq!(s.body_bytes, 60);
        assert_eq!(s.timeouts[5], 2);
        assert_eq!(timeout_name(TimeoutKind::MinSendRate), "min_send_rate");
        assert_eq!(s.disconnects, [0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn a_batch_adds_what_single_records_add() {
        let (one, many) = (Metrics::default(), Metrics::default());
        let all = [
            done(MethodKind::Get, 200, 0),
            done(MethodKind::Get, 200, 0),
            done(MethodKind::Post, 200, 7),
            done(MethodKind::Get, 200, 0),
            done(MethodKind::Get, 500, 7),
        ];
        for d in &all {
            one.record(d);
        }
        {
            let mut b = many.batch();
            for d in &all {
                b.add(d);
            }
        }
        let (mut a, mut b) = (Summed::default(), Summed::default());
        a.add(&one);
        b.add(&many);
        assert_eq!(
            (a.requests, a.duration, a.duration_sum, a.body_bytes),
            (b.requests, b.duration, b.duration_sum, b.body_bytes)
        );
        assert_eq!(b.requests[MethodKind::Get.index()], [0, 3, 0, 0, 1]);
    }
}
