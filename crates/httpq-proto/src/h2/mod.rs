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
//! Why our own engine rather than the `h2` crate: measured with h2load
//! (`bench/h2.sh`), the crate's path cost about 37,000 instructions per
//! request against nghttpd's 13,000, most of it in the crate (its HPACK
//! encoder alone about 14 %), which held `httpq serve` to 0.39× nghttpd.
//! Here a response's HEADERS are encoded straight into the output buffer
//! and small DATA is copied beside it, so a pipelined burst of answers
//! leaves in one write.

mod conn;
mod frame;
mod hpack;
#[cfg(test)]
mod tests;

pub use conn::{Config, Conn, ConnError, Event, StreamGone};
pub use frame::{code, PREFACE};
pub use hpack::{HeadError, RequestFields};
