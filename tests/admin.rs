//! The admin API: bearer auth, apps, custom keyword tables, atomic replacement, persistence.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-token";
const NEW_APP: &str = "wx1111111111111111";
const NEW_SECRET: &str = "11111111111111111111111111111111";

async fn admin_get(s: &TestServer, path: &str) -> (u16, Value, String) {
    admin(s, reqwest::Method::GET, path, None).await
}

async fn admin_delete(s: &TestServer, path: &str) -> (u16, Value, String) {
    admin(s, reqwest::Method::DELETE, path, None).await
}

async fn admin_send(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    ctype: &str,
    body: String,
) -> (u16, Value, String) {
    admin(s, method, path, Some((ctype, body))).await
}

async fn put_table(s: &TestServer, appid: &str, entries: Value) -> (u16, Value) {
    let (st, v, _) = admin(
        s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{appid}/keywords"),
        Some(("application/json", entries.to_string())),
    )
    .await;
    (st, v)
}

async fn checked(s: &TestServer, token: &str, text: &str) -> Value {
    s.check(
        token,
        &json!({"content": text, "version": 2, "scene": 2, "openid": "o1"}).to_string(),
    )
    .await
}

#[tokio::test]
async fn bearer_token_is_required() {
    let s = TestServer::start().await;
    let resp = s
        .client
        .get(s.admin_url(&format!("/admin/apps/{APPID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let resp = s
        .client
        .get(s.admin_url(&format!("/admin/apps/{APPID}")))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("bearer"));
    s.shutdown().await;

    // Without a configured token the admin routes do not exist.
    let s = TestServer::start_with(
        &default_config().replace("[admin]\ntoken = \"test-admin-token\"\n", ""),
    )
    .await;
    let resp = s
        .client
        .get(s.admin_url(&format!("/admin/apps/{APPID}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    s.shutdown().await;
}

#[tokio::test]
async fn apps_are_created_read_and_replaced() {
    let s = TestServer::start().await;
    let (st, v, _) = admin_get(&s, &format!("/admin/apps/{APPID}")).await;
    assert_eq!(st, 200);
    assert_eq!(v["appid"], APPID);
    assert_eq!(v["push_format"], "json");
    let (st, _, _) = admin_get(&s, &format!("/admin/apps/{NEW_APP}")).await;
    assert_eq!(st, 404);

    // A push URL needs a push token: pushes are signed with it.
    let unsigned = json!({"secret": NEW_SECRET, "push_url": "http://127.0.0.1:9/push"});
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        unsigned.to_string(),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("push_token"), "{v}");

    let body = json!({"secret": NEW_SECRET, "push_url": "http://127.0.0.1:9/push",
        "push_token": "t0ken", "text_per_day": 5});
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        body.to_string(),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["text_per_day"], 5);
    // In force at once: the new app gets tokens.
    let t = s.token_for(NEW_APP, NEW_SECRET).await;
    assert_eq!(checked(&s, &t, "你好").await["errcode"], 0);

    // Replace with a new secret: the old one stops working.
    let other = "22222222222222222222222222222222";
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        json!({"secret": other}).to_string(),
    )
    .await;
    assert_eq!(st, 200);
    let (_, v) = s
        .get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={NEW_APP}&secret={NEW_SECRET}"
        ))
        .await;
    assert_err(&v, 40125);
    // A token issued under the old secret (and already accepted above) is refused now.
    assert_err(&checked(&s, &t, "你好").await, 40001);
    let t = s.token_for(NEW_APP, other).await;
    assert_eq!(checked(&s, &t, "你好").await["errcode"], 0);

    // Invalid bodies: every problem listed; nothing changes.
    let bad = json!({"secret": "short", "push_mode": "aes", "text_per_minute": 0});
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        "/admin/apps/wx2222222222222222",
        "application/json",
        bad.to_string(),
    )
    .await;
    assert_eq!(st, 400);
    let keys: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["app.secret", "app.text_per_minute"]);
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        json!({"appid": APPID, "secret": other}).to_string(),
    )
    .await;
    assert_eq!(st, 400);
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        "{nope".into(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("invalid app JSON"));
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        json!({"secret": other, "colour": "red"}).to_string(),
    )
    .await;
    assert_eq!(st, 400, "unknown fields are refused");
    let (st, _, _) = admin_delete(&s, &format!("/admin/apps/{NEW_APP}")).await;
    assert_eq!(st, 405);
    let (st, _, _) = admin_get(&s, "/admin/nothing").await;
    assert_eq!(st, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn keyword_tables_list_replace_add_delete_export() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let path = format!("/admin/apps/{APPID}/keywords");
    let (st, v, _) = admin_get(&s, &path).await;
    assert_eq!((st, v), (200, json!([])));

    let table = json!([
        {"keyword":"竞品","label":10001,"level":40,"suggest":"review"},
        {"keyword":"badword","label":20003,"level":80,"suggest":"risky"},
        {"keyword":"赌博游戏机","label":100,"level":100,"suggest":"pass"}
    ]);
    assert_eq!(
        put_table(&s, APPID, table.clone()).await,
        (200, json!({"count":3}))
    );
    let (_, v, _) = admin_get(&s, &path).await;
    assert_eq!(v, table);

    // The keyword detail item, exactly as SPEC §3 shows it; normalization applies.
    let v = checked(&s, &t, "看看竞.品吧").await;
    assert_eq!(
        v["detail"][1],
        json!({"strategy":"keyword","errcode":0,"suggest":"review","label":10001,"level":40,"keyword":"竞品"})
    );
    assert_eq!(v["result"], json!({"suggest":"review","label":10001}));
    let v = checked(&s, &t, "ＢＡＤＷＯＲＤ and 竞品").await;
    assert_eq!(v["result"], json!({"suggest":"risky","label":20003}));
    assert_eq!(v["detail"].as_array().unwrap().len(), 3);
    // The pass entry is an allow entry over the built-in 赌博.
    let v = checked(&s, &t, "二手赌博游戏机").await;
    assert_eq!(v["result"]["suggest"], "pass", "{v}");
    // Other apps do not see this table.
    let t2 = s.token_for(APPID2, SECRET2).await;
    assert_eq!(
        checked(&s, &t2, "竞品").await["detail"][1],
        json!({"strategy":"keyword","errcode":0})
    );

    // Add (replacing a same-keyword entry), delete one (percent-encoded), export CSV.
    let add = json!([{"keyword":"竞品","label":10001,"level":90,"suggest":"risky"},{"keyword":"新词","label":21000,"level":10,"suggest":"review"}]);
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::POST,
        &path,
        "application/json",
        add.to_string(),
    )
    .await;
    assert_eq!((st, v), (200, json!({"count":4})));
    assert_eq!(checked(&s, &t, "竞品").await["detail"][1]["level"], 90);
    let (st, _, _) = admin_delete(&s, &format!("{path}/%E6%96%B0%E8%AF%8D")).await;
    assert_eq!(st, 200);
    let (st, _, _) = admin_delete(&s, &format!("{path}/%E6%96%B0%E8%AF%8D")).await;
    assert_eq!(st, 404);
    let (st, _, csv) = admin_get(&s, &format!("{path}?format=csv")).await;
    assert_eq!(st, 200);
    assert!(csv.starts_with("keyword,label,level,suggest\n"), "{csv}");
    assert_eq!(csv.lines().count(), 4);

    // Replace from CSV.
    let csv_body =
        "keyword,label,level,suggest\n紫色药丸,20006,77,risky\n\"a,b\",21000,5,review\n".to_owned();
    let (st, v, _) = admin_send(&s, reqwest::Method::PUT, &path, "text/csv", csv_body).await;
    assert_eq!((st, v), (200, json!({"count":2})));
    assert_eq!(
        checked(&s, &t, "竞品").await["detail"][1],
        json!({"strategy":"keyword","errcode":0})
    );
    assert_eq!(checked(&s, &t, "紫色药丸").await["detail"][1]["level"], 77);
    s.shutdown().await;
}

#[tokio::test]
async fn invalid_tables_are_refused_whole_and_the_old_one_stays() {
    let s = TestServer::start().await;
    let t = s.token().await;
    put_table(
        &s,
        APPID,
        json!([{"keyword":"旧词","label":20006,"level":50,"suggest":"risky"}]),
    )
    .await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"keyword":format!("w{i}"),"label":20006,"level":1,"suggest":"risky"}))
        .collect();
    let (st, v) = put_table(&s, APPID, Value::Array(too_many)).await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("1000"), "{v}");
    for (bad, needle) in [
        (
            json!([{"keyword":"ok","label":20006,"level":1,"suggest":"risky"},{"keyword":"x","label":999,"level":1,"suggest":"risky"}]),
            "entry 1 (\"x\")",
        ),
        (
            json!([{"keyword":"字".repeat(51),"label":20006,"level":1,"suggest":"risky"}]),
            "50 characters",
        ),
        (
            json!([{"keyword":"x","label":20006,"level":1,"suggest":"never"}]),
            "suggest",
        ),
        (
            json!([{"keyword":"x","label":20006,"level":101,"suggest":"risky"}]),
            "entry 0",
        ),
        (
            json!([{"keyword":"x","label":20006,"suggest":"risky"}]),
            "level",
        ),
    ] {
        let (st, v) = put_table(&s, APPID, bad).await;
        assert_eq!(st, 400);
        assert!(v["error"].as_str().unwrap().contains(needle), "{v}");
    }
    let csv = "keyword,label,level\nx,20006,1\n".to_owned();
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{APPID}/keywords"),
        "text/csv",
        csv,
    )
    .await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("suggest"));
    // Adding past 1000 is refused too.
    let nine_ninety_nine: Vec<Value> = (0..999)
        .map(|i| json!({"keyword":format!("w{i}"),"label":20006,"level":1,"suggest":"risky"}))
        .collect();
    let (st, v, _) = admin_send(
        &s,
        reqwest::Method::POST,
        &format!("/admin/apps/{APPID}/keywords"),
        "application/json",
        Value::Array(nine_ninety_nine).to_string(),
    )
    .await;
    assert_eq!((st, v), (200, json!({"count":1000})));
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::POST,
        &format!("/admin/apps/{APPID}/keywords"),
        "application/json",
        json!({"keyword":"one more","label":20006,"level":1,"suggest":"risky"}).to_string(),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        checked(&s, &t, "旧词").await["detail"][1]["keyword"],
        "旧词"
    );
    let (st, _, _) = admin_get(&s, "/admin/apps/wx9999999999999999/keywords").await;
    assert_eq!(st, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn apps_and_tables_survive_a_restart() {
    let dir = fresh_dir("restart");
    let config = format!(
        "{}\n[state]\ndata_dir = \"{}\"\n",
        default_config(),
        dir.display()
    );
    let s = TestServer::start_with(&config).await;
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{NEW_APP}"),
        "application/json",
        json!({"secret": NEW_SECRET}).to_string(),
    )
    .await;
    assert_eq!(st, 201);
    put_table(
        &s,
        NEW_APP,
        json!([{"keyword":"持久词","label":20008,"level":66,"suggest":"risky"}]),
    )
    .await;
    s.shutdown().await;

    let s = TestServer::start_with(&config).await;
    let t = s.token_for(NEW_APP, NEW_SECRET).await;
    let v = checked(&s, &t, "这是持久词").await;
    assert_eq!(
        v["detail"][1],
        json!({"strategy":"keyword","errcode":0,"suggest":"risky","label":20008,"level":66,"keyword":"持久词"})
    );
    s.shutdown().await;
}

/// Replacing an app's settings keeps what the app has accumulated: its keyword table and today's
/// quota count carry over to the new version.
#[tokio::test]
async fn replacing_an_app_keeps_its_table_and_todays_count() {
    let config = default_config().replace("enforce = false", "enforce = true");
    let s = TestServer::start_with(&config).await;
    let path = format!("/admin/apps/{NEW_APP}");
    let body = |secret: &str| json!({"secret": secret, "text_per_day": 3}).to_string();
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &path,
        "application/json",
        body(NEW_SECRET),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = put_table(
        &s,
        NEW_APP,
        json!([{"keyword":"留存词","label":20012,"level":40,"suggest":"review"}]),
    )
    .await;
    assert_eq!(st, 200);
    let t = s.token_for(NEW_APP, NEW_SECRET).await;
    let (st, v) = s
        .post(
            &format!("/wxa/visit/report?access_token={t}"),
            json!({"openid": "o1"}).to_string(),
        )
        .await;
    assert_eq!((st, &v["errcode"]), (200, &json!(0)), "{v}");
    for _ in 0..2 {
        assert_eq!(checked(&s, &t, "你好").await["errcode"], 0);
    }

    let other = "33333333333333333333333333333333";
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &path,
        "application/json",
        body(other),
    )
    .await;
    assert_eq!(st, 200);
    let t = s.token_for(NEW_APP, other).await;
    let v = checked(&s, &t, "这是留存词").await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(
        v["result"]["label"], 20012,
        "the table stayed in force: {v}"
    );
    // The third call of the day was that one: the count carried over.
    assert_err(&checked(&s, &t, "你好").await, 45009);
    s.shutdown().await;
}

/// A table stored for an app that is later dropped from the config file is not loaded on start,
/// and comes back into force when the app is created again through the admin API.
#[tokio::test]
async fn a_stored_table_returns_with_its_app() {
    let dir = fresh_dir("orphan");
    let with_dir =
        |config: String| format!("{config}\n[state]\ndata_dir = \"{}\"\n", dir.display());
    let s = TestServer::start_with(&with_dir(default_config())).await;
    let (st, _) = put_table(
        &s,
        APPID2,
        json!([{"keyword":"归来词","label":20006,"level":77,"suggest":"risky"}]),
    )
    .await;
    assert_eq!(st, 200);
    s.shutdown().await;

    let only_first = default_config().replace(
        &format!("[[apps]]\nappid = \"{APPID2}\"\nsecret = \"{SECRET2}\"\n"),
        "",
    );
    assert!(!only_first.contains(APPID2));
    let s = TestServer::start_with(&with_dir(only_first)).await;
    let (st, _, _) = admin_get(&s, &format!("/admin/apps/{APPID2}/keywords")).await;
    assert_eq!(st, 404);
    let (st, _, _) = admin_send(
        &s,
        reqwest::Method::PUT,
        &format!("/admin/apps/{APPID2}"),
        "application/json",
        json!({"secret": SECRET2}).to_string(),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v, _) = admin_get(&s, &format!("/admin/apps/{APPID2}/keywords")).await;
    assert_eq!(st, 200);
    assert_eq!(v[0]["keyword"], "归来词", "{v}");
    let t = s.token_for(APPID2, SECRET2).await;
    let v = checked(&s, &t, "归来词").await;
    assert_eq!(v["result"]["suggest"], "risky", "{v}");
    s.shutdown().await;
}

/// Checks run continuously while the table is replaced back and forth: every answer matches the
/// old table or the new one, never a mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacement_is_atomic_under_load() {
    let s = Arc::new(TestServer::start().await);
    let t = s.token().await;
    let a = json!([{"keyword":"甲词","label":20006,"level":11,"suggest":"risky"},{"keyword":"乙词","label":20006,"level":12,"suggest":"risky"}]);
    let b = json!([{"keyword":"丙词","label":20003,"level":21,"suggest":"review"},{"keyword":"丁词","label":20003,"level":22,"suggest":"review"}]);
    put_table(&s, APPID, a.clone()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut checkers = Vec::new();
    for _ in 0..4 {
        let (s, t, stop) = (Arc::clone(&s), t.clone(), Arc::clone(&stop));
        checkers.push(tokio::spawn(async move {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                let v = checked(&s, &t, "甲词乙词丙词丁词").await;
                let words: Vec<&str> = v["detail"].as_array().unwrap()[1..]
                    .iter()
                    .map(|d| d["keyword"].as_str().unwrap())
                    .collect();
                assert!(
                    words == ["甲词", "乙词"] || words == ["丙词", "丁词"],
                    "mixed answer: {v}"
                );
                seen += 1;
            }
            seen
        }));
    }
    for i in 0..40 {
        let table = if i % 2 == 0 { b.clone() } else { a.clone() };
        assert_eq!(put_table(&s, APPID, table).await.0, 200);
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in checkers {
        total += c.await.unwrap();
    }
    assert!(
        total > 40,
        "only {total} checks ran during the replacements"
    );
}

/// A table replacement whose client goes away mid-way (from before its body is read to after it
/// is stored) is finished whatever the client does: what this process holds in force is what
/// the store holds, as a restart shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_client_leaves_is_in_force_exactly_when_stored() {
    use tokio::io::AsyncWriteExt;
    let dir = fresh_dir("dropped-change");
    let config = format!(
        "{}\n[state]\ndata_dir = \"{}\"\n",
        default_config(),
        dir.display()
    );
    let level = async |s: &TestServer| -> Option<u64> {
        let (st, v, _) = admin_get(s, &format!("/admin/apps/{APPID}/keywords")).await;
        (st == 200).then(|| v[0]["level"].as_u64().unwrap())
    };
    // Delays from 0 to 6 ms after the request was sent: some before it is read, some while
    // the table is built and stored, some after it is in force.
    for round in 0..16u64 {
        let s = TestServer::start_with(&config).await;
        let body = json!([{"keyword":"易变词","label":20006,"level":round + 1,"suggest":"risky"}])
            .to_string();
        let request = format!(
            "PUT /admin/apps/{APPID}/keywords HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(s.admin).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_micros(400 * round)).await;
        stream.set_zero_linger().unwrap();
        drop(stream);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let in_force = level(&s).await;
        s.shutdown().await;
        let s = TestServer::start_with(&config).await;
        let stored = level(&s).await;
        s.shutdown().await;
        assert_eq!(
            in_force, stored,
            "round {round}: in force {in_force:?}, stored {stored:?}"
        );
    }
}
