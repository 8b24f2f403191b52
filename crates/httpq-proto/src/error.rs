//! The one error type of the protocol core.
//! Every variant knows the HTTP status a server answers with and a short reason.

use std::fmt;

/// Everything the protocol core can reject, request side and response side.
///
/// A server answers [`Error::status`] with [`Error::reason`] as the body and
/// closes the connection; a client reports the variant as-is.
///
/// ```
/// use httpq_proto::Error;
/// assert_eq!(Error::ContentLengthWithTransferEncoding.status(), 400);
/// assert_eq!(Error::TooManyHeaders.status(), 431);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    // ---- 400: the message is malformed or ambiguous ----
    /// The request line is not `method SP target SP version`.
    BadRequestLine,
    /// The version is not `HTTP/<digit>.<digit>`.
    BadVersion,
    /// A header name holds a byte that is not a token character, or
    /// whitespace stands between the name and the colon.
    InvalidHeaderName,
    /// A header value holds NUL, a bare CR or another control character.
    InvalidHeaderValue,
    /// A line ending is not CRLF or LF (a bare CR), or a line is malformed.
    InvalidNewLine,
    /// The request target is not in a form allowed for its method.
    InvalidTarget,
    /// An HTTP/1.1 request has no Host header.
    MissingHost,
    /// A request has more than one Host header.
    MultipleHost,
    /// The Host header (or the authority of the target) is not a valid authority.
    InvalidHost,
    /// A Content-Length value is not plain decimal digits, or overflows.
    InvalidContentLength,
    /// Content-Length values disagree.
    ConflictingContentLength,
    /// Both Content-Length and Transfer-Encoding are present.
    ContentLengthWithTransferEncoding,
    /// The final transfer coding of a request is not `chunked`, or `chunked`
    /// appears more than once.
    ChunkedNotFinal,
    /// Transfer-Encoding in an HTTP/1.0 message, whose framing is then faulty.
    TransferEncodingInHttp10,
    /// A Transfer-Encoding value is empty or not a list of tokens.
    InvalidTransferEncoding,
    /// The URL has a bad percent-escape, an encoded NUL, or is not UTF-8 once decoded.
    InvalidUrlEncoding,
    /// A path segment of the URL is longer than the limit.
    UrlSegmentTooLong,
    /// The URL has more path segments than the limit.
    TooManyUrlSegments,
    /// A chunk size is not 1 to 16 hex digits, or overflows.
    InvalidChunkSize,
    /// A chunk-size line or chunk data is not followed by CRLF.
    InvalidChunkTerminator,
    /// A chunk extension is malformed.
    InvalidChunkExtension,
    /// Chunk extensions exceed their cap.
    ChunkExtensionsTooLarge,
    /// Obsolete line folding in a request header.
    ObsoleteLineFolding,

    // ---- 413 ----
    /// The body is larger than the configured maximum.
    BodyTooLarge,

    // ---- 414 ----
    /// The request line is longer than the head limit.
    UriTooLong,

    // ---- 417 ----
    /// An `Expect` value other than `100-continue`.
    ExpectationFailed,

    // ---- 431 ----
    /// The request line and headers exceed the head limit.
    HeadTooLarge,
    /// One header field exceeds the field limit.
    FieldTooLarge,
    /// More header fields than the limit.
    TooManyHeaders,
    /// The trailer section exceeds its size or count limit.
    TrailersTooLarge,

    // ---- 501 ----
    /// A transfer coding other than `chunked` that this side does not implement.
    UnsupportedTransferCoding,

    // ---- 505 ----
    /// A well-formed version this implementation does not speak (`HTTP/2.0`, `HTTP/3.0`, ...).
    VersionNotSupported,

    // ---- response side (what a client reports; a proxy would answer 502) ----
    /// The status line is not `HTTP/x.y SP 3DIGIT SP reason`.
    BadStatusLine,
    /// More interim (1xx) responses than the limit.
    TooManyInformational,
    /// The connection closed before the body was complete.
    IncompleteBody,
    /// The connection closed in the middle of a message head.
    IncompleteHead,
}

impl Error {
    /// The HTTP status a server answers this error with.
    ///
    /// Response-side errors map to 502, the status a gateway would use.
    ///
    /// ```
    /// assert_eq!(httpq_proto::Error::UriTooLong.status(), 414);
    /// ```
    pub fn status(&self) -> u16 {
        use Error::*;
        match self {
            BodyTooLarge => 413,
            UriTooLong => 414,
            ExpectationFailed => 417,
            HeadTooLarge | FieldTooLarge | TooManyHeaders | TrailersTooLarge => 431,
            UnsupportedTransferCoding => 501,
            VersionNotSupported => 505,
            BadStatusLine | TooManyInformational | IncompleteBody => 502,
            // A request cut off mid-head never gets an answer in practice (the
            // peer is gone); 400 is what it would be.
            _ => 400,
        }
    }

    /// True for the errors a message *body* can raise (chunked framing, size,
    /// trailers, an early end), as opposed to a malformed head.
    ///
    /// ```
    /// assert!(httpq_proto::Error::InvalidChunkSize.is_body_error());
    /// assert!(!httpq_proto::Error::MissingHost.is_body_error());
    /// ```
    pub fn is_body_error(&self) -> bool {
        use Error::*;
        matches!(
            self,
            InvalidChunkSize
                | InvalidChunkTerminator
                | InvalidChunkExtension
                | ChunkExtensionsTooLarge
                | BodyTooLarge
                | TrailersTooLarge
                | IncompleteBody
        )
    }

    /// A short human reason, suitable as a response body.
    ///
    /// ```
    /// assert_eq!(httpq_proto::Error::MissingHost.reason(), "missing Host header");
    /// ```
    pub fn reason(&self) -> &'static str {
        use Error::*;
        match self {
            BadRequestLine => "malformed request line",
            BadVersion => "malformed HTTP version",
            InvalidHeaderName => "invalid header name",
            InvalidHeaderValue => "invalid header value",
            InvalidNewLine => "invalid line ending",
            InvalidTarget => "invalid request target",
            MissingHost => "missing Host header",
            MultipleHost => "more than one Host header",
            InvalidHost => "invalid Host header",
            InvalidContentLength => "invalid Content-Length",
            ConflictingContentLength => "conflicting Content-Length values",
            ContentLengthWithTransferEncoding => "Content-Length together with Transfer-Encoding",
            ChunkedNotFinal => "chunked is not the final transfer coding",
            TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 message",
            InvalidTransferEncoding => "invalid Transfer-Encoding",
            InvalidUrlEncoding => "invalid URL encoding",
            UrlSegmentTooLong => "URL segment too long",
            TooManyUrlSegments => "too many URL segments",
            InvalidChunkSize => "invalid chunk size",
            InvalidChunkTerminator => "invalid chunk terminator",
            InvalidChunkExtension => "invalid chunk extension",
            ChunkExtensionsTooLarge => "chunk extensions too large",
            ObsoleteLineFolding => "obsolete line folding",
            BodyTooLarge => "body too large",
            UriTooLong => "URI too long",
            ExpectationFailed => "unsupported expectation",
            HeadTooLarge => "header section too large",
            FieldTooLarge => "header field too large",
            TooManyHeaders => "too many headers",
            TrailersTooLarge => "trailer section too large",
            UnsupportedTransferCoding => "unsupported transfer coding",
            VersionNotSupported => "HTTP version not supported",
            BadStatusLine => "malformed status line",
            TooManyInformational => "too many interim responses",
            IncompleteBody => "body ended early",
            IncompleteHead => "connection closed in the middle of a message head",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Error {}
