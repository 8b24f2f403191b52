//! Workers: each a thread with its own current-thread runtime, its own
//! listening socket on every address (`SO_REUSEPORT`: the kernel spreads
//! connections over them), and its own share of every request queue. A
//! connection lives on the worker that accepted it, so its driver, its
//! requests' share and, for consumers spawned on that worker, the
//! application meet on one thread: no cross-thread wake-up on the common path.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use httpq_proto::server_conn::ServerConn;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Semaphore};

use crate::conn::Conn;
use crate::counters::Counters;
use crate::disconnect::TimeoutKind;
use crate::driver;
use crate::http2;
use crate::registry;
use crate::request_queue::{set_home, share_here};
use crate::site::Site;
use crate::tls::{self, TlsInfo};

/// One worker.
pub(crate) struct Worker {
    pub index: usize,
    pub handle: Handle,
    pub counters: Arc<Counters>,
    /// Its thread and the signal that stops it; `None` for a runtime the
    /// application gave (`ServerSession::with_runtime`).
    own: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Worker {
    /// Starts `n` worker threads named after `name`.
    pub(crate) fn start(n: usize, name: &str) -> io::Result<Vec<Worker>> {
        let mut workers = Vec::with_capacity(n);
        for index in 0..n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    set_home(index);
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                    // Dropping the runtime drops its tasks: connections still
                    // open end as ServerShutdown (see the driver's Drop).
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| io::Error::other("worker thread ended at start"))??;
            workers.push(Worker {
                index,
                handle,
                counters: Arc::default(),
                own: Mutex::new(Some((stop_tx, thread))),
            });
        }
        Ok(workers)
    }

    /// A single worker on a runtime the application owns.
    pub(crate) fn on(handle: Handle) -> Worker {
        Worker {
            index: 0,
            handle,
            counters: Arc::default(),
            own: Mutex::new(None),
        }
    }

    /// Stops the worker's thread (its connections end) and waits for it,
    /// unless called from that very thread.
    pub(crate) fn stop(&self) {
        let own = self.own.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((stop, thread)) = own {
            let _ = stop.send(());
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// One address listened on: a socket and an accept task per worker.
/// Sockets sit in slots their tasks borrow only while polling, so
/// [`close`](Self::close) closes them at once: a task abort alone drops
/// the socket later, on its runtime, and until then the address cannot be
/// bound again.
pub(crate) struct Listener {
    pub addr: SocketAddr,
    /// Connections on it start with a TLS handshake (https prefixes).
    pub tls: bool,
    sockets: Vec<(Slot, tokio::task::JoinHandle<()>)>,
}

/// A listening socket its accept task borrows while polling.
type Slot = Arc<Mutex<Option<TcpListener>>>;

impl Listener {
    /// Binds `addr` once per worker and starts accepting. `probe`: the
    /// session holds nothing on this port yet, so first make sure nobody
    /// else does.
    pub(crate) fn open(
        addr: SocketAddr,
        workers: &[Worker],
        site: &Arc<Site>,
        limit: &Arc<Semaphore>,
        probe: bool,
        tls: bool,
    ) -> io::Result<Listener> {
        // SO_REUSEPORT would let a socket of another process of the same
        // user (another httpq, say) share the port unnoticed: a socket
        // without it, bound first, fails if anyone holds the port. (Not
        // when the session itself does: its own sockets would trip it.)
        let mut at = addr;
        if probe {
            let p = bind(addr, false)?;
            at = p.local_addr()?.as_socket().unwrap_or(addr);
        }
        let mut bound = Vec::with_capacity(workers.len());
        for _ in workers {
            bound.push(bind(at, true)?);
        }
        let sockets = workers
            .iter()
            .zip(bound)
            .map(|(w, s)| {
                let listener = {
                    let _rt = w.handle.enter();
                    TcpListener::from_std(s.into())
                }?;
                let slot = Arc::new(Mutex::new(Some(listener)));
                let task = w.handle.spawn(accept_loop(
                    slot.clone(),
                    at,
                    site.clone(),
                    w.counters.clone(),
                    limit.clone(),
                    tls,
                ));
                Ok((slot, task))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Listener {
            addr: at,
            tls,
            sockets,
        })
    }

    pub(crate) fn close(self) {
        for (slot, task) in self.sockets {
            drop(slot.lock().unwrap_or_else(|e| e.into_inner()).take());
            task.abort();
        }
    }
}

/// A socket bound to `addr`; listening unless it is a probe.
fn bind(addr: SocketAddr, listen: bool) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(listen)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    if listen {
        socket.listen(1024)?;
    }
    Ok(socket)
}

async fn accept_loop(
    listener: Slot,
    addr: SocketAddr,
    site: Arc<Site>,
    counters: Arc<Counters>,
    limit: Arc<Semaphore>,
    tls: bool,
) {
    let share = share_here();
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
        // waits in accept, and a permit held by an idle one would be
        // missing from the others. At the limit, this connection waits
        // here, unserved, until another one ends.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (keepalive, unsent) = {
            let p = site.props.read().unwrap_or_else(|e| e.into_inner());
            (p.tcp_keepalive, p.max_unsent_bytes)
        };
        if let Some(bytes) = unsent {
            set_notsent_lowat(&stream, bytes);
        }
        if let Some(k) = keepalive {
            let ka = socket2::TcpKeepalive::new()
                .with_time(k.idle)
                .with_interval(k.interval)
                .with_retries(k.retries);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
        }
        let local = stream.local_addr().unwrap_or(addr);
        Counters::inc(&counters.connections_accepted);
        Counters::inc(&counters.connections_open);
        if tls {
            tokio::spawn(accept_tls(
                stream,
                remote,
                local,
                site.clone(),
                counters.clone(),
                share,
                permit,
            ));
            continue;
        }
        let conn = new_conn(&site, &counters, remote, local, None);
        tokio::spawn(driver::run(stream, conn, site.clone(), share, permit));
    }
}

/// A connection's shared state, registered under a new id.
fn new_conn(
    site: &Site,
    counters: &Arc<Counters>,
    remote: SocketAddr,
    local: SocketAddr,
    tls: Option<TlsInfo>,
) -> Arc<Conn> {
    let mut engine = ServerConn::new(site.conn_config(), Instant::now());
    // The last sequence number a request id can carry: a later one
    // would spill into the connection bits and name another
    // connection's request.
    engine.set_last_seq(registry::MAX_SEQ);
    let conn = Arc::new(Conn::new(
        registry::next_connection_id(),
        remote,
        local,
        site.env.clone(),
        counters.clone(),
        engine,
        tls,
    ));
    registry::insert(conn.clone());
    conn
}

/// A TLS connection: the handshake, within the HeaderWait timeout, then
/// HTTP/2 or HTTP/1.1 as ALPN agreed. A failed handshake is counted and
/// logged, and costs nothing else.
async fn accept_tls(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    site: Arc<Site>,
    counters: Arc<Counters>,
    share: usize,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let wait = site.conn_config().timeouts.header_wait;
    let (tls_stream, info) =
        match tokio::time::timeout(wait, tls::handshake(&site.tls, stream, local)).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                Counters::inc(&counters.tls_handshake_failures);
                Counters::dec(&counters.connections_open);
                tracing::debug!(peer = %remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                Counters::inc(&counters.tls_handshake_failures);
                counters.timed_out(TimeoutKind::HeaderWait, 0);
                Counters::dec(&counters.connections_open);
                tracing::debug!(peer = %remote, "TLS handshake timed out (HeaderWait)");
                return;
            }
        };
    Counters::inc(&counters.tls_handshakes);
    let h2 = info.alpn.as_deref() == Some("h2");
    let conn = new_conn(&site, &counters, remote, local, Some(info));
    if h2 {
        http2::serve(tls_stream, bytes::Bytes::new(), conn, site, share, permit).await;
        return;
    }
    let (tcp, session) = tls_stream.into_inner();
    conn.lock().tls = Some(Box::new(session));
    driver::run(tcp, conn, site, share, permit).await;
}

/// Bounds the bytes the kernel holds unsent on `stream` (`TCP_NOTSENT_LOWAT`):
/// writes (and `sendfile`) stop at the bound and the socket reports writable
/// again only below it. Best effort: a kernel without it keeps its default.
fn set_notsent_lowat(stream: &tokio::net::TcpStream, bytes: u32) {
    use std::os::fd::AsRawFd;
    let value = bytes as libc::c_int;
    // SAFETY: the descriptor is open (borrowed from `stream` for the call),
    // and the option value is a c_int that lives across the call, with its
    // exact size passed as the length.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    /// The bound reaches the socket: the kernel reports it back.
    #[tokio::test]
    async fn the_unsent_bound_is_set_on_the_socket() {
        use std::os::fd::AsRawFd;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        super::set_notsent_lowat(&client, 128 * 1024);
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the descriptor is open for the call; value and len are
        // live locals of the sizes passed.
        let rc = unsafe {
            libc::getsockopt(
                client.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(value, 128 * 1024);
    }
}
