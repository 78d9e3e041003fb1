//! HTTPS records (RFC 9460: the SVCB-compatible "HTTPS" type, 65) as the
//! library reads them: decoded from DNS by the runtime's DNS client, or
//! given by a user resolver, and used by the engine's HEv3 rules
//! (draft-ietf-happy-happyeyeballs-v3-04 §4.2.1, §5, §6).
//!
//! Plain data: no DNS wire format here (that is the DNS client's), no
//! rules (those are the engine's).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The HTTPS resource record type (RFC 9460 §9).
pub const HTTPS_RR_TYPE: u16 = 65;

/// SvcParamKey numbers of RFC 9460 §14.3.2.
pub mod key {
    /// "mandatory" (RFC 9460 §8).
    pub const MANDATORY: u16 = 0;
    /// "alpn" (§7.1).
    pub const ALPN: u16 = 1;
    /// "no-default-alpn" (§7.1).
    pub const NO_DEFAULT_ALPN: u16 = 2;
    /// "port" (§7.2).
    pub const PORT: u16 = 3;
    /// "ipv4hint" (§7.3).
    pub const IPV4HINT: u16 = 4;
    /// "ech" (RFC 9848 / draft-ietf-tls-svcb-ech).
    pub const ECH: u16 = 5;
    /// "ipv6hint" (§7.3).
    pub const IPV6HINT: u16 = 6;
}

/// One HTTPS resource record (RFC 9460 §2.2), decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRecord {
    /// SvcPriority: 0 is AliasMode (§2.4.2), any other value ServiceMode
    /// (§2.4.3), lower values preferred.
    pub priority: u16,
    /// TargetName, lower case, without the final dot. The empty string is
    /// "." (§2.5): in ServiceMode, the owner name itself; in AliasMode, "no
    /// service here".
    pub target: String,
    /// The SvcParams (ServiceMode only; an AliasMode record's are ignored).
    pub params: SvcParams,
}

impl ServiceRecord {
    /// Whether this is an AliasMode record (SvcPriority 0).
    pub fn is_alias(&self) -> bool {
        self.priority == 0
    }
}

/// The SvcParams of a ServiceMode record that the library understands,
/// plus the numbers of those it does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SvcParams {
    /// "mandatory": keys the client must understand to use the record
    /// (RFC 9460 §8).
    pub mandatory: Vec<u16>,
    /// "alpn": the ALPN protocol ids, in the record's order (§7.1).
    pub alpn: Vec<String>,
    /// "no-default-alpn": the default ALPN ("http/1.1" for HTTPS) is not
    /// in the set (§7.1.1).
    pub no_default_alpn: bool,
    /// "port": the port to connect to instead of the caller's (§7.2).
    pub port: Option<u16>,
    /// "ipv4hint" (§7.3).
    pub ipv4hint: Vec<Ipv4Addr>,
    /// "ipv6hint" (§7.3).
    pub ipv6hint: Vec<Ipv6Addr>,
    /// "ech": the ECHConfigList, as bytes, for the caller's TLS.
    pub ech: Option<Arc<[u8]>>,
    /// The keys present that the library does not know, by number (for
    /// the "mandatory" check).
    pub unknown_keys: Vec<u16>,
}

/// When a race asks HTTPS records for its host names (a Preconnection's
/// setting; HEv3 draft §4.1: HTTP clients SHOULD ask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HttpsPolicy {
    /// For port 443: ask the host name's HTTPS records; other ports are
    /// not asked.
    #[default]
    Auto,
    /// Every port: the host name for 443, `_PORT._https.host` for any
    /// other (RFC 9460 §9.1).
    On,
    /// Never ask.
    Off,
}

impl HttpsPolicy {
    /// The name to ask for `host` on `port` under this policy, if any.
    pub fn qname(self, host: &str, port: u16) -> Option<String> {
        match (self, port) {
            (HttpsPolicy::Off, _) => None,
            (_, 443) => Some(host.trim_end_matches('.').to_ascii_lowercase()),
            (HttpsPolicy::Auto, _) => None,
            (HttpsPolicy::On, p) => Some(format!("_{p}._https.{}", host.trim_end_matches('.').to_ascii_lowercase())),
        }
    }
}
