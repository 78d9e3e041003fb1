//! The hosts file (hosts(5)), read before DNS: a name in it is answered
//! from it alone, for both families (a family it has no address of gets
//! "no data"), and no DNS query is sent for its addresses.

use std::collections::HashMap;
use std::net::IpAddr;

/// Names (lower case, no final dot) and their addresses, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hosts {
    names: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// The entries of `text` (hosts(5): an address, then its canonical
    /// name and aliases; `#` starts a comment). Lines whose first word is
    /// not an IP address are skipped.
    pub(crate) fn parse(text: &str) -> Hosts {
        let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok()) else { continue };
            for name in words {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let addrs = names.entry(name).or_default();
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
        }
        Hosts { names }
    }

    /// The addresses of `name` (any case, a final dot ignored), both
    /// families, or `None` when the file does not name it.
    pub(crate) fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        let name = name.trim_end_matches('.');
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.names.get(&name.to_ascii_lowercase()).map(Vec::as_slice);
        }
        self.names.get(name).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_of_both_families() {
        let h = Hosts::parse(
            "127.0.0.1 localhost\n# 192.0.2.9 commented.example\n192.0.2.1 Web.Example www # alias\n\
             2001:db8::1 web.example\nnot-an-ip bad.example\n192.0.2.1 web.example.\n",
        );
        let want: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(h.lookup("WEB.example."), Some(want.as_slice()));
        assert_eq!(h.lookup("www").map(<[IpAddr]>::len), Some(1));
        assert_eq!(h.lookup("commented.example"), None);
        assert_eq!(h.lookup("bad.example"), None);
    }
}
