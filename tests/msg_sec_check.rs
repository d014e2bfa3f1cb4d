//! SPEC §3: msgSecCheck v1 and v2, every validation errcode in order, liberal parsing and the
//! verdict format.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const TEST_STRING_1: &str = "特3456书yuuo莞6543李zxcz蒜7782法fgnv级";
const TEST_STRING_2: &str = "完2347全dfji试3726测asad感3847知qwez到";

fn v2(content: &str) -> String {
    json!({"content": content, "version": 2, "scene": 2, "openid": "oUser_1-x"}).to_string()
}

#[tokio::test]
async fn v2_pass_has_the_exact_wire_format() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let v = s.check(&t, &v2("今天天气真好，一起去公园散步吧")).await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["errmsg"], "ok");
    assert!(is_rid(v["trace_id"].as_str().unwrap()), "{v}");
    assert_eq!(v["result"], json!({"suggest":"pass","label":100}));
    assert_eq!(
        v["detail"],
        json!([
            {"strategy":"content_model","errcode":0,"suggest":"pass","label":100,"prob":90},
            {"strategy":"keyword","errcode":0}
        ])
    );
    // The trace_id's first group is the (injected) time.
    let first = &v["trace_id"].as_str().unwrap()[..8];
    assert_eq!(u64::from_str_radix(first, 16).unwrap(), T0_MS / 1000);
    s.shutdown().await;
}

#[tokio::test]
async fn wechat_test_strings_are_risky_in_v1_and_v2() {
    let s = TestServer::start().await;
    let t = s.token().await;
    for text in [TEST_STRING_1, TEST_STRING_2] {
        let v = s.check(&t, &v2(text)).await;
        assert_eq!(v["errcode"], 0);
        assert_eq!(v["result"]["suggest"], "risky", "{v}");
        assert_eq!(v["detail"][0]["strategy"], "content_model");
        assert_eq!(v["detail"][0]["suggest"], "risky");
        // Built-in words are not revealed by default.
        assert!(v["detail"][0].get("keyword").is_none(), "{v}");

        let v1 = s.check(&t, &json!({"content": text}).to_string()).await;
        assert_err(&v1, 87014);
        assert!(
            v1["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("risky content rid: ")
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn v2_verdicts_from_the_builtin_lexicon() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let cases = [
        ("周末一起去网络赌博吧", "risky", 20006),
        ("他说喜欢赌博", "review", 20006),
        ("你这个傻 逼", "risky", 20003),
        ("ＦＵＣＫ this", "risky", 20003),
        ("他说话像个脑残", "review", 20003),
        ("the grass is always greener", "pass", 100),
    ];
    for (text, suggest, label) in cases {
        let v = s.check(&t, &v2(text)).await;
        assert_eq!(
            v["result"],
            json!({"suggest":suggest,"label":label}),
            "{text}: {v}"
        );
        assert_eq!(v["detail"][0]["suggest"], suggest);
        assert_eq!(v["detail"][0]["label"], label);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn title_nickname_and_scene_1_signature_are_checked() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let base = |extra: Value, scene: i64| {
        let mut b = json!({"content":"你好","version":2,"scene":scene,"openid":"o1"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b.to_string()
    };
    let risky = |v: &Value| v["result"]["suggest"] == "risky";
    assert!(risky(
        &s.check(&t, &base(json!({"title":"网络赌博"}), 3)).await
    ));
    assert!(risky(
        &s.check(&t, &base(json!({"nickname":"冰毒哥"}), 2)).await
    ));
    assert!(risky(
        &s.check(&t, &base(json!({"signature":"出售枪支"}), 1)).await
    ));
    // Signature only counts on profiles (scene 1).
    let v = s.check(&t, &base(json!({"signature":"出售枪支"}), 2)).await;
    assert_eq!(v["result"]["suggest"], "pass", "{v}");
    s.shutdown().await;
}

#[tokio::test]
async fn liberal_parsing() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let bodies = [
        // version and scene as strings, fields in any order, unknown fields ignored
        r#"{"openid":"o1","scene":"2","version":"2","content":"赌博","unknown":{"a":[1,2]}}"#,
        // \u escapes for 赌博
        r#"{"content":"\u8d4c\u535a","version":2,"scene":2,"openid":"o1"}"#,
        // optional fields null or empty
        r#"{"content":"赌博","version":2,"scene":2,"openid":"o1","title":null,"nickname":"","signature":null}"#,
        // whitespace around the document
        "\n  {\"content\":\"赌博\",\"version\":2,\"scene\":2,\"openid\":\"o1\"}  \n",
    ];
    for body in bodies {
        let v = s.check(&t, body).await;
        assert_eq!(v["errcode"], 0, "{body}: {v}");
        assert_eq!(v["result"]["label"], 20006, "{body}: {v}");
    }
    // No Content-Type header at all (reqwest sends none for a plain string body).
    let resp = s
        .client
        .post(s.url(&format!("/wxa/msg_sec_check?access_token={t}")))
        .body(v2("你好"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("content-type").is_some());
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn validation_errcodes_name_the_field() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let long = "字".repeat(2501);
    let cases: Vec<(String, i64, &str)> = vec![
        ("".into(), 44002, "empty post data"),
        ("   ".into(), 44002, "empty post data"),
        ("{\"content\":".into(), 47001, "not valid JSON"),
        ("[1,2]".into(), 47001, "JSON object"),
        (
            r#"{"version":2,"scene":2,"openid":"o1"}"#.into(),
            47001,
            "`content` is required",
        ),
        (
            r#"{"content":"","version":2,"scene":2,"openid":"o1"}"#.into(),
            47001,
            "`content` is required",
        ),
        (
            r#"{"content":42,"version":2,"scene":2,"openid":"o1"}"#.into(),
            47001,
            "`content` must be a string",
        ),
        (
            json!({"content":long,"version":2,"scene":2,"openid":"o1"}).to_string(),
            47001,
            "longer than 2500",
        ),
        (
            r#"{"content":"a","title":[1],"version":2,"scene":2,"openid":"o1"}"#.into(),
            47001,
            "`title`",
        ),
        (
            r#"{"content":"a","version":2,"scene":{},"openid":"o1"}"#.into(),
            47001,
            "`scene` must be a number",
        ),
        (
            r#"{"content":"a","version":2,"scene":2,"openid":7}"#.into(),
            47001,
            "`openid` must be a string",
        ),
        (
            r#"{"content":"a","content":"b","version":2,"scene":2,"openid":"o1"}"#.into(),
            47001,
            "duplicate",
        ),
        (
            r#"{"content":"a","version":2,"openid":"o1"}"#.into(),
            40129,
            "`scene` is required",
        ),
        (
            r#"{"content":"a","version":2,"scene":0,"openid":"o1"}"#.into(),
            40129,
            "1, 2, 3 or 4",
        ),
        (
            r#"{"content":"a","version":2,"scene":5,"openid":"o1"}"#.into(),
            40129,
            "1, 2, 3 or 4",
        ),
        (
            r#"{"content":"a","version":2,"scene":"abc","openid":"o1"}"#.into(),
            40129,
            "1, 2, 3 or 4",
        ),
        (
            r#"{"content":"a","version":2,"scene":1.5,"openid":"o1"}"#.into(),
            40129,
            "1, 2, 3 or 4",
        ),
        (
            r#"{"content":"a","version":2,"scene":2}"#.into(),
            40003,
            "`openid` is required",
        ),
        (
            r#"{"content":"a","version":2,"scene":2,"openid":""}"#.into(),
            40003,
            "`openid` is required",
        ),
        (
            json!({"content":"a","version":2,"scene":2,"openid":"o".repeat(129)}).to_string(),
            40003,
            "128 bytes",
        ),
        (
            r#"{"content":"a","version":2,"scene":2,"openid":"o@x"}"#.into(),
            40003,
            "letters, digits",
        ),
        // Order: format before scene before openid.
        (
            r#"{"version":2,"scene":9,"openid":"@"}"#.into(),
            47001,
            "`content` is required",
        ),
        (
            r#"{"content":"a","version":2,"scene":9,"openid":"@"}"#.into(),
            40129,
            "scene",
        ),
    ];
    for (body, code, needle) in cases {
        let v = s.check(&t, &body).await;
        assert_err(&v, code);
        let msg = v["errmsg"].as_str().unwrap();
        assert!(msg.contains(needle), "{body:.80}: {msg}");
    }
    // Exactly 2500 characters is fine.
    let ok = json!({"content":"字".repeat(2500),"version":2,"scene":2,"openid":"o1"}).to_string();
    assert_eq!(s.check(&t, &ok).await["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_and_no_echo_of_input() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let (status, v) = s
        .post(
            &format!("/wxa/msg_sec_check?access_token={t}"),
            b"{\"content\":\"\xff\xfe\",\"version\":2}".to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    assert_err(&v, 47001);
    assert!(v["errmsg"].as_str().unwrap().contains("UTF-8"));
    // Values from the request never come back in an errmsg.
    let marker = "SECRET_MARKER_VALUE";
    for body in [
        json!({"content":marker,"version":2,"scene":marker,"openid":"o1"}),
        json!({"content":marker,"version":2,"scene":2,"openid":marker.to_owned() + "@"}),
        json!({"content":[marker],"version":2,"scene":2,"openid":"o1"}),
    ] {
        let v = s.check(&t, &body.to_string()).await;
        assert_ne!(v["errcode"], 0);
        assert!(!v["errmsg"].as_str().unwrap().contains(marker), "{v}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn v1_requests() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let v = s.check(&t, r#"{"content":"hello world"}"#).await;
    assert_eq!(v, json!({"errcode":0,"errmsg":"ok"}));
    // Without a version it is v1: scene and openid are not read.
    let v = s
        .check(&t, r#"{"content":"hello","scene":"junk","openid":"@@"}"#)
        .await;
    assert_eq!(v, json!({"errcode":0,"errmsg":"ok"}));
    // `"2"` is v2 as `2` is; any other version is refused, never answered as v1 (SPEC §12).
    let v = s
        .check(
            &t,
            r#"{"content":"hello","version":"2","scene":2,"openid":"o1"}"#,
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["result"]["suggest"], "pass", "a v2 answer: {v}");
    // (`null` reads as absent, as for every other field.)
    for version in ["1", r#""2.0""#, "3", r#""two""#, "true"] {
        let body = format!(r#"{{"content":"hello","version":{version}}}"#);
        let v = s.check(&t, &body).await;
        assert_err(&v, 47001);
        assert!(
            v["errmsg"].as_str().unwrap().contains("`version`"),
            "{version}: {v}"
        );
    }
    assert_err(&s.check(&t, r#"{"content":"一起来网络赌博"}"#).await, 87014);
    // review is not 87014 in v1: only risky content is refused.
    assert_eq!(s.check(&t, r#"{"content":"脑残"}"#).await["errcode"], 0);
    assert_err(&s.check(&t, r#"{"title":"x"}"#).await, 47001);
    assert_err(&s.check(&t, "").await, 44002);
    // Large v1 content (checked off the async workers) still finds a word at the end.
    let big = format!("{}网络赌博", "好".repeat(100_000));
    assert_err(
        &s.check(&t, &json!({"content": big}).to_string()).await,
        87014,
    );
    // Over 500 KB of content.
    let huge = "a".repeat(500 * 1024 + 1);
    let v = s.check(&t, &json!({"content": huge}).to_string()).await;
    assert_err(&v, 47001);
    assert!(v["errmsg"].as_str().unwrap().contains("512000 bytes"));
    s.shutdown().await;
}

#[tokio::test]
async fn get_is_43002() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let (status, v) = s.get(&format!("/wxa/msg_sec_check?access_token={t}")).await;
    assert_eq!(status, 200);
    assert_err(&v, 43002);
    s.shutdown().await;
}

#[tokio::test]
async fn the_token_is_judged_before_the_body_and_the_method_before_the_token() {
    let s = TestServer::start().await;
    // A bad token with a body announced far over the limit: the token answers, not the size.
    for (query, want) in [("", 41001), ("?access_token=nonsense", 40014)] {
        let head = format!(
            "POST /wxa/msg_sec_check{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n"
        );
        let reply = raw_exchange(s.api, head.as_bytes(), Duration::from_secs(10)).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(&format!("\"errcode\":{want}")), "{reply}");
    }
    // A valid token with a Content-Length that is not a number: 400, before any body is read.
    let t = s.token().await;
    let head = format!(
        "POST /wxa/msg_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n"
    );
    let reply = raw_exchange(s.api, head.as_bytes(), Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // The method comes first of all: a GET without a token is 43002.
    let (status, v) = s.get("/wxa/msg_sec_check").await;
    assert_eq!(status, 200);
    assert_err(&v, 43002);
    s.shutdown().await;
}

#[tokio::test]
async fn reveal_setting_exposes_builtin_words() {
    let s = TestServer::start_with(&format!(
        "[engine]\nreveal_builtin_words = true\n{}",
        default_config()
    ))
    .await;
    let t = s.token().await;
    let v = s.check(&t, &v2("我们去赌 博")).await;
    assert_eq!(v["detail"][0]["keyword"], "赌博", "{v}");
    s.shutdown().await;
}

/// Mangled bodies (random byte flips, truncations and splices of a valid body) always get a
/// JSON answer with an errcode: never a 5xx, never a dropped connection.
#[tokio::test]
async fn mangled_bodies_never_get_a_server_error() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let valid = r#"{"content":"一起去赌博","version":2,"scene":2,"openid":"o1","title":"标题","nickname":null}"#.as_bytes();
    // A fixed-seed xorshift keeps the cases reproducible.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..400 {
        let mut body = valid.to_vec();
        match i % 4 {
            0 => {
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % body.len();
                    body[at] = next() as u8;
                }
            }
            1 => body.truncate((next() as usize) % body.len()),
            2 => {
                let at = (next() as usize) % body.len();
                let junk: Vec<u8> = (0..next() % 16).map(|_| next() as u8).collect();
                body.splice(at..at, junk);
            }
            _ => {
                let at = (next() as usize) % body.len();
                body.drain(at..(at + (next() as usize) % 8).min(body.len()));
            }
        }
        let (status, v) = s
            .post(
                &format!("/wxa/msg_sec_check?access_token={t}"),
                body.clone(),
            )
            .await;
        assert_eq!(status, 200, "{:?}", String::from_utf8_lossy(&body));
        assert!(v["errcode"].is_i64(), "{v}");
        if v["errcode"] != 0 {
            assert_err(&v, v["errcode"].as_i64().unwrap());
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn operator_lexicon_files_extend_the_builtin_lexicon() {
    let dir = std::env::temp_dir().join(format!("modgate-lex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("extra.txt");
    std::fs::write(&path, "# operator words\n紫色药丸\trisky\t88\n").unwrap();
    let config = format!(
        "[[engine.lexicon]]\npath = \"{}\"\nlabel = 20006\n{}",
        path.display(),
        default_config()
    );
    let s = TestServer::start_with(&config).await;
    let t = s.token().await;
    let v = s.check(&t, &v2("出售紫.色.药.丸")).await;
    assert_eq!(
        v["detail"][0],
        json!({"strategy":"content_model","errcode":0,"suggest":"risky","label":20006,"prob":88})
    );
    s.shutdown().await;

    // A broken file stops the gateway from starting, naming the file and line.
    std::fs::write(&path, "紫色药丸 risky 88\n").unwrap();
    let config = modgate::config::Config::from_toml(&format!(
        "[[engine.lexicon]]\npath = \"{}\"\nlabel = 20006\n",
        path.display()
    ))
    .unwrap();
    let err = modgate::build(config, modgate::Options::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("extra.txt:1"), "{err}");
}
