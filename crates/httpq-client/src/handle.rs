//! Handles and the delivery of their notifications: ids and contexts, the
//! parent/child tree, closing (which cancels what is pending), and the
//! ordering rules — HANDLE_CREATED first, HANDLE_CLOSING last, one
//! REQUEST_COMPLETE per pending operation.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use tokio::sync::{mpsc, Notify};

use crate::config::Callback;
use crate::status::{Notification, Payload, Status};
use crate::ClientError;

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// The shared part of a handle: what notifications, close and cancel need.
pub(crate) struct HandleCore {
    pub id: u64,
    pub context: u64,
    notifier: Arc<Notifier>,
    state: Mutex<HandleState>,
    /// Wakes a pending operation when the handle is closed.
    cancel: Notify,
}

#[derive(Default)]
struct HandleState {
    closed: bool,
    op_pending: bool,
    closing_sent: bool,
    children: Vec<Weak<HandleCore>>,
    /// The socket of the connection the handle is using, to shut down
    /// when it is closed. Weak: a connection dropped (or pooled) is not
    /// kept open by it.
    socket: Option<Weak<OwnedFd>>,
}

impl HandleCore {
    /// A new handle under `parent`; delivers HANDLE_CREATED.
    pub(crate) fn new(
        notifier: &Arc<Notifier>,
        parent: Option<&Arc<HandleCore>>,
        context: u64,
    ) -> Result<Arc<HandleCore>, ClientError> {
        let core = Arc::new(HandleCore {
            id: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
            context,
            notifier: notifier.clone(),
            state: Mutex::new(HandleState::default()),
            cancel: Notify::new(),
        });
        if let Some(p) = parent {
            let mut st = p.lock();
            if st.closed {
                return Err(ClientError::InvalidState("parent handle is closed"));
            }
            st.children.retain(|c| c.strong_count() > 0);
            st.children.push(Arc::downgrade(&core));
        }
        core.emit(
            Status::HandleCreated,
            Payload::Parent(parent.map_or(0, |p| p.id)),
        );
        Ok(core)
    }

    fn lock(&self) -> MutexGuard<'_, HandleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Delivers a notification of this handle, unless HANDLE_CLOSING has
    /// already gone out (nothing follows it).
    pub(crate) fn emit(&self, status: Status, payload: Payload) {
        let mut st = self.lock();
        if st.closing_sent {
            return;
        }
        if status == Status::HandleClosing {
            st.closing_sent = true;
        }
        // Lazy: with the level off this is one comparison, nothing formatted.
        tracing::debug!(
            handle = self.id,
            context = self.context,
            n = status.number(),
            name = status.name(),
            payload = ?payload,
            "status notification"
        );
        let n = Notification {
            handle: self.id,
            context: self.context,
            status,
            payload,
            elapsed: self.notifier.started.elapsed(),
        };
        // Queued under the handle's lock, so this handle's notifications
        // keep their order; delivered after it is released.
        self.notifier.push(n);
        drop(st);
        self.notifier.drain();
    }

    /// Starts an operation. Fails if the handle is closed or busy.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<Op, ClientError> {
        let mut st = self.lock();
        if st.closed {
            return Err(ClientError::InvalidState("handle is closed"));
        }
        if st.op_pending {
            return Err(ClientError::InvalidState("an operation is already pending"));
        }
        st.op_pending = true;
        Ok(Op {
            core: self.clone(),
            pending: false,
            done: false,
        })
    }

    /// Resolves when the handle is closed.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// The handle is using a connection with this socket: closing the
    /// handle shuts it down at once.
    pub(crate) fn attach_socket(&self, socket: Option<&Arc<OwnedFd>>) {
        self.lock().socket = socket.map(Arc::downgrade);
    }

    /// The connection is no longer the handle's (back in the pool).
    pub(crate) fn detach_socket(&self) {
        self.lock().socket = None;
    }

    /// Closes the handle and its children: pending operations complete as
    /// cancelled, then HANDLE_CLOSING goes out (at once if nothing is
    /// pending). The connection it uses is shut down at once, whoever owns
    /// the handle and whatever it is doing; its descriptor goes when the
    /// owner lets go of the handle.
    pub(crate) fn close(&self) {
        let (children, idle, socket) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            let socket = st.socket.take().and_then(|s| s.upgrade());
            (std::mem::take(&mut st.children), !st.op_pending, socket)
        };
        for child in children.iter().filter_map(Weak::upgrade) {
            child.close();
        }
        self.cancel.notify_waiters();
        // After the cancel: a pending read woken by the shutdown must find
        // the operation cancelled, not the connection ended.
        if let Some(s) = socket {
            let _ = socket2::SockRef::from(&*s).shutdown(std::net::Shutdown::Both);
        }
        if idle {
            self.emit(Status::HandleClosing, Payload::None);
        }
    }
}

/// A running operation of a handle. It completes exactly once: with
/// [`finish`](Op::finish), or as cancelled when dropped unfinished (the
/// caller dropped the future). A pending operation's end is reported by
/// REQUEST_COMPLETE; if the handle was closed meanwhile, HANDLE_CLOSING follows.
pub(crate) struct Op {
    core: Arc<HandleCore>,
    /// The operation had to wait, so its completion is notified.
    pending: bool,
    done: bool,
}

impl Op {
    /// The operation could not complete at once.
    pub(crate) fn set_pending(&mut self) {
        self.pending = true;
    }

    pub(crate) fn finish<T>(mut self, r: Result<T, ClientError>) -> Result<T, ClientError> {
        let r = if self.core.is_closed() {
            // Closed while pending: the operation is cancelled, even if it
            // got as far as succeeding (say the handle was closed from the
            // callback of its last notification); whatever broke, it broke
            // because the handle was closed.
            r.and(Err(ClientError::Cancelled))
        } else {
            r
        };
        self.end(r.as_ref().map(|_| ()).map_err(Clone::clone));
        self.done = true;
        r
    }

    fn end(&self, result: Result<(), ClientError>) {
        if let Err(e) = &result {
            trace_failure(&self.core, e);
        }
        if self.pending {
            self.core
                .emit(Status::RequestComplete, Payload::Complete(result));
        }
        let closed = {
            let mut st = self.core.lock();
            st.op_pending = false;
            st.closed
        };
        if closed {
            self.core.emit(Status::HandleClosing, Payload::None);
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if !self.done {
            self.pending = true;
            self.end(Err(ClientError::Cancelled));
        }
    }
}

/// One event for an operation that failed, at a level that says who
/// should care: a server breaking the protocol is a warning; a host that
/// cannot be reached or a timeout is the caller's to report (info); a
/// cancellation is what the caller asked for (debug).
fn trace_failure(core: &HandleCore, e: &ClientError) {
    let (handle, context) = (core.id, core.context);
    match e {
        ClientError::Protocol(v) => {
            tracing::warn!(handle, context, violation = %v, "protocol violation")
        }
        ClientError::Timeout(kind) => {
            tracing::info!(handle, context, timeout = kind.name(), "timed out")
        }
        ClientError::CannotResolve { .. } => {
            tracing::info!(handle, context, error = %e, "cannot resolve")
        }
        ClientError::CannotConnect { .. } | ClientError::Proxy(_) => {
            tracing::info!(handle, context, error = %e, "cannot connect")
        }
        ClientError::Tls(_) => tracing::info!(handle, context, error = %e, "TLS failed"),
        ClientError::Cancelled => tracing::debug!(handle, context, "cancelled"),
        _ => tracing::debug!(handle, context, error = %e, "operation failed"),
    }
}

/// Where a session's notifications go — its callback and event streams —
/// and the queue that delivers them in order, outside every lock, so a
/// callback may call back into the API (even close) without deadlock; a
/// notification raised inside a callback is delivered right after it returns.
pub(crate) struct Notifier {
    /// When the session started (notifications carry the time since).
    pub started: Instant,
    pub callback: Mutex<Option<Callback>>,
    pub subscribers: Mutex<Vec<mpsc::UnboundedSender<Notification>>>,
    state: Mutex<DeliveryState>,
}

#[derive(Default)]
struct DeliveryState {
    queue: VecDeque<Notification>,
    draining: bool,
}

impl Notifier {
    pub(crate) fn new(callback: Option<Callback>) -> Notifier {
        Notifier {
            started: Instant::now(),
            callback: Mutex::new(callback),
            subscribers: Mutex::new(Vec::new()),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeliveryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, n: Notification) {
        self.lock().queue.push_back(n);
    }

    fn drain(&self) {
        {
            let mut st = self.lock();
            if st.draining {
                return;
            }
            st.draining = true;
        }
        // Should a callback panic, the next notification still finds the
        // queue free to drain.
        struct Reset<'a>(&'a Notifier);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.lock().draining = false;
                }
            }
        }
        let _reset = Reset(self);
        loop {
            let next = {
                let mut st = self.lock();
                match st.queue.pop_front() {
                    Some(n) => n,
                    None => {
                        st.draining = false;
                        return;
                    }
                }
            };
            self.deliver(&next);
        }
    }

    fn deliver(&self, n: &Notification) {
        let cb = self
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(cb) = cb {
            cb(n);
        }
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if !subs.is_empty() {
            subs.retain(|s| s.send(n.clone()).is_ok());
        }
    }
}
