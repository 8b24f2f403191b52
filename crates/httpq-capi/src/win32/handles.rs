//! One process-wide table owns every handle kind, so a request queue handle
//! can go to CreateIoCompletionPort and any handle to CloseHandle.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use super::file::File;
use super::io::{IoTarget, Port};
use super::sync::{Event, Thread};
use super::{err, fail, BOOL, HANDLE, TRUE};

/// A kind of handle defined above this module (request queues, WinInet
/// handles): what the table needs of it.
pub trait Kind: Any + Send + Sync {
    /// Where its overlapped operations complete, if it has any.
    fn io(&self) -> Option<&Arc<IoTarget>>;
    /// CloseHandle: ends what is pending and releases what it holds.
    fn close(&self);
    fn as_any(&self) -> &dyn Any;
}

/// What a handle refers to.
#[derive(Clone)]
pub enum Object {
    Event(Arc<Event>),
    Port(Arc<Port>),
    File(Arc<File>),
    Thread(Arc<Thread>),
    Other(Arc<dyn Kind>),
}

impl Object {
    /// Its overlapped-operation state, for the kinds that have one.
    pub fn io(&self) -> Option<&IoTarget> {
        self.io_arc_ref().map(|a| &**a)
    }

    /// The same, shared (a thread-pool I/O object keeps a weak hold on it).
    pub fn io_arc(&self) -> Option<Arc<IoTarget>> {
        self.io_arc_ref().cloned()
    }

    fn io_arc_ref(&self) -> Option<&Arc<IoTarget>> {
        match self {
            Object::File(f) => Some(&f.io),
            Object::Other(k) => k.io(),
            _ => None,
        }
    }
}

/// Hashes integer ids (handles, request ids) with one multiply: they are
/// unique and not chosen by an attacker, and SipHash was a measurable part
/// of every C call (two table lookups per request).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

/// A map keyed by integer ids.
pub type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

static TABLE: LazyLock<RwLock<IdMap<usize, Object>>> = LazyLock::new(Default::default);
/// Handle values are multiples of 4, as on Windows: the low bits of an
/// event handle in an OVERLAPPED are flags ("no completion packet").
static NEXT: AtomicUsize = AtomicUsize::new(0x1000);

/// Enters `o` in the table and returns its new handle.
pub fn insert(o: Object) -> HANDLE {
    let h = NEXT.fetch_add(4, Ordering::Relaxed);
    TABLE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(h, o);
    h as HANDLE
}

/// The object behind `h` (low flag bits ignored).
pub fn get(h: HANDLE) -> Option<Object> {
    let key = h as usize & !3;
    TABLE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned()
}

/// The `Other` object behind `h`, if it is a `T`.
pub fn get_kind<T: Kind>(h: HANDLE) -> Option<Arc<dyn Kind>> {
    match get(h)? {
        Object::Other(k) if k.as_any().is::<T>() => Some(k),
        _ => None,
    }
}

/// Counts removals: a lookup cached under an older count may be stale.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of handles removed so far (see [`remove`]).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Takes `h` out of the table.
pub fn remove(h: HANDLE) -> Option<Object> {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    TABLE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(h as usize & !3))
}

/// How many handles are open (for leak checks in tests).
pub fn count() -> usize {
    TABLE.read().unwrap_or_else(|e| e.into_inner()).len()
}

#[no_mangle]
pub extern "C" fn CloseHandle(h: HANDLE) -> BOOL {
    match remove(h) {
        None => fail(err::ERROR_INVALID_HANDLE),
        Some(o) => {
            match o {
                Object::Other(k) => k.close(),
                Object::Port(p) => p.close(),
                Object::File(f) => f.io.cancel_all(),
                Object::Event(_) | Object::Thread(_) => {}
            }
            TRUE
        }
    }
}
