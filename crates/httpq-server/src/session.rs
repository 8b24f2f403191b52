//! The server session: default properties, the routing table of every URL
//! group's prefixes, the listening sockets those prefixes need, and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::connection::{self, Conn, ConnState};
use crate::counters::{CounterSnapshot, Counters};
use crate::disconnect::DisconnectReason;
use crate::properties::{Properties, Timeouts};
use crate::registry;
use crate::request_queue::QueueInner;
use crate::url_group::{self, GroupInner, HostSpec, Registration, UrlGroup, UrlPrefix};
use crate::ServerError;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One listening socket and its accept task. The socket sits in a slot the
/// task borrows only while polling, so [`Listener::close`] closes it at once:
/// a task abort alone drops the socket later, on the runtime, and until then
/// the address cannot be bound again (a wildcard replacing it, or the same
/// prefix registered anew, would fail with "address in use").
struct Listener {
    addr: SocketAddr,
    socket: Arc<Mutex<Option<TcpListener>>>,
    task: JoinHandle<()>,
}

impl Listener {
    fn close(self) {
        drop(self.socket.lock().unwrap_or_else(|e| e.into_inner()).take());
        self.task.abort();
    }
}

pub(crate) struct SessionInner {
    pub id: u64,
    /// The Server header value, fixed at creation (read on every response).
    /// Shared with the per-thread response-line cache (compared by pointer).
    pub server_header: Option<std::sync::Arc<[u8]>>,
    props: RwLock<Properties>,
    routes: RwLock<Arc<Vec<Registration>>>,
    /// Bumped after every change that can alter where a request goes (a
    /// prefix added or removed, a group bound, unbound or given timeouts),
    /// so connections can trust a remembered decision while it is unchanged.
    route_gen: AtomicU64,
    /// The listening sockets of each port, as the registrations on it need.
    listeners: Mutex<HashMap<u16, Vec<Listener>>>,
    pub counters: Counters,
    handle: tokio::runtime::Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    conn_limit: Arc<Semaphore>,
    closed: AtomicBool,
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
    pub queue: Option<(u64, std::sync::Weak<QueueInner>)>,
    /// The group's timeouts over the connection's.
    pub timeouts: Timeouts,
}

/// What routing found: the prefix's context and its group.
pub(crate) struct Route {
    pub context: u64,
    pub group: Arc<GroupInner>,
}

impl Route {
    pub(crate) fn queue(&self) -> Option<Arc<QueueInner>> {
        self.group
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The group's timeouts where it sets them, else `base`.
    pub(crate) fn group_timeouts(&self, base: &Timeouts) -> Timeouts {
        match *self
            .group
            .timeouts
            .read()
            .unwrap_or_else(|e| e.into_inner())
        {
            None => *base,
            Some(t) => t.or(*base),
        }
    }
}

impl SessionInner {
    pub(crate) fn properties(&self) -> Properties {
        self.props.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn properties_ref<R>(&self, f: impl FnOnce(&Properties) -> R) -> R {
        f(&self.props.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn route(
        &self,
        scheme: &str,
        host: &[u8],
        local: SocketAddr,
        path: &[u8],
    ) -> Option<Route> {
        let table = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let (context, group) = url_group::route(&table, scheme, host, local, path)?;
        Some(Route { context, group })
    }

    /// Marks every remembered routing decision stale. Called after the change.
    pub(crate) fn routes_changed(&self) {
        self.route_gen.fetch_add(1, Ordering::Release);
    }

    /// [`route`](Self::route) through a connection's [`RouteCache`]: the same
    /// host and path as last time, with no routing change since, reuse the
    /// decision. `base`: the timeouts group timeouts fall back to.
    pub(crate) fn route_cached<'c>(
        &self,
        cache: &'c mut RouteCache,
        scheme: &str,
        host: &[u8],
        local: SocketAddr,
        path: &[u8],
        base: &Timeouts,
    ) -> Option<&'c Resolved> {
        // Read before the table: a change racing with this lookup leaves the
        // entry tagged with the older generation, so it is looked up again.
        let gen = self.route_gen.load(Ordering::Acquire);
        if cache.gen != gen || cache.path != path || cache.host != host {
            cache.resolved = self.route(scheme, host, local, path).map(|r| Resolved {
                context: r.context,
                queue: r.queue().map(|q| (q.id, Arc::downgrade(&q))),
                timeouts: r.group_timeouts(base),
            });
            cache.gen = gen;
            cache.host.clear();
            cache.host.extend_from_slice(host);
            cache.path.clear();
            cache.path.extend_from_slice(path);
        }
        cache.resolved.as_ref()
    }

    pub(crate) fn add_registration(
        self: &Arc<Self>,
        prefix: UrlPrefix,
        context: u64,
        group: &Arc<GroupInner>,
    ) -> Result<(), ServerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ServerError::Aborted);
        }
        if prefix.scheme == "https" {
            return Err(ServerError::NotSupported(
                "https:// prefixes need TLS serving, which httpq does not have yet",
            ));
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if routes.iter().any(|r| r.prefix == prefix) {
            return Err(ServerError::DuplicatePrefix(prefix.to_string()));
        }
        let port = prefix.port;
        let mut table = (**routes).clone();
        table.push(Registration {
            prefix,
            context,
            group: Arc::downgrade(group),
        });
        if let Err(e) = self.reconcile_listeners(port, &table) {
            // Back to what the registrations already there need.
            let _ = self.reconcile_listeners(port, &routes);
            return Err(e);
        }
        *routes = Arc::new(table);
        self.routes_changed();
        Ok(())
    }

    pub(crate) fn remove_registration(
        self: &Arc<Self>,
        prefix: &UrlPrefix,
        group_id: u64,
    ) -> Result<(), ServerError> {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let pos = routes
            .iter()
            .position(|r| &r.prefix == prefix && r.group.upgrade().is_none_or(|g| g.id == group_id))
            .ok_or_else(|| ServerError::PrefixNotFound(prefix.to_string()))?;
        let mut table = (**routes).clone();
        table.remove(pos);
        *routes = Arc::new(table);
        self.routes_changed();
        if !self.closed.load(Ordering::Acquire) {
            // Fewer addresses only: closing listeners cannot fail, and a
            // rebind after a wildcard left is best effort.
            let _ = self.reconcile_listeners(prefix.port, &routes);
        }
        Ok(())
    }

    /// Makes the listeners of `port` exactly what the registrations of
    /// `table` on it need: the wildcard addresses (IPv4 and IPv6) if any
    /// prefix there is `+`, `*` or a host name, else each IP-bound
    /// prefix's own address. Unneeded sockets close first, so a wildcard
    /// can replace specific addresses (and the reverse) without a conflict.
    fn reconcile_listeners(
        self: &Arc<Self>,
        port: u16,
        table: &[Registration],
    ) -> Result<(), ServerError> {
        let on_port = || table.iter().filter(|r| r.prefix.port == port);
        let wildcard = on_port().any(|r| !matches!(r.prefix.host, HostSpec::IpBound(_)));
        let want: Vec<SocketAddr> = if wildcard {
            UrlPrefix::wildcard_addrs(port)
        } else {
            let mut v: Vec<SocketAddr> = on_port().flat_map(|r| r.prefix.listen_addrs()).collect();
            v.sort();
            v.dedup();
            v
        };
        let mut all = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let have = all.entry(port).or_default();
        let (keep, close): (Vec<Listener>, Vec<Listener>) = std::mem::take(have)
            .into_iter()
            .partition(|l| want.contains(&l.addr));
        for l in close {
            l.close();
        }
        *have = keep;
        let mut result = Ok(());
        for addr in want {
            if have.iter().any(|l| l.addr == addr) {
                continue;
            }
            match self.bind(addr) {
                Ok(l) => {
                    let l = self.spawn_listener(addr, l);
                    have.push(l);
                }
                // A machine without IPv6 still serves the IPv4 wildcard.
                Err(e)
                    if addr.is_ipv6()
                        && wildcard
                        && (e.kind() == std::io::ErrorKind::AddrNotAvailable
                            || e.raw_os_error() == Some(97)) => {}
                Err(source) => {
                    result = Err(ServerError::Listen { addr, source });
                    break;
                }
            }
        }
        if have.is_empty() {
            all.remove(&port);
        }
        result
    }

    fn spawn_listener(self: &Arc<Self>, addr: SocketAddr, l: TcpListener) -> Listener {
        let socket = Arc::new(Mutex::new(Some(l)));
        let task = self
            .handle
            .spawn(accept_loop(socket.clone(), addr, self.clone()));
        Listener { addr, socket, task }
    }

    fn bind(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let _guard = self.handle.enter();
        TcpListener::from_std(socket.into())
    }

    /// Open connections of this session.
    fn connections(&self) -> Vec<Arc<Conn>> {
        registry::all()
            .into_iter()
            .filter(|c| c.session.id == self.id)
            .collect()
    }
}

async fn accept_loop(
    listener: Arc<Mutex<Option<TcpListener>>>,
    addr: SocketAddr,
    session: Arc<SessionInner>,
) {
    loop {
        let accepted = std::future::poll_fn(|cx| {
            match &*listener.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(l) => l.poll_accept(cx).map(Some),
                None => std::task::Poll::Ready(None), // closed
            }
        })
        .await;
        let (stream, remote) = match accepted {
            None => return,
            Some(Ok(x)) => x,
            Some(Err(_)) => {
                // Out of descriptors or a transient error: back off briefly
                // instead of spinning or dying.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // The permit is taken after accepting, not before: every listener
        // of a port (IPv4 and IPv6 wildcards) waits in accept, and a permit
        // held by an idle one would be missing from the others. At the limit,
        // this connection waits here, unserved, until another one ends.
        let Ok(permit) = session.conn_limit.clone().acquire_owned().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        if let Some(k) = session.properties_ref(|p| p.tcp_keepalive) {
            let ka = socket2::TcpKeepalive::new()
                .with_time(k.idle)
                .with_interval(k.interval)
                .with_retries(k.retries);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
        }
        let local = stream.local_addr().unwrap_or(addr);
        let conn = Arc::new(Conn {
            id: registry::next_connection_id(),
            max_pipelined: session.properties_ref(|p| p.max_pipelined.max(1)),
            remote,
            local,
            session: session.clone(),
            state: Mutex::new(ConnState::default()),
            wake: Default::default(),
            gone: Default::default(),
            drained: Default::default(),
            connected: AtomicBool::new(true),
            closing: AtomicBool::new(false),
        });
        registry::insert(conn.clone());
        Counters::inc(&session.counters.connections_accepted);
        Counters::inc(&session.counters.connections_open);
        tokio::spawn(connection::run(stream, conn, permit));
    }
}

/// A server session: owns URL groups (and so the listening sockets) and
/// the default properties.
///
/// It runs on the tokio runtime it is created in, or on its own if created
/// outside one (so plain-thread programs work with the blocking twins).
///
/// ```no_run
/// use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};
/// # async fn run() -> Result<(), httpq_server::ServerError> {
/// let session = ServerSession::new(Properties::default())?;
/// let queue = RequestQueue::new("app");
/// let group = session.create_url_group();
/// group.bind(&queue);
/// group.add_url("http://+:8080/", 1)?;
/// loop {
///     let req = queue.receive().await?;
///     queue.send_response(req.id(), Response::new(200).body("hi"), SendFlags::NONE).await?;
/// }
/// # }
/// ```
pub struct ServerSession {
    pub(crate) inner: Arc<SessionInner>,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl ServerSession {
    /// A session with `props`.
    pub fn new(props: Properties) -> Result<ServerSession, ServerError> {
        Self::check(&props)?;
        let (handle, runtime) = match tokio::runtime::Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("httpq-server")
                    .build()?;
                (rt.handle().clone(), Some(rt))
            }
        };
        Ok(Self::build(props, handle, runtime))
    }

    /// A session whose connections run on `handle`.
    pub fn with_runtime(
        props: Properties,
        handle: tokio::runtime::Handle,
    ) -> Result<ServerSession, ServerError> {
        Self::check(&props)?;
        Ok(Self::build(props, handle, None))
    }

    /// Properties that would break every response are refused up front.
    fn check(props: &Properties) -> Result<(), ServerError> {
        if let Some(v) = &props.server_header {
            // Written verbatim into every head: a CR or LF would split it.
            if v.is_empty() || http::HeaderValue::from_str(v).is_err() {
                return Err(ServerError::InvalidProperty(
                    "server_header must be a non-empty header value without control characters",
                ));
            }
        }
        Ok(())
    }

    fn build(
        props: Properties,
        handle: tokio::runtime::Handle,
        runtime: Option<tokio::runtime::Runtime>,
    ) -> ServerSession {
        ServerSession {
            inner: Arc::new(SessionInner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                server_header: props.server_header.as_ref().map(|s| s.as_bytes().into()),
                conn_limit: Arc::new(Semaphore::new(
                    props.max_connections.clamp(1, Semaphore::MAX_PERMITS),
                )),
                props: RwLock::new(props),
                routes: RwLock::new(Arc::new(Vec::new())),
                route_gen: AtomicU64::new(1),
                listeners: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                handle,
                runtime: Mutex::new(runtime),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// A new, empty URL group of this session.
    pub fn create_url_group(&self) -> UrlGroup {
        UrlGroup::new(self.inner.clone())
    }

    /// The current counters.
    pub fn counters(&self) -> CounterSnapshot {
        self.inner.counters.snapshot()
    }

    /// The session's properties.
    pub fn properties(&self) -> Properties {
        self.inner.properties()
    }

    /// Replaces the session's timeouts (zero fields mean the defaults);
    /// connections accepted from now on use them.
    pub fn set_timeouts(&self, t: Timeouts) {
        self.inner
            .props
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .timeouts = t.normalized();
    }

    /// The addresses being listened on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let all = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.values()
            .flat_map(|p| p.iter().map(|l| l.addr))
            .collect()
    }

    /// True while connection `connection_id` (of any session) is open.
    pub fn is_connected(&self, connection_id: u64) -> bool {
        registry::get(connection_id).is_some_and(|c| c.is_connected())
    }

    /// Stops accepting, lets in-flight requests finish for up to `grace`,
    /// then closes every connection (waiters see `ServerShutdown`).
    pub async fn shutdown(&self, grace: Duration) {
        self.stop_listening();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let busy = self
                .inner
                .connections()
                .iter()
                .any(|c| !c.lock().slots.is_empty());
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.close_connections();
    }

    fn stop_listening(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        let mut all = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (_, p) in all.drain() {
            for l in p {
                l.close();
            }
        }
        self.inner.conn_limit.close();
    }

    fn close_connections(&self) {
        for c in self.inner.connections() {
            c.abort(DisconnectReason::ServerShutdown, false);
        }
    }

    /// Closes the session at once: listeners and connections.
    pub fn close(&self) {
        self.stop_listening();
        self.close_connections();
    }
}

impl Drop for ServerSession {
    fn drop(&mut self) {
        self.close();
        if let Some(rt) = self
            .inner
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}
