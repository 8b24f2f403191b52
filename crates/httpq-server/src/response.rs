//! Responses as the application hands them over, the send flags, and file
//! bodies. The types are the protocol core's
//! ([`httpq_proto::server_conn`]), where the framing the server adds
//! (Content-Length, chunked, or close-delimited) is decided.

pub use httpq_proto::server_conn::{FileChunk, Response, SendFlags};
