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

struct PortListeners {
    /// Registrations using this port.
    refs: usize,
    wildcard: bool,
    tasks: Vec<(SocketAddr, JoinHandle<()>)>,
}

pub(crate) struct SessionInner {
    pub id: u64,
    props: RwLock<Properties>,
    routes: RwLock<Arc<Vec<Registration>>>,
    listeners: Mutex<HashMap<u16, PortListeners>>,
    pub counters: Counters,
    handle: tokio::runtime::Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    conn_limit: Arc<Semaphore>,
    closed: AtomicBool,
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
            Some(t) => {
                let pick = |v: Duration, b: Duration| if v.is_zero() { b } else { v };
                Timeouts {
                    header_wait: pick(t.header_wait, base.header_wait),
                    entity_body: pick(t.entity_body, base.entity_body),
                    drain_entity_body: pick(t.drain_entity_body, base.drain_entity_body),
                    idle_connection: pick(t.idle_connection, base.idle_connection),
                    request_queue: pick(t.request_queue, base.request_queue),
                    min_send_rate: if t.min_send_rate == 0 {
                        base.min_send_rate
                    } else {
                        t.min_send_rate
                    },
                }
            }
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

    pub(crate) fn server_header(&self) -> Option<String> {
        self.properties_ref(|p| p.server_header.clone())
    }

    pub(crate) fn route(
        &self,
        scheme: &str,
        host: &str,
        local: SocketAddr,
        path: &str,
    ) -> Option<Route> {
        let table = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (context, group) = url_group::route(&table, scheme, host, local, path)?;
        Some(Route { context, group })
    }

    pub(crate) fn add_registration(
        self: &Arc<Self>,
        prefix: UrlPrefix,
        context: u64,
        group: &Arc<GroupInner>,
    ) -> Result<(), ServerError> {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if routes.iter().any(|r| r.prefix == prefix) {
            return Err(ServerError::DuplicatePrefix(prefix.to_string()));
        }
        self.ensure_listeners(&prefix)?;
        let mut table = (**routes).clone();
        table.push(Registration {
            prefix,
            context,
            group: Arc::downgrade(group),
        });
        *routes = Arc::new(table);
        Ok(())
    }

    pub(crate) fn remove_registration(
        &self,
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
        self.release_listeners(prefix.port);
        Ok(())
    }

    /// Binds what `prefix` needs: the wildcard addresses for `+`, `*` and host
    /// names, the literal address for IP-bound prefixes (unless the port
    /// already has wildcard listeners, which accept on every address).
    fn ensure_listeners(self: &Arc<Self>, prefix: &UrlPrefix) -> Result<(), ServerError> {
        let mut all = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let wants_wildcard = !matches!(prefix.host, HostSpec::IpBound(_));
        let entry = all.entry(prefix.port).or_insert_with(|| PortListeners {
            refs: 0,
            wildcard: false,
            tasks: Vec::new(),
        });
        if entry.wildcard {
            entry.refs += 1;
            return Ok(());
        }
        let addrs = prefix.listen_addrs();
        if wants_wildcard && !entry.tasks.is_empty() {
            // Specific addresses are bound; the wildcard replaces them.
            for (_, t) in entry.tasks.drain(..) {
                t.abort();
            }
        }
        let mut new_tasks = Vec::new();
        let mut first_err = None;
        for addr in addrs {
            if entry.tasks.iter().any(|(a, _)| *a == addr) {
                continue;
            }
            match self.bind(addr) {
                Ok(l) => {
                    let session = self.clone();
                    let _guard = self.handle.enter();
                    new_tasks.push((addr, self.handle.spawn(accept_loop(l, session))));
                }
                // A machine without IPv6 still serves the IPv4 wildcard.
                Err(e)
                    if addr.is_ipv6()
                        && wants_wildcard
                        && e.kind() == std::io::ErrorKind::AddrNotAvailable => {}
                Err(e) if addr.is_ipv6() && wants_wildcard && e.raw_os_error() == Some(97) => {}
                Err(source) => {
                    first_err.get_or_insert(ServerError::Listen { addr, source });
                }
            }
        }
        if let Some(e) = first_err {
            for (_, t) in new_tasks {
                t.abort();
            }
            if entry.refs == 0 && entry.tasks.is_empty() {
                all.remove(&prefix.port);
            }
            return Err(e);
        }
        entry.tasks.extend(new_tasks);
        entry.wildcard |= wants_wildcard;
        entry.refs += 1;
        Ok(())
    }

    fn release_listeners(&self, port: u16) {
        let mut all = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = all.get_mut(&port) {
            entry.refs -= 1;
            if entry.refs == 0 {
                for (_, t) in entry.tasks.drain(..) {
                    t.abort();
                }
                all.remove(&port);
            }
        }
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

async fn accept_loop(listener: TcpListener, session: Arc<SessionInner>) {
    loop {
        let Ok(permit) = session.conn_limit.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of descriptors or a transient error: back off briefly
                // instead of spinning or dying.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some(idle) = session.properties_ref(|p| p.tcp_keepalive) {
            let ka = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(Duration::from_secs(10))
                .with_retries(3);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
        }
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| listener.local_addr().expect("bound listener"));
        let conn = Arc::new(Conn {
            id: registry::next_connection_id(),
            remote,
            local,
            session: session.clone(),
            state: Mutex::new(ConnState::default()),
            wake: Default::default(),
            gone: Default::default(),
            drained: Default::default(),
            connected: AtomicBool::new(true),
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
    pub fn with_runtime(props: Properties, handle: tokio::runtime::Handle) -> ServerSession {
        Self::build(props, handle, None)
    }

    fn build(
        props: Properties,
        handle: tokio::runtime::Handle,
        runtime: Option<tokio::runtime::Runtime>,
    ) -> ServerSession {
        ServerSession {
            inner: Arc::new(SessionInner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                conn_limit: Arc::new(Semaphore::new(
                    props.max_connections.clamp(1, Semaphore::MAX_PERMITS),
                )),
                props: RwLock::new(props),
                routes: RwLock::new(Arc::new(Vec::new())),
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
            .flat_map(|p| p.tasks.iter().map(|(a, _)| *a))
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
            for (_, t) in p.tasks {
                t.abort();
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
