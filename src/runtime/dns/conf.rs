//! /etc/resolv.conf as the DNS client reads it (resolv.conf(5), with
//! glibc's defaults and caps): `nameserver`, `search` / `domain`, and the
//! options `ndots:`, `timeout:`, `attempts:`. Other lines and options are
//! ignored, as glibc ignores what it does not know.
//!
//! One extension, for tests: a `nameserver` may carry a port
//! (`127.0.0.1:5353`, `[::1]:5353`); resolv.conf(5) has none, so a system
//! file never uses it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// glibc's MAXNS: three name servers are asked at most (each silent one
/// costs a timeout per attempt).
pub(crate) const MAX_NAMESERVERS: usize = 3;
/// Name server lines read before choosing (a bound on a hostile file).
const MAX_LISTED: usize = 64;

/// The servers to ask, from those listed (HEv3 draft -04 §4.5): IPv6
/// ones first ("queries SHOULD be sent over IPv6 first"), each family in
/// the file's order; of [`MAX_NAMESERVERS`] at most, "at least one address
/// from each address family" when the file has both.
fn choose_servers(mut listed: Vec<SocketAddr>) -> Vec<SocketAddr> {
    listed.sort_by_key(|a| a.is_ipv4());
    let first_v4 = listed.iter().position(SocketAddr::is_ipv4);
    let mut chosen: Vec<SocketAddr> = listed.iter().copied().take(MAX_NAMESERVERS).collect();
    if let Some(i) = first_v4 {
        if !chosen.iter().any(SocketAddr::is_ipv4) {
            let last = chosen.len() - 1;
            chosen[last] = listed[i];
        }
    }
    chosen
}
/// glibc's MAXDNSRCH: the search domains after the sixth are ignored.
pub(crate) const MAX_SEARCH: usize = 6;
/// glibc's caps: ndots 15, timeout 30 s (RES_MAXRETRANS), attempts 5
/// (RES_MAXRETRY).
const MAX_NDOTS: u8 = 15;
const MAX_TIMEOUT_S: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// What the DNS client takes from resolv.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    /// Servers to ask, in order (port 53 unless a test gave another); at
    /// most [`MAX_NAMESERVERS`]. None in the file: the local server,
    /// 127.0.0.1:53, as glibc.
    pub nameservers: Vec<SocketAddr>,
    /// Domains to append to a relative name, in order; at most
    /// [`MAX_SEARCH`].
    pub search: Vec<String>,
    /// A name with at least this many dots is first asked as it is
    /// (default 1, at most 15).
    pub ndots: u8,
    /// How long one try waits for its server's reply (default 5 s, at
    /// most 30 s, at least 1 s).
    pub timeout: Duration,
    /// How many rounds over the servers (default 2, 1 to 5).
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

/// A nameserver address: an IP literal (port 53, an IPv6 zone dropped
/// unless numeric), or the test extension IP:port.
fn nameserver(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (ip, zone) = text.split_once('%').map_or((text, None), |(ip, z)| (ip, Some(z)));
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => {
            let scope = zone.and_then(|z| z.parse::<u32>().ok()).unwrap_or(0);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(v6, 53, 0, scope)))
        }
        v4 => Some(SocketAddr::new(v4, 53)),
    }
}

/// A search domain, lower case, without dots at either end; `None` for
/// the root or an empty one.
fn domain(text: &str) -> Option<String> {
    let d = text.trim_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

impl ResolvConf {
    /// The configuration written in `text` (resolv.conf syntax): the last
    /// `search` or `domain` line wins, options take glibc's caps.
    pub(crate) fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf { nameservers: Vec::new(), ..ResolvConf::default() };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(addr) = words.next().and_then(nameserver) {
                        if conf.nameservers.len() < MAX_LISTED {
                            conf.nameservers.push(addr);
                        }
                    }
                }
                Some("domain") => conf.search = words.next().and_then(domain).into_iter().collect(),
                Some("search") => conf.search = words.filter_map(domain).take(MAX_SEARCH).collect(),
                Some("options") => words.for_each(|o| conf.option(o)),
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers = ResolvConf::default().nameservers;
        }
        conf.nameservers = choose_servers(std::mem::take(&mut conf.nameservers));
        conf
    }

    /// One `options` word; unknown ones and bad values are ignored.
    fn option(&mut self, word: &str) {
        let Some((name, value)) = word.split_once(':') else { return };
        let Ok(n) = value.parse::<u64>() else { return };
        match name {
            "ndots" => self.ndots = n.min(MAX_NDOTS as u64) as u8,
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_S)),
            "attempts" => self.attempts = n.clamp(1, MAX_ATTEMPTS as u64) as u32,
            _ => {}
        }
    }

    /// A configuration asking `servers` (tests), with the defaults
    /// otherwise.
    #[cfg(test)]
    pub(crate) fn with_servers(servers: &[SocketAddr]) -> ResolvConf {
        ResolvConf { nameservers: servers.to_vec(), ..ResolvConf::default() }
    }

    /// The names to ask for `name`, in order, absolute (lower case, no
    /// final dot), as glibc's res_search: a name ending in a dot is asked
    /// alone; one with at least `ndots` dots as it is first, then with
    /// each search domain; one with fewer dots with each search domain
    /// first, then as it is.
    pub(crate) fn candidates(&self, name: &str) -> Vec<String> {
        let lower = name.to_ascii_lowercase();
        if let Some(bare) = lower.strip_suffix('.') {
            return vec![bare.to_owned()];
        }
        let searched = self.search.iter().map(|d| format!("{lower}.{d}"));
        let dots = lower.bytes().filter(|b| *b == b'.').count();
        if dots >= self.ndots as usize {
            std::iter::once(lower.clone()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(lower.clone())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_resolv_conf_5s() {
        let c = ResolvConf::parse("");
        assert_eq!(c, ResolvConf::default());
        assert_eq!((c.ndots, c.timeout, c.attempts), (1, Duration::from_secs(5), 2));
        assert_eq!(c.nameservers, vec!["127.0.0.1:53".parse::<SocketAddr>().unwrap()]);
    }

    /// HEv3 draft -04 §4.5: IPv6 servers first; with a limit, one of each
    /// family.
    #[test]
    fn ipv6_servers_first_and_one_of_each_family() {
        let servers = |text: &str| -> Vec<String> { ResolvConf::parse(text).nameservers.iter().map(|a| a.ip().to_string()).collect() };
        assert_eq!(
            servers("nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 2001:db8::1\n"),
            ["2001:db8::1", "192.0.2.1", "192.0.2.2"]
        );
        assert_eq!(
            servers("nameserver 2001:db8::1\nnameserver 2001:db8::2\nnameserver 2001:db8::3\nnameserver 2001:db8::4\nnameserver 192.0.2.9\n"),
            ["2001:db8::1", "2001:db8::2", "192.0.2.9"]
        );
        assert_eq!(servers("nameserver 192.0.2.1\nnameserver 192.0.2.2\n"), ["192.0.2.1", "192.0.2.2"]);
    }

    #[test]
    fn reads_servers_search_and_options_with_caps() {
        let c = ResolvConf::parse(
            "# comment\nnameserver 192.0.2.1\nnameserver 2001:db8::1 ; trailing\nnameserver fe80::1%2\n\
             nameserver 192.0.2.4\nnameserver not-an-ip\ndomain ignored.example\n\
             search A.example. b.example\noptions ndots:3 timeout:99 attempts:0 rotate edns0 ndots:x\n",
        );
        let want: Vec<SocketAddr> = vec![
            "[2001:db8::1]:53".parse().unwrap(),
            SocketAddr::V6(std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2)),
            "192.0.2.1:53".parse().unwrap(),
        ];
        assert_eq!(c.nameservers, want, "three at most, IPv6 first, one IPv4 kept");
        assert_eq!(c.search, vec!["a.example", "b.example"]);
        assert_eq!((c.ndots, c.timeout, c.attempts), (3, Duration::from_secs(30), 1));
        let c = ResolvConf::parse("options ndots:40 timeout:0 attempts:9\nsearch x.example\ndomain d.example\n");
        assert_eq!((c.ndots, c.timeout, c.attempts), (15, Duration::from_secs(1), 5));
        assert_eq!(c.search, vec!["d.example"], "the last of search and domain wins");
    }

    #[test]
    fn a_test_may_give_a_port() {
        let c = ResolvConf::parse("nameserver 127.0.0.1:5353\nnameserver [::1]:5354\n");
        assert_eq!(c.nameservers, vec!["[::1]:5354".parse::<SocketAddr>().unwrap(), "127.0.0.1:5353".parse().unwrap()]);
    }

    #[test]
    fn search_order_follows_ndots() {
        let mut c = ResolvConf::parse("search a.example b.example\n");
        assert_eq!(c.candidates("www.Example.com"), ["www.example.com", "www.example.com.a.example", "www.example.com.b.example"]);
        assert_eq!(c.candidates("host"), ["host.a.example", "host.b.example", "host"]);
        assert_eq!(c.candidates("abs.example."), ["abs.example"]);
        c.ndots = 2;
        assert_eq!(c.candidates("one.dot"), ["one.dot.a.example", "one.dot.b.example", "one.dot"]);
        c.search.clear();
        assert_eq!(c.candidates("host"), ["host"]);
    }

    #[test]
    fn search_list_is_capped() {
        let c = ResolvConf::parse("search a b c d e f g h\n");
        assert_eq!(c.search.len(), MAX_SEARCH);
    }
}
