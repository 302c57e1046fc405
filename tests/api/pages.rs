//! The pages' server functions as a browser calls them: only from the bridge's own pages, bounded bodies, a session id renewed at sign-in, no secrets kept in the browser session, no session for a made-up code.

use leptos::server_fn::ServerFn;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;
use qr_bridge::ui::{DeskOpen, DeskRefresh, DeskSignOut};

both_stores!(
    only_apps_that_chose_it_have_a_sign_in_page_here,
    a_cross_origin_post_to_a_server_function_is_refused,
    signing_in_renews_the_browser_session_and_keeps_no_token_in_it,
    a_made_up_code_gets_no_browser_session,
    a_request_that_is_over_reads_gone_on_the_phone,
);

/// Signs the desktop in `browser` in: its code, approved by a phone through the API.
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> Value {
    let (status, desk) = app
        .server_fn::<DeskOpen>(browser, Some(BRIDGE_ORIGIN), &[("app_id", "shop")])
        .await;
    assert_eq!(status, StatusCode::OK, "{desk}");
    let desk: Value = serde_json::from_str(&desk).unwrap();
    let url = desk["Waiting"]["qr_url"].as_str().unwrap();
    let id = url.rsplit('/').next().unwrap().to_owned();
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let options = app.options(&id).await;
    let got = app.verify(&id, &phone.sign(BRIDGE_ORIGIN, &options)).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    let (status, desk) = app
        .server_fn::<DeskRefresh>(browser, Some(BRIDGE_ORIGIN), &[("app_id", "shop")])
        .await;
    assert_eq!(status, StatusCode::OK, "{desk}");
    serde_json::from_str(&desk).unwrap()
}

async fn only_apps_that_chose_it_have_a_sign_in_page_here(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = |path: &'static str| app.request(Method::GET, path).send();
    let shop = page("/login/shop").await.unwrap();
    assert_eq!(shop.status(), StatusCode::OK);
    assert!(shop.text().await.unwrap().contains("Shop"));
    // "own" did not ask for a hosted page: its name and a live code are not anyone's to draw.
    let calls = app.store_calls();
    let own = page("/login/own").await.unwrap();
    assert_eq!(own.status(), StatusCode::NOT_FOUND);
    assert!(!own.text().await.unwrap().contains("Own Page"));
    assert_eq!(app.store_calls(), calls, "no session was started for it");
    assert_eq!(
        page("/login/nobody").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn a_cross_origin_post_to_a_server_function_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let victim = Client::browser();
    let desk = signed_in(&app, &victim).await;
    assert!(desk.get("SignedIn").is_some(), "{desk}");

    // A form on another origin (a sibling subdomain's, whose requests carry the Lax cookie).
    let forged = app
        .server_fn::<DeskSignOut>(
            &victim,
            Some("https://evil.bridge.test"),
            &[("app_id", "shop")],
        )
        .await;
    assert_eq!(forged.0, StatusCode::FORBIDDEN, "{}", forged.1);
    let no_origin = victim
        .post(format!("{}{}", app.base, DeskSignOut::PATH))
        .header("Sec-Fetch-Site", "same-site")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("app_id=shop")
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    let (_, still) = app
        .server_fn::<DeskRefresh>(&victim, Some(BRIDGE_ORIGIN), &[("app_id", "shop")])
        .await;
    assert!(
        still.contains("SignedIn"),
        "the desktop is still signed in: {still}"
    );

    // The browser's own verdict counts, whatever name the page was opened under.
    let by_address = victim
        .post(format!("{}{}", app.base, DeskRefresh::PATH))
        .header("Origin", app.base.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("app_id=shop")
        .send()
        .await
        .unwrap();
    assert_eq!(by_address.status(), StatusCode::OK);

    // Its own page may, and an oversized body is a 413, not a failure inside the function.
    let own = app
        .server_fn::<DeskSignOut>(&victim, Some(BRIDGE_ORIGIN), &[("app_id", "shop")])
        .await;
    assert_eq!(own.0, StatusCode::OK, "{}", own.1);
    let padding = "x".repeat(70 * 1024);
    let too_big = app
        .server_fn::<DeskRefresh>(
            &victim,
            Some(BRIDGE_ORIGIN),
            &[("app_id", "shop"), ("padding", &padding)],
        )
        .await;
    assert_eq!(too_big.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", too_big.1);
}

fn session_cookie(browser_jar: &reqwest::cookie::Jar, base: &str) -> String {
    use reqwest::cookie::CookieStore;
    let cookies = browser_jar
        .cookies(&base.parse().unwrap())
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    cookies
        .split("; ")
        .find_map(|c| c.strip_prefix("qrb="))
        .unwrap_or_default()
        .to_owned()
}

async fn signing_in_renews_the_browser_session_and_keeps_no_token_in_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let victim = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let (status, _) = app
        .server_fn::<DeskOpen>(&victim, Some(BRIDGE_ORIGIN), &[("app_id", "shop")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = session_cookie(&jar, &app.base);
    assert!(!before.is_empty(), "the desktop has a browser session");
    let desk = signed_in(&app, &victim).await;
    let after = session_cookie(&jar, &app.base);
    assert!(
        !after.is_empty() && after != before,
        "a new session id at sign-in"
    );
    assert!(
        desk["SignedIn"]["token_preview"]
            .as_str()
            .unwrap()
            .ends_with('…')
    );

    // The old id (someone who saw it before sign-in) is nobody now.
    let stale = reqwest::Client::new()
        .post(format!("{}{}", app.base, DeskRefresh::PATH))
        .header("Origin", BRIDGE_ORIGIN)
        .header("Cookie", format!("qrb={before}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("app_id=shop")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!stale.contains("SignedIn"), "{stale}");

    if backend == Backend::Redis {
        // What the browser session keeps: no session token, no polling token.
        let client = redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:web:*", app.settings.redis_prefix))
            .query(&mut conn)
            .unwrap();
        assert!(!keys.is_empty());
        for key in keys {
            let value: String = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
            // A whole JWT has a claims part after its header: `….eyJ…`; the preview has not.
            assert!(!value.contains(".eyJ"), "a token in {key}: {value}");
            assert!(!value.contains("pt_"), "a polling token in {key}: {value}");
        }
    }
}

async fn a_made_up_code_gets_no_browser_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        format!("/bridge/{}", uuid::Uuid::new_v4()),
        format!("/mobile-auth?session_id={}", uuid::Uuid::new_v4()),
    ] {
        let res = app.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            res.headers().get("set-cookie").is_none(),
            "{path}: no browser session for a code that does not exist"
        );
    }
    let s = app.init().await;
    let res = app
        .request(Method::GET, &format!("/bridge/{}", s.session_id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers().get("set-cookie").is_some(),
        "a real code is claimed"
    );
}

/// The approval page's own status for a request that is over: 410 Gone with what happened, not
/// the API's 409 "not in that state" (both come from one table, `problem`).
async fn a_request_that_is_over_reads_gone_on_the_phone(backend: Backend) {
    let app = TestApp::spawn_with(backend, "1s").await;
    let page = async |id: &str| {
        let res = app
            .request(Method::GET, &format!("/bridge/{id}"))
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    };

    let cancelled = app.init().await;
    app.cancel(&cancelled.session_id, &cancelled.polling_token)
        .await;
    let (status, body) = page(&cancelled.session_id).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(body.contains("Cancelled on the computer"), "{body}");

    let expired = app.init().await;
    app.pass(std::time::Duration::from_millis(1100)).await;
    let (status, body) = page(&expired.session_id).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(body.contains("This code has expired"), "{body}");
}
