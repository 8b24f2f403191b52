//! Completion ports and OVERLAPPED completion, in Windows' order: Internal
//! and InternalHigh are written, then the event is set, then a packet goes
//! to the port the handle is associated with.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::Instant;

use super::handles::{self, Object};
use super::sync::{event_of, timeout_of};
use super::{err, fail, set_last_error, BOOL, DWORD, HANDLE, INVALID_HANDLE_VALUE, TRUE};

/// The OVERLAPPED layout of the Windows SDK.
#[repr(C)]
pub struct OVERLAPPED {
    pub internal: usize,
    pub internal_high: usize,
    pub offset: u32,
    pub offset_high: u32,
    pub h_event: HANDLE,
}

/// `Internal` while an operation is pending (what HasOverlappedIoCompleted tests).
pub const STATUS_PENDING: usize = 0x103;

/// A Win32 error as the NTSTATUS Windows leaves in `Internal`.
pub fn ntstatus_of(error: DWORD) -> usize {
    match error {
        0 => 0,
        err::ERROR_MORE_DATA => 0x8000_0005, // STATUS_BUFFER_OVERFLOW
        err::ERROR_HANDLE_EOF => 0xC000_0011, // STATUS_END_OF_FILE
        err::ERROR_OPERATION_ABORTED => 0xC000_0120, // STATUS_CANCELLED
        e => 0xC007_0000 | (e as usize & 0xFFFF), // NTSTATUS_FROM_WIN32
    }
}

/// The Win32 error an `Internal` NTSTATUS stands for.
pub fn error_of(status: usize) -> DWORD {
    match status {
        0 => 0,
        0x8000_0005 => err::ERROR_MORE_DATA,
        0xC000_0011 => err::ERROR_HANDLE_EOF,
        0xC000_0120 => err::ERROR_OPERATION_ABORTED,
        s => (s & 0xFFFF) as DWORD,
    }
}

/// Runs `f` to completion for a blocking C call. From a thread already in
/// a runtime (a status callback calling back into the library) tokio's
/// own block_on would panic, so the future runs as a task and this thread
/// waits for it.
pub fn block<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime().block_on(f);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("the task sends its result")
}

/// The runtime that carries this library's overlapped operations.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("httpq-capi-io")
            .enable_all()
            .build()
            .expect("the C API's I/O runtime")
    });
    &RT
}

struct Packet {
    bytes: DWORD,
    key: usize,
    overlapped: usize,
    error: DWORD,
}

/// An I/O completion port.
#[derive(Default)]
pub struct Port {
    packets: Mutex<Packets>,
    cv: Condvar,
}

#[derive(Default)]
struct Packets {
    queue: VecDeque<Packet>,
    /// CloseHandle ran: waiters return ERROR_ABANDONED_WAIT_0.
    closed: bool,
}

impl Port {
    fn post(&self, p: Packet) {
        self.packets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .push_back(p);
        self.cv.notify_one();
    }

    /// CloseHandle on the port: waiters wake and fail.
    pub fn close(&self) {
        self.packets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.cv.notify_all();
    }
}

/// Signalled on every completion, for GetOverlappedResult without an event.
static COMPLETED: LazyLock<(Mutex<u64>, Condvar)> = LazyLock::new(Default::default);

/// One started operation: its OVERLAPPED and an id of its own, so a stale
/// completion never lands on a later operation that reuses the OVERLAPPED.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    ov: usize,
    id: u64,
}

/// A pending operation: its id, and the signal that cancels its task.
struct Pending {
    id: u64,
    cancel: Option<Arc<tokio::sync::Notify>>,
}

static NEXT_OP: AtomicU64 = AtomicU64::new(1);

/// The overlapped-operation state of a handle: its completion port (or
/// thread-pool callback) and its pending operations (for CancelIo, and
/// for completing each exactly once).
#[derive(Default)]
pub struct IoTarget {
    port: Mutex<Option<(Arc<Port>, usize)>>,
    /// CreateThreadpoolIo's callback, which completions go to instead of a port.
    pool: Mutex<Option<Arc<PoolIo>>>,
    pending: Mutex<HashMap<usize, Pending>>,
}

impl IoTarget {
    /// An operation starts on `ov`: Internal = STATUS_PENDING, the event reset.
    ///
    /// # Safety
    /// `ov` points to an OVERLAPPED that stays valid until the operation completes.
    pub unsafe fn begin(&self, ov: *mut OVERLAPPED) -> Op {
        // SAFETY: the caller's OVERLAPPED, valid for the operation.
        unsafe {
            (*ov).internal_high = 0;
            AtomicUsize::from_ptr(&mut (*ov).internal).store(STATUS_PENDING, Ordering::Release);
            if let Some(e) = event_of((*ov).h_event) {
                e.reset();
            }
        }
        let op = Op {
            ov: ov as usize,
            id: NEXT_OP.fetch_add(1, Ordering::Relaxed),
        };
        self.lock_pending().insert(
            op.ov,
            Pending {
                id: op.id,
                cancel: None,
            },
        );
        op
    }

    /// Runs `work` on the library's runtime; its output completes `op`.
    /// CancelIo(Ex) and closing the handle stop it at its next await (it
    /// then completes with ERROR_OPERATION_ABORTED): the task itself
    /// completes, so nothing writes the caller's memory after that.
    pub fn spawn<F>(self: &Arc<Self>, op: Op, work: F)
    where
        F: std::future::Future<Output = (DWORD, usize)> + Send + 'static,
    {
        let cancel = Arc::new(tokio::sync::Notify::new());
        match self.lock_pending().get_mut(&op.ov) {
            Some(p) if p.id == op.id => p.cancel = Some(cancel.clone()),
            _ => return, // completed or cancelled already
        }
        let me = self.clone();
        runtime().spawn(async move {
            let (error, bytes) = tokio::select! {
                // Work that is done wins over a cancel that came with it.
                biased;
                r = work => r,
                _ = cancel.notified() => (err::ERROR_OPERATION_ABORTED, 0),
            };
            // SAFETY: begun by the caller, valid until this completion.
            unsafe { me.complete(op, error, bytes) };
        });
    }

    /// Completes `op` with `error` and `bytes`, unless it already
    /// completed; returns whether this call completed it.
    ///
    /// # Safety
    /// `op` came from [`begin`](Self::begin) and its OVERLAPPED is still valid.
    pub unsafe fn complete(&self, op: Op, error: DWORD, bytes: usize) -> bool {
        {
            let mut pending = self.lock_pending();
            match pending.get(&op.ov) {
                Some(p) if p.id == op.id => {
                    pending.remove(&op.ov);
                }
                _ => return false,
            }
        }
        let ov = op.ov as *mut OVERLAPPED;
        // SAFETY: the OVERLAPPED stays valid until its operation completes,
        // which is now; nothing else writes it (the pending entry was ours).
        let event = unsafe {
            (*ov).internal_high = bytes;
            AtomicUsize::from_ptr(&mut (*ov).internal).store(ntstatus_of(error), Ordering::Release);
            (*ov).h_event
        };
        if let Some(e) = event_of(event) {
            e.set();
        }
        {
            let (lock, cv) = &*COMPLETED;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            cv.notify_all();
        }
        // An event handle with its low bit set asks for no packet.
        if event as usize & 1 == 0 {
            let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(pool) = pool {
                pool.call(op.ov, error, bytes);
                return true;
            }
            let port = self.port.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some((port, key)) = port {
                port.post(Packet {
                    bytes: bytes as DWORD,
                    key,
                    overlapped: op.ov,
                    error,
                });
            }
        }
        true
    }

    /// Cancels the operation on `ov`, or every pending one: each stops and
    /// completes with ERROR_OPERATION_ABORTED. Returns how many were asked.
    pub fn cancel(&self, ov: Option<*mut OVERLAPPED>) -> usize {
        let pending = self.lock_pending();
        let signal = |p: &Pending| p.cancel.as_ref().map(|c| c.notify_one()).is_some();
        match ov {
            Some(ov) => pending
                .get(&(ov as usize))
                .map_or(0, |p| usize::from(signal(p))),
            None => pending.values().filter(|p| signal(p)).count(),
        }
    }

    /// The handle closes: what is pending ends as cancelled.
    pub fn cancel_all(&self) {
        self.cancel(None);
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn associate(&self, port: Arc<Port>, key: usize) {
        *self.port.lock().unwrap_or_else(|e| e.into_inner()) = Some((port, key));
    }
}

#[no_mangle]
pub extern "C" fn CreateIoCompletionPort(
    file: HANDLE,
    existing: HANDLE,
    key: usize,
    _threads: DWORD,
) -> HANDLE {
    let (port, handle) = if existing.is_null() {
        let port = Arc::new(Port::default());
        (port.clone(), handles::insert(Object::Port(port)))
    } else {
        match handles::get(existing) {
            Some(Object::Port(p)) => (p, existing),
            _ => {
                fail(err::ERROR_INVALID_PARAMETER);
                return std::ptr::null_mut();
            }
        }
    };
    if file != INVALID_HANDLE_VALUE && !file.is_null() {
        let Some(target) = handles::get(file) else {
            fail(err::ERROR_INVALID_HANDLE);
            return std::ptr::null_mut();
        };
        match target.io() {
            Some(io) => io.associate(port, key),
            None => {
                fail(err::ERROR_INVALID_PARAMETER);
                return std::ptr::null_mut();
            }
        }
    }
    handle
}

#[no_mangle]
pub unsafe extern "C" fn GetQueuedCompletionStatus(
    port: HANDLE,
    bytes: *mut DWORD,
    key: *mut usize,
    overlapped: *mut *mut OVERLAPPED,
    ms: DWORD,
) -> BOOL {
    let Some(Object::Port(port)) = handles::get(port) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    if bytes.is_null() || key.is_null() || overlapped.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let deadline = timeout_of(ms).map(|t| Instant::now() + t);
    let mut q = port.packets.lock().unwrap_or_else(|e| e.into_inner());
    let packet = loop {
        if q.closed {
            // SAFETY: checked non-NULL above.
            unsafe { *overlapped = std::ptr::null_mut() };
            return fail(err::ERROR_ABANDONED_WAIT_0);
        }
        if let Some(p) = q.queue.pop_front() {
            break p;
        }
        let now = Instant::now();
        match deadline {
            Some(d) if now >= d => {
                // SAFETY: checked non-NULL above.
                unsafe { *overlapped = std::ptr::null_mut() };
                return fail(err::WAIT_TIMEOUT);
            }
            Some(d) => {
                q = port
                    .cv
                    .wait_timeout(q, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => q = port.cv.wait(q).unwrap_or_else(|e| e.into_inner()),
        }
    };
    // SAFETY: the three out-pointers were checked non-NULL.
    unsafe {
        *bytes = packet.bytes;
        *key = packet.key;
        *overlapped = packet.overlapped as *mut OVERLAPPED;
    }
    match packet.error {
        0 => {
            set_last_error(0);
            TRUE
        }
        e => fail(e),
    }
}

#[no_mangle]
pub extern "C" fn PostQueuedCompletionStatus(
    port: HANDLE,
    bytes: DWORD,
    key: usize,
    overlapped: *mut OVERLAPPED,
) -> BOOL {
    let Some(Object::Port(port)) = handles::get(port) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    port.post(Packet {
        bytes,
        key,
        overlapped: overlapped as usize,
        error: 0,
    });
    TRUE
}

#[no_mangle]
pub unsafe extern "C" fn GetOverlappedResult(
    _handle: HANDLE,
    ov: *mut OVERLAPPED,
    bytes: *mut DWORD,
    wait: BOOL,
) -> BOOL {
    if ov.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the caller's OVERLAPPED; Internal is read atomically because
    // a completing thread may write it.
    let status = || unsafe { AtomicUsize::from_ptr(&mut (*ov).internal).load(Ordering::Acquire) };
    if status() == STATUS_PENDING {
        if wait == 0 {
            return fail(err::ERROR_IO_INCOMPLETE);
        }
        // SAFETY: as above.
        let event = event_of(unsafe { (*ov).h_event });
        match event {
            Some(e) => {
                while status() == STATUS_PENDING {
                    e.wait(None);
                }
            }
            None => {
                let (lock, cv) = &*COMPLETED;
                let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                while status() == STATUS_PENDING {
                    g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
    if !bytes.is_null() {
        // SAFETY: non-NULL out-pointer; InternalHigh was written before Internal.
        unsafe { *bytes = (*ov).internal_high as DWORD };
    }
    match error_of(status()) {
        0 => TRUE,
        e => fail(e),
    }
}

fn cancel(h: HANDLE, ov: Option<*mut OVERLAPPED>) -> BOOL {
    let Some(obj) = handles::get(h) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    let n = obj.io().map_or(0, |io| io.cancel(ov));
    if n == 0 {
        return fail(err::ERROR_NOT_FOUND);
    }
    TRUE
}

#[no_mangle]
pub extern "C" fn CancelIo(h: HANDLE) -> BOOL {
    cancel(h, None)
}

#[no_mangle]
pub extern "C" fn CancelIoEx(h: HANDLE, ov: *mut OVERLAPPED) -> BOOL {
    cancel(h, (!ov.is_null()).then_some(ov))
}

/// A thread-pool I/O object (CreateThreadpoolIo): each completion of the
/// handle's operations runs its callback on a pool thread.
pub struct PoolIo {
    callback: PoolCallback,
    context: usize,
    /// Callbacks queued or running, for WaitForThreadpoolIoCallbacks.
    running: Mutex<usize>,
    idle: Condvar,
    target: std::sync::Weak<IoTarget>,
}

type PoolCallback =
    extern "C" fn(*mut std::ffi::c_void, usize, *mut OVERLAPPED, u32, usize, *const PoolIo);

impl PoolIo {
    fn call(self: &Arc<Self>, ov: usize, error: DWORD, bytes: usize) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let me = self.clone();
        runtime().spawn_blocking(move || {
            (me.callback)(
                std::ptr::null_mut(),
                me.context,
                ov as *mut OVERLAPPED,
                error,
                bytes,
                Arc::as_ptr(&me),
            );
            let mut n = me.running.lock().unwrap_or_else(|e| e.into_inner());
            *n -= 1;
            if *n == 0 {
                me.idle.notify_all();
            }
        });
    }
}

#[no_mangle]
pub extern "C" fn CreateThreadpoolIo(
    handle: HANDLE,
    callback: Option<PoolCallback>,
    context: usize,
    _env: *mut std::ffi::c_void,
) -> *const PoolIo {
    let (Some(callback), Some(obj)) = (callback, handles::get(handle)) else {
        fail(err::ERROR_INVALID_PARAMETER);
        return std::ptr::null();
    };
    let Some(target) = obj.io_arc() else {
        fail(err::ERROR_INVALID_PARAMETER);
        return std::ptr::null();
    };
    let pool = Arc::new(PoolIo {
        callback,
        context,
        running: Mutex::new(0),
        idle: Condvar::new(),
        target: Arc::downgrade(&target),
    });
    *target.pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(pool.clone());
    // The caller's reference, given back by CloseThreadpoolIo.
    Arc::into_raw(pool)
}

/// Called before each operation on the handle; completions are delivered
/// whether or not it was, so there is nothing to count.
#[no_mangle]
pub extern "C" fn StartThreadpoolIo(_pio: *const PoolIo) {}

/// Called when an operation failed at once (no completion will come).
#[no_mangle]
pub extern "C" fn CancelThreadpoolIo(_pio: *const PoolIo) {}

#[no_mangle]
pub unsafe extern "C" fn WaitForThreadpoolIoCallbacks(pio: *const PoolIo, _cancel_pending: BOOL) {
    if pio.is_null() {
        return;
    }
    // SAFETY: a PTP_IO from CreateThreadpoolIo, not yet closed.
    let pool = unsafe { &*pio };
    let mut n = pool.running.lock().unwrap_or_else(|e| e.into_inner());
    while *n > 0 {
        n = pool.idle.wait(n).unwrap_or_else(|e| e.into_inner());
    }
}

#[no_mangle]
pub unsafe extern "C" fn CloseThreadpoolIo(pio: *const PoolIo) {
    if pio.is_null() {
        return;
    }
    // SAFETY: the reference CreateThreadpoolIo gave out, given back once.
    let pool = unsafe { Arc::from_raw(pio) };
    if let Some(target) = pool.target.upgrade() {
        let mut slot = target.pool.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|p| Arc::ptr_eq(p, &pool)) {
            *slot = None;
        }
    }
}
