//! SPEC §8: several gateway instances sharing one Redis. Three real gateways (each its own
//! listeners, embedded store and clock) on one key prefix of the Redis on 127.0.0.1:6379, and a
//! `redis-server` of the test's own for the outage test.
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const REDIS: &str = "redis://127.0.0.1:6379/0";

/// A key prefix no other test or run shares.
fn fresh_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("modgate-it-{name}-{}-{nanos}", std::process::id())
}

/// Limits on; the first app's rate high enough not to matter, the second app's daily quota 1000.
/// Each call names a fresh embedded store (an instance's own media jobs).
fn config(redis_url: &str, prefix: &str) -> String {
    let data_dir = fresh_dir("data");
    format!(
        r#"
[limits]
text_per_minute = 100000
[state]
backend = "redis"
redis_url = "{redis_url}"
redis_prefix = "{prefix}"
data_dir = "{}"
[admin]
token = "test-admin-token"
[media]
allow_networks = ["127.0.0.0/8"]
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
[[apps]]
appid = "{APPID2}"
secret = "{SECRET2}"
text_per_minute = 100000
text_per_day = 1000
"#,
        data_dir.display()
    )
}

fn body(content: &str, openid: &str) -> String {
    json!({"content": content, "version": 2, "scene": 2, "openid": openid}).to_string()
}

async fn visit(s: &TestServer, token: &str, openid: &str) {
    let (status, v) = s
        .post(
            &format!("/wxa/visit/report?access_token={token}"),
            json!({ "openid": openid }).to_string(),
        )
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
}

/// An admin API call with the test's admin token; `body` is JSON (none when empty).
async fn admin(gw: &TestServer, method: Method, path: &str, body: &str) -> (u16, Value) {
    let mut request = gw
        .client
        .request(method, gw.admin_url(path))
        .bearer_auth("test-admin-token");
    if !body.is_empty() {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asks `probe` every 5 ms until it says yes; past `deadline` the test fails with what the
/// probe last saw.
async fn until(deadline: Instant, mut probe: impl AsyncFnMut() -> Result<(), Value>) {
    loop {
        match probe().await {
            Ok(()) => return,
            Err(seen) => assert!(Instant::now() < deadline, "not in time; last seen: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn metric(s: &TestServer, name: &str) -> f64 {
    s.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_tokens_apps_tables_banks_risk_lists_and_an_exact_quota() {
    let prefix = fresh_prefix("three");
    let gws = [
        TestServer::start_with(&config(REDIS, &prefix)).await,
        TestServer::start_with(&config(REDIS, &prefix)).await,
        TestServer::start_with(&config(REDIS, &prefix)).await,
    ];

    // A token issued by one instance is accepted by the others; a visit reported to one makes
    // the user fresh on all.
    let token = gws[0].token().await;
    visit(&gws[1], &token, "u1").await;
    for gw in &gws {
        let v = gw.check(&token, &body("你好", "u1")).await;
        assert_eq!(v["errcode"], 0, "{v}");
        assert_eq!(v["result"]["suggest"], "pass", "{v}");
    }

    // A table change made on one is in force on all, within a second.
    let started = Instant::now();
    let entry = r#"[{"keyword":"紫水晶","label":20001,"level":90,"suggest":"risky"}]"#;
    let keywords = format!("/admin/apps/{APPID}/keywords");
    assert_eq!(admin(&gws[0], Method::PUT, &keywords, entry).await.0, 200);
    for gw in &gws {
        until(started + Duration::from_secs(1), async || {
            let v = gw.check(&token, &body("出售紫水晶", "u1")).await;
            (v["result"]["suggest"] == "risky").then_some(()).ok_or(v)
        })
        .await;
    }

    // An entry added on another instance builds on the change it has received: both survive.
    let entry = r#"[{"keyword":"蓝宝石","label":20001,"level":90,"suggest":"risky"}]"#;
    assert_eq!(admin(&gws[1], Method::POST, &keywords, entry).await.0, 200);
    for gw in &gws {
        until(Instant::now() + Duration::from_secs(1), async || {
            let (_, v) = admin(gw, Method::GET, &keywords, "").await;
            let mut words: Vec<&str> = v
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["keyword"].as_str()).collect())
                .unwrap_or_default();
            words.sort();
            (words == ["紫水晶", "蓝宝石"])
                .then_some(())
                .ok_or(v.clone())
        })
        .await;
    }

    // So does a hash bank change.
    let hash = "ab".repeat(32);
    let bank = json!([{"hash": hash, "kind": "image", "label": 20002, "suggest": "risky"}]);
    let put = admin(
        &gws[2],
        Method::PUT,
        "/admin/banks/global",
        &bank.to_string(),
    )
    .await;
    assert_eq!(put.0, 200);
    for gw in &gws {
        until(Instant::now() + Duration::from_secs(1), async || {
            let (_, v) = admin(gw, Method::GET, "/admin/banks/global", "").await;
            (v[0]["hash"] == hash.as_str()).then_some(()).ok_or(v)
        })
        .await;
    }

    // And a risk list entry: every instance answers the operator's rank for the listed user.
    let lists = format!("/admin/apps/{APPID}/risk-lists");
    let entry = json!({"list": "black", "type": "openid", "value": "u1", "rank": 3});
    assert_eq!(
        admin(&gws[2], Method::POST, &lists, &entry.to_string())
            .await
            .0,
        200
    );
    for gw in &gws {
        until(Instant::now() + Duration::from_secs(1), async || {
            let (_, v) = gw
                .post(
                    &format!("/wxa/getuserriskrank?access_token={token}"),
                    json!({"appid": APPID, "openid": "u1", "scene": 2, "client_ip": "10.0.0.1"})
                        .to_string(),
                )
                .await;
            (v["risk_rank"] == 3).then_some(()).ok_or(v)
        })
        .await;
    }

    // An app created through one instance's admin API is served by the others.
    const NEW_APP: &str = "wx1111111111111111";
    const NEW_SECRET: &str = "11111111111111111111111111111111";
    let app = json!({ "secret": NEW_SECRET }).to_string();
    let put = admin(
        &gws[1],
        Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        &app,
    )
    .await;
    assert_eq!(put.0, 201);
    for gw in &gws {
        until(Instant::now() + Duration::from_secs(1), async || {
            let (status, v) = gw
                .get(&format!(
                    "/cgi-bin/token?grant_type=client_credential&appid={NEW_APP}&secret={NEW_SECRET}"
                ))
                .await;
            (status == 200 && v["access_token"].is_string())
                .then_some(())
                .ok_or(v)
        })
        .await;
    }

    // A new token issued on another instance: the old one stays valid for the grace period
    // everywhere, then is refused everywhere (the rotation reached every instance).
    let newer = gws[1].token().await;
    assert_ne!(newer, token);
    for gw in &gws {
        assert_eq!(gw.check(&token, &body("你好", "u1")).await["errcode"], 0);
        gw.clock.advance(Duration::from_secs(301));
    }
    for gw in &gws {
        assert_err(&gw.check(&token, &body("你好", "u1")).await, 40001);
        assert_eq!(gw.check(&newer, &body("你好", "u1")).await["errcode"], 0);
    }

    // The second app's daily quota of 1000, hit by 1500 concurrent checks spread over the three
    // instances: exactly 1000 admitted.
    let token2 = gws[2].token_for(APPID2, SECRET2).await;
    visit(&gws[0], &token2, "u2").await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1500 {
        let gw = &gws[i % 3];
        let request = gw
            .client
            .post(gw.url(&format!("/wxa/msg_sec_check?access_token={token2}")))
            .body(body("你好", "u2"));
        calls.spawn(async move {
            let bytes = request.send().await.unwrap().bytes().await.unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            v["errcode"].as_i64().unwrap()
        });
    }
    let (mut admitted, mut refused) = (0, 0);
    while let Some(code) = calls.join_next().await {
        match code.unwrap() {
            0 => admitted += 1,
            45009 => refused += 1,
            other => panic!("unexpected errcode {other}"),
        }
    }
    assert_eq!((admitted, refused), (1000, 500));
    // Every instance reports the same count.
    for gw in &gws {
        let (_, v) = gw
            .post(
                &format!("/cgi-bin/openapi/quota/get?access_token={token2}"),
                r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
            )
            .await;
        assert_eq!(v["quota"]["used"], 1000, "{v}");
    }
    for gw in gws {
        gw.shutdown().await;
    }
}

/// A `redis-server` of this test's own, on a spare port, without persistence.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    fn start_on(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { port, child }
    }

    /// On a free port below the kernel's ephemeral range, so that while this server is down no
    /// outgoing connection's source port nor a parallel test's `:0` listener can take the port
    /// it comes back on.
    fn start() -> OwnRedis {
        Self::start_on(free_port())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redis goes away: text checks are still answered (under the instance's own rate limiter, the
/// metrics saying so), media submissions get -1 and no trace_id, and when Redis is back the
/// gateway uses it again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_text_checks_fall_back_and_everything_recovers() {
    let mut redis = OwnRedis::start();
    let gw = TestServer::start_with(&config(&redis.url(), "outage")).await;
    // A second instance, to see changes reach it after the outage.
    let other = TestServer::start_with(&config(&redis.url(), "outage")).await;
    let token = gw.token().await;
    visit(&gw, &token, "u1").await;
    assert_eq!(gw.check(&token, &body("你好", "u1")).await["errcode"], 0);
    assert_eq!(metric(&gw, "modgate_state_backend_up").await, 1.0);

    redis.kill();
    // The idle instance notices within its ping period.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&other, "modgate_state_backend_up").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the idle instance never noticed the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = gw.check(&token, &body("你好", "u1")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["result"]["suggest"], "pass");
    // The verdict is still the engine's.
    let v = gw.check(&token, &body("出售冰毒", "u1")).await;
    assert_eq!(v["result"]["suggest"], "risky", "{v}");
    assert!(metric(&gw, "modgate_state_fallbacks_total").await >= 2.0);
    assert_eq!(metric(&gw, "modgate_state_backend_up").await, 0.0);
    let (status, v) = gw
        .post(
            &format!("/wxa/media_check_async?access_token={token}"),
            json!({"media_url": "http://127.0.0.1:9/a.jpg", "media_type": 2, "version": 2,
                   "scene": 1, "openid": "u1"})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_err(&v, -1);
    assert!(v.get("trace_id").is_none(), "{v}");

    // Redis returns (empty: it kept nothing). The gateway uses it again: the visit it lost is
    // asked for, and counts land in the new server.
    let _redis = OwnRedis::start_on(redis.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = gw.check(&token, &body("你好", "u1")).await;
        if v["errcode"] == 61010 {
            break;
        }
        assert!(Instant::now() < deadline, "Redis not used again: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&gw, "modgate_state_backend_up").await, 1.0);
    visit(&gw, &token, "u1").await;
    assert_eq!(gw.check(&token, &body("你好", "u1")).await["errcode"], 0);
    let (_, v) = gw
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={token}"),
            r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
        )
        .await;
    assert_eq!(v["quota"]["used"], 2, "{v}");

    // The other instance's change subscription came back too: a table stored through this
    // instance reaches it.
    let entry = r#"[{"keyword":"紫水晶","label":20001,"level":90,"suggest":"risky"}]"#;
    let keywords = format!("/admin/apps/{APPID}/keywords");
    assert_eq!(admin(&gw, Method::PUT, &keywords, entry).await.0, 200);
    // The other instance, idle through the outage, reports Redis back within its ping period.
    until(Instant::now() + Duration::from_secs(5), async || {
        let up = metric(&other, "modgate_state_backend_up").await;
        (up == 1.0).then_some(()).ok_or(json!({ "backend_up": up }))
    })
    .await;
    let token = other.token().await;
    visit(&other, &token, "u1").await;
    until(Instant::now() + Duration::from_secs(10), async || {
        let v = other.check(&token, &body("出售紫水晶", "u1")).await;
        (v["result"]["suggest"] == "risky").then_some(()).ok_or(v)
    })
    .await;
    gw.shutdown().await;
    other.shutdown().await;
}

/// With Redis the review queue is shared: a verdict queued by one instance is listed, claimed and
/// decided through another, a claim holds across instances, and a decision's feedback reaches
/// every instance's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_review_queue_is_shared_by_every_instance() {
    let prefix = fresh_prefix("review");
    let url = "redis://127.0.0.1:6379/0";
    let extra = "\n[review]\npass_sample_every = 0\n";
    let a = TestServer::start_with(&format!("{}{extra}", config(url, &prefix))).await;
    let b = TestServer::start_with(&format!("{}{extra}", config(url, &prefix))).await;
    let entry = json!([{"keyword": "蓝莓果酱", "label": 20001, "level": 70, "suggest": "review"}]);
    let (status, v) = admin(
        &a,
        Method::POST,
        &format!("/admin/apps/{APPID}/keywords"),
        &entry.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let ta = a.token().await;
    visit(&a, &ta, "oShared_0123456789").await;
    let checked = a
        .check(&ta, &body("我朋友卖蓝莓果酱", "oShared_0123456789"))
        .await;
    assert_eq!(checked["result"]["suggest"], "review", "{checked}");
    let id = checked["trace_id"].as_str().unwrap().to_owned();

    // Listed through the other instance once the writer has handed it to Redis.
    until(Instant::now() + Duration::from_secs(5), async || {
        let (_, v) = admin(&b, Method::GET, "/admin/review/items?state=undecided", "").await;
        if v["total"] == 1 && v["items"][0]["id"] == id.as_str() {
            Ok(())
        } else {
            Err(v)
        }
    })
    .await;
    let item = |action: &str| format!("/admin/review/items/{id}/{action}");
    let (status, v) = admin(&b, Method::POST, &item("claim"), r#"{"reviewer":"ann"}"#).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin(&a, Method::POST, &item("claim"), r#"{"reviewer":"bob"}"#).await;
    assert_eq!(status, 409, "the claim holds on every instance: {v}");
    let decision =
        json!({"reviewer": "ann", "outcome": "risky", "reason": "code word", "feedback": true});
    let (status, v) = admin(&a, Method::POST, &item("decision"), &decision.to_string()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decision"]["reviewer"], "ann");
    let (_, audit) = admin(&b, Method::GET, "/admin/review/audit", "").await;
    assert_eq!(audit[0]["id"], id.as_str(), "{audit}");
    // The feedback changed the shared table: the other instance now answers risky.
    let tb = b.token().await;
    until(Instant::now() + Duration::from_secs(5), async || {
        let v = b
            .check(&tb, &body("我朋友卖蓝莓果酱", "oShared_0123456789"))
            .await;
        if v["result"]["suggest"] == "risky" {
            Ok(())
        } else {
            Err(v)
        }
    })
    .await;
    assert_eq!(metric(&a, "modgate_review_decisions_total").await, 1.0);
    a.shutdown().await;
    b.shutdown().await;
}
