//! Requests that are not a person following a link: HEAD requests, browser prefetch/prerender,
//! and link-preview or search bots. They are redirected (so previews still resolve) but get no
//! click id, no cookies, and nothing is counted.
//!
//! Deliberately NOT treated as bots: command-line clients such as `curl` and `wget`, so the
//! README's `curl -i .../r/CODE` demo counts a click like a browser would; they are rare in real
//! traffic and the one-hour de-duplication bounds what a script can inflate.

/// Why a request is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonHuman {
    /// Not a GET (HEAD is what link checkers and unfurlers send first).
    Method,
    /// `Purpose`, `Sec-Purpose`, `X-Purpose` or `X-Moz` announce a prefetch, prerender or preview.
    Prefetch,
    /// No User-Agent at all (every browser sends one).
    NoUserAgent,
    /// A known link-preview, search or monitoring bot.
    Bot,
}

/// User-Agent fragments (matched case-insensitively) of link-preview, search and monitoring bots.
pub const BOT_USER_AGENT_TOKENS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "meta-externalagent",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "skypeuripreview",
    "microsoftpreview",
    "googlebot",
    "google-inspectiontool",
    "adsbot-google",
    "mediapartners-google",
    "feedfetcher-google",
    "googleother",
    "bingbot",
    "bingpreview",
    "msnbot",
    "applebot",
    "duckduckbot",
    "yandexbot",
    "baiduspider",
    "petalbot",
    "pinterestbot",
    "redditbot",
    "embedly",
    "iframely",
    "vkshare",
    "mastodon",
    "bitlybot",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "go-http-client",
    "uptimerobot",
    "pingdom",
    "crawler",
    "spider",
];

/// Header values that announce a speculative request (matched case-insensitively, as substrings).
const PREFETCH_TOKENS: &[&str] = &["prefetch", "prerender", "preview"];
const PREFETCH_HEADERS: &[&str] = &["purpose", "sec-purpose", "x-purpose", "x-moz"];

/// Why this request is not a person following a link, or `None` when it counts.
/// `headers` are (name, value) pairs; names are compared case-insensitively.
pub fn classify_non_human(
    method: &str,
    user_agent: Option<&str>,
    headers: &[(&str, &str)],
) -> Option<NonHuman> {
    if !method.eq_ignore_ascii_case("GET") {
        return Some(NonHuman::Method);
    }
    let speculative = headers.iter().any(|(name, value)| {
        PREFETCH_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
            && {
                let v = value.to_ascii_lowercase();
                PREFETCH_TOKENS.iter().any(|t| v.contains(t))
            }
    });
    if speculative {
        return Some(NonHuman::Prefetch);
    }
    let ua = user_agent.map(str::trim).unwrap_or("");
    if ua.is_empty() {
        return Some(NonHuman::NoUserAgent);
    }
    let ua = ua.to_ascii_lowercase();
    if BOT_USER_AGENT_TOKENS.iter().any(|t| ua.contains(t)) {
        return Some(NonHuman::Bot);
    }
    None
}

/// Whether the request should be redirected without being counted (see [`classify_non_human`]).
pub fn is_non_human(method: &str, user_agent: Option<&str>, headers: &[(&str, &str)]) -> bool {
    classify_non_human(method, user_agent, headers).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const ANDROID_CUBOT: &str = "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";

    #[test]
    fn browsers_and_curl_count() {
        for ua in [CHROME, IPHONE, ANDROID_CUBOT, "curl/8.5.0", "Wget/1.21"] {
            assert!(!is_non_human("GET", Some(ua), &[]), "{ua}");
        }
        assert!(!is_non_human(
            "get",
            Some(CHROME),
            &[("Sec-Fetch-Mode", "navigate"), ("Purpose", "")]
        ));
    }

    #[test]
    fn head_and_other_methods_do_not_count() {
        assert_eq!(
            classify_non_human("HEAD", Some(CHROME), &[]),
            Some(NonHuman::Method)
        );
        assert!(is_non_human("OPTIONS", Some(CHROME), &[]));
        assert!(is_non_human("POST", Some(CHROME), &[]));
    }

    #[test]
    fn prefetch_and_prerender_do_not_count() {
        for (h, v) in [
            ("Purpose", "prefetch"),
            ("purpose", "Prefetch"),
            ("Sec-Purpose", "prefetch"),
            ("sec-purpose", "prefetch;prerender"),
            ("X-Moz", "prefetch"),
            ("X-Purpose", "preview"),
        ] {
            assert_eq!(
                classify_non_human("GET", Some(CHROME), &[(h, v)]),
                Some(NonHuman::Prefetch),
                "{h}: {v}"
            );
        }
    }

    #[test]
    fn preview_bots_do_not_count() {
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Twitterbot/1.0",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "WhatsApp/2.23.20.0",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Applebot/0.1)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0 Safari/537.36",
            "python-requests/2.31.0",
        ] {
            assert_eq!(
                classify_non_human("GET", Some(ua), &[]),
                Some(NonHuman::Bot),
                "{ua}"
            );
        }
        assert_eq!(
            classify_non_human("GET", None, &[]),
            Some(NonHuman::NoUserAgent)
        );
        assert_eq!(
            classify_non_human("GET", Some("  "), &[]),
            Some(NonHuman::NoUserAgent)
        );
    }
}
