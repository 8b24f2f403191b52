//! Request ids: a connection id and the request's sequence number on
//! it, in one `u64` that names the request to the application.

/// Request ids carry their connection: `connection_id << SEQ_BITS | seq`.
/// 24 bits allow 16 M requests per connection (the connection is closed
/// gracefully before the sequence would wrap); 40 bits of connection id
/// last a server accepting 100 k connections a second for four months.
pub(crate) const SEQ_BITS: u32 = 24;
pub(crate) const MAX_SEQ: u32 = (1 << SEQ_BITS) - 1;

pub(crate) fn request_id(conn_id: u64, seq: u32) -> u64 {
    (conn_id << SEQ_BITS) | u64::from(seq)
}

pub(crate) fn split_request_id(id: u64) -> (u64, u32) {
    (id >> SEQ_BITS, (id & u64::from(MAX_SEQ)) as u32)
}
