//! HTTP/2 frames on the wire (RFC 9113 §4, §6): the 9-byte frame header,
//! the frame types, flags, error codes and settings this engine speaks,
//! and the writers of the frames a server sends.

use bytes::{BufMut, BytesMut};

/// The client's connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 9;

/// The largest window a flow-control window may reach (2^31 - 1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The default initial window and SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

pub(crate) mod kind {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

pub(crate) mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// HTTP/2 error codes (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

pub(crate) mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    /// The stream identifier, reserved bit cleared.
    pub stream: u32,
}

impl Head {
    /// Reads a frame header from the first 9 bytes of `b`.
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Writes a frame header.
pub(crate) fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len < 1 << 24);
    let b = [
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        kind,
        flags,
        (stream >> 24) as u8,
        (stream >> 16) as u8,
        (stream >> 8) as u8,
        stream as u8,
    ];
    out.extend_from_slice(&b);
}

pub(crate) fn put_rst(out: &mut BytesMut, stream: u32, code: u32) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.put_u32(code);
}

pub(crate) fn put_window_update(out: &mut BytesMut, stream: u32, inc: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.put_u32(inc);
}

pub(crate) fn put_goaway(out: &mut BytesMut, last_stream: u32, code: u32) {
    put_head(out, 8, kind::GOAWAY, 0, 0);
    out.put_u32(last_stream);
    out.put_u32(code);
}

pub(crate) fn put_settings(out: &mut BytesMut, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, kind::SETTINGS, 0, 0);
    for &(id, value) in settings {
        out.put_u16(id);
        out.put_u32(value);
    }
}

/// Strips a PADDED frame's padding; `None` when the padding is as long
/// as the payload or longer (a PROTOCOL_ERROR, RFC 9113 §6.1).
pub(crate) fn unpad(flags: u8, payload: &[u8]) -> Option<(usize, usize)> {
    if flags & flag::PADDED == 0 {
        return Some((0, payload.len()));
    }
    let pad = usize::from(*payload.first()?);
    if pad >= payload.len() {
        return None;
    }
    Some((1, payload.len() - pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_the_reserved_bit_is_ignored() {
        let mut out = BytesMut::new();
        put_head(&mut out, 0x01_02_03, kind::HEADERS, 0x25, 7);
        let mut b = out.to_vec();
        b[5] |= 0x80;
        let h = Head::parse(&b);
        assert_eq!(
            h,
            Head {
                len: 0x010203,
                kind: 1,
                flags: 0x25,
                stream: 7
            }
        );
        assert!(h.has(flag::END_HEADERS) && h.has(flag::PRIORITY) && !h.has(flag::PADDED));
    }

    #[test]
    fn padding_as_long_as_the_payload_is_refused() {
        assert_eq!(unpad(flag::PADDED, &[2, b'a', 0, 0]), Some((1, 2)));
        assert_eq!(unpad(flag::PADDED, &[3, 0, 0, 0]), Some((1, 1)));
        assert_eq!(unpad(flag::PADDED, &[4, 0, 0, 0]), None);
        assert_eq!(unpad(flag::PADDED, &[]), None);
        assert_eq!(unpad(0, b"abc"), Some((0, 3)));
    }
}
