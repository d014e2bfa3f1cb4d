//! The human review queue through the gateway: what is queued, claims, decisions and their
//! feedback, the audit log, filters, persistence, retention and metrics.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const OPENID: &str = "oReviewUser_0123456789";

fn config(dir: &std::path::Path, sample_every: u32, extra: &str) -> String {
    format!(
        "{}\n[state]\ndata_dir = \"{}\"\n[review]\npass_sample_every = {sample_every}\n{extra}",
        default_config(),
        dir.display()
    )
}

fn body(content: &str) -> String {
    json!({"content": content, "version": 2, "scene": 2, "openid": OPENID, "title": "标题"})
        .to_string()
}

async fn add_keyword(s: &TestServer, appid: &str, keyword: &str, suggest: &str, label: u32) {
    let (st, v, _) = admin(
        s,
        Method::POST,
        &format!("/admin/apps/{appid}/keywords"),
        Some((
            "application/json",
            json!([{"keyword": keyword, "label": label, "level": 70, "suggest": suggest}])
                .to_string(),
        )),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

async fn items(s: &TestServer, query: &str) -> (usize, Vec<Value>) {
    let (st, v, _) = admin(s, Method::GET, &format!("/admin/review/items{query}"), None).await;
    assert_eq!(st, 200, "{v}");
    (
        v["total"].as_u64().unwrap() as usize,
        v["items"].as_array().unwrap().clone(),
    )
}

/// `POST /admin/review/bulk` with the shared token.
async fn bulk(s: &TestServer, body: Value) -> (u16, Value) {
    let (st, v, _) = admin(
        s,
        Method::POST,
        "/admin/review/bulk",
        Some(("application/json", body.to_string())),
    )
    .await;
    (st, v)
}

async fn act(s: &TestServer, id: &str, action: &str, body: Value) -> (u16, Value) {
    let (st, v, _) = admin(
        s,
        Method::POST,
        &format!("/admin/review/items/{id}/{action}"),
        Some(("application/json", body.to_string())),
    )
    .await;
    (st, v)
}

#[tokio::test]
async fn review_verdicts_are_queued_claimed_decided_and_fed_back() {
    let dir = fresh_dir("review");
    let s = TestServer::start_with(&config(&dir, 0, "")).await;
    let t = s.token().await;
    add_keyword(&s, APPID, "蓝莓果酱", "review", 20001).await;

    // A review verdict is queued with what was checked; a pass is not (sampling is off).
    let v = s.check(&t, &body("我朋友卖蓝莓果酱")).await;
    assert_eq!(v["result"]["suggest"], "review", "{v}");
    let trace = v["trace_id"].as_str().unwrap().to_owned();
    let v = s.check(&t, &body("今天天气很好")).await;
    assert_eq!(v["result"]["suggest"], "pass");
    let (total, list) = items(&s, "").await;
    assert_eq!(total, 1, "{list:?}");
    let item = &list[0];
    assert_eq!(item["id"], trace.as_str());
    assert_eq!(item["appid"], APPID);
    assert_eq!(item["openid"], OPENID);
    assert_eq!(item["scene"], 2);
    assert_eq!(item["reason"], "review");
    assert_eq!(item["suggest"], "review");
    assert_eq!(item["label"], 20001);
    assert_eq!(item["hits"], json!(["蓝莓果酱"]));
    assert_eq!(
        item["content"],
        json!({"kind": "text", "fields": [["content", "我朋友卖蓝莓果酱"], ["title", "标题"]]})
    );
    assert_eq!(item["created_ms"], T0_MS);

    // Claims: Ann claims; Bob can neither claim nor decide meanwhile.
    let (st, v) = act(
        &s,
        &trace,
        "decision",
        json!({"reviewer": "ann", "outcome": "risky"}),
    )
    .await;
    assert_eq!(st, 409, "deciding needs a claim: {v}");
    let (st, v) = act(&s, &trace, "claim", json!({"reviewer": "ann"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["claim"]["reviewer"], "ann");
    let (st, v) = act(&s, &trace, "claim", json!({"reviewer": "bob"})).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("ann"), "{v}");
    let (st, _) = act(
        &s,
        &trace,
        "decision",
        json!({"reviewer": "bob", "outcome": "pass"}),
    )
    .await;
    assert_eq!(st, 409);
    let (_, claimed) = items(&s, "?state=claimed").await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(items(&s, "?state=undecided").await.0, 1);
    assert_eq!(items(&s, "?state=pending").await.0, 0);

    // Ann confirms risky and feeds the hit word back: the app's table now says risky.
    s.clock.advance(Duration::from_secs(90));
    let (st, v) = act(
        &s,
        &trace,
        "decision",
        json!({"reviewer": "ann", "outcome": "risky", "reason": "蓝莓果酱 is a code word here", "feedback": true}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["decision"]["outcome"], "risky");
    assert_eq!(v["decision"]["reviewer"], "ann");
    assert_eq!(v["decision"]["decided_ms"], T0_MS + 90_000);
    assert!(
        v["decision"]["feedback"]
            .as_str()
            .unwrap()
            .contains("蓝莓果酱"),
        "{v}"
    );
    let v = s.check(&t, &body("我朋友卖蓝莓果酱")).await;
    assert_eq!(v["result"]["suggest"], "risky", "{v}");
    let (_, _, table) = admin(
        &s,
        Method::GET,
        &format!("/admin/apps/{APPID}/keywords"),
        None,
    )
    .await;
    let table: Value = serde_json::from_str(&table).unwrap();
    assert!(
        table
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["keyword"] == "蓝莓果酱" && e["suggest"] == "risky" && e["label"] == 20001),
        "{table}"
    );
    // Decided once: no second decision, no new claim.
    let (st, _) = act(&s, &trace, "claim", json!({"reviewer": "bob"})).await;
    assert_eq!(st, 409);

    // The audit log: who, what, when, how long it waited.
    let (st, audit, _) = admin(&s, Method::GET, "/admin/review/audit", None).await;
    assert_eq!(st, 200);
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit[0]["id"], trace.as_str());
    assert_eq!(audit[0]["reviewer"], "ann");
    assert_eq!(audit[0]["outcome"], "risky");
    assert_eq!(audit[0]["reason"], "蓝莓果酱 is a code word here");
    assert_eq!(audit[0]["age_ms"], 90_000);
    assert!(
        audit[0].get("content").is_none(),
        "the audit log holds no content"
    );

    // Metrics: depth back to 0, one risky decision aged 90 s.
    let m = s.metrics_text().await;
    assert!(
        m.contains(&format!(
            "modgate_review_queue_depth{{appid=\"{APPID}\"}} 0"
        )),
        "{m}"
    );
    assert!(
        m.contains("modgate_review_decisions_total{outcome=\"risky\"} 1"),
        "{m}"
    );
    assert!(m.contains("modgate_review_enqueued_total{kind=\"text\",reason=\"review\"} 1"));
    assert!(
        m.contains("modgate_review_decision_age_seconds_bucket{le=\"300\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("modgate_review_decision_age_seconds_bucket{le=\"60\"} 0"),
        "{m}"
    );

    // Persisted: a restarted gateway has the item, its decision and the audit log.
    s.shutdown().await;
    let s = TestServer::start_with(&config(&dir, 0, "")).await;
    let (_, list) = items(&s, "?state=decided").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["decision"]["reviewer"], "ann");
    let (_, audit, _) = admin(
        &s,
        Method::GET,
        &format!("/admin/review/audit?appid={APPID}"),
        None,
    )
    .await;
    assert_eq!(audit.as_array().unwrap().len(), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn sampled_passes_filters_release_allow_feedback_and_retention() {
    let dir = fresh_dir("review-sample");
    let s = TestServer::start_with(&config(&dir, 2, "claim_secs = 60\n")).await;
    let t = s.token().await;
    let t2 = s.token_for(APPID2, SECRET2).await;
    add_keyword(&s, APPID, "蓝莓果酱", "review", 20001).await;
    // Four passes on the first app (two sampled), one review there; two passes on the second
    // (one sampled: one pass in every two, counted over all apps).
    for text in ["你好", "谢谢", "再见", "好的"] {
        s.check(&t, &body(text)).await;
    }
    s.check(&t, &body("蓝莓果酱")).await;
    s.clock.advance(Duration::from_secs(3600));
    s.check(&t2, &body("晚安")).await;
    s.check(&t2, &body("明天见")).await;

    let (total, all) = items(&s, "").await;
    assert_eq!(total, 4, "{all:?}");
    let reasons: Vec<&str> = all.iter().map(|i| i["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["sample", "sample", "review", "sample"]);
    assert_eq!(items(&s, &format!("?appid={APPID}")).await.0, 3);
    assert_eq!(items(&s, &format!("?appid={APPID2}")).await.0, 1);
    assert_eq!(items(&s, "?label=20001").await.0, 1);
    assert_eq!(items(&s, "?label=100").await.0, 3);
    assert_eq!(items(&s, "?min_age_secs=1800").await.0, 3, "the older ones");
    assert_eq!(items(&s, "?max_age_secs=1800").await.0, 1, "the newest");
    assert_eq!(items(&s, "?limit=2").await.1.len(), 2);
    for bad in ["?state=open", "?label=x", "?limit=0", "?min_age_secs=-1"] {
        let (st, _, _) = admin(&s, Method::GET, &format!("/admin/review/items{bad}"), None).await;
        assert_eq!(st, 400, "{bad}");
    }

    // Release, and claims that run out.
    let sample = all[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        act(&s, &sample, "claim", json!({"reviewer": "ann"}))
            .await
            .0,
        200
    );
    assert_eq!(
        act(&s, &sample, "release", json!({"reviewer": "bob"}))
            .await
            .0,
        409
    );
    assert_eq!(
        act(&s, &sample, "release", json!({"reviewer": "ann"}))
            .await
            .0,
        200
    );
    assert_eq!(
        act(&s, &sample, "claim", json!({"reviewer": "bob"}))
            .await
            .0,
        200
    );
    s.clock.advance(Duration::from_secs(61));
    assert_eq!(
        items(&s, "?state=claimed").await.0,
        0,
        "Bob's claim ran out"
    );
    assert_eq!(
        act(&s, &sample, "claim", json!({"reviewer": "ann"}))
            .await
            .0,
        200
    );

    // A confirmed pass with feedback: the named word becomes an allow entry, which then
    // overrides the review entry for it.
    let review = all[2]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        act(&s, &review, "claim", json!({"reviewer": "ann"}))
            .await
            .0,
        200
    );
    let (st, v) = act(
        &s,
        &review,
        "decision",
        json!({"reviewer": "ann", "outcome": "pass", "reason": "brand name", "feedback": true, "keyword": "蓝莓果酱店"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let v = s.check(&t, &body("蓝莓果酱店")).await;
    assert_eq!(v["result"]["suggest"], "pass", "{v}");
    // A sample with nothing hit needs a keyword for feedback; refused, nothing recorded.
    let (st, v) = act(
        &s,
        &sample,
        "decision",
        json!({"reviewer": "ann", "outcome": "pass", "feedback": true}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        s.gateway
            .review
            .get(&sample)
            .await
            .unwrap()
            .unwrap()
            .decision
            .is_none()
    );
    // Bad bodies.
    for bad in [
        json!({"reviewer": "", "outcome": "pass"}),
        json!({"reviewer": "ann", "outcome": "maybe"}),
        json!({"reviewer": "ann"}),
        json!({"reviewer": "ann", "outcome": "pass", "extra": 1}),
    ] {
        assert_eq!(
            act(&s, &sample, "decision", bad.clone()).await.0,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        act(&s, "no-such-item", "claim", json!({"reviewer": "ann"}))
            .await
            .0,
        404
    );

    // Retention: seven days after they were queued, items and their texts are gone.
    s.clock.advance(Duration::from_secs(7 * 86_400 - 3600));
    let now = s.gateway.clock.now_ms();
    assert_eq!(s.gateway.review.sweep(now).await.unwrap(), 3);
    let (total, left) = items(&s, "").await;
    assert_eq!(total, 1, "{left:?}");
    assert_eq!(left[0]["appid"], APPID2);

    // Usage for the console.
    let (st, v, _) = admin(
        &s,
        Method::GET,
        &format!("/admin/apps/{APPID2}/usage"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["review_pending"], 1);
    assert!(v["msg_sec_check"]["daily_limit"].as_u64().unwrap() > 0);
    let (st, v, _) = admin(&s, Method::GET, "/admin/apps", None).await;
    assert_eq!(st, 200);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    s.shutdown().await;
}

/// An admin call made with `token`.
async fn as_holder(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = s
        .client
        .request(method, s.admin_url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// Named admin tokens: the holder of a reviewer token reads and works the queue under its own
/// name (whatever the body says, and recorded so in the audit log), and is refused every other
/// change and feedback into tables; an admin token changes things; the shared token still works.
#[tokio::test]
async fn named_tokens_review_as_their_holder_and_reviewers_change_nothing_else() {
    const ALICE: &str = "alice-reviewer-token-0001";
    const OPS: &str = "ops-admin-token-000000001";
    let dir = fresh_dir("review-tokens");
    let tokens = format!(
        "[[admin.tokens]]\nname = \"alice\"\ntoken = \"{ALICE}\"\nrole = \"reviewer\"\n\
         [[admin.tokens]]\nname = \"ops\"\ntoken = \"{OPS}\"\nrole = \"admin\"\n"
    );
    let s = TestServer::start_with(&config(&dir, 0, "").replace(
        "[admin]\ntoken = \"test-admin-token\"\n",
        &format!("[admin]\ntoken = \"test-admin-token\"\n{tokens}"),
    ))
    .await;
    let t = s.token().await;
    // The admin token adds a word; the reviewer's cannot, nor touch apps or banks.
    let word = json!([{"keyword": "蓝莓果酱", "label": 20001, "level": 70, "suggest": "review"}]);
    let path = format!("/admin/apps/{APPID}/keywords");
    let (st, v) = as_holder(&s, ALICE, Method::POST, &path, Some(word.clone())).await;
    assert_eq!(st, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("admin token"), "{v}");
    let (st, _) = as_holder(
        &s,
        ALICE,
        Method::PUT,
        &format!("/admin/apps/{APPID}"),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = as_holder(
        &s,
        ALICE,
        Method::PUT,
        "/admin/banks/global",
        Some(json!([])),
    )
    .await;
    assert_eq!(st, 403);
    let (st, v) = as_holder(&s, OPS, Method::POST, &path, Some(word)).await;
    assert_eq!(st, 200, "{v}");
    // It reads.
    let (st, v) = as_holder(&s, ALICE, Method::GET, "/admin/apps", None).await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = as_holder(
        &s,
        "not-a-token-at-all-00000",
        Method::GET,
        "/admin/apps",
        None,
    )
    .await;
    assert_eq!(st, 401);

    // A review item, claimed and decided by alice whatever name the body gives.
    let v = s.check(&t, &body("我朋友卖蓝莓果酱")).await;
    assert_eq!(v["result"]["suggest"], "review", "{v}");
    let id = v["trace_id"].as_str().unwrap().to_owned();
    let item = |action: &str| format!("/admin/review/items/{id}/{action}");
    let (st, v) = as_holder(&s, ALICE, Method::POST, &item("claim"), Some(json!({}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["claim"]["reviewer"], "alice");
    // Feedback would change the app's table: not with a reviewer's token.
    let decision = json!({"reviewer": "mallory", "outcome": "risky", "feedback": true});
    let (st, v) = as_holder(&s, ALICE, Method::POST, &item("decision"), Some(decision)).await;
    assert_eq!(st, 403, "{v}");
    let decision = json!({"reviewer": "mallory", "outcome": "risky", "reason": "sells it"});
    let (st, v) = as_holder(&s, ALICE, Method::POST, &item("decision"), Some(decision)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["decision"]["reviewer"], "alice");
    let (st, v) = as_holder(&s, ALICE, Method::GET, "/admin/review/audit", None).await;
    assert_eq!(st, 200, "{v}");
    let audit = v.as_array().unwrap();
    assert_eq!(audit.len(), 1, "{v}");
    assert_eq!(audit[0]["id"], id.as_str());
    assert_eq!(
        audit[0]["reviewer"], "alice",
        "the token's holder, not the body's name"
    );

    // The shared token still works, with the reviewer named in the body.
    let v = s.check(&t, &body("他也卖蓝莓果酱")).await;
    let id = v["trace_id"].as_str().unwrap().to_owned();
    let (st, v) = act(&s, &id, "claim", json!({"reviewer": "bob"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["claim"]["reviewer"], "bob");
    let (st, _) = act(&s, &id, "release", json!({})).await;
    assert_eq!(st, 400, "the shared token names no reviewer");
    s.shutdown().await;
}

/// The console's API: text search, combined filters and paging over the queue; bulk decisions
/// over a selection (claiming what the caller does not hold, one refusal leaving the rest done);
/// the audit log's filters and its total; who a token names; a text item has no media file; and
/// this instance's usage history, busiest app first.
#[tokio::test]
async fn search_pages_bulk_decisions_audit_filters_and_usage() {
    const ALICE: &str = "alice-reviewer-token-0001";
    let dir = fresh_dir("review-bulk");
    let s = TestServer::start_with(&config(&dir, 0, "").replace(
        "[admin]\ntoken = \"test-admin-token\"\n",
        &format!(
            "[admin]\ntoken = \"test-admin-token\"\n[[admin.tokens]]\nname = \"alice\"\n\
             token = \"{ALICE}\"\nrole = \"reviewer\"\n"
        ),
    ))
    .await;
    let t = s.token().await;
    add_keyword(&s, APPID, "蓝莓果酱", "review", 20001).await;
    add_keyword(&s, APPID, "草莓果酱", "review", 20002).await;
    let mut ids = Vec::new();
    for text in [
        "一号卖蓝莓果酱",
        "二号卖草莓果酱",
        "三号卖蓝莓果酱",
        "四号卖蓝莓果酱",
        "五号卖草莓果酱",
    ] {
        let v = s.check(&t, &body(text)).await;
        assert_eq!(v["result"]["suggest"], "review", "{v}");
        ids.push(v["trace_id"].as_str().unwrap().to_owned());
    }
    s.check(&t, &body("晚安")).await;

    // Search (the text, a hit word), combined with a label, paged.
    assert_eq!(items(&s, "?q=三号").await.0, 1);
    assert_eq!(
        items(&s, &format!("?q={}", "%E8%8D%89%E8%8E%93")).await.0,
        2
    ); // 草莓
    let (total, page) = items(&s, "?q=%E8%93%9D%E8%8E%93&label=20001&offset=1&limit=1").await;
    assert_eq!(total, 3);
    assert_eq!(page.len(), 1);
    assert_eq!(
        page[0]["id"],
        ids[2].as_str(),
        "the second of 一号, 三号, 四号"
    );
    assert_eq!(items(&s, "?kind=media").await.0, 0);
    assert_eq!(items(&s, "?kind=text&reason=review").await.0, 5);
    assert_eq!(items(&s, "?offset=10").await, (5, Vec::new()));
    for bad in ["?kind=video", "?reason=maybe", "?offset=-1"] {
        let (st, v, _) = admin(&s, Method::GET, &format!("/admin/review/items{bad}"), None).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }

    // Bob holds 五号; a bulk "risky" by alice over all 草莓 items claims and decides the other.
    assert_eq!(
        act(&s, &ids[4], "claim", json!({"reviewer": "bob"}))
            .await
            .0,
        200
    );
    let (st, v) = as_holder(
        &s,
        ALICE,
        Method::POST,
        "/admin/review/bulk",
        Some(json!({"ids": [&ids[1], &ids[4], "no-such-item"], "action": "risky", "reason": "同一卖家"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["done"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(2)),
        "{v}"
    );
    assert_eq!(v["results"][0], json!({"id": ids[1], "ok": true}));
    assert!(
        v["results"][1]["error"].as_str().unwrap().contains("bob"),
        "{v}"
    );
    assert!(
        v["results"][2]["error"]
            .as_str()
            .unwrap()
            .contains("no such"),
        "{v}"
    );
    let (_, decided, _) = admin(
        &s,
        Method::GET,
        &format!("/admin/review/items/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(decided["decision"]["reviewer"], "alice");
    assert_eq!(decided["decision"]["outcome"], "risky");
    assert_eq!(decided["decision"]["reason"], "同一卖家");
    // Bulk claim, then bulk pass, with the shared token and a named reviewer.
    let rest = json!([&ids[0], &ids[2], &ids[3]]);
    let (st, v) = bulk(
        &s,
        json!({"ids": rest, "action": "claim", "reviewer": "carol"}),
    )
    .await;
    assert_eq!((st, v["done"].as_u64()), (200, Some(3)), "{v}");
    assert_eq!(
        items(&s, "?state=claimed").await.0,
        4,
        "carol's three and bob's"
    );
    let (st, v) = bulk(
        &s,
        json!({"ids": rest, "action": "pass", "reviewer": "carol"}),
    )
    .await;
    assert_eq!((st, v["done"].as_u64()), (200, Some(3)), "{v}");
    for bad in [
        json!({"ids": [], "action": "pass", "reviewer": "carol"}),
        json!({"ids": [&ids[0]], "action": "maybe", "reviewer": "carol"}),
        json!({"ids": [&ids[0]], "action": "pass"}),
        json!({"ids": vec!["x"; 501], "action": "pass", "reviewer": "carol"}),
    ] {
        let (st, v) = bulk(&s, bad.clone()).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }

    // The audit log, filtered: by reviewer, outcome, and a time window; its total in a header.
    let audit = |query: &'static str| {
        let s = &s;
        async move {
            let resp = s
                .client
                .get(s.admin_url(&format!("/admin/review/audit{query}")))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{query}");
            let total: usize = resp.headers()["x-total-count"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let entries: Vec<Value> = json_of(resp).await;
            (total, entries)
        }
    };
    let (total, all) = audit("").await;
    assert_eq!((total, all.len()), (4, 4));
    let (total, alice) = audit("?reviewer=alice").await;
    assert_eq!((total, alice[0]["id"].as_str()), (1, Some(ids[1].as_str())));
    assert_eq!(audit("?outcome=pass").await.0, 3);
    assert_eq!(audit("?outcome=pass&reviewer=alice").await.0, 0);
    assert_eq!(audit("?kind=media").await.0, 0);
    let (total, page) = audit("?reviewer=carol&offset=1&limit=1").await;
    assert_eq!((total, page.len()), (3, 1));
    let now = all[0]["decided_ms"].as_u64().unwrap();
    let (st, v, _) = admin(
        &s,
        Method::GET,
        &format!("/admin/review/audit?since_ms={}", now + 1),
        None,
    )
    .await;
    assert_eq!((st, v), (200, json!([])));
    for bad in [
        "?outcome=maybe",
        "?kind=video",
        "?since_ms=yesterday",
        "?limit=0",
    ] {
        let (st, _, _) = admin(&s, Method::GET, &format!("/admin/review/audit{bad}"), None).await;
        assert_eq!(st, 400, "{bad}");
    }

    // Who a token names.
    let (_, me, _) = admin(&s, Method::GET, "/admin/whoami", None).await;
    assert_eq!(me, json!({"name": null, "role": "admin"}));
    let (_, me) = as_holder(&s, ALICE, Method::GET, "/admin/whoami", None).await;
    assert_eq!(me, json!({"name": "alice", "role": "reviewer"}));

    // A text item has no file to preview.
    let (st, v, _) = admin(
        &s,
        Method::GET,
        &format!("/admin/review/items/{}/media", ids[0]),
        None,
    )
    .await;
    assert_eq!(st, 404, "{v}");

    // This hour's usage: six checks of the first app (five review, one pass).
    let (st, v, _) = admin(&s, Method::GET, "/admin/usage?span=hour", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["apps"][0]["appid"], APPID, "{v}");
    assert_eq!(
        (
            v["apps"][0]["checks"].as_u64(),
            v["apps"][0]["review"].as_u64(),
            v["apps"][0]["pass"].as_u64()
        ),
        (Some(6), Some(5), Some(1)),
        "{v}"
    );
    let (st, v, _) = admin(
        &s,
        Method::GET,
        &format!("/admin/usage/{APPID}?span=day"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["step_secs"], 3600);
    assert_eq!(v["msg_sec_check"]["review"].as_array().unwrap().len(), 24);
    let reviews: u64 = v["msg_sec_check"]["review"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(reviews, 5, "{v}");
    let (st, _, _) = admin(&s, Method::GET, "/admin/usage?span=week", None).await;
    assert_eq!(st, 400);
    let (st, _, _) = admin(&s, Method::GET, "/admin/usage/wxnosuchapp", None).await;
    assert_eq!(st, 404);
    s.shutdown().await;
}
