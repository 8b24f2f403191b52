//! HttpSendHttpResponse and HttpSendResponseEntityBody: HTTP_RESPONSE and
//! data chunks (memory, or a file handle's byte range) become httpq
//! responses; the server adds Date, and Content-Length unless given.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use httpq_server::{FileChunk, Response, SendFlags};

use super::types::*;
use super::{error_code, lock, queue_of, Queue};
use crate::win32::file::file_of;
use crate::win32::io::OVERLAPPED;
use crate::win32::{err, HANDLE};

const FLAG_DISCONNECT: u32 = 1;
const FLAG_MORE_DATA: u32 = 2;
const BYTE_RANGE_TO_EOF: u64 = u64::MAX;

/// One data chunk, owned: memory is copied (the caller may reuse it as
/// soon as the call returns), a file range shares the open file.
enum Piece {
    Mem(Bytes),
    File(FileChunk),
}

fn send_flags(flags: u32) -> SendFlags {
    let mut f = SendFlags::NONE;
    if flags & FLAG_MORE_DATA != 0 {
        f = f | SendFlags::MORE_DATA;
    }
    if flags & FLAG_DISCONNECT != 0 {
        f = f | SendFlags::DISCONNECT;
    }
    f
}

/// The body of a response with no chunk or one memory chunk, copied.
unsafe fn one_memory_chunk(r: &HTTP_RESPONSE_V1) -> Option<Bytes> {
    match r.entity_chunk_count {
        0 => Some(Bytes::new()),
        1 if !r.entity_chunks.is_null() => {
            // SAFETY: one chunk, by EntityChunkCount.
            let c = unsafe { &*r.entity_chunks };
            if c.chunk_type != CHUNK_FROM_MEMORY {
                return None;
            }
            // SAFETY: the FromMemory member is the one in use for this type.
            let m = unsafe { c.u.from_memory };
            match (m.buffer.is_null(), m.buffer_length) {
                (_, 0) => Some(Bytes::new()),
                (true, _) => None, // refused by the general path
                // SAFETY: pBuffer holds BufferLength bytes by contract.
                (false, n) => Some(Bytes::copy_from_slice(unsafe {
                    std::slice::from_raw_parts(m.buffer as *const u8, n as usize)
                })),
            }
        }
        _ => None,
    }
}

/// The caller's chunks, consecutive memory chunks merged.
unsafe fn pieces(chunks: *const HTTP_DATA_CHUNK, count: u16) -> Result<Vec<Piece>, u32> {
    if count > 0 && chunks.is_null() {
        return Err(err::ERROR_INVALID_PARAMETER);
    }
    let mut out: Vec<Piece> = Vec::new();
    let mut mem: Vec<u8> = Vec::new();
    for i in 0..usize::from(count) {
        // SAFETY: pEntityChunks holds EntityChunkCount chunks by contract.
        let c = unsafe { &*chunks.add(i) };
        match c.chunk_type {
            CHUNK_FROM_MEMORY => {
                // SAFETY: the FromMemory member is the one in use for this type.
                let m = unsafe { c.u.from_memory };
                if m.buffer_length > 0 {
                    if m.buffer.is_null() {
                        return Err(err::ERROR_INVALID_PARAMETER);
                    }
                    // SAFETY: pBuffer holds BufferLength bytes by contract.
                    mem.extend_from_slice(unsafe {
                        std::slice::from_raw_parts(m.buffer as *const u8, m.buffer_length as usize)
                    });
                }
            }
            CHUNK_FROM_FILE_HANDLE => {
                // SAFETY: the FromFileHandle member is the one in use for this type.
                let f = unsafe { c.u.from_file_handle };
                let file = file_of(f.file_handle).ok_or(err::ERROR_INVALID_HANDLE)?;
                let size = file
                    .file
                    .metadata()
                    .map_err(|e| crate::win32::from_io(&e))?
                    .len();
                let start = f.byte_range.starting_offset;
                let len = match f.byte_range.length {
                    BYTE_RANGE_TO_EOF => size.saturating_sub(start),
                    n => n,
                };
                if start.checked_add(len).is_none_or(|end| end > size) {
                    return Err(err::ERROR_INVALID_PARAMETER);
                }
                if !mem.is_empty() {
                    out.push(Piece::Mem(std::mem::take(&mut mem).into()));
                }
                out.push(Piece::File(FileChunk {
                    file: file.file.clone(),
                    offset: start,
                    len,
                }));
            }
            _ => return Err(err::ERROR_INVALID_PARAMETER),
        }
    }
    if !mem.is_empty() {
        out.push(Piece::Mem(mem.into()));
    }
    Ok(out)
}

/// A (pointer, length) pair of the caller's response struct as bytes.
fn raw<'a>(p: *const u8, len: u16) -> Option<&'a [u8]> {
    if p.is_null() || len == 0 {
        return None;
    }
    // SAFETY: a (pointer, length) pair of the caller's response struct,
    // read during the call that passed it.
    Some(unsafe { std::slice::from_raw_parts(p, usize::from(len)) })
}

/// The response header names by HTTP_HEADER_ID, parsed once.
static KNOWN: std::sync::LazyLock<Vec<HeaderName>> = std::sync::LazyLock::new(|| {
    RESPONSE_HEADER_NAMES
        .iter()
        .map(|n| HeaderName::from_bytes(n.as_bytes()).expect("a valid header name"))
        .collect()
});

/// The head of the caller's HTTP_RESPONSE. Fields that are not valid HTTP
/// are left out, as [`Response::header`] does.
unsafe fn head_of(r: &HTTP_RESPONSE_V1) -> Response {
    let mut resp = Response::new(r.status_code);
    if let Some(reason) = raw(r.reason, r.reason_length) {
        resp = resp.reason(&String::from_utf8_lossy(reason));
    }
    for (i, k) in r.headers.known.iter().enumerate() {
        if let Some(v) = raw(k.raw_value, k.raw_value_length) {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                resp.headers.append(KNOWN[i].clone(), v);
            }
        }
    }
    let h = &r.headers;
    if !h.unknown_headers.is_null() {
        for i in 0..usize::from(h.unknown_header_count) {
            // SAFETY: pUnknownHeaders holds UnknownHeaderCount entries.
            let u = unsafe { &*h.unknown_headers.add(i) };
            if let (Some(k), Some(v)) = (
                raw(u.name, u.name_length),
                raw(u.raw_value, u.raw_value_length),
            ) {
                if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
                    resp.headers.append(k, v);
                }
            }
        }
    }
    resp
}

/// Sends `pieces` for request `id`: with the head if there is one (as one
/// response when the pieces fit in it), the last piece with `flags`.
async fn send_all(
    q: Arc<Queue>,
    id: u64,
    flags: u32,
    head: Option<Response>,
    pieces: Vec<Piece>,
) -> (u32, usize) {
    let total: u64 = pieces
        .iter()
        .map(|p| match p {
            Piece::Mem(b) => b.len() as u64,
            Piece::File(f) => f.len,
        })
        .sum();
    let last = send_flags(flags);
    let more = last | SendFlags::MORE_DATA;
    let mut rest = pieces.into_iter().peekable();
    if let Some(mut resp) = head {
        // A memory piece and then a file range fit in one response.
        if let Some(Piece::Mem(_)) = rest.peek() {
            if let Some(Piece::Mem(b)) = rest.next() {
                resp = resp.body(b);
            }
        }
        if let Some(Piece::File(_)) = rest.peek() {
            if let Some(Piece::File(f)) = rest.next() {
                resp = resp.file(f);
            }
        }
        let done = rest.peek().is_none();
        if !done
            && flags & FLAG_MORE_DATA == 0
            && !resp.headers.contains_key(http::header::CONTENT_LENGTH)
        {
            // Sent in several pieces, still with a Content-Length.
            resp = resp.header("content-length", &total.to_string());
        }
        let r = q
            .queue
            .send_response(id, resp, if done { last } else { more })
            .await;
        if let Err(e) = r {
            return (error_code(&e), 0);
        }
        if done {
            finished(&q, id, flags);
            return (err::NO_ERROR, total as usize);
        }
    } else if rest.peek().is_none() {
        // No chunks: ends (or just continues) the response.
        return match q.queue.send_body(id, Bytes::new(), last).await {
            Ok(()) => {
                finished(&q, id, flags);
                (err::NO_ERROR, 0)
            }
            Err(e) => (error_code(&e), 0),
        };
    }
    while let Some(p) = rest.next() {
        let f = if rest.peek().is_none() { last } else { more };
        let r = match p {
            Piece::Mem(b) => q.queue.send_body(id, b, f).await,
            Piece::File(c) => q.queue.send_file(id, c, f).await,
        };
        if let Err(e) = r {
            return (error_code(&e), 0);
        }
    }
    finished(&q, id, flags);
    (err::NO_ERROR, total as usize)
}

/// A final send: what was kept for the request goes.
fn finished(q: &Queue, id: u64, flags: u32) {
    if flags & FLAG_MORE_DATA == 0 {
        lock(&q.kept).forget(id);
    }
}

unsafe fn run(
    q: Arc<Queue>,
    op: impl std::future::Future<Output = (u32, usize)> + Send + 'static,
    sent: *mut u32,
    ov: *mut OVERLAPPED,
) -> u32 {
    if ov.is_null() {
        let (code, n) = crate::win32::io::block(op);
        if !sent.is_null() {
            // SAFETY: a non-NULL out-pointer of the caller's.
            unsafe { *sent = n as u32 };
        }
        return code;
    }
    // SAFETY: the caller's OVERLAPPED, valid until completion.
    let started = unsafe { q.io.begin(ov) };
    q.io.spawn(started, op);
    err::ERROR_IO_PENDING
}

#[no_mangle]
pub unsafe extern "C" fn HttpSendHttpResponse(
    h: HANDLE,
    id: u64,
    flags: u32,
    response: *const HTTP_RESPONSE_V1,
    _cache: *mut u8,
    sent: *mut u32,
    _r1: *mut u8,
    _r2: u32,
    ov: *mut OVERLAPPED,
    _log: *mut u8,
) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    if response.is_null() {
        return err::ERROR_INVALID_PARAMETER;
    }
    // SAFETY: the caller's HTTP_RESPONSE (V1 is V2's prefix).
    let r = unsafe { &*response };
    // The common case, a response with at most one memory chunk answered
    // on the caller's thread, takes the server's own blocking call.
    let simple = if ov.is_null() {
        // SAFETY: the struct's chunk array, by contract.
        unsafe { one_memory_chunk(r) }
    } else {
        None
    };
    if let Some(body) = simple {
        // SAFETY: the caller's response struct.
        let head = unsafe { head_of(r) };
        let n = body.len();
        return match q
            .queue
            .send_response_blocking(id, head.body(body), send_flags(flags))
        {
            Ok(()) => {
                finished(&q, id, flags);
                if !sent.is_null() {
                    // SAFETY: a non-NULL out-pointer of the caller's.
                    unsafe { *sent = n as u32 };
                }
                err::NO_ERROR
            }
            Err(e) => error_code(&e),
        };
    }
    // SAFETY: the struct's chunk array, by contract.
    let pieces = match unsafe { pieces(r.entity_chunks, r.entity_chunk_count) } {
        Ok(p) => p,
        Err(e) => return e,
    };
    // SAFETY: the caller's response struct.
    let head = unsafe { head_of(r) };
    let op = send_all(q.clone(), id, flags, Some(head), pieces);
    // SAFETY: forwarded out-pointers of the caller's.
    unsafe { run(q, op, sent, ov) }
}

#[no_mangle]
pub unsafe extern "C" fn HttpSendResponseEntityBody(
    h: HANDLE,
    id: u64,
    flags: u32,
    count: u16,
    chunks: *const HTTP_DATA_CHUNK,
    sent: *mut u32,
    _r1: *mut u8,
    _r2: u32,
    ov: *mut OVERLAPPED,
    _log: *mut u8,
) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    // SAFETY: the caller's chunk array of `count` entries.
    let pieces = match unsafe { pieces(chunks, count) } {
        Ok(p) => p,
        Err(e) => return e,
    };
    let op = send_all(q.clone(), id, flags, None, pieces);
    // SAFETY: forwarded out-pointers of the caller's.
    unsafe { run(q, op, sent, ov) }
}
