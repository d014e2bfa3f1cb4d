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
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["config", "check", "--help"],
        &["healthcheck", "--help"],
    ] {
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
    assert_eq!(out.status.code(), Some(1), "a risky text exits 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["result"],
        serde_json::json!({"suggest":"risky","label":20006})
    );
    assert_eq!(v["detail"][0]["strategy"], "content_model");
    assert_eq!(v["detail"][0]["keyword"], "网络赌博");
    let out = Command::new(BIN).args(["check", "你好"]).output().unwrap();
    assert!(out.status.success());
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
    assert_eq!(out.status.code(), Some(1));
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

/// Runs `modgate` with `stdin` as its standard input.
fn run_with_input(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn check_reads_many_texts_and_exits_by_the_worst_verdict() {
    // One text per line: a JSON line each, numbered; a risky one makes the status 1.
    let out = run_with_input(&["check"], "你好\n\n我们去网络赌.博吧\n今天天气不错\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "the empty line is skipped");
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["result"]["suggest"], "pass");
    assert_eq!(lines[1]["line"], 3);
    assert_eq!(lines[1]["result"]["suggest"], "risky");
    assert_eq!(lines[1]["detail"][0]["keyword"], "网络赌博");
    // Nothing risky: status 0.
    let out = run_with_input(&["check"], "你好\n今天天气不错\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out.stdout).len(), 2);

    // JSON lines: strings or objects with fields checked together and an id echoed back.
    let input = concat!(
        "\"你好\"\n",
        "{\"id\": \"a-1\", \"content\": \"你好\", \"nickname\": \"网络赌博\"}\n",
        "{\"id\": 7, \"content\": \"今天天气不错\"}\n",
        "{\"body\": \"x\"}\n",
        "not json\n",
    );
    let out = run_with_input(&["check", "--json"], input);
    assert_eq!(out.status.code(), Some(2), "unreadable lines: status 2");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["id"], "a-1");
    assert_eq!(
        lines[1]["result"]["suggest"], "risky",
        "the nickname decides"
    );
    assert_eq!(lines[2]["id"], 7);
    assert_eq!(lines[2]["result"]["suggest"], "pass");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4: unknown field \"body\""), "{err}");
    assert!(err.contains("line 5: not JSON"), "{err}");
}

#[test]
fn config_check_lists_every_problem_and_exits_1() {
    let dir = tempdir();
    let path = dir.join("modgate.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"nope\"\n[admin]\ntoken_file = \"/no/such/secret\"\n[[apps]]\nappid = \"wx1\"\nsecret = \"s\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&path)
        .env("MODGATE_LIMITS__TEXT_PER_MINUTE", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "admin.token_file: cannot read /no/such/secret",
        "server.listen",
        "apps[0].appid",
        "apps[0].secret",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    // The variable holds text where a number belongs: refused, naming it.
    assert!(
        text.contains("(environment) MODGATE_LIMITS__TEXT_PER_MINUTE: invalid type"),
        "{text}"
    );

    // A valid file, with a variable over it: the summary shows the variable's value.
    std::fs::write(&path, default_config()).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&path)
        .env("MODGATE_SERVER__LISTEN", "127.0.0.1:18099")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2 app(s)") && text.contains("API on 127.0.0.1:18099"),
        "{text}"
    );
}

/// A served process, its API and admin addresses, its log lines before `listening`, those after
/// as they come, and its config file.
type Served = (
    Server,
    SocketAddr,
    SocketAddr,
    Vec<String>,
    std::sync::mpsc::Receiver<String>,
    std::path::PathBuf,
);

/// `modgate serve` on ephemeral ports with `config` (plus a data directory) and `args`; returns
/// it once it is listening, with its API and admin addresses read from the `listening` line
/// (text or JSON), the lines before it, and the lines after it as they come.
fn serve(config: &str, args: &[&str]) -> Served {
    serve_with_env(config, args, &[])
}

/// [`serve`] with `env` set for the process.
fn serve_with_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Served {
    let dir = tempdir();
    let path = dir.join("modgate.toml");
    std::fs::write(
        &path,
        format!(
            "{config}\n[server]\nlisten = \"127.0.0.1:0\"\n[state]\ndata_dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let addr = |line: &str, key: &str| -> SocketAddr {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            return v[key].as_str().unwrap().parse().unwrap();
        }
        let at = format!("{key}=");
        line.split(&at)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (api, admin) = loop {
        let line = lines.next().expect("server printed its addresses").unwrap();
        before.push(line.clone());
        if line.contains("listening") {
            break (addr(&line, "api"), addr(&line, "admin"));
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Server(child), api, admin, before, rx, path)
}

#[tokio::test]
async fn check_applies_an_apps_stored_table_from_the_deployments_store() {
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"test-admin-token\"\n{}",
        default_config().replace("[admin]\ntoken = \"test-admin-token\"\n", "")
    );
    let (mut child, _api, admin, _, _lines, path) = serve(&config, &[]);
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let stored = client
        .put(format!("http://{admin}/admin/apps/{APPID}/keywords"))
        .bearer_auth("test-admin-token")
        .body(r#"[{"keyword":"竞品商城","label":10001,"level":70,"suggest":"risky"}]"#)
        .send()
        .await
        .unwrap();
    assert!(stored.status().is_success(), "{stored:?}");
    // While the gateway runs it holds the embedded store: the check says so.
    let out = run_with_input(
        &[
            "check",
            "--config",
            path.to_str().unwrap(),
            "--app",
            APPID,
            "去竞品商城买",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    terminate(&mut child);

    let out = run_with_input(
        &["check", "--config", path.to_str().unwrap(), "--app", APPID],
        "去竞品商城买\n你好\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["result"]["suggest"], "risky");
    let keyword = lines[0]["detail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["strategy"] == "keyword")
        .unwrap()
        .clone();
    assert_eq!(keyword["keyword"], "竞品商城", "{keyword}");
    assert_eq!(lines[1]["result"]["suggest"], "pass");
    // Without --app the built-in engine alone passes it.
    let out = run_with_input(&["check", "去竞品商城买"], "");
    assert_eq!(out.status.code(), Some(0));
    // An app without a table is an error, not a silent pass.
    let out = run_with_input(
        &[
            "check",
            "--config",
            path.to_str().unwrap(),
            "--app",
            APPID2,
            "x",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no custom keyword table"),
        "{out:?}"
    );
}

/// What `/proc` says of a process's transparent huge pages: `THP_enabled` of its status.
fn thp_enabled(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled")
        .trim()
        .to_owned()
}

#[test]
fn transparent_huge_pages_are_off_unless_the_config_asks_for_them() {
    let config = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    let (off, ..) = serve(config, &[]);
    assert_eq!(thp_enabled(off.0.id()), "0");
    let (on, ..) = serve_with_env(config, &[], &[("MODGATE_SERVER__HUGE_PAGES", "true")]);
    assert_eq!(thp_enabled(on.0.id()), "1");
}

#[test]
fn healthcheck_exits_0_while_ready_and_1_when_nothing_answers() {
    let config = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    let (mut child, _api, admin, _, _lines, path) = serve(config, &[]);
    let check = |args: &[&str]| {
        Command::new(BIN)
            .arg("healthcheck")
            .args(args)
            .output()
            .unwrap()
    };
    let out = check(&["--admin", &admin.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ready"));
    terminate(&mut child);
    let out = check(&["--admin", &admin.to_string(), "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready"));
    // The address may come from the configuration (whose port 0 reaches nothing).
    let out = check(&["--config", path.to_str().unwrap(), "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_requests_rid() {
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        default_config().replace("[admin]\ntoken = \"test-admin-token\"\n", "")
    );
    let (mut child, api, _admin, before, lines, _) = serve(&config, &["--log-format", "json"]);
    let first: Vec<serde_json::Value> = before
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        first
            .iter()
            .any(|v| v["message"] == "listening" && v["level"] == "INFO")
    );
    assert!(
        first
            .iter()
            .all(|v| v["timestamp"].is_string() && v["target"].is_string())
    );
    // The loading phase is logged before the listeners serve.
    assert!(
        first.iter().any(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("loading"))),
        "{before:?}"
    );

    // clear_quota logs inside the request: its event carries the request's rid and API.
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = client
        .post(format!(
            "http://{api}/cgi-bin/clear_quota/v2?appid={APPID}&appsecret={SECRET}"
        ))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["errcode"], 0, "{body}");
    let line = wait_for_line(&lines, "daily quota cleared");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let span = &event["spans"][0];
    assert_eq!(span["name"], "request", "{line}");
    assert_eq!(span["api"], "clear_quota", "{line}");
    let rid = span["rid"].as_str().unwrap();
    assert_eq!(rid.len(), 26, "{rid}");
    assert_eq!(event["appid"], APPID);
    terminate(&mut child);
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

/// Sends SIGTERM and expects the gateway to drain and exit with success.
fn terminate(child: &mut Child) {
    kill(child, "-TERM");
    let status = wait_exit(child, Duration::from_secs(20)).expect("exits after draining");
    assert!(status.success(), "{status}");
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

/// The handlers are in place by the time the gateway says it listens: a SIGTERM sent at once
/// drains, rather than meeting the default action of ending the process.
#[test]
fn sigterm_right_after_listening_drains_and_exits_cleanly() {
    for _ in 0..5 {
        let (mut child, ..) = serve(&default_config(), &[]);
        // Straight from this process (no `kill` command to start first): within microseconds
        // of the line.
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(20)).expect("exits after draining");
        assert!(status.success(), "{status}");
    }
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

    terminate(&mut child);
}
