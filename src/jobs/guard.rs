//! Which addresses the gateway may connect to when it fetches media or pushes a verdict.
//!
//! Everything a URL can name that is not the public internet is refused: loopback, private and
//! shared (CGNAT) space, link-local (with the cloud metadata address 169.254.169.254), multicast,
//! `0.0.0.0/8`, documentation, benchmarking and reserved ranges, IPv6 unique-local, site-local and
//! link-local. IPv6 addresses that carry an IPv4 address are judged by that address too: IPv4-mapped
//! (`::ffff:0:0/96`, judged as the IPv4 address it is, exemptions included), IPv4-translated
//! (`::ffff:0:0:0/96`, RFC 2765's stateless translation), NAT64 (`64:ff9b::/96`), 6to4
//! (`2002::/16`) and Teredo (`2001::/32`, both the server and the obfuscated client address).
//!
//! `[media] allow_networks` exempts listed ranges (the test suite allows loopback this way).
//! Literal hosts are judged by the address the URL parser produced, so every spelling of an IPv4
//! literal it accepts (`0x7f.1`, `2130706433`, `0177.0.0.1`, ...) is judged as the address it
//! means; domain names are judged by every address they resolve to ([`super::fetch`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Why a URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("only http and https URLs can be fetched")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    /// A literal address in the URL (the client wrote it: naming it tells nothing new).
    #[error("{0} is a {1} address, which is not fetched")]
    Address(IpAddr, &'static str),
    /// A name that resolves to a denied address. The address is not named: what a name resolves
    /// to inside the gateway's network is not the client's to learn.
    #[error("the host resolves to a {0} address, which is not fetched")]
    Resolved(&'static str),
}

impl Denied {
    /// The refusal as it is told about a name rather than a literal address.
    pub fn for_name(self) -> Denied {
        match self {
            Denied::Address(_, what) => Denied::Resolved(what),
            other => other,
        }
    }
}

/// IPv4 ranges that are never connected to, with what they are.
const DENIED_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\""),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared (CGNAT)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "protocol-assignment"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// IPv6 ranges that are never connected to (embeddings are handled separately).
const DENIED_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    // IPv4-compatible (deprecated): no legitimate destination uses it.
    (Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        "benchmarking",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "reserved (SRv6)",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique-local",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// The deny list with the operator's exemptions.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<IpNet>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Guard { allow }
    }

    /// A URL may be fetched when it is http(s) and its host, if a literal address, is allowed.
    /// Domain names pass here and are judged by what they resolve to.
    pub fn check_url(&self, url: &Url) -> Result<(), Denied> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Denied::Scheme);
        }
        match url.host() {
            None => Err(Denied::NoHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
        }
    }

    /// Whether the gateway may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        // An IPv4-mapped address is the IPv4 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        match ip {
            IpAddr::V4(v4) => match denied_v4(v4) {
                Some(what) => Err(Denied::Address(ip, what)),
                None => Ok(()),
            },
            IpAddr::V6(v6) => {
                if let Some(what) = denied_v6(v6) {
                    return Err(Denied::Address(ip, what));
                }
                for (embedded, via) in embedded_v4(v6) {
                    if denied_v4(embedded).is_some() {
                        return Err(Denied::Address(ip, via.label()));
                    }
                }
                Ok(())
            }
        }
    }
}

fn denied_v4(ip: Ipv4Addr) -> Option<&'static str> {
    DENIED_V4
        .iter()
        .find(|(net, len, _)| Ipv4Net::new_assert(*net, *len).contains(&ip))
        .map(|(_, _, what)| *what)
}

fn denied_v6(ip: Ipv6Addr) -> Option<&'static str> {
    DENIED_V6
        .iter()
        .find(|(net, len, _)| Ipv6Net::new_assert(*net, *len).contains(&ip))
        .map(|(_, _, what)| *what)
}

#[derive(Debug, Clone, Copy)]
enum Via {
    Translated,
    Nat64,
    SixToFour,
    Teredo,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Translated => "IPv4-translated address embedding a non-public IPv4",
            Via::Nat64 => "NAT64 address embedding a non-public IPv4",
            Via::SixToFour => "6to4 address embedding a non-public IPv4",
            Via::Teredo => "Teredo address embedding a non-public IPv4",
        }
    }
}

/// The IPv4 addresses an IPv6 address carries, and how.
fn embedded_v4(ip: Ipv6Addr) -> Vec<(Ipv4Addr, Via)> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-translated (SIIT, `::ffff:0:a.b.c.d`): the last 32 bits.
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => vec![(v4(hi, lo), Via::Translated)],
        // NAT64 well-known prefix: the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => vec![(v4(hi, lo), Via::Nat64)],
        // 6to4: bits 16..48.
        [0x2002, hi, lo, ..] => vec![(v4(hi, lo), Via::SixToFour)],
        // Teredo: the server at bits 32..64, the client inverted in the last 32 bits.
        [0x2001, 0, server_hi, server_lo, _, _, client_hi, client_lo] => vec![
            (v4(server_hi, server_lo), Via::Teredo),
            (v4(!client_hi, !client_lo), Via::Teredo),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn denied(g: &Guard, s: &str) -> bool {
        g.check_url(&url(s)).is_err()
    }

    #[test]
    fn private_literals_in_every_spelling_are_refused() {
        let g = Guard::default();
        for u in [
            "http://127.0.0.1/a.png",
            "http://127.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.0.0.1.:80/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://0/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://198.18.0.1/",
            "http://192.0.2.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a00:1]/",
            "http://[::ffff:0.0.0.0]/",
            "http://[::ffff:0:127.0.0.1]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::10.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::1]/",
            "http://[2002:7f00:1::]/",
            "http://[2002:c0a8:0101::1]/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // client 127.0.0.1
            "http://[2001:0:a00:1:8000:63bf:3fff:fdd2]/",     // server 10.0.0.1
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
            "http://[100::1]/",
        ] {
            assert!(denied(&g, u), "{u} must be refused");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let g = Guard::default();
        for u in [
            "http://8.8.8.8/",
            "https://1.1.1.1/x.jpg",
            "http://93.184.216.34:8080/",
            "http://[2606:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[::ffff:0:8.8.8.8]/",
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::1]/",
            "http://example.com/a.png",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
        ] {
            assert!(!denied(&g, u), "{u} must pass");
        }
    }

    #[test]
    fn only_http_and_https_with_a_host() {
        let g = Guard::default();
        assert_eq!(g.check_url(&url("ftp://8.8.8.8/")), Err(Denied::Scheme));
        assert_eq!(g.check_url(&url("file:///etc/passwd")), Err(Denied::Scheme));
        assert_eq!(g.check_url(&url("gopher://8.8.8.8/")), Err(Denied::Scheme));
        assert!(g.check_url(&url("HTTPS://example.com/")).is_ok());
    }

    #[test]
    fn allowed_networks_exempt_exactly_their_range() {
        let g = Guard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(!denied(&g, "http://127.0.0.1:9/"));
        assert!(!denied(&g, "http://[::1]:9/"));
        // Mapped loopback is loopback.
        assert!(!denied(&g, "http://[::ffff:127.0.0.1]/"));
        assert!(denied(&g, "http://10.0.0.1/"));
        assert!(denied(&g, "http://169.254.169.254/"));
        let e = g.check_ip("192.168.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "192.168.0.1 is a private address, which is not fetched"
        );
    }
}
