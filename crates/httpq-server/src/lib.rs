//! The httpq server: the HTTP Server API (http.sys) model on tokio.
//!
//! A [`ServerSession`] owns [`UrlGroup`]s; each group's URL prefixes route
//! requests into a [`RequestQueue`] bound to it. Applications *pull*
//! requests from queues (`receive`), answer them by request id
//! (`send_response`, `send_body`, `send_file`), and can wait for a
//! client's disconnect on a connection id — as a future, blocking, or
//! posted to a [`CompletionQueue`]. A session runs its connections on
//! workers, one per core, each with its own share of every queue.
//!
//! | concept | module |
//! |---|---|
//! | session, workers, listeners, shutdown | [`session`] |
//! | URL groups, prefixes, routing | [`url_group`] |
//! | request queues, requests, bodies | [`request_queue`] |
//! | responses, send flags, file bodies | [`response`] |
//! | wait-for-disconnect | [`disconnect`] |
//! | timeouts and limits | [`properties`] |
//! | TLS: certificates and their bindings | [`tls`] |
//! | HTTP/2 streams as requests | `http2` (see `docs/ARCHITECTURE.md`) |
//!
//! The protocol itself — pipelining, keep-alive, 100-continue, drain,
//! error answers, timeouts as deadlines — is
//! [`httpq_proto::server_conn`]; this crate drives it on tokio.

// Top down: each module imports only modules listed after it.
#[doc(hidden)]
pub mod fuzzing;
pub mod session;
pub mod observe;
mod worker;
mod driver;
mod http2;
mod site;
mod routes;
pub mod url_group;
pub mod request_queue;
mod registry;
mod conn;
mod stream;
pub mod tls;
mod error;
pub mod disconnect;
pub mod properties;
pub mod response;
mod counters;
mod record;
mod date;
mod block_on;
mod memory;
mod ids;

pub use counters::CounterSnapshot;
pub use disconnect::{Completion, CompletionQueue, DisconnectReason, TimeoutKind};
pub use error::ServerError;
pub use observe::{
    AccessLog, ConnectionState, CurrentRequest, DisconnectRecord, Histogram, MetricsSnapshot,
    PrefixState, QueueState, RequestCount, ServiceState, SessionState, UrlGroupState,
};
pub use properties::{
    HalfClosePolicy, Http2Settings, OverflowPolicy, Properties, TcpKeepalive, Timeouts,
};
pub use request_queue::{BodyStream, Request, RequestQueue};
pub use response::{FileChunk, Response, SendFlags};
pub use session::ServerSession;
pub use tls::{CertBinding, Certificate, TlsInfo};
pub use url_group::{UrlGroup, UrlPrefix};
