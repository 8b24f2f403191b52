//! The routing table of a session — every URL group's prefixes — and the
//! per-connection memory of the last decision, which spares a keep-alive
//! connection the table's lock while its requests repeat host and path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use crate::properties::Timeouts;
use crate::request_queue::QueueInner;
use crate::url_group::{self, GroupInner, Registration};

/// The prefixes of every URL group of a session.
pub(crate) struct RouteTable {
    table: RwLock<Arc<Vec<Registration>>>,
    /// Bumped after every change that can alter where a request goes (a
    /// prefix added or removed, a group bound, unbound or given timeouts),
    /// so connections can trust a remembered decision while it is unchanged.
    gen: AtomicU64,
}

/// What a connection remembers of its last routing decision. Requests on a
/// keep-alive connection mostly repeat their host and path, and a hit skips
/// the table's lock, the group's upgrade, and the queue's and timeouts'
/// locks: about ten atomic operations per request.
#[derive(Default)]
pub(crate) struct RouteCache {
    /// The generation the entry was made under (0: none yet; they start at 1).
    gen: u64,
    host: Vec<u8>,
    path: Vec<u8>,
    /// `None`: no prefix matched.
    resolved: Option<Resolved>,
}

impl RouteCache {
    /// The queue of the last decision, if it still exists.
    pub(crate) fn queue(&self) -> Option<Arc<QueueInner>> {
        self.resolved.as_ref()?.queue.as_ref()?.1.upgrade()
    }
}

/// A routing decision as a connection uses it.
pub(crate) struct Resolved {
    pub context: u64,
    /// The queue's id and the queue; `None`: the group has no queue bound.
    /// Weak: a remembered decision must not keep a dropped queue alive.
    pub queue: Option<(u64, Weak<QueueInner>)>,
    /// The group's timeouts over the session's; `None`: it sets none.
    pub timeouts: Option<Timeouts>,
}

impl RouteTable {
    pub(crate) fn new() -> RouteTable {
        RouteTable {
            table: RwLock::new(Arc::new(Vec::new())),
            gen: AtomicU64::new(1),
        }
    }

    /// Changes the table under its write lock: `f` returns the new table
    /// (or an error, leaving it as it was).
    pub(crate) fn update<E>(
        &self,
        f: impl FnOnce(&[Registration]) -> Result<Vec<Registration>, E>,
    ) -> Result<(), E> {
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        let new = f(&t)?;
        *t = Arc::new(new);
        drop(t);
        self.changed();
        Ok(())
    }

    /// Every registration, as the table is now.
    pub(crate) fn registrations(&self) -> Arc<Vec<Registration>> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Marks every remembered routing decision stale. Called after the change.
    pub(crate) fn changed(&self) {
        self.gen.fetch_add(1, Ordering::Release);
    }

    fn route(
        &self,
        scheme: &str,
        host: &[u8],
        local: SocketAddr,
        path: &[u8],
    ) -> Option<(u64, Arc<GroupInner>)> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        url_group::route(&table, scheme, host, local, path)
    }

    /// Routes through a connection's [`RouteCache`]: the same host and path
    /// as last time, with no routing change since, reuse the decision.
    pub(crate) fn route_cached<'c>(
        &self,
        cache: &'c mut RouteCache,
        scheme: &str,
        host: &[u8],
        local: SocketAddr,
        path: &[u8],
    ) -> Option<&'c Resolved> {
        // Read before the table: a change racing with this lookup leaves the
        // entry tagged with the older generation, so it is looked up again.
        let gen = self.gen.load(Ordering::Acquire);
        if cache.gen != gen || cache.path != path || cache.host != host {
            cache.resolved = self
                .route(scheme, host, local, path)
                .map(|(context, group)| Resolved {
                    context,
                    queue: group.queue().map(|q| (q.id, Arc::downgrade(&q))),
                    timeouts: group.timeouts(),
                });
            cache.gen = gen;
            cache.host.clear();
            cache.host.extend_from_slice(host);
            cache.path.clear();
            cache.path.extend_from_slice(path);
        }
        cache.resolved.as_ref()
    }
}
