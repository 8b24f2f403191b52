//! What the request path records for the session to show: per-worker
//! metrics, access log entries, the last disconnects and each connection's current request.
//!
//! The public views over these are in `observe`; this module sits low so
//! connections and counters can use it.

mod access_log;
mod metrics;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use httpq_proto::server_conn::DisconnectReason;

pub use access_log::AccessLog;
pub(crate) use access_log::{Entry, LogHead, LogSender};
pub use metrics::{timeout_name, DISCONNECT_REASONS, DURATION_BOUNDS, TIMEOUT_NAMES};
pub(crate) use metrics::{Metrics, Summed};

/// A request that lost its client.
#[derive(Debug, Clone)]
pub struct DisconnectRecord {
    pub at: SystemTime,
    pub connection_id: u64,
    pub peer: SocketAddr,
    /// The request it abandoned, when one was known.
    pub path: Option<String>,
    pub reason: DisconnectReason,
}

/// How many disconnects a session remembers.
pub const RECENT_DISCONNECTS: usize = 32;

/// The last few disconnects of a session (rare events: a lock is fine).
#[derive(Default)]
pub(crate) struct DisconnectLog(Mutex<VecDeque<DisconnectRecord>>);

impl DisconnectLog {
    pub(crate) fn push(&self, r: DisconnectRecord) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == RECENT_DISCONNECTS {
            q.pop_back();
        }
        q.push_front(r);
    }

    pub(crate) fn list(&self) -> Vec<DisconnectRecord> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// The request a connection read last: its sequence number, method and
/// target, kept in a buffer reused from request to request.
#[derive(Default)]
pub(crate) struct Current {
    pub seq: u32,
    pub method: httpq_proto::MethodKind,
    pub target: Vec<u8>,
}

impl Current {
    pub(crate) fn set(&mut self, seq: u32, head: &httpq_proto::RequestHead) {
        self.seq = seq;
        self.method = httpq_proto::MethodKind::from_bytes(head.method());
        self.target.clear();
        self.target.extend_from_slice(head.target());
    }

    /// The path of the target (no query), if a request was read.
    pub(crate) fn path(&self) -> Option<String> {
        if self.seq == 0 {
            return None;
        }
        let end = self
            .target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(self.target.len());
        Some(String::from_utf8_lossy(&self.target[..end]).into_owned())
    }
}
