//! The `modgate` binary: help, offline check, config errors, and signal handling on a real
//! process.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_modgate");

#[test]
fn help_on_every_command() {
    for args in [&["--help"][..], &["serve", "--help"], &["check", "--help"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: modgate"), "{args:?}: {text}");
    }
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config <FILE>"));
}

#[test]
fn check_prints_the_verdict_as_json() {
    let out = Command::new(BIN)
        .args(["check", "我们去网络赌.博吧"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["result"],
        serde_json::json!({"suggest":"risky","label":20006})
    );
    assert_eq!(v["detail"][0]["strategy"], "content_model");
    assert_eq!(v["detail"][0]["keyword"], "网络赌博");
    let out = Command::new(BIN).args(["check", "你好"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["suggest"], "pass");
}

#[test]
fn check_explain_traces_each_hit_to_the_input_and_its_steps() {
    let text = "好评 賭\u{200B}賭.博 加我薇信 a b c 1 2 3 4 5 6";
    let out = Command::new(BIN)
        .args(["check", "--explain", text])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let verdict: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(verdict["result"]["suggest"], "risky");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest[0], "normalized: 好评赌博加我薇信abc123456");
    // The gambling word: its span in the input (characters 3..8) and the steps that led there.
    let at = rest
        .iter()
        .position(|l| l.starts_with("hit ") && l.contains(": 赌博 (lexicon; label 20006"))
        .unwrap_or_else(|| panic!("no 赌博 hit in {stdout}"));
    assert_eq!(
        rest[at + 1],
        "  input: \"賭\\u{200b}賭.博\" at characters 3..8 (bytes 7..20)"
    );
    assert_eq!(rest[at + 2], "  matched: \"赌博\"");
    assert_eq!(
        rest[at + 3],
        "  steps: traditional to simplified, invisible character removed, repeat collapsed, symbol removed"
    );
    // The spelt-out WeChat id, found by the detector after the homophone 薇信.
    assert!(
        rest.iter().any(|l| l.starts_with("hit ") && l.contains("WeChat id (detector; label 10001, risky")),
        "{stdout}"
    );
    assert!(
        rest.iter().any(|l| l.contains("steps: space removed")),
        "{stdout}"
    );
    // A clean text says so.
    let out = Command::new(BIN)
        .args(["check", "--explain", "这本书很好看"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.ends_with("normalized: 这本书很好看\nno hits\n"),
        "{stdout}"
    );
}

#[test]
fn bad_config_lists_every_error_and_exits_2() {
    let dir = tempdir();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"nope\"\n[[apps]]\nappid = \"wx1\"\nsecret = \"s\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["server.listen", "apps[0].appid", "apps[0].secret"] {
        assert!(err.contains(key), "{key} missing from {err}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--config", "/no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "modgate-cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything the server wrote to stderr so far.
type Log = std::sync::Arc<std::sync::Mutex<String>>;

/// Starts `modgate serve` on ephemeral ports (logging at trace level) and returns it with its API
/// address and its log.
/// A server process that is killed if the test ends without stopping it (a failed assertion must
/// not leave a gateway running).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn_server() -> (Server, SocketAddr, Log) {
    let (child, addr, log, _lines) = spawn_server_with("");
    (child, addr, log)
}

/// As [`spawn_server`], with extra config, also returning each log line as it is written.
fn spawn_server_with(extra: &str) -> (Server, SocketAddr, Log, std::sync::mpsc::Receiver<String>) {
    let dir = tempdir();
    let path = dir.join("modgate.toml");
    let config = format!(
        "{extra}\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[state]\ndata_dir = \"{}\"\n{}",
        dir.join("data").display(),
        default_config().replace("[admin]\ntoken = \"test-admin-token\"\n", "")
    );
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let log = Log::default();
    let addr = loop {
        let line = lines.next().expect("server printed its addresses").unwrap();
        log.lock().unwrap().push_str(&line);
        if line.contains("listening") {
            let api = line
                .split("api=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            break api.parse().unwrap();
        }
    };
    // Keep reading stderr so the child never blocks on a full pipe.
    let sink = log.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            let _ = tx.send(line);
        }
    });
    (Server(child), addr, log, rx)
}

/// Blocks until the server logs a line containing `needle`.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn kill(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Opens a msgSecCheck request and sends all but the last bytes of its body. Returns the stream,
/// the bytes still to send, and the token used.
async fn half_request(addr: SocketAddr) -> (TcpStream, &'static [u8], String) {
    let url = format!(
        "http://{addr}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    );
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client.get(url).send().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let token = v["access_token"].as_str().unwrap().to_owned();
    let body: &'static [u8] = br#"{"content":"hello","version":2,"scene":2,"openid":"o1"}"#;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /wxa/msg_sec_check?access_token={token} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() - 5]).await.unwrap();
    (stream, &body[body.len() - 5..], token)
}

/// Sends SIGTERM while a request is half sent, and checks the process is still draining a moment
/// later (an absence can only be checked by waiting).
async fn sigterm_with_request_in_flight(child: &mut Server) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    kill(child, "-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
}

#[tokio::test]
async fn sigterm_drains_the_request_in_flight_then_exits_cleanly() {
    let (mut child, addr, log, lines) = spawn_server_with("");
    let (mut stream, rest, token) = half_request(addr).await;
    sigterm_with_request_in_flight(&mut child).await;
    stream.write_all(rest).await.unwrap();
    let reply = read_until_close(&mut stream, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"errcode\":0"), "{reply}");
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("exits after draining");
    assert!(status.success(), "{status:?}");
    // Even at trace level, neither the token nor the secret reaches the log.
    wait_for_line(&lines, "shutdown complete");
    let log = log.lock().unwrap();
    assert!(log.contains("shutdown complete"), "{log}");
    assert!(!log.contains(&token) && !log.contains(SECRET), "{log}");
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let (mut child, addr, _log) = spawn_server();
    let (_stream, _rest, _token) = half_request(addr).await;
    sigterm_with_request_in_flight(&mut child).await;
    kill(&child, "-INT");
    let status =
        wait_exit(&mut child, Duration::from_secs(10)).expect("exits on the second signal");
    assert_eq!(status.code(), Some(130));
}

#[tokio::test]
async fn sighup_reloads_the_lexicon_files() {
    let dir = tempdir();
    let lexicon = dir.join("extra.txt");
    std::fs::write(&lexicon, "紫色药丸\trisky\t88\n").unwrap();
    let extra = format!(
        "[[engine.lexicon]]\npath = \"{}\"\nlabel = 20006\n",
        lexicon.display()
    );
    let (mut child, addr, _log, lines) = spawn_server_with(&extra);
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token_url = format!(
        "http://{addr}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    );
    let v: serde_json::Value = serde_json::from_slice(
        &client
            .get(token_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let url = format!(
        "http://{addr}/wxa/msg_sec_check?access_token={}",
        v["access_token"].as_str().unwrap()
    );
    let check = |text: &str| {
        let body = serde_json::json!({"content": text, "version": 2, "scene": 2, "openid": "o1"})
            .to_string();
        let req = client.post(&url).body(body);
        async move {
            serde_json::from_slice::<serde_json::Value>(
                &req.send().await.unwrap().bytes().await.unwrap(),
            )
            .unwrap()
        }
    };
    assert_eq!(check("卖紫色药丸").await["result"]["suggest"], "risky");

    std::fs::write(&lexicon, "紫色药丸\treview\t55\n").unwrap();
    kill(&child, "-HUP");
    let line = wait_for_line(&lines, "lexicon reload");
    assert!(line.contains("lexicon reloaded"), "{line}");
    assert_eq!(check("卖紫色药丸").await["detail"][0]["prob"], 55);

    // A broken file: logged, and the lexicon in force stays.
    std::fs::write(&lexicon, "no tabs here\n").unwrap();
    kill(&child, "-HUP");
    let line = wait_for_line(&lines, "lexicon reload");
    assert!(
        line.contains("failed") && line.contains("extra.txt:1"),
        "{line}"
    );
    assert_eq!(check("卖紫色药丸").await["detail"][0]["prob"], 55);

    kill(&child, "-TERM");
    assert!(
        wait_exit(&mut child, Duration::from_secs(20))
            .expect("exits")
            .success()
    );
}
