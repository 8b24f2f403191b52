//! The httpq server: the HTTP Server API (http.sys) model on tokio.
//!
//! A [`ServerSession`] owns [`UrlGroup`]s; each group's URL prefixes route
//! requests into a [`RequestQueue`] bound to it. Applications *pull*
//! requests from queues (`receive`), answer them by request id
//! (`send_response`, `send_body`), and can wait for a client's disconnect on
//! a connection id — as a future, blocking, or posted to a
//! [`CompletionQueue`].
//!
//! | concept | module |
//! |---|---|
//! | session, listeners, shutdown | [`session`] |
//! | URL groups, prefixes, routing | [`url_group`] |
//! | request queues, requests, bodies | [`request_queue`] |
//! | responses and send flags | [`response`] |
//! | wait-for-disconnect | [`disconnect`] |
//! | timeouts and limits | [`properties`] |

mod block_on;
mod connection;
mod counters;
mod date;
pub mod disconnect;
mod error;
mod outbuf;
pub mod properties;
mod registry;
pub mod request_queue;
pub mod response;
pub mod session;
pub mod url_group;

pub use counters::CounterSnapshot;
pub use disconnect::{Completion, CompletionQueue, DisconnectReason, TimeoutKind};
pub use error::ServerError;
pub use properties::{HalfClosePolicy, OverflowPolicy, Properties, TcpKeepalive, Timeouts};
pub use request_queue::{BodyStream, Request, RequestQueue};
pub use response::{Response, SendFlags};
pub use session::ServerSession;
pub use url_group::{UrlGroup, UrlPrefix};
