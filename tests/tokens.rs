//! SPEC §2: token issue, rotation with grace, expiry, and every credential errcode.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const V2_OK: &str = r#"{"content":"hello","version":2,"scene":1,"openid":"o_user-1"}"#;

#[tokio::test]
async fn token_endpoint_errcodes() {
    let s = TestServer::start().await;
    let cases = [
        ("/cgi-bin/token?appid=wx0123456789abcdef&secret=x", 40002),
        (
            "/cgi-bin/token?grant_type=password&appid=wx0123456789abcdef&secret=x",
            40002,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&secret=x",
            41002,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&appid=&secret=x",
            41002,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&appid=wx0123456789abcdef",
            41004,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&appid=wx9999999999999999&secret=x",
            40013,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&appid=wx0123456789abcdef&secret=0123456789abcdef0123456789abcdeX",
            40125,
        ),
        // Another app's secret is not this app's.
        (
            "/cgi-bin/token?grant_type=client_credential&appid=wx0123456789abcdef&secret=fedcba9876543210fedcba9876543210",
            40125,
        ),
    ];
    for (path, code) in cases {
        let (status, v) = s.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_err(&v, code);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn token_is_issued_and_works() {
    let s = TestServer::start().await;
    let (status, v) = s
        .get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["expires_in"], 7200);
    let token = v["access_token"].as_str().unwrap();
    assert!(
        token.len() >= 64,
        "token too short to be unguessable: {token}"
    );
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let v = s.check(token, V2_OK).await;
    assert_eq!(v["errcode"], 0, "{v}");
    s.shutdown().await;
}

#[tokio::test]
async fn business_api_token_errcodes() {
    let s = TestServer::start().await;
    let good = s.token().await;
    // 41001: missing or empty.
    let (_, v) = s.post("/wxa/msg_sec_check", V2_OK).await;
    assert_err(&v, 41001);
    let (_, v) = s.post("/wxa/msg_sec_check?access_token=", V2_OK).await;
    assert_err(&v, 41001);
    // 40014: not shaped like a token.
    for bad in ["abc", "%21%21%21", "ACCESS_TOKEN", &"A".repeat(600)] {
        let (_, v) = s
            .post(&format!("/wxa/msg_sec_check?access_token={bad}"), V2_OK)
            .await;
        assert_err(&v, 40014);
    }
    // 40001: well-formed but forged (one character of the tag changed).
    let mut chars: Vec<char> = good.chars().collect();
    chars[70] = if chars[70] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    let (_, v) = s
        .post(&format!("/wxa/msg_sec_check?access_token={forged}"), V2_OK)
        .await;
    assert_err(&v, 40001);
    // Token errors come first: a bad token with a bad body is still a token error.
    let (_, v) = s.post("/wxa/msg_sec_check?access_token=abc", "").await;
    assert_err(&v, 40014);
    s.shutdown().await;
}

#[tokio::test]
async fn superseded_token_works_for_the_grace_period_then_stops() {
    let s = TestServer::start().await;
    let old = s.token().await;
    s.clock.advance(Duration::from_secs(60));
    let new = s.token().await;
    assert_ne!(old, new);
    // Both work inside the 5-minute grace period.
    assert_eq!(s.check(&old, V2_OK).await["errcode"], 0);
    assert_eq!(s.check(&new, V2_OK).await["errcode"], 0);
    s.clock.advance(Duration::from_millis(300_000 - 1));
    assert_eq!(s.check(&old, V2_OK).await["errcode"], 0);
    s.clock.advance(Duration::from_millis(1));
    assert_err(&s.check(&old, V2_OK).await, 40001);
    assert_eq!(s.check(&new, V2_OK).await["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn two_rotations_end_the_grace_of_the_oldest_token_at_once() {
    let s = TestServer::start().await;
    let first = s.token().await;
    let second = s.token().await;
    let third = s.token().await;
    assert_err(&s.check(&first, V2_OK).await, 40001);
    assert_eq!(s.check(&second, V2_OK).await["errcode"], 0);
    assert_eq!(s.check(&third, V2_OK).await["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn token_expires_after_its_lifetime() {
    let s = TestServer::start().await;
    let token = s.token().await;
    s.clock.advance(Duration::from_millis(7_200_000 - 1));
    assert_eq!(s.check(&token, V2_OK).await["errcode"], 0);
    s.clock.advance(Duration::from_millis(1));
    assert_err(&s.check(&token, V2_OK).await, 42001);
    s.shutdown().await;
}

async fn stable_token(s: &TestServer, force: bool) -> serde_json::Value {
    let body = json!({"grant_type":"client_credential","appid":APPID,"secret":SECRET,"force_refresh":force});
    s.post("/cgi-bin/stable_token", body.to_string()).await.1
}

fn token_of(v: &serde_json::Value) -> String {
    v["access_token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn stable_token_keeps_its_token_until_five_minutes_are_left() {
    let s = TestServer::start().await;
    let a = stable_token(&s, false).await;
    let t1 = token_of(&a);
    assert_eq!(a["expires_in"], 7200);
    s.clock.advance(Duration::from_secs(1000));
    let b = stable_token(&s, false).await;
    assert_eq!(token_of(&b), t1);
    assert_eq!(b["expires_in"], 6200);
    // The last second with more than five minutes left still gets the same token.
    s.clock.advance(Duration::from_secs(7200 - 1000 - 301));
    let c = stable_token(&s, false).await;
    assert_eq!(token_of(&c), t1);
    assert_eq!(c["expires_in"], 301);
    // Five minutes left: a new token, and the old one works until its own end.
    s.clock.advance(Duration::from_secs(1));
    let d = stable_token(&s, false).await;
    let t2 = token_of(&d);
    assert_ne!(t2, t1);
    assert_eq!(d["expires_in"], 7200);
    assert_eq!(s.check(&t1, V2_OK).await["errcode"], 0);
    assert_eq!(s.check(&t2, V2_OK).await["errcode"], 0);
    s.clock.advance(Duration::from_secs(300));
    assert_err(&s.check(&t1, V2_OK).await, 42001);
    assert_eq!(s.check(&t2, V2_OK).await["errcode"], 0);
    // Every answer in between left at least five minutes.
    s.clock.advance(Duration::from_secs(7200 - 300 - 300));
    let e = stable_token(&s, false).await;
    assert!(e["expires_in"].as_u64().unwrap() >= 300, "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn stable_token_and_token_never_retire_each_other() {
    let s = TestServer::start().await;
    let stable = token_of(&stable_token(&s, false).await);
    // Three plain tokens: the first two are retired by their successors, the stable one is not.
    let plain: Vec<String> = [s.token().await, s.token().await, s.token().await].into();
    assert_err(&s.check(&plain[0], V2_OK).await, 40001);
    assert_eq!(s.check(&stable, V2_OK).await["errcode"], 0);
    assert_eq!(token_of(&stable_token(&s, false).await), stable);
    // A forced stable refresh retires the stable token at once and leaves the plain one alone.
    s.clock.advance(Duration::from_secs(1));
    let forced = token_of(&stable_token(&s, true).await);
    assert_ne!(forced, stable);
    assert_err(&s.check(&stable, V2_OK).await, 40001);
    assert_eq!(s.check(&forced, V2_OK).await["errcode"], 0);
    assert_eq!(s.check(&plain[2], V2_OK).await["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn forced_stable_refreshes_are_limited() {
    let s = TestServer::start().await;
    let first = token_of(&stable_token(&s, true).await);
    // Within 30 s of the last forced refresh: 45011, and the token is unchanged.
    s.clock.advance(Duration::from_millis(29_999));
    assert_err(&stable_token(&s, true).await, 45011);
    assert_eq!(token_of(&stable_token(&s, false).await), first);
    s.clock.advance(Duration::from_millis(1));
    // Twenty a day in all (the first above counts).
    for _ in 1..20 {
        token_of(&stable_token(&s, true).await);
        s.clock.advance(Duration::from_secs(30));
    }
    let last = token_of(&stable_token(&s, false).await);
    assert_err(&stable_token(&s, true).await, 45009);
    assert_eq!(s.check(&last, V2_OK).await["errcode"], 0);
    // A plain refresh still works, and the next day (Beijing midnight) allows forcing again.
    assert_eq!(token_of(&stable_token(&s, false).await), last);
    s.clock.advance(Duration::from_secs(86_400));
    assert_ne!(token_of(&stable_token(&s, true).await), last);
    s.shutdown().await;
}

#[tokio::test]
async fn stable_token_errcodes() {
    let s = TestServer::start().await;
    let cases = [
        (json!({"appid":APPID,"secret":SECRET}), 40002),
        (
            json!({"grant_type":"client_credential","secret":SECRET}),
            41002,
        ),
        (
            json!({"grant_type":"client_credential","appid":APPID}),
            41004,
        ),
        (
            json!({"grant_type":"client_credential","appid":"wx9999999999999999","secret":SECRET}),
            40013,
        ),
        (
            json!({"grant_type":"client_credential","appid":APPID,"secret":SECRET2}),
            40125,
        ),
        (
            json!({"grant_type":"client_credential","appid":APPID,"secret":SECRET,"force_refresh":"maybe"}),
            47001,
        ),
        (
            json!({"grant_type":"client_credential","appid":12,"secret":SECRET}),
            47001,
        ),
    ];
    for (body, code) in cases {
        let (status, v) = s.post("/cgi-bin/stable_token", body.to_string()).await;
        assert_eq!(status, 200);
        assert_err(&v, code);
    }
    let (_, v) = s.post("/cgi-bin/stable_token", "").await;
    assert_err(&v, 44002);
    let (_, v) = s.post("/cgi-bin/stable_token", "{oops").await;
    assert_err(&v, 47001);
    let (_, v) = s.get("/cgi-bin/stable_token").await;
    assert_err(&v, 43002);
    s.shutdown().await;
}

#[tokio::test]
async fn tokens_verify_on_another_instance_sharing_the_configuration() {
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    let token = a.token().await;
    assert_eq!(b.check(&token, V2_OK).await["errcode"], 0);
    // A token of one app is not accepted once the app's secret changes.
    let changed = default_config().replace(SECRET, "00000000000000000000000000000000");
    let c = TestServer::start_with(&changed).await;
    assert_err(&c.check(&token, V2_OK).await, 40001);
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn tokens_key_setting_changes_every_token() {
    let plain = TestServer::start().await;
    let peppered = TestServer::start_with(&format!(
        "[tokens]\nkey = \"a-long-operator-pepper\"\n{}",
        default_config()
    ))
    .await;
    let token = plain.token().await;
    assert_err(&peppered.check(&token, V2_OK).await, 40001);
    let own = peppered.token().await;
    assert_eq!(peppered.check(&own, V2_OK).await["errcode"], 0);
    plain.shutdown().await;
    peppered.shutdown().await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    use modgate::token::{AppKey, Claims, Lineage, encode};

    let s = TestServer::start().await;
    let key = AppKey::derive(None, APPID, SECRET);
    let minted = |ahead_ms: u64| {
        encode(
            &key,
            &Claims {
                appid: APPID.into(),
                lineage: Lineage::Token,
                issued_ms: T0_MS + ahead_ms,
                ttl_secs: 7200,
            },
        )
    };
    // Within the skew instances may have between them: accepted.
    assert_eq!(s.check(&minted(60_000), V2_OK).await["errcode"], 0);
    // Ten minutes ahead: signed with the app's own key, and still refused.
    assert_err(&s.check(&minted(600_000), V2_OK).await, 40001);
    s.shutdown().await;
}
