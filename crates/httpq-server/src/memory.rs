//! Giving memory back to the system after a crowd of connections leaves.
//! Owns the one thread per process that asks malloc to release free pages.
//!
//! A connection's buffers are freed when it ends, but glibc's malloc keeps
//! freed memory in its arenas, and fragmentation stops it from returning
//! any by itself: after a thousand slow clients left, the server's RSS
//! stayed at its peak. Once a second this thread looks at how much free
//! memory the arenas hold (`mallinfo2`) and, when it grew by more than
//! [`TRIM_STEP`] since the last look, calls `malloc_trim(0)`, which hands
//! the free pages back (`madvise`) without moving anything. It costs one
//! wake-up a second and nothing on the request path. Other allocators
//! (and other C libraries) return memory their own way; there it is off.

/// Growth of free arena memory, in bytes, that is worth a trim.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_STEP: usize = 2 << 20;

/// Starts the trimming thread, once per process.
pub(crate) fn start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            // Without the thread memory is merely kept, as before.
            let _ = std::thread::Builder::new()
                .name("httpq-memory".into())
                .spawn(|| {
                    let mut trimmed_at = free_in_arenas();
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        trimmed_at = trim_if_grown(trimmed_at);
                    }
                });
        });
    }
}

/// Trims when free arena memory grew by [`TRIM_STEP`] since `last`;
/// returns the new reference level.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_if_grown(last: usize) -> usize {
    let free = free_in_arenas();
    if free > last.saturating_add(TRIM_STEP) {
        // SAFETY: malloc_trim only releases pages of free chunks; it is
        // thread-safe (it takes each arena's lock) and has no preconditions.
        unsafe { libc::malloc_trim(0) };
        // Trimmed chunks still count as free, so this level is the new
        // reference: only new growth triggers the next trim.
        free_in_arenas()
    } else {
        // Free memory that was reused lowers the reference.
        free.min(last)
    }
}

/// Bytes in free chunks across all of malloc's arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_in_arenas() -> usize {
    // SAFETY: mallinfo2 only reads malloc's statistics (under each arena's
    // lock) and returns them by value.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Freed memory shows up as free arena memory and triggers a trim.
    #[test]
    fn a_trim_follows_growth_of_free_memory_only() {
        let before = free_in_arenas();
        // Many small blocks, every other one kept, so the freed ones are
        // fragments malloc cannot return by itself.
        let mut blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 4000]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter().step_by(2).cloned().collect();
        blocks.clear();
        blocks.shrink_to_fit();
        let grown = free_in_arenas();
        assert!(grown > before + TRIM_STEP, "free {before} -> {grown}");
        let level = trim_if_grown(before);
        assert!(
            level >= TRIM_STEP,
            "the trim's level is the arenas' free memory"
        );
        drop(kept);
    }
}
