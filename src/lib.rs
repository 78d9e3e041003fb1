//! taps-racing: Happy Eyeballs v2 (RFC 8305) and TAPS candidate racing
//! (RFC 9623) with a C ABI.
//!
//! Layers: [`engine`] (pure racing core), `runtime` (the mio loop),
//! [`api`] (safe Rust API), [`ffi`] (the C ABI, a thin skin over `api`).
#![deny(missing_docs)]

pub mod api;
mod runtime;
pub mod engine;
pub mod ffi;
