//! HttpQueryInfo: the response head kept when it arrived, by level,
//! custom name and index, as text or number.

use std::ffi::c_void;

use super::ierr;
use super::request::{request_of, state};
use super::HINTERNET;
use crate::win32::{err, fail, narrow_str, wide_str, BOOL, DWORD, TRUE};

/// Copies a string out with WinInet's length protocol: on success the
/// length without the NUL; when it does not fit, the size needed with it
/// and ERROR_INSUFFICIENT_BUFFER. Lengths are in bytes for both forms.
pub unsafe fn put_string(s: &str, buf: *mut c_void, len: *mut DWORD, wide: bool) -> BOOL {
    let units: Vec<u16>;
    let (src, unit): (*const u8, usize) = if wide {
        units = s.encode_utf16().collect();
        (units.as_ptr() as *const u8, 2)
    } else {
        units = Vec::new();
        let _ = &units;
        (s.as_ptr(), 1)
    };
    let n = if wide {
        s.encode_utf16().count()
    } else {
        s.len()
    };
    let need = ((n + 1) * unit) as DWORD;
    // SAFETY: lpdwBufferLength is non-NULL (checked by callers).
    let have = unsafe { *len };
    if buf.is_null() || have < need {
        // SAFETY: as above.
        unsafe { *len = need };
        return fail(err::ERROR_INSUFFICIENT_BUFFER);
    }
    // SAFETY: the caller's buffer holds `have` >= need bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(src, buf as *mut u8, n * unit);
        std::ptr::write_bytes((buf as *mut u8).add(n * unit), 0, unit);
        *len = (n * unit) as DWORD;
    }
    TRUE
}

/// The header a HTTP_QUERY_* level names.
fn level_name(level: DWORD) -> Option<&'static str> {
    Some(match level {
        1 => "content-type",
        2 => "content-transfer-encoding",
        5 => "content-length",
        6 => "content-language",
        7 => "allow",
        9 => "date",
        10 => "expires",
        11 => "last-modified",
        23 => "connection",
        29 => "content-encoding",
        33 => "location",
        37 => "server",
        42 => "accept-ranges",
        43 => "set-cookie",
        54 => "etag",
        63 => "transfer-encoding",
        _ => return None,
    })
}

unsafe fn query_info(
    h: HINTERNET,
    level: DWORD,
    buf: *mut c_void,
    len: *mut DWORD,
    index: *mut DWORD,
    wide: bool,
) -> BOOL {
    const FLAG_NUMBER: DWORD = 0x2000_0000;
    const FLAG_NUMBER64: DWORD = 0x0800_0000;
    const FLAG_REQUEST_HEADERS: DWORD = 0x8000_0000;
    const CUSTOM: DWORD = 65535;
    let inet = match request_of(h) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let state = state(&inet);
    if len.is_null() || level & FLAG_REQUEST_HEADERS != 0 {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let Some(head) = state.head.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return fail(ierr::INCORRECT_HANDLE_STATE);
    };
    // SAFETY: lpdwIndex is NULL or the caller's DWORD.
    let nth = if index.is_null() {
        0
    } else {
        unsafe { *index }
    } as usize;
    let field = |name: &str| {
        head.fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .nth(nth)
            .map(|(_, v)| v.clone())
    };
    let value = match level & 0x07FF_FFFF {
        18 => Some("HTTP/1.1".to_string()),
        19 => Some(head.status.to_string()),
        20 => Some(head.text.clone()),
        22 => Some(head.raw.clone()),
        21 => Some(head.raw.replace("\r\n", "\0")),
        CUSTOM => {
            // The name is passed in the buffer.
            // SAFETY: a NUL-terminated name in the caller's buffer.
            let name = unsafe {
                if wide {
                    wide_str(buf as *const u16)
                } else {
                    narrow_str(buf as *const std::ffi::c_char)
                }
            };
            match name {
                Some(n) => field(&n),
                None => return fail(err::ERROR_INVALID_PARAMETER),
            }
        }
        l => match level_name(l) {
            Some(n) => field(n),
            None => return fail(12154), // ERROR_HTTP_INVALID_QUERY_REQUEST
        },
    };
    let Some(value) = value else {
        return fail(ierr::HEADER_NOT_FOUND);
    };
    let ok = if level & (FLAG_NUMBER | FLAG_NUMBER64) != 0 {
        let Ok(n) = value.trim().parse::<u64>() else {
            return fail(ierr::HEADER_NOT_FOUND);
        };
        // SAFETY: forwarded out-pointers of the caller's.
        unsafe {
            if level & FLAG_NUMBER64 != 0 {
                super::put_value(n, buf, len)
            } else {
                super::put_value(n as DWORD, buf, len)
            }
        }
    } else {
        // SAFETY: forwarded out-pointers of the caller's.
        unsafe { put_string(&value, buf, len, wide) }
    };
    if ok == TRUE && !index.is_null() {
        // SAFETY: the caller's DWORD.
        unsafe { *index += 1 };
    }
    ok
}

#[no_mangle]
pub unsafe extern "C" fn HttpQueryInfoA(
    h: HINTERNET,
    level: DWORD,
    buf: *mut c_void,
    len: *mut DWORD,
    index: *mut DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { query_info(h, level, buf, len, index, false) }
}

#[no_mangle]
pub unsafe extern "C" fn HttpQueryInfoW(
    h: HINTERNET,
    level: DWORD,
    buf: *mut c_void,
    len: *mut DWORD,
    index: *mut DWORD,
) -> BOOL {
    // SAFETY: forwarded.
    unsafe { query_info(h, level, buf, len, index, true) }
}
