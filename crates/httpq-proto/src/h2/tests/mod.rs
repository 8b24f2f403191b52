//! The engine driven by hand-made client frames, without sockets.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{flag, kind, put_head, Head, HEADER_LEN, PREFACE};
use super::*;

mod edges;

fn frame(k: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_head(&mut out, payload.len(), k, flags, stream);
    out.put_slice(payload);
    out.to_vec()
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &p)
}

/// A request block: literal fields, new names, no indexing.
fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut enc = loona_hpack::Encoder::new();
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(0);
        enc_str(&mut out, n.as_bytes());
        enc_str(&mut out, v.as_bytes());
    }
    let _ = &mut enc;
    out
}

fn enc_str(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() < 127);
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

fn get(path: &str) -> Vec<u8> {
    block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "a.test"),
    ])
}

fn post(len: usize) -> Vec<u8> {
    let n = len.to_string();
    block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/p"),
        (":authority", "a.test"),
        ("content-length", &n),
    ])
}

/// A frame the server wrote.
#[derive(Debug)]
struct Out {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

struct Client {
    conn: Conn,
    decoder: loona_hpack::Decoder<'static>,
}

impl Client {
    /// A connection past the preface and the settings exchange.
    fn new(cfg: Config, client_settings: &[(u16, u32)]) -> Client {
        let mut c = Client {
            conn: Conn::new(cfg),
            decoder: loona_hpack::Decoder::new(),
        };
        let mut input = PREFACE.to_vec();
        input.extend(settings(client_settings));
        // And the acknowledgement of the server's SETTINGS.
        input.extend(frame(kind::SETTINGS, flag::ACK, 0, &[]));
        c.send(&input).unwrap();
        let out = c.frames();
        assert_eq!(out[0].kind, kind::SETTINGS);
        assert!(out
            .iter()
            .any(|f| f.kind == kind::SETTINGS && f.flags == flag::ACK));
        c
    }

    /// Opens stream `id` with a complete GET of `/`.
    fn open(&mut self, id: u32) {
        let f = frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            id,
            &get("/"),
        );
        self.send(&f).unwrap();
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let mut b = BytesMut::from(bytes);
        self.conn.recv(&mut b)
    }

    fn frames(&mut self) -> Vec<Out> {
        let mut chunks = Vec::new();
        self.conn.take_output(&mut chunks);
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut at = 0;
        let mut v = Vec::new();
        while at < all.len() {
            let h = Head::parse(&all[at..]);
            v.push(Out {
                kind: h.kind,
                flags: h.flags,
                stream: h.stream,
                payload: all[at + HEADER_LEN..at + HEADER_LEN + h.len].to_vec(),
            });
            at += HEADER_LEN + h.len;
        }
        v
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn headers(&mut self, f: &Out) -> Vec<(String, String)> {
        self.decoder
            .decode(&f.payload)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }
}

fn goaway_code(frames: &[Out]) -> Option<u32> {
    frames
        .iter()
        .find(|f| f.kind == kind::GOAWAY)
        .map(|f| u32::from_be_bytes(f.payload[4..8].try_into().unwrap()))
}

fn rst_code(frames: &[Out], stream: u32) -> Option<u32> {
    frames
        .iter()
        .find(|f| f.kind == kind::RST_STREAM && f.stream == stream)
        .map(|f| u32::from_be_bytes(f.payload[..4].try_into().unwrap()))
}

#[test]
fn a_get_becomes_a_request_and_its_answer_frames() {
    let mut c = Client::new(Config::default(), &[]);
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &get("/x?y"),
    ))
    .unwrap();
    let ev = c.events();
    let Event::Request {
        stream: 1,
        head: Ok(head),
        end_stream: true,
    } = &ev[0]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(head.http1(), b"GET /x?y HTTP/1.1\r\nhost: a.test\r\n\r\n");
    assert_eq!((head.method(), head.target()), (&b"GET"[..], &b"/x?y"[..]));
    c.conn
        .send_response(1, 200, [(&b"content-type"[..], &b"text/plain"[..])], false)
        .unwrap();
    c.conn
        .send_data(1, Bytes::from_static(b"hello"), true)
        .unwrap();
    let out = c.frames();
    assert_eq!(
        (out[0].kind, out[0].flags, out[0].stream),
        (kind::HEADERS, flag::END_HEADERS, 1)
    );
    assert_eq!(
        c.headers(&out[0]),
        [
            (":status".into(), "200".into()),
            ("content-type".into(), "text/plain".into())
        ]
    );
    assert_eq!(
        (out[1].kind, out[1].flags, &out[1].payload[..]),
        (kind::DATA, flag::END_STREAM, &b"hello"[..])
    );
    assert_eq!(c.conn.open_streams(), 0);
    assert_eq!(
        c.conn.send_data(1, Bytes::from_static(b"more"), true),
        Err(StreamGone)
    );
}

#[test]
fn data_waits_for_the_stream_window_and_goes_out_as_it_opens() {
    let mut c = Client::new(Config::default(), &[(0x4, 10)]);
    c.open(1);
    c.events();
    c.conn.send_response(1, 200, [], false).unwrap();
    c.conn
        .send_data(1, Bytes::from(vec![b'a'; 25]), true)
        .unwrap();
    let out = c.frames();
    assert_eq!(out[1].payload.len(), 10);
    assert_eq!(c.conn.queued(1), Some(15));
    c.send(&frame(kind::WINDOW_UPDATE, 0, 1, &20u32.to_be_bytes()))
        .unwrap();
    let out = c.frames();
    assert_eq!((out[0].payload.len(), out[0].flags), (15, flag::END_STREAM));
    let mut progressed = Vec::new();
    c.conn.take_progressed(&mut progressed);
    assert!(progressed.contains(&1));
    assert_eq!(c.conn.queued(1), None);
}

#[test]
fn a_spent_connection_window_holds_streams_in_order_until_it_opens() {
    let mut c = Client::new(Config::default(), &[]);
    for id in [1, 3] {
        c.open(id);
    }
    c.events();
    // Raise the stream windows so the connection's 65,535 is what binds.
    c.send(&settings(&[(0x4, 1 << 20)])).unwrap();
    c.frames();
    c.conn.send_response(1, 200, [], false).unwrap();
    c.conn
        .send_data(1, Bytes::from(vec![1; 70_000]), true)
        .unwrap();
    c.conn.send_response(3, 200, [], false).unwrap();
    c.conn
        .send_data(3, Bytes::from(vec![3; 100]), true)
        .unwrap();
    let sent: usize = c
        .frames()
        .iter()
        .filter(|f| f.kind == kind::DATA)
        .map(|f| f.payload.len())
        .sum();
    assert_eq!(sent, 65_535);
    c.send(&frame(kind::WINDOW_UPDATE, 0, 0, &10_000u32.to_be_bytes()))
        .unwrap();
    let out = c.frames();
    let data: Vec<(u32, usize, u8)> = out
        .iter()
        .filter(|f| f.kind == kind::DATA)
        .map(|f| (f.stream, f.payload.len(), f.flags))
        .collect();
    assert_eq!(
        data,
        [
            (1, 70_000 - 65_535, flag::END_STREAM),
            (3, 100, flag::END_STREAM)
        ]
    );
}

#[test]
fn body_holds_the_windows_until_released() {
    let mut c = Client::new(
        Config {
            initial_window_size: 100,
            connection_window_size: 65_535,
            ..Config::default()
        },
        &[],
    );
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &post(150)))
        .unwrap();
    c.send(&frame(kind::DATA, 0, 1, &[7; 100])).unwrap();
    let ev = c.events();
    assert!(
        matches!(&ev[1], Event::Data { stream: 1, data, end_stream: false } if data.len() == 100)
    );
    // Past the stream's window: a stream error, the connection goes on.
    c.send(&frame(kind::DATA, 0, 1, &[7; 1])).unwrap();
    assert_eq!(rst_code(&c.frames(), 1), Some(code::FLOW_CONTROL_ERROR));
    assert!(matches!(
        c.events()[..],
        [Event::Reset {
            stream: 1,
            code: code::FLOW_CONTROL_ERROR,
            remote: false
        }]
    ));

    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 3, &post(150)))
        .unwrap();
    c.send(&frame(kind::DATA, 0, 3, &[7; 100])).unwrap();
    c.events();
    c.conn.release(3, 49);
    assert!(c.frames().iter().all(|f| f.kind != kind::WINDOW_UPDATE));
    c.conn.release(3, 1);
    let wu: Vec<(u32, u32)> = c
        .frames()
        .iter()
        .filter(|f| f.kind == kind::WINDOW_UPDATE)
        .map(|f| {
            (
                f.stream,
                u32::from_be_bytes(f.payload[..4].try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(wu, [(3, 50)]);
    c.send(&frame(kind::DATA, flag::END_STREAM, 3, &[7; 50]))
        .unwrap();
    assert!(matches!(
        &c.events()[..],
        [Event::Data {
            stream: 3,
            end_stream: true,
            ..
        }]
    ));
}

#[test]
fn a_client_reset_is_an_event_and_the_connection_serves_on() {
    let mut c = Client::new(Config::default(), &[]);
    c.open(1);
    c.send(&frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()))
        .unwrap();
    c.open(3);
    let ev = c.events();
    assert!(matches!(
        ev[1],
        Event::Reset {
            stream: 1,
            code: 8,
            remote: true
        }
    ));
    assert!(matches!(ev[2], Event::Request { stream: 3, .. }));
    assert_eq!(c.conn.send_response(1, 200, [], true), Err(StreamGone));
    assert!(c.conn.send_response(3, 200, [], true).is_ok());
}

#[test]
fn streams_past_the_limit_are_refused_before_the_server_sees_them() {
    let mut c = Client::new(
        Config {
            max_concurrent_streams: 2,
            ..Config::default()
        },
        &[],
    );
    for id in [1, 3, 5] {
        c.open(id);
    }
    let ev = c.events();
    assert_eq!(ev.len(), 3);
    assert!(matches!(
        ev[2],
        Event::Refused {
            stream: 5,
            code: code::REFUSED_STREAM,
            ..
        }
    ));
    assert_eq!(rst_code(&c.frames(), 5), Some(code::REFUSED_STREAM));
    // The refused stream's block was still decoded: the next one decodes.
    c.conn.send_response(1, 204, [], true).unwrap();
    c.open(7);
    assert!(matches!(c.events()[..], [Event::Request { stream: 7, .. }]));
}

#[test]
fn a_block_split_over_continuations_decodes_and_a_flood_ends_the_connection() {
    let mut c = Client::new(Config::default(), &[]);
    let b = get("/split");
    let mut input = frame(kind::HEADERS, flag::END_STREAM, 1, &b[..5]);
    input.extend(frame(kind::CONTINUATION, 0, 1, &b[5..9]));
    input.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &b[9..]));
    c.send(&input).unwrap();
    assert!(
        matches!(&c.events()[..], [Event::Request { stream: 1, head: Ok(h), .. }] if h.target() == b"/split")
    );

    let mut c = Client::new(
        Config {
            max_header_list_size: 1024,
            ..Config::default()
        },
        &[],
    );
    c.send(&frame(kind::HEADERS, 0, 1, &b[..5])).unwrap();
    let mut r = Ok(());
    for _ in 0..10 {
        r = c.send(&frame(kind::CONTINUATION, 0, 1, &[0; 16_000]));
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r.unwrap_err().code, code::ENHANCE_YOUR_CALM);
    assert_eq!(goaway_code(&c.frames()), Some(code::ENHANCE_YOUR_CALM));
}

#[test]
fn a_response_block_larger_than_a_frame_goes_out_in_continuations() {
    let mut c = Client::new(Config::default(), &[]);
    c.open(1);
    c.events();
    let big = vec![b'v'; 40_000];
    c.conn
        .send_response(1, 200, [(&b"x-big"[..], &big[..])], true)
        .unwrap();
    let out = c.frames();
    let kinds: Vec<(u8, u8)> = out.iter().map(|f| (f.kind, f.flags)).collect();
    assert_eq!(
        kinds,
        [
            (kind::HEADERS, flag::END_STREAM),
            (kind::CONTINUATION, 0),
            (kind::CONTINUATION, flag::END_HEADERS)
        ]
    );
    let joined = Out {
        kind: 1,
        flags: 0,
        stream: 1,
        payload: out.iter().flat_map(|f| f.payload.clone()).collect(),
    };
    assert_eq!(c.headers(&joined)[1].1.len(), 40_000);
}

#[test]
fn protocol_errors_get_their_codes() {
    use code::*;
    let h = |id, flags| frame(kind::HEADERS, flag::END_HEADERS | flags, id, &get("/"));
    // (what is sent after a stream 1 GET is open, connection error?, code)
    let cases: Vec<(&str, Vec<u8>, bool, u32)> = vec![
        (
            "DATA on stream 0",
            frame(kind::DATA, 0, 0, b"x"),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "DATA on an idle stream",
            frame(kind::DATA, 0, 9, b"x"),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "DATA after END_STREAM",
            frame(kind::DATA, 0, 1, b"x"),
            false,
            STREAM_CLOSED,
        ),
        (
            "padding too long",
            frame(kind::DATA, flag::PADDED, 1, &[5, 0]),
            true,
            PROTOCOL_ERROR,
        ),
        ("even stream", h(2, 0), true, PROTOCOL_ERROR),
        (
            "headers on stream 0",
            frame(kind::HEADERS, flag::END_HEADERS, 0, &get("/")),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "second HEADERS without END_STREAM",
            h(1, 0),
            false,
            STREAM_CLOSED,
        ),
        (
            "PRIORITY of 4 bytes",
            frame(kind::PRIORITY, 0, 1, &[0; 4]),
            false,
            FRAME_SIZE_ERROR,
        ),
        (
            "PRIORITY on itself",
            frame(kind::PRIORITY, 0, 1, &[0, 0, 0, 1, 16]),
            false,
            PROTOCOL_ERROR,
        ),
        (
            "RST_STREAM on stream 0",
            frame(kind::RST_STREAM, 0, 0, &[0; 4]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "RST_STREAM on an idle stream",
            frame(kind::RST_STREAM, 0, 5, &[0; 4]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "RST_STREAM of 3 bytes",
            frame(kind::RST_STREAM, 0, 1, &[0; 3]),
            true,
            FRAME_SIZE_ERROR,
        ),
        (
            "SETTINGS ACK with payload",
            frame(kind::SETTINGS, flag::ACK, 0, &[0; 6]),
            true,
            FRAME_SIZE_ERROR,
        ),
        (
            "SETTINGS on a stream",
            frame(kind::SETTINGS, 0, 1, &[]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "SETTINGS of 5 bytes",
            frame(kind::SETTINGS, 0, 0, &[0; 5]),
            true,
            FRAME_SIZE_ERROR,
        ),
        ("ENABLE_PUSH 2", settings(&[(0x2, 2)]), true, PROTOCOL_ERROR),
        (
            "window too large",
            settings(&[(0x4, 1 << 31)]),
            true,
            FLOW_CONTROL_ERROR,
        ),
        (
            "frame size too small",
            settings(&[(0x5, 100)]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "PING on a stream",
            frame(kind::PING, 0, 1, &[0; 8]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "PING of 6 bytes",
            frame(kind::PING, 0, 0, &[0; 6]),
            true,
            FRAME_SIZE_ERROR,
        ),
        (
            "GOAWAY on a stream",
            frame(kind::GOAWAY, 0, 1, &[0; 8]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "WINDOW_UPDATE of 0 on the connection",
            frame(kind::WINDOW_UPDATE, 0, 0, &[0; 4]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "WINDOW_UPDATE of 0 on a stream",
            frame(kind::WINDOW_UPDATE, 0, 1, &[0; 4]),
            false,
            PROTOCOL_ERROR,
        ),
        (
            "connection window overflow",
            frame(kind::WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
            true,
            FLOW_CONTROL_ERROR,
        ),
        (
            "stream window overflow",
            frame(kind::WINDOW_UPDATE, 0, 1, &0x7fff_ffffu32.to_be_bytes()),
            false,
            FLOW_CONTROL_ERROR,
        ),
        (
            "CONTINUATION alone",
            frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "PUSH_PROMISE",
            frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &[0; 4]),
            true,
            PROTOCOL_ERROR,
        ),
        (
            "frame over the size",
            frame(kind::DATA, 0, 1, &vec![0; 16_385]),
            true,
            FRAME_SIZE_ERROR,
        ),
        (
            "bad HPACK",
            frame(kind::HEADERS, flag::END_HEADERS, 3, &[0x80]),
            true,
            COMPRESSION_ERROR,
        ),
        (
            "lower stream id",
            h(1, flag::END_STREAM),
            true,
            STREAM_CLOSED,
        ),
    ];
    for (name, bytes, conn_error, code) in cases {
        let mut c = Client::new(Config::default(), &[]);
        let first = if name == "lower stream id" { 3 } else { 1 };
        c.send(&h(first, flag::END_STREAM)).unwrap();
        if name == "lower stream id" {
            c.conn.send_response(3, 200, [], true).unwrap();
        }
        c.frames();
        let r = c.send(&bytes);
        let out = c.frames();
        if conn_error {
            assert_eq!(r.map_err(|e| e.code), Err(code), "{name}");
            assert_eq!(goaway_code(&out), Some(code), "{name}");
        } else {
            assert!(r.is_ok(), "{name}: {r:?}");
            assert_eq!(rst_code(&out, 1), Some(code), "{name}: {out:?}");
        }
    }
}

#[test]
fn malformed_heads_and_bodies_reset_their_streams() {
    let mut c = Client::new(Config::default(), &[]);
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block(&[(":method", "GET"), (":path", "/")]),
    ))
    .unwrap();
    assert!(matches!(
        c.events()[..],
        [Event::Refused {
            stream: 1,
            code: code::PROTOCOL_ERROR,
            ..
        }]
    ));
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 3, &post(5)))
        .unwrap();
    c.send(&frame(kind::DATA, flag::END_STREAM, 3, b"abc"))
        .unwrap();
    assert_eq!(rst_code(&c.frames(), 3), Some(code::PROTOCOL_ERROR));
    let ev = c.events();
    assert!(
        matches!(
            ev.last(),
            Some(Event::Reset {
                stream: 3,
                code: code::PROTOCOL_ERROR,
                remote: false
            })
        ),
        "{ev:?}"
    );
    // Trailers end the body; trailers without END_STREAM do not.
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 5, &post(1)))
        .unwrap();
    c.send(&frame(kind::DATA, 0, 5, b"z")).unwrap();
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        5,
        &block(&[("x-sum", "1")]),
    ))
    .unwrap();
    let ev = c.events();
    assert!(
        matches!(
            ev.last(),
            Some(Event::Data {
                stream: 5,
                end_stream: true,
                ..
            })
        ),
        "{ev:?}"
    );
}

#[test]
fn pings_are_answered_and_an_unread_flood_ends_the_connection() {
    let mut c = Client::new(Config::default(), &[]);
    c.send(&frame(kind::PING, 0, 0, b"12345678")).unwrap();
    let out = c.frames();
    assert_eq!(
        (out[0].kind, out[0].flags, &out[0].payload[..]),
        (kind::PING, flag::ACK, &b"12345678"[..])
    );
    let ping = frame(kind::PING, 0, 0, b"12345678");
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 70_000)
        .collect();
    assert_eq!(c.send(&flood).unwrap_err().code, code::ENHANCE_YOUR_CALM);
}

#[test]
fn the_preface_may_come_in_pieces_and_a_wrong_one_is_refused() {
    let mut conn = Conn::new(Config::default());
    let mut all = PREFACE.to_vec();
    all.extend(settings(&[]));
    for b in all.chunks(5) {
        conn.recv(&mut BytesMut::from(b)).unwrap();
    }
    let mut conn = Conn::new(Config::default());
    assert_eq!(
        conn.recv(&mut BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]))
            .unwrap_err()
            .code,
        code::PROTOCOL_ERROR
    );
    let mut conn = Conn::new(Config::default());
    let mut input = PREFACE.to_vec();
    input.extend(frame(kind::PING, 0, 0, &[0; 8]));
    assert_eq!(
        conn.recv(&mut BytesMut::from(&input[..])).unwrap_err().code,
        code::PROTOCOL_ERROR
    );
}

#[test]
fn after_goaway_new_streams_are_ignored_and_open_ones_finish() {
    let mut c = Client::new(Config::default(), &[]);
    c.open(1);
    c.conn.go_away(code::NO_ERROR);
    c.open(3);
    let ev = c.events();
    assert_eq!(ev.len(), 1);
    let out = c.frames();
    assert_eq!(
        u32::from_be_bytes(out[0].payload[..4].try_into().unwrap()),
        1
    );
    assert!(c.conn.send_response(1, 200, [], true).is_ok());
}
