//! Connection ids, request ids and the table that finds a live connection
//! from either. Ids are unique for the process's lifetime and never reused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::conn::Conn;
use crate::counters::Counters;
use crate::disconnect::{recent, Completion, DisconnectReason};

pub(crate) use crate::ids::{request_id, split_request_id, MAX_SEQ};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

const SHARDS: usize = 16;

/// Connection ids are sequential integers, not attacker-chosen keys, so a
/// multiplicative hash serves (SipHash cost more than the rest of the lookup).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap = HashMap<u64, Arc<Conn>, std::hash::BuildHasherDefault<IdHasher>>;

struct Registry {
    shards: [Mutex<IdMap>; SHARDS],
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        shards: std::array::from_fn(|_| Mutex::new(IdMap::default())),
    })
}

fn shard(id: u64) -> &'static Mutex<IdMap> {
    &registry().shards[(id as usize) % SHARDS]
}

pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

/// An id at or above this was never issued.
pub(crate) fn issued(conn_id: u64) -> bool {
    conn_id != 0 && conn_id < NEXT_CONN.load(Ordering::Relaxed)
}

pub(crate) fn insert(conn: Arc<Conn>) {
    shard(conn.id).lock().unwrap().insert(conn.id, conn);
}

pub(crate) fn remove(id: u64) {
    shard(id).lock().unwrap().remove(&id);
}

pub(crate) fn get(conn_id: u64) -> Option<Arc<Conn>> {
    shard(conn_id).lock().unwrap().get(&conn_id).cloned()
}

thread_local! {
    /// The connection last answered on this thread: pipelined responses go
    /// to the same connection many times in a row, and this skips the
    /// shard lock and hash for them. It may keep one closed connection's
    /// memory alive until the next lookup; it is never returned once closed.
    static LAST: std::cell::RefCell<Option<Arc<Conn>>> = const { std::cell::RefCell::new(None) };
}

/// [`get`], through the one-entry per-thread cache; only open connections.
pub(crate) fn get_open(conn_id: u64) -> Option<Arc<Conn>> {
    LAST.with(|last| {
        if let Some(c) = last.borrow().as_ref() {
            if c.id == conn_id && c.is_connected() {
                return Some(c.clone());
            }
        }
        let c = get(conn_id)?;
        // Busy only when called from inside `with_open`'s closure: then the
        // cache is simply not updated.
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(c.clone());
        }
        Some(c)
    })
}

/// Makes `conn` the thread's cached connection: a request just received
/// on this thread is usually answered here next (with 64 connections
/// answered in turn, the cache would otherwise miss on every answer and
/// take a shard's lock and a hash lookup).
pub(crate) fn prime(conn: &Arc<Conn>) {
    LAST.with(|last| {
        if let Ok(mut slot) = last.try_borrow_mut() {
            if !slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                *slot = Some(conn.clone());
            }
        }
    });
}

/// Runs `f` on open connection `conn_id`. A hit in the per-thread cache
/// lends the cached connection: no reference count taken or dropped (two
/// atomic operations per response saved).
pub(crate) fn with_open<R>(conn_id: u64, f: impl FnOnce(&Arc<Conn>) -> R) -> Option<R> {
    LAST.with(|last| {
        let open = |c: &&Arc<Conn>| c.id == conn_id && c.is_connected();
        if last.borrow().as_ref().filter(open).is_none() {
            let c = get(conn_id)?;
            match last.try_borrow_mut() {
                Ok(mut slot) => *slot = Some(c),
                // Called from inside another `with_open`'s closure.
                Err(_) => return Some(f(&c)),
            }
        }
        let cached = last.borrow();
        cached.as_ref().filter(open).map(f)
    })
}

/// Every live connection (for session shutdown).
pub(crate) fn all() -> Vec<Arc<Conn>> {
    registry()
        .shards
        .iter()
        .flat_map(|s| s.lock().unwrap().values().cloned().collect::<Vec<_>>())
        .collect()
}

/// The connection has ended (`abandoned`: requests it took with it):
/// counts it, records why, wakes every kind of waiter, frees the id.
pub(crate) fn closed(conn: &Conn, reason: DisconnectReason, abandoned: u64) {
    let client_broke = matches!(
        reason,
        DisconnectReason::ClientClosed
            | DisconnectReason::Reset
            | DisconnectReason::WriteFailed
            | DisconnectReason::Timeout(_)
            | DisconnectReason::Http2Error(_)
    );
    let recorded = abandoned > 0 && client_broke;
    let (posted, path) = {
        let mut st = conn.lock();
        st.reason = Some(reason);
        st.io = None;
        // Only a recorded disconnect needs the path (no allocation otherwise).
        let path = if recorded { st.current.path() } else { None };
        (std::mem::take(&mut st.posted), path)
    };
    // Counters first: a woken waiter reading them sees this end counted.
    let counters = &conn.counters;
    Counters::dec(&counters.connections_open);
    Counters::add(&counters.requests_abandoned, abandoned);
    if recorded {
        Counters::inc(&counters.disconnects);
        counters.metrics.disconnect(reason);
        conn.record_disconnect(path, reason);
        tracing::info!(conn = conn.id, peer = %conn.remote, abandoned, %reason, "client disconnected");
    } else if let DisconnectReason::ProtocolError(e) = reason {
        tracing::info!(conn = conn.id, peer = %conn.remote, status = e.status(), error = %e, "protocol error");
    } else {
        tracing::debug!(conn = conn.id, %reason, "connection closed");
    }
    conn.set_disconnected();
    // Remembered before the id leaves the registry: a waiter arriving in
    // between must find the reason, not an unexplained "closed".
    recent::remember(conn.id, reason);
    remove(conn.id);
    conn.gone.notify_waiters();
    conn.release_all();
    conn.env.answered();
    for (cq, key, _) in posted {
        cq.post(Completion {
            key,
            connection_id: conn.id,
            reason,
        });
    }
}
