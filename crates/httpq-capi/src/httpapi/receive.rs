//! HttpReceiveHttpRequest and HttpReceiveRequestEntityBody: a request is
//! laid out in the caller's buffer as http.sys does it — the struct first,
//! then the strings, header values, addresses and body its pointers name.

use std::ffi::c_void;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use httpq_server::Request;

use super::types::*;
use super::{error_code, lock, queue_of, Queue};
use crate::win32::io::OVERLAPPED;
use crate::win32::{err, SendPtr, HANDLE};

const COPY_BODY: u32 = 1;
const FLUSH_BODY: u32 = 2;
const MORE_ENTITY_BODY_EXISTS: u32 = 1;
const FILL_BUFFER: u32 = 1;

/// The size of the struct a queue's handle version fills.
fn struct_size(version: u16) -> usize {
    match version {
        1 => std::mem::size_of::<HTTP_REQUEST_V1>(),
        _ => std::mem::size_of::<HTTP_REQUEST_V2>(),
    }
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Room for the platform's largest socket address of the two kinds.
type SockAddrBytes = ([u8; 28], usize);

/// A socket address as the platform's sockaddr_in / sockaddr_in6 bytes.
fn sockaddr(a: SocketAddr) -> SockAddrBytes {
    let mut out = [0u8; 28];
    let n = match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
            let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = v4.port().to_be();
            s.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            let n = std::mem::size_of_val(&s);
            // SAFETY: copying the bytes of a plain-data struct into a larger array.
            unsafe {
                std::ptr::copy_nonoverlapping(&s as *const _ as *const u8, out.as_mut_ptr(), n)
            };
            n
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = v6.port().to_be();
            s.sin6_addr.s6_addr = v6.ip().octets();
            s.sin6_flowinfo = v6.flowinfo();
            s.sin6_scope_id = v6.scope_id();
            let n = std::mem::size_of_val(&s);
            // SAFETY: as above (sockaddr_in6 is 28 bytes).
            unsafe {
                std::ptr::copy_nonoverlapping(&s as *const _ as *const u8, out.as_mut_ptr(), n)
            };
            n
        }
    };
    (out, n)
}

/// The HTTP_HEADER_ID of a request header name, if http.sys knows it.
fn request_header_id(name: &[u8]) -> Option<usize> {
    let mut lower = [0u8; 24];
    let n = name.len();
    if n > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    REQUEST_HEADER_NAMES
        .iter()
        .position(|k| k.as_bytes() == &lower[..n])
}

/// What a request puts in the buffer beyond the struct, borrowed from it
/// where it can be.
struct Parts<'a> {
    url: Vec<u16>,
    /// Offsets and lengths, in UTF-16 units, of host, path and query in `url`.
    host: (usize, usize),
    path: (usize, usize),
    query: (usize, usize),
    raw_url: &'a [u8],
    unknown_verb: Option<&'a [u8]>,
    known: Vec<(usize, std::borrow::Cow<'a, [u8]>)>,
    unknown: Vec<(&'a [u8], &'a [u8])>,
    remote: SockAddrBytes,
    local: SockAddrBytes,
}

impl<'a> Parts<'a> {
    fn of(req: &'a Request) -> Parts<'a> {
        let u = req.url();
        let mut url: Vec<u16> =
            Vec::with_capacity(u.scheme.len() + 10 + u.host.len() + u.path.len() + u.query.len());
        url.extend(u.scheme.encode_utf16());
        url.extend("://".encode_utf16());
        let h0 = url.len();
        url.extend(u.host.encode_utf16());
        if u.port != 0 {
            url.push(u16::from(b':'));
            url.extend(itoa::Buffer::new().format(u.port).bytes().map(u16::from));
        }
        let p0 = url.len();
        url.extend(u.path.encode_utf16());
        let q0 = url.len();
        url.extend(u.query.encode_utf16());
        let end = url.len();
        let mut known: Vec<(usize, std::borrow::Cow<'a, [u8]>)> = Vec::new();
        let mut unknown = Vec::new();
        for (name, value) in req.head().headers() {
            match request_header_id(name) {
                // A repeated known header is one value, joined with ", ".
                Some(id) => match known.iter_mut().find(|(k, _)| *k == id) {
                    Some((_, v)) => {
                        let v = v.to_mut();
                        v.extend_from_slice(b", ");
                        v.extend_from_slice(value);
                    }
                    None => known.push((id, value.into())),
                },
                None => unknown.push((name, value)),
            }
        }
        let method = req.method_bytes();
        Parts {
            url,
            host: (h0, p0 - h0),
            path: (p0, q0 - p0),
            query: (q0, end - q0),
            raw_url: req.raw_target(),
            unknown_verb: (verb_of(method) == 1).then_some(method),
            known,
            unknown,
            remote: sockaddr(req.remote_addr()),
            local: sockaddr(req.local_addr()),
        }
    }

    /// Bytes needed for the struct and everything but the body.
    fn size(&self, version: u16) -> usize {
        let mut n = struct_size(version);
        n = align(n, 8) + align(self.remote.1, 8) + align(self.local.1, 8);
        n += (self.url.len() + 1) * 2;
        n += self.raw_url.len() + 1;
        n += self.unknown_verb.map_or(0, |v| v.len() + 1);
        n += self.known.iter().map(|(_, v)| v.len() + 1).sum::<usize>();
        n = align(n, 8) + self.unknown.len() * std::mem::size_of::<HTTP_UNKNOWN_HEADER>();
        n += self
            .unknown
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
        n
    }
}

/// Places bytes after the struct in the caller's buffer.
struct Cursor {
    base: *mut u8,
    at: usize,
}

impl Cursor {
    /// Copies `data` at the next offset aligned to `to`; its address.
    ///
    /// # Safety
    /// The buffer holds at least `at` (aligned) + `data.len()` bytes.
    unsafe fn put<T: Copy>(&mut self, data: &[T], to: usize) -> *mut T {
        self.at = align(self.at, to);
        // SAFETY: the caller sized the buffer for everything put.
        let p = unsafe { self.base.add(self.at) } as *mut T;
        // SAFETY: as above; the source is a Rust slice.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        self.at += std::mem::size_of_val(data);
        p
    }

    /// `data` and a NUL.
    unsafe fn put_str(&mut self, data: &[u8]) -> *const u8 {
        // SAFETY: forwarded.
        let p = unsafe { self.put(data, 1) };
        // SAFETY: forwarded.
        unsafe { self.put(&[0u8], 1) };
        p
    }
}

/// Fills the caller's buffer with `req`, or parks it for a retry by id when
/// the buffer is too small. Returns the error code and the bytes written
/// (or needed).
///
/// # Safety
/// `buf` holds `len` bytes, at least the queue version's struct size.
unsafe fn deliver(q: &Queue, req: Request, flags: u32, buf: *mut u8, len: usize) -> (u32, usize) {
    let parts = Parts::of(&req);
    let needed = parts.size(q.version);
    let head = struct_size(q.version);
    // SAFETY: buf holds at least `head` bytes (checked by the callers).
    unsafe { std::ptr::write_bytes(buf, 0, head) };
    let r = buf as *mut HTTP_REQUEST_V1;
    // SAFETY: as above; the struct is at the start of the buffer.
    let r = unsafe { &mut *r };
    r.request_id = req.id();
    r.connection_id = req.connection_id();
    r.raw_connection_id = req.connection_id();
    if needed > len {
        drop(parts);
        lock(&q.kept).parked.insert(req.id(), req);
        return (err::ERROR_MORE_DATA, needed);
    }
    let mut c = Cursor {
        base: buf,
        at: head,
    };
    // SAFETY (every put below): `needed` <= len bytes were counted for them.
    unsafe {
        r.address.remote = c.put(&parts.remote.0[..parts.remote.1], 8) as *mut c_void;
        r.address.local = c.put(&parts.local.0[..parts.local.1], 8) as *mut c_void;
        let url = c.put(&parts.url, 2);
        c.put(&[0u16], 2);
        let cu = &mut r.cooked_url;
        cu.full_url = url;
        cu.full_url_length = (parts.url.len() * 2) as u16;
        cu.host = url.add(parts.host.0);
        cu.host_length = (parts.host.1 * 2) as u16;
        cu.abs_path = url.add(parts.path.0);
        cu.abs_path_length = (parts.path.1 * 2) as u16;
        if parts.query.1 > 0 {
            cu.query_string = url.add(parts.query.0);
            cu.query_string_length = (parts.query.1 * 2) as u16;
        }
        r.raw_url = c.put_str(parts.raw_url);
        r.raw_url_length = parts.raw_url.len() as u16;
        if let Some(v) = parts.unknown_verb {
            r.unknown_verb = c.put_str(v);
            r.unknown_verb_length = v.len() as u16;
        }
        for (id, v) in &parts.known {
            r.headers.known[*id] = HTTP_KNOWN_HEADER {
                raw_value_length: v.len().min(u16::MAX as usize) as u16,
                raw_value: c.put_str(v),
            };
        }
        if !parts.unknown.is_empty() {
            let empty = HTTP_UNKNOWN_HEADER {
                name_length: 0,
                raw_value_length: 0,
                name: std::ptr::null(),
                raw_value: std::ptr::null(),
            };
            let table = c.put(&vec![empty; parts.unknown.len()], 8);
            for (i, (k, v)) in parts.unknown.iter().enumerate() {
                *table.add(i) = HTTP_UNKNOWN_HEADER {
                    name_length: k.len() as u16,
                    raw_value_length: v.len().min(u16::MAX as usize) as u16,
                    name: c.put_str(k),
                    raw_value: c.put_str(v),
                };
            }
            r.headers.unknown_headers = table;
            r.headers.unknown_header_count = parts.unknown.len() as u16;
        }
    }
    r.url_context = req.url_context();
    r.version = match req.version() {
        httpq_proto::Version::Http10 => HTTP_VERSION { major: 1, minor: 0 },
        httpq_proto::Version::Http11 => HTTP_VERSION { major: 1, minor: 1 },
        httpq_proto::Version::Http2 => HTTP_VERSION { major: 2, minor: 0 },
    };
    r.verb = verb_of(req.method_bytes());
    r.bytes_received = req.bytes_received();
    // The body that came with the request: copied if asked and it fits,
    // else kept for HttpReceiveRequestEntityBody (or dropped with FLUSH_BODY).
    let mut body: Bytes = req.body().clone();
    let chunk = std::mem::size_of::<HTTP_DATA_CHUNK>();
    if flags & (COPY_BODY | FLUSH_BODY) != 0 && !body.is_empty() {
        let at = align(c.at, 8);
        if at + chunk < len {
            let n = body.len().min(len - at - chunk);
            // SAFETY: at + chunk + n <= len.
            unsafe {
                let table = c.put(
                    &[HTTP_DATA_CHUNK {
                        chunk_type: CHUNK_FROM_MEMORY,
                        u: DataChunkUnion {
                            from_memory: FromMemory {
                                buffer: std::ptr::null_mut(),
                                buffer_length: n as u32,
                            },
                        },
                    }],
                    8,
                );
                (*table).u.from_memory.buffer = c.put(&body[..n], 1) as *mut c_void;
                r.entity_chunks = table;
            }
            r.entity_chunk_count = 1;
            let _ = body.split_to(n);
        }
    }
    let more = req.more_body() || !body.is_empty();
    if flags & FLUSH_BODY != 0 {
        body.clear();
        if more {
            lock(&q.kept).flushed.insert(req.id(), ());
        }
    } else if more {
        r.flags |= MORE_ENTITY_BODY_EXISTS;
    }
    if !body.is_empty() {
        lock(&q.kept).leftover.insert(req.id(), body);
    }
    if q.version >= 2 {
        // SAFETY: a version 2 buffer holds the V2 struct (zeroed above).
        unsafe { (*(buf as *mut HTTP_REQUEST_V2)).request_info_count = 0 };
    }
    (err::NO_ERROR, c.at)
}

unsafe fn write_out(p: *mut u32, v: usize) {
    if !p.is_null() {
        // SAFETY: a non-NULL out-pointer of the caller's.
        unsafe { *p = v as u32 };
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpReceiveHttpRequest(
    h: HANDLE,
    id: u64,
    flags: u32,
    buf: *mut u8,
    len: u32,
    returned: *mut u32,
    ov: *mut OVERLAPPED,
) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    // The struct is written in place: its buffer must be aligned for it
    // (malloc's and HeapAlloc's are; a char array on the stack may not be).
    if buf.is_null() || buf as usize % std::mem::align_of::<HTTP_REQUEST_V2>() != 0 {
        return err::ERROR_INVALID_PARAMETER;
    }
    let len = len as usize;
    if len < struct_size(q.version) {
        return err::ERROR_INSUFFICIENT_BUFFER;
    }
    let ready = if id != 0 {
        match lock(&q.kept).parked.remove(&id) {
            Some(r) => Some(r),
            None => return err::ERROR_CONNECTION_INVALID,
        }
    } else if ov.is_null() {
        match q.queue.receive_blocking() {
            Ok(r) => Some(r),
            Err(e) => return error_code(&e),
        }
    } else {
        match q.queue.try_receive() {
            Ok(r) => r,
            Err(e) => return error_code(&e),
        }
    };
    if ov.is_null() {
        let Some(req) = ready else {
            return err::ERROR_CONNECTION_INVALID;
        };
        // SAFETY: buf holds len >= struct size bytes.
        let (code, n) = unsafe { deliver(&q, req, flags, buf, len) };
        // SAFETY: the caller's out-pointer or NULL.
        unsafe { write_out(returned, n) };
        return code;
    }
    // SAFETY: the caller's OVERLAPPED, valid until completion.
    let op = unsafe { q.io.begin(ov) };
    if let Some(req) = ready {
        // SAFETY: as above.
        let (code, n) = unsafe { deliver(&q, req, flags, buf, len) };
        // SAFETY: as above.
        unsafe { write_out(returned, n) };
        // Done at once (ERROR_MORE_DATA is a warning): the packet goes too.
        // SAFETY: begun just above.
        unsafe { q.io.complete(op, code, n) };
        return code;
    }
    let (qq, buf) = (q.clone(), SendPtr(buf));
    q.io.spawn(op, async move {
        let buf = buf;
        match qq.queue.receive().await {
            // SAFETY: the buffer outlives the operation (Win32 contract).
            Ok(req) => unsafe { deliver(&qq, req, flags, buf.0, len) },
            Err(e) => (error_code(&e), 0),
        }
    });
    err::ERROR_IO_PENDING
}

/// Reads body into the caller's buffer: the bytes kept from the request
/// first, then from the connection; with FILL_BUFFER until full or ended.
async fn read_body(
    q: Arc<Queue>,
    id: u64,
    buf: SendPtr<u8>,
    len: usize,
    fill: bool,
) -> (u32, usize) {
    // SAFETY: the caller's buffer of len bytes, alive until completion.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.0, len) };
    if lock(&q.kept).flushed.contains_key(&id) {
        return (err::ERROR_HANDLE_EOF, 0);
    }
    let mut n = 0;
    while n < len {
        let kept = {
            let mut kept = lock(&q.kept);
            let left = &mut kept.leftover;
            match left.get_mut(&id) {
                Some(b) => {
                    let k = b.len().min(len - n);
                    out[n..n + k].copy_from_slice(&b.split_to(k));
                    if b.is_empty() {
                        left.remove(&id);
                    }
                    Some(k)
                }
                None => None,
            }
        };
        let k = match kept {
            Some(k) => k,
            None => match q.queue.receive_body(id, &mut out[n..]).await {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) => return (error_code(&e), n),
            },
        };
        n += k;
        if !fill {
            break;
        }
    }
    match n {
        0 => (err::ERROR_HANDLE_EOF, 0),
        n => (err::NO_ERROR, n),
    }
}

#[no_mangle]
pub unsafe extern "C" fn HttpReceiveRequestEntityBody(
    h: HANDLE,
    id: u64,
    flags: u32,
    buf: *mut u8,
    len: u32,
    returned: *mut u32,
    ov: *mut OVERLAPPED,
) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    if buf.is_null() || len == 0 {
        return err::ERROR_INVALID_PARAMETER;
    }
    let fill = flags & FILL_BUFFER != 0;
    let op = read_body(q.clone(), id, SendPtr(buf), len as usize, fill);
    if ov.is_null() {
        let (code, n) = crate::win32::io::block(op);
        // SAFETY: the caller's out-pointer or NULL.
        unsafe { write_out(returned, n) };
        return code;
    }
    // SAFETY: the caller's OVERLAPPED, valid until completion.
    let started = unsafe { q.io.begin(ov) };
    q.io.spawn(started, op);
    err::ERROR_IO_PENDING
}
