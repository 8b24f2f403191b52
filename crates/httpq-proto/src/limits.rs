//! Size and count limits the protocol core enforces while parsing.
//! Defaults are the HTTP Server API's (DESIGN.md §1); every one is configurable.

/// Limits applied by the parsers and decoders.
///
/// ```
/// use httpq_proto::Limits;
/// let strict = Limits { max_headers: 20, ..Limits::default() };
/// assert_eq!(strict.max_head_bytes, 16 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line (or status line) plus all header lines, in bytes
    /// (MaxRequestBytes); at most [`MAX_HEAD_BYTES`](crate::MAX_HEAD_BYTES).
    pub max_head_bytes: usize,
    /// One header field, name plus value, in bytes (MaxFieldLength).
    pub max_field_bytes: usize,
    /// Number of header fields.
    pub max_headers: usize,
    /// Length of one decoded path segment of the cooked URL (UrlSegmentMaxLength).
    pub max_url_segment_len: usize,
    /// Number of path segments of the cooked URL (UrlSegmentMaxCount).
    pub max_url_segments: usize,
    /// Bytes of chunk extensions accepted over one whole chunked body.
    pub max_chunk_ext_bytes: usize,
    /// Bytes of the trailer section of a chunked body.
    pub max_trailer_bytes: usize,
    /// Number of trailer fields.
    pub max_trailers: usize,
    /// Largest body accepted (a larger Content-Length, or a chunked body
    /// growing past it, is [`Error::BodyTooLarge`](crate::Error::BodyTooLarge)).
    pub max_body_bytes: u64,
    /// Interim (1xx) responses accepted before the final response.
    pub max_informational: usize,
}

impl Limits {
    /// The defaults, as a constant (usable in `const` contexts).
    pub const DEFAULT: Limits = Limits {
        max_head_bytes: 16 * 1024,
        max_field_bytes: 16 * 1024,
        max_headers: 100,
        max_url_segment_len: 260,
        max_url_segments: 255,
        max_chunk_ext_bytes: 16 * 1024,
        max_trailer_bytes: 16 * 1024,
        max_trailers: 100,
        max_body_bytes: u64::MAX,
        max_informational: 10,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
