//! OS code of the runtime.

pub(crate) mod getaddrinfo;
