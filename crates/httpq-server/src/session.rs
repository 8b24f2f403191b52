//! The server session: default properties, the workers, the routing table
//! of every URL group's prefixes, the listening sockets those prefixes
//! need, and shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::conn::{Conn, ConnEnv};
use crate::counters::{CounterSnapshot, Counters};
use crate::disconnect::DisconnectReason;
use crate::properties::{Properties, Timeouts};
use crate::registry;
use crate::routes::RouteTable;
use crate::site::Site;
use crate::tls::{CertBinding, Certificate, TlsStore};
use crate::url_group::{GroupInner, HostSpec, Registrar, Registration, UrlGroup, UrlPrefix};
use crate::worker::{Listener, Worker};
use crate::ServerError;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct SessionInner {
    pub id: u64,
    pub(crate) site: Arc<Site>,
    pub(crate) workers: Vec<Worker>,
    /// The listening sockets of each port, as the registrations on it need.
    listeners: Mutex<HashMap<u16, Vec<Listener>>>,
    conn_limit: Arc<Semaphore>,
    closed: AtomicBool,
    pub(crate) started: std::time::Instant,
}

impl Registrar for SessionInner {
    fn add(
        &self,
        prefix: UrlPrefix,
        context: u64,
        group: &Arc<GroupInner>,
    ) -> Result<(), ServerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ServerError::Aborted);
        }
        let port = prefix.port;
        self.site.routes.update(|routes| {
            if routes.iter().any(|r| r.prefix == prefix) {
                return Err(ServerError::DuplicatePrefix(prefix.to_string()));
            }
            if routes
                .iter()
                .any(|r| r.prefix.port == port && r.prefix.scheme != prefix.scheme)
            {
                return Err(ServerError::InvalidPrefix {
                    prefix: prefix.to_string(),
                    why: "a port serves either http:// or https:// prefixes, not both",
                });
            }
            let mut table = routes.to_vec();
            table.push(Registration {
                prefix,
                context,
                group: Arc::downgrade(group),
            });
            if let Err(e) = self.reconcile_listeners(port, &table) {
                // Back to what the registrations already there need.
                let _ = self.reconcile_listeners(port, routes);
                return Err(e);
            }
            Ok(table)
        })
    }

    fn remove(&self, prefix: &UrlPrefix, group_id: u64) -> Result<(), ServerError> {
        let closed = self.closed.load(Ordering::Acquire);
        self.site.routes.update(|routes| {
            let pos = routes
                .iter()
                .position(|r| {
                    &r.prefix == prefix && r.group.upgrade().is_none_or(|g| g.id == group_id)
                })
                .ok_or_else(|| ServerError::PrefixNotFound(prefix.to_string()))?;
            let mut table = routes.to_vec();
            table.remove(pos);
            if !closed {
                // Fewer addresses only: closing listeners cannot fail, and a
                // rebind after a wildcard left is best effort.
                let _ = self.reconcile_listeners(prefix.port, &table);
            }
            Ok(table)
        })
    }

    fn changed(&self) {
        self.site.routes.changed();
    }
}

impl SessionInner {
    /// Makes the listeners of `port` exactly what the registrations of
    /// `table` on it need: the wildcard addresses (IPv4 and IPv6) if any
    /// prefix there is `+`, `*` or a host name, else each IP-bound
    /// prefix's own address. Unneeded sockets close first, so a wildcard
    /// can replace specific addresses (and the reverse) without a conflict.
    fn reconcile_listeners(&self, port: u16, table: &[Registration]) -> Result<(), ServerError> {
        let on_port = || table.iter().filter(|r| r.prefix.port == port);
        let tls = on_port().any(|r| r.prefix.scheme == "https");
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
            .partition(|l| want.contains(&l.addr) && l.tls == tls);
        for l in close {
            l.close();
        }
        *have = keep;
        let mut result = Ok(());
        for addr in want {
            if have.iter().any(|l| l.addr == addr) {
                continue;
            }
            let probe = have.is_empty();
            match Listener::open(
                addr,
                &self.workers,
                &self.site,
                &self.conn_limit,
                probe,
                tls,
            ) {
                Ok(l) => have.push(l),
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

    /// Open connections of this session.
    pub(crate) fn connections(&self) -> Vec<Arc<Conn>> {
        registry::all()
            .into_iter()
            .filter(|c| c.env.session_id == self.id)
            .collect()
    }
}

/// A server session: owns URL groups (and so the listening sockets), the
/// default properties, and the workers connections run on.
///
/// A session runs [`Properties::workers`] worker threads (default: one per
/// core), each with its own runtime, listening sockets and share of every
/// request queue. Consumers can receive from any thread or runtime; a
/// consumer spawned on the workers with
/// [`spawn_on_workers`](Self::spawn_on_workers) takes its own worker's
/// requests first, with no cross-thread hand-off. That is the fast way:
///
/// ```no_run
/// use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};
/// # fn run() -> Result<(), httpq_server::ServerError> {
/// let session = ServerSession::new(Properties::default())?;
/// let queue = RequestQueue::new("app");
/// let group = session.create_url_group();
/// group.bind(&queue);
/// group.add_url("http://+:8080/", 1)?;
/// session.spawn_on_workers(move |_worker| {
///     let queue = queue.clone();
///     async move {
///         while let Ok(req) = queue.receive().await {
///             let answer = Response::new(200).body("hi");
///             let _ = queue.send_response(req.id(), answer, SendFlags::NONE).await;
///         }
///     }
/// });
/// # Ok(()) }
/// ```
pub struct ServerSession {
    pub(crate) inner: Arc<SessionInner>,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("id", &self.inner.id)
            .field("workers", &self.inner.workers.len())
            .finish()
    }
}

impl ServerSession {
    /// A session with `props`, starting its worker threads.
    pub fn new(props: Properties) -> Result<ServerSession, ServerError> {
        Self::check(&props)?;
        let n = match props.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let workers = Worker::start(n, "httpq-worker")?;
        Ok(Self::build(props, workers))
    }

    /// A session whose connections all run on `handle` (no worker threads
    /// of its own; [`Properties::workers`] is ignored).
    pub fn with_runtime(
        props: Properties,
        handle: tokio::runtime::Handle,
    ) -> Result<ServerSession, ServerError> {
        Self::check(&props)?;
        Ok(Self::build(props, vec![Worker::on(handle)]))
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

    fn build(props: Properties, workers: Vec<Worker>) -> ServerSession {
        crate::memory::start(props.return_memory);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let env = Arc::new(ConnEnv {
            session_id: id,
            server_header: props.server_header.as_ref().map(|s| s.as_bytes().into()),
            limits: props.limits,
            draining: AtomicBool::new(false),
            quiet: tokio::sync::Notify::new(),
            access_log: RwLock::new(None),
            disconnects: Default::default(),
        });
        let conn_limit = Arc::new(Semaphore::new(
            props.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ));
        ServerSession {
            inner: Arc::new(SessionInner {
                id,
                site: Arc::new(Site {
                    env,
                    routes: Arc::new(RouteTable::new()),
                    props: RwLock::new(props),
                    tls: TlsStore::new(),
                }),
                workers,
                listeners: Mutex::new(HashMap::new()),
                conn_limit,
                closed: AtomicBool::new(false),
                started: std::time::Instant::now(),
            }),
        }
    }

    /// A new, empty URL group of this session.
    pub fn create_url_group(&self) -> UrlGroup {
        UrlGroup::new(self.inner.clone())
    }

    /// How many workers the session runs.
    pub fn workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// Runs `f(worker index)`'s future on every worker: the one obvious
    /// way to run "a consumer loop on every worker". A consumer running on
    /// a worker takes the requests of that worker's connections first, and
    /// the others' when its own are all taken.
    pub fn spawn_on_workers<F, Fut>(&self, f: F) -> Vec<tokio::task::JoinHandle<Fut::Output>>
    where
        F: Fn(usize) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.inner
            .workers
            .iter()
            .map(|w| w.handle.spawn(f(w.index)))
            .collect()
    }

    /// The current counters (every worker's, summed).
    pub fn counters(&self) -> CounterSnapshot {
        Counters::sum(self.inner.workers.iter().map(|w| &*w.counters))
    }

    /// The session's properties.
    pub fn properties(&self) -> Properties {
        self.inner.site.properties()
    }

    /// Replaces the session's timeouts (zero fields mean the defaults);
    /// connections accepted from now on use them.
    pub fn set_timeouts(&self, t: Timeouts) {
        self.inner
            .site
            .props
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .timeouts = t.normalized();
    }

    /// Binds `cert` to `binding` (an `IP:port`, `0.0.0.0:port` for every
    /// address, or a host name the client names by SNI), as the HTTP
    /// Server API's SSL and SNI certificate bindings. An earlier binding is
    /// replaced: new handshakes use the new certificate, connections
    /// already open keep theirs — this is how a certificate is reloaded.
    ///
    /// ```no_run
    /// use httpq_server::tls::{CertBinding, Certificate};
    /// # fn f(session: &httpq_server::ServerSession) -> Result<(), httpq_server::ServerError> {
    /// let cert = Certificate::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
    /// session.set_certificate(CertBinding::any(8443), &cert)?;
    /// let group = session.create_url_group();
    /// group.add_url("https://+:8443/", 1)?;
    /// # Ok(()) }
    /// ```
    pub fn set_certificate(
        &self,
        binding: CertBinding,
        cert: &Certificate,
    ) -> Result<(), ServerError> {
        let h2 = self.inner.site.properties().http2.enable_tls;
        self.inner.site.tls.set(binding, cert, h2)
    }

    /// Removes a certificate binding; false if there was none.
    pub fn remove_certificate(&self, binding: &CertBinding) -> bool {
        self.inner.site.tls.remove(binding)
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
    /// then closes every connection (waiters see `ServerShutdown`). It
    /// sleeps until an answer goes out or a connection ends, and looks again.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop_listening();
        let env = &self.inner.site.env;
        env.draining.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let quiet = env.quiet.notified();
            tokio::pin!(quiet);
            quiet.as_mut().enable();
            let busy = self.inner.connections().iter().any(|c| c.in_flight() > 0);
            if !busy {
                break;
            }
            tokio::select! {
                _ = quiet => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
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
        for w in &self.inner.workers {
            w.stop();
        }
    }
}
