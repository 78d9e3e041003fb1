//! The safe Rust API. The C ABI in `ffi` is a thin skin over it.
//!
//! The plain types it shares with the runtime (errors, endpoints, options,
//! race reports, states, events) are the crate's vocabulary, re-exported
//! here at their usual paths (`api::Error`, `api::error::Error`, ...).
//!
//! ```no_run
//! use taps_racing::api::*;
//! struct Print;
//! impl ConnectionHandler for Print {
//!     fn ready(&mut self, c: &Connection) {
//!         println!("connected to {:?}", c.remote_address());
//!     }
//!     fn establishment_error(&mut self, c: &Connection) {
//!         println!("failed: {:?}", c.error());
//!     }
//! }
//! let lp = EventLoop::new()?;
//! let mut ep = RemoteEndpoint::new();
//! ep.with_hostname("example.com")?.with_port(443)?;
//! let pre = Preconnection::new(&lp, &[ep], None, None)?;
//! let conn = pre.initiate(Box::new(Print))?;
//! lp.run()?;
//! # drop(conn);
//! # Ok::<(), Error>(())
//! ```

pub mod connection;
pub mod event_loop;
pub mod history;
pub mod options;
pub mod preconnection;
pub mod group;
pub mod nat64;
pub mod pool;
pub mod properties;
pub mod protocol;
pub mod shared_loops;
pub mod stage;

pub use crate::vocabulary::{endpoint, error};

pub use connection::{AttemptOutcome, AttemptReport, Connection, ConnectionHandler, ConnectionState, HistoryNote};
pub use endpoint::{Host, LocalEndpoint, RemoteEndpoint};
pub use error::{Error, Result};
pub use event_loop::EventLoop;
pub use options::{BranchRacing, RacingOptions};
pub use preconnection::{BranchKind, Preconnection};
pub use group::{ConnectionGroup, GroupEvent, GroupEventKind, GroupOptions};
pub use crate::engine::group::{AssignPolicy, MemberId, MemberMetrics};
pub use pool::{ConnectionPool, PoolEvent, PoolEventKind, PoolOptions};
pub use properties::TransportProperties;
pub use protocol::{PathInfo, Protocol, ProtocolAttempt, ProtocolConnection, ProtocolTraits, Resolver, ResolverQuery, ServiceQuery};
pub use crate::vocabulary::report::{DnsAnswerReport, DnsReport, RecordType, ServiceReport};
pub use crate::vocabulary::svcb::{HttpsPolicy, ServiceRecord, SvcParams};
pub use stage::{SecurityStage, StageAttempt};
pub use crate::engine::select::{InterfaceMatch, InterfaceType, Preference};
pub use crate::vocabulary::options::RacingType;
pub use crate::engine::Family;
