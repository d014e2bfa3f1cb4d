//! SPEC §13: pass-through mode against a stand-in upstream on loopback that issues tokens and
//! login answers, checks tokens, and echoes every other call.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

/// The platform as the tests need it.
#[derive(Default)]
struct Platform {
    /// Tokens issued: token → appid.
    tokens: Mutex<HashMap<String, String>>,
    issued: AtomicUsize,
    token_checks: AtomicUsize,
}

impl Platform {
    /// Issues a token to `appid` without the gateway seeing it.
    fn issue(&self, appid: &str) -> String {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let token = format!("PLATFORM_{n}_{appid}_token-with_chars");
        self.tokens
            .lock()
            .unwrap()
            .insert(token.clone(), appid.to_owned());
        token
    }

    fn answer(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let q: HashMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let json = |v: Value| (200, v.to_string().into_bytes());
        match uri.path() {
            "/cgi-bin/token" => match (q.get("appid"), q.get("secret")) {
                (Some(appid), Some(secret)) if secret.len() == 32 => {
                    json(json!({"access_token": self.issue(appid), "expires_in": 7200}))
                }
                _ => json(json!({"errcode": 40125, "errmsg": "invalid appsecret"})),
            },
            "/cgi-bin/stable_token" => {
                let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                match b["appid"].as_str() {
                    Some(appid) => {
                        json(json!({"access_token": self.issue(appid), "expires_in": 7200}))
                    }
                    None => json(json!({"errcode": 41002, "errmsg": "appid missing"})),
                }
            }
            "/sns/jscode2session" => json(json!({
                "openid": format!("o-{}", q.get("js_code").map_or("", String::as_str)),
                "session_key": "c2Vzc2lvbg==",
            })),
            "/cgi-bin/account/getaccountbasicinfo" => {
                self.token_checks.fetch_add(1, Ordering::Relaxed);
                let token = q.get("access_token").cloned().unwrap_or_default();
                match self.tokens.lock().unwrap().get(&token) {
                    Some(appid) => json(json!({"errcode": 0, "errmsg": "ok", "appid": appid})),
                    None => json(
                        json!({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}),
                    ),
                }
            }
            "/blob" => (
                200,
                vec![b'z'; q.get("n").and_then(|n| n.parse().ok()).unwrap_or(0)],
            ),
            _ => json(json!({
                "echo": {
                    "method": method.as_str(),
                    "path": uri.path(),
                    "query": uri.query(),
                    "content_type": headers.get("content-type").map(|v| v.to_str().unwrap()),
                    "private": headers.get("x-private").is_some(),
                    "host": headers.get("host").map(|v| v.to_str().unwrap()),
                    "body_len": body.len(),
                    "body_sha1_prefix": body.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>(),
                }
            })),
        }
    }
}

/// Serves the stand-in platform on a loopback port; `/slow` answers after 30 s.
async fn start_platform(platform: Arc<Platform>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let platform = Arc::clone(&platform);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let platform = Arc::clone(&platform);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        if parts.uri.path() == "/slow" {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        let (status, bytes) =
                            platform.answer(&parts.method, &parts.uri, &parts.headers, &body);
                        let mut resp = Response::new(Full::new(Bytes::from(bytes)));
                        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        resp.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        resp.headers_mut()
                            .insert("x-platform", "stand-in".parse().unwrap());
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn config(upstream: &str, extra: &str) -> String {
    default_config().replace("[limits]\nenforce = false\n", "[limits]\nenforce = true\n")
        + &format!(
            "\n[upstream]\nurl = \"{upstream}\"\ntimeout_secs = 1\nconnect_timeout_secs = 1\n{extra}\n"
        )
}

async fn get_json(s: &TestServer, path: &str) -> Value {
    s.get(path).await.1
}

#[tokio::test]
async fn an_sdk_uses_forwarded_apis_and_content_security_with_one_platform_token() {
    let platform = Arc::new(Platform::default());
    let up = start_platform(Arc::clone(&platform)).await;
    let s = TestServer::start_with(&config(&format!("http://{up}"), "")).await;
    // The token comes from the platform, through the gateway.
    let v = get_json(
        &s,
        &format!("/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"),
    )
    .await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("PLATFORM_"), "{v}");
    assert_eq!(v["expires_in"], 7200);
    // A forwarded API: method, path, query and body arrive as sent; hop-by-hop headers do not.
    let body = json!({"touser": "o-1", "msgtype": "text", "text": {"content": "hi"}}).to_string();
    let resp = s
        .client
        .post(s.url(&format!(
            "/cgi-bin/message/custom/send?access_token={token}&x=1%202"
        )))
        .header("content-type", "application/json")
        .header("connection", "x-private")
        .header("x-private", "1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-platform"], "stand-in");
    let echo: Value = json_of(resp).await;
    assert_eq!(echo["echo"]["method"], "POST");
    assert_eq!(echo["echo"]["path"], "/cgi-bin/message/custom/send");
    assert_eq!(
        echo["echo"]["query"],
        format!("access_token={token}&x=1%202")
    );
    assert_eq!(echo["echo"]["content_type"], "application/json");
    assert_eq!(echo["echo"]["private"], false);
    assert_eq!(echo["echo"]["host"], up.to_string());
    assert_eq!(echo["echo"]["body_len"], body.len());
    // msgSecCheck with the platform's token: the user has not logged in yet.
    let check =
        json!({"content": "hello", "version": 2, "scene": 2, "openid": "o-code-1"}).to_string();
    assert_err(&s.check(&token, &check).await, 61010);
    // The user logs in through the gateway: the login answer's openid counts as a visit.
    let login = get_json(&s, &format!("/sns/jscode2session?appid={APPID}&secret={SECRET}&js_code=code-1&grant_type=authorization_code")).await;
    assert_eq!(login["openid"], "o-code-1");
    let v = s.check(&token, &check).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["result"]["suggest"], "pass");
    // The token was learned, never checked.
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 0);
    // stable_token is forwarded and learned too.
    let (_, st) = s
        .post(
            "/cgi-bin/stable_token",
            json!({"grant_type": "client_credential", "appid": APPID2, "secret": SECRET2})
                .to_string(),
        )
        .await;
    let stable = st["access_token"].as_str().unwrap();
    let (_, q) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={stable}"),
            r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
        )
        .await;
    assert_eq!(q["errcode"], 0, "{q}");
    // A second /cgi-bin/token supersedes the first after the platform's five minutes.
    let v = get_json(
        &s,
        &format!("/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"),
    )
    .await;
    let newer = v["access_token"].as_str().unwrap().to_owned();
    s.clock.advance(Duration::from_secs(299));
    assert_eq!(s.check(&token, &check).await["errcode"], 0);
    s.clock.advance(Duration::from_secs(1));
    // Forgotten, so checked with the platform (which in this stand-in still knows it).
    assert_eq!(s.check(&token, &check).await["errcode"], 0);
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 1);
    assert_eq!(s.check(&newer, &check).await["errcode"], 0);
    // Forwarded traffic is counted by the upstream's status.
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("modgate_upstream_requests_total{status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("modgate_upstream_login_visits_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("modgate_api_requests_total{api=\"forwarded\",errcode=\"0\"}"),
        "{metrics}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn tokens_not_seen_are_checked_once_and_remembered() {
    let platform = Arc::new(Platform::default());
    let up = start_platform(Arc::clone(&platform)).await;
    let s = TestServer::start_with(&config(&format!("http://{up}"), "")).await;
    let direct = platform.issue(APPID2);
    let check = json!({"content": "hello"}).to_string();
    for _ in 0..3 {
        assert_eq!(s.check(&direct, &check).await["errcode"], 0);
    }
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 1);
    // A token the platform refuses: its errcode and errmsg, and it is not asked again at once.
    for _ in 0..3 {
        let v = s.check("not-a-platform-token", &check).await;
        assert_err(&v, 40001);
        assert!(
            v["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("invalid credential"),
            "{v}"
        );
    }
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 2);
    // A platform token of an app not registered here is 40001.
    let foreign = platform.issue("wx1111111111111111");
    assert_err(&s.check(&foreign, &check).await, 40001);
    // No token at all is still 41001, without asking anyone.
    assert_err(&s.check("", &check).await, 41001);
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 3);
    s.shutdown().await;
}

#[tokio::test]
async fn bodies_stream_both_ways_within_the_limits() {
    let platform = Arc::new(Platform::default());
    let up = start_platform(Arc::clone(&platform)).await;
    let s = TestServer::start_with(&config(
        &format!("http://{up}"),
        "max_request_bytes = 4000000\nmax_response_bytes = 3000000",
    ))
    .await;
    // 3 MB up, streamed (the gateway's own body limit is 1 MiB).
    let big = vec![7u8; 3_000_000];
    let resp = s
        .client
        .post(s.url("/cgi-bin/media/upload?type=image"))
        .body(big)
        .send()
        .await
        .unwrap();
    let echo: Value = json_of(resp).await;
    assert_eq!(echo["echo"]["body_len"], 3_000_000);
    // Over the request limit: 413 before anything is sent.
    let resp = s
        .client
        .post(s.url("/cgi-bin/media/upload?type=image"))
        .body(vec![7u8; 4_000_001])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // 2.9 MB down, intact; over the response limit: -1.
    let resp = s.client.get(s.url("/blob?n=2900000")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 2_900_000);
    let v = get_json(&s, "/blob?n=3000001").await;
    assert_err(&v, -1);
    s.shutdown().await;
}

#[tokio::test]
async fn an_upstream_down_slow_or_garbled_is_a_platform_error_in_time() {
    // Down: nothing listens. The port stays bound (without listening) for the whole test, so
    // no other test's server can take it meanwhile, and connections to it are refused.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = reserved.local_addr().unwrap();
    // Garbage: not HTTP at all.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let Ok((mut stream, _)) = garbage.accept().await else {
                continue;
            };
            let _ = stream.write_all(b"\x00\x01 this is not HTTP\r\n\r\n").await;
        }
    });
    let platform = Arc::new(Platform::default());
    let slow = start_platform(platform).await;
    for (upstream, path, broken) in [
        (
            format!("http://{closed}"),
            "/cgi-bin/user/info?access_token=x".to_owned(),
            true,
        ),
        (
            format!("http://{garbage_addr}"),
            "/cgi-bin/user/info?access_token=x".to_owned(),
            true,
        ),
        (format!("http://{slow}"), "/slow".to_owned(), false),
    ] {
        let s = TestServer::start_with(&config(&upstream, "")).await;
        let started = Instant::now();
        let (status, v) = s.get(&path).await;
        assert_eq!(status, 200, "{upstream}{path}: {v}");
        assert_err(&v, -1);
        assert!(
            v["errmsg"].as_str().unwrap().starts_with("system error"),
            "{v}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{upstream}{path}: {:?}",
            started.elapsed()
        );
        // Content-security calls with an unknown token need the upstream too: -1 as well when
        // it is broken.
        if broken {
            let check = json!({"content": "hello"}).to_string();
            assert_err(&s.check("unknown-token", &check).await, -1);
        }
        let metrics = s.metrics_text().await;
        assert!(
            metrics.contains("modgate_upstream_requests_total{status=\"error\"}")
                || metrics.contains("modgate_upstream_requests_total{status=\"timeout\"}"),
            "{metrics}"
        );
        s.shutdown().await;
    }
}

#[tokio::test]
async fn without_an_upstream_unknown_paths_stay_404() {
    let s = TestServer::start().await;
    let (status, v) = s.get("/cgi-bin/user/info?access_token=x").await;
    assert_eq!(status, 404, "{v}");
    s.shutdown().await;
}

#[tokio::test]
async fn no_secret_or_token_reaches_the_log() {
    let platform = Arc::new(Platform::default());
    let up = start_platform(Arc::clone(&platform)).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = fresh_dir("passthrough-log");
    let write = |name: &str, upstream: &str| {
        let path = dir.join(name);
        let config = config(upstream, "")
            .replace("[admin]\n", "[admin]\nlisten = \"127.0.0.1:0\"\n")
            + &format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[state]\ndata_dir = \"{}\"\n",
                dir.join(name).with_extension("data").display()
            );
        std::fs::write(&path, config).unwrap();
        path
    };
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (name, upstream) in [
        ("up.toml", format!("http://{up}")),
        ("down.toml", format!("http://{closed}")),
    ] {
        let (process, api, log) =
            start_process_logged(&write(name, &upstream), &[("RUST_LOG", "debug")]);
        let token_url = format!(
            "http://{api}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
        );
        let v: Value = json_of(client.get(&token_url).send().await.unwrap()).await;
        let token = v["access_token"]
            .as_str()
            .unwrap_or("PLATFORM_unissued_token")
            .to_owned();
        for url in [
            format!("http://{api}/cgi-bin/user/info?access_token={token}&openid=o1"),
            format!(
                "http://{api}/sns/jscode2session?appid={APPID}&secret={SECRET}&js_code=c&grant_type=authorization_code"
            ),
        ] {
            client.get(&url).send().await.unwrap();
        }
        client
            .post(format!(
                "http://{api}/wxa/msg_sec_check?access_token={token}"
            ))
            .body(r#"{"content":"hello"}"#)
            .send()
            .await
            .unwrap();
        drop(process);
        std::thread::sleep(Duration::from_millis(200));
        let log = log.lock().unwrap().clone();
        assert!(
            log.contains("DEBUG") || log.contains("debug"),
            "debug logging is on: {log}"
        );
        assert!(!log.contains(SECRET), "the secret was logged: {log}");
        assert!(!log.contains(&token), "the token was logged: {log}");
        assert!(!log.contains("js_code=c"), "a login code was logged: {log}");
    }
}

#[tokio::test]
async fn made_up_tokens_cannot_flood_the_upstream() {
    let platform = Arc::new(Platform::default());
    let up = start_platform(Arc::clone(&platform)).await;
    let s = TestServer::start_with(&config(
        &format!("http://{up}"),
        "token_checks_per_second = 2",
    ))
    .await;
    let check = json!({"content": "hello"}).to_string();
    let mut answers = Vec::new();
    for i in 0..6 {
        answers.push(s.check(&format!("made-up-{i}"), &check).await["errcode"].clone());
    }
    // The burst of two is checked (and refused by the platform); the rest are -1, unasked.
    assert_eq!(answers[..2], [json!(40001), json!(40001)], "{answers:?}");
    assert!(answers[2..].iter().all(|a| *a == json!(-1)), "{answers:?}");
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 2);
    // A refused token is answered from memory, without a check.
    assert_err(&s.check("made-up-0", &check).await, 40001);
    assert_eq!(platform.token_checks.load(Ordering::Relaxed), 2);
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("modgate_upstream_token_checks_total{outcome=\"paced\"} 4"),
        "{metrics}"
    );
    s.shutdown().await;
}
