//! HttpWaitForDisconnect(Ex), HttpCancelHttpRequest and
//! HttpShutdownRequestQueue: the seed's wait, blocking or OVERLAPPED.

use super::{error_code, queue_of};
use crate::win32::io::OVERLAPPED;
use crate::win32::{err, HANDLE};

#[no_mangle]
pub unsafe extern "C" fn HttpWaitForDisconnect(
    h: HANDLE,
    connection: u64,
    ov: *mut OVERLAPPED,
) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    if ov.is_null() {
        return match q.queue.wait_for_disconnect_blocking(connection) {
            Ok(_) => err::NO_ERROR,
            Err(e) => error_code(&e),
        };
    }
    // SAFETY: the caller's OVERLAPPED, valid until completion.
    let op = unsafe { q.io.begin(ov) };
    let qq = q.clone();
    q.io.spawn(op, async move {
        match qq.queue.wait_for_disconnect(connection).await {
            Ok(_) => (err::NO_ERROR, 0),
            Err(e) => (error_code(&e), 0),
        }
    });
    err::ERROR_IO_PENDING
}

#[no_mangle]
pub unsafe extern "C" fn HttpWaitForDisconnectEx(
    h: HANDLE,
    connection: u64,
    _reserved: u32,
    ov: *mut OVERLAPPED,
) -> u32 {
    // SAFETY: forwarded.
    unsafe { HttpWaitForDisconnect(h, connection, ov) }
}

#[no_mangle]
pub unsafe extern "C" fn HttpCancelHttpRequest(h: HANDLE, id: u64, ov: *mut OVERLAPPED) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    let code = match q.queue.cancel_request(id) {
        Ok(()) => err::NO_ERROR,
        Err(e) => error_code(&e),
    };
    if !ov.is_null() && code == err::NO_ERROR {
        // Done at once; the packet is still posted, as Windows does.
        // SAFETY: the caller's OVERLAPPED.
        let op = unsafe { q.io.begin(ov) };
        // SAFETY: begun just above.
        unsafe { q.io.complete(op, code, 0) };
    }
    code
}

#[no_mangle]
pub extern "C" fn HttpShutdownRequestQueue(h: HANDLE) -> u32 {
    let Some(q) = queue_of(h) else {
        return err::ERROR_INVALID_HANDLE;
    };
    q.queue.shutdown();
    err::NO_ERROR
}
