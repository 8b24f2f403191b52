//! The sans-IO HTTP/1.1 (and HTTP/2, server side) protocol core shared by httpq's server and client.
//!
//! No sockets, no async, no clock: bytes go in, parsed heads, body ranges
//! and encoded bytes come out. Both halves of httpq drive it; it is
//! deterministic, tested without sockets, and fuzzed.
//!
//! | concept | module |
//! |---|---|
//! | request heads (server side) | [`request`] |
//! | response heads (client side) | [`response`] |
//! | one server connection, sans-IO: pipelining, answers, timeouts | [`server_conn`] |
//! | one HTTP/2 server connection, sans-IO: frames, streams, flow control, header blocks | [`h2`] |
//! | body framing and the body decoder | [`framing`] |
//! | chunked coding | [`chunked`] |
//! | head encoders | [`encode`] |
//! | cooked URLs | [`url`] |
//! | limits and errors | [`Limits`], [`Error`] |
//!
//! Strictness is the point (DESIGN.md §5): anything ambiguous — conflicting
//! lengths, Content-Length with Transfer-Encoding, obs-fold, bare CR, bad
//! chunk sizes — is rejected with a typed [`Error`] that knows its status.
//!
//! ```
//! use bytes::BytesMut;
//! use httpq_proto::{BodyDecoder, Limits, RequestParser};
//! let limits = Limits::default();
//! let mut buf = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..]);
//! let head = RequestParser::new(limits).parse(&mut buf).unwrap().unwrap();
//! let mut body = BodyDecoder::new(head.body(), &limits);
//! let d = body.decode(&buf).unwrap();
//! assert_eq!(&buf[d.data], b"abc");
//! ```

// Top down: each module imports only modules listed after it.
#[doc(hidden)]
pub mod fuzzing;
pub mod server_conn;
pub mod h2;
pub mod request;
pub mod response;
pub mod framing;
pub mod chunked;
pub mod encode;
mod head;
pub mod url;
mod limits;
mod method;
mod error;

pub use chunked::{ChunkHeader, ChunkedDecoder, ChunkedEncoder, Decoded, CHUNK_END};
pub use encode::{encode_request_head, encode_response_head, encode_status_line, HeadBuf};
pub use error::Error;
pub use framing::{BodyDecoder, BodyLength};
pub use head::{HeaderIter, Version, MAX_HEAD_BYTES};
pub use limits::Limits;
pub use method::MethodKind;
pub use request::{RequestHead, RequestParser, TargetForm};
pub use response::{ResponseHead, ResponseParser};
pub use url::CookedUrl;
