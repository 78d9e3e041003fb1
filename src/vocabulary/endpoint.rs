//! Remote endpoints: a host name or address, and a port.

use super::error::{Error, Result};
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest host name accepted (RFC 1035 §2.3.4: 255 octets on the wire,
/// 253 characters in text).
pub const MAX_HOSTNAME_LEN: usize = 253;

/// The host part of a remote endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A name to resolve (AAAA and A).
    Name(String),
    /// A literal address: no resolution.
    Ip(IpAddr),
}

/// Where to connect: a host (name or literal) and a port. Built step by
/// step; a Preconnection copies it.
///
/// # Examples
///
/// ```
/// use taps_racing::api::*;
///
/// let mut ep = RemoteEndpoint::new();
/// ep.with_hostname("example.com")?.with_service("https")?;
/// assert_eq!(ep.port(), Some(443));
/// // Bad input is an error and changes nothing.
/// assert_eq!(ep.with_port(0).unwrap_err().code(), Error::InvalidPort("").code());
/// assert!(ep.with_service("65536").unwrap_err().to_string().contains("65535"));
/// assert!(ep.with_hostname("no spaces.example").is_err());
/// assert_eq!(ep.port(), Some(443));
/// # Ok::<(), Error>(())
/// ```
///
/// cbindgen:ignore
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteEndpoint {
    host: Option<Host>,
    port: Option<u16>,
}

impl RemoteEndpoint {
    /// An endpoint with no host and no port yet.
    pub fn new() -> RemoteEndpoint {
        RemoteEndpoint::default()
    }

    /// Set the host: a DNS name (letters, digits, '-', '_', '.', at most
    /// 253 characters, labels of at most 63) or an IP literal (IPv6 may be
    /// in brackets). A literal skips resolution. IPv4 literals are what
    /// inet_pton takes: four decimal parts ("127.0.0.1"). The shorthands
    /// of inet_aton ("127.1", "0x7f.0.0.1", "2130706433") are refused, not
    /// resolved: getaddrinfo would read them as addresses the caller never
    /// wrote, and a real host name never ends in a numeric label (RFC 1123
    /// §2.1).
    ///
    /// # Errors
    /// [`Error::InvalidHostname`] for anything else, with the reason; the
    /// endpoint is unchanged.
    pub fn with_hostname(&mut self, hostname: &str) -> Result<&mut Self> {
        self.host = Some(parse_host(hostname)?);
        Ok(self)
    }

    /// Set the host to an IPv4 address.
    pub fn with_ipv4(&mut self, addr: Ipv4Addr) -> &mut Self {
        self.host = Some(Host::Ip(IpAddr::V4(addr)));
        self
    }

    /// Set the host to an IPv6 address.
    pub fn with_ipv6(&mut self, addr: Ipv6Addr) -> &mut Self {
        self.host = Some(Host::Ip(IpAddr::V6(addr)));
        self
    }

    /// Set the port.
    ///
    /// # Errors
    /// [`Error::InvalidPort`] for 0; the endpoint is unchanged.
    pub fn with_port(&mut self, port: u16) -> Result<&mut Self> {
        if port == 0 {
            return Err(Error::InvalidPort(PORT_0));
        }
        self.port = Some(port);
        Ok(self)
    }

    /// Set the port from a service: a decimal port ("443") or a name the
    /// system's services database knows ("https", getaddrinfo, tcp).
    /// Only digits make a port: no spaces, no sign (" 80" and "+80" are
    /// refused, though getaddrinfo's strtoul would take them).
    ///
    /// # Errors
    /// [`Error::InvalidPort`], with the reason: port 0, a number past
    /// 65535 ("out of range"), spaces or a sign, a name the services
    /// database does not know ("unknown service"). The endpoint is
    /// unchanged.
    pub fn with_service(&mut self, service: &str) -> Result<&mut Self> {
        let port = service_port(service)?;
        self.with_port(port)
    }

    /// The host, if set.
    pub fn host(&self) -> Option<&Host> {
        self.host.as_ref()
    }

    /// The port, if set.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The host as text for the resolver, if it is a name.
    pub(crate) fn name_cstring(&self) -> Option<CString> {
        match &self.host {
            Some(Host::Name(n)) => CString::new(n.as_str()).ok(),
            _ => None,
        }
    }
}

/// A local endpoint (RFC 9622 §6.1): the interface, address and port an
/// attempt uses. Each one given to a Preconnection is a path branch
/// (RFC 9623 §4.1): attempts on it bind to the interface (SO_BINDTODEVICE,
/// which needs CAP_NET_RAW) and to the address and port.
///
/// cbindgen:ignore
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalEndpoint {
    interface: Option<String>,
    address: Option<IpAddr>,
    port: Option<u16>,
}

impl LocalEndpoint {
    /// An endpoint with nothing set (the system chooses everything).
    pub fn new() -> LocalEndpoint {
        LocalEndpoint::default()
    }

    /// Bind attempts to this interface ("eth0").
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name or one longer than 15
    /// bytes (IFNAMSIZ - 1) or with a '/' or white space.
    pub fn with_interface(&mut self, name: &str) -> Result<&mut Self> {
        let bad = name.is_empty() || name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == b'/' || b.is_ascii_whitespace());
        if bad {
            return Err(Error::InvalidArgument("an interface name is 1 to 15 bytes, without '/' or spaces"));
        }
        self.interface = Some(name.to_string());
        Ok(self)
    }

    /// Bind attempts to this local address (attempts to the other family
    /// fail with EAFNOSUPPORT).
    pub fn with_address(&mut self, addr: IpAddr) -> &mut Self {
        self.address = Some(addr);
        self
    }

    /// Bind attempts to this local port (with an address; 0 lets the
    /// system choose).
    pub fn with_port(&mut self, port: u16) -> &mut Self {
        self.port = Some(port);
        self
    }

    /// The interface name, if set.
    pub fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }

    /// The address, if set.
    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }

    /// The port, if set.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// The message of a host name that looks like a number.
const NUMERIC_HOST: &str = "the last label is a number, but the host is not a dotted-quad IPv4 address \
(inet_aton shorthands such as 127.1 or 0x7f.0.0.1 are refused)";

fn parse_host(text: &str) -> Result<Host> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err(Error::InvalidHostname("empty host name"));
    }
    if text.len() > MAX_HOSTNAME_LEN {
        return Err(Error::InvalidHostname("longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(Error::InvalidHostname("an empty label (two dots in a row, or a leading dot)"));
        }
        if label.len() > 63 {
            return Err(Error::InvalidHostname("a label longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::InvalidHostname("a character other than a letter, a digit, '-', '_' or '.'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Error::InvalidHostname("a label starts or ends with '-'"));
        }
    }
    // Rust's Ipv4Addr parser, like inet_pton, takes only four decimal
    // parts. getaddrinfo would take the shorthands of inet_aton (127.1,
    // 0x7f.0.0.1, 2130706433, 0x7f000001) as addresses, not as names, so
    // a name whose last label is a number would reach an address the
    // caller never wrote. A real top-level domain is never numeric
    // (RFC 1123 §2.1, RFC 3696 §2): refuse such names.
    let last = name.rsplit('.').next().unwrap_or(name);
    if is_number_label(last) {
        return Err(Error::InvalidHostname(NUMERIC_HOST));
    }
    Ok(Host::Name(text.to_ascii_lowercase()))
}

/// A label inet_aton would read as a number: decimal digits, or 0x and
/// hex digits.
fn is_number_label(label: &str) -> bool {
    let hex = label.strip_prefix("0x").or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(h) => h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => label.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// The message of a decimal port past 65535.
const PORT_RANGE: &str = "port out of range: the largest is 65535";

fn service_port(service: &str) -> Result<u16> {
    if service.is_empty() {
        return Err(Error::InvalidPort("empty service"));
    }
    if service.bytes().all(|b| b.is_ascii_digit()) {
        // Any count of digits: a number that overflows u16 (or u64) is
        // out of range, not an unknown service.
        return match service.parse::<u16>() {
            Ok(0) => Err(Error::InvalidPort(PORT_0)),
            Ok(p) => Ok(p),
            Err(_) => Err(Error::InvalidPort(PORT_RANGE)),
        };
    }
    // getaddrinfo reads a service with strtoul, which skips leading
    // white space and takes a sign (" 80", "+80"): refuse both here, as
    // a port is digits only and a service name has neither.
    if service.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(Error::InvalidPort("a service has no spaces: a decimal port 1-65535 or a service name"));
    }
    if service.starts_with(['+', '-']) {
        return Err(Error::InvalidPort("a port has no sign: a decimal port 1-65535 or a service name"));
    }
    // getaddrinfo with no host looks the service up in the services
    // database, thread-safely (getservbyname is not).
    let name = CString::new(service).map_err(|_| Error::InvalidPort("a NUL byte in the service"))?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = libc::AI_PASSIVE;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated service, hints and out-pointer.
    let rc = unsafe { libc::getaddrinfo(std::ptr::null(), name.as_ptr(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return Err(Error::InvalidPort("unknown service: the services database has no such name"));
    }
    // SAFETY: res is a valid list from getaddrinfo; AF_INET means sockaddr_in.
    let port = unsafe { u16::from_be((*((*res).ai_addr as *const libc::sockaddr_in)).sin_port) };
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    if port == 0 { Err(Error::InvalidPort(PORT_0)) } else { Ok(port) }
}

/// The message of port 0.
const PORT_0: &str = "port 0: ports run from 1 to 65535";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_parsed_and_checked() {
        assert_eq!(parse_host("::1"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host("[2001:db8::1]"), Ok(Host::Ip("2001:db8::1".parse().unwrap())));
        assert_eq!(parse_host("10.0.0.2"), Ok(Host::Ip("10.0.0.2".parse().unwrap())));
        assert_eq!(parse_host("Example.COM."), Ok(Host::Name("example.com.".into())));
        assert!(matches!(parse_host(""), Err(Error::InvalidHostname(_))));
        assert!(matches!(parse_host("a..b"), Err(Error::InvalidHostname(_))));
        assert!(matches!(parse_host("bad host"), Err(Error::InvalidHostname(_))));
        assert!(matches!(parse_host("-a.b"), Err(Error::InvalidHostname(_))));
        assert!(matches!(parse_host(&"a".repeat(64)), Err(Error::InvalidHostname(_))));
        assert!(matches!(parse_host(&["a"; 150].join(".")), Err(Error::InvalidHostname(_))));
    }

    #[test]
    fn ports_and_services() {
        let mut ep = RemoteEndpoint::new();
        assert_eq!(ep.with_port(0).err(), Some(Error::InvalidPort(PORT_0)));
        assert_eq!(ep.port(), None);
        ep.with_service("443").unwrap();
        assert_eq!(ep.port(), Some(443));
        assert_eq!(ep.with_service("0").err(), Some(Error::InvalidPort(PORT_0)));
        assert_eq!(ep.with_service("no-such-service-xyz").err(), Some(Error::InvalidPort("unknown service: the services database has no such name")));
        assert_eq!(ep.port(), Some(443));
        ep.with_service("65535").unwrap();
        assert_eq!(ep.port(), Some(65535));
    }

    #[test]
    fn numbers_past_65535_are_out_of_range() {
        let mut ep = RemoteEndpoint::new();
        for text in ["65536", "70000", "4294967296", "18446744073709551616", &"7".repeat(300)] {
            let e = ep.with_service(text).unwrap_err();
            assert_eq!(e, Error::InvalidPort(PORT_RANGE), "{text}");
            assert!(e.to_string().contains("65535"), "{e}");
        }
        assert_eq!(ep.port(), None);
    }

    #[test]
    fn services_with_spaces_or_signs_are_refused() {
        let mut ep = RemoteEndpoint::new();
        for text in [" 80", "80 ", "\t80", "8 0", "+80", "-1", "- 80"] {
            let e = ep.with_service(text).unwrap_err();
            assert_eq!(e.code(), -4, "{text}");
            assert!(!e.to_string().contains("unknown service"), "{text}: {e}");
        }
        assert_eq!(ep.port(), None);
    }

    #[test]
    fn inet_aton_shorthands_are_not_hosts() {
        for text in ["127.1", "0x7f.0.0.1", "2130706433", "0x7f000001", "127.0.0.1.", "1.2.3.4.5", "a.1", "10.0.0.0x1"] {
            assert_eq!(parse_host(text), Err(Error::InvalidHostname(NUMERIC_HOST)), "{text}");
        }
        // Numbers elsewhere than the last label are fine, and so are
        // labels that only start like a number.
        assert_eq!(parse_host("1.example"), Ok(Host::Name("1.example".into())));
        assert_eq!(parse_host("127.0.0.1x"), Ok(Host::Name("127.0.0.1x".into())));
        assert_eq!(parse_host("a.0xg"), Ok(Host::Name("a.0xg".into())));
        assert_eq!(parse_host("010.0.0.1"), Err(Error::InvalidHostname(NUMERIC_HOST)));
    }
}
