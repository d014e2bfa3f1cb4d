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
