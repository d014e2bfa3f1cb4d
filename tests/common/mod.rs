//! Test harness: the real gateway on `127.0.0.1:0` with a manual clock.
#![allow(dead_code, clippy::unwrap_used)] // a failing step is a failing test

use std::net::SocketAddr;
use std::time::Duration;

use modgate::clock::ManualClock;
use modgate::config::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const APPID: &str = "wx0123456789abcdef";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const APPID2: &str = "wxfedcba9876543210";
pub const SECRET2: &str = "fedcba9876543210fedcba9876543210";
/// 2024-11-28T08:26:40Z
pub const T0_MS: u64 = 1_732_782_400_000;

/// Two apps; limits off (tests/limits.rs turns them on with its own settings).
pub fn default_config() -> String {
    format!(
        r#"
[limits]
enforce = false
[admin]
token = "test-admin-token"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
[[apps]]
appid = "{APPID2}"
secret = "{SECRET2}"
"#
    )
}

pub struct TestServer {
    pub gateway: std::sync::Arc<modgate::gateway::Gateway>,
    pub api: SocketAddr,
    pub admin: SocketAddr,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&default_config()).await
    }

    pub async fn start_with(toml: &str) -> Self {
        // Each server gets its own embedded store unless the test names one.
        let toml = if toml.contains("data_dir") {
            toml.to_owned()
        } else {
            format!(
                "{toml}\n[state]\ndata_dir = \"{}\"\n",
                fresh_dir("data").display()
            )
        };
        // In-process gateways share the test's runtime with its clients, so the overload
        // sampler would measure the test's own load: shedding is off unless a test asks for it
        // (tests/overload.rs runs a gateway process of its own).
        let toml = if toml.contains("overload_delay_ms") {
            toml
        } else if toml.contains("[server]\n") {
            toml.replacen("[server]\n", "[server]\noverload_delay_ms = 0\n", 1)
        } else {
            format!("{toml}\n[server]\noverload_delay_ms = 0\n")
        };
        let toml = without_models(&toml);
        let config = Config::from_toml(&toml).expect("test config is valid");
        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (api_addr, admin_addr) = (api.local_addr().unwrap(), admin.local_addr().unwrap());
        let clock = ManualClock::new(T0_MS);
        let options = modgate::Options {
            clock: std::sync::Arc::new(clock.clone()),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let gateway = modgate::build(config, options)
            .await
            .expect("gateway builds");
        let handle = tokio::spawn(modgate::serve(
            std::sync::Arc::clone(&gateway),
            modgate::Listeners { api, admin },
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            gateway,
            api: api_addr,
            admin: admin_addr,
            clock,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.api, path_and_query)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// GET, returning status and parsed JSON body.
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        Self::send(self.client.get(self.url(path_and_query))).await
    }

    /// POST a raw body, returning status and parsed JSON body.
    pub async fn post(&self, path_and_query: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        Self::send(self.client.post(self.url(path_and_query)).body(body)).await
    }

    /// Sends a request; returns the status and the JSON body (`Null` when it is not JSON).
    async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A fresh token for the first app.
    pub async fn token(&self) -> String {
        self.token_for(APPID, SECRET).await
    }

    pub async fn token_for(&self, appid: &str, secret: &str) -> String {
        let (status, body) = self
            .get(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
            ))
            .await;
        assert_eq!(status, 200);
        body["access_token"]
            .as_str()
            .expect("token issued")
            .to_owned()
    }

    /// POST a msgSecCheck body with the given token.
    pub async fn check(&self, token: &str, body: &str) -> Value {
        let (status, v) = self
            .post(
                &format!("/wxa/msg_sec_check?access_token={token}"),
                body.to_owned(),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the gateway and waits for it to finish draining.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        self.finished().await;
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn finished(&mut self) {
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("gateway stops within 30 s")
                .unwrap();
        }
    }
}

/// Asserts an error body: errcode, and an errmsg that ends with a well-formed rid.
pub fn assert_err(v: &Value, errcode: i64) {
    assert_eq!(v["errcode"], errcode, "{v}");
    let msg = v["errmsg"].as_str().unwrap_or_default();
    let (_, rid) = msg
        .rsplit_once(" rid: ")
        .unwrap_or_else(|| panic!("no rid in {msg:?}"));
    assert!(is_rid(rid), "bad rid {rid:?}");
}

/// `xxxxxxxx-xxxxxxxx-xxxxxxxx`, lowercase hex.
pub fn is_rid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 3
        && groups.iter().all(|g| {
            g.len() == 8
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Writes raw bytes and reads until the server closes or `wait` passes.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_until_close(&mut stream, wait).await
}

pub async fn read_until_close(stream: &mut TcpStream, wait: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A free port below the kernel's ephemeral range (so that while a test's server is down no
/// outgoing connection's source port nor a parallel test's `:0` listener can take it), never one
/// handed out before in this process (two tests running at once would otherwise find the same
/// port free before either server binds it).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    // Spread concurrent runs of this suite (other checkouts) over a thousand ports.
    let first = low.saturating_sub(1 + u16::try_from(std::process::id() % 1000).unwrap());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    let port = (1024..=first)
        .rev()
        .find(|&p| {
            !handed_out.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        })
        .expect("a free port below the ephemeral range");
    handed_out.push(port);
    port
}

/// A new, empty directory under the system temp dir.
pub fn fresh_dir(tag: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("modgate-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gateway running as its own process (the binary), killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on `config` and returns it with its API address (read from its log).
pub fn start_process(config: &std::path::Path) -> (Process, SocketAddr) {
    let (process, api, _) = start_process_with(config, &[]);
    (process, api)
}

/// Starts the binary on `config` with extra environment variables; returns it with its API and
/// admin addresses (read from its log).
pub fn start_process_with(
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> (Process, SocketAddr, SocketAddr) {
    let (process, api, admin, _) = start_process_full(config, env);
    (process, api, admin)
}

/// [`start_process_with`], keeping every line the gateway logs in the returned buffer.
pub fn start_process_logged(
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> (
    Process,
    SocketAddr,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let (process, api, _, log) = start_process_full(config, env);
    (process, api, log)
}

/// The media models take a few hundred megabytes and most of a second to load in every
/// gateway: tests that do not analyse images with them switch them off (a test that wants them
/// names `models` in its config).
pub fn without_models(toml: &str) -> String {
    if toml.contains("models") {
        toml.to_owned()
    } else if toml.contains("[media]\n") {
        toml.replacen("[media]\n", "[media]\nmodels = false\n", 1)
    } else {
        format!("{toml}\n[media]\nmodels = false\n")
    }
}

fn start_process_full(
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> (
    Process,
    SocketAddr,
    SocketAddr,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    use std::io::{BufRead, BufReader};
    let text = std::fs::read_to_string(config).expect("the test config is readable");
    let patched = without_models(&text);
    let config = if patched == text {
        config.to_path_buf()
    } else {
        let path = config.with_extension("nomodels.toml");
        std::fs::write(&path, patched).expect("the test config is writable");
        path
    };
    let config = config.as_path();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let addr_after = |line: &str, key: &str| -> Option<SocketAddr> {
        line.split(key)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let (api, admin) = loop {
        let line = lines
            .next()
            .expect("the gateway printed its addresses")
            .unwrap();
        log.lock().unwrap().push_str(&line);
        log.lock().unwrap().push('\n');
        if let (Some(api), Some(admin)) = (addr_after(&line, " api="), addr_after(&line, " admin="))
        {
            break (api, admin);
        }
    };
    // Keep reading, so the gateway never blocks on a full pipe.
    let kept = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = kept.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (Process(child), api, admin, log)
}

/// The admin token of [`default_config`].
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// An admin API call with the default admin token and an optional `(content type, body)`;
/// returns the status, the JSON body (`Null` when not JSON) and the raw text.
pub async fn admin(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<(&str, String)>,
) -> (u16, Value, String) {
    let mut req = s
        .client
        .request(method, s.admin_url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some((ctype, b)) = body {
        req = req.header("content-type", ctype).body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// A response's body as JSON of the expected shape.
pub async fn json_of<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> T {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// A token for the first app from a gateway running as a process at `api`.
pub async fn process_token(client: &reqwest::Client, api: SocketAddr) -> String {
    let v: Value = json_of(
        client
            .get(format!(
                "http://{api}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    v["access_token"].as_str().unwrap().to_owned()
}
