//! Where a click lands: the program's (or link's) default destination, or a deep link requested
//! with `?to=` when, and only when, it is provably on the program's host allow-list.
//!
//! # Deep-link rule
//!
//! A requested destination is honoured only when ALL of these hold; anything else yields the
//! default (never an error page, never a partial URL):
//!
//! - at most [`MAX_DEEP_LINK_LEN`] bytes of visible ASCII (`!`..=`~`): no whitespace, no control
//!   characters, no NUL, no non-ASCII (IDN hosts must be written in their `xn--` form);
//! - no backslash anywhere;
//! - it starts with `http://` or `https://` (any letter case) followed by an authority that is
//!   exactly `host` or `host:port`, where host is dot-separated labels of `[A-Za-z0-9-]`: so no
//!   userinfo (`@`), no percent-encoding, no IP literals in brackets, nothing relative
//!   (`//evil.com`), no `https:evil.com` or `https:/\evil.com` shapes;
//! - the WHATWG parser (the `url` crate, what browsers implement) agrees: http(s) scheme, no
//!   username or password, a domain host (not an IP address) equal to the host read above;
//! - that host is on the allow-list.
//!
//! The URL returned is the parser's serialisation (lower-case scheme and host), so the browser
//! reads back exactly the host that was checked.
//!
//! # Allow-list entries
//!
//! Host names, compared case-insensitively and EXACTLY: `shop.example.com` does not admit
//! `example.com` or `www.shop.example.com`. An entry `*.example.com` admits every subdomain of
//! `example.com` (any depth) but not `example.com` itself; list both when both are wanted.
//! Entries may be written with a scheme (`https://shop.example.com/`), in Unicode (converted to
//! `xn--` form) or in any case; entries that are not host names are ignored.

use url::Url;

/// Longest deep link honoured, in bytes.
pub const MAX_DEEP_LINK_LEN: usize = 2048;

/// A compiled host allow-list (see the module docs for the entry syntax).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    exact: Vec<String>,
    /// `*.example.com` stored as `.example.com`.
    suffixes: Vec<String>,
}

impl AllowList {
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Self {
        let mut list = AllowList::default();
        for e in entries {
            let e = e.as_ref().trim();
            if let Some(rest) = e.strip_prefix("*.") {
                if let Some(h) = normalize_host(rest) {
                    list.suffixes.push(format!(".{h}"));
                }
            } else if let Some(h) = normalize_host(e) {
                list.exact.push(h);
            }
        }
        list
    }

    /// Whether `host` (as the URL parser returns it: lower-case ASCII) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.exact.contains(&host)
            || self
                .suffixes
                .iter()
                .any(|s| host.len() > s.len() && host.ends_with(s.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    /// The deep link `requested`, normalised, when it passes every rule of the module docs.
    pub fn check(&self, requested: &str) -> Option<String> {
        let authority = raw_authority(requested)?;
        let (raw_host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if !ascii_host(raw_host) {
            return None;
        }
        if let Some(p) = port {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
        }
        let url = Url::parse(requested).ok()?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let Some(url::Host::Domain(host)) = url.host() else {
            return None;
        };
        if !host.eq_ignore_ascii_case(raw_host) || !self.allows(host) {
            return None;
        }
        Some(url.into())
    }
}

/// The authority of an `http(s)://` URL made only of visible ASCII, without backslashes.
fn raw_authority(raw: &str) -> Option<&str> {
    if raw.is_empty() || raw.len() > MAX_DEEP_LINK_LEN {
        return None;
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return None;
    }
    let rest = strip_prefix_ci(raw, "https://").or_else(|| strip_prefix_ci(raw, "http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty()).then_some(authority)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Dot-separated, non-empty labels of `[A-Za-z0-9-]`.
fn ascii_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An allow-list entry as the parser would spell the host: lower-case ASCII (`xn--` for IDN).
fn normalize_host(entry: &str) -> Option<String> {
    let host = if entry.contains("://") {
        match Url::parse(entry).ok()?.host()? {
            url::Host::Domain(d) => d.to_string(),
            _ => return None,
        }
    } else {
        match url::Host::parse(entry).ok()? {
            url::Host::Domain(d) => d,
            _ => return None,
        }
    };
    ascii_host(&host).then_some(host)
}

/// The destination of a click: `requested_to` when it passes the deep-link rule (module docs)
/// against `allowed_hosts`, otherwise `default` unchanged.
pub fn resolve_destination(
    default: &str,
    requested_to: Option<&str>,
    allowed_hosts: &[String],
) -> String {
    requested_to
        .and_then(|to| AllowList::new(allowed_hosts).check(to))
        .unwrap_or_else(|| default.to_string())
}

/// `url` with query parameter `name=value` set: earlier parameters named `name` are removed (so
/// the merchant reads exactly one, and a deep link cannot smuggle its own), every other
/// parameter is kept byte for byte, and the fragment stays last.
pub fn append_query(url: &str, name: &str, value: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, q),
        None => (before_fragment, ""),
    };
    let mut out = String::with_capacity(url.len() + name.len() + value.len() + 2);
    out.push_str(base);
    out.push('?');
    for seg in query.split('&').filter(|s| !s.is_empty()) {
        let same_name = url::form_urlencoded::parse(seg.as_bytes())
            .next()
            .is_some_and(|(k, _)| k == name);
        if !same_name {
            out.push_str(seg);
            out.push('&');
        }
    }
    out.extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
    out.push('=');
    out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEFAULT: &str = "https://trusted.com/welcome";

    fn allowed() -> Vec<String> {
        vec![
            "trusted.com".into(),
            "Shop.Trusted.com".into(),
            "*.cdn-trusted.net".into(),
            "https://docs.trusted.com/".into(),
            "bücher.example".into(),
            "not a host".into(),
        ]
    }

    fn resolve(to: &str) -> String {
        resolve_destination(DEFAULT, Some(to), &allowed())
    }

    #[test]
    fn allowed_deep_links_are_honoured_and_normalised() {
        assert_eq!(
            resolve("https://trusted.com/pricing?plan=pro#faq"),
            "https://trusted.com/pricing?plan=pro#faq"
        );
        assert_eq!(
            resolve("https://shop.trusted.com/x"),
            "https://shop.trusted.com/x"
        );
        assert_eq!(resolve("http://trusted.com"), "http://trusted.com/");
        assert_eq!(
            resolve("HTTPS://TRUSTED.COM/Pricing"),
            "https://trusted.com/Pricing"
        );
        assert_eq!(
            resolve("https://trusted.com:8443/a"),
            "https://trusted.com:8443/a"
        );
        assert_eq!(
            resolve("https://docs.trusted.com/a"),
            "https://docs.trusted.com/a"
        );
        assert_eq!(
            resolve("https://a.cdn-trusted.net/i"),
            "https://a.cdn-trusted.net/i"
        );
        assert_eq!(
            resolve("https://a.b.cdn-trusted.net/i"),
            "https://a.b.cdn-trusted.net/i"
        );
        assert_eq!(
            resolve("https://xn--bcher-kva.example/"),
            "https://xn--bcher-kva.example/"
        );
        assert_eq!(
            resolve("https://trusted.com/search?q=a%20b"),
            "https://trusted.com/search?q=a%20b"
        );
        assert_eq!(resolve_destination(DEFAULT, None, &allowed()), DEFAULT);
    }

    #[test]
    fn bypasses_fall_back_to_the_default() {
        let bypasses = [
            "",
            "//evil.com",
            "//trusted.com",
            "/pricing",
            "https://trusted.com@evil.com",
            "https://trusted.com:pass@evil.com/",
            "https://evil.com@trusted.com",
            "https://@trusted.com",
            "https:/\\evil.com",
            "https:\\\\evil.com",
            "https://trusted.com\\@evil.com",
            "https:evil.com",
            "https:trusted.com",
            "https:/trusted.com",
            "https:///trusted.com",
            "trusted.com",
            "trusted.com.evil.com",
            "https://trusted.com.evil.com/",
            "https://eviltrusted.com/",
            "https://evil.com/?x=trusted.com",
            "https://evil.com/#trusted.com",
            "https://evil.com/trusted.com",
            "javascript:alert(1)",
            "JavaScript://trusted.com/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://trusted.com/",
            "%2F%2Fevil.com",
            "https:%2F%2Fevil.com",
            "https://evil.com%2F@trusted.com",
            "https://evil.com%2f.trusted.com",
            "https://trusted.com%2F@evil.com",
            "https://trusted%2Ecom/",
            "https://trusted.com%00.evil.com",
            "https://trusted.com\0.evil.com",
            "https://trusted.com\0",
            "\0https://trusted.com/",
            " https://trusted.com/",
            "https://trusted.com/ ",
            "https://trusted.com/\n",
            "https://trusted.com/\t",
            "https://trus\tted.com/",
            "https://trusted.com\u{3002}evil.com/",
            "https://trusted\u{ff0e}com/",
            "https://trüsted.com/",
            "https://bücher.example/",
            "https://xn--trsted-wxa.com/",
            "https://[::1]/",
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://trusted.com./",
            "https://trusted.com:/",
            "https://trusted.com:99999999/",
            "https://trusted.com:80:80/",
            "https://cdn-trusted.net/",
            "https://evilcdn-trusted.net/",
            "https://example.com/",
            "https://www.trusted.com/",
            "http://evil.com\\.trusted.com/",
            "https://evil.com?.trusted.com",
            "https://evil.com#.trusted.com",
        ];
        for b in bypasses {
            assert_eq!(resolve(b), DEFAULT, "{b:?} must fall back");
        }
        let long = format!("https://trusted.com/{}", "a".repeat(MAX_DEEP_LINK_LEN));
        assert_eq!(resolve(&long), DEFAULT);
    }

    #[test]
    fn empty_allow_list_allows_nothing() {
        assert_eq!(
            resolve_destination(DEFAULT, Some("https://trusted.com/"), &[]),
            DEFAULT
        );
        assert!(AllowList::new::<String>(&[]).is_empty());
    }

    #[test]
    fn wildcard_does_not_admit_the_bare_domain() {
        let l = AllowList::new(&["*.example.com"]);
        assert!(l.allows("a.example.com"));
        assert!(l.allows("A.Example.COM"));
        assert!(!l.allows("example.com"));
        assert!(!l.allows(".example.com"));
        assert!(!l.allows("badexample.com"));
    }

    #[test]
    fn append_query_keeps_query_and_fragment() {
        assert_eq!(
            append_query("https://s.com/", "ref_click", "A1"),
            "https://s.com/?ref_click=A1"
        );
        assert_eq!(
            append_query("https://s.com", "ref_click", "A1"),
            "https://s.com?ref_click=A1"
        );
        assert_eq!(
            append_query("https://s.com/p?a=1&b=%20x+y", "ref_click", "A1"),
            "https://s.com/p?a=1&b=%20x+y&ref_click=A1"
        );
        assert_eq!(
            append_query("https://s.com/p?a=1#frag?x=1&y", "ref_click", "A1"),
            "https://s.com/p?a=1&ref_click=A1#frag?x=1&y"
        );
        assert_eq!(
            append_query("https://s.com/p?#f", "r", "v"),
            "https://s.com/p?r=v#f"
        );
        assert_eq!(
            append_query("https://s.com/p?a=1&", "r", "v"),
            "https://s.com/p?a=1&r=v"
        );
        // an existing value of the same name is replaced, even when encoded differently
        assert_eq!(
            append_query(
                "https://s.com/?ref_click=forged&a=2&ref%5Fclick=x",
                "ref_click",
                "A1"
            ),
            "https://s.com/?a=2&ref_click=A1"
        );
        assert_eq!(
            append_query("https://s.com/", "n m", "a&b=c"),
            "https://s.com/?n+m=a%26b%3Dc"
        );
    }

    fn host_of(u: &str) -> Option<String> {
        Url::parse(u).ok()?.host_str().map(str::to_string)
    }

    fn trusted_parts() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "https://",
            "http://",
            "HTTPS://",
            "//",
            "\\",
            "/",
            "@",
            ":",
            "%2F",
            "%40",
            "%00",
            "\0",
            " ",
            "\t",
            "\n",
            "#",
            "?",
            ".",
            "trusted.com",
            "shop.trusted.com",
            "a.cdn-trusted.net",
            "cdn-trusted.net",
            "evil.com",
            "javascript:",
            "data:",
            "xn--bcher-kva.example",
            "bücher.example",
            "\u{3002}",
            "[::1]",
            "127.0.0.1",
            ":443",
            "user:pass",
            "=",
            "&",
        ])
        .prop_map(str::to_string)
    }

    /// Near misses: a scheme-like head, a host-like part, then any mix of tricky fragments.
    fn assembled() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["https://", "http://", "HTTPS://", "", "//", "https:/"]),
            prop::sample::select(vec![
                "trusted.com",
                "shop.trusted.com",
                "a.cdn-trusted.net",
                "evil.com",
                "xn--bcher-kva.example",
                "trusted.com.evil.com",
                "",
            ]),
            prop::collection::vec(trusted_parts(), 0..6),
        )
            .prop_map(|(scheme, host, tail)| format!("{scheme}{host}{}", tail.concat()))
    }

    #[test]
    fn the_fuzz_strategy_reaches_both_outcomes() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = assembled();
        let accepted = (0..4096)
            .filter(|_| {
                let v = strategy.new_tree(&mut runner).unwrap().current();
                resolve(&v) != DEFAULT
            })
            .count();
        assert!(
            (200..3900).contains(&accepted),
            "{accepted} of 4096 accepted"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn result_is_default_or_on_the_allow_list(
            to in prop_oneof![assembled(), "\\PC{0,64}", any::<String>()],
        ) {
            let got = resolve(&to);
            if got != DEFAULT {
                let u = Url::parse(&got).expect("honoured deep links parse");
                prop_assert!(matches!(u.scheme(), "http" | "https"));
                prop_assert!(u.username().is_empty() && u.password().is_none());
                let host = host_of(&got).expect("has a host");
                prop_assert!(AllowList::new(&allowed()).allows(&host), "{to:?} -> {got:?}");
                // the browser reads back the same URL
                prop_assert_eq!(u.as_str(), got.as_str());
                // appending the click id keeps the host
                let with_id = append_query(&got, "ref_click", "Aabc");
                prop_assert_eq!(host_of(&with_id), Some(host));
            }
        }

        #[test]
        fn append_query_round_trips(
            base in prop::sample::select(vec![
                "https://s.com/", "https://s.com/p?a=1", "https://s.com/p?a=1#f", "https://s.com/p#f?x",
            ]),
            value in "[A-Za-z0-9_-]{1,64}",
        ) {
            let out = append_query(base, "ref_click", &value);
            let u = Url::parse(&out).unwrap();
            let got: Vec<_> = u.query_pairs().filter(|(k, _)| k == "ref_click").map(|(_, v)| v.into_owned()).collect();
            prop_assert_eq!(got, vec![value]);
            let b = Url::parse(base).unwrap();
            prop_assert_eq!(u.fragment(), b.fragment());
        }
    }
}
