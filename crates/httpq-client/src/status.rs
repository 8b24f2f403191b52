//! Status notifications: the WinInet numbers and names, what each carries,
//! and curl-style per-phase timings of a request.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ClientError;

/// A status notification's kind: WinInet's numbers and names, plus the
/// phases modern tools report (TLS handshake, first byte, reused or new
/// connection), numbered outside WinInet's range.
///
/// ```
/// use httpq_client::Status;
/// assert_eq!(Status::RequestComplete.number(), 100);
/// assert_eq!(Status::ResolvingName.name(), "RESOLVING_NAME");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 10: looking up the host name.
    ResolvingName,
    /// 11: the name resolved (payload: the address chosen).
    NameResolved,
    /// 20: connecting to an address.
    ConnectingToServer,
    /// 21: connected.
    ConnectedToServer,
    /// 30: sending the request.
    SendingRequest,
    /// 31: the request was sent (payload: bytes).
    RequestSent,
    /// 40: waiting for response bytes.
    ReceivingResponse,
    /// 41: response bytes arrived (payload: bytes).
    ResponseReceived,
    /// 50: closing a connection.
    ClosingConnection,
    /// 51: the connection is closed.
    ConnectionClosed,
    /// 60: a handle was created (always its first notification).
    HandleCreated,
    /// 70: the handle is closing (always its last notification).
    HandleClosing,
    /// 100: a pending operation completed (payload: its result).
    RequestComplete,
    /// 110: following a redirect (payload: the new URL).
    Redirect,
    /// 120: an interim 1xx response arrived (payload: its status).
    IntermediateResponse,
    /// 130: TLS handshake starts.
    TlsHandshakeStart,
    /// 131: TLS handshake done.
    TlsHandshakeComplete,
    /// 140: the first byte of the response arrived.
    FirstByte,
    /// 150: a pooled keep-alive connection is used (no resolve or connect).
    ConnectionReused,
    /// 151: a new connection is used.
    ConnectionNew,
}

impl Status {
    /// The number (WinInet's where WinInet has one).
    pub fn number(self) -> u32 {
        use Status::*;
        match self {
            ResolvingName => 10,
            NameResolved => 11,
            ConnectingToServer => 20,
            ConnectedToServer => 21,
            SendingRequest => 30,
            RequestSent => 31,
            ReceivingResponse => 40,
            ResponseReceived => 41,
            ClosingConnection => 50,
            ConnectionClosed => 51,
            HandleCreated => 60,
            HandleClosing => 70,
            RequestComplete => 100,
            Redirect => 110,
            IntermediateResponse => 120,
            TlsHandshakeStart => 130,
            TlsHandshakeComplete => 131,
            FirstByte => 140,
            ConnectionReused => 150,
            ConnectionNew => 151,
        }
    }

    /// The name (WinInet's without the `INTERNET_STATUS_` prefix).
    pub fn name(self) -> &'static str {
        use Status::*;
        match self {
            ResolvingName => "RESOLVING_NAME",
            NameResolved => "NAME_RESOLVED",
            ConnectingToServer => "CONNECTING_TO_SERVER",
            ConnectedToServer => "CONNECTED_TO_SERVER",
            SendingRequest => "SENDING_REQUEST",
            RequestSent => "REQUEST_SENT",
            ReceivingResponse => "RECEIVING_RESPONSE",
            ResponseReceived => "RESPONSE_RECEIVED",
            ClosingConnection => "CLOSING_CONNECTION",
            ConnectionClosed => "CONNECTION_CLOSED",
            HandleCreated => "HANDLE_CREATED",
            HandleClosing => "HANDLE_CLOSING",
            RequestComplete => "REQUEST_COMPLETE",
            Redirect => "REDIRECT",
            IntermediateResponse => "INTERMEDIATE_RESPONSE",
            TlsHandshakeStart => "TLS_HANDSHAKE_START",
            TlsHandshakeComplete => "TLS_HANDSHAKE_COMPLETE",
            FirstByte => "FIRST_BYTE",
            ConnectionReused => "CONNECTION_REUSED",
            ConnectionNew => "CONNECTION_NEW",
        }
    }
}

/// What a notification carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Nothing more.
    None,
    /// A host name (RESOLVING_NAME, TLS_HANDSHAKE_START).
    Host(String),
    /// An address (NAME_RESOLVED, CONNECTING_TO_SERVER, CONNECTED_TO_SERVER).
    Address(SocketAddr),
    /// A byte count (REQUEST_SENT, RESPONSE_RECEIVED).
    Bytes(u64),
    /// A URL (REDIRECT: the new one).
    Url(String),
    /// A status code (INTERMEDIATE_RESPONSE).
    Status(u16),
    /// A connection id (CONNECTION_REUSED/NEW, CLOSING_CONNECTION, CONNECTION_CLOSED).
    Connection(u64),
    /// The parent handle's id, 0 for none (HANDLE_CREATED).
    Parent(u64),
    /// The result of a pending operation (REQUEST_COMPLETE).
    Complete(Result<(), ClientError>),
}

/// One status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The handle it is about.
    pub handle: u64,
    /// The caller's context value of that handle.
    pub context: u64,
    /// What happened.
    pub status: Status,
    /// Its details.
    pub payload: Payload,
    /// Time since the session started.
    pub elapsed: Duration,
}

/// Per-phase timings of a request, each counted from when it started, like
/// curl's `time_namelookup` ... `time_total` (`None`: the phase did not
/// happen, e.g. no lookup on a reused connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Name resolution done.
    pub name_lookup: Option<Duration>,
    /// TCP connected.
    pub connect: Option<Duration>,
    /// TLS handshake done.
    pub tls: Option<Duration>,
    /// About to send the request.
    pub pretransfer: Option<Duration>,
    /// First response byte.
    pub first_byte: Option<Duration>,
    /// Body complete.
    pub total: Option<Duration>,
    /// Time spent in redirects before the final request started.
    pub redirect: Option<Duration>,
}
