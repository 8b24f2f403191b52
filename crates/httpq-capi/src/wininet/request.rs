//! WinInet's requests: InternetOpenUrl, InternetConnect, HttpOpenRequest,
//! HttpSendRequest(Ex), InternetWriteFile, HttpEndRequest, reads into the
//! caller's buffers (the byte count written when the read completes), and
//! HttpQueryInfo from the response head.

use std::ffi::c_void;
use std::sync::Arc;

use httpq_client::{Closer, Query, RequestHandle, Scheme};

use super::{creating, error_code, ierr, inet_of, new_inet, Inet, InetKind, HINTERNET};
use crate::win32::io::runtime;
use crate::win32::{err, fail, narrow_str, wide_str, SendPtr, BOOL, DWORD, FALSE, TRUE};

/// A response head, kept when it arrives so queries never wait on a read.
pub(super) struct Head {
    pub status: u16,
    pub text: String,
    pub raw: String,
    pub fields: Vec<(String, String)>,
}

/// A request handle's state.
pub struct ReqState {
    req: Arc<tokio::sync::Mutex<Option<RequestHandle>>>,
    closer: std::sync::Mutex<Option<Closer>>,
    pub(super) head: std::sync::Mutex<Option<Arc<Head>>>,
    url: std::sync::Mutex<String>,
}

impl ReqState {
    fn new() -> ReqState {
        ReqState {
            req: Arc::new(tokio::sync::Mutex::new(None)),
            closer: std::sync::Mutex::new(None),
            head: std::sync::Mutex::new(None),
            url: std::sync::Mutex::new(String::new()),
        }
    }

    /// InternetCloseHandle: the client cancels what is pending.
    pub fn close(&self) {
        if let Some(c) = self
            .closer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            c.close();
        }
    }

    pub fn url(&self) -> String {
        self.url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, r: RequestHandle) {
        *self.url.lock().unwrap_or_else(|e| e.into_inner()) = r.url().to_string();
        *self.closer.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.closer());
        if let Ok(mut slot) = self.req.try_lock() {
            *slot = Some(r);
        }
    }

    fn keep_head(&self, r: &RequestHandle) {
        let raw = r.query_info(Query::RawHeaders).unwrap_or_default();
        let fields = raw
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        *self.head.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Head {
            status: r.status(),
            text: r.query_info(Query::StatusText).unwrap_or_default(),
            raw,
            fields,
        }));
    }
}

pub(super) fn request_of(h: HINTERNET) -> Result<Arc<Inet>, DWORD> {
    let inet = inet_of(h).ok_or(err::ERROR_INVALID_HANDLE)?;
    match inet.kind {
        InetKind::Request(_) => Ok(inet),
        _ => Err(ierr::INCORRECT_HANDLE_TYPE),
    }
}

/// The request state of a handle [`request_of`] checked.
pub(super) fn state(inet: &Inet) -> &ReqState {
    match &inet.kind {
        InetKind::Request(r) => r,
        _ => unreachable!("checked by request_of"),
    }
}

/// Runs a request operation: in async mode on the library's runtime, the
/// call returning ERROR_IO_PENDING and REQUEST_COMPLETE following; else
/// on the caller's thread. `op` gives (dwResult, error).
fn run<F>(inet: Arc<Inet>, op: F) -> BOOL
where
    F: std::future::Future<Output = (usize, DWORD)> + Send + 'static,
{
    if inet.root.async_mode {
        if !inet.begin_op() {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        }
        runtime().spawn(async move {
            let (result, error) = op.await;
            inet.complete(result, error);
        });
        return fail(err::ERROR_IO_PENDING);
    }
    match crate::win32::io::block(op) {
        (_, 0) => TRUE,
        (_, e) => fail(e),
    }
}

/// Extra request headers as WinInet passes them: CRLF-separated lines,
/// `len` bytes or characters, or NUL-terminated when `len` is -1 or 0.
fn header_lines(text: Option<String>) -> Vec<(String, String)> {
    text.unwrap_or_default()
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

unsafe fn headers_a(p: *const std::ffi::c_char, len: DWORD) -> Option<String> {
    if p.is_null() {
        return None;
    }
    if len == 0 || len == u32::MAX {
        // SAFETY: NUL-terminated by contract when no length is given.
        return unsafe { narrow_str(p) };
    }
    // SAFETY: `len` bytes by contract.
    let b = unsafe { std::slice::from_raw_parts(p as *const u8, len as usize) };
    Some(String::from_utf8_lossy(b).into_owned())
}

unsafe fn headers_w(p: *const u16, len: DWORD) -> Option<String> {
    if p.is_null() {
        return None;
    }
    if len == 0 || len == u32::MAX {
        // SAFETY: NUL-terminated by contract when no length is given.
        return unsafe { wide_str(p) };
    }
    // SAFETY: `len` characters by contract.
    let w = unsafe { std::slice::from_raw_parts(p, len as usize) };
    Some(String::from_utf16_lossy(w))
}

fn add_headers(r: &mut RequestHandle, lines: &[(String, String)]) -> Result<(), DWORD> {
    for (k, v) in lines {
        r.add_header(k, v).map_err(|e| error_code(&e))?;
    }
    Ok(())
}

/// The handle's timeouts, given to its request before each operation
/// (InternetSetOption while an operation runs takes effect at the next).
fn apply_timeouts(inet: &Inet, r: &mut RequestHandle) {
    r.set_timeouts(*inet.timeouts.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Sends the request (with `body`), keeps the head; (dwResult, error).
async fn send(inet: Arc<Inet>, body: Option<bytes::Bytes>, result: usize) -> (usize, DWORD) {
    let InetKind::Request(state) = &inet.kind else {
        return (0, ierr::INCORRECT_HANDLE_TYPE);
    };
    let mut slot = state.req.clone().lock_owned().await;
    let Some(r) = slot.as_mut() else {
        return (0, ierr::INCORRECT_HANDLE_STATE);
    };
    apply_timeouts(&inet, r);
    match r.send(body).await {
        Ok(()) => {
            state.keep_head(r);
            (result, 0)
        }
        Err(e) => (0, error_code(&e)),
    }
}

fn open_url(
    h: HINTERNET,
    url: Option<String>,
    headers: Vec<(String, String)>,
    context: usize,
) -> HINTERNET {
    let Some(parent) = inet_of(h) else {
        fail(err::ERROR_INVALID_HANDLE);
        return std::ptr::null_mut();
    };
    if !matches!(parent.kind, InetKind::Session) {
        fail(ierr::INCORRECT_HANDLE_TYPE);
        return std::ptr::null_mut();
    }
    let Some(url) = url else {
        fail(ierr::INVALID_URL);
        return std::ptr::null_mut();
    };
    let session = match parent.root.session() {
        Ok(s) => s,
        Err(e) => {
            fail(e);
            return std::ptr::null_mut();
        }
    };
    let inet = new_inet(&parent, InetKind::Request(ReqState::new()), context);
    let handle = inet.handle();
    let made = creating(handle, || session.request("GET", &url, context as u64));
    let mut req = match made {
        Ok(r) => r,
        Err(e) => {
            super::InternetCloseHandle(handle);
            fail(error_code(&e));
            return std::ptr::null_mut();
        }
    };
    if let Err(e) = add_headers(&mut req, &headers) {
        super::InternetCloseHandle(handle);
        fail(e);
        return std::ptr::null_mut();
    }
    let InetKind::Request(state) = &inet.kind else {
        unreachable!("made as a request");
    };
    state.set(req);
    let ok = run(inet.clone(), send(inet.clone(), None, handle as usize));
    if inet.root.async_mode || ok == FALSE {
        if !inet.root.async_mode {
            let e = crate::win32::GetLastError();
            super::InternetCloseHandle(handle);
            fail(e);
        }
        return std::ptr::null_mut();
    }
    handle
}

#[no_mangle]
pub unsafe extern "C" fn InternetOpenUrlA(
    h: HINTERNET,
    url: *const std::ffi::c_char,
    headers: *const std::ffi::c_char,
    headers_len: DWORD,
    _flags: DWORD,
    context: usize,
) -> HINTERNET {
    // SAFETY: the caller's strings, by contract.
    let (url, headers) = unsafe { (narrow_str(url), headers_a(headers, headers_len)) };
    open_url(h, url, header_lines(headers), context)
}

#[no_mangle]
pub unsafe extern "C" fn InternetOpenUrlW(
    h: HINTERNET,
    url: *const u16,
    headers: *const u16,
    headers_len: DWORD,
    _flags: DWORD,
    context: usize,
) -> HINTERNET {
    // SAFETY: the caller's strings, by contract.
    let (url, headers) = unsafe { (wide_str(url), headers_w(headers, headers_len)) };
    open_url(h, url, header_lines(headers), context)
}

fn connect(
    h: HINTERNET,
    server: Option<String>,
    port: u16,
    service: DWORD,
    flags: DWORD,
    context: usize,
) -> HINTERNET {
    const INTERNET_SERVICE_HTTP: DWORD = 3;
    const INTERNET_FLAG_SECURE: DWORD = 0x0080_0000;
    let Some(parent) = inet_of(h) else {
        fail(err::ERROR_INVALID_HANDLE);
        return std::ptr::null_mut();
    };
    let (Some(host), INTERNET_SERVICE_HTTP) = (server, service) else {
        fail(err::ERROR_INVALID_PARAMETER);
        return std::ptr::null_mut();
    };
    let session = match parent.root.session() {
        Ok(s) => s,
        Err(e) => {
            fail(e);
            return std::ptr::null_mut();
        }
    };
    let secure = flags & INTERNET_FLAG_SECURE != 0 || port == 443;
    let port = match port {
        0 if secure => 443,
        0 => 80,
        p => p,
    };
    let scheme = if secure { Scheme::Https } else { Scheme::Http };
    // The handle exists before the client's, whose HANDLE_CREATED names it.
    let placeholder = new_inet(&parent, InetKind::Placeholder, context);
    let ph = placeholder.handle();
    let made = creating(ph, || session.connect(scheme, &host, port, context as u64));
    crate::win32::handles::remove(ph);
    parent
        .children
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|c| *c != ph as usize);
    let connect = match made {
        Ok(c) => c,
        Err(e) => {
            fail(error_code(&e));
            return std::ptr::null_mut();
        }
    };
    let id = connect.id();
    let inet = new_inet(
        &parent,
        InetKind::Connect {
            connect,
            host,
            port,
        },
        context,
    );
    // Later notifications of the client's handle go to the real one.
    inet.adopt(id);
    crate::win32::set_last_error(0);
    inet.handle()
}

#[no_mangle]
pub unsafe extern "C" fn InternetConnectA(
    h: HINTERNET,
    server: *const std::ffi::c_char,
    port: u16,
    _user: *const std::ffi::c_char,
    _password: *const std::ffi::c_char,
    service: DWORD,
    flags: DWORD,
    context: usize,
) -> HINTERNET {
    // SAFETY: the caller's string, by contract.
    connect(
        h,
        unsafe { narrow_str(server) },
        port,
        service,
        flags,
        context,
    )
}

#[no_mangle]
pub unsafe extern "C" fn InternetConnectW(
    h: HINTERNET,
    server: *const u16,
    port: u16,
    _user: *const u16,
    _password: *const u16,
    service: DWORD,
    flags: DWORD,
    context: usize,
) -> HINTERNET {
    // SAFETY: the caller's string, by contract.
    connect(
        h,
        unsafe { wide_str(server) },
        port,
        service,
        flags,
        context,
    )
}

fn open_request(
    h: HINTERNET,
    verb: Option<String>,
    object: Option<String>,
    context: usize,
) -> HINTERNET {
    let Some(parent) = inet_of(h) else {
        fail(err::ERROR_INVALID_HANDLE);
        return std::ptr::null_mut();
    };
    let InetKind::Connect { connect, .. } = &parent.kind else {
        fail(ierr::INCORRECT_HANDLE_TYPE);
        return std::ptr::null_mut();
    };
    let verb = verb
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "GET".into());
    let object = object
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| "/".into());
    let inet = new_inet(&parent, InetKind::Request(ReqState::new()), context);
    let handle = inet.handle();
    match creating(handle, || {
        connect.open_request(&verb, &object, context as u64)
    }) {
        Ok(r) => {
            let InetKind::Request(state) = &inet.kind else {
                unreachable!("made as a request");
            };
            state.set(r);
            crate::win32::set_last_error(0);
            handle
        }
        Err(e) => {
            super::InternetCloseHandle(handle);
            fail(error_code(&e));
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpOpenRequestA(
    h: HINTERNET,
    verb: *const std::ffi::c_char,
    object: *const std::ffi::c_char,
    _version: *const std::ffi::c_char,
    _referrer: *const std::ffi::c_char,
    _accept: *const *const std::ffi::c_char,
    _flags: DWORD,
    context: usize,
) -> HINTERNET {
    // SAFETY: the caller's strings, by contract.
    unsafe { open_request(h, narrow_str(verb), narrow_str(object), context) }
}

#[no_mangle]
pub unsafe extern "C" fn HttpOpenRequestW(
    h: HINTERNET,
    verb: *const u16,
    object: *const u16,
    _version: *const u16,
    _referrer: *const u16,
    _accept: *const *const u16,
    _flags: DWORD,
    context: usize,
) -> HINTERNET {
    // SAFETY: the caller's strings, by contract.
    unsafe { open_request(h, wide_str(verb), wide_str(object), context) }
}

fn send_request(h: HINTERNET, headers: Vec<(String, String)>, body: Option<bytes::Bytes>) -> BOOL {
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let state = state(&inet);
    {
        let Ok(mut slot) = state.req.try_lock() else {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        };
        let Some(r) = slot.as_mut() else {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        };
        if let Err(e) = add_headers(r, &headers) {
            return fail(e);
        }
    }
    run(inet.clone(), send(inet, body, TRUE as usize))
}

unsafe fn optional(p: *const c_void, len: DWORD) -> Option<bytes::Bytes> {
    // SAFETY: lpOptional holds dwOptionalLength bytes by contract.
    (!p.is_null() && len > 0).then(|| {
        bytes::Bytes::copy_from_slice(unsafe {
            std::slice::from_raw_parts(p as *const u8, len as usize)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn HttpSendRequestA(
    h: HINTERNET,
    headers: *const std::ffi::c_char,
    headers_len: DWORD,
    body: *const c_void,
    body_len: DWORD,
) -> BOOL {
    // SAFETY: the caller's strings and buffer, by contract.
    unsafe {
        send_request(
            h,
            header_lines(headers_a(headers, headers_len)),
            optional(body, body_len),
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpSendRequestW(
    h: HINTERNET,
    headers: *const u16,
    headers_len: DWORD,
    body: *const c_void,
    body_len: DWORD,
) -> BOOL {
    // SAFETY: the caller's strings and buffer, by contract.
    unsafe {
        send_request(
            h,
            header_lines(headers_w(headers, headers_len)),
            optional(body, body_len),
        )
    }
}

/// INTERNET_BUFFERSA/W: the same layout; the header pointer's type differs.
#[repr(C)]
pub struct InternetBuffers {
    pub struct_size: DWORD,
    pub next: *mut InternetBuffers,
    pub header: *const c_void,
    pub headers_length: DWORD,
    pub headers_total: DWORD,
    pub buffer: *mut c_void,
    pub buffer_length: DWORD,
    pub buffer_total: DWORD,
    pub offset_low: DWORD,
    pub offset_high: DWORD,
}

unsafe fn send_request_ex(h: HINTERNET, input: *const InternetBuffers, wide: bool) -> BOOL {
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let state = state(&inet);
    let (total, headers) = if input.is_null() {
        (None, Vec::new())
    } else {
        // SAFETY: the caller's INTERNET_BUFFERS.
        let b = unsafe { &*input };
        // SAFETY: lpcszHeader is NULL or dwHeadersLength characters (or NUL-terminated).
        let text = unsafe {
            if wide {
                headers_w(b.header as *const u16, b.headers_length)
            } else {
                headers_a(b.header as *const std::ffi::c_char, b.headers_length)
            }
        };
        (Some(u64::from(b.buffer_total)), header_lines(text))
    };
    {
        let Ok(mut slot) = state.req.try_lock() else {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        };
        let Some(r) = slot.as_mut() else {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        };
        if let Err(e) = add_headers(r, &headers) {
            return fail(e);
        }
    }
    let (req, me) = (state.req.clone(), inet.clone());
    run(inet, async move {
        let mut slot = req.lock_owned().await;
        let Some(r) = slot.as_mut() else {
            return (0, ierr::INCORRECT_HANDLE_STATE);
        };
        apply_timeouts(&me, r);
        match r.send_headers(total).await {
            Ok(()) => (TRUE as usize, 0),
            Err(e) => (0, error_code(&e)),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn HttpSendRequestExA(
    h: HINTERNET,
    input: *const InternetBuffers,
    _out: *mut InternetBuffers,
    _flags: DWORD,
    _context: usize,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { send_request_ex(h, input, false) }
}

#[no_mangle]
pub unsafe extern "C" fn HttpSendRequestExW(
    h: HINTERNET,
    input: *const InternetBuffers,
    _out: *mut InternetBuffers,
    _flags: DWORD,
    _context: usize,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { send_request_ex(h, input, true) }
}

#[no_mangle]
pub unsafe extern "C" fn InternetWriteFile(
    h: HINTERNET,
    buf: *const c_void,
    len: DWORD,
    written: *mut DWORD,
) -> BOOL {
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let state = state(&inet);
    if buf.is_null() && len > 0 {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: lpBuffer holds dwNumberOfBytesToWrite bytes by contract.
    let data = unsafe { optional(buf, len) }.unwrap_or_default();
    let (req, written) = (state.req.clone(), SendPtr(written));
    run(inet, async move {
        let written = written;
        let mut slot = req.lock_owned().await;
        let Some(r) = slot.as_mut() else {
            return (0, ierr::INCORRECT_HANDLE_STATE);
        };
        match r.write(&data).await {
            Ok(n) => {
                if !written.0.is_null() {
                    // SAFETY: the caller's DWORD, written when the write completes.
                    unsafe { *written.0 = n as DWORD };
                }
                (TRUE as usize, 0)
            }
            Err(e) => (0, error_code(&e)),
        }
    })
}

fn end_request(h: HINTERNET) -> BOOL {
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let me = inet.clone();
    run(inet, async move {
        let InetKind::Request(state) = &me.kind else {
            return (0, ierr::INCORRECT_HANDLE_TYPE);
        };
        let mut slot = state.req.clone().lock_owned().await;
        let Some(r) = slot.as_mut() else {
            return (0, ierr::INCORRECT_HANDLE_STATE);
        };
        apply_timeouts(&me, r);
        match r.end_request().await {
            Ok(()) => {
                state.keep_head(r);
                (TRUE as usize, 0)
            }
            Err(e) => (0, error_code(&e)),
        }
    })
}

#[no_mangle]
pub extern "C" fn HttpEndRequestA(
    h: HINTERNET,
    _out: *mut InternetBuffers,
    _flags: DWORD,
    _context: usize,
) -> BOOL {
    end_request(h)
}

#[no_mangle]
pub extern "C" fn HttpEndRequestW(
    h: HINTERNET,
    _out: *mut InternetBuffers,
    _flags: DWORD,
    _context: usize,
) -> BOOL {
    end_request(h)
}

const IRF_NO_WAIT: DWORD = 8;

/// Reads into the caller's buffer: at once if data is there (TRUE), else
/// pending in async mode, the count written to `count` when it completes.
unsafe fn read(
    h: HINTERNET,
    buf: *mut c_void,
    len: DWORD,
    count: *mut DWORD,
    no_wait: bool,
) -> BOOL {
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let state = state(&inet);
    if count.is_null() || (buf.is_null() && len > 0) {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let now = {
        let Ok(mut slot) = state.req.try_lock() else {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        };
        let Some(r) = slot.as_mut() else {
            return fail(ierr::INCORRECT_HANDLE_STATE);
        };
        // SAFETY: lpBuffer holds dwNumberOfBytesToRead bytes by contract.
        let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len as usize) };
        r.try_read(out)
    };
    match now {
        Ok(Some(n)) => {
            // SAFETY: checked non-NULL.
            unsafe { *count = n as DWORD };
            crate::win32::set_last_error(0);
            return TRUE;
        }
        Ok(None) if no_wait => {
            // SAFETY: checked non-NULL.
            unsafe { *count = 0 };
            return TRUE;
        }
        Ok(None) => {}
        Err(e) => return fail(error_code(&e)),
    }
    let (req, buf, count) = (state.req.clone(), SendPtr(buf as *mut u8), SendPtr(count));
    let me = inet.clone();
    run(inet, async move {
        let (buf, count) = (buf, count);
        let mut slot = req.lock_owned().await;
        let Some(r) = slot.as_mut() else {
            return (0, ierr::INCORRECT_HANDLE_STATE);
        };
        apply_timeouts(&me, r);
        // SAFETY: the caller's buffer stays valid until REQUEST_COMPLETE.
        let out = unsafe { std::slice::from_raw_parts_mut(buf.0, len as usize) };
        match r.read(out).await {
            Ok(n) => {
                // SAFETY: written before REQUEST_COMPLETE, as WinInet does.
                unsafe { *count.0 = n as DWORD };
                (TRUE as usize, 0)
            }
            Err(e) => (0, error_code(&e)),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn InternetReadFile(
    h: HINTERNET,
    buf: *mut c_void,
    len: DWORD,
    read_: *mut DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { read(h, buf, len, read_, false) }
}

unsafe fn read_ex(h: HINTERNET, b: *mut InternetBuffers, flags: DWORD) -> BOOL {
    if b.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the caller's INTERNET_BUFFERS; dwBufferLength is the count
    // written back (at completion when pending).
    unsafe {
        let len = (*b).buffer_length;
        read(
            h,
            (*b).buffer,
            len,
            &mut (*b).buffer_length,
            flags & IRF_NO_WAIT != 0,
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn InternetReadFileExA(
    h: HINTERNET,
    b: *mut InternetBuffers,
    flags: DWORD,
    _ctx: usize,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { read_ex(h, b, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn InternetReadFileExW(
    h: HINTERNET,
    b: *mut InternetBuffers,
    flags: DWORD,
    _ctx: usize,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { read_ex(h, b, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn InternetQueryDataAvailable(
    h: HINTERNET,
    avail: *mut DWORD,
    _flags: DWORD,
    _ctx: usize,
) -> BOOL {
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let state = state(&inet);
    if avail.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let (req, avail) = (state.req.clone(), SendPtr(avail));
    run(inet, async move {
        let avail = avail;
        let mut slot = req.lock_owned().await;
        let Some(r) = slot.as_mut() else {
            return (0, ierr::INCORRECT_HANDLE_STATE);
        };
        match r.data_available().await {
            Ok(n) => {
                // SAFETY: the caller's DWORD, written before REQUEST_COMPLETE.
                unsafe { *avail.0 = n as DWORD };
                (TRUE as usize, 0)
            }
            Err(e) => (0, error_code(&e)),
        }
    })
}
