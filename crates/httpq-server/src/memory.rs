//! Giving memory back to the system after a crowd of connections leaves.
//! Owns the one thread per process that asks malloc to release free pages.
//!
//! A connection's buffers are freed when it ends, but glibc's malloc keeps
//! freed memory in its arenas, and fragmentation stops it from returning
//! any by itself: after a thousand slow clients left, the server's RSS
//! stayed at its peak. Once a second this thread reads how much free
//! memory the arenas hold (`mallinfo2`); when that grew by [`TRIM_STEP`]
//! and held for two looks in a row (a crowd has gone, not a load that
//! comes and goes), it calls `malloc_trim(0)`, which hands the free pages
//! back (`madvise`) without moving anything — at most once every
//! [`MIN_GAP`]. Both calls take each arena's lock briefly, so a worker
//! allocating at that moment waits microseconds, a few times a minute at
//! most. Without glibc 2.33 (no `mallinfo2`), or with
//! [`Properties::return_memory`](crate::Properties::return_memory) off in
//! the first session, no thread is started.

use std::time::{Duration, Instant};

/// Growth of free arena memory, in bytes, that is worth a trim.
const TRIM_STEP: usize = 2 << 20;

/// The shortest time between two trims.
const MIN_GAP: Duration = Duration::from_secs(10);

/// When to trim, from successive readings of free arena memory.
#[derive(Debug)]
struct Trimmer {
    /// Free memory after the last trim (or the lowest seen since).
    reference: usize,
    /// The previous reading was already `TRIM_STEP` above the reference.
    grown_once: bool,
    last_trim: Option<Instant>,
}

impl Trimmer {
    fn new(free: usize) -> Trimmer {
        Trimmer {
            reference: free,
            grown_once: false,
            last_trim: None,
        }
    }

    /// Takes a reading; true when it is time to trim.
    fn look(&mut self, free: usize, now: Instant) -> bool {
        if free <= self.reference.saturating_add(TRIM_STEP) {
            // Freed memory was reused (or little was freed).
            self.reference = self.reference.min(free);
            self.grown_once = false;
            return false;
        }
        let held = std::mem::replace(&mut self.grown_once, true);
        held && self
            .last_trim
            .is_none_or(|t| now.duration_since(t) >= MIN_GAP)
    }

    /// After a trim: trimmed chunks still count as free, so the level read
    /// now is the new reference, and only new growth triggers the next.
    fn trimmed(&mut self, free: usize, now: Instant) {
        self.reference = free;
        self.grown_once = false;
        self.last_trim = Some(now);
    }
}

/// Starts the trimming thread, once per process, if `enabled` (the first
/// session decides).
pub(crate) fn start(enabled: bool) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        if !enabled {
            return;
        }
        let Some(glibc) = Glibc::find() else { return };
        // Without the thread memory is merely kept, as before.
        let _ = std::thread::Builder::new()
            .name("httpq-memory".into())
            .spawn(move || {
                let mut trimmer = Trimmer::new(glibc.free_in_arenas());
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let now = Instant::now();
                    if trimmer.look(glibc.free_in_arenas(), now) {
                        glibc.trim();
                        trimmer.trimmed(glibc.free_in_arenas(), now);
                    }
                }
            });
    });
}

/// glibc's malloc statistics and trim, found at run time: `mallinfo2`
/// only exists since glibc 2.33, and linking it would stop the program
/// from building (or starting) with an older one.
#[derive(Clone, Copy)]
struct Glibc {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    mallinfo2: unsafe extern "C" fn() -> libc::mallinfo2,
}

impl Glibc {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn find() -> Option<Glibc> {
        // SAFETY: dlsym with RTLD_DEFAULT (a null handle on glibc) only
        // looks a name up among the loaded objects; the name is a valid C
        // string.
        let sym = unsafe { libc::dlsym(std::ptr::null_mut(), c"mallinfo2".as_ptr()) };
        if sym.is_null() {
            return None;
        }
        // SAFETY: glibc's mallinfo2 has exactly this signature (no
        // arguments, `struct mallinfo2` by value), which libc::mallinfo2
        // mirrors; a non-null symbol of that name is that function.
        let mallinfo2 = unsafe {
            std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn() -> libc::mallinfo2>(sym)
        };
        Some(Glibc { mallinfo2 })
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    fn find() -> Option<Glibc> {
        None
    }

    /// Bytes in free chunks across all of malloc's arenas.
    fn free_in_arenas(self) -> usize {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallinfo2 only reads malloc's statistics (under each
            // arena's lock) and returns them by value.
            unsafe { (self.mallinfo2)() }.fordblks
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        0
    }

    fn trim(self) {
        // SAFETY: malloc_trim only releases pages of free chunks; it is
        // thread-safe (it takes each arena's lock) and has no preconditions.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn growth_that_holds_for_two_looks_is_trimmed() {
        let t0 = Instant::now();
        let mut t = Trimmer::new(10 * MIB);
        assert!(!t.look(11 * MIB, t0), "less than the step");
        assert!(!t.look(20 * MIB, t0), "first look above the step");
        assert!(t.look(20 * MIB, t0), "second look: trim");
        t.trimmed(20 * MIB, t0);
        assert!(!t.look(20 * MIB, t0), "no new growth");
    }

    #[test]
    fn a_swing_that_does_not_hold_is_not_trimmed() {
        let t0 = Instant::now();
        let mut t = Trimmer::new(10 * MIB);
        for _ in 0..10 {
            assert!(!t.look(20 * MIB, t0));
            assert!(!t.look(10 * MIB, t0));
        }
    }

    #[test]
    fn trims_are_min_gap_apart() {
        let t0 = Instant::now();
        let mut t = Trimmer::new(10 * MIB);
        t.look(20 * MIB, t0);
        assert!(t.look(20 * MIB, t0));
        t.trimmed(20 * MIB, t0);
        t.look(30 * MIB, t0);
        assert!(!t.look(30 * MIB, t0 + Duration::from_secs(1)), "too soon");
        assert!(t.look(30 * MIB, t0 + MIN_GAP), "after the gap");
    }

    /// Reused memory lowers the reference: growth counts from there.
    #[test]
    fn the_reference_follows_reuse_down() {
        let t0 = Instant::now();
        let mut t = Trimmer::new(10 * MIB);
        assert!(!t.look(MIB, t0));
        t.look(4 * MIB, t0);
        assert!(t.look(4 * MIB, t0));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_reports_freed_memory() {
        let glibc = Glibc::find().expect("mallinfo2 (glibc 2.33 or later)");
        let before = glibc.free_in_arenas();
        let big: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 8000]).collect();
        let _pin = Box::new([1u8; 100]); // keeps the freed blocks off the top
        drop(big);
        assert!(glibc.free_in_arenas() > before + 4 * MIB);
        glibc.trim();
    }
}
