//! A new HTTP/2 stream becomes a request: its head parsed with the
//! HTTP/1.1 parser and limits, routed by URL group, and queued — or
//! answered by the server itself (400, 431, 503).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use httpq_proto::h2::{code, HeadError, RequestFields};
use httpq_proto::{MethodKind, RequestParser};

use super::{H2Conn, Transport};
use crate::counters::Counters;
use crate::record::LogHead;
use crate::registry;
use crate::request_queue::{Filled, Request};
use crate::stream::{Stream, StreamInfo};

impl<T: Transport> H2Conn<T> {
    /// A new stream: its head checked and routed, then queued as a request.
    pub(super) fn dispatch(
        &mut self,
        sid: u32,
        head: Result<RequestFields, HeadError>,
        end_stream: bool,
    ) {
        let counters = &self.conn.counters;
        Counters::inc(&counters.requests_received);
        Counters::inc(&counters.h2_streams);
        let now = Instant::now();
        if self.next_seq >= registry::MAX_SEQ {
            // Request ids of this connection are used up: no more streams.
            {
                let mut eng = self.table().engine();
                eng.reset(sid, code::REFUSED_STREAM);
                eng.go_away(code::NO_ERROR);
            }
            self.goaway_sent = true;
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let env = self.conn.env.clone();
        let mut request = Request::blank(&self.conn, now);
        let fields = match head {
            Ok(f) => f,
            Err(_) => {
                let info = StreamInfo {
                    started: Some(now),
                    ..StreamInfo::default()
                };
                Counters::inc(&counters.protocol_errors);
                self.answer(
                    seq,
                    sid,
                    end_stream,
                    false,
                    431,
                    "request header fields too large",
                    info,
                );
                return;
            }
        };
        let method = MethodKind::from_bytes(fields.method());
        let head_only = method == MethodKind::Head;
        let mut info = StreamInfo {
            method,
            started: Some(now),
            ..StreamInfo::default()
        };
        info.target.set(seq, info.method, fields.target());
        if let Err(why) = parse_head(fields, &env.limits, request.head_mut()) {
            Counters::inc(&counters.protocol_errors);
            self.answer(seq, sid, end_stream, head_only, 400, why, info);
            return;
        }
        let scheme = self.conn.scheme();
        let head = request.head();
        if self.conn.log.is_some() {
            info.log = std::sync::Mutex::new(Some(Box::new(LogHead::of(head, true))));
        }
        let simple = head.simple_path(&env.limits);
        let cooked = match simple {
            Some(_) => None,
            None => match head.cooked_url(scheme, self.conn.local, &env.limits) {
                Ok(u) => Some(u),
                Err(_) => {
                    Counters::inc(&counters.protocol_errors);
                    self.answer(
                        seq,
                        sid,
                        end_stream,
                        head_only,
                        400,
                        "bad request target",
                        info,
                    );
                    return;
                }
            },
        };
        let (host, path) = match (&cooked, simple) {
            (Some(u), _) => (u.host.as_bytes(), u.path.as_bytes()),
            (None, path) => (head.host().unwrap_or_default(), path.unwrap_or(b"/")),
        };
        let route =
            self.site
                .routes
                .route_cached(&mut self.routes, scheme, host, self.conn.local, path);
        let timeouts = route.map_or(self.base, |r| {
            r.timeouts.map_or(self.base, |t| t.or(self.base))
        });
        let context = route.map(|r| r.context);
        let bound = route.is_some_and(|r| r.queue.is_some());
        let queue = if bound { self.routes.queue() } else { None };
        let Some(queue) = queue else {
            Counters::inc(&counters.unrouted);
            let (status, why) = if context.is_some() {
                (503, "the URL group has no request queue")
            } else {
                (400, "no URL prefix matches this request")
            };
            self.answer(seq, sid, end_stream, head_only, status, why, info);
            return;
        };
        info.entity_body = timeouts.entity_body;
        info.drain_entity_body = timeouts.drain_entity_body;
        info.min_send_rate = timeouts.min_send_rate;
        let stream = Arc::new(Stream::new(
            seq,
            sid,
            queue.id,
            head_only,
            !end_stream,
            info,
        ));
        self.table().insert(stream.clone());
        self.active.push(stream.clone());
        request.fill(Filled {
            seq,
            url_context: context.unwrap_or(0),
            cooked,
            expires: now + timeouts.request_queue,
            body: Bytes::new(),
            more_body: !end_stream,
        });
        request.set_stream(stream);
        let mut batch = vec![request];
        if let Some(why) = queue.push_batch(self.share, &mut batch) {
            // Refused, never handed out: not a request to abandon.
            Counters::inc(&counters.queue_rejections);
            batch.clear();
            self.active.pop();
            self.table().answer(seq, 503, why);
        }
    }

    /// The server answers a stream itself.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        seq: u32,
        sid: u32,
        end_stream: bool,
        head_only: bool,
        status: u16,
        why: &str,
        info: StreamInfo,
    ) {
        let stream = Arc::new(Stream::new(seq, sid, 0, head_only, !end_stream, info));
        self.table().insert(stream);
        self.table().answer(seq, status, why);
    }
}

/// Parses an h2 request's head in HTTP/1.1 form with the same parser,
/// limits and checks HTTP/1.1 requests get: one definition of a valid
/// request, and the same zero-copy [`Request`] accessors.
fn parse_head(
    fields: RequestFields,
    limits: &httpq_proto::Limits,
    head: &mut httpq_proto::RequestHead,
) -> Result<(), &'static str> {
    let mut buf = fields.into_http1();
    let mut parser = RequestParser::new(*limits);
    match parser.parse_into(&mut buf, head) {
        Ok(true) => Ok(()),
        Ok(false) => Err("incomplete request head"),
        Err(_) => Err("malformed request head"),
    }
}
