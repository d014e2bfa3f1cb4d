//! 20,000 idle connections do not keep real clients out (SPEC §1's limits; the accept loop's
//! idle eviction). The gateway runs as its own process (the connections would exhaust one
//! process's file descriptors otherwise), and the idle connections come from this test and a
//! child process, 10,000 each.
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const IDLE_PER_PROCESS: usize = 10_000;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens `IDLE_PER_PROCESS` connections that never send a byte, at most 256 connecting at a
/// time; returns how many connected.
async fn open_idle(addr: SocketAddr) -> (Vec<tokio::net::TcpStream>, usize) {
    use futures_util::StreamExt;
    let results: Vec<Option<tokio::net::TcpStream>> =
        futures_util::stream::iter(0..IDLE_PER_PROCESS)
            .map(|_| async move {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .ok()
                .and_then(Result::ok)
            })
            .buffer_unordered(256)
            .collect()
            .await;
    let held: Vec<_> = results.into_iter().flatten().collect();
    let n = held.len();
    (held, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_idle_connections_do_not_block_real_requests() {
    let dir = fresh_dir("idle-flood");
    let config = dir.join("modgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 10000\n\
             header_read_timeout_secs = 60\n[state]\ndata_dir = \"{}\"\n{}",
            dir.join("data").display(),
            default_config().replace("[admin]\n", "[admin]\nlisten = \"127.0.0.1:0\"\n")
        ),
    )
    .unwrap();
    let (_gateway, api) = start_process(&config);

    // The child's half: Python, holding its sockets until its stdin closes.
    let script = format!(
        "import socket, sys\n\
         held = []\n\
         for _ in range({IDLE_PER_PROCESS}):\n\
         \x20   s = socket.socket(); s.settimeout(10)\n\
         \x20   try:\n\
         \x20       s.connect(('{}', {})); held.append(s)\n\
         \x20   except OSError:\n\
         \x20       s.close()\n\
         print(len(held), flush=True)\n\
         sys.stdin.read()\n",
        api.ip(),
        api.port()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let child_out = child.stdout.take().unwrap();
    let mut child_in = child.stdin.take().unwrap();
    let child = Child(child);
    let child_count = std::thread::spawn(move || {
        let mut line = String::new();
        BufReader::new(child_out).read_line(&mut line).unwrap();
        line.trim().parse::<usize>().unwrap()
    });
    // Real clients, one request every 50 ms, from before the flood starts until after it ends.
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let real = tokio::spawn(async move {
        let mut latencies = Vec::new();
        loop {
            let started = Instant::now();
            let resp = client
                .get(format!(
                    "http://{api}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.text().await.unwrap();
            assert!(body.contains("access_token"), "{body}");
            latencies.push(started.elapsed());
            if *stopped.borrow() {
                return latencies;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });

    let flood = Instant::now();
    let (held, ours) = open_idle(api).await;
    let theirs = tokio::task::spawn_blocking(move || child_count.join().unwrap())
        .await
        .unwrap();
    let flood_took = flood.elapsed();
    assert_eq!(
        ours + theirs,
        2 * IDLE_PER_PROCESS,
        "every idle connection was accepted by the kernel ({ours} + {theirs})"
    );
    // And after it, with every one of them still open on the clients' side.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).unwrap();
    let latencies = real.await.unwrap();
    let slowest = latencies.iter().max().unwrap();
    eprintln!(
        "20,000 idle connections opened in {flood_took:?}; {} real requests meanwhile and after, \
         slowest {slowest:?}",
        latencies.len()
    );
    assert!(latencies.len() >= 10, "{} real requests", latencies.len());
    drop(held);
    child_in.flush().ok();
    drop(child_in);
    drop(child);
}
