//! Transport properties (RFC 9622 §6): the selection properties that
//! prune and order the protocol and path branches of a race.

use super::error::{Error, Result};
use crate::engine::select::{InterfaceMatch, InterfaceType, Preference, SelectionProperties};

/// Transport properties of a Preconnection. The defaults are RFC 9622's:
/// reliability Require (so TCP and reliable user protocols race, UDP does
/// not), preserve message boundaries No Preference, multistreaming Prefer,
/// no interface preference (the system routes).
///
/// # Examples
///
/// ```
/// use taps_racing::api::*;
///
/// let mut props = TransportProperties::new();
/// // Race only on wired interfaces, and never on the Wi-Fi named wlan0.
/// props.set_interface_type(InterfaceType::Wired, Preference::Require);
/// props.set_interface(InterfaceMatch::Name("wlan0".into()), Preference::Prohibit)?;
/// // An interface name longer than IFNAMSIZ is refused, nothing changes.
/// let long = InterfaceMatch::Name("an-interface-name-too-long".into());
/// assert!(matches!(props.set_interface(long, Preference::Prefer), Err(Error::InvalidArgument(_))));
/// # Ok::<(), Error>(())
/// ```
///
/// cbindgen:ignore
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportProperties {
    pub(crate) selection: SelectionProperties,
}

/// Most interface preferences one TransportProperties holds.
pub const MAX_INTERFACE_PREFERENCES: usize = 64;

impl TransportProperties {
    /// The defaults.
    pub fn new() -> TransportProperties {
        TransportProperties::default()
    }

    /// reliability (RFC 9622 §6.2.1).
    pub fn set_reliability(&mut self, p: Preference) -> &mut Self {
        self.selection.reliability = p;
        self
    }

    /// preserveMsgBoundaries (RFC 9622 §6.2.2).
    pub fn set_preserve_msg_boundaries(&mut self, p: Preference) -> &mut Self {
        self.selection.preserve_msg_boundaries = p;
        self
    }

    /// multistreaming (RFC 9622 §6.2.8).
    pub fn set_multistreaming(&mut self, p: Preference) -> &mut Self {
        self.selection.multistreaming = p;
        self
    }

    /// interface (RFC 9622 §6.2.11), by name or type. Setting it again for
    /// the same interface replaces the preference; No Preference removes
    /// it. Several Require entries are alternatives.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or too long name, or more
    /// than [`MAX_INTERFACE_PREFERENCES`] entries.
    pub fn set_interface(&mut self, which: InterfaceMatch, p: Preference) -> Result<&mut Self> {
        if let InterfaceMatch::Name(n) = &which {
            if n.is_empty() || n.len() >= libc::IFNAMSIZ {
                return Err(Error::InvalidArgument("an interface name is 1 to 15 bytes"));
            }
        }
        let list = &mut self.selection.interfaces;
        list.retain(|(m, _)| *m != which);
        if p != Preference::NoPreference {
            if list.len() >= MAX_INTERFACE_PREFERENCES {
                return Err(Error::InvalidArgument("at most 64 interface preferences"));
            }
            list.push((which, p));
        }
        Ok(self)
    }

    /// The same as `set_interface(InterfaceMatch::Type(t), p)`.
    pub fn set_interface_type(&mut self, t: InterfaceType, p: Preference) -> &mut Self {
        let _ = self.set_interface(InterfaceMatch::Type(t), p);
        self
    }

    /// The selection properties.
    pub fn selection(&self) -> &SelectionProperties {
        &self.selection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_preferences_replace_and_remove() {
        let mut t = TransportProperties::new();
        t.set_interface(InterfaceMatch::Name("eth0".into()), Preference::Prefer).unwrap();
        t.set_interface(InterfaceMatch::Name("eth0".into()), Preference::Avoid).unwrap();
        assert_eq!(t.selection().interfaces, vec![(InterfaceMatch::Name("eth0".into()), Preference::Avoid)]);
        t.set_interface(InterfaceMatch::Name("eth0".into()), Preference::NoPreference).unwrap();
        assert!(t.selection().interfaces.is_empty());
        assert!(t.set_interface(InterfaceMatch::Name(String::new()), Preference::Prefer).is_err());
        assert!(t.set_interface(InterfaceMatch::Name("x".repeat(16)), Preference::Prefer).is_err());
    }
}
