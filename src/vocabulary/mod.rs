//! The shared vocabulary: plain Rust types that both `api` and `runtime`
//! (and, for a few, `engine`) speak. Errors, endpoints, options, race
//! reports, connection states, pool and group events, and the data a user
//! protocol is handed.
//!
//! It sits below every other layer and imports only std and libc: nothing
//! here knows the engine, the runtime, the api or the C ABI (a test,
//! `tests/layers.rs`, keeps it so). The module is private: users reach
//! its types through [`crate::api`] (and [`crate::engine`] for
//! [`time::Micros`] and [`options::RacingType`]), which re-export them at
//! the paths they always had.
//!
//! Traits whose arguments are api handles (`ConnectionHandler` takes a
//! `&Connection`, `Protocol` a `ProtocolAttempt`, `Resolver` a
//! `ResolverQuery`) stay in `api`: those handles wrap runtime state. The
//! runtime calls the user's code through its own narrower traits
//! (`runtime::callbacks`), which api implements around the user's objects.

pub mod endpoint;
pub mod error;
pub mod events;
pub mod options;
pub mod protocol;
pub mod report;
pub mod state;
pub mod svcb;
pub mod time;
