//! The redirect function against moto (real tables), driven by the sample events in
//! `events/redirect/` as lambda_http parses them.

use std::time::Duration;

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY};
use redirect::handle;
use storage::links::{self, LinkStatus};
use testkit::redirect::*;

#[tokio::test]
async fn a_click_is_counted_and_carries_its_id_in_location_and_cookies() {
    let (deps, t, _) = table_deps().await;
    let r = handle(&deps, request(&event("click.json"))).await.unwrap();

    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store, max-age=0");
    assert_eq!(
        r.headers()[REFERRER_POLICY],
        "strict-origin-when-cross-origin"
    );
    let id = click_param(&r).expect("click id in Location");
    assert_eq!(location(&r), format!("{DEFAULT_DEST}?ref_click={id}"));
    let claims = keys().verify_click_id(&id).unwrap();
    assert_eq!(claims.link_code(), Some("alice"));
    assert_eq!(claims.at_ms, T0, "business time is the event's timeEpoch");

    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(
            c.ends_with("; Max-Age=2592000; Path=/; Domain=.example.com; Secure; SameSite=Lax"),
            "{c}"
        );
        assert!(!c.contains("HttpOnly"));
    }
    assert_eq!(cookie_value(&r, "ref_click").as_deref(), Some(id.as_str()));
    let vid = cookie_value(&r, "ref_vid").unwrap();
    assert!(tracking::valid_visitor_id(&vid));

    let stored = links::get_click(&t, &id)
        .await
        .unwrap()
        .expect("click item");
    assert_eq!(stored.partner_id, "partner-alice");
    assert_eq!(stored.program_id, "demo");
    assert_eq!(stored.visitor_id, vid);
    assert_eq!(stored.at_ms, T0);
    assert_eq!(stored.sub_id, None);
    assert_eq!(daily(&t, "alice").await, 1);
    assert_eq!(
        deps.recorder.writes(),
        1,
        "one transaction per counted click"
    );
}

#[tokio::test]
async fn a_repeat_within_the_hour_gets_the_original_id_and_counts_once() {
    let (deps, t, _) = table_deps().await;
    let first = handle(&deps, request(&event("click.json"))).await.unwrap();
    let id = click_param(&first).unwrap();

    // Same IP and browser, cookies refused: the store's de-duplication guard answers.
    let again = handle(&deps, request(&at(event("click.json"), T0 + 10 * MINUTE)))
        .await
        .unwrap();
    assert_eq!(click_param(&again).as_deref(), Some(id.as_str()));
    assert_eq!(
        cookie_value(&again, "ref_click").as_deref(),
        Some(id.as_str())
    );

    // Same browser with its cookies, from another network: the click cookie answers, no write.
    let writes = deps.recorder.writes();
    let ev = with_ip(
        with_cookies(
            at(event("click.json"), T0 + 59 * MINUTE),
            &cookie_pairs(&first),
        ),
        "198.51.100.20",
    );
    let third = handle(&deps, request(&ev)).await.unwrap();
    assert_eq!(click_param(&third).as_deref(), Some(id.as_str()));
    assert_eq!(
        cookie_value(&third, "ref_vid"),
        cookie_value(&first, "ref_vid"),
        "the visitor id is kept"
    );
    assert_eq!(deps.recorder.writes(), writes);
    assert_eq!(daily(&t, "alice").await, 1);
    assert!(links::get_click(&t, &id).await.unwrap().is_some());

    // An hour later the same browser counts again, under its visitor id.
    let ev = with_cookies(
        at(event("click.json"), T0 + 60 * MINUTE),
        &cookie_pairs(&first),
    );
    let later = handle(&deps, request(&ev)).await.unwrap();
    let new_id = click_param(&later).unwrap();
    assert_ne!(new_id, id);
    assert_eq!(daily(&t, "alice").await, 2);
    let vid = cookie_value(&first, "ref_vid").unwrap();
    let clicks: Vec<_> = links::visitor_clicks(&t, &vid)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.click_id)
        .collect();
    assert_eq!(clicks, vec![id, new_id]);
}

#[tokio::test]
async fn different_visitors_count() {
    let (deps, t, _) = table_deps().await;
    let a = handle(&deps, request(&event("click.json"))).await.unwrap();
    let b = handle(
        &deps,
        request(&with_ip(at(event("click.json"), T0 + 1000), "198.51.100.9")),
    )
    .await
    .unwrap();
    // A returning visitor (visitor-id cookie of an earlier visit) on the first IP: its own key.
    let c = handle(
        &deps,
        request(&at(event("returning-visitor.json"), T0 + 2000)),
    )
    .await
    .unwrap();
    let ids = [click_param(&a), click_param(&b), click_param(&c)];
    assert!(ids.iter().all(Option::is_some));
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(
        cookie_value(&c, "ref_vid").as_deref(),
        Some("q83vEjRWeJq83vEjRWeJqw")
    );
    assert_eq!(daily(&t, "alice").await, 3);
}

#[tokio::test]
async fn sub_ids_from_the_path_or_the_query() {
    let (deps, t, _) = table_deps().await;
    let sub_of = |r: &lambda_http::Response<lambda_http::Body>| click_param(r).unwrap();

    let r = handle(&deps, request(&event("click-with-sub.json")))
        .await
        .unwrap();
    let c = links::get_click(&t, &sub_of(&r)).await.unwrap().unwrap();
    assert_eq!(c.sub_id.as_deref(), Some("spring-sale"));

    let ev = with_ip(event("click-sub-query.json"), "198.51.100.1");
    let r = handle(&deps, request(&ev)).await.unwrap();
    let c = links::get_click(&t, &sub_of(&r)).await.unwrap().unwrap();
    assert_eq!(c.sub_id.as_deref(), Some("newsletter-42"));

    // Invalid sub-ids are ignored, the click still counts.
    let ev = with_query(
        with_ip(event("click.json"), "198.51.100.2"),
        &[("sub", "bad sub!")],
    );
    let r = handle(&deps, request(&ev)).await.unwrap();
    let c = links::get_click(&t, &sub_of(&r)).await.unwrap().unwrap();
    assert_eq!(c.sub_id, None);

    // The path wins over the query.
    let ev = with_query(
        with_ip(event("click-with-sub.json"), "198.51.100.3"),
        &[("sub", "from-query")],
    );
    let r = handle(&deps, request(&ev)).await.unwrap();
    let c = links::get_click(&t, &sub_of(&r)).await.unwrap().unwrap();
    assert_eq!(c.sub_id.as_deref(), Some("spring-sale"));
    assert_eq!(daily(&t, "alice").await, 4);
}

#[tokio::test]
async fn deep_links_only_to_allowed_hosts() {
    let (deps, _t, _) = table_deps().await;
    let r = handle(&deps, request(&event("deeplink.json")))
        .await
        .unwrap();
    let id = click_param(&r).unwrap();
    assert_eq!(
        location(&r),
        format!("https://docs.example.com/guide?step=2&ref_click={id}#install")
    );

    let allowed = [
        (
            "https://shop.example.com/pricing",
            "https://shop.example.com/pricing",
        ),
        (
            "HTTPS://Docs.Example.com/a?b=1",
            "https://docs.example.com/a?b=1",
        ),
    ];
    for (i, (to, expected)) in allowed.iter().enumerate() {
        let ev = with_query(
            with_ip(event("click.json"), &format!("198.51.100.{i}")),
            &[("to", to)],
        );
        let r = handle(&deps, request(&ev)).await.unwrap();
        let id = click_param(&r).unwrap();
        let sep = if expected.contains('?') { '&' } else { '?' };
        assert_eq!(
            location(&r),
            format!("{expected}{sep}ref_click={id}"),
            "{to}"
        );
    }

    let bypasses = [
        "//evil.com",
        "https://shop.example.com@evil.com",
        "https://evil.com@shop.example.com",
        "https:/\\evil.com",
        "https://shop.example.com\\@evil.com",
        "shop.example.com.evil.com",
        "https://shop.example.com.evil.com/",
        "https://evil.com/?x=shop.example.com",
        "javascript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "%2F%2Fevil.com",
        "https://evil.com%2F@shop.example.com",
        "https://shop.example.com%2F@evil.com",
        "https://shop.example.com\0.evil.com/",
        "https://shop.example.com/\0",
        "JAVASCRIPT:alert(1)",
        "HTTPS://EVIL.COM/",
        "https://shöp.example.com/",
        "https://xn--shp-sna.example.com/",
        " https://shop.example.com/",
        "https://shop.example.com/ x",
        "https://shop.example.com/\r\nSet-Cookie: x=1",
        "https://www.example.com/",
        "https://example.com/",
        "https://shop.example.com/?ref_click=forged",
    ];
    for (i, to) in bypasses.iter().enumerate() {
        let ev = with_query(
            with_ip(event("click.json"), &format!("192.0.2.{i}")),
            &[("to", to)],
        );
        let r = handle(&deps, request(&ev)).await.unwrap();
        assert_eq!(r.status(), 302, "{to:?}");
        let id = click_param(&r).unwrap();
        let loc = location(&r);
        if *to == "https://shop.example.com/?ref_click=forged" {
            // allowed host, but the forged parameter is replaced by the real one
            assert_eq!(loc, format!("https://shop.example.com/?ref_click={id}"));
        } else {
            assert_eq!(loc, format!("{DEFAULT_DEST}?ref_click={id}"), "{to:?}");
        }
    }
}

#[tokio::test]
async fn unknown_disabled_or_paused_links_go_to_the_fallback_and_record_nothing() {
    let (deps, t, _) = table_deps().await;
    for code in ["nobody", "off", "sleepy", "orphan", "bad%23code"] {
        let r = handle(&deps, request(&for_code(event("click.json"), code)))
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{code}");
        assert_eq!(location(&r), FALLBACK, "{code}");
        assert!(set_cookies(&r).is_empty(), "{code}");
        assert_eq!(daily(&t, code).await, 0, "{code}");
    }
    let r = handle(&deps, request(&event("unknown-code.json")))
        .await
        .unwrap();
    assert_eq!(location(&r), FALLBACK);
    assert_eq!(deps.recorder.writes(), 0);

    // Without FALLBACK_URL: a small 404 page.
    let (mut deps, _, _) = table_deps().await;
    deps.config.fallback_url = None;
    let r = handle(&deps, request(&event("unknown-code.json")))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store, max-age=0");
    assert!(set_cookies(&r).is_empty());
}

#[tokio::test]
async fn head_bots_and_prefetch_are_redirected_without_counting() {
    let (deps, t, _) = table_deps().await;
    for name in ["head.json", "slackbot.json", "prefetch.json"] {
        let r = handle(&deps, request(&event(name))).await.unwrap();
        assert_eq!(r.status(), 302, "{name}");
        assert_eq!(location(&r), DEFAULT_DEST, "{name}: no click id");
        assert!(set_cookies(&r).is_empty(), "{name}: no cookies");
    }
    // A bot following a deep link still lands on the right (allowed) page.
    let mut ev = event("deeplink.json");
    ev["headers"]["user-agent"] = "Twitterbot/1.0".into();
    let r = handle(&deps, request(&ev)).await.unwrap();
    assert_eq!(
        location(&r),
        "https://docs.example.com/guide?step=2#install"
    );
    assert_eq!(deps.recorder.writes(), 0);
    assert_eq!(daily(&t, "alice").await, 0);
}

#[tokio::test]
async fn a_warm_function_reads_nothing_and_disabling_takes_effect_after_the_ttl() {
    let (deps, t, clock) = table_deps().await;
    let reads = || deps.directory.inner().reads();

    handle(&deps, request(&event("click.json"))).await.unwrap();
    assert_eq!(reads(), 2, "link + program on a cold cache");
    let ev = with_ip(at(event("click.json"), T0 + 1000), "198.51.100.77");
    let r = handle(&deps, request(&ev)).await.unwrap();
    assert!(click_param(&r).is_some());
    assert_eq!(reads(), 2, "no DynamoDB read for a cached link");

    // Disable the link; the cache may serve it for at most the TTL.
    let mut l = link("alice", "demo", LinkStatus::Disabled);
    l.partner_id = "partner-alice".into();
    t.put(links::link_item(&l).unwrap()).await.unwrap();
    clock.advance(Duration::from_secs(59));
    let ev = with_ip(at(event("click.json"), T0 + 2000), "198.51.100.78");
    let r = handle(&deps, request(&ev)).await.unwrap();
    assert!(click_param(&r).is_some(), "still cached");
    assert_eq!(reads(), 2);
    clock.advance(Duration::from_secs(1));
    let r = handle(&deps, request(&ev)).await.unwrap();
    assert_eq!(location(&r), FALLBACK, "disabled after the TTL");
    assert_eq!(reads(), 4);

    // Unknown codes are cached briefly too.
    let unknown = event("unknown-code.json");
    handle(&deps, request(&unknown)).await.unwrap();
    handle(&deps, request(&unknown)).await.unwrap();
    assert_eq!(reads(), 5);
    clock.advance(Duration::from_secs(10));
    handle(&deps, request(&unknown)).await.unwrap();
    assert_eq!(reads(), 6);
}

#[tokio::test]
async fn a_link_destination_is_used_only_when_allowed() {
    let (deps, t, _) = table_deps().await;
    for (code, destination) in [
        ("bob", "https://docs.example.com/from-bob"),
        ("mallory", "https://evil.example.net/"),
    ] {
        let mut l = link(code, "demo", LinkStatus::Active);
        l.destination = Some(destination.into());
        t.put(links::link_item(&l).unwrap()).await.unwrap();
    }
    let r = handle(&deps, request(&for_code(event("click.json"), "bob")))
        .await
        .unwrap();
    let id = click_param(&r).unwrap();
    assert_eq!(
        location(&r),
        format!("https://docs.example.com/from-bob?ref_click={id}")
    );
    let r = handle(&deps, request(&for_code(event("click.json"), "mallory")))
        .await
        .unwrap();
    let id = click_param(&r).unwrap();
    assert_eq!(location(&r), format!("{DEFAULT_DEST}?ref_click={id}"));
}

/// The body of a text response.
fn text(r: lambda_http::Response<lambda_http::Body>) -> String {
    match r.into_body() {
        lambda_http::Body::Text(t) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn t_js_carries_the_programs_cookie_days_and_is_cached() {
    let (deps, _t, clock) = table_deps().await;
    let program = storage::programs::get_program(&_t, "demo")
        .await
        .unwrap()
        .expect("demo");
    let r = handle(&deps, request(&event("script.json"))).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(r.headers()[CACHE_CONTROL], "public, max-age=300");
    assert!(
        set_cookies(&r).is_empty(),
        "the script request sets nothing"
    );
    let js = text(r);
    assert!(
        js.contains(&format!("var DAYS = {};", program.cookie_days)),
        "{js}"
    );
    assert!(js.contains("var PARAM = \"ref_click\";"));
    let reads = deps.directory.inner().reads();
    // Within the cache TTL the program is not read again; after it, it is.
    handle(&deps, request(&event("script.json"))).await.unwrap();
    assert_eq!(deps.directory.inner().reads(), reads);
    clock.advance(Duration::from_secs(120));
    handle(&deps, request(&event("script.json"))).await.unwrap();
    assert_eq!(deps.directory.inner().reads(), reads + 1);

    // No program, an unknown one: a script that only warns, not cached.
    let r = handle(
        &deps,
        request(&with_query(event("script.json"), &[("program", "nope")])),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert!(text(r).contains("console.warn"));
    let mut ev = event("script.json");
    ev["rawQueryString"] = "".into();
    ev.as_object_mut().unwrap().remove("queryStringParameters");
    let r = handle(&deps, request(&ev)).await.unwrap();
    assert_eq!(r.status(), 400);
}
