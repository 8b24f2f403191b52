//! Waiting for a client's disconnect, the centrepiece of seed 000
//! (`HttpWaitForDisconnect`): the reasons a connection ends, and the
//! completion queue that the posted form of the wait delivers to.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub use httpq_proto::server_conn::{DisconnectReason, TimeoutKind};

/// One completed posted wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The key given when the wait was posted.
    pub key: u64,
    /// The connection.
    pub connection_id: u64,
    /// Why it ended.
    pub reason: DisconnectReason,
}

#[derive(Default)]
struct CqInner {
    items: Mutex<VecDeque<Completion>>,
    cv: Condvar,
    notify: Notify,
}

/// A completion queue: posted waits deliver here, tagged with the caller's
/// key, and the caller drains it from any thread — the shape an
/// OVERLAPPED / I/O completion port C ABI maps onto.
///
/// ```
/// use std::time::Duration;
/// use httpq_server::CompletionQueue;
/// let cq = CompletionQueue::new();
/// assert!(cq.get(Duration::from_millis(1)).is_none());
/// ```
#[derive(Clone, Default)]
pub struct CompletionQueue {
    inner: Arc<CqInner>,
}

impl std::fmt::Debug for CompletionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionQueue")
            .field("len", &self.len())
            .finish()
    }
}

impl CompletionQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn post(&self, c: Completion) {
        self.inner.items.lock().unwrap().push_back(c);
        self.inner.cv.notify_one();
        self.inner.notify.notify_one();
    }

    /// Completions waiting to be taken.
    pub fn len(&self) -> usize {
        self.inner.items.lock().unwrap().len()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a completion if one is ready.
    pub fn try_get(&self) -> Option<Completion> {
        self.inner.items.lock().unwrap().pop_front()
    }

    /// Blocks the thread up to `timeout` for a completion
    /// (GetQueuedCompletionStatus).
    pub fn get(&self, timeout: Duration) -> Option<Completion> {
        let deadline = Instant::now() + timeout;
        let mut items = self.inner.items.lock().unwrap();
        loop {
            if let Some(c) = items.pop_front() {
                return Some(c);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            items = self.inner.cv.wait_timeout(items, deadline - now).unwrap().0;
        }
    }

    /// Waits asynchronously for the next completion.
    pub async fn next(&self) -> Completion {
        loop {
            let notified = self.inner.notify.notified();
            if let Some(c) = self.try_get() {
                return c;
            }
            notified.await;
        }
    }
}

/// Reasons of recently closed connections, so a wait on a closed id can say
/// why. Bounded: the oldest are forgotten (and reported as `Closed`).
pub(crate) mod recent {
    use super::DisconnectReason;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Mutex, OnceLock};

    const KEEP: usize = 65_536;

    #[derive(Default)]
    struct Recent {
        order: VecDeque<u64>,
        reasons: HashMap<u64, DisconnectReason>,
    }

    fn table() -> &'static Mutex<Recent> {
        static T: OnceLock<Mutex<Recent>> = OnceLock::new();
        T.get_or_init(Default::default)
    }

    pub(crate) fn remember(id: u64, reason: DisconnectReason) {
        let mut t = table().lock().unwrap();
        if t.order.len() >= KEEP {
            if let Some(old) = t.order.pop_front() {
                t.reasons.remove(&old);
            }
        }
        t.order.push_back(id);
        t.reasons.insert(id, reason);
    }

    pub(crate) fn reason(id: u64) -> DisconnectReason {
        table()
            .lock()
            .unwrap()
            .reasons
            .get(&id)
            .copied()
            .unwrap_or(DisconnectReason::Closed)
    }
}
