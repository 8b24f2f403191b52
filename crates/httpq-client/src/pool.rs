//! The keep-alive pool: idle connections per server (scheme, host, port,
//! proxy), the per-server connection limit, and liveness checks so a
//! connection the server closed (or wrote junk on) is never reused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;

use bytes::BytesMut;

use crate::transport::Stream;

/// Where a connection goes: the pool keeps connections per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Through this proxy (host, port), if any.
    pub proxy: Option<(String, u16)>,
}

#[derive(Default)]
struct Server {
    idle: Vec<(Connection, Instant)>,
    /// Connections open or being opened (idle ones included).
    open: usize,
}

pub(crate) struct Pool {
    servers: Mutex<HashMap<PoolKey, Server>>,
    /// Woken when a connection is returned or closed (a slot may be free).
    changed: Notify,
    max_per_server: usize,
    idle_timeout: Duration,
}

/// A slot under the per-server limit; freed when dropped (so a connection
/// that fails half-way, or is closed, gives its slot back).
pub(crate) struct Slot {
    pool: Arc<Pool>,
    key: PoolKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut servers = self.pool.lock();
        if let Some(s) = servers.get_mut(&self.key) {
            s.open = s.open.saturating_sub(1);
            if s.open == 0 && s.idle.is_empty() {
                servers.remove(&self.key);
            }
        }
        drop(servers);
        self.pool.changed.notify_waiters();
    }
}

pub(crate) enum Checkout {
    /// A live idle connection.
    Reused(Connection),
    /// No idle one; a slot to open a new connection in.
    New(Slot),
}

impl Pool {
    pub(crate) fn new(max_per_server: usize, idle_timeout: Duration) -> Pool {
        Pool {
            servers: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            max_per_server,
            idle_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PoolKey, Server>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection to `key`, or a slot for a new one; waits while
    /// the server is at its connection limit.
    pub(crate) async fn checkout(self: &Arc<Self>, key: &PoolKey) -> Checkout {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let mut stale = Vec::new();
            let got = {
                let mut servers = self.lock();
                let server = servers.entry(key.clone()).or_default();
                let mut found = None;
                while let Some((mut conn, since)) = server.idle.pop() {
                    if since.elapsed() < self.idle_timeout && conn.is_alive() {
                        found = Some(conn);
                        break;
                    }
                    stale.push(conn);
                }
                match found {
                    Some(c) => Some(Checkout::Reused(c)),
                    None if server.open - stale.len() < self.max_per_server => {
                        server.open += 1;
                        Some(Checkout::New(Slot {
                            pool: self.clone(),
                            key: key.clone(),
                        }))
                    }
                    None => None,
                }
            };
            // Closed outside the lock: their slots lock the pool to leave.
            drop(stale);
            if let Some(c) = got {
                return c;
            }
            changed.await;
        }
    }

    /// Keeps a connection whose response ended cleanly for the next request.
    pub(crate) fn checkin(&self, conn: Connection) {
        let mut servers = self.lock();
        let key = conn.slot_key().clone();
        servers
            .entry(key)
            .or_default()
            .idle
            .push((conn, Instant::now()));
        drop(servers);
        self.changed.notify_waiters();
    }

    /// Idle and in-use connections.
    pub(crate) fn open_count(&self) -> usize {
        self.lock().values().map(|s| s.open).sum()
    }

    /// Closes every idle connection.
    pub(crate) fn clear(&self) {
        let idle: Vec<_> = self
            .lock()
            .values_mut()
            .flat_map(|s| std::mem::take(&mut s.idle))
            .collect();
        drop(idle);
    }
}

impl Connection {
    /// An idle connection is alive if reading it would block: end of file
    /// means the server closed it, and bytes the server sent unasked mean
    /// it cannot be trusted with another response.
    pub(crate) fn is_alive(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        matches!(
            Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf),
            Poll::Pending
        )
    }
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// One connection to a server (or to a proxy for plain-HTTP proxying).
pub(crate) struct Connection {
    pub id: u64,
    pub stream: Stream,
    /// Bytes read but not yet consumed.
    pub rbuf: BytesMut,
    /// Requests go to an HTTP proxy in absolute form.
    pub via_proxy: bool,
    /// The address connected to (the proxy's, through a proxy).
    pub peer: SocketAddr,
    /// Holds the connection's place under the per-server limit.
    _slot: Slot,
    key: PoolKey,
    /// A second descriptor of the socket, so the handle using the
    /// connection can shut it down from another task when it is closed
    /// (`None` if the process had no descriptor to spare).
    shutdown: Option<Arc<OwnedFd>>,
}

impl Connection {
    /// A connection just established for `key`, holding `slot`.
    pub(crate) fn new(
        stream: Stream,
        rbuf: BytesMut,
        via_proxy: bool,
        peer: SocketAddr,
        slot: Slot,
        key: PoolKey,
    ) -> Connection {
        let shutdown = stream.tcp().as_fd().try_clone_to_owned().ok().map(Arc::new);
        Connection {
            id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            shutdown,
            stream,
            rbuf,
            via_proxy,
            peer,
            _slot: slot,
            key,
        }
    }

    pub(crate) fn slot_key(&self) -> &PoolKey {
        &self.key
    }

    /// What a closing handle shuts the connection down with.
    pub(crate) fn shutdown_handle(&self) -> Option<&Arc<OwnedFd>> {
        self.shutdown.as_ref()
    }
}
