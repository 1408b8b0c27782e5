//! The deep-link allow-list: which hosts a partner link may send a visitor to. The one grammar
//! of `allowed_hosts` entries, read by [`Program::validate`](crate::Program::validate) (so
//! `partnerctl apply` refuses what the redirect would not honour) and by the redirect through
//! [`Program::deep_link_hosts`](crate::Program::deep_link_hosts).
//!
//! # Entries ([`HostPattern`])
//!
//! * `shop.example.com`: exactly that host.
//! * `*.example.com`: every subdomain of `example.com`, at any depth (`www.example.com`,
//!   `a.b.example.com`), but **not `example.com` itself**: list both when both are wanted.
//!
//! Entries compare case-insensitively. A host name is ASCII: dot-separated labels of letters,
//! digits and `-` (not first or last in a label), 1–63 characters each, at most 253 in all, no
//! empty label (so no leading or trailing dot). Internationalised names are written in their
//! `xn--` form. A host whose last label reads as a number (`10.0.0.1`, `0x7f.1`) is an IP
//! address to a browser, and IP addresses are never deep-link targets. A wildcard needs at
//! least two labels after `*.`: `*.` alone would admit everything and `*.com` a whole top-level
//! domain. There is no public-suffix list: `*.co.uk` is accepted and is the operator's to avoid.
//! Nothing else is an entry: no scheme, port, path or userinfo, no `*` other than a leading
//! `*.`, no surrounding spaces.
//!
//! # URLs ([`url_host`])
//!
//! A destination is read strictly: an absolute `http`/`https` URL whose authority is exactly a
//! host name or `host:port`. The redirect (`tracking::check_deep_link`) adds its own checks
//! (visible ASCII only, a length limit, the browser's URL parser agreeing on the host) before it
//! asks [`DeepLinkHosts::allows`].

use std::fmt;

/// One `allowed_hosts` entry (see the module docs for the grammar).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// Exactly this host (lower case).
    Exact(String),
    /// Every subdomain of this domain (lower case, at least two labels), not the domain itself.
    Subdomains(String),
}

impl HostPattern {
    /// The pattern written as `entry`, or `None` when `entry` is not one (module docs).
    pub fn parse(entry: &str) -> Option<HostPattern> {
        let lower = entry.to_ascii_lowercase();
        match lower.strip_prefix("*.") {
            Some(domain) => (is_host_name(domain) && domain.contains('.'))
                .then(|| HostPattern::Subdomains(domain.to_string())),
            None => is_host_name(&lower).then_some(HostPattern::Exact(lower)),
        }
    }

    /// True when `host` (any letter case) is admitted by this pattern.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            HostPattern::Exact(h) => host == *h,
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .and_then(|sub| sub.strip_suffix('.'))
                .is_some_and(|sub| !sub.is_empty()),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Subdomains(d) => write!(f, "*.{d}"),
        }
    }
}

/// The hosts a deep link may point to: a set of [`HostPattern`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepLinkHosts {
    patterns: Vec<HostPattern>,
}

impl DeepLinkHosts {
    /// A set of patterns.
    pub fn new(patterns: impl IntoIterator<Item = HostPattern>) -> Self {
        DeepLinkHosts {
            patterns: patterns.into_iter().collect(),
        }
    }

    /// True when some pattern admits `host` (any letter case).
    pub fn allows(&self, host: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(host))
    }

    /// True when nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns.
    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }
}

/// The host, lower-cased, of an absolute `http`/`https` URL read strictly: the scheme (any
/// letter case) and `://`, then an authority that is exactly a host name (module docs) or
/// `host:port` (1–5 digits), ended by `/`, `?`, `#` or the end.
///
/// `None` for other or missing schemes (`//evil.com`, `javascript:`), userinfo
/// (`https://trusted.com@evil.com`), backslashes (`https:/\evil.com`), percent-encoding in the
/// authority, whitespace and control characters (NUL) anywhere, IP-literal (`[::1]`) and
/// trailing-dot hosts.
pub fn url_host(url: &str) -> Option<String> {
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') || authority.contains('%') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) => {
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            h
        }
        None => authority,
    };
    is_dns_host(host).then(|| host.to_string())
}

/// A host name of the module docs, given in lower case.
fn is_host_name(host: &str) -> bool {
    is_dns_host(host) && !ends_in_number(host)
}

/// A lower-case DNS host name: labels of `a-z0-9-`, not starting or ending with `-`, no empty
/// label (so no leading/trailing dot), at most 253 characters.
fn is_dns_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The WHATWG URL standard's "ends in a number": a last label of digits only, or `0x` and hex
/// digits, makes a browser read the host as an IPv4 address.
fn ends_in_number(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let exact = |h: &str| Some(HostPattern::Exact(h.into()));
        let subdomains = |d: &str| Some(HostPattern::Subdomains(d.into()));
        let cases: &[(&str, Option<HostPattern>)] = &[
            ("example.com", exact("example.com")),
            ("Docs.Example.COM", exact("docs.example.com")),
            ("localhost", exact("localhost")),
            ("xn--bcher-kva.example", exact("xn--bcher-kva.example")),
            ("a-b.example.com", exact("a-b.example.com")),
            ("*.example.com", subdomains("example.com")),
            ("*.Shop.Example.com", subdomains("shop.example.com")),
            ("*.co.uk", subdomains("co.uk")),
            // not entries
            ("*.", None),
            ("*", None),
            ("*.com", None),
            ("*.*.example.com", None),
            ("**.example.com", None),
            ("*example.com", None),
            (".example.com", None),
            ("example.com.", None),
            ("www.*.example.com", None),
            ("https://example.com", None),
            ("https://x.com", None),
            ("example.com/", None),
            ("example.com:443", None),
            ("user@example.com", None),
            (" example.com", None),
            ("exa mple.com", None),
            ("bücher.example", None),
            ("-a.example.com", None),
            ("a-.example.com", None),
            ("10.0.0.1", None),
            ("0x7f.1", None),
            ("a.0x1f", None),
            ("*.10.0.0", None),
            ("[::1]", None),
            ("", None),
        ];
        for (entry, want) in cases {
            assert_eq!(&HostPattern::parse(entry), want, "{entry:?}");
        }
        assert_eq!(
            HostPattern::parse("*.Example.com").unwrap().to_string(),
            "*.example.com"
        );
        assert_eq!(
            HostPattern::parse("Example.com").unwrap().to_string(),
            "example.com"
        );
    }

    #[test]
    fn wildcard_does_not_admit_the_bare_domain() {
        let l = DeepLinkHosts::new(HostPattern::parse("*.example.com"));
        assert!(l.allows("a.example.com"));
        assert!(l.allows("a.b.example.com"));
        assert!(l.allows("A.Example.COM"));
        assert!(!l.allows("example.com"));
        assert!(!l.allows(".example.com"));
        assert!(!l.allows("badexample.com"));
        assert!(!l.allows("example.com.evil.com"));
        assert!(!l.allows("a.example.com.evil.com"));
    }

    #[test]
    fn exact_hosts_imply_no_subdomain() {
        let l = DeepLinkHosts::new(HostPattern::parse("trusted.com"));
        assert!(l.allows("trusted.com"));
        assert!(l.allows("TRUSTED.com"));
        assert!(!l.allows("www.trusted.com"));
        assert!(!l.allows("trusted.com.evil.com"));
        assert!(!l.allows("eviltrusted.com"));
        assert!(!DeepLinkHosts::default().allows("trusted.com"));
        assert!(DeepLinkHosts::default().is_empty());
    }

    #[test]
    fn url_hosts() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://example.com/", Some("example.com")),
            ("HTTPS://EXAMPLE.com/features?x=1#y", Some("example.com")),
            ("http://example.com", Some("example.com")),
            (
                "https://docs.example.com:8443/a%20b",
                Some("docs.example.com"),
            ),
            ("https://trusted.com?ref=1", Some("trusted.com")),
            ("https://trusted.com#top", Some("trusted.com")),
            ("//evil.com", None),
            ("https://trusted.com@evil.com", None),
            ("https://trusted.com:pw@evil.com/", None),
            ("https:/\\evil.com", None),
            ("https:\\\\trusted.com", None),
            ("https://trusted.com%2eevil.com/", None),
            ("https://trusted.com\0.evil.com/", None),
            ("https://trusted.com./", None),
            ("https://trusted.com:/", None),
            ("https://trusted.com:99999999/", None),
            ("https://trusted.com:80:80/", None),
            ("https://[::1]/", None),
            ("javascript:alert(1)", None),
            ("ftp://trusted.com/", None),
            (" https://trusted.com", None),
            ("example.com", None),
            ("", None),
        ];
        for (url, want) in cases {
            assert_eq!(url_host(url).as_deref(), *want, "{url:?}");
        }
    }
}
