//! What the load tools in `examples/` share: a real gateway process pinned to CPU 0, and a
//! minimal keep-alive HTTP/1 client.

#![allow(dead_code, clippy::unwrap_used)] // each tool uses a part; a tool that cannot set up stops loudly

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// The admin token the tools put in their configs.
pub const ADMIN_TOKEN: &str = "bench-admin-token";

/// A gateway process and its addresses.
pub struct Gateway {
    pub child: Child,
    pub api: SocketAddr,
    pub admin: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts `target/release/modgate serve --config <config>` on CPU 0 with one tokio worker;
    /// its log goes beside the config.
    pub fn start(config: &Path) -> Gateway {
        Gateway::start_binary(Path::new("target/release/modgate"), config)
    }

    /// As [`Gateway::start`], running `binary` (another build of the gateway).
    pub fn start_binary(binary: &Path, config: &Path) -> Gateway {
        use std::io::BufRead;
        let mut child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env("TOKIO_WORKER_THREADS", "1")
            .env("RUST_LOG", "warn,modgate=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = |line: &str, key: &str| -> SocketAddr {
            let at = line.find(key).unwrap() + key.len();
            line[at..]
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap()
                .trim_matches('"')
                .parse()
                .unwrap()
        };
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the gateway exited before listening");
            };
            if line.contains("listening") {
                let (api, admin) = (addr(&line, "api="), addr(&line, "admin="));
                // Keep draining stderr (so the gateway never blocks on a full pipe) into a log
                // beside its config, for a look at the server-side timings afterwards.
                let mut log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(config.with_extension("log"))
                    .unwrap();
                std::thread::spawn(move || {
                    use std::io::Write;
                    for line in lines.map_while(Result::ok) {
                        let _ = writeln!(log, "{line}");
                    }
                });
                return Gateway { child, api, admin };
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's own pid (the child is `taskset`, which execs it: the same pid).
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap();
        kib / 1024.0
    }

    /// User + system CPU seconds the gateway has used.
    pub fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0 // USER_HZ
    }
}

pub async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

pub async fn call(
    send: &mut SendRequest<Full<Bytes>>,
    method: &str,
    uri: &str,
    auth: bool,
    body: Vec<u8>,
) -> (u16, Bytes) {
    send.ready().await.unwrap();
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    if auth {
        req = req.header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    let resp = send
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}
