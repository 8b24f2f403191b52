//! The Win32 plumbing C code written for Windows expects: per-thread last
//! error, one process-wide handle table, events, completion ports and
//! OVERLAPPED completion, threads, clocks, and files over descriptors.

pub mod file;
pub mod handles;
pub mod io;
pub mod sync;

use std::cell::Cell;

pub type DWORD = u32;
pub type ULONG = u32;
pub type BOOL = i32;
pub type HANDLE = *mut std::ffi::c_void;
pub type WCHAR = u16;

pub const TRUE: BOOL = 1;
pub const FALSE: BOOL = 0;
pub const INFINITE: DWORD = 0xFFFF_FFFF;
pub const INVALID_HANDLE_VALUE: HANDLE = usize::MAX as HANDLE;

/// The Win32 error codes this library returns (winerror.h values).
pub mod err {
    pub const NO_ERROR: u32 = 0;
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    pub const ERROR_PATH_NOT_FOUND: u32 = 3;
    pub const ERROR_TOO_MANY_OPEN_FILES: u32 = 4;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
    pub const ERROR_SHARING_VIOLATION: u32 = 32;
    pub const ERROR_HANDLE_EOF: u32 = 38;
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    pub const ERROR_FILE_EXISTS: u32 = 80;
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    pub const ERROR_ALREADY_EXISTS: u32 = 183;
    pub const ERROR_MORE_DATA: u32 = 234;
    pub const WAIT_TIMEOUT: u32 = 258;
    pub const ERROR_ABANDONED_WAIT_0: u32 = 735;
    pub const ERROR_OPERATION_ABORTED: u32 = 995;
    pub const ERROR_IO_INCOMPLETE: u32 = 996;
    pub const ERROR_IO_PENDING: u32 = 997;
    pub const ERROR_NOT_FOUND: u32 = 1168;
    pub const ERROR_CONNECTION_INVALID: u32 = 1229;
    pub const ERROR_REVISION_MISMATCH: u32 = 1306;
}

thread_local! {
    static LAST_ERROR: Cell<DWORD> = const { Cell::new(0) };
}

/// Sets this thread's last error (what `GetLastError` returns).
pub fn set_last_error(code: DWORD) {
    LAST_ERROR.with(|e| e.set(code));
}

/// Sets the last error and returns FALSE: the usual failing BOOL return.
pub fn fail(code: DWORD) -> BOOL {
    set_last_error(code);
    FALSE
}

#[no_mangle]
pub extern "C" fn GetLastError() -> DWORD {
    LAST_ERROR.with(|e| e.get())
}

#[no_mangle]
pub extern "C" fn SetLastError(code: DWORD) {
    set_last_error(code)
}

/// An errno as the Win32 error a Windows call would have given.
pub fn from_errno(e: i32) -> DWORD {
    match e {
        libc::ENOENT => err::ERROR_FILE_NOT_FOUND,
        libc::ENOTDIR => err::ERROR_PATH_NOT_FOUND,
        libc::EACCES | libc::EPERM | libc::EROFS => err::ERROR_ACCESS_DENIED,
        libc::EEXIST => err::ERROR_FILE_EXISTS,
        libc::EMFILE | libc::ENFILE => err::ERROR_TOO_MANY_OPEN_FILES,
        libc::ENOMEM => err::ERROR_NOT_ENOUGH_MEMORY,
        libc::EBADF => err::ERROR_INVALID_HANDLE,
        _ => err::ERROR_INVALID_PARAMETER,
    }
}

/// An io::Error as a Win32 error code.
pub fn from_io(e: &std::io::Error) -> DWORD {
    e.raw_os_error()
        .map_or(err::ERROR_INVALID_PARAMETER, from_errno)
}

/// A NUL-terminated UTF-16 string from C; `None` for NULL or bad UTF-16.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated array of u16.
pub unsafe fn wide_str(p: *const WCHAR) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut n = 0;
    // SAFETY: the caller promises a terminating NUL within the array.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the n elements before the NUL were just read.
    String::from_utf16(unsafe { std::slice::from_raw_parts(p, n) }).ok()
}

/// A NUL-terminated byte string from C; `None` for NULL or bad UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated C string.
pub unsafe fn narrow_str(p: *const std::ffi::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// A raw pointer that crosses to another thread: the C caller owns the
/// memory and Win32's contract keeps it alive until the operation completes.
#[derive(Clone, Copy, Debug)]
pub struct SendPtr<T>(pub *mut T);
// SAFETY: only the address travels; the operation's contract (the caller
// keeps the buffer and OVERLAPPED alive until completion) makes its use sound.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; shared only to be copied out.
unsafe impl<T> Sync for SendPtr<T> {}
