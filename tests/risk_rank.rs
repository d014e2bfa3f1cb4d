//! `POST /wxa/getuserriskrank` (SPEC §10): its wire format and every errcode, the operators'
//! black and white lists through the admin API, and the model's signals end to end.
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn rank(s: &TestServer, token: &str, body: Value) -> Value {
    let (status, v) = s
        .post(
            &format!("/wxa/getuserriskrank?access_token={token}"),
            body.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn ask(openid: &str, scene: u8, ip: &str) -> Value {
    json!({"appid": APPID, "openid": openid, "scene": scene, "client_ip": ip})
}

async fn visit(s: &TestServer, token: &str, openid: &str) {
    let (_, v) = s
        .post(
            &format!("/wxa/visit/report?access_token={token}"),
            json!({ "openid": openid }).to_string(),
        )
        .await;
    assert_eq!(v["recorded"], 1, "{v}");
}

#[tokio::test]
async fn the_answer_has_the_platform_shape_and_every_error_has_its_code() {
    let config = default_config().replace("enforce = false", "enforce = true");
    let s = TestServer::start_with(&config).await;
    let t = s.token().await;
    visit(&s, &t, "oFresh").await;

    let v = rank(&s, &t, ask("oFresh", 2, "10.1.2.3")).await;
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["errcode", "errmsg", "risk_rank", "unoin_id"], "{v}");
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["errmsg"], "getuserriskrank succ");
    assert_eq!(v["risk_rank"], 0);
    assert!(v["unoin_id"].as_u64().is_some(), "{v}");
    let again = rank(&s, &t, ask("oFresh", 2, "10.1.2.3")).await;
    assert_ne!(
        again["unoin_id"], v["unoin_id"],
        "each lookup has its own id"
    );

    // Token errors come first.
    let (_, v) = s.post("/wxa/getuserriskrank", "{}").await;
    assert_eq!(v["errcode"], 41001);
    let (_, v) = s.post("/wxa/getuserriskrank?access_token=nope", "{}").await;
    assert!(matches!(v["errcode"].as_i64(), Some(40001 | 40014)), "{v}");
    let (status, v) = s
        .get(&format!("/wxa/getuserriskrank?access_token={t}"))
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(43002)), "{v}");

    let cases: Vec<(String, i64, &str)> = vec![
        (String::new(), 44002, "empty"),
        ("not json".into(), 47001, "JSON"),
        ("[1]".into(), 47001, "object"),
        (
            json!({"openid":"o","scene":2,"client_ip":"1.1.1.1"}).to_string(),
            47001,
            "`appid` is required",
        ),
        (
            json!({"appid":APPID2,"openid":"o","scene":2,"client_ip":"1.1.1.1"}).to_string(),
            47001,
            "token's app",
        ),
        (
            json!({"appid":APPID,"openid":"o","scene":2}).to_string(),
            47001,
            "`client_ip` is required",
        ),
        (
            json!({"appid":APPID,"openid":"o","scene":2,"client_ip":"1.1.1"}).to_string(),
            47001,
            "IP address",
        ),
        (
            json!({"appid":APPID,"openid":"o","scene":2,"client_ip":"1.1.1.1","mobile_no":138})
                .to_string(),
            47001,
            "mobile_no",
        ),
        (
            json!({"appid":APPID,"openid":"o","scene":2,"client_ip":"1.1.1.1","is_test":"yes"})
                .to_string(),
            47001,
            "is_test",
        ),
        (
            json!({"appid":APPID,"openid":"o","scene":"2","client_ip":"1.1.1.1"}).to_string(),
            47001,
            "number",
        ),
        (
            json!({"appid":APPID,"openid":"o","scene":3,"client_ip":"1.1.1.1"}).to_string(),
            40129,
            "0, 1 or 2",
        ),
        (
            json!({"appid":APPID,"openid":"o","client_ip":"1.1.1.1"}).to_string(),
            40129,
            "required",
        ),
        (
            json!({"appid":APPID,"scene":2,"client_ip":"1.1.1.1"}).to_string(),
            40003,
            "required",
        ),
        (
            json!({"appid":APPID,"openid":"a b","scene":2,"client_ip":"1.1.1.1"}).to_string(),
            40003,
            "letters",
        ),
        (
            json!({"appid":APPID,"openid":"oStale","scene":2,"client_ip":"1.1.1.1"}).to_string(),
            61010,
            "expired",
        ),
    ];
    for (body, code, says) in cases {
        let (status, v) = s
            .post(
                &format!("/wxa/getuserriskrank?access_token={t}"),
                body.clone(),
            )
            .await;
        assert_eq!(status, 200, "{body}: {v}");
        assert_eq!(v["errcode"], code, "{body}: {v}");
        assert!(v["errmsg"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    // `is_test` skips the visit check; the missing visit is still a signal.
    let mut test = ask("oStale", 2, "1.1.1.1");
    test["is_test"] = json!(true);
    let v = rank(&s, &t, test).await;
    assert_eq!(
        (v["errcode"].as_i64(), v["risk_rank"].as_i64()),
        (Some(0), Some(1)),
        "{v}"
    );
    // A visit that has aged out is no visit.
    s.clock.advance(Duration::from_secs(121 * 60));
    let (_, v) = s
        .post(
            &format!("/wxa/getuserriskrank?access_token={}", s.token().await),
            ask("oFresh", 2, "10.1.2.3").to_string(),
        )
        .await;
    assert_eq!(v["errcode"], 61010, "{v}");

    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains(r#"modgate_risk_lookups_total{rank="0",scene="2",source="model"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"modgate_api_requests_total{api="get_user_risk_rank",errcode="61010"} 2"#)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn listed_users_get_the_operators_rank_over_the_model() {
    let dir = fresh_dir("risk-lists");
    let config = format!(
        "{}\n[state]\ndata_dir = \"{}\"\n",
        default_config(),
        dir.display()
    );
    let s = TestServer::start_with(&config).await;
    let t = s.token().await;
    let lists = format!("/admin/apps/{APPID}/risk-lists");
    let entries = json!([
        {"list": "black", "type": "ip", "value": "10.9.9.9", "note": "proxy farm"},
        {"list": "white", "type": "openid", "value": "oStaff", "note": "our tester"},
        {"list": "black", "type": "mobile", "value": "13800000000", "rank": 3},
    ]);
    let (status, v, _) = admin(
        &s,
        reqwest::Method::PUT,
        &lists,
        Some(("application/json", entries.to_string())),
    )
    .await;
    assert_eq!((status, v["count"].as_i64()), (200, Some(3)), "{v}");

    // Two risky texts give oStaff a model rank of 2; the white list still answers 0.
    for _ in 0..2 {
        let v = s
            .check(
                &t,
                &json!({"content":"周末一起去网络赌博吧","version":2,"scene":2,"openid":"oStaff"})
                    .to_string(),
            )
            .await;
        assert_eq!(v["result"]["suggest"], "risky");
    }
    for who in ["oStaff", "oOther"] {
        visit(&s, &t, who).await;
    }
    assert_eq!(
        rank(&s, &t, ask("oStaff", 2, "10.9.9.9")).await["risk_rank"],
        0
    );
    let (_, why, _) = admin(
        &s,
        reqwest::Method::GET,
        &format!("/admin/apps/{APPID}/users/oStaff/risk?client_ip=10.9.9.9"),
        None,
    )
    .await;
    assert_eq!(why["decided_by"], "list", "{why}");
    assert_eq!(why["model_rank"], 2, "{why}");
    assert_eq!(why["signals"]["risky_verdicts"], 2, "{why}");
    assert_eq!(why["list_entry"]["note"], "our tester");
    // The black-listed IP decides for anyone else; the mobile number beats the IP.
    assert_eq!(
        rank(&s, &t, ask("oOther", 2, "10.9.9.9")).await["risk_rank"],
        4
    );
    let mut with_mobile = ask("oOther", 2, "10.9.9.9");
    with_mobile["mobile_no"] = json!("13800000000");
    assert_eq!(rank(&s, &t, with_mobile).await["risk_rank"], 3);
    assert_eq!(
        rank(&s, &t, ask("oOther", 2, "10.9.9.10")).await["risk_rank"],
        0
    );

    // Add (replacing by type and value), list, filter, export and remove.
    let (status, v, _) = admin(
        &s,
        reqwest::Method::POST,
        &lists,
        Some((
            "application/json",
            json!({"list":"black","type":"openid","value":"oOther","rank":2}).to_string(),
        )),
    )
    .await;
    assert_eq!((status, v["count"].as_i64()), (200, Some(4)), "{v}");
    assert_eq!(
        rank(&s, &t, ask("oOther", 2, "10.9.9.10")).await["risk_rank"],
        2
    );
    let (_, black, _) = admin(
        &s,
        reqwest::Method::GET,
        &format!("{lists}?list=black"),
        None,
    )
    .await;
    assert_eq!(black.as_array().unwrap().len(), 3, "{black}");
    let (status, _, _) = admin(
        &s,
        reqwest::Method::DELETE,
        &format!("{lists}/openid/oOther"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        rank(&s, &t, ask("oOther", 2, "10.9.9.10")).await["risk_rank"],
        0
    );
    let (status, _, _) = admin(
        &s,
        reqwest::Method::DELETE,
        &format!("{lists}/openid/oOther"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = admin(
        &s,
        reqwest::Method::DELETE,
        &format!("{lists}/email/x"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (_, _, csv) = admin(
        &s,
        reqwest::Method::GET,
        &format!("{lists}?format=csv"),
        None,
    )
    .await;
    assert!(csv.starts_with("list,type,value,rank,note\n"), "{csv}");
    assert!(csv.contains("black,ip,10.9.9.9,4,proxy farm"), "{csv}");

    // A bad entry is refused by number, and nothing changes.
    let bad = json!([{"list":"black","type":"ip","value":"1.2.3.4"},{"list":"black","type":"ip","value":"nope"}]);
    let (status, v, _) = admin(
        &s,
        reqwest::Method::PUT,
        &lists,
        Some(("application/json", bad.to_string())),
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("entry 2"), "{v}");
    // Bulk import of the exported CSV: the same lists.
    let (status, v, _) = admin(
        &s,
        reqwest::Method::PUT,
        &lists,
        Some(("text/csv", csv.clone())),
    )
    .await;
    assert_eq!((status, v["count"].as_i64()), (200, Some(3)), "{v}");
    let (status, _, _) = admin(
        &s,
        reqwest::Method::GET,
        "/admin/apps/wxnosuchapp0000000/risk-lists",
        None,
    )
    .await;
    assert_eq!(status, 404);
    s.shutdown().await;

    // Persisted: a restarted gateway answers from the same lists.
    let s = TestServer::start_with(&config).await;
    let t = s.token().await;
    assert_eq!(
        rank(&s, &t, ask("oAnyone", 2, "10.9.9.9")).await["risk_rank"],
        4
    );
    let (_, _, again) = admin(
        &s,
        reqwest::Method::GET,
        &format!("{lists}?format=csv"),
        None,
    )
    .await;
    assert_eq!(again, csv);
    s.shutdown().await;
}

#[tokio::test]
async fn risky_posts_raise_the_rank_and_it_falls_back_after_the_decay() {
    let s = TestServer::start_with(&format!(
        "{}\n[risk]\nhistory_half_life_secs = 600\n",
        default_config()
    ))
    .await;
    let t = s.token().await;
    visit(&s, &t, "oTroll").await;
    let mut ranks = vec![
        rank(&s, &t, ask("oTroll", 2, "10.0.0.1")).await["risk_rank"]
            .as_i64()
            .unwrap(),
    ];
    for _ in 0..4 {
        s.check(
            &t,
            &json!({"content":"你这个傻 逼","version":2,"scene":2,"openid":"oTroll"}).to_string(),
        )
        .await;
        ranks.push(
            rank(&s, &t, ask("oTroll", 2, "10.0.0.1")).await["risk_rank"]
                .as_i64()
                .unwrap(),
        );
    }
    assert_eq!(ranks, [0, 1, 2, 2, 3]);
    let (_, why, _) = admin(
        &s,
        reqwest::Method::GET,
        &format!("/admin/apps/{APPID}/users/oTroll/risk"),
        None,
    )
    .await;
    assert_eq!(why["decided_by"], "model");
    assert_eq!(why["risk_rank"], 3);
    assert_eq!(why["signals"]["points"], json!({"history": 3}), "{why}");
    // One half-life later: 4 → 2, rank 2; after five half-lives, back to 0.
    s.clock.advance(Duration::from_secs(600));
    assert_eq!(
        rank(&s, &t, ask("oTroll", 2, "10.0.0.1")).await["risk_rank"],
        2
    );
    s.clock.advance(Duration::from_secs(4 * 600));
    visit(&s, &t, "oTroll").await;
    assert_eq!(
        rank(&s, &t, ask("oTroll", 2, "10.0.0.1")).await["risk_rank"],
        0
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_registrations_from_one_ip_raises_the_rank_for_scene_0() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let mut ranks = Vec::new();
    for i in 0..22 {
        let openid = format!("oNew{i:02}");
        visit(&s, &t, &openid).await;
        ranks.push(
            rank(&s, &t, ask(&openid, 0, "203.0.113.7")).await["risk_rank"]
                .as_i64()
                .unwrap(),
        );
    }
    // From the fifth registration on, 1; from the twentieth, 2.
    let expected: Vec<i64> = (1..=22)
        .map(|n| {
            if n >= 20 {
                2
            } else if n >= 5 {
                1
            } else {
                0
            }
        })
        .collect();
    assert_eq!(ranks, expected);
    // Another address, or another scene from the same one, is not part of the burst.
    visit(&s, &t, "oElse").await;
    assert_eq!(
        rank(&s, &t, ask("oElse", 0, "203.0.113.8")).await["risk_rank"],
        0
    );
    assert_eq!(
        rank(&s, &t, ask("oElse", 2, "203.0.113.7")).await["risk_rank"],
        0
    );
    let (_, why, _) = admin(
        &s,
        reqwest::Method::GET,
        &format!("/admin/apps/{APPID}/users/oNew21/risk?scene=0&client_ip=203.0.113.7"),
        None,
    )
    .await;
    assert_eq!(why["signals"]["registrations_from_ip"], 22, "{why}");
    assert_eq!(
        why["signals"]["points"]["registrations_from_ip"], 2,
        "{why}"
    );
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains(r#"modgate_risk_lookups_total{rank="1",scene="0",source="model"} 15"#),
        "{metrics}"
    );
    s.shutdown().await;
}
