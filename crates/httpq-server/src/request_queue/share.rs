//! A request queue's shares: one per worker. A worker's connections queue
//! their requests in its share, and a consumer running on that worker
//! takes from it first — no lock or wake shared with other workers on the
//! common path. A consumer whose share is empty takes from the others
//! (stealing), and a push with no consumer of its own worker asleep wakes
//! one asleep elsewhere, so no request waits while a consumer is idle.
//!
//! Each share is a FIFO and a connection always queues in the same one, so
//! a connection's requests are taken in order wherever they are taken.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;

use super::request::Request;

thread_local! {
    /// The worker index of this thread, for a worker thread (`usize::MAX`: none).
    static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Where a consumer with no home starts looking, so roaming consumers
    /// spread over the shares.
    static ROAM: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as worker `index`: its consumers take from share
/// `index` first, and its connections queue there.
pub(crate) fn set_home(index: usize) {
    HOME.with(|h| h.set(index));
}

/// The share this thread's requests go to and its consumers take from first.
pub(crate) fn home(n: usize) -> Option<usize> {
    let h = HOME.with(Cell::get);
    (h != usize::MAX).then(|| h % n)
}

/// Shares per queue: one per core (workers beyond that share round-robin).
pub(crate) fn share_count() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// One worker's part of a queue, on cache lines of its own.
#[repr(align(128))]
struct Share {
    items: Mutex<VecDeque<Request>>,
    /// `items.len()`, readable without the lock (stealers skip empty shares).
    len: AtomicUsize,
    /// Consumers of this share's worker asleep on `notify`.
    waiting: AtomicUsize,
    notify: Notify,
}

/// All shares of one queue, and the waits of consumers with no share.
pub(crate) struct Shares {
    shares: Box<[Share]>,
    /// Requests in all shares (the queue's length and its limit).
    total: AtomicUsize,
    /// Consumers asleep anywhere (so a push with none asleep wakes nobody).
    sleepers: AtomicUsize,
    /// Consumers on threads that are not workers, asleep on `roaming`.
    roaming_waiting: AtomicUsize,
    roaming: Notify,
}

/// A consumer counted asleep; uncounted when it wakes or its receive is dropped.
pub(crate) struct Asleep<'a> {
    shares: &'a Shares,
    home: Option<usize>,
}

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.shares
            .counter(self.home)
            .fetch_sub(1, Ordering::SeqCst);
        self.shares.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shares {
    pub(crate) fn new() -> Shares {
        Shares {
            shares: (0..share_count())
                .map(|_| Share {
                    items: Mutex::new(VecDeque::new()),
                    len: AtomicUsize::new(0),
                    waiting: AtomicUsize::new(0),
                    notify: Notify::new(),
                })
                .collect(),
            total: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            roaming_waiting: AtomicUsize::new(0),
            roaming: Notify::new(),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.shares.len()
    }

    /// Consumers asleep in `receive` now, on any share or none.
    pub(crate) fn consumers(&self) -> usize {
        self.sleepers.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        // SeqCst: the sweeper parks on what this says (after marking itself
        // parked, which a push reads).
        self.total.load(Ordering::SeqCst)
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, VecDeque<Request>> {
        self.shares[i]
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn counter(&self, home: Option<usize>) -> &AtomicUsize {
        match home {
            Some(h) => &self.shares[h].waiting,
            None => &self.roaming_waiting,
        }
    }

    /// Where a consumer with `home` sleeps.
    pub(crate) fn notify(&self, home: Option<usize>) -> &Notify {
        match home {
            Some(h) => &self.shares[h].notify,
            None => &self.roaming,
        }
    }

    /// Counts a consumer asleep (after its wait is enabled): a push from
    /// now on either is seen by the look the consumer takes next, or sees
    /// the count and wakes it.
    pub(crate) fn sleep(&self, home: Option<usize>) -> Asleep<'_> {
        self.counter(home).fetch_add(1, Ordering::SeqCst);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Asleep { shares: self, home }
    }

    /// Queues `batch` in share `share`, in order, as far as the queue's
    /// `limit` allows; the rest stay in `batch` (a suffix), refused. False
    /// when the queue is shut down (`shut`): then nothing is queued. The
    /// flag is read under the share's lock, which the shutdown's drain
    /// takes after setting it: a push either is drained or sees the flag.
    pub(crate) fn push(
        &self,
        share: usize,
        batch: &mut Vec<Request>,
        limit: usize,
        shut: &AtomicBool,
    ) -> bool {
        let n = batch.len();
        // Room is reserved first, so the limit holds across shares.
        let before = self.total.fetch_add(n, Ordering::SeqCst);
        let fits = limit.saturating_sub(before).min(n);
        if fits < n {
            self.total.fetch_sub(n - fits, Ordering::SeqCst);
        }
        if fits == 0 {
            return !shut.load(Ordering::SeqCst);
        }
        let s = &self.shares[share];
        {
            let mut items = self.lock(share);
            if shut.load(Ordering::SeqCst) {
                drop(items);
                self.total.fetch_sub(fits, Ordering::SeqCst);
                return false;
            }
            items.extend(batch.drain(..fits));
            s.len.store(items.len(), Ordering::Release);
        }
        fence(Ordering::SeqCst);
        // One consumer is woken, its worker's first; whoever takes a
        // request wakes another while requests remain (see `take`).
        if s.waiting.load(Ordering::SeqCst) > 0 {
            s.notify.notify_one();
        } else if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.wake_one(share);
        }
        true
    }

    /// Wakes one sleeping consumer: of share `prefer` if it has one, else
    /// of another share, else one with no share.
    fn wake_one(&self, prefer: usize) {
        let n = self.shares.len();
        for j in (0..n).map(|i| (prefer + i) % n) {
            let s = &self.shares[j];
            if s.waiting.load(Ordering::SeqCst) > 0 {
                s.notify.notify_one();
                return;
            }
        }
        if self.roaming_waiting.load(Ordering::SeqCst) > 0 {
            self.roaming.notify_one();
        }
    }

    /// The next request for a consumer at `home`: its own share first,
    /// then the others. A consumer that takes one while more wait wakes
    /// another: a wake can reach a consumer already woken (its count still
    /// shows it asleep), and then it is this chain that keeps no request
    /// waiting while a consumer sleeps.
    pub(crate) fn take(&self, home: Option<usize>) -> Option<Request> {
        let (r, from) = self.take_any(home)?;
        if self.total.load(Ordering::SeqCst) > 0 && self.sleepers.load(Ordering::SeqCst) > 0 {
            self.wake_one(from);
        }
        Some(r)
    }

    fn take_any(&self, home: Option<usize>) -> Option<(Request, usize)> {
        if let Some(h) = home {
            if let Some(r) = self.pop(h) {
                return Some((r, h));
            }
        }
        if self.total.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let n = self.shares.len();
        let start = match home {
            Some(h) => h + 1,
            None => ROAM.with(|r| {
                let v = r.get();
                r.set(v.wrapping_add(1));
                v
            }),
        };
        (0..n)
            .map(|i| (start + i) % n)
            .filter(|&j| Some(j) != home && self.shares[j].len.load(Ordering::Acquire) > 0)
            .find_map(|j| self.pop(j).map(|r| (r, j)))
    }

    fn pop(&self, j: usize) -> Option<Request> {
        let s = &self.shares[j];
        if s.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let r = {
            let mut items = self.lock(j);
            let r = items.pop_front()?;
            s.len.store(items.len(), Ordering::Release);
            r
        };
        self.total.fetch_sub(1, Ordering::SeqCst);
        Some(r)
    }

    /// Takes every request out (the queue shuts down).
    pub(crate) fn drain(&self) -> Vec<Request> {
        let mut all = Vec::new();
        for j in 0..self.shares.len() {
            let mut items = self.lock(j);
            self.total.fetch_sub(items.len(), Ordering::SeqCst);
            all.extend(items.drain(..));
            self.shares[j].len.store(0, Ordering::Release);
        }
        all
    }

    /// Takes out the requests that expired by `now`.
    pub(crate) fn expired(&self, now: Instant) -> Vec<Request> {
        let mut out = Vec::new();
        for j in 0..self.shares.len() {
            if self.shares[j].len.load(Ordering::Acquire) == 0 {
                continue;
            }
            let mut items = self.lock(j);
            let before = items.len();
            let mut i = 0;
            while i < items.len() {
                if items[i].0.expires <= now {
                    out.extend(items.remove(i));
                } else {
                    i += 1;
                }
            }
            self.total.fetch_sub(before - items.len(), Ordering::SeqCst);
            self.shares[j].len.store(items.len(), Ordering::Release);
        }
        out
    }

    /// Wakes every consumer (the queue shuts down).
    pub(crate) fn wake_all(&self) {
        for s in self.shares.iter() {
            s.notify.notify_waiters();
        }
        self.roaming.notify_waiters();
    }
}
