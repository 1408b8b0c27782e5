//! The deep-link allow-list as `partnerctl apply` validates it and as the redirect honours it:
//! one grammar (`rules::hosts`), one check (`tracking::check_deep_link`). No table needed.

use partnerctl::apply;

const DEFAULT: &str = "https://example.com/pricing";

/// A program file with these `allowed_hosts` and, when given, a link to `destination`.
fn file(allowed_hosts: &[&str], destination: Option<&str>) -> String {
    let json = |v: &str| serde_json::to_string(v).unwrap();
    let hosts: Vec<String> = allowed_hosts.iter().map(|h| json(h)).collect();
    let link = match destination {
        Some(d) => format!("{{ code: alice, destination: {} }}", json(d)),
        None => "alice".into(),
    };
    format!(
        r#"
programs:
  - id: demo
    name: Demo
    plan: {{ reward: {{ type: percentage, rate: "0.25" }} }}
    default_destination: {DEFAULT}
    allowed_hosts: [{}]
partners:
  - id: alice
    email: alice@example.com
    programs:
      - program: demo
        links: [{link}]
"#,
        hosts.join(", ")
    )
}

/// The program of `text` as the redirect reads it back from the table.
fn program_of(text: &str) -> rules::Program {
    let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    serde_yaml::from_value(v["programs"][0].clone()).unwrap()
}

#[test]
fn allowed_hosts_entries() {
    let cases: &[(&str, bool)] = &[
        ("shop.example.com", true),
        ("Shop.Example.COM", true),
        ("*.example.com", true),
        ("*.shop.example.com", true),
        ("xn--bcher-kva.example", true),
        ("*.", false),
        ("*", false),
        ("*.com", false),
        ("*.*.example.com", false),
        ("www.*.example.com", false),
        ("*example.com", false),
        ("https://example.com", false),
        ("example.com/", false),
        ("example.com:443", false),
        ("10.0.0.1", false),
        ("bücher.example", false),
        (" example.com", false),
        ("", false),
    ];
    for (entry, accepted) in cases {
        let r = apply::parse(&file(&[entry], None));
        assert_eq!(r.is_ok(), *accepted, "{entry:?}: {r:?}");
        if let Err(e) = r {
            assert!(e.to_string().contains("allowed host"), "{entry:?}: {e}");
        }
    }
}

/// A wildcard entry can be configured, and a link destination is accepted by `apply` exactly
/// when the redirect honours it.
#[test]
fn wildcard_destinations_agree_with_the_redirect() {
    let cases: &[(&str, bool)] = &[
        ("https://a.partner-shop.com/x", true),
        ("https://a.b.partner-shop.com/", true),
        ("HTTPS://Shop.Partner-Shop.com/Sale?x=1#top", true),
        ("https://example.com/blog", true),
        ("https://partner-shop.com/", false),
        ("https://evilpartner-shop.com/", false),
        ("https://partner-shop.com.evil.com/", false),
        ("https://a.partner-shop.com.evil.com/", false),
        ("//evil.com", false),
        ("https://a.partner-shop.com@evil.com", false),
        ("https://evil.com@a.partner-shop.com", false),
        ("https://a.partner-shop.com%2F@evil.com", false),
        ("https:/\\evil.com", false),
        ("https://evil.com/?x=a.partner-shop.com", false),
        ("https://a.partner-shop.com\0.evil.com/", false),
        ("https://a.partner-shop.com/\u{e9}", false),
        ("https://[::1]/", false),
        ("javascript:alert(1)", false),
        ("a.partner-shop.com", false),
    ];
    for (destination, honoured) in cases {
        let text = file(&["*.partner-shop.com"], Some(destination));
        let r = apply::parse(&text);
        assert_eq!(r.is_ok(), *honoured, "apply: {destination:?}: {r:?}");
        if let Err(e) = r {
            assert!(e.to_string().contains("allow-list"), "{destination:?}: {e}");
        }
        let hosts = program_of(&text).deep_link_hosts();
        let landed = tracking::resolve_destination(DEFAULT, Some(destination), &hosts);
        assert_eq!(landed != DEFAULT, *honoured, "redirect: {destination:?}");
    }
}

#[test]
fn bare_domain_and_subdomains_are_listed_separately() {
    let text = file(
        &["partner-shop.com", "*.partner-shop.com"],
        Some("https://partner-shop.com/"),
    );
    apply::parse(&text).unwrap();
    let hosts = program_of(&text).deep_link_hosts();
    for to in ["https://partner-shop.com/", "https://www.partner-shop.com/"] {
        assert_eq!(tracking::resolve_destination(DEFAULT, Some(to), &hosts), to);
    }
}
