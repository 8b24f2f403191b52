//! Name resolution: the [`Resolver`] a session looks host names up with,
//! and the system's: getaddrinfo on a bounded set of blocking threads.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// Resolves host names. The default asks the system (getaddrinfo on a
/// blocking thread); tests and embedders may supply their own.
pub trait Resolver: Send + Sync {
    /// The addresses of `host` with `port` filled in.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;
}

/// Lookups the system resolver runs at once, in the whole process.
const LOOKUP_THREADS: usize = 8;

/// The system resolver. getaddrinfo cannot be cancelled: a lookup that is
/// abandoned (its handle closed, its resolve timeout fired) returns at
/// once, and the lookup itself finishes on its thread. So that stuck
/// lookups (an unreachable DNS server) cannot pile up threads, at most 8
/// run at once in the process; further lookups wait for one of them,
/// under their own timeouts.
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        static POOL: OnceLock<LookupPool> = OnceLock::new();
        let target = format!("{host}:{port}");
        let pool = POOL.get_or_init(|| LookupPool::new(LOOKUP_THREADS));
        Box::pin(pool.run(move || Ok(target.to_socket_addrs()?.collect())))
    }
}

/// Blocking lookups, at most so many at once.
pub(crate) struct LookupPool {
    slots: Arc<Semaphore>,
}

impl LookupPool {
    pub(crate) fn new(threads: usize) -> LookupPool {
        LookupPool {
            slots: Arc::new(Semaphore::new(threads)),
        }
    }

    /// Runs `lookup` on a blocking thread once a slot is free. Dropping the
    /// returned future abandons the lookup, not the slot: that goes back
    /// when the lookup returns.
    pub(crate) fn run(
        &self,
        lookup: impl FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        let slots = self.slots.clone();
        async move {
            let slot = slots
                .acquire_owned()
                .await
                .map_err(|_| io::Error::other("lookup pool closed"))?;
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                lookup()
            })
            .await
            .map_err(|_| io::Error::other("lookup thread failed"))?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// Lookups that never return, abandoned by their timeouts: no more
    /// than the pool's threads are ever stuck in them, and they all end
    /// when the lookups do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_stuck_lookups_hold_at_most_the_pools_threads() {
        let pool = LookupPool::new(2);
        let stuck = Arc::new((Mutex::new(false), Condvar::new()));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let (stuck, inside, most) = (stuck.clone(), inside.clone(), most.clone());
            let lookup = pool.run(move || {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let (lock, cv) = &*stuck;
                let mut released = lock.lock().unwrap();
                while !*released {
                    released = cv.wait(released).unwrap();
                }
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(Vec::new())
            });
            // The caller gives up, as a resolve timeout would.
            let r = tokio::time::timeout(Duration::from_millis(20), lookup).await;
            assert!(r.is_err(), "a stuck lookup is abandoned");
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "two threads, however many lookups"
        );
        assert_eq!(inside.load(Ordering::SeqCst), 2);
        *stuck.0.lock().unwrap() = true;
        stuck.1.notify_all();
        // The pool is whole again: two new lookups run at once, side by
        // side — so both threads have left their stuck lookups (a thread
        // takes a new job only after its last one returned).
        let both = Arc::new(std::sync::Barrier::new(2));
        let (b1, b2) = (both.clone(), both);
        let a = pool.run(move || {
            b1.wait();
            Ok(Vec::new())
        });
        let b = pool.run(move || {
            b2.wait();
            Ok(Vec::new())
        });
        let ok = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(a, b) }).await;
        assert!(matches!(ok, Ok((Ok(x), Ok(y))) if x.is_empty() && y.is_empty()));
        assert_eq!(inside.load(Ordering::SeqCst), 0);
    }
}
