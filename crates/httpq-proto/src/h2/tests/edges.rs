//! Edges a review of the engine found: late body of a client, frames on
//! streams this side reset, the client's smaller HPACK table, unread
//! output that is not owed answers, and paths not in origin form.

use super::*;

#[test]
fn body_still_waiting_for_window_survives_the_clients_end_stream() {
    let mut c = Client::new(Config::default(), &[]);
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &post(3)))
        .unwrap();
    c.events();
    c.conn.send_response(1, 200, [], false).unwrap();
    c.conn
        .send_data(1, Bytes::from(vec![b'r'; 70_000]), true)
        .unwrap();
    let sent = |frames: &[Out]| -> usize {
        frames
            .iter()
            .filter(|f| f.kind == kind::DATA)
            .map(|f| f.payload.len())
            .sum()
    };
    assert_eq!(sent(&c.frames()), 65_535);
    // The client finishes its body while the rest of the answer waits.
    c.send(&frame(kind::DATA, flag::END_STREAM, 1, b"abc"))
        .unwrap();
    c.send(&frame(kind::WINDOW_UPDATE, 0, 0, &10_000u32.to_be_bytes()))
        .unwrap();
    c.send(&frame(kind::WINDOW_UPDATE, 0, 1, &10_000u32.to_be_bytes()))
        .unwrap();
    let out = c.frames();
    assert_eq!(sent(&out), 70_000 - 65_535);
    assert!(out
        .iter()
        .any(|f| f.kind == kind::DATA && f.flags & flag::END_STREAM != 0));
    assert_eq!(c.conn.open_streams(), 0);
}

#[test]
fn frames_on_a_stream_this_side_reset_are_ignored_not_a_connection_error() {
    let mut c = Client::new(Config::default(), &[]);
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &post(5)))
        .unwrap();
    c.events();
    c.conn.reset(1, code::CANCEL);
    c.frames();
    // What the client sent before it saw the reset: DATA, then trailers.
    c.send(&frame(kind::DATA, 0, 1, b"ab")).unwrap();
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block(&[("x-t", "1")]),
    ))
    .unwrap();
    let out = c.frames();
    assert!(
        goaway_code(&out).is_none() && rst_code(&out, 1).is_none(),
        "{out:?}"
    );
    // The connection serves on.
    c.open(3);
    assert!(matches!(c.events()[..], [Event::Request { stream: 3, .. }]));
}

#[test]
fn a_smaller_client_table_is_signalled_before_the_next_response_block() {
    let mut c = Client::new(Config::default(), &[(0x1, 0)]);
    c.open(1);
    c.events();
    c.conn.send_response(1, 200, [], true).unwrap();
    let out = c.frames();
    assert_eq!(
        out[0].payload[0], 0x20,
        "a size update to 0 opens the block"
    );
    c.open(3);
    c.events();
    c.conn.send_response(3, 200, [], true).unwrap();
    assert_eq!(c.frames()[0].payload[0], 0x88, "only once");
}

#[test]
fn output_waiting_to_be_written_is_not_an_unread_flood() {
    let mut c = Client::new(Config::default(), &[(0x4, 1 << 30)]);
    c.send(&frame(
        kind::WINDOW_UPDATE,
        0,
        0,
        &(1u32 << 30).to_be_bytes(),
    ))
    .unwrap();
    c.open(1);
    c.events();
    c.conn.send_response(1, 200, [], false).unwrap();
    for _ in 0..1000 {
        c.conn
            .send_data(1, Bytes::from(vec![b'd'; 3000]), false)
            .unwrap();
    }
    // 3 MB of answer not taken yet, then a keepalive PING.
    assert!(c.send(&frame(kind::PING, 0, 0, b"keepaliv")).is_ok());
}

#[test]
fn a_path_not_in_origin_form_is_malformed() {
    let mut c = Client::new(Config::default(), &[]);
    let abs = block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "http://evil/x"),
        (":authority", "a"),
    ]);
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &abs,
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
    let star = block(&[
        (":method", "OPTIONS"),
        (":scheme", "http"),
        (":path", "*"),
        (":authority", "a"),
    ]);
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &star,
    ))
    .unwrap();
    assert!(matches!(c.events()[..], [Event::Request { stream: 3, .. }]));
}
