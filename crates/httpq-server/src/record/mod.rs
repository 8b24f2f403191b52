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
/// the start of its target, copied into fixed room (no allocation, no
/// capacity checks: this runs for every request; a longer target shows
/// cut, with `…`).
pub(crate) struct Current {
    pub seq: u32,
    method: httpq_proto::MethodKind,
    target_len: u16,
    cut: bool,
    target: [u8; CURRENT_TARGET],
}

/// How much of a target the state view and disconnect records show.
const CURRENT_TARGET: usize = 120;

impl Default for Current {
    fn default() -> Current {
        Current {
            seq: 0,
            method: httpq_proto::MethodKind::Other,
            target_len: 0,
            cut: false,
            target: [0; CURRENT_TARGET],
        }
    }
}

impl Current {
    pub(crate) fn set(&mut self, seq: u32, method: httpq_proto::MethodKind, target: &[u8]) {
        self.seq = seq;
        self.method = method;
        let n = target.len().min(CURRENT_TARGET);
        self.target[..n].copy_from_slice(&target[..n]);
        self.target_len = n as u16;
        self.cut = target.len() > n;
    }

    /// The method of the request read last.
    pub(crate) fn method(&self) -> httpq_proto::MethodKind {
        self.method
    }

    /// The path of the target (no query), if a request was read.
    pub(crate) fn path(&self) -> Option<String> {
        if self.seq == 0 {
            return None;
        }
        let target = &self.target[..usize::from(self.target_len)];
        let end = target.iter().position(|&b| b == b'?');
        let mut path = String::from_utf8_lossy(&target[..end.unwrap_or(target.len())]).into_owned();
        if self.cut && end.is_none() {
            path.push('…');
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_path_drops_the_query_and_marks_a_cut() {
        let mut c = Current::default();
        assert_eq!(c.path(), None, "nothing read yet");
        c.set(3, httpq_proto::MethodKind::Get, b"/a/b?x=1");
        assert_eq!(
            (c.path().as_deref(), c.method()),
            (Some("/a/b"), httpq_proto::MethodKind::Get)
        );
        let long = format!("/{}", "x".repeat(300));
        c.set(4, httpq_proto::MethodKind::Post, long.as_bytes());
        let p = c.path().unwrap();
        assert!(p.ends_with('…') && p.len() < 200, "{p}");
    }
}
