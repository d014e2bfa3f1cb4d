//! Restarts of the default (embedded) deployment keep what a tenant has spent and what it
//! retired: the day's quota counts, the month's `clear_quota` allowance, token rotations (a
//! superseded token stays refused) and visits. After a clean stop nothing is lost; after a
//! `kill -9` at most the last second (the state is written behind, every second).
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("modgate.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[state]\ndata_dir = \"{}\"\n{}",
        dir.join("data").display(),
        default_config()
            .replace("[admin]\n", "[admin]\nlisten = \"127.0.0.1:0\"\n")
            .replace(
                "[limits]\nenforce = false\n",
                "[limits]\ntext_per_day = 100\nresets_per_month = 1\n",
            )
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn client() -> reqwest::Client {
    modgate::transport::install_tls_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn post(api: SocketAddr, path: &str, body: Value) -> Value {
    let resp = client()
        .post(format!("http://{api}{path}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    json_of(resp).await
}

async fn check(api: SocketAddr, token: &str, openid: &str) -> Value {
    post(
        api,
        &format!("/wxa/msg_sec_check?access_token={token}"),
        json!({"content":"你好","version":2,"scene":2,"openid":openid}),
    )
    .await
}

async fn used(api: SocketAddr, token: &str) -> Value {
    post(
        api,
        &format!("/cgi-bin/openapi/quota/get?access_token={token}"),
        json!({"cgi_path":"/wxa/msg_sec_check"}),
    )
    .await["quota"]["used"]
        .clone()
}

async fn clear(api: SocketAddr) -> Value {
    post(
        api,
        &format!("/cgi-bin/clear_quota/v2?appid={APPID}&appsecret={SECRET}"),
        json!({}),
    )
    .await
}

/// What the first run leaves: a reset spent (the month's only one), three checks counted, a
/// visit, and three tokens of which the first is superseded. Returns the first and last tokens.
async fn spend(api: SocketAddr) -> (String, String) {
    assert_eq!(clear(api).await["errcode"], 0);
    let first = process_token(&client(), api).await;
    let _second = process_token(&client(), api).await;
    let last = process_token(&client(), api).await;
    assert_eq!(check(api, &first, "u1").await["errcode"], 40001);
    let v = post(
        api,
        &format!("/wxa/visit/report?access_token={last}"),
        json!({"openid":"u1"}),
    )
    .await;
    assert_eq!(v["recorded"], 1, "{v}");
    for _ in 0..3 {
        assert_eq!(check(api, &last, "u1").await["errcode"], 0);
    }
    assert_eq!(used(api, &last).await, 3);
    (first, last)
}

/// After the restart: all of it is still there.
async fn kept(api: SocketAddr, first: &str, last: &str) {
    assert_eq!(used(api, last).await, 3, "the day's count");
    assert_eq!(
        check(api, first, "u1").await["errcode"],
        40001,
        "the rotation"
    );
    // The visit before the restart still makes u1 fresh (no report since).
    assert_eq!(check(api, last, "u1").await["errcode"], 0, "the visit");
    assert_eq!(used(api, last).await, 4);
    assert_eq!(clear(api).await["errcode"], 48006, "the month's allowance");
}

fn signal(process: &Process, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(process: &mut Process, within: Duration) {
    let deadline = Instant::now() + within;
    while process.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the gateway did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_keeps_counts_allowance_rotations_and_visits() {
    let dir = fresh_dir("restart-clean");
    let config = config(&dir);
    let (mut gateway, api) = start_process(&config);
    let (first, last) = spend(api).await;
    // At once: what the last second changed is written at shutdown.
    signal(&gateway, "-TERM");
    wait_exit(&mut gateway, Duration::from_secs(30));
    let (_gateway, api) = start_process(&config);
    kept(api, &first, &last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_loses_at_most_the_last_second() {
    let dir = fresh_dir("restart-kill");
    let config = config(&dir);
    let (mut gateway, api) = start_process(&config);
    let (first, last) = spend(api).await;
    // Written behind within a second; a little more for a busy machine.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    signal(&gateway, "-KILL");
    wait_exit(&mut gateway, Duration::from_secs(10));
    let (_gateway, api) = start_process(&config);
    kept(api, &first, &last).await;
}

/// A gateway with 10,000 stored apps and keyword tables: while it reads them back at start-up its
/// admin listener is already bound, `/healthz` answers 200 and `/readyz` 503 `loading` (so an
/// orchestrator waits instead of seeing "connection refused"), the log says what it is doing,
/// and once ready every table is in force, the last one stored included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_stored_tables_load_behind_a_loading_admin_listener() {
    const APPS: usize = 10_000;
    let dir = fresh_dir("many-tables");
    let admin_port = free_port();
    let path = config(&dir);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"),
    );
    std::fs::write(&path, text).unwrap();
    let admin_url = |p: &str| format!("http://127.0.0.1:{admin_port}{p}");
    let appid = |i: usize| format!("wx{i:016x}");

    // Seed: APPS apps, each with a table of its own (40 words, the last naming the app).
    let (mut first, _, _) = start_process_with(&path, &[]);
    let c = client();
    let seeded = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..16 {
        let (c, next, admin_url) = (c.clone(), next.clone(), admin_url("/admin/apps/"));
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= APPS {
                    break;
                }
                let id = format!("wx{i:016x}");
                let app = json!({"secret": format!("{:032x}", i)});
                let resp = c
                    .put(format!("{admin_url}{id}"))
                    .bearer_auth(ADMIN_TOKEN)
                    .body(app.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{id}: {}", resp.status());
                let mut words: Vec<Value> = (0..39)
                    .map(|w| json!({"keyword": format!("词{w}号{i}"), "label": 20001, "level": 80, "suggest": "risky"}))
                    .collect();
                words.push(json!({"keyword": format!("暗号{i}"), "label": 20006, "level": 90, "suggest": "risky"}));
                let resp = c
                    .put(format!("{admin_url}{id}/keywords"))
                    .bearer_auth(ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(Value::Array(words).to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{id}: {}", resp.status());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    eprintln!("seeded {APPS} apps with tables in {:?}", seeded.elapsed());
    signal(&first, "-TERM");
    wait_exit(&mut first, Duration::from_secs(30));

    // Restart, and watch the admin listener from the first moment.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["serve", "--config"])
        .arg(path.with_extension("nomodels.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let _second = Process(child);
    let sink = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let started = Instant::now();
    let mut seen_loading = None;
    let ready = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never ready:\n{}",
            log.lock().unwrap()
        );
        // Not bound yet: an error, tried again.
        if let Ok(resp) = c.get(admin_url("/readyz")).send().await {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            if status == 200 {
                break started.elapsed();
            }
            assert_eq!((status, body.as_str()), (503, "loading\n"));
            let health = c.get(admin_url("/healthz")).send().await.unwrap();
            assert_eq!(health.status(), 200, "up while loading");
            seen_loading.get_or_insert(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let loading_since =
        seen_loading.expect("the admin listener answered `loading` before it was ready");
    eprintln!("answered loading from {loading_since:?}, ready at {ready:?}");
    let log_text = log.lock().unwrap().clone();
    assert!(
        log_text.contains("loading: stored apps in force"),
        "{log_text}"
    );
    assert!(
        log_text.contains("loading: stored documents in force"),
        "{log_text}"
    );

    // Every table is in force: the last app's own word is risky for it and not for another.
    let api: SocketAddr = log_text
        .split("api=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let last = APPS - 1;
    let token_of = async |i: usize| -> String {
        let v: Value = json_of(
            c.get(format!(
                "http://{api}/cgi-bin/token?grant_type=client_credential&appid={}&secret={:032x}",
                appid(i),
                i
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_owned()
    };
    let probe = |i: usize| json!({"content": format!("我说暗号{last}"), "version": 2, "scene": 2, "openid": format!("o{i}")});
    for (i, suggest) in [(last, "risky"), (0, "pass")] {
        let t = token_of(i).await;
        post(
            api,
            &format!("/wxa/visit/report?access_token={t}"),
            json!({"openid": format!("o{i}")}),
        )
        .await;
        let v = post(
            api,
            &format!("/wxa/msg_sec_check?access_token={t}"),
            probe(i),
        )
        .await;
        assert_eq!(v["result"]["suggest"], suggest, "app {i}: {v}");
    }
}
