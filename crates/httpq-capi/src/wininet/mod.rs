//! WinInet (wininet.h) over `httpq-client`: HINTERNET handles in the
//! process-wide table, the status callback with Windows' numbers and
//! payloads, INTERNET_FLAG_ASYNC's ERROR_IO_PENDING and REQUEST_COMPLETE,
//! options and closing. Requests, reads and queries are [`request`].

pub mod query;
pub mod request;

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use httpq_client::{ClientError, ConnectHandle, Notification, Payload, Status, TimeoutKind};

use crate::win32::handles::{self, Kind, Object};
use crate::win32::io::IoTarget;
use crate::win32::{err, fail, narrow_str, set_last_error, wide_str, BOOL, DWORD, HANDLE, TRUE};
use request::ReqState;

pub type HINTERNET = HANDLE;
/// The C status callback.
pub type Callback = extern "C" fn(HINTERNET, usize, DWORD, *mut c_void, DWORD);

/// WinInet's error codes (wininet.h).
pub mod ierr {
    pub const TIMEOUT: u32 = 12002;
    pub const INTERNAL_ERROR: u32 = 12004;
    pub const INVALID_URL: u32 = 12005;
    pub const NAME_NOT_RESOLVED: u32 = 12007;
    pub const INVALID_OPTION: u32 = 12009;
    pub const BAD_OPTION_LENGTH: u32 = 12010;
    pub const OPTION_NOT_SETTABLE: u32 = 12011;
    pub const OPERATION_CANCELLED: u32 = 12017;
    pub const INCORRECT_HANDLE_TYPE: u32 = 12018;
    pub const INCORRECT_HANDLE_STATE: u32 = 12019;
    pub const CANNOT_CONNECT: u32 = 12029;
    pub const CONNECTION_ABORTED: u32 = 12030;
    pub const CONNECTION_RESET: u32 = 12031;
    pub const HEADER_NOT_FOUND: u32 = 12150;
    pub const INVALID_SERVER_RESPONSE: u32 = 12152;
    pub const REDIRECT_FAILED: u32 = 12156;
    pub const SECURE_FAILURE: u32 = 12175;
}

/// A ClientError as the GetLastError code WinInet gives.
pub fn error_code(e: &ClientError) -> u32 {
    match e {
        ClientError::InvalidUrl(_) => ierr::INVALID_URL,
        ClientError::InvalidRequest(_) => err::ERROR_INVALID_PARAMETER,
        ClientError::CannotResolve { .. } => ierr::NAME_NOT_RESOLVED,
        ClientError::CannotConnect { .. } => ierr::CANNOT_CONNECT,
        ClientError::Timeout(TimeoutKind::Resolve) => ierr::NAME_NOT_RESOLVED,
        ClientError::Timeout(_) => ierr::TIMEOUT,
        ClientError::Tls(_) => ierr::SECURE_FAILURE,
        ClientError::Proxy(_) => ierr::CANNOT_CONNECT,
        ClientError::Protocol(_) => ierr::INVALID_SERVER_RESPONSE,
        ClientError::Send(_) => ierr::CONNECTION_ABORTED,
        ClientError::Receive(_) => ierr::CONNECTION_RESET,
        ClientError::TooManyRedirects(_) => ierr::REDIRECT_FAILED,
        ClientError::Cancelled => ierr::OPERATION_CANCELLED,
        ClientError::InvalidState(_) => ierr::INCORRECT_HANDLE_STATE,
        _ => ierr::INTERNAL_ERROR,
    }
}

const STATUS_HANDLE_CREATED: u32 = 60;
const STATUS_HANDLE_CLOSING: u32 = 70;
const STATUS_REQUEST_COMPLETE: u32 = 100;

/// INTERNET_ASYNC_RESULT.
#[repr(C)]
pub struct AsyncResult {
    pub result: usize,
    pub error: u32,
}

/// What InternetOpen made: shared by every handle under it.
pub struct Root {
    pub async_mode: bool,
    agent: String,
    /// The client session, made on first use.
    session: Mutex<Option<httpq_client::Session>>,
    /// The client's handle ids, by the HINTERNET they stand for.
    ids: Mutex<HashMap<u64, usize>>,
}

/// What a HINTERNET refers to.
pub enum InetKind {
    Session,
    /// Stands for a handle being made, while the client reports it.
    Placeholder,
    Connect {
        connect: ConnectHandle,
        host: String,
        port: u16,
    },
    Request(ReqState),
}

/// A HINTERNET's object.
pub struct Inet {
    pub kind: InetKind,
    pub root: Arc<Root>,
    pub me: std::sync::OnceLock<usize>,
    pub context: AtomicU64,
    /// The connect, send and receive timeouts: copied from the parent when
    /// the handle is made, given to its requests when they are made.
    pub timeouts: Mutex<httpq_client::Timeouts>,
    callback: Mutex<Option<(Callback, bool)>>,
    parent: Option<Weak<Inet>>,
    children: Mutex<Vec<usize>>,
    /// The client's ids for this handle (forgotten at HANDLE_CLOSING).
    client_ids: Mutex<Vec<u64>>,
    /// An operation returned ERROR_IO_PENDING and has not completed.
    op_pending: Mutex<bool>,
    /// HANDLE_CLOSING waits for the pending operation's REQUEST_COMPLETE.
    closing_deferred: AtomicBool,
    /// HANDLE_CLOSING has gone out: nothing more is delivered.
    closed: AtomicBool,
}

impl Kind for Inet {
    fn io(&self) -> Option<&Arc<IoTarget>> {
        None
    }

    fn close(&self) {
        close_inet(self);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Inet {
    pub fn handle(&self) -> HINTERNET {
        *self.me.get().unwrap_or(&0) as HINTERNET
    }

    /// Calls the status callback, unless the context is 0, no callback is
    /// set, or HANDLE_CLOSING already went out.
    pub fn notify(&self, status: DWORD, info: *mut c_void, len: DWORD) {
        let ctx = self.context.load(Ordering::Acquire);
        if ctx == 0 || self.closed.load(Ordering::Acquire) {
            return;
        }
        let cb = *self.callback.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cb, _)) = cb {
            cb(self.handle(), ctx as usize, status, info, len);
        }
    }

    fn wide(&self) -> bool {
        self.callback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|(_, w)| w)
    }

    /// A string notification, as char* or WCHAR* by the callback's form.
    fn notify_str(&self, status: DWORD, s: &str) {
        if self.wide() {
            let mut w: Vec<u16> = s.encode_utf16().collect();
            w.push(0);
            self.notify(
                status,
                w.as_mut_ptr() as *mut c_void,
                (w.len() * 2) as DWORD,
            );
        } else {
            let mut b = s.as_bytes().to_vec();
            b.push(0);
            self.notify(status, b.as_mut_ptr() as *mut c_void, b.len() as DWORD);
        }
    }

    fn notify_handle(&self, status: DWORD) {
        // The handle as the first field of an INTERNET_ASYNC_RESULT, so
        // code reading either (*(HINTERNET *)info or res->dwResult) sees it.
        let mut r = AsyncResult {
            result: self.handle() as usize,
            error: 0,
        };
        self.notify(
            status,
            &mut r as *mut AsyncResult as *mut c_void,
            std::mem::size_of::<HINTERNET>() as DWORD,
        );
    }

    /// REQUEST_COMPLETE of an operation that returned ERROR_IO_PENDING,
    /// then a HANDLE_CLOSING that waited for it.
    pub fn complete(&self, result: usize, error: u32) {
        // The operation is over before the callback runs: code that starts
        // the next one from the callback, or from a thread the callback
        // wakes, must find the handle free.
        let deferred = {
            let mut p = self.op_pending.lock().unwrap_or_else(|e| e.into_inner());
            *p = false;
            self.closing_deferred.swap(false, Ordering::AcqRel)
        };
        // Closed while pending: whatever stopped it (even a start refused
        // because the handle had just closed), it was cancelled.
        let (result, error) = if deferred && error != 0 {
            (0, ierr::OPERATION_CANCELLED)
        } else {
            (result, error)
        };
        let mut r = AsyncResult { result, error };
        self.notify(
            STATUS_REQUEST_COMPLETE,
            &mut r as *mut AsyncResult as *mut c_void,
            std::mem::size_of::<AsyncResult>() as DWORD,
        );
        if deferred {
            self.send_closing();
        }
    }

    /// Marks an operation pending (false if one already is).
    pub fn begin_op(&self) -> bool {
        let mut p = self.op_pending.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) || self.closing_deferred.load(Ordering::Acquire) {
            return false;
        }
        !std::mem::replace(&mut *p, true)
    }

    fn send_closing(&self) {
        self.notify_handle(STATUS_HANDLE_CLOSING);
        self.closed.store(true, Ordering::Release);
        let ids = std::mem::take(&mut *self.client_ids.lock().unwrap_or_else(|e| e.into_inner()));
        let mut map = self.root.ids.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            map.remove(&id);
        }
    }

    /// Notifications of the client's handle `id` are this handle's.
    pub fn adopt(&self, id: u64) {
        self.root
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, self.handle() as usize);
        self.client_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
    }
}

thread_local! {
    /// The HINTERNET being created on this thread: the client's
    /// HANDLE_CREATED for it arrives before the create call returns.
    static CREATING: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` (which creates a client handle) with `h` as the handle its
/// HANDLE_CREATED stands for.
pub fn creating<T>(h: HINTERNET, f: impl FnOnce() -> T) -> T {
    CREATING.with(|c| c.set(h as usize));
    let r = f();
    CREATING.with(|c| c.set(0));
    r
}

/// The client's notification for the C callback: the handle translated,
/// the payload given the documented shape. REQUEST_COMPLETE and
/// HANDLE_CLOSING are this layer's own (they follow the C calls, and a
/// read's byte count must be written first); httpq's extra numbers
/// (TLS, first byte, connection reuse) have no WinInet meaning and stay out.
fn bridge(root: &Weak<Root>, n: &Notification) {
    let Some(root) = root.upgrade() else { return };
    let h = {
        let mut ids = root.ids.lock().unwrap_or_else(|e| e.into_inner());
        match ids.get(&n.handle) {
            Some(h) => *h,
            None if n.status == Status::HandleCreated => {
                let h = CREATING.with(Cell::get);
                if h == 0 {
                    return;
                }
                ids.insert(n.handle, h);
                h
            }
            None => return,
        }
    };
    let Some(inet) = inet_of(h as HINTERNET) else {
        return;
    };
    if n.status == Status::HandleCreated {
        inet.client_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(n.handle);
    }
    let number = n.status.number();
    match (&n.status, &n.payload) {
        (Status::HandleCreated, _) => inet.notify_handle(STATUS_HANDLE_CREATED),
        (Status::HandleClosing | Status::RequestComplete, _) => {}
        (Status::ResolvingName, Payload::Host(host)) => inet.notify_str(number, host),
        (
            Status::NameResolved | Status::ConnectingToServer | Status::ConnectedToServer,
            Payload::Address(a),
        ) => inet.notify_str(number, &a.ip().to_string()),
        (
            Status::NameResolved | Status::ConnectingToServer | Status::ConnectedToServer,
            Payload::Host(s),
        ) => inet.notify_str(number, s),
        (Status::RequestSent | Status::ResponseReceived, Payload::Bytes(b)) => {
            let mut d = *b as DWORD;
            inet.notify(number, &mut d as *mut DWORD as *mut c_void, 4);
        }
        (Status::IntermediateResponse, Payload::Status(s)) => {
            let mut d = DWORD::from(*s);
            inet.notify(number, &mut d as *mut DWORD as *mut c_void, 4);
        }
        (Status::Redirect, Payload::Url(u)) => inet.notify_str(number, u),
        (
            Status::SendingRequest
            | Status::ReceivingResponse
            | Status::ClosingConnection
            | Status::ConnectionClosed
            | Status::ResolvingName
            | Status::NameResolved
            | Status::ConnectingToServer
            | Status::ConnectedToServer,
            _,
        ) => inet.notify(number, std::ptr::null_mut(), 0),
        _ => {}
    }
}

impl Root {
    /// The client session, made with the options set so far.
    pub fn session(self: &Arc<Self>) -> Result<httpq_client::Session, u32> {
        let mut s = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = &*s {
            return Ok(s.clone());
        }
        let weak = Arc::downgrade(self);
        let config = httpq_client::Config {
            user_agent: self.agent.clone(),
            callback: Some(Arc::new(move |n: &Notification| bridge(&weak, n))),
            ..httpq_client::Config::default()
        };
        let new = httpq_client::Session::new(config).map_err(|e| error_code(&e))?;
        *s = Some(new.clone());
        Ok(new)
    }
}

/// The object behind a HINTERNET.
pub fn inet_of(h: HINTERNET) -> Option<Arc<Inet>> {
    let k = handles::get_kind::<Inet>(h)?;
    let any: Arc<dyn Any + Send + Sync> = k;
    any.downcast::<Inet>().ok()
}

/// Enters a new handle under `parent`, with its callback inherited.
pub fn new_inet(parent: &Arc<Inet>, kind: InetKind, context: usize) -> Arc<Inet> {
    let cb = *parent.callback.lock().unwrap_or_else(|e| e.into_inner());
    let timeouts = *parent.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    let inet = enter(Inet {
        kind,
        root: parent.root.clone(),
        me: std::sync::OnceLock::new(),
        context: AtomicU64::new(context as u64),
        timeouts: Mutex::new(timeouts),
        callback: Mutex::new(cb),
        parent: Some(Arc::downgrade(parent)),
        children: Mutex::default(),
        client_ids: Mutex::default(),
        op_pending: Mutex::default(),
        closing_deferred: AtomicBool::default(),
        closed: AtomicBool::default(),
    });
    let h = inet.handle();
    parent
        .children
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(h as usize);
    inet
}

/// Closes a handle and, first, its children: the client cancels what is
/// pending (its REQUEST_COMPLETE goes out as cancelled), then
/// HANDLE_CLOSING, after which nothing more is delivered for it.
fn close_inet(inet: &Inet) {
    let children = std::mem::take(&mut *inet.children.lock().unwrap_or_else(|e| e.into_inner()));
    for c in children {
        if let Some(handles::Object::Other(k)) = handles::remove(c as HANDLE) {
            k.close();
        }
    }
    // Decided before the client cancels: an operation that ends from here
    // on sends HANDLE_CLOSING after its REQUEST_COMPLETE (as cancelled).
    let deferred = {
        let p = inet.op_pending.lock().unwrap_or_else(|e| e.into_inner());
        if *p {
            inet.closing_deferred.store(true, Ordering::Release);
        }
        *p
    };
    match &inet.kind {
        InetKind::Session => {
            // Taken out first: closing delivers notifications, and a
            // callback may call back into functions that take this lock.
            let session = inet
                .root
                .session
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(s) = session {
                s.close();
            }
        }
        InetKind::Placeholder => {}
        InetKind::Connect { connect, .. } => connect.closer().close(),
        InetKind::Request(r) => r.close(),
    }
    if !deferred {
        inet.send_closing();
    }
}

fn open(agent: Option<String>, flags: DWORD) -> HINTERNET {
    const INTERNET_FLAG_ASYNC: DWORD = 0x1000_0000;
    let root = Arc::new(Root {
        async_mode: flags & INTERNET_FLAG_ASYNC != 0,
        agent: agent.unwrap_or_else(|| "httpq-capi".into()),
        session: Mutex::new(None),
        ids: Mutex::new(HashMap::new()),
    });
    let inet = enter(Inet {
        kind: InetKind::Session,
        root,
        me: std::sync::OnceLock::new(),
        context: AtomicU64::new(0),
        timeouts: Mutex::default(),
        callback: Mutex::new(None),
        parent: None,
        children: Mutex::default(),
        client_ids: Mutex::default(),
        op_pending: Mutex::default(),
        closing_deferred: AtomicBool::default(),
        closed: AtomicBool::default(),
    });
    set_last_error(0);
    inet.handle()
}

/// Enters a handle's object in the table; it learns its handle.
fn enter(inet: Inet) -> Arc<Inet> {
    let inet = Arc::new(inet);
    let h = handles::insert(Object::Other(inet.clone()));
    let _ = inet.me.set(h as usize);
    inet
}

#[no_mangle]
pub unsafe extern "C" fn InternetOpenA(
    agent: *const std::ffi::c_char,
    _access: DWORD,
    _proxy: *const std::ffi::c_char,
    _bypass: *const std::ffi::c_char,
    flags: DWORD,
) -> HINTERNET {
    // SAFETY: NULL or a NUL-terminated string by contract.
    open(unsafe { narrow_str(agent) }, flags)
}

#[no_mangle]
pub unsafe extern "C" fn InternetOpenW(
    agent: *const u16,
    _access: DWORD,
    _proxy: *const u16,
    _bypass: *const u16,
    flags: DWORD,
) -> HINTERNET {
    // SAFETY: NULL or a NUL-terminated UTF-16 string by contract.
    open(unsafe { wide_str(agent) }, flags)
}

const INVALID_CALLBACK: usize = usize::MAX;

fn set_callback(h: HINTERNET, cb: Option<Callback>, wide: bool) -> usize {
    let Some(inet) = inet_of(h) else {
        set_last_error(err::ERROR_INVALID_HANDLE);
        return INVALID_CALLBACK;
    };
    let old = std::mem::replace(
        &mut *inet.callback.lock().unwrap_or_else(|e| e.into_inner()),
        cb.map(|c| (c, wide)),
    );
    old.map_or(0, |(c, _)| c as usize)
}

#[no_mangle]
pub extern "C" fn InternetSetStatusCallbackA(h: HINTERNET, cb: Option<Callback>) -> usize {
    set_callback(h, cb, false)
}

#[no_mangle]
pub extern "C" fn InternetSetStatusCallbackW(h: HINTERNET, cb: Option<Callback>) -> usize {
    set_callback(h, cb, true)
}

#[no_mangle]
pub extern "C" fn InternetCloseHandle(h: HINTERNET) -> BOOL {
    if inet_of(h).is_none() {
        return fail(err::ERROR_INVALID_HANDLE);
    }
    if let Some(Object::Other(k)) = handles::remove(h) {
        k.close();
    }
    TRUE
}

const OPTION_CONNECT_TIMEOUT: DWORD = 2;
const OPTION_SEND_TIMEOUT: DWORD = 5;
const OPTION_RECEIVE_TIMEOUT: DWORD = 6;
const OPTION_DATA_SEND_TIMEOUT: DWORD = 7;
const OPTION_DATA_RECEIVE_TIMEOUT: DWORD = 8;
const OPTION_HANDLE_TYPE: DWORD = 9;
const OPTION_PARENT_HANDLE: DWORD = 21;
const OPTION_URL: DWORD = 34;
const OPTION_CONTEXT_VALUE: DWORD = 45;

unsafe fn set_option(h: HINTERNET, option: DWORD, buf: *const c_void, len: DWORD) -> BOOL {
    let Some(inet) = inet_of(h) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    if buf.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    match option {
        OPTION_CONTEXT_VALUE => {
            if (len as usize) < std::mem::size_of::<usize>() {
                return fail(ierr::BAD_OPTION_LENGTH);
            }
            // SAFETY: a DWORD_PTR of the caller's.
            let v = unsafe { *(buf as *const usize) };
            inet.context.store(v as u64, Ordering::Release);
            TRUE
        }
        OPTION_CONNECT_TIMEOUT
        | OPTION_SEND_TIMEOUT
        | OPTION_RECEIVE_TIMEOUT
        | OPTION_DATA_SEND_TIMEOUT
        | OPTION_DATA_RECEIVE_TIMEOUT => {
            if len < 4 {
                return fail(ierr::BAD_OPTION_LENGTH);
            }
            // SAFETY: a DWORD of the caller's.
            let ms = unsafe { *(buf as *const DWORD) };
            let d = (ms != 0 && ms != u32::MAX).then(|| Duration::from_millis(u64::from(ms)));
            let mut t = inet.timeouts.lock().unwrap_or_else(|e| e.into_inner());
            match option {
                OPTION_CONNECT_TIMEOUT => t.connect = d,
                OPTION_SEND_TIMEOUT | OPTION_DATA_SEND_TIMEOUT => t.send = d,
                _ => t.receive = d,
            }
            // A request applies them at its next operation; handles made
            // later under this one copy them.
            TRUE
        }
        _ => fail(ierr::INVALID_OPTION),
    }
}

#[no_mangle]
pub unsafe extern "C" fn InternetSetOptionA(
    h: HINTERNET,
    o: DWORD,
    b: *const c_void,
    l: DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { set_option(h, o, b, l) }
}

#[no_mangle]
pub unsafe extern "C" fn InternetSetOptionW(
    h: HINTERNET,
    o: DWORD,
    b: *const c_void,
    l: DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { set_option(h, o, b, l) }
}

/// Copies a fixed-size value out, with WinInet's length protocol.
unsafe fn put_value<T: Copy>(v: T, buf: *mut c_void, len: *mut DWORD) -> BOOL {
    let need = std::mem::size_of::<T>() as DWORD;
    // SAFETY: lpdwBufferLength is non-NULL (checked by the caller).
    let have = unsafe { *len };
    // SAFETY: as above.
    unsafe { *len = need };
    if buf.is_null() || have < need {
        return fail(err::ERROR_INSUFFICIENT_BUFFER);
    }
    // SAFETY: the caller's buffer of at least `need` bytes.
    unsafe { std::ptr::write_unaligned(buf as *mut T, v) };
    TRUE
}

unsafe fn query_option(
    h: HINTERNET,
    option: DWORD,
    buf: *mut c_void,
    len: *mut DWORD,
    wide: bool,
) -> BOOL {
    let Some(inet) = inet_of(h) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    if len.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as DWORD);
    let t = *inet.timeouts.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY (each arm): forwarded out-pointers of the caller's.
    unsafe {
        match option {
            OPTION_CONTEXT_VALUE => {
                put_value(inet.context.load(Ordering::Acquire) as usize, buf, len)
            }
            OPTION_CONNECT_TIMEOUT => put_value(ms(t.connect), buf, len),
            OPTION_SEND_TIMEOUT | OPTION_DATA_SEND_TIMEOUT => put_value(ms(t.send), buf, len),
            OPTION_RECEIVE_TIMEOUT | OPTION_DATA_RECEIVE_TIMEOUT => {
                put_value(ms(t.receive), buf, len)
            }
            OPTION_HANDLE_TYPE => put_value::<DWORD>(
                match inet.kind {
                    InetKind::Session | InetKind::Placeholder => 1,
                    InetKind::Connect { .. } => 3,
                    InetKind::Request(_) => 13,
                },
                buf,
                len,
            ),
            OPTION_PARENT_HANDLE => put_value(
                inet.parent
                    .as_ref()
                    .and_then(Weak::upgrade)
                    .map_or(0, |p| p.handle() as usize),
                buf,
                len,
            ),
            OPTION_URL => match &inet.kind {
                InetKind::Request(r) => query::put_string(&r.url(), buf, len, wide),
                _ => fail(ierr::INCORRECT_HANDLE_TYPE),
            },
            _ => fail(ierr::INVALID_OPTION),
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn InternetQueryOptionA(
    h: HINTERNET,
    o: DWORD,
    b: *mut c_void,
    l: *mut DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { query_option(h, o, b, l, false) }
}

#[no_mangle]
pub unsafe extern "C" fn InternetQueryOptionW(
    h: HINTERNET,
    o: DWORD,
    b: *mut c_void,
    l: *mut DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { query_option(h, o, b, l, true) }
}
