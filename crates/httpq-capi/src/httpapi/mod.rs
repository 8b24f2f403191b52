//! The HTTP Server API (http.h) over `httpq-server`: server sessions, URL
//! groups and request queues by their Win32 ids and handles, properties,
//! and the error codes http.sys returns.
//!
//! Receiving (filling HTTP_REQUEST) is [`receive`]; sending (HTTP_RESPONSE
//! and data chunks) is [`send`]; disconnect waits, cancel and shutdown are
//! [`disconnect`].

pub mod disconnect;
pub mod receive;
pub mod send;
pub mod types;

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use httpq_server::{
    OverflowPolicy, Properties, Request, RequestQueue, ServerError, ServerSession, Timeouts,
    UrlGroup,
};

use crate::win32::handles::{self, IdMap, Kind, Object};
use crate::win32::io::IoTarget;
use crate::win32::{err, wide_str, HANDLE};
use types::*;

type ULONG = u32;

/// A ServerError as the Win32 error http.sys returns for it.
pub fn error_code(e: &ServerError) -> ULONG {
    match e {
        ServerError::InvalidPrefix { .. }
        | ServerError::InvalidResponse(_)
        | ServerError::InvalidProperty(_)
        | ServerError::UnknownId(_)
        | ServerError::NotBound => err::ERROR_INVALID_PARAMETER,
        ServerError::DuplicatePrefix(_) => err::ERROR_ALREADY_EXISTS,
        ServerError::PrefixNotFound(_) => err::ERROR_FILE_NOT_FOUND,
        ServerError::Listen { .. } => err::ERROR_SHARING_VIOLATION,
        ServerError::Aborted => err::ERROR_OPERATION_ABORTED,
        ServerError::ConnectionInvalid | ServerError::Disconnected(_) | ServerError::Body(_) => {
            err::ERROR_CONNECTION_INVALID
        }
        ServerError::NotSupported(_) => err::ERROR_NOT_SUPPORTED,
        ServerError::Io(_) => err::ERROR_NOT_ENOUGH_MEMORY,
        _ => err::ERROR_INVALID_PARAMETER,
    }
}

/// A request queue handle's object.
pub struct Queue {
    pub queue: RequestQueue,
    pub io: Arc<IoTarget>,
    /// 1 for HttpCreateHttpHandle (HTTP_REQUEST_V1 is filled), else 2.
    pub version: u16,
    name: Option<String>,
    /// Handles open on this queue (HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING
    /// opens more): the queue shuts down when the last one closes.
    opens: Arc<AtomicUsize>,
    /// What this layer keeps for requests between calls: one lock, taken
    /// once per final send.
    pub kept: Mutex<Kept>,
    /// The implicit URL group of a version 1 handle (HttpAddUrl).
    v1_group: Option<UrlGroup>,
}

impl Kind for Queue {
    fn io(&self) -> Option<&Arc<IoTarget>> {
        Some(&self.io)
    }

    fn close(&self) {
        self.io.cancel_all();
        if self.opens.fetch_sub(1, Ordering::AcqRel) > 1 {
            return;
        }
        self.queue.shutdown();
        if let Some(g) = &self.v1_group {
            // HttpCloseRequestQueue on a version 1 handle ends its URLs.
            g.remove_all_urls();
            g.unbind();
        }
        if let Some(name) = &self.name {
            lock(&NAMED).remove(name);
        }
        *lock(&self.kept) = Kept::default();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Per-request state kept between C calls.
#[derive(Default)]
pub struct Kept {
    /// Requests a too-small buffer left for a retry by id (ERROR_MORE_DATA).
    pub parked: IdMap<u64, Request>,
    /// Body bytes that came with a request and were not copied out yet;
    /// HttpReceiveRequestEntityBody gives them first.
    pub leftover: IdMap<u64, Bytes>,
    /// Requests received with FLUSH_BODY: their body reads end at once
    /// (what is left is drained by the server after the response).
    pub flushed: IdMap<u64, ()>,
}

impl Kept {
    /// The request was answered: nothing of it is kept.
    pub fn forget(&mut self, id: u64) {
        if !self.parked.is_empty() {
            self.parked.remove(&id);
        }
        if !self.leftover.is_empty() {
            self.leftover.remove(&id);
        }
        if !self.flushed.is_empty() {
            self.flushed.remove(&id);
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The last queue this thread looked up, with the table's generation
    /// then: a consumer loop calls with the same handle every time.
    static LAST_QUEUE: std::cell::RefCell<Option<(usize, u64, Arc<Queue>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The queue behind a request queue handle.
pub fn queue_of(h: HANDLE) -> Option<Arc<Queue>> {
    // Read before the lookup: a removal after it makes the entry stale.
    let generation = handles::generation();
    let cached = LAST_QUEUE.with(|c| match &*c.borrow() {
        Some((k, g, q)) if *k == h as usize && *g == generation => Some(q.clone()),
        _ => None,
    });
    if cached.is_some() {
        return cached;
    }
    let k = handles::get_kind::<Queue>(h)?;
    let any: Arc<dyn Any + Send + Sync> = k;
    let q = any.downcast::<Queue>().ok()?;
    LAST_QUEUE.with(|c| *c.borrow_mut() = Some((h as usize, generation, q.clone())));
    Some(q)
}

struct Session {
    session: ServerSession,
    groups: Vec<u64>,
}

struct Group {
    group: UrlGroup,
    session: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0x1_0000_0001);
static SESSIONS: LazyLock<Mutex<HashMap<u64, Session>>> = LazyLock::new(Default::default);
static GROUPS: LazyLock<Mutex<HashMap<u64, Group>>> = LazyLock::new(Default::default);
/// Named request queues, for HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING.
type Named = HashMap<String, (RequestQueue, Arc<AtomicUsize>)>;
static NAMED: LazyLock<Mutex<Named>> = LazyLock::new(Default::default);
/// The session behind version 1 handles, made on first use.
static V1_SESSION: LazyLock<Mutex<Option<ServerSession>>> = LazyLock::new(Default::default);

fn new_session() -> Result<ServerSession, ULONG> {
    let props = Properties {
        // http.sys holds a pipelined request back until the one before it
        // is answered; code written for it may rely on that.
        max_pipelined: 1,
        ..Properties::default()
    };
    ServerSession::new(props).map_err(|e| error_code(&e))
}

fn version_ok(v: HTTPAPI_VERSION) -> bool {
    matches!((v.major, v.minor), (1, 0) | (2, 0))
}

unsafe fn out<T>(p: *mut T, v: T) -> ULONG {
    if p.is_null() {
        return err::ERROR_INVALID_PARAMETER;
    }
    // SAFETY: a non-NULL out-pointer of the caller's.
    unsafe { p.write(v) };
    err::NO_ERROR
}

#[no_mangle]
pub extern "C" fn HttpInitialize(version: HTTPAPI_VERSION, _flags: ULONG, _r: *mut u8) -> ULONG {
    match version_ok(version) {
        true => err::NO_ERROR,
        false => err::ERROR_INVALID_PARAMETER,
    }
}

#[no_mangle]
pub extern "C" fn HttpTerminate(_flags: ULONG, _r: *mut u8) -> ULONG {
    err::NO_ERROR
}

#[no_mangle]
pub unsafe extern "C" fn HttpCreateServerSession(
    version: HTTPAPI_VERSION,
    id: *mut u64,
    _reserved: ULONG,
) -> ULONG {
    if (version.major, version.minor) != (2, 0) {
        return err::ERROR_REVISION_MISMATCH;
    }
    if id.is_null() {
        return err::ERROR_INVALID_PARAMETER;
    }
    let session = match new_session() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let new = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock(&SESSIONS).insert(
        new,
        Session {
            session,
            groups: Vec::new(),
        },
    );
    // SAFETY: checked non-NULL.
    unsafe { out(id, new) }
}

#[no_mangle]
pub extern "C" fn HttpCloseServerSession(id: u64) -> ULONG {
    let Some(s) = lock(&SESSIONS).remove(&id) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    let mut groups = lock(&GROUPS);
    for g in &s.groups {
        groups.remove(g);
    }
    drop(groups);
    s.session.close();
    err::NO_ERROR
}

#[no_mangle]
pub unsafe extern "C" fn HttpCreateUrlGroup(session: u64, id: *mut u64, _r: ULONG) -> ULONG {
    if id.is_null() {
        return err::ERROR_INVALID_PARAMETER;
    }
    let mut sessions = lock(&SESSIONS);
    let Some(s) = sessions.get_mut(&session) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    let new = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    s.groups.push(new);
    let group = s.session.create_url_group();
    drop(sessions);
    lock(&GROUPS).insert(new, Group { group, session });
    // SAFETY: checked non-NULL.
    unsafe { out(id, new) }
}

#[no_mangle]
pub extern "C" fn HttpCloseUrlGroup(id: u64) -> ULONG {
    let Some(g) = lock(&GROUPS).remove(&id) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    if let Some(s) = lock(&SESSIONS).get_mut(&g.session) {
        s.groups.retain(|x| *x != id);
    }
    g.group.unbind();
    err::NO_ERROR
}

fn with_group<R>(id: u64, f: impl FnOnce(&UrlGroup) -> R) -> Option<R> {
    lock(&GROUPS).get(&id).map(|g| f(&g.group))
}

#[no_mangle]
pub unsafe extern "C" fn HttpAddUrlToUrlGroup(
    id: u64,
    url: *const u16,
    context: u64,
    _r: ULONG,
) -> ULONG {
    // SAFETY: a NUL-terminated UTF-16 string by contract.
    let Some(url) = (unsafe { wide_str(url) }) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    with_group(id, |g| g.add_url(&url, context)).map_or(err::ERROR_INVALID_PARAMETER, |r| {
        r.map_or_else(|e| error_code(&e), |()| err::NO_ERROR)
    })
}

#[no_mangle]
pub unsafe extern "C" fn HttpRemoveUrlFromUrlGroup(
    id: u64,
    url: *const u16,
    flags: ULONG,
) -> ULONG {
    const HTTP_URL_FLAG_REMOVE_ALL: ULONG = 1;
    // SAFETY: NULL or a NUL-terminated UTF-16 string by contract.
    let url = unsafe { wide_str(url) };
    let r = with_group(id, |g| match (url, flags & HTTP_URL_FLAG_REMOVE_ALL != 0) {
        (None, true) => {
            g.remove_all_urls();
            Ok(())
        }
        (Some(u), false) => g.remove_url(&u),
        _ => Err(ServerError::InvalidProperty(
            "a URL, or NULL with HTTP_URL_FLAG_REMOVE_ALL",
        )),
    });
    r.map_or(err::ERROR_INVALID_PARAMETER, |r| {
        r.map_or_else(|e| error_code(&e), |()| err::NO_ERROR)
    })
}

fn queue_handle(
    queue: RequestQueue,
    version: u16,
    name: Option<String>,
    opens: Arc<AtomicUsize>,
    v1: Option<UrlGroup>,
) -> HANDLE {
    // Body that arrived with a request travels with it, for COPY_BODY
    // (without the flag it is handed out first by the entity-body call).
    queue.set_copy_body(COPY_BODY_MAX);
    handles::insert(Object::Other(Arc::new(Queue {
        queue,
        io: Arc::default(),
        version,
        name,
        opens,
        kept: Mutex::default(),
        v1_group: v1,
    })))
}

#[no_mangle]
pub unsafe extern "C" fn HttpCreateRequestQueue(
    version: HTTPAPI_VERSION,
    name: *const u16,
    _sa: *mut u8,
    flags: ULONG,
    handle: *mut HANDLE,
) -> ULONG {
    const OPEN_EXISTING: ULONG = 1;
    if (version.major, version.minor) != (2, 0) {
        return err::ERROR_REVISION_MISMATCH;
    }
    if handle.is_null() {
        return err::ERROR_INVALID_PARAMETER;
    }
    // SAFETY: NULL or a NUL-terminated UTF-16 string by contract.
    let name = unsafe { wide_str(name) };
    let mut named = lock(&NAMED);
    let (queue, opens) = match (&name, flags & OPEN_EXISTING != 0) {
        (None, true) => return err::ERROR_INVALID_PARAMETER,
        (Some(n), true) => match named.get(n) {
            Some((q, opens)) => {
                opens.fetch_add(1, Ordering::AcqRel);
                (q.clone(), opens.clone())
            }
            None => return err::ERROR_FILE_NOT_FOUND,
        },
        (Some(n), false) if named.contains_key(n) => return err::ERROR_ALREADY_EXISTS,
        (Some(n), false) => {
            let q = RequestQueue::new(n);
            let opens = Arc::new(AtomicUsize::new(1));
            named.insert(n.clone(), (q.clone(), opens.clone()));
            (q, opens)
        }
        (None, false) => (
            RequestQueue::new("anonymous"),
            Arc::new(AtomicUsize::new(1)),
        ),
    };
    drop(named);
    // SAFETY: checked non-NULL.
    unsafe { out(handle, queue_handle(queue, 2, name, opens, None)) }
}

#[no_mangle]
pub extern "C" fn HttpCloseRequestQueue(h: HANDLE) -> ULONG {
    if queue_of(h).is_none() {
        return err::ERROR_INVALID_HANDLE;
    }
    crate::win32::handles::CloseHandle(h);
    err::NO_ERROR
}

#[no_mangle]
pub unsafe extern "C" fn HttpCreateHttpHandle(handle: *mut HANDLE, _r: ULONG) -> ULONG {
    if handle.is_null() {
        return err::ERROR_INVALID_PARAMETER;
    }
    let mut v1 = lock(&V1_SESSION);
    if v1.is_none() {
        match new_session() {
            Ok(s) => *v1 = Some(s),
            Err(e) => return e,
        }
    }
    let Some(session) = v1.as_ref() else {
        return err::ERROR_NOT_ENOUGH_MEMORY;
    };
    let group = session.create_url_group();
    let queue = RequestQueue::new("v1");
    group.bind(&queue);
    drop(v1);
    // SAFETY: checked non-NULL.
    unsafe {
        out(
            handle,
            queue_handle(queue, 1, None, Arc::new(AtomicUsize::new(1)), Some(group)),
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpAddUrl(h: HANDLE, url: *const u16, _r: *mut u8) -> ULONG {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    // SAFETY: a NUL-terminated UTF-16 string by contract.
    let (Some(g), Some(url)) = (&q.v1_group, unsafe { wide_str(url) }) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    g.add_url(&url, 0)
        .map_or_else(|e| error_code(&e), |()| err::NO_ERROR)
}

#[no_mangle]
pub unsafe extern "C" fn HttpRemoveUrl(h: HANDLE, url: *const u16) -> ULONG {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    // SAFETY: a NUL-terminated UTF-16 string by contract.
    let (Some(g), Some(url)) = (&q.v1_group, unsafe { wide_str(url) }) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    g.remove_url(&url)
        .map_or_else(|e| error_code(&e), |()| err::NO_ERROR)
}

/// Body bytes that may come with a received request.
const COPY_BODY_MAX: usize = 64 << 10;

const PROPERTY_TIMEOUTS: u32 = 3;
const PROPERTY_QUEUE_LENGTH: u32 = 4;
const PROPERTY_503_VERBOSITY: u32 = 6;
const PROPERTY_BINDING: u32 = 7;

/// Reads a property struct the caller passed with its length.
unsafe fn read_info<T>(info: *const u8, len: ULONG) -> Option<&'static T> {
    if info.is_null() || (len as usize) < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: non-NULL and at least size_of::<T>() bytes, by the check;
    // the reference does not outlive the call that reads it.
    Some(unsafe { &*(info as *const T) })
}

fn timeouts_of(t: &HTTP_TIMEOUT_LIMIT_INFO) -> Timeouts {
    let s = |v: u16| Duration::from_secs(u64::from(v));
    Timeouts {
        entity_body: s(t.entity_body),
        drain_entity_body: s(t.drain_entity_body),
        request_queue: s(t.request_queue),
        idle_connection: s(t.idle_connection),
        header_wait: s(t.header_wait),
        min_send_rate: t.min_send_rate,
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpSetUrlGroupProperty(
    id: u64,
    property: u32,
    info: *const u8,
    len: ULONG,
) -> ULONG {
    let r = match property {
        PROPERTY_BINDING => {
            // SAFETY: the caller's HTTP_BINDING_INFO of `len` bytes.
            let Some(b) = (unsafe { read_info::<HTTP_BINDING_INFO>(info, len) }) else {
                return err::ERROR_INVALID_PARAMETER;
            };
            if b.flags & 1 == 0 {
                with_group(id, |g| g.unbind())
            } else {
                let Some(q) = queue_of(b.request_queue_handle) else {
                    return err::ERROR_INVALID_PARAMETER;
                };
                with_group(id, |g| g.bind(&q.queue))
            }
        }
        PROPERTY_TIMEOUTS => {
            // SAFETY: the caller's HTTP_TIMEOUT_LIMIT_INFO of `len` bytes.
            let Some(t) = (unsafe { read_info::<HTTP_TIMEOUT_LIMIT_INFO>(info, len) }) else {
                return err::ERROR_INVALID_PARAMETER;
            };
            let t = if t.flags & 1 == 0 {
                Timeouts::default()
            } else {
                timeouts_of(t)
            };
            with_group(id, |g| g.set_timeouts(t))
        }
        _ => return err::ERROR_INVALID_PARAMETER,
    };
    r.map_or(err::ERROR_INVALID_PARAMETER, |()| err::NO_ERROR)
}

#[no_mangle]
pub unsafe extern "C" fn HttpSetServerSessionProperty(
    id: u64,
    property: u32,
    info: *const u8,
    len: ULONG,
) -> ULONG {
    if property != PROPERTY_TIMEOUTS {
        return err::ERROR_INVALID_PARAMETER;
    }
    // SAFETY: the caller's HTTP_TIMEOUT_LIMIT_INFO of `len` bytes.
    let Some(t) = (unsafe { read_info::<HTTP_TIMEOUT_LIMIT_INFO>(info, len) }) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    match lock(&SESSIONS).get(&id) {
        Some(s) => {
            s.session.set_timeouts(timeouts_of(t));
            err::NO_ERROR
        }
        None => err::ERROR_INVALID_PARAMETER,
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpSetRequestQueueProperty(
    h: HANDLE,
    property: u32,
    info: *const u8,
    len: ULONG,
    _r1: ULONG,
    _r2: *mut u8,
) -> ULONG {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    // SAFETY: the caller's ULONG (both properties are one) of `len` bytes.
    let Some(v) = (unsafe { read_info::<ULONG>(info, len) }) else {
        return err::ERROR_INVALID_PARAMETER;
    };
    match property {
        PROPERTY_QUEUE_LENGTH if *v >= 1 => q.queue.set_limit(*v as usize),
        PROPERTY_503_VERBOSITY => q.queue.set_overflow_policy(match v {
            // Basic: the connection is reset, no 503 (http.sys's default).
            0 => OverflowPolicy::Reset,
            1 => OverflowPolicy::ServiceUnavailable,
            _ => OverflowPolicy::ServiceUnavailableWithReason,
        }),
        _ => return err::ERROR_INVALID_PARAMETER,
    }
    err::NO_ERROR
}
