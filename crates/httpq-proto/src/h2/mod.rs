//! HTTP/2 (RFC 9113), server side, sans-IO: the connection's frames,
//! stream states, flow control and header blocks, decided without sockets.
//!
//! [`Conn`] takes the client's bytes and yields [`Event`]s: a request
//! head per new stream (checked as RFC 9113 §8 asks, and handed over in
//! HTTP/1.1 form so one parser and one set of limits judge both versions),
//! request body, resets, GOAWAY. The server answers through the same
//! `Conn` (`send_response`, `send_data`, `reset`, `release`) and writes
//! what [`Conn::take_output`] gives.
//!
//! What it defends against, and how:
//! - **HPACK bombs**: a decoded header list past
//!   SETTINGS_MAX_HEADER_LIST_SIZE is not kept (the request is answered
//!   431), and the decoder's table stays at 4096 bytes;
//! - **CONTINUATION floods**: a header block over twice that limit (64 KiB
//!   at least) ends the connection with ENHANCE_YOUR_CALM;
//! - **unbounded streams**: past SETTINGS_MAX_CONCURRENT_STREAMS a new
//!   stream is refused (REFUSED_STREAM) before the server sees it;
//! - **control-frame floods** (PING, SETTINGS, frames that draw a
//!   RST_STREAM) from a client that does not read: ENHANCE_YOUR_CALM once
//!   1 MiB of answers waits unread;
//! - **rapid reset** (CVE-2023-44487): every reset of a stream the server
//!   saw is an [`Event::Reset`], which the server budgets.
//!
//! Why our own engine rather than the `h2` crate, by measurement
//! (`bench/h2.sh`, h2load against `httpq serve DIR` on one core): on the
//! crate the server spent about 37,000 instructions per request against
//! nghttpd's 13,300, three quarters of them in the crate (its HPACK
//! encoder alone about 14 %), and served 0.39× nghttpd's requests per
//! second. On this engine it spends about 13,700 and serves about 1.0×.
//! Here a response's HEADERS are encoded straight into the output buffer
//! and small DATA is copied beside it, so a burst of answers leaves in
//! one write; it passes h2spec as the crate did.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use httpq_proto::h2::{Config, Conn, Event, PREFACE};
//! let mut conn = Conn::new(Config::default());
//! let mut input = BytesMut::from(PREFACE);
//! input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS
//! // HEADERS, stream 1, END_STREAM | END_HEADERS: GET http://a/ (static-table fields)
//! input.extend_from_slice(&[0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x01, 0x01, b'a']);
//! conn.recv(&mut input).unwrap();
//! let Some(Event::Request { stream: 1, head: Ok(head), end_stream: true }) = conn.poll_event() else {
//!     panic!("no request")
//! };
//! assert_eq!(head.target(), b"/");
//! conn.send_response(1, 200, [(&b"content-type"[..], &b"text/plain"[..])], false).unwrap();
//! conn.send_data(1, Bytes::from_static(b"hi"), true).unwrap();
//! let mut out = Vec::new();
//! conn.take_output(&mut out); // SETTINGS, SETTINGS ACK, HEADERS, DATA
//! assert!(!out.is_empty());
//! ```

mod conn;
mod frame;
mod hpack;
#[cfg(test)]
mod tests;

pub use conn::{Config, Conn, ConnError, Event, StreamGone};
pub use frame::{code, PREFACE};
pub use hpack::{HeadError, RequestFields};
