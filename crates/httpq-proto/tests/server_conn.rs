//! The sans-IO server connection, driven by hand: bytes and times in,
//! requests, answers and deadlines out. No sockets, no clock.

use std::io::Write;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use httpq_proto::server_conn::{
    Accept, BodyError, ConnConfig, DisconnectReason, FileChunk, FixedLines, HalfClosePolicy, Input,
    Response, SendError, SendFlags, ServerConn, TimeoutKind, Timeouts, WRITE_BUDGET,
};
use httpq_proto::RequestHead;

const FIXED: FixedLines<'static> = FixedLines {
    fields: b"Date: D\r\n",
    ok_11: b"HTTP/1.1 200 OK\r\nDate: D\r\n",
};

struct H {
    conn: ServerConn,
    now: Instant,
    head: RequestHead,
}

impl H {
    fn new() -> H {
        H::with(ConnConfig::default())
    }

    fn with(cfg: ConnConfig) -> H {
        let now = Instant::now();
        H {
            conn: ServerConn::new(cfg, now),
            now,
            head: RequestHead::default(),
        }
    }

    fn feed(&mut self, b: &[u8]) {
        self.conn
            .read_buf()
            .expect("wants input")
            .extend_from_slice(b);
        self.conn.received(b.len(), self.now);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// The next request's seq, accepted for queue 1 (with `copy` body bytes).
    fn next_copy(&mut self, copy: usize) -> Option<(u32, httpq_proto::server_conn::BodyStart)> {
        match self.conn.poll_input(&mut self.head, self.now) {
            Input::Request(seq) => {
                let b = self.conn.accept(
                    seq,
                    Accept {
                        queue: 1,
                        timeouts: None,
                        copy_body: copy,
                    },
                );
                Some((seq, b))
            }
            Input::Idle => None,
            Input::Close(r) => panic!("closed: {r:?}"),
        }
    }

    fn next(&mut self) -> Option<u32> {
        self.next_copy(0).map(|(s, _)| s)
    }

    /// Starts the answer to `seq` with `body`, more to come.
    fn begin(&mut self, seq: u32, body: &'static str) {
        self.conn
            .send_response(
                seq,
                1,
                &mut Response::new(200).body(body),
                SendFlags::MORE_DATA,
                &FIXED,
            )
            .unwrap();
    }

    fn answer_status(&mut self, seq: u32, status: u16) {
        self.conn
            .send_response(seq, 1, &mut Response::new(status), SendFlags::NONE, &FIXED)
            .unwrap();
    }

    fn answer(&mut self, seq: u32, body: &'static str) {
        self.conn
            .send_response(
                seq,
                1,
                &mut Response::new(200).body(body),
                SendFlags::NONE,
                &FIXED,
            )
            .unwrap();
    }

    /// Everything queued for the wire (answers the connection made itself included).
    fn wire(&mut self) -> String {
        self.conn.flush_answers(&FIXED);
        let mut out = Vec::new();
        let n = self.conn.output().write_to(&mut out).unwrap();
        self.conn.on_written(n, self.now);
        String::from_utf8(out).unwrap()
    }

    fn read_body(&mut self, seq: u32) -> (Poll<Result<Vec<u8>, BodyError>>, bool) {
        let mut got = Vec::new();
        let (p, wake) = self.conn.poll_body(seq, Waker::noop(), |chunks| {
            let mut n = 0;
            while let Some(c) = chunks.pop_front() {
                n += c.len();
                got.extend_from_slice(&c);
            }
            n
        });
        (p.map(|r| r.map(|_| got)), wake)
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn pipelined_answers_leave_in_request_order() {
    let mut h = H::new();
    h.feed(&[GET, GET, GET].concat());
    let seqs: Vec<u32> = std::iter::from_fn(|| h.next()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    h.answer(3, "three");
    h.answer(2, "two");
    assert_eq!(h.wire(), "", "nothing goes out before the first answer");
    assert_eq!(h.conn.waiting(), 1);
    h.answer(1, "one");
    let wire = h.wire();
    let order: Vec<usize> = ["one", "two", "three"]
        .iter()
        .map(|w| wire.find(&format!("\r\n\r\n{w}")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{wire}");
    assert_eq!(h.conn.retire(h.now).responses, 3);
    assert_eq!(h.conn.in_flight(), 0);
}

#[test]
fn an_answered_id_cannot_be_answered_again() {
    let mut h = H::new();
    h.feed(GET);
    let seq = h.next().unwrap();
    h.answer(seq, "x");
    let again = h
        .conn
        .send_response(seq, 1, &mut Response::new(200), SendFlags::NONE, &FIXED);
    assert!(again.is_err());
    let wrong_queue = {
        h.feed(GET);
        let s = h.next().unwrap();
        h.conn
            .send_response(s, 7, &mut Response::new(200), SendFlags::NONE, &FIXED)
    };
    assert!(
        wrong_queue.is_err(),
        "only the queue the request went to answers it"
    );
}

#[test]
fn http10_without_keep_alive_closes_after_its_answer() {
    let mut h = H::new();
    h.feed(b"GET / HTTP/1.0\r\n\r\n");
    let seq = h.next().unwrap();
    h.answer(seq, "x");
    let wire = h.wire();
    assert!(wire.starts_with("HTTP/1.0 200 OK\r\nDate: D\r\n"), "{wire}");
    assert!(wire.contains("Connection: close\r\n"), "{wire}");
    assert!(h.conn.should_end().is_none(), "not before it is retired");
    assert!(h.conn.retire(h.now).close);
    assert_eq!(
        h.conn.should_end(),
        Some((DisconnectReason::ServerClosed, false))
    );
}

#[test]
fn a_malformed_head_gets_its_status_and_nothing_after_it_is_read() {
    let mut h = H::new();
    h.feed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.next(), None);
    let wire = h.wire();
    assert!(wire.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{wire}");
    assert!(wire.contains("Connection: close"));
    assert_eq!(h.conn.take_counts().protocol_errors, 1);
    assert!(h.conn.retire(h.now).close);
    assert_eq!(
        h.conn.finish(DisconnectReason::ServerClosed).reason,
        DisconnectReason::ProtocolError(httpq_proto::Error::ContentLengthWithTransferEncoding)
    );
}

#[test]
fn a_whole_body_travels_with_its_request() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let (seq, body) = h.next_copy(1024).unwrap();
    assert_eq!((&body.bytes[..], body.more), (&b"hello"[..], false));
    assert_eq!(
        h.read_body(seq).0,
        Poll::Ready(Ok(vec![])),
        "nothing more to read"
    );
    assert_eq!(
        h.next(),
        Some(2),
        "the pipelined request after it is parsed"
    );
}

#[test]
fn a_body_longer_than_the_copy_limit_continues_through_reads() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456");
    let (seq, body) = h.next_copy(4).unwrap();
    assert_eq!((&body.bytes[..], body.more), (&b"0123"[..], true));
    h.next();
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(b"456".to_vec())));
    assert!(h.read_body(seq).0.is_pending());
    h.feed(b"789");
    h.next();
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(b"789".to_vec())));
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(vec![])));
}

#[test]
fn a_chunked_body_travels_joined() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    let (_, body) = h.next_copy(1024).unwrap();
    assert_eq!((&body.bytes[..], body.more), (&b"abcde"[..], false));
}

#[test]
fn copy_body_off_reads_everything_through_the_pipe() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    let (seq, body) = h.next_copy(0).unwrap();
    assert!(body.bytes.is_empty() && body.more);
    h.next();
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(b"hello".to_vec())));
}

#[test]
fn continue_goes_out_only_when_the_body_is_first_read() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    let (seq, body) = h.next_copy(1024).unwrap();
    assert!(body.more, "no body travels while the client waits for 100");
    assert_eq!(h.wire(), "");
    let (p, wake) = h.read_body(seq);
    assert!(p.is_pending() && wake);
    assert_eq!(h.wire(), "HTTP/1.1 100 Continue\r\n\r\n");
    h.feed(b"ok");
    h.next();
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(b"ok".to_vec())));
}

#[test]
fn an_answer_before_continue_closes_the_connection() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    let seq = h.next().unwrap();
    h.answer(seq, "no");
    assert!(h.wire().contains("Connection: close"));
    assert!(h.conn.retire(h.now).close);
}

#[test]
fn an_unread_body_is_drained_after_the_answer_and_bounded_by_drain_entity_body() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234");
    let seq = h.next().unwrap();
    h.answer(seq, "x");
    h.wire();
    let r = h.conn.retire(h.now);
    assert!(r.draining && !r.close);
    let (at, kind) = h.conn.deadline(h.now);
    assert_eq!(kind, Some(TimeoutKind::DrainEntityBody));
    assert_eq!(at, Some(h.now + Timeouts::default().drain_entity_body));
    h.feed(b"56789GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        h.next(),
        Some(2),
        "the body is drained, the next request read"
    );
}

#[test]
fn a_malformed_chunk_gets_its_status_and_the_reader_learns_why() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    let seq = h.next().unwrap();
    assert_eq!(h.next(), None);
    assert!(h.wire().starts_with("HTTP/1.1 400 "));
    assert_eq!(
        h.read_body(seq).0,
        Poll::Ready(Err(BodyError::Malformed(
            httpq_proto::Error::InvalidChunkSize
        )))
    );
}

#[test]
fn the_pipeline_depth_bounds_parsing() {
    let mut h = H::with(ConnConfig {
        max_pipelined: 2,
        ..ConnConfig::default()
    });
    h.feed(&[GET, GET, GET].concat());
    assert_eq!(h.next(), Some(1));
    assert_eq!(h.next(), Some(2));
    assert_eq!(h.next(), None, "full");
    h.answer(1, "a");
    h.wire();
    assert!(h.conn.retire(h.now).room);
    assert_eq!(h.next(), Some(3));
}

#[test]
fn head_wait_answers_408_and_ends() {
    let mut h = H::new();
    h.feed(b"GET / HT");
    assert_eq!(h.next(), None);
    let (at, kind) = h.conn.deadline(h.now);
    assert_eq!(kind, Some(TimeoutKind::HeaderWait));
    h.advance(Duration::from_secs(119));
    assert_eq!(h.conn.on_timeout(h.now), None, "not yet");
    h.now = at.unwrap();
    assert_eq!(
        h.conn.on_timeout(h.now),
        Some(DisconnectReason::Timeout(TimeoutKind::HeaderWait))
    );
    assert!(h.wire().starts_with("HTTP/1.1 408 "));
}

#[test]
fn idle_runs_only_when_nothing_is_held() {
    let mut h = H::new();
    h.feed(GET);
    let seq = h.next().unwrap();
    let (_, kind) = h.conn.deadline(h.now);
    assert_eq!(
        kind, None,
        "the application holds a request: no timeout runs"
    );
    h.advance(Duration::from_secs(500));
    assert_eq!(h.conn.on_timeout(h.now), None);
    h.answer(seq, "x");
    h.wire();
    h.conn.retire(h.now);
    let (at, kind) = h.conn.deadline(h.now);
    assert_eq!(kind, Some(TimeoutKind::IdleConnection));
    assert_eq!(
        at,
        Some(h.now + Duration::from_secs(120)),
        "counted from the answer"
    );
}

#[test]
fn entity_body_runs_while_the_application_waits_for_body() {
    let mut h = H::with(ConnConfig {
        timeouts: Timeouts {
            entity_body: Duration::from_secs(3),
            ..Timeouts::default()
        },
        ..ConnConfig::default()
    });
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
    let seq = h.next().unwrap();
    assert_eq!(h.next(), None);
    assert_eq!(h.conn.deadline(h.now).1, None, "nobody waits for body yet");
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(b"ab".to_vec())));
    assert!(h.read_body(seq).0.is_pending());
    assert_eq!(
        h.conn.deadline(h.now),
        (
            Some(h.now + Duration::from_secs(3)),
            Some(TimeoutKind::EntityBody)
        )
    );
}

#[test]
fn a_group_timeout_applies_from_its_request_on() {
    let mut h = H::new();
    h.feed(GET);
    let Input::Request(seq) = h.conn.poll_input(&mut h.head, h.now) else {
        panic!()
    };
    h.conn.accept(
        seq,
        Accept {
            queue: 1,
            timeouts: Some(Timeouts {
                idle_connection: Duration::from_secs(7),
                ..Timeouts::default()
            }),
            copy_body: 0,
        },
    );
    h.answer(seq, "x");
    h.wire();
    h.conn.retire(h.now);
    assert_eq!(
        h.conn.deadline(h.now).0,
        Some(h.now + Duration::from_secs(7))
    );
}

#[test]
fn min_send_rate_runs_once_the_peer_stops_reading() {
    let mut h = H::new();
    h.feed(GET);
    let seq = h.next().unwrap();
    h.answer(seq, "x");
    h.conn.on_write_blocked(h.now);
    let (at, kind) = h.conn.deadline(h.now);
    assert_eq!(kind, Some(TimeoutKind::MinSendRate));
    assert_eq!(
        at,
        Some(h.now + Duration::from_secs(1)),
        "never less than a second"
    );
    h.wire();
    assert_ne!(h.conn.deadline(h.now).1, Some(TimeoutKind::MinSendRate));
}

/// Issue: two pipelined responses, the second parked behind the first.
/// The first's sender must never wait for the second's parked bytes.
#[test]
fn backpressure_never_makes_a_response_wait_for_a_later_one() {
    let mut h = H::new();
    h.feed(&[GET, GET].concat());
    let (a, b) = (h.next().unwrap(), h.next().unwrap());
    let start = |h: &mut H, seq| {
        h.conn
            .send_response(
                seq,
                1,
                &mut Response::new(200),
                SendFlags::MORE_DATA,
                &FIXED,
            )
            .unwrap();
    };
    start(&mut h, a);
    start(&mut h, b);
    // The later response parks a lot of memory...
    for _ in 0..8 {
        h.conn
            .send_body(
                b,
                1,
                Bytes::from(vec![b'b'; WRITE_BUDGET / 4]),
                SendFlags::MORE_DATA,
            )
            .unwrap();
    }
    assert!(
        h.conn.must_wait(b),
        "a parked response is held to the budget"
    );
    // ...and the earlier one's sender still goes on.
    assert!(!h.conn.must_wait(a));
    h.conn
        .send_body(a, 1, Bytes::from(vec![b'a'; 1000]), SendFlags::NONE)
        .unwrap();
    // Once the earlier completes, the later is the one being written, and
    // it waits only for the socket.
    assert!(h.conn.must_wait(b));
    let wire = h.wire();
    assert!(!h.conn.must_wait(b));
    assert!(wire.find('a').unwrap() < wire.find("bbbb").unwrap());
}

#[test]
fn a_file_body_is_framed_and_sent_from_the_file() {
    let path = std::env::temp_dir().join(format!("httpq-sc-file-{}", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"file body")
        .unwrap();
    let file = Arc::new(std::fs::File::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    let mut h = H::new();
    h.feed(GET);
    let seq = h.next().unwrap();
    let chunk = FileChunk::whole(file).unwrap();
    h.conn
        .send_response(
            seq,
            1,
            &mut Response::new(200).file(chunk),
            SendFlags::NONE,
            &FIXED,
        )
        .unwrap();
    assert_eq!(h.conn.output().mem_len() as u64 + 9, h.conn.output().len());
    let wire = h.wire();
    assert!(wire.contains("Content-Length: 9\r\n"), "{wire}");
    assert!(wire.ends_with("\r\n\r\nfile body"), "{wire}");
}

#[test]
fn more_data_is_chunked_for_http11_and_close_delimited_for_http10() {
    let mut h = H::new();
    h.feed(GET);
    let seq = h.next().unwrap();
    h.begin(seq, "ab");
    h.conn
        .send_body(seq, 1, Bytes::from_static(b"cd"), SendFlags::NONE)
        .unwrap();
    assert!(h
        .wire()
        .ends_with("Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"));

    let mut h = H::new();
    h.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let seq = h.next().unwrap();
    h.begin(seq, "ab");
    let wire = h.wire();
    assert!(
        wire.contains("Connection: close\r\n") && !wire.contains("chunked"),
        "{wire}"
    );
}

#[test]
fn a_fin_is_a_disconnect_by_default() {
    let mut h = H::new();
    h.feed(GET);
    h.next();
    assert_eq!(h.conn.peer_closed(), Some(DisconnectReason::ClientClosed));
}

#[test]
fn a_fin_under_allow_still_answers_what_was_received() {
    let mut h = H::with(ConnConfig {
        half_close: HalfClosePolicy::Allow,
        ..ConnConfig::default()
    });
    h.feed(&[GET, GET].concat());
    assert_eq!(h.conn.peer_closed(), None);
    assert!(h.conn.peer_fin() && !h.conn.wants_input());
    let (a, b) = (h.next().unwrap(), h.next().unwrap());
    h.answer(a, "a");
    h.answer(b, "b");
    h.wire();
    h.conn.retire(h.now);
    assert_eq!(
        h.conn.should_end(),
        Some((DisconnectReason::ClientClosed, false))
    );
}

#[test]
fn the_last_sequence_number_closes_the_connection() {
    let mut h = H::new();
    h.conn.set_last_seq(2);
    h.feed(&[GET, GET, GET].concat());
    assert_eq!((h.next(), h.next(), h.next()), (Some(1), Some(2), None));
    h.answer(1, "a");
    h.answer(2, "b");
    assert!(h.wire().ends_with("Connection: close\r\n\r\nb"));
}

#[test]
fn finish_counts_what_the_application_held_and_wakes_readers() {
    let mut h = H::new();
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
    let seq = h.next().unwrap();
    assert_eq!(h.next(), None);
    assert!(h.read_body(seq).0.is_ready());
    assert!(h.read_body(seq).0.is_pending());
    let f = h.conn.finish(DisconnectReason::Reset);
    assert_eq!(
        (f.reason, f.abandoned, f.started),
        (DisconnectReason::Reset, 1, false)
    );
    assert_eq!(
        h.read_body(seq).0,
        Poll::Ready(Err(BodyError::Disconnected(DisconnectReason::Reset)))
    );
    assert!(h
        .conn
        .send_response(seq, 1, &mut Response::new(200), SendFlags::NONE, &FIXED)
        .is_err());
}

#[test]
fn every_split_of_the_input_gives_the_same_answers() {
    let input = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /b HTTP/1.1\r\nHost: a\r\n\r\nPOST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n";
    let run = |split: usize| {
        let mut h = H::new();
        let mut bodies = Vec::new();
        let mut targets = Vec::new();
        for part in input.chunks(split) {
            h.feed(part);
            while let Some((seq, start)) = h.next_copy(1 << 20) {
                targets.push(String::from_utf8(h.head.target().to_vec()).unwrap());
                let mut body = start.bytes.to_vec();
                if start.more {
                    // Not whole yet: the rest comes through reads.
                    bodies.push((seq, body));
                    continue;
                }
                bodies.push((seq, std::mem::take(&mut body)));
            }
            for (seq, body) in bodies.iter_mut() {
                while let (Poll::Ready(Ok(more)), _) = h.read_body(*seq) {
                    if more.is_empty() {
                        break;
                    }
                    body.extend_from_slice(&more);
                }
            }
        }
        (targets, bodies)
    };
    let whole = run(input.len());
    assert_eq!(whole.0, ["/a", "/b", "/c"]);
    for split in 1..input.len() {
        assert_eq!(run(split), whole, "split every {split} bytes");
    }
}

#[test]
fn forgetting_requests_counts_the_answers_they_had() {
    let mut h = H::new();
    h.feed(&[GET, GET, GET].concat());
    let (a, _, c) = (h.next().unwrap(), h.next().unwrap(), h.next().unwrap());
    h.answer(c, "parked behind the first two");
    assert!(h.conn.parked() > 0);
    h.conn.forget_from(2);
    assert_eq!(
        (h.conn.in_flight(), h.conn.waiting(), h.conn.parked()),
        (1, 1, 0)
    );
    h.answer(a, "a");
    assert!(
        h.wire().ends_with("\r\n\r\na"),
        "only the first answer goes out"
    );
}

/// Review B1: a stream kept topped up for a client that reads steadily,
/// faster than MinSendRate, must never hit the MinSendRate timeout; one
/// that reads slower must.
#[test]
fn min_send_rate_is_an_average_since_the_output_blocked() {
    let run = |bytes_per_sec: usize| -> Option<DisconnectReason> {
        let mut h = H::with(ConnConfig {
            timeouts: Timeouts {
                min_send_rate: 1000,
                ..Timeouts::default()
            },
            ..ConnConfig::default()
        });
        h.feed(GET);
        let seq = h.next().unwrap();
        h.begin(seq, "");
        // 10 minutes of a stream refilled every second, written at the
        // client's pace; the output never empties.
        let piece = Bytes::from(vec![b'x'; 4000]);
        h.conn
            .send_body(seq, 1, piece.clone(), SendFlags::MORE_DATA)
            .unwrap();
        h.conn.on_write_blocked(h.now);
        for _ in 0..600 {
            h.advance(Duration::from_secs(1));
            if let Some(r) = h.conn.on_timeout(h.now) {
                return Some(r);
            }
            let mut sink = Trickle(bytes_per_sec);
            let n = h.conn.output().write_to(&mut sink).unwrap();
            h.conn.on_written(n, h.now);
            h.conn
                .send_body(seq, 1, piece.clone(), SendFlags::MORE_DATA)
                .unwrap();
            h.conn.on_write_blocked(h.now);
        }
        None
    };
    assert_eq!(run(3000), None, "3000 B/s is well above 1000 B/s");
    assert_eq!(
        run(500),
        Some(DisconnectReason::Timeout(TimeoutKind::MinSendRate)),
        "500 B/s is below it"
    );
}

/// Takes at most this many bytes per call, then would block.
struct Trickle(usize);

impl httpq_proto::server_conn::Transmit for Trickle {
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = bufs.iter().map(|b| b.len()).sum::<usize>().min(self.0);
        self.0 -= n;
        Ok(n)
    }
    fn write_file(&mut self, _: &std::fs::File, _: u64, _: usize) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

/// RFC 9112 §9.6: after a request that ends the connection, no further
/// request is processed — its body is still read, nothing after it is.
#[test]
fn nothing_after_a_request_that_closes_is_processed() {
    for first in [
        &b"GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"[..],
        &b"GET /1 HTTP/1.0\r\n\r\n"[..],
        &b"POST /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"[..],
    ] {
        let mut h = H::new();
        h.feed(&[first, b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"].concat());
        assert_eq!(h.next(), Some(1));
        assert_eq!(h.next(), None, "the second request is never parsed");
        h.conn
            .send_response(1, 1, &mut Response::new(200), SendFlags::NONE, &FIXED)
            .unwrap();
        assert!(h.wire().contains("Connection: close\r\n"));
        assert!(h.conn.retire(h.now).close);
    }
    // A body after the closing request's head is still read whole.
    let mut h = H::new();
    h.feed(b"POST /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 6\r\n\r\nab");
    let seq = h.next().unwrap();
    assert!(h.conn.wants_input(), "the rest of the body is still wanted");
    h.feed(b"cdef");
    h.next();
    assert_eq!(h.read_body(seq).0, Poll::Ready(Ok(b"abcdef".to_vec())));
}

/// httpq opens no tunnels: a 2xx answer to CONNECT is refused (it would
/// have to switch the connection to a tunnel); other answers go out.
#[test]
fn a_2xx_answer_to_connect_is_refused() {
    let mut h = H::new();
    h.feed(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    let seq = h.next().unwrap();
    let r = h
        .conn
        .send_response(seq, 1, &mut Response::new(200), SendFlags::NONE, &FIXED);
    assert!(matches!(r, Err(SendError::InvalidResponse(_))), "{r:?}");
    h.answer_status(seq, 405);
    assert!(h.wire().starts_with("HTTP/1.1 405 "));
}

/// RFC 9110 §8.6: no Content-Length on a 204, whatever the application set.
#[test]
fn a_204_never_carries_content_length() {
    let mut h = H::new();
    h.feed(GET);
    let seq = h.next().unwrap();
    let mut r = Response::new(204).header("content-length", "5");
    h.conn
        .send_response(seq, 1, &mut r, SendFlags::NONE, &FIXED)
        .unwrap();
    let wire = h.wire();
    assert!(
        !wire.to_ascii_lowercase().contains("content-length"),
        "{wire}"
    );
}

/// RFC 9110 §8.6: a HEAD answer carries Content-Length only if it is the
/// GET's: the body the application gave, or its own field — never a 0 it
/// did not mean.
#[test]
fn a_head_answer_without_a_body_says_no_length() {
    let mut h = H::new();
    h.feed(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let (a, b) = (h.next().unwrap(), h.next().unwrap());
    h.conn
        .send_response(a, 1, &mut Response::new(200), SendFlags::NONE, &FIXED)
        .unwrap();
    let first = h.wire();
    assert!(!first.contains("Content-Length"), "{first}");
    h.answer(b, "as the GET's body");
    let second = h.wire();
    assert!(second.contains("Content-Length: 17\r\n"), "{second}");
    assert!(second.ends_with("\r\n\r\n"), "no body on a HEAD: {second}");
}

#[test]
fn retired_responses_are_reported_with_method_status_bytes_and_time() {
    let mut h = H::with(ConnConfig {
        report_done: true,
        ..ConnConfig::default()
    });
    h.feed(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\nBREW / HTTP/1.1\r\nHost: a\r\n\r\n");
    let seqs: Vec<u32> = std::iter::from_fn(|| h.next()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    h.advance(Duration::from_millis(5));
    h.begin(1, "hello");
    h.conn
        .send_body(1, 1, Bytes::from_static(b", you"), SendFlags::NONE)
        .unwrap();
    h.answer(2, "not sent for HEAD");
    h.answer_status(3, 405);
    h.wire();
    assert_eq!(h.conn.take_done().count(), 0, "nothing before retire");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.conn.retire(h.now).responses, 3);
    let done: Vec<_> = h.conn.take_done().collect();
    let got: Vec<_> = done
        .iter()
        .map(|d| (d.seq, d.method, d.status, d.body_bytes, d.elapsed))
        .collect();
    let ms6 = Duration::from_millis(6);
    use httpq_proto::MethodKind::*;
    assert_eq!(
        got,
        [
            (1, Post, 200, 10, ms6),
            (2, Head, 200, 0, ms6),
            (3, Other, 405, 0, ms6)
        ]
    );
    assert_eq!(h.conn.take_done().count(), 0, "taken once");
}

#[test]
fn a_malformed_heads_answer_is_reported_too() {
    let mut h = H::with(ConnConfig {
        report_done: true,
        ..ConnConfig::default()
    });
    h.feed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n");
    assert_eq!(h.next(), None);
    h.wire();
    h.conn.retire(h.now);
    let done: Vec<_> = h.conn.take_done().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status, 400);
    assert!(done[0].body_bytes > 0, "the reason is in the body");
}

#[test]
fn without_report_done_nothing_is_kept() {
    let mut h = H::new();
    for _ in 0..3 {
        h.feed(GET);
        let seq = h.next().unwrap();
        h.answer(seq, "x");
        h.wire();
        assert_eq!(h.conn.retire(h.now).responses, 1);
    }
    assert_eq!(h.conn.take_done().count(), 0);
}
