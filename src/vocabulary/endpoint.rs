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
/// assert_eq!(ep.with_port(0).unwrap_err(), Error::InvalidPort);
/// assert_eq!(ep.with_hostname("no spaces.example").unwrap_err(), Error::InvalidHostname);
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
    /// in brackets). A literal skips resolution.
    ///
    /// # Errors
    /// [`Error::InvalidHostname`] for anything else; the endpoint is
    /// unchanged.
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
            return Err(Error::InvalidPort);
        }
        self.port = Some(port);
        Ok(self)
    }

    /// Set the port from a service: a decimal port ("443") or a name the
    /// system's services database knows ("https", getservbyname_r, tcp).
    ///
    /// # Errors
    /// [`Error::InvalidPort`] for port 0, an unknown name or bad text.
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

fn parse_host(text: &str) -> Result<Host> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || text.len() > MAX_HOSTNAME_LEN {
        return Err(Error::InvalidHostname);
    }
    for label in name.split('.') {
        let ok_chars = label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty() || label.len() > 63 || !ok_chars || label.starts_with('-') || label.ends_with('-') {
            return Err(Error::InvalidHostname);
        }
    }
    Ok(Host::Name(text.to_ascii_lowercase()))
}

fn service_port(service: &str) -> Result<u16> {
    if service.is_empty() {
        return Err(Error::InvalidPort);
    }
    if service.bytes().all(|b| b.is_ascii_digit()) {
        return match service.parse::<u16>() {
            Ok(p) if p != 0 => Ok(p),
            _ => Err(Error::InvalidPort),
        };
    }
    // getaddrinfo with no host looks the service up in the services
    // database, thread-safely (getservbyname is not).
    let name = CString::new(service).map_err(|_| Error::InvalidPort)?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = libc::AI_PASSIVE;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated service, hints and out-pointer.
    let rc = unsafe { libc::getaddrinfo(std::ptr::null(), name.as_ptr(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return Err(Error::InvalidPort);
    }
    // SAFETY: res is a valid list from getaddrinfo; AF_INET means sockaddr_in.
    let port = unsafe { u16::from_be((*((*res).ai_addr as *const libc::sockaddr_in)).sin_port) };
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    if port == 0 { Err(Error::InvalidPort) } else { Ok(port) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_parsed_and_checked() {
        assert_eq!(parse_host("::1"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host("[2001:db8::1]"), Ok(Host::Ip("2001:db8::1".parse().unwrap())));
        assert_eq!(parse_host("10.0.0.2"), Ok(Host::Ip("10.0.0.2".parse().unwrap())));
        assert_eq!(parse_host("Example.COM."), Ok(Host::Name("example.com.".into())));
        assert_eq!(parse_host(""), Err(Error::InvalidHostname));
        assert_eq!(parse_host("a..b"), Err(Error::InvalidHostname));
        assert_eq!(parse_host("bad host"), Err(Error::InvalidHostname));
        assert_eq!(parse_host("-a.b"), Err(Error::InvalidHostname));
        assert_eq!(parse_host(&"a".repeat(64)), Err(Error::InvalidHostname));
        assert_eq!(parse_host(&["a"; 150].join(".")), Err(Error::InvalidHostname));
    }

    #[test]
    fn ports_and_services() {
        let mut ep = RemoteEndpoint::new();
        assert_eq!(ep.with_port(0).err(), Some(Error::InvalidPort));
        assert_eq!(ep.port(), None);
        ep.with_service("443").unwrap();
        assert_eq!(ep.port(), Some(443));
        assert_eq!(ep.with_service("0").err(), Some(Error::InvalidPort));
        assert_eq!(ep.with_service("70000").err(), Some(Error::InvalidPort));
        assert_eq!(ep.with_service("no-such-service-xyz").err(), Some(Error::InvalidPort));
        assert_eq!(ep.port(), Some(443));
    }
}
