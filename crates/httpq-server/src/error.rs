//! The server's error type: what an API call can fail with, named after the
//! HTTP Server API's error codes where one fits.

use std::net::SocketAddr;

/// Errors returned by the server API.
///
/// ```
/// use httpq_server::ServerError;
/// let e = ServerError::ConnectionInvalid;
/// assert_eq!(e.to_string(), "the request or connection id is not (or no longer) valid");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A URL prefix is malformed.
    #[error("invalid URL prefix {prefix:?}: {why}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The prefix is already registered (ERROR_ALREADY_EXISTS).
    #[error("URL prefix {0} is already registered")]
    DuplicatePrefix(String),
    /// The prefix is not registered in this group (ERROR_FILE_NOT_FOUND).
    #[error("URL prefix {0} is not registered in this group")]
    PrefixNotFound(String),
    /// A listening socket could not be opened (another process holds the port).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The URL group is not bound to a request queue.
    #[error("the URL group is not bound to a request queue")]
    NotBound,
    /// The queue was shut down, or the session closed (ERROR_OPERATION_ABORTED).
    #[error("the operation was aborted: the request queue or server is shutting down")]
    Aborted,
    /// The request id was answered, cancelled, never existed, or its
    /// connection is gone (ERROR_CONNECTION_INVALID).
    #[error("the request or connection id is not (or no longer) valid")]
    ConnectionInvalid,
    /// An id that was never issued (ERROR_INVALID_PARAMETER).
    #[error("unknown id {0}")]
    UnknownId(u64),
    /// The response or body chunk is not valid (bad header, body after a
    /// response without MORE_DATA, ...).
    #[error("invalid response: {0}")]
    InvalidResponse(&'static str),
    /// The request body was malformed, or its connection broke while reading it.
    #[error("request body: {0}")]
    Body(#[from] httpq_proto::Error),
    /// The connection broke while reading the request body.
    #[error("the connection was closed: {0}")]
    Disconnected(crate::disconnect::DisconnectReason),
    /// A session property is not usable as given.
    #[error("invalid property: {0}")]
    InvalidProperty(&'static str),
    /// The request asks for something httpq does not do (yet).
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// A certificate or key could not be used (unreadable, not PEM, a key
    /// that does not fit its certificate).
    #[error("certificate: {0}")]
    Certificate(String),
    /// A runtime could not be created.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
