//! taps-racing: Happy Eyeballs v2 (RFC 8305) and TAPS candidate racing
//! (RFC 9623) with a C ABI.
//!
//! Layers, imports going one way: [`ffi`] (the C ABI, a thin skin over
//! `api`) → [`api`] (safe Rust API) → `runtime` (the mio loop) →
//! [`engine`] (pure racing core). Below them, `vocabulary`: the plain
//! types (errors, endpoints, options, reports, events) that api, runtime
//! and engine share; private, re-exported by [`api`] (and [`engine`] for
//! the few it names). `tests/layers.rs` checks the direction.
#![deny(missing_docs)]

pub mod api;
mod runtime;
pub mod engine;
pub mod ffi;
mod vocabulary;

/// The DNS reply reader, for the `dns_message` fuzz target only.
#[doc(hidden)]
pub use runtime::dns::fuzz as __dns_fuzz;
