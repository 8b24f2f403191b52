//! What a session's connections need of it, shared by its workers: the
//! environment every connection reads, the routing table, the
//! properties, and the TLS certificate bindings.

use std::sync::{Arc, RwLock};

use httpq_proto::server_conn::ConnConfig;

use crate::conn::ConnEnv;
use crate::properties::Properties;
use crate::routes::RouteTable;
use crate::tls::TlsStore;

/// What a session's connections need of it, shared by its workers.
pub(crate) struct Site {
    pub env: Arc<ConnEnv>,
    pub routes: Arc<RouteTable>,
    pub props: RwLock<Properties>,
    pub tls: TlsStore,
}

impl Site {
    pub(crate) fn properties(&self) -> Properties {
        self.props.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The engine's settings for a connection accepted now.
    pub(crate) fn conn_config(&self) -> ConnConfig {
        let p = self.props.read().unwrap_or_else(|e| e.into_inner());
        ConnConfig {
            limits: p.limits,
            timeouts: p.timeouts.normalized(),
            half_close: p.half_close,
            max_pipelined: p.max_pipelined.max(1),
            report_done: true,
        }
    }
}
