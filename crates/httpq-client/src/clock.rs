//! A request's clock: per-phase timings, the total deadline, and waits
//! run under a timeout and the handle's cancellation.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::handle::HandleCore;
use crate::status::Timings;
use crate::{ClientError, TimeoutKind};

/// A request's clock: per-phase timings, the total deadline, and running
/// waits under a timeout and the handle's cancellation.
pub(crate) struct Clock {
    start: Instant,
    total: Option<Instant>,
    pub timings: Timings,
}

impl Clock {
    pub(crate) fn new(total: Option<Duration>) -> Clock {
        let start = Instant::now();
        Clock {
            start,
            total: total.map(|d| start + d),
            timings: Timings::default(),
        }
    }

    pub(crate) fn since(&self) -> Option<Duration> {
        Some(self.start.elapsed())
    }

    pub(crate) fn mark_lookup(&mut self) {
        self.timings.name_lookup = self.since();
    }

    pub(crate) fn mark_connect(&mut self) {
        self.timings.connect = self.since();
    }

    pub(crate) fn mark_tls(&mut self) {
        self.timings.tls = self.since();
    }

    /// Runs `fut` for at most `limit` (timeout `kind`), within the total
    /// deadline, and until the handle is closed.
    pub(crate) async fn run<F: Future>(
        &self,
        core: &HandleCore,
        kind: TimeoutKind,
        limit: Option<Duration>,
        fut: F,
    ) -> Result<F::Output, ClientError> {
        self.run_until(core, kind, limit.map(|d| Instant::now() + d), fut)
            .await
    }

    /// Like [`run`](Self::run) with an absolute deadline.
    pub(crate) async fn run_until<F: Future>(
        &self,
        core: &HandleCore,
        kind: TimeoutKind,
        deadline: Option<Instant>,
        fut: F,
    ) -> Result<F::Output, ClientError> {
        let (at, which) = match (deadline, self.total) {
            (Some(d), Some(t)) if t < d => (Some(t), TimeoutKind::Total),
            (Some(d), _) => (Some(d), kind),
            (None, Some(t)) => (Some(t), TimeoutKind::Total),
            (None, None) => (None, kind),
        };
        let sleep = async {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = core.cancelled() => Err(ClientError::Cancelled),
            // Closed while it ran (another thread can close, and shut the
            // socket down, between this select's looks): whatever the
            // operation met, it was cancelled.
            r = fut => if core.is_closed() { Err(ClientError::Cancelled) } else { Ok(r) },
            _ = sleep => Err(ClientError::Timeout(which)),
        }
    }
}
