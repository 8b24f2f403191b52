//! Events, thread handles, waits and clocks.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::handles::{self, Object};
use super::{err, fail, set_last_error, SendPtr, BOOL, DWORD, FALSE, HANDLE, INFINITE, TRUE};

const WAIT_OBJECT_0: DWORD = 0;
const WAIT_FAILED: DWORD = 0xFFFF_FFFF;

/// A Win32 event: manual-reset stays set until reset; auto-reset releases
/// one waiter and resets itself.
pub struct Event {
    set: Mutex<bool>,
    cv: Condvar,
    manual: bool,
}

impl Event {
    pub fn new(manual: bool, initial: bool) -> Event {
        Event {
            set: Mutex::new(initial),
            cv: Condvar::new(),
            manual,
        }
    }

    pub fn set(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        if self.manual {
            self.cv.notify_all();
        } else {
            self.cv.notify_one();
        }
    }

    pub fn reset(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    /// Waits until set or `timeout` passes (None: forever); true if set.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        while !*set {
            match deadline {
                None => set = self.cv.wait(set).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    set = self
                        .cv
                        .wait_timeout(set, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        if !self.manual {
            *set = false;
        }
        true
    }
}

/// A thread started with CreateThread: its handle is signalled when it ends.
pub struct Thread {
    done: Event,
}

/// INFINITE as no timeout, anything else as milliseconds.
pub fn timeout_of(ms: DWORD) -> Option<Duration> {
    (ms != INFINITE).then(|| Duration::from_millis(u64::from(ms)))
}

/// The event an OVERLAPPED's hEvent names (its low bit is a flag).
pub fn event_of(h: HANDLE) -> Option<Arc<Event>> {
    if h.is_null() {
        return None;
    }
    match handles::get(h)? {
        Object::Event(e) => Some(e),
        _ => None,
    }
}

fn create_event(manual: BOOL, initial: BOOL) -> HANDLE {
    set_last_error(0);
    handles::insert(Object::Event(Arc::new(Event::new(
        manual != 0,
        initial != 0,
    ))))
}

#[no_mangle]
pub extern "C" fn CreateEventA(
    _sa: *mut std::ffi::c_void,
    manual: BOOL,
    initial: BOOL,
    _name: *const std::ffi::c_char,
) -> HANDLE {
    create_event(manual, initial)
}

#[no_mangle]
pub extern "C" fn CreateEventW(
    _sa: *mut std::ffi::c_void,
    manual: BOOL,
    initial: BOOL,
    _name: *const u16,
) -> HANDLE {
    create_event(manual, initial)
}

#[no_mangle]
pub extern "C" fn SetEvent(h: HANDLE) -> BOOL {
    match event_of(h) {
        Some(e) => {
            e.set();
            TRUE
        }
        None => fail(err::ERROR_INVALID_HANDLE),
    }
}

#[no_mangle]
pub extern "C" fn ResetEvent(h: HANDLE) -> BOOL {
    match event_of(h) {
        Some(e) => {
            e.reset();
            TRUE
        }
        None => fail(err::ERROR_INVALID_HANDLE),
    }
}

#[no_mangle]
pub extern "C" fn WaitForSingleObject(h: HANDLE, ms: DWORD) -> DWORD {
    let event = match handles::get(h) {
        Some(Object::Event(e)) => e,
        Some(Object::Thread(t)) => {
            return match t.done.wait(timeout_of(ms)) {
                true => WAIT_OBJECT_0, // manual-reset: a thread stays ended
                false => err::WAIT_TIMEOUT,
            };
        }
        _ => {
            set_last_error(err::ERROR_INVALID_HANDLE);
            return WAIT_FAILED;
        }
    };
    match event.wait(timeout_of(ms)) {
        true => WAIT_OBJECT_0,
        false => err::WAIT_TIMEOUT,
    }
}

type StartRoutine = extern "C" fn(*mut std::ffi::c_void) -> DWORD;

#[no_mangle]
pub unsafe extern "C" fn CreateThread(
    _sa: *mut std::ffi::c_void,
    stack: usize,
    start: Option<StartRoutine>,
    param: *mut std::ffi::c_void,
    flags: DWORD,
    thread_id: *mut DWORD,
) -> HANDLE {
    const CREATE_SUSPENDED: DWORD = 4;
    let Some(start) = start else {
        fail(err::ERROR_INVALID_PARAMETER);
        return std::ptr::null_mut();
    };
    if flags & CREATE_SUSPENDED != 0 {
        fail(err::ERROR_NOT_SUPPORTED);
        return std::ptr::null_mut();
    }
    let thread = Arc::new(Thread {
        done: Event::new(true, false),
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let param = SendPtr(param);
    let mine = thread.clone();
    let mut builder = std::thread::Builder::new().name("win32-thread".into());
    if stack != 0 {
        builder = builder.stack_size(stack.max(64 << 10));
    }
    let spawned = builder.spawn(move || {
        let _ = tx.send(GetCurrentThreadId());
        let param = param;
        start(param.0);
        mine.done.set();
    });
    if spawned.is_err() {
        fail(err::ERROR_NOT_ENOUGH_MEMORY);
        return std::ptr::null_mut();
    }
    let tid = rx.recv().unwrap_or(0);
    if !thread_id.is_null() {
        // SAFETY: a non-NULL lpThreadId points to a DWORD the caller owns.
        unsafe { *thread_id = tid };
    }
    handles::insert(Object::Thread(thread))
}

/// The current process's pseudo-handle, as Windows' (-1).
#[no_mangle]
pub extern "C" fn GetCurrentProcess() -> HANDLE {
    usize::MAX as HANDLE
}

/// The CPUs this process may run on, as a bit mask (the first 64).
#[no_mangle]
pub unsafe extern "C" fn GetProcessAffinityMask(
    _process: HANDLE,
    process_mask: *mut usize,
    system_mask: *mut usize,
) -> BOOL {
    if process_mask.is_null() || system_mask.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid cpu_set_t of the size given.
    let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } == 0;
    let mut mask = 0usize;
    for cpu in 0..usize::BITS as usize {
        // SAFETY: reading a bit of the set just filled.
        if ok && unsafe { libc::CPU_ISSET(cpu, &set) } {
            mask |= 1 << cpu;
        }
    }
    let all = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(64);
    let system = if all == 64 {
        usize::MAX
    } else {
        (1usize << all) - 1
    };
    // SAFETY: checked non-NULL.
    unsafe {
        *process_mask = if mask == 0 { system } else { mask };
        *system_mask = system;
    }
    TRUE
}

#[no_mangle]
pub extern "C" fn GetCurrentThreadId() -> DWORD {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as DWORD }
}

#[no_mangle]
pub extern "C" fn Sleep(ms: DWORD) {
    match timeout_of(ms) {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::park();
        },
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[no_mangle]
pub extern "C" fn GetTickCount() -> DWORD {
    (monotonic_ns() / 1_000_000) as DWORD
}

#[no_mangle]
pub extern "C" fn GetTickCount64() -> u64 {
    monotonic_ns() / 1_000_000
}

#[no_mangle]
pub unsafe extern "C" fn QueryPerformanceCounter(count: *mut i64) -> BOOL {
    if count.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: a non-NULL pointer to the caller's LARGE_INTEGER.
    unsafe { *count = monotonic_ns() as i64 };
    TRUE
}

#[no_mangle]
pub unsafe extern "C" fn QueryPerformanceFrequency(freq: *mut i64) -> BOOL {
    if freq.is_null() {
        return FALSE;
    }
    // SAFETY: a non-NULL pointer to the caller's LARGE_INTEGER.
    unsafe { *freq = 1_000_000_000 };
    TRUE
}

/// The process heap's handle: a constant (the heap is malloc's).
const PROCESS_HEAP: usize = 0x0F00_0000;
const HEAP_ZERO_MEMORY: DWORD = 8;

#[no_mangle]
pub extern "C" fn GetProcessHeap() -> HANDLE {
    PROCESS_HEAP as HANDLE
}

#[no_mangle]
pub extern "C" fn HeapAlloc(_heap: HANDLE, flags: DWORD, size: usize) -> *mut std::ffi::c_void {
    // SAFETY: malloc/calloc have no preconditions; NULL is the failure Win32 reports too.
    let p = unsafe {
        if flags & HEAP_ZERO_MEMORY != 0 {
            libc::calloc(1, size.max(1))
        } else {
            libc::malloc(size.max(1))
        }
    };
    if p.is_null() {
        set_last_error(err::ERROR_NOT_ENOUGH_MEMORY);
    }
    p
}

#[no_mangle]
pub unsafe extern "C" fn HeapReAlloc(
    _heap: HANDLE,
    _flags: DWORD,
    mem: *mut std::ffi::c_void,
    size: usize,
) -> *mut std::ffi::c_void {
    // SAFETY: `mem` came from HeapAlloc (malloc), by contract.
    let p = unsafe { libc::realloc(mem, size.max(1)) };
    if p.is_null() {
        set_last_error(err::ERROR_NOT_ENOUGH_MEMORY);
    }
    p
}

#[no_mangle]
pub unsafe extern "C" fn HeapFree(
    _heap: HANDLE,
    _flags: DWORD,
    mem: *mut std::ffi::c_void,
) -> BOOL {
    // SAFETY: `mem` came from HeapAlloc/HeapReAlloc (malloc), or is NULL.
    unsafe { libc::free(mem) };
    TRUE
}
