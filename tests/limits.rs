//! SPEC §3 (check order) and §5: rate limits, daily quotas, quota query and reset, visits.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Limits on, small enough to reach in a test: 5/min and 8/day for text; app 2 overrides.
fn config() -> String {
    default_config().replace(
        "[limits]\nenforce = false\n",
        "[limits]\ntext_per_minute = 5\ntext_per_day = 8\n",
    ) + "text_per_minute = 50\ntext_per_day = 1000\n"
}

fn body(openid: &str) -> String {
    json!({"content":"你好","version":2,"scene":2,"openid":openid}).to_string()
}

async fn visit(s: &TestServer, token: &str, body: Value) -> Value {
    let (status, v) = s
        .post(
            &format!("/wxa/visit/report?access_token={token}"),
            body.to_string(),
        )
        .await;
    assert_eq!(status, 200);
    v
}

async fn quota(s: &TestServer, token: &str) -> Value {
    let (_, v) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={token}"),
            r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
        )
        .await;
    v
}

#[tokio::test]
async fn checks_run_in_order_and_early_refusals_consume_no_quota() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    // Token and validation failures: nothing counted.
    assert_err(&s.check("bad-token", &body("u1")).await, 40014);
    assert_err(
        &s.check(&t, r#"{"version":2,"scene":2,"openid":"u1"}"#)
            .await,
        47001,
    );
    assert_err(
        &s.check(
            &t,
            &json!({"content":"x","version":2,"scene":9,"openid":"u1"}).to_string(),
        )
        .await,
        40129,
    );
    assert_eq!(quota(&s, &t).await["quota"]["used"], 0);
    // No visit yet: 61010, and (step 5 comes after the quota) the call was counted.
    assert_err(&s.check(&t, &body("u1")).await, 61010);
    assert_eq!(quota(&s, &t).await["quota"]["used"], 1);
    visit(&s, &t, json!({"openid":"u1"})).await;
    for _ in 0..4 {
        assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    }
    // The minute's five calls are spent: 44991, with Retry-After, and no quota taken.
    let resp = s
        .client
        .post(s.url(&format!("/wxa/msg_sec_check?access_token={t}")))
        .body(body("u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "12");
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_err(&v, 44991);
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("reach max api minute frequence")
    );
    assert_eq!(quota(&s, &t).await["quota"]["used"], 5);
    s.shutdown().await;
}

#[tokio::test]
async fn the_minute_refills_one_call_per_interval() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    visit(&s, &t, json!({"openid":"u1"})).await;
    for _ in 0..5 {
        assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    }
    assert_err(&s.check(&t, &body("u1")).await, 44991);
    s.clock.advance(Duration::from_millis(11_999));
    assert_err(&s.check(&t, &body("u1")).await, 44991);
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    assert_err(&s.check(&t, &body("u1")).await, 44991);
    s.shutdown().await;
}

#[tokio::test]
async fn daily_quota_and_the_utc8_day_boundary() {
    let s = TestServer::start_with(
        &config().replace("text_per_minute = 5\n", "text_per_minute = 1000\n"),
    )
    .await;
    // 2024-11-28 23:59:50 UTC+8
    s.clock.set_ms(1_732_809_590_000);
    let t = s.token().await;
    visit(&s, &t, json!({"openid":"u1"})).await;
    for _ in 0..8 {
        assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    }
    let v = s.check(&t, &body("u1")).await;
    assert_err(&v, 45009);
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("reach max api daily quota limit")
    );
    let q = quota(&s, &t).await;
    assert_eq!(q["quota"], json!({"daily_limit":8,"used":8,"remain":0}));
    assert_eq!(
        q["rate_limit"],
        json!({"call_count":1000,"refresh_second":60})
    );
    s.clock.set_ms(1_732_809_599_999); // 23:59:59.999
    assert_err(&s.check(&t, &body("u1")).await, 45009);
    // 00:00:00 UTC+8 (16:00:00 UTC): a new day.
    s.clock.set_ms(1_732_809_600_000);
    assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    assert_eq!(quota(&s, &t).await["quota"]["used"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn exact_quota_under_concurrency() {
    let cfg = default_config().replace(
        "[limits]\nenforce = false\n",
        "[limits]\ntext_per_minute = 100000\ntext_per_day = 1000\n",
    );
    let s = std::sync::Arc::new(TestServer::start_with(&cfg).await);
    let t = s.token().await;
    visit(&s, &t, json!({"openid":"u1"})).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (s, t) = (std::sync::Arc::clone(&s), t.clone());
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..50 {
                codes.push(s.check(&t, &body("u1")).await["errcode"].as_i64().unwrap());
            }
            codes
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        codes.extend(task.await.unwrap());
    }
    assert_eq!(codes.len(), 1500);
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1000);
    assert_eq!(codes.iter().filter(|c| **c == 45009).count(), 500);
    assert_eq!(quota(&s, &t).await["quota"]["used"], 1000);
}

#[tokio::test]
async fn visits_keep_a_user_fresh_for_120_minutes() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    assert_err(&s.check(&t, &body("never-seen")).await, 61010);
    let v = visit(&s, &t, json!({"openid":"u1"})).await;
    assert_eq!(
        v,
        json!({"errcode":0,"errmsg":"ok","recorded":1,"failed":[]})
    );
    s.clock.advance(Duration::from_secs(119 * 60 + 59));
    let t = s.token().await; // the first token has nearly run out too
    assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    s.clock.advance(Duration::from_secs(1));
    let v = s.check(&t, &body("u1")).await;
    assert_err(&v, 61010);
    assert!(v["errmsg"].as_str().unwrap().starts_with("code is expired"));
    // A new visit makes the user fresh again; visits are per app.
    visit(&s, &t, json!({"openids":["u1"]})).await;
    assert_eq!(s.check(&t, &body("u1")).await["errcode"], 0);
    let t2 = s.token_for(APPID2, SECRET2).await;
    assert_err(&s.check(&t2, &body("u1")).await, 61010);
    s.shutdown().await;
}

#[tokio::test]
async fn visit_report_batches_and_errors() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    let v = visit(
        &s,
        &t,
        json!({"openids":["a1","bad id!",7,"","b2","x".repeat(129)]}),
    )
    .await;
    assert_eq!(v["recorded"], 2);
    let failed: Vec<(i64, i64)> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["index"].as_i64().unwrap(), f["errcode"].as_i64().unwrap()))
        .collect();
    assert_eq!(failed, [(1, 40003), (2, 40003), (3, 40003), (5, 40003)]);
    assert_eq!(s.check(&t, &body("b2")).await["errcode"], 0);
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    for (b, code) in [
        (json!({"openids": many}), 47001),
        (json!({"openids": "u1"}), 47001),
        (json!({"openid": 5}), 47001),
        (json!({}), 47001),
        (json!({"openids": []}), 47001),
    ] {
        assert_err(&visit(&s, &t, b).await, code);
    }
    let (_, v) = s
        .post(&format!("/wxa/visit/report?access_token={t}"), "")
        .await;
    assert_err(&v, 44002);
    let (_, v) = s.post("/wxa/visit/report", r#"{"openid":"u1"}"#).await;
    assert_err(&v, 41001);
    let thousand: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    assert_eq!(
        visit(&s, &t, json!({"openids": thousand})).await["recorded"],
        1000
    );
    s.shutdown().await;
}

#[tokio::test]
async fn quota_get_errors_and_per_app_overrides() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    let (_, v) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t}"),
            r#"{"cgi_path":"/wxa/nope"}"#,
        )
        .await;
    assert_err(&v, 76021);
    let (_, v) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t}"),
            "{}",
        )
        .await;
    assert_err(&v, 47001);
    let (_, v) = s
        .post(
            "/cgi-bin/openapi/quota/get",
            r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
        )
        .await;
    assert_err(&v, 41001);
    let (_, v) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t}"),
            r#"{"cgi_path":"/wxa/media_check_async"}"#,
        )
        .await;
    assert_eq!(
        v["quota"],
        json!({"daily_limit":200000,"used":0,"remain":200000})
    );
    assert_eq!(v["rate_limit"]["call_count"], 2000);
    // App 2's overrides.
    let t2 = s.token_for(APPID2, SECRET2).await;
    let v = quota(&s, &t2).await;
    assert_eq!(v["quota"]["daily_limit"], 1000);
    assert_eq!(v["rate_limit"]["call_count"], 50);
    s.shutdown().await;
}

#[tokio::test]
async fn clear_quota_resets_ten_times_a_month() {
    let s = TestServer::start_with(&config()).await;
    // 2024-11-30 12:00:00 UTC+8
    s.clock.set_ms(1_732_939_200_000);
    let t = s.token().await;
    visit(&s, &t, json!({"openid":"u1"})).await;
    for _ in 0..3 {
        s.check(&t, &body("u1")).await;
    }
    assert_eq!(quota(&s, &t).await["quota"]["used"], 3);
    let clear = |appid: &str| json!({"appid": appid}).to_string();
    let (_, v) = s
        .post(
            &format!("/cgi-bin/clear_quota?access_token={t}"),
            clear(APPID),
        )
        .await;
    assert_eq!(v, json!({"errcode":0,"errmsg":"ok"}));
    assert_eq!(quota(&s, &t).await["quota"]["used"], 0);
    // Another app's appid, or none: refused without using the allowance.
    let (_, v) = s
        .post(
            &format!("/cgi-bin/clear_quota?access_token={t}"),
            clear(APPID2),
        )
        .await;
    assert_err(&v, 40013);
    let (_, v) = s
        .post(&format!("/cgi-bin/clear_quota?access_token={t}"), "{}")
        .await;
    assert_err(&v, 41002);
    for _ in 0..9 {
        let (_, v) = s
            .post(
                &format!("/cgi-bin/clear_quota?access_token={t}"),
                clear(APPID),
            )
            .await;
        assert_eq!(v["errcode"], 0);
    }
    let (_, v) = s
        .post(
            &format!("/cgi-bin/clear_quota?access_token={t}"),
            clear(APPID),
        )
        .await;
    assert_err(&v, 48006);
    // v2 shares the allowance.
    let (_, v) = s
        .post(
            &format!("/cgi-bin/clear_quota/v2?appid={APPID}&appsecret={SECRET}"),
            "",
        )
        .await;
    assert_err(&v, 48006);
    // 2024-12-01 00:00:00 UTC+8: a new month, a new allowance.
    s.clock.set_ms(1_732_982_400_000);
    let (_, v) = s
        .post(
            &format!("/cgi-bin/clear_quota/v2?appid={APPID}&appsecret={SECRET}"),
            "",
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    s.shutdown().await;
}

#[tokio::test]
async fn clear_quota_v2_credentials() {
    let s = TestServer::start_with(&config()).await;
    let body_creds = json!({"appid": APPID2, "appsecret": SECRET2}).to_string();
    let (_, v) = s.post("/cgi-bin/clear_quota/v2", body_creds).await;
    assert_eq!(v["errcode"], 0, "{v}");
    for (path, code) in [
        (format!("/cgi-bin/clear_quota/v2?appsecret={SECRET}"), 41002),
        (format!("/cgi-bin/clear_quota/v2?appid={APPID}"), 41004),
        (
            format!("/cgi-bin/clear_quota/v2?appid=wx9999999999999999&appsecret={SECRET}"),
            40013,
        ),
        (
            format!("/cgi-bin/clear_quota/v2?appid={APPID}&appsecret={SECRET2}"),
            40125,
        ),
    ] {
        let (_, v) = s.post(&path, "").await;
        assert_err(&v, code);
    }
    let (_, v) = s
        .get(&format!(
            "/cgi-bin/clear_quota/v2?appid={APPID}&appsecret={SECRET}"
        ))
        .await;
    assert_err(&v, 43002);
    s.shutdown().await;
}

#[tokio::test]
async fn v1_counts_quota_without_a_visit_check() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    assert_eq!(s.check(&t, r#"{"content":"你好"}"#).await["errcode"], 0);
    assert_eq!(quota(&s, &t).await["quota"]["used"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn refusal_metrics() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    s.check(&t, &body("nobody")).await;
    visit(&s, &t, json!({"openids":["u1","u2"]})).await;
    for _ in 0..6 {
        s.check(&t, &body("u1")).await;
    }
    let text = s.metrics_text().await;
    for line in [
        r#"modgate_limit_refusals_total{api="msg_sec_check",reason="visit"} 1"#,
        r#"modgate_limit_refusals_total{api="msg_sec_check",reason="rate"} 2"#,
        r#"modgate_quota_admitted_total{api="msg_sec_check"} 5"#,
        "modgate_visit_entries 2",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_full_visit_store_refuses_new_users_but_refreshes_known_ones() {
    let s = TestServer::start_with(&config().replace(
        "text_per_day = 8\n",
        "text_per_day = 8\nmax_visits = 2\nmax_visits_per_app = 2\n",
    ))
    .await;
    let t = s.token().await;
    let v = visit(&s, &t, json!({"openids":["u1","u2","u3"]})).await;
    assert_eq!(v["recorded"], 2);
    assert_eq!(v["failed"][0]["index"], 2);
    assert_eq!(v["failed"][0]["errcode"], -1);
    assert!(v["failed"][0]["errmsg"].as_str().unwrap().contains("full"));
    assert_eq!(visit(&s, &t, json!({"openid":"u1"})).await["recorded"], 1);
    s.shutdown().await;
}

/// One app reporting new users without end fills only its own share of the visit store: past
/// its cap new users are refused by name of the cap (known ones still refresh), and another
/// app's users are recorded and fresh.
#[tokio::test]
async fn one_app_cannot_fill_the_visit_store_for_the_others() {
    let s = TestServer::start_with(&config().replace(
        "text_per_day = 8\n",
        "text_per_day = 8\nmax_visits = 100\nmax_visits_per_app = 3\n",
    ))
    .await;
    let t = s.token().await;
    let v = visit(&s, &t, json!({"openids":["a1","a2","a3","a4","a5"]})).await;
    assert_eq!(v["recorded"], 3, "{v}");
    for (i, failure) in v["failed"].as_array().unwrap().iter().enumerate() {
        assert_eq!(failure["index"], 3 + i, "{v}");
        assert_eq!(failure["errcode"], -1, "{v}");
        let errmsg = failure["errmsg"].as_str().unwrap();
        assert!(
            errmsg.contains("holds 3 users") && errmsg.contains("limits.max_visits_per_app"),
            "{errmsg}"
        );
    }
    assert_eq!(visit(&s, &t, json!({"openid":"a1"})).await["recorded"], 1);
    assert_err(&s.check(&t, &body("a4")).await, 61010);
    let t2 = s.token_for(APPID2, SECRET2).await;
    let v = visit(&s, &t2, json!({"openids":["b1","b2","b3"]})).await;
    assert_eq!(v["recorded"], 3, "{v}");
    assert_eq!(s.check(&t2, &body("b3")).await["errcode"], 0);
    s.shutdown().await;
}

/// Visit reports and getUserRiskRank have rate limits and quotas of their own (44991, 45009),
/// reported by quota/get.
#[tokio::test]
async fn visit_reports_and_risk_ranks_are_metered() {
    let s = TestServer::start_with(&config().replace(
        "text_per_day = 8\n",
        "text_per_day = 8\nvisit_report_per_minute = 2\nrisk_rank_per_minute = 50\n\
         risk_rank_per_day = 3\n",
    ))
    .await;
    let t = s.token().await;
    for _ in 0..2 {
        assert_eq!(visit(&s, &t, json!({"openid":"u1"})).await["errcode"], 0);
    }
    let v = visit(&s, &t, json!({"openid":"u1"})).await;
    assert_err(&v, 44991);
    let rank = async || {
        let body = json!({"appid": APPID, "openid": "u1", "scene": 0, "client_ip": "10.0.0.1"});
        s.post(
            &format!("/wxa/getuserriskrank?access_token={t}"),
            body.to_string(),
        )
        .await
        .1
    };
    for _ in 0..3 {
        assert_eq!(rank().await["errcode"], 0);
    }
    assert_err(&rank().await, 45009);
    let (_, v) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t}"),
            r#"{"cgi_path":"/wxa/getuserriskrank"}"#,
        )
        .await;
    assert_eq!(v["quota"]["used"], 3, "{v}");
    assert_eq!(v["quota"]["daily_limit"], 3, "{v}");
    s.shutdown().await;
}

/// getUserRiskRank's fields are bounded: a long `mobile_no`, `email_address` or
/// `extended_info` is 47001, a body past 16 KiB is refused before it is read (413), and none of
/// it is kept.
#[tokio::test]
async fn risk_rank_fields_are_bounded() {
    let s = TestServer::start_with(&config()).await;
    let t = s.token().await;
    visit(&s, &t, json!({"openid":"u1"})).await;
    let path = format!("/wxa/getuserriskrank?access_token={t}");
    let with = |field: &str, value: String| {
        let mut body = json!({"appid": APPID, "openid": "u1", "scene": 0, "client_ip": "10.0.0.1"});
        body[field] = json!(value);
        body.to_string()
    };
    for (field, max) in [
        ("mobile_no", 32),
        ("email_address", 254),
        ("extended_info", 1024),
    ] {
        let (_, v) = s.post(&path, with(field, "1".repeat(max))).await;
        assert_eq!(v["errcode"], 0, "{field} at its bound: {v}");
        let (_, v) = s.post(&path, with(field, "1".repeat(max + 1))).await;
        assert_err(&v, 47001);
        let errmsg = v["errmsg"].as_str().unwrap();
        assert!(
            errmsg.contains(&format!("`{field}` is longer than {max} characters")),
            "{errmsg}"
        );
    }
    let (status, v) = s.post(&path, with("mobile_no", "1".repeat(1 << 20))).await;
    assert_eq!(status, 413, "{v}");
    s.shutdown().await;
}

/// getUserRiskRank of the second app for a user it never saw.
async fn stranger_rank(s: &TestServer, token: &str) -> Value {
    let body = json!({"appid": APPID2, "openid": "stranger9", "scene": 2, "client_ip": "10.0.0.1"});
    s.post(
        &format!("/wxa/getuserriskrank?access_token={token}"),
        body.to_string(),
    )
    .await
    .1
}

/// Replaces the second app through the admin API; the status and the body.
async fn put_app2(s: &TestServer, app: Value) -> (u16, Value) {
    let path = format!("/admin/apps/{APPID2}");
    let (status, v, _) = admin(
        s,
        reqwest::Method::PUT,
        &path,
        Some(("application/json", app.to_string())),
    )
    .await;
    (status, v)
}

/// `visit_check = "off"` (SPEC §12) drops the visit rule and nothing else: rate limits and quotas
/// still apply. The app's own setting beats `limits.visit_check`, and changes through the admin
/// API; getUserRiskRank follows it too.
#[tokio::test]
async fn visit_check_off_drops_the_visit_rule_and_nothing_else() {
    let config = default_config()
        .replace(
            "[limits]\nenforce = false\n",
            "[limits]\ntext_per_minute = 3\ntext_per_day = 1000\nvisit_check = \"off\"\n",
        )
        .replacen(
            &format!("secret = \"{SECRET}\"\n"),
            &format!("secret = \"{SECRET}\"\nvisit_check = \"report\"\n"),
            1,
        );
    let s = TestServer::start_with(&config).await;
    // The first app keeps the rule by its own setting.
    let t = s.token().await;
    assert_err(&s.check(&t, &body("never-seen")).await, 61010);
    // The second app inherits "off": users never seen pass, until the rate limit.
    let t2 = s.token_for(APPID2, SECRET2).await;
    for n in 0..3 {
        let v = s.check(&t2, &body(&format!("stranger{n}"))).await;
        assert_eq!(v["errcode"], 0, "{v}");
    }
    assert_err(&s.check(&t2, &body("stranger3")).await, 44991);
    let (_, q) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t2}"),
            r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
        )
        .await;
    assert_eq!(q["quota"]["used"], 3, "{q}");
    // getUserRiskRank asks for no visit either.
    let v = stranger_rank(&s, &t2).await;
    assert_eq!(v["errcode"], 0, "{v}");

    // The admin API turns the rule on for the second app, and shows the setting.
    let app = json!({"appid": APPID2, "secret": SECRET2, "visit_check": "report"});
    let (status, shown) = put_app2(&s, app).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["visit_check"], "report");
    s.clock.advance(Duration::from_secs(60));
    assert_err(&s.check(&t2, &body("stranger4")).await, 61010);
    let v = stranger_rank(&s, &t2).await;
    assert_eq!(v["errcode"], 61010, "{v}");
    // A value that is neither word is refused, naming the key.
    let bad = json!({"appid": APPID2, "secret": SECRET2, "visit_check": "sometimes"});
    let (status, v) = put_app2(&s, bad).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["key"], "app.visit_check", "{v}");
    s.shutdown().await;
}
