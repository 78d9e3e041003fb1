//! Time on the loop's clock.

/// Time on the loop's clock, in microseconds. The engine only compares and
/// adds these; the runtime decides where zero is.
pub type Micros = u64;
