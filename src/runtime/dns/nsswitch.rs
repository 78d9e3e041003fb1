//! /etc/nsswitch.conf's `hosts:` line decides who answers for addresses:
//! with the sources `files` and `dns` alone (in any order, with or without
//! `[...]` actions), the library's hosts file reader and DNS client give
//! what glibc would; any other source (mdns4_minimal, resolve,
//! myhostname, ldap, wins, ...) is a module only glibc can call, so the
//! addresses keep coming from getaddrinfo, and only HTTPS records (which
//! getaddrinfo cannot ask for) go over DNS.

/// Whether the DNS client may answer for addresses, given the contents
/// of nsswitch.conf (`None`: no such file, which glibc reads as
/// "hosts: files dns").
pub(crate) fn dns_answers_addresses(text: Option<&str>) -> bool {
    let Some(text) = text else { return true };
    let Some(sources) = text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("").trim_start();
        line.strip_prefix("hosts:")
    }) else {
        return true;
    };
    // Actions in brackets ("[NOTFOUND=return]") are not sources.
    let mut plain = String::with_capacity(sources.len());
    let mut depth = 0usize;
    for c in sources.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 => {
                plain.push(c);
                continue;
            }
            _ => {}
        }
        plain.push(' ');
    }
    let mut words = plain.split_whitespace();
    words.all(|w| matches!(w, "files" | "dns"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_dns_alone_let_the_client_answer() {
        assert!(dns_answers_addresses(None));
        assert!(dns_answers_addresses(Some("passwd: files\nhosts:  files dns\n")));
        assert!(dns_answers_addresses(Some("hosts: dns [NOTFOUND=return] files # comment\n")));
        assert!(dns_answers_addresses(Some("passwd: files\n")), "no hosts line: files dns");
    }

    #[test]
    fn any_other_source_keeps_getaddrinfo() {
        assert!(!dns_answers_addresses(Some("hosts: files mdns4_minimal [NOTFOUND=return] dns\n")));
        assert!(!dns_answers_addresses(Some("hosts: files resolve [!UNAVAIL=return] dns myhostname\n")));
        assert!(!dns_answers_addresses(Some("hosts: ldap files\n")));
        assert!(!dns_answers_addresses(Some("# hosts: files dns\nhosts: files myhostname dns\n")));
    }
}
