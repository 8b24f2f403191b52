//! The session's snapshots: metrics summed over its workers, and the
//! service state walked from its routing table, queues and connections.

use std::collections::BTreeMap;

use super::{
    snapshot, ConnectionState, CurrentRequest, MetricsSnapshot, PerQueue, PrefixState, QueueState,
    ServiceState, SessionState, UrlGroupState,
};
use crate::conn::Conn;
use crate::counters::Counters;
use crate::ServerSession;

impl Conn {
    /// Calls `f` with the queue of each request in flight on this connection.
    fn for_each_in_flight(&self, f: impl FnMut(u64)) {
        match self.h2.get() {
            Some(t) => t.for_each_in_flight(f),
            None => self.lock().engine.for_each_in_flight(f),
        }
    }
}

impl ServerSession {
    /// Every worker's counters and metrics, summed. The counters are read
    /// without a lock; requests in flight are counted by visiting each
    /// connection, taking its lock for a moment.
    ///
    /// ```no_run
    /// # fn f(session: &httpq_server::ServerSession) {
    /// let m = session.metrics();
    /// let ok: u64 = m.requests.iter().filter(|r| r.class == "2xx").map(|r| r.count).sum();
    /// println!("{ok} answered 2xx, {} in flight", m.in_flight);
    /// # }
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        let inner = &self.inner;
        let counters = Counters::sum(inner.workers.iter().map(|w| &*w.counters));
        let mut in_flight = 0u64;
        for c in inner.connections() {
            c.for_each_in_flight(|_| in_flight += 1);
        }
        snapshot(
            counters,
            inner.workers.iter().map(|w| &w.counters.metrics),
            in_flight,
        )
    }

    /// The session as `netsh http show servicestate` shows one: its
    /// properties, URL groups with prefixes and timeouts, request queues,
    /// and (with `connections`) every open connection with its current
    /// request. Without `connections` it does not visit the connections
    /// (cheap enough to poll every second on a busy server), and queues'
    /// in-flight counts are 0.
    ///
    /// ```no_run
    /// # fn f(session: &httpq_server::ServerSession) {
    /// for q in session.state(true).request_queues {
    ///     println!("{}: {} waiting, {} in flight", q.name, q.length, q.in_flight);
    /// }
    /// # }
    /// ```
    pub fn state(&self, connections: bool) -> ServiceState {
        let inner = &self.inner;
        let props = inner.site.properties();
        let mut per_queue = PerQueue::new();
        let mut conns = Vec::new();
        if connections {
            for c in inner.connections() {
                let mut n = 0;
                c.for_each_in_flight(|q| {
                    *per_queue.entry(q).or_default() += 1;
                    n += 1;
                });
                if !c.is_connected() {
                    continue;
                }
                let current = match c.h2.get() {
                    _ if n == 0 => None,
                    Some(t) => t
                        .current()
                        .map(|(seq, method, path)| (seq, method, Some(path))),
                    None => {
                        let st = c.lock();
                        Some((st.current.seq, st.current.method(), st.current.path()))
                    }
                };
                let current = current.and_then(|(seq, method, path)| {
                    Some(CurrentRequest {
                        id: crate::ids::request_id(c.id, seq),
                        method: method.as_str().to_string(),
                        path: path?,
                    })
                });
                conns.push(ConnectionState {
                    id: c.id,
                    peer: c.remote,
                    local: c.local,
                    protocol: if c.h2.get().is_some() {
                        "HTTP/2"
                    } else {
                        "HTTP/1.1"
                    },
                    tls: c.tls.is_some(),
                    state: if n > 0 { "active" } else { "idle" },
                    in_flight: n,
                    current_request: current,
                });
            }
            conns.sort_by_key(|c| c.id);
        }
        let mut groups: BTreeMap<u64, UrlGroupState> = BTreeMap::new();
        let mut queues: BTreeMap<u64, QueueState> = BTreeMap::new();
        for r in inner.site.routes.registrations().iter() {
            let Some(g) = r.group.upgrade() else { continue };
            let entry = groups.entry(g.id).or_insert_with(|| {
                let own = g.timeouts();
                let queue = g.queue();
                if let Some(q) = &queue {
                    queues.entry(q.id).or_insert_with(|| {
                        let length = q.len();
                        // Connections count a request from routing on; the
                        // ones still waiting in the queue are its length.
                        let routed = per_queue.get(&q.id).copied().unwrap_or(0);
                        QueueState {
                            id: q.id,
                            name: q.name().to_string(),
                            length,
                            consumers: q.consumers(),
                            in_flight: routed.saturating_sub(length),
                        }
                    });
                }
                UrlGroupState {
                    id: g.id,
                    prefixes: Vec::new(),
                    timeouts: own.map_or(props.timeouts, |t| t.or(props.timeouts)),
                    own_timeouts: own.is_some(),
                    queue: queue.map(|q| q.name().to_string()),
                }
            });
            entry.prefixes.push(PrefixState {
                url: r.prefix.to_string(),
                context: r.context,
            });
        }
        let mut listening = self.listen_addrs();
        listening.sort();
        listening.dedup();
        ServiceState {
            session: SessionState {
                id: inner.id,
                workers: inner.workers.len(),
                listening,
                properties: props,
                uptime: inner.started.elapsed(),
            },
            url_groups: groups.into_values().collect(),
            request_queues: queues.into_values().collect(),
            connections: conns,
            recent_disconnects: inner.site.env.disconnects.list(),
        }
    }

    /// Writes a line for every response completed on connections accepted
    /// from now on to `log` (`None`: stop logging on new connections). See
    /// [`AccessLog`](crate::AccessLog).
    pub fn set_access_log(&self, log: Option<&crate::AccessLog>) {
        *self
            .inner
            .site
            .env
            .access_log
            .write()
            .unwrap_or_else(|e| e.into_inner()) = log.map(|l| l.sender());
    }
}
