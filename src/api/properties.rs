//! Transport properties (RFC 9622 §6).

/// Transport properties of a Preconnection. Today every race uses TCP,
/// which is what the defaults ask for (reliable, ordered byte stream);
/// selection properties (Require, Prefer, Avoid, Prohibit) come with
/// candidate gathering.
///
/// cbindgen:ignore
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportProperties {
    _private: (),
}

impl TransportProperties {
    /// The defaults: a reliable, ordered byte stream (TCP).
    pub fn new() -> TransportProperties {
        TransportProperties::default()
    }
}
