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
//! - [`rules::url_host`] reads it: `http://` or `https://` (any letter case) followed by an
//!   authority that is exactly `host` or `host:port`, host a DNS name: so no userinfo (`@`), no
//!   percent-encoding, no IP literals in brackets, nothing relative (`//evil.com`), no
//!   `https:evil.com` or `https:/\evil.com` shapes;
//! - the WHATWG parser (the `url` crate, what browsers implement) agrees: http(s) scheme, no
//!   username or password, a domain host (not an IP address) equal to the host read above;
//! - that host is allowed by the program's [`DeepLinkHosts`]
//!   ([`rules::Program::deep_link_hosts`]: the default destination's host and the
//!   `allowed_hosts` entries).
//!
//! The URL returned is the parser's serialisation (lower-case scheme and host), so the browser
//! reads back exactly the host that was checked.
//!
//! # Allow-list entries
//!
//! One grammar, in [`rules::hosts`], for the redirect and for `partnerctl apply`'s validation:
//! exact host names (`shop.example.com`, case-insensitive, no subdomain implied) and subdomain
//! wildcards (`*.example.com`: every subdomain at any depth, but not `example.com` itself).
//! `partnerctl apply` checks a link's destination with [`check_deep_link`], the function the
//! redirect uses.

use rules::DeepLinkHosts;
use url::Url;

/// Longest deep link honoured, in bytes.
pub const MAX_DEEP_LINK_LEN: usize = 2048;

/// The deep link `requested`, normalised, when it passes every rule of the module docs against
/// `hosts`; `None` otherwise.
pub fn check_deep_link(hosts: &DeepLinkHosts, requested: &str) -> Option<String> {
    if requested.len() > MAX_DEEP_LINK_LEN
        || !requested
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        return None;
    }
    let host = rules::url_host(requested)?;
    let url = Url::parse(requested).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let Some(url::Host::Domain(parsed)) = url.host() else {
        return None;
    };
    if parsed != host || !hosts.allows(&host) {
        return None;
    }
    Some(url.into())
}

/// The destination of a click: `requested_to` when it passes the deep-link rule (module docs)
/// against `hosts`, otherwise `default` unchanged.
pub fn resolve_destination(
    default: &str,
    requested_to: Option<&str>,
    hosts: &DeepLinkHosts,
) -> String {
    requested_to
        .and_then(|to| check_deep_link(hosts, to))
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
    use rules::{CommissionPlan, Currency, Duration, Program, Reward};
    use std::collections::BTreeMap;

    const DEFAULT: &str = "https://trusted.com/welcome";

    fn program(default_destination: &str, allowed_hosts: &[&str]) -> Program {
        let plan = CommissionPlan::new(
            Reward::Flat {
                amounts: BTreeMap::from([(Currency::USD, 1_000)]),
            },
            Duration::Lifetime,
        );
        let mut p = Program::new("p", "P", plan, default_destination);
        p.allowed_hosts = allowed_hosts.iter().map(|h| h.to_string()).collect();
        p
    }

    /// The hosts of a program whose `allowed_hosts` are these entries ("not a host" is invalid:
    /// validation refuses it, and read without validation it admits nothing).
    fn hosts() -> DeepLinkHosts {
        program(
            DEFAULT,
            &[
                "trusted.com",
                "Shop.Trusted.com",
                "*.cdn-trusted.net",
                "docs.trusted.com",
                "xn--bcher-kva.example",
                "not a host",
            ],
        )
        .deep_link_hosts()
    }

    fn resolve(to: &str) -> String {
        resolve_destination(DEFAULT, Some(to), &hosts())
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
        assert_eq!(resolve_destination(DEFAULT, None, &hosts()), DEFAULT);
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
        let none = DeepLinkHosts::default();
        assert_eq!(
            resolve_destination(DEFAULT, Some("https://trusted.com/"), &none),
            DEFAULT
        );
        assert!(none.is_empty());
    }

    /// A wildcard entry, as `partnerctl apply` accepts it (`Program::validate`), is honoured:
    /// subdomains at any depth, never the bare domain, never a look-alike.
    #[test]
    fn wildcard_entries_are_honoured() {
        let p = program("https://example.com/pricing", &["*.partner-shop.com"]);
        p.validate().unwrap();
        let hosts = p.deep_link_hosts();
        let cases: &[(&str, Option<&str>)] = &[
            (
                "https://a.partner-shop.com/x",
                Some("https://a.partner-shop.com/x"),
            ),
            (
                "https://A.Partner-Shop.COM/x",
                Some("https://a.partner-shop.com/x"),
            ),
            (
                "https://a.b.partner-shop.com",
                Some("https://a.b.partner-shop.com/"),
            ),
            (
                "http://www.partner-shop.com:8080/?q=1#f",
                Some("http://www.partner-shop.com:8080/?q=1#f"),
            ),
            ("https://example.com/blog", Some("https://example.com/blog")),
            ("https://partner-shop.com/", None),
            ("https://.partner-shop.com/", None),
            ("https://evilpartner-shop.com/", None),
            ("https://partner-shop.com.evil.com/", None),
            ("https://a.partner-shop.com.evil.com/", None),
            ("//evil.com", None),
            ("//a.partner-shop.com", None),
            ("https://a.partner-shop.com@evil.com", None),
            ("https://evil.com@a.partner-shop.com", None),
            ("https://a.partner-shop.com%2F@evil.com", None),
            ("https:/\\evil.com", None),
            ("https://a.partner-shop.com\\@evil.com", None),
            ("https://evil.com/?x=a.partner-shop.com", None),
            ("https://evil.com#.partner-shop.com", None),
            ("https://a.partner-shop.com\0.evil.com", None),
            ("https://a.partner-shop.com./", None),
            ("javascript:alert(1)", None),
            ("a.partner-shop.com", None),
        ];
        for (to, want) in cases {
            assert_eq!(check_deep_link(&hosts, to).as_deref(), *want, "{to:?}");
        }
        // `*.` alone and `*.com` are refused by validation, and admit nothing if stored anyway.
        for entry in ["*.", "*.com"] {
            let p = program("https://example.com/pricing", &[entry]);
            assert!(p.validate().is_err(), "{entry}");
            let hosts = p.deep_link_hosts();
            for to in [
                "https://evil.com/",
                "https://a.com/",
                "https://x.partner-shop.com/",
            ] {
                assert_eq!(check_deep_link(&hosts, to), None, "{entry} {to}");
            }
        }
    }

    /// The cases `rules::Program` was tested with before the allow-list had one implementation.
    #[test]
    fn program_allow_list() {
        let p = program(
            "https://example.com/pricing",
            &["Docs.Example.com", "trusted.com"],
        );
        p.validate().unwrap();
        let hosts = p.deep_link_hosts();
        for ok in [
            "https://example.com/",
            "https://EXAMPLE.com/features?x=1#y",
            "http://example.com",
            "https://docs.example.com:8443/a%20b",
            "https://trusted.com?ref=1",
        ] {
            assert!(check_deep_link(&hosts, ok).is_some(), "{ok}");
        }
        for bad in [
            "//evil.com",
            "https://trusted.com@evil.com",
            "https://trusted.com:pw@evil.com/",
            "https:/\\evil.com",
            "https:\\\\trusted.com",
            "https://trusted.com.evil.com/",
            "https://www.trusted.com/",
            "https://trusted.com%2eevil.com/",
            "https://trusted.com\0.evil.com/",
            "https://trusted.com./",
            "https://trusted.com:/",
            "https://trusted.com:99999999/",
            "https://[::1]/",
            "javascript:alert(1)",
            "ftp://trusted.com/",
            "https://evil.com/https://trusted.com",
            " https://trusted.com",
            "",
        ] {
            assert_eq!(check_deep_link(&hosts, bad), None, "{bad:?}");
        }
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
                prop_assert!(hosts().allows(&host), "{to:?} -> {got:?}");
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
