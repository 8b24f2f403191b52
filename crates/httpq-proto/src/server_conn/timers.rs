//! The six timeouts as deadlines: which one runs now, when it fires, and
//! what firing does (a `408` for a head that never finished).

use std::time::Instant;

use super::{DisconnectReason, ServerConn, TimeoutKind, Version};

impl ServerConn {
    /// The next deadline, and which timeout it is (`None`: only a time to
    /// look again, when nothing is due but the idle clock may have moved).
    pub fn deadline(&self, now: Instant) -> (Option<Instant>, Option<TimeoutKind>) {
        if self.ended.is_some() {
            return (None, None);
        }
        let (at, kind) = self.protocol_deadline(now);
        match (self.send_deadline(), at) {
            (Some(s), Some(a)) if s < a => (Some(s), Some(TimeoutKind::MinSendRate)),
            (Some(s), None) => (Some(s), Some(TimeoutKind::MinSendRate)),
            _ => (at, kind),
        }
    }

    fn protocol_deadline(&self, now: Instant) -> (Option<Instant>, Option<TimeoutKind>) {
        if let Some(r) = &self.reading {
            if let Some(start) = r.draining {
                return (
                    Some(start + r.drain_entity_body),
                    Some(TimeoutKind::DrainEntityBody),
                );
            }
            let waiting = self
                .slot(r.seq)
                .and_then(|s| s.body.as_ref())
                .is_some_and(|p| p.requested && p.buffered == 0 && !p.done && p.error.is_none());
            if waiting {
                return (
                    Some(r.last_progress + r.entity_body),
                    Some(TimeoutKind::EntityBody),
                );
            }
            return (None, None);
        }
        if let Some(start) = self.head_started {
            if !self.stop_reading {
                return (
                    Some(start + self.timeouts.header_wait),
                    Some(TimeoutKind::HeaderWait),
                );
            }
        }
        let since = self
            .last_write
            .map_or(self.last_activity, |w| w.max(self.last_activity));
        if self.rbuf.is_empty() && self.slots.is_empty() {
            return (
                Some(since + self.timeouts.idle_connection),
                Some(TimeoutKind::IdleConnection),
            );
        }
        // The application holds requests, so nothing times out; but look
        // again later, since the idle clock starts after its answers.
        (Some(now.max(since) + self.timeouts.idle_connection), None)
    }

    /// Time has reached `now`: the timeout that fired, if one did. A
    /// request head that never completed gets `408` first (encode it with
    /// [`flush_answers`](Self::flush_answers) before closing).
    pub fn on_timeout(&mut self, now: Instant) -> Option<DisconnectReason> {
        let (Some(at), Some(kind)) = self.deadline(now) else {
            return None;
        };
        if at > now {
            return None;
        }
        if kind == TimeoutKind::HeaderWait && self.slots.is_empty() {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.stop_reading = true;
            self.closing_answer(
                seq,
                Version::Http11,
                408,
                "request head not received in time",
            );
        }
        Some(DisconnectReason::Timeout(kind))
    }
}
