//! Files over file descriptors: file handles go into HTTP data chunks and
//! to CloseHandle, so they live in the same table as every other handle.

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::handles::{self, Object};
use super::io::{IoTarget, OVERLAPPED};
use super::{
    err, fail, from_io, narrow_str, set_last_error, wide_str, BOOL, DWORD, HANDLE,
    INVALID_HANDLE_VALUE, TRUE, WCHAR,
};

const GENERIC_READ: DWORD = 0x8000_0000;
const GENERIC_WRITE: DWORD = 0x4000_0000;
const GENERIC_ALL: DWORD = 0x1000_0000;
const CREATE_NEW: DWORD = 1;
const CREATE_ALWAYS: DWORD = 2;
const OPEN_EXISTING: DWORD = 3;
const OPEN_ALWAYS: DWORD = 4;
const TRUNCATE_EXISTING: DWORD = 5;
const FILE_FLAG_DELETE_ON_CLOSE: DWORD = 0x0400_0000;

/// An open file.
pub struct File {
    pub file: Arc<std::fs::File>,
    pub io: Arc<IoTarget>,
    /// Reads and writes without an OVERLAPPED go through one position.
    lock: Mutex<()>,
    delete_on_close: Option<PathBuf>,
}

impl Drop for File {
    fn drop(&mut self) {
        if let Some(p) = &self.delete_on_close {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The file behind `h`.
pub fn file_of(h: HANDLE) -> Option<Arc<File>> {
    match handles::get(h)? {
        Object::File(f) => Some(f),
        _ => None,
    }
}

fn create(path: Option<String>, access: DWORD, disposition: DWORD, flags: DWORD) -> HANDLE {
    let Some(path) = path else {
        fail(err::ERROR_INVALID_PARAMETER);
        return INVALID_HANDLE_VALUE;
    };
    let mut o = OpenOptions::new();
    let write = access & (GENERIC_WRITE | GENERIC_ALL) != 0;
    o.read(access & (GENERIC_READ | GENERIC_ALL) != 0 || !write)
        .write(write);
    match disposition {
        CREATE_NEW => o.create_new(true),
        CREATE_ALWAYS => o.create(true).truncate(true),
        OPEN_EXISTING => &mut o,
        OPEN_ALWAYS => o.create(true),
        TRUNCATE_EXISTING => o.truncate(true),
        _ => {
            fail(err::ERROR_INVALID_PARAMETER);
            return INVALID_HANDLE_VALUE;
        }
    };
    if (disposition == CREATE_ALWAYS || disposition == OPEN_ALWAYS || disposition == CREATE_NEW)
        && !write
    {
        // Creating needs write access on Linux; Windows allows it anyway.
        o.write(true);
    }
    o.mode(0o644);
    let existed = std::path::Path::new(&path).exists();
    match o.open(&path) {
        Err(e) => {
            fail(from_io(&e));
            INVALID_HANDLE_VALUE
        }
        Ok(f) => {
            // Windows reports an existing file replaced or opened this way.
            let replaced = existed && (disposition == CREATE_ALWAYS || disposition == OPEN_ALWAYS);
            set_last_error(if replaced {
                err::ERROR_ALREADY_EXISTS
            } else {
                0
            });
            handles::insert(Object::File(Arc::new(File {
                file: Arc::new(f),
                io: Arc::default(),
                lock: Mutex::new(()),
                delete_on_close: (flags & FILE_FLAG_DELETE_ON_CLOSE != 0).then(|| path.into()),
            })))
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn CreateFileA(
    name: *const std::ffi::c_char,
    access: DWORD,
    _share: DWORD,
    _sa: *mut c_void,
    disposition: DWORD,
    flags: DWORD,
    _template: HANDLE,
) -> HANDLE {
    // SAFETY: lpFileName is a NUL-terminated string by contract.
    create(unsafe { narrow_str(name) }, access, disposition, flags)
}

#[no_mangle]
pub unsafe extern "C" fn CreateFileW(
    name: *const WCHAR,
    access: DWORD,
    _share: DWORD,
    _sa: *mut c_void,
    disposition: DWORD,
    flags: DWORD,
    _template: HANDLE,
) -> HANDLE {
    // SAFETY: lpFileName is a NUL-terminated UTF-16 string by contract.
    create(unsafe { wide_str(name) }, access, disposition, flags)
}

/// Reads or writes `len` bytes at the OVERLAPPED's offset (completing it,
/// with its packet) or at the file position.
unsafe fn transfer(
    h: HANDLE,
    len: usize,
    done: *mut DWORD,
    ov: *mut OVERLAPPED,
    op: &dyn Fn(&std::fs::File, Option<u64>) -> std::io::Result<usize>,
) -> BOOL {
    let Some(f) = file_of(h) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    let _ = len;
    if ov.is_null() {
        let _pos = f.lock.lock().unwrap_or_else(|e| e.into_inner());
        return match op(&f.file, None) {
            Ok(n) => {
                if !done.is_null() {
                    // SAFETY: non-NULL out-pointer.
                    unsafe { *done = n as DWORD };
                }
                set_last_error(0);
                TRUE
            }
            Err(e) => fail(from_io(&e)),
        };
    }
    // SAFETY: a non-NULL OVERLAPPED of the caller's, valid until completion.
    let offset = unsafe { u64::from((*ov).offset_high) << 32 | u64::from((*ov).offset) };
    let n = match op(&f.file, Some(offset)) {
        // A failure at once is only the return value: no event, no packet
        // (Windows queues none for an error status).
        Ok(0) if len > 0 => return fail(err::ERROR_HANDLE_EOF),
        Ok(n) => n,
        Err(e) => return fail(from_io(&e)),
    };
    // Done at once: completed as Windows does, packet included.
    // SAFETY: as above.
    let started = unsafe { f.io.begin(ov) };
    // SAFETY: begun just above.
    unsafe { f.io.complete(started, 0, n) };
    if !done.is_null() {
        // SAFETY: non-NULL out-pointer.
        unsafe { *done = n as DWORD };
    }
    set_last_error(0);
    TRUE
}

#[no_mangle]
pub unsafe extern "C" fn ReadFile(
    h: HANDLE,
    buf: *mut c_void,
    len: DWORD,
    read: *mut DWORD,
    ov: *mut OVERLAPPED,
) -> BOOL {
    if buf.is_null() && len > 0 {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let len = len as usize;
    let buf = super::SendPtr(buf as *mut u8);
    let op = move |f: &std::fs::File, at: Option<u64>| {
        let b = buf;
        if len == 0 {
            return Ok(0);
        }
        // SAFETY: lpBuffer holds nNumberOfBytesToRead (> 0) bytes by contract.
        let slice = unsafe { std::slice::from_raw_parts_mut(b.0, len) };
        match at {
            Some(at) => f.read_at(slice, at),
            None => (&*f).read(slice),
        }
    };
    // SAFETY: forwarded contracts of the caller's pointers.
    unsafe { transfer(h, len, read, ov, &op) }
}

#[no_mangle]
pub unsafe extern "C" fn WriteFile(
    h: HANDLE,
    buf: *const c_void,
    len: DWORD,
    written: *mut DWORD,
    ov: *mut OVERLAPPED,
) -> BOOL {
    if buf.is_null() && len > 0 {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let len = len as usize;
    let buf = super::SendPtr(buf as *mut u8);
    let op = move |f: &std::fs::File, at: Option<u64>| {
        let b = buf;
        if len == 0 {
            return Ok(0);
        }
        // SAFETY: lpBuffer holds nNumberOfBytesToWrite (> 0) bytes by contract.
        let slice = unsafe { std::slice::from_raw_parts(b.0, len) };
        match at {
            Some(at) => f.write_all_at(slice, at).map(|()| len),
            None => (&*f).write_all(slice).map(|()| len),
        }
    };
    // SAFETY: forwarded contracts of the caller's pointers. A write of 0
    // bytes is not an end of file.
    unsafe { transfer(h, 0, written, ov, &op) }
}

fn delete(path: Option<String>) -> BOOL {
    let Some(path) = path else {
        return fail(err::ERROR_INVALID_PARAMETER);
    };
    match std::fs::remove_file(path) {
        Ok(()) => TRUE,
        Err(e) => fail(from_io(&e)),
    }
}

#[no_mangle]
pub unsafe extern "C" fn DeleteFileA(name: *const std::ffi::c_char) -> BOOL {
    // SAFETY: a NUL-terminated string by contract.
    delete(unsafe { narrow_str(name) })
}

#[no_mangle]
pub unsafe extern "C" fn DeleteFileW(name: *const WCHAR) -> BOOL {
    // SAFETY: a NUL-terminated UTF-16 string by contract.
    delete(unsafe { wide_str(name) })
}

#[no_mangle]
pub unsafe extern "C" fn GetFileSizeEx(h: HANDLE, size: *mut i64) -> BOOL {
    let Some(f) = file_of(h) else {
        return fail(err::ERROR_INVALID_HANDLE);
    };
    if size.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    match f.file.metadata() {
        // SAFETY: non-NULL pointer to the caller's LARGE_INTEGER.
        Ok(m) => unsafe {
            *size = m.len() as i64;
            TRUE
        },
        Err(e) => fail(from_io(&e)),
    }
}

/// The temporary directory, ending with '/' (TMPDIR, else /tmp).
fn temp_dir() -> String {
    let mut d = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    if !d.ends_with('/') {
        d.push('/');
    }
    d
}

/// Copies `s` and a NUL into a caller's buffer of `cap` units; the length
/// without the NUL, or the size needed with it when it does not fit.
unsafe fn put<T: Copy + Default>(s: &[T], buf: *mut T, cap: usize) -> DWORD {
    if buf.is_null() || s.len() + 1 > cap {
        return (s.len() + 1) as DWORD;
    }
    // SAFETY: buf holds cap >= len + 1 units.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf, s.len());
        *buf.add(s.len()) = T::default();
    }
    s.len() as DWORD
}

#[no_mangle]
pub unsafe extern "C" fn GetTempPathA(cap: DWORD, buf: *mut u8) -> DWORD {
    // SAFETY: buf holds cap bytes by contract.
    unsafe { put(temp_dir().as_bytes(), buf, cap as usize) }
}

#[no_mangle]
pub unsafe extern "C" fn GetTempPathW(cap: DWORD, buf: *mut WCHAR) -> DWORD {
    let w: Vec<u16> = temp_dir().encode_utf16().collect();
    // SAFETY: buf holds cap units by contract.
    unsafe { put(&w, buf, cap as usize) }
}

/// GetTempFileName: DIR/PREhhhh.TMP; with `unique` 0 a number is chosen
/// and the file created, so the name is reserved.
fn temp_file_name(
    dir: Option<String>,
    prefix: Option<String>,
    unique: u32,
) -> Option<(String, u32)> {
    let mut dir = dir?;
    if dir.is_empty() {
        dir.push('.');
    }
    if !dir.ends_with('/') {
        dir.push('/');
    }
    let prefix: String = prefix.unwrap_or_default().chars().take(3).collect();
    let name = |n: u32| format!("{dir}{prefix}{:X}.TMP", n & 0xFFFF);
    if unique != 0 {
        return Some((name(unique), unique));
    }
    // SAFETY: getpid has no preconditions.
    let seed = (unsafe { libc::getpid() } as u32) ^ super::sync::GetTickCount();
    for i in 0..0x10000u32 {
        let n = ((seed.wrapping_add(i)) & 0xFFFF).max(1);
        let path = name(n);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Some((path, n)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                set_last_error(from_io(&e));
                return None;
            }
        }
    }
    set_last_error(err::ERROR_FILE_EXISTS);
    None
}

const MAX_PATH: usize = 260;

#[no_mangle]
pub unsafe extern "C" fn GetTempFileNameA(
    dir: *const std::ffi::c_char,
    prefix: *const std::ffi::c_char,
    unique: u32,
    out: *mut u8,
) -> u32 {
    // SAFETY: NUL-terminated strings by contract.
    let (dir, prefix) = unsafe { (narrow_str(dir), narrow_str(prefix)) };
    match temp_file_name(dir, prefix, unique) {
        // SAFETY: lpTempFileName holds MAX_PATH characters by contract.
        Some((path, n))
            if unsafe { put(path.as_bytes(), out, MAX_PATH) } as usize == path.len() =>
        {
            n
        }
        Some(_) => {
            set_last_error(err::ERROR_INSUFFICIENT_BUFFER);
            0
        }
        None => 0,
    }
}

#[no_mangle]
pub unsafe extern "C" fn GetTempFileNameW(
    dir: *const WCHAR,
    prefix: *const WCHAR,
    unique: u32,
    out: *mut WCHAR,
) -> u32 {
    // SAFETY: NUL-terminated UTF-16 strings by contract.
    let (dir, prefix) = unsafe { (wide_str(dir), wide_str(prefix)) };
    match temp_file_name(dir, prefix, unique) {
        Some((path, n)) => {
            let w: Vec<u16> = path.encode_utf16().collect();
            // SAFETY: lpTempFileName holds MAX_PATH characters by contract.
            if unsafe { put(&w, out, MAX_PATH) } as usize == w.len() {
                n
            } else {
                set_last_error(err::ERROR_INSUFFICIENT_BUFFER);
                0
            }
        }
        None => 0,
    }
}
