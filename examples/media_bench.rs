//! Media jobs: how fast one gateway core accepts them (each written to disk before its
//! trace_id is answered) and how fast it works them off (fetch, decode and PDQ-hash a 320×240
//! JPEG, match the hash banks, signed push, two durable state writes per job after
//! acceptance), against a media origin and a push receiver in this process.
//!
//! Side by side in each round:
//! - msgSecCheck v2 on the same gateway over the same connections: the same HTTP, JSON and token
//!   work, with no durable write;
//! - the embedded store committing one small record per fsync, in this process on the same
//!   disk: what acceptance would be held to without group commit.
//!
//! Run through `loadtest/media.sh` (builds, pins this process to CPU 1; the gateway runs on CPU 0
//! with one tokio worker). Usage: media_bench [--seconds N] [--conns N] [--rounds N]

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use support::{Gateway, call, connect};

const APPID: &str = "wx00000000000000b1";
const SECRET: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
const OPENID: &str = "oMediaBench_0123456789";

struct Args {
    seconds: u64,
    conns: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        conns: 32,
        rounds: 3,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: media_bench [--seconds N] [--conns N] [--rounds N]";
    for pair in argv.chunks(2) {
        let v: u64 = pair
            .get(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{usage}"));
        match pair[0].as_str() {
            "--seconds" => a.seconds = v,
            "--conns" => a.conns = v as usize,
            "--rounds" => a.rounds = v as usize,
            _ => panic!("{usage}"),
        }
    }
    a
}

/// A photo-like JPEG (gradients, a disc, texture) of the given size.
fn photo(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let disc = (fx - 0.4).powi(2) + (fy - 0.5).powi(2) < 0.04;
        let n = (((x * 7919) ^ (y * 104_729)) % 23) as f32;
        image::Rgb([
            (255.0 * fx + n).min(255.0) as u8,
            if disc {
                30
            } else {
                (255.0 * (0.5 + 0.5 * (6.0 * fy).sin())) as u8
            },
            (255.0 * (0.5 + 0.5 * (4.0 * fx * fy).cos()) - n).max(0.0) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

/// Serves every request with `reply` after reading its body, holding answers while `hold` is
/// set; counts requests answered.
async fn serve(reply: Bytes, count: Arc<AtomicU64>, hold: Arc<AtomicBool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (reply, count, hold) = (reply.clone(), count.clone(), hold.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (reply, count, hold) = (reply.clone(), count.clone(), hold.clone());
                        async move {
                            let _ = req.into_body().collect().await;
                            while hold.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            count.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(http::Response::new(Full::new(reply)))
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

/// `conns` connections posting `body` to `uri` for `seconds`; requests answered with errcode 0
/// per second.
async fn load(
    api: SocketAddr,
    uri: String,
    body: Vec<u8>,
    conns: usize,
    seconds: u64,
) -> (u64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (stop, done, uri, body) = (stop.clone(), done.clone(), uri.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut send = connect(api).await;
            while !stop.load(Ordering::Relaxed) {
                let (status, resp) = call(&mut send, "POST", &uri, false, body.clone()).await;
                let v: Value = serde_json::from_slice(&resp).unwrap();
                assert!(status == 200 && v["errcode"] == 0, "{status} {v}");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    (n, n as f64 / started.elapsed().as_secs_f64())
}

/// `conns` connections posting `body` to `uri` at `rate` requests a second in all for
/// `seconds`, open loop: each request is due at a fixed time and timed from then (one sent late
/// because its connection was still waiting counts its wait). Returns every latency.
async fn paced(
    api: SocketAddr,
    uri: String,
    body: Vec<u8>,
    conns: usize,
    rate: f64,
    seconds: u64,
) -> Vec<Duration> {
    let started = Instant::now() + Duration::from_millis(50);
    let total = (rate * seconds as f64) as usize;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (uri, body) = (uri.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut send = connect(api).await;
            let mut took = Vec::new();
            for k in (c..total).step_by(conns) {
                let due = started + Duration::from_secs_f64(k as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let (status, resp) = call(&mut send, "POST", &uri, false, body.clone()).await;
                took.push(due.elapsed());
                let v: Value = serde_json::from_slice(&resp).unwrap();
                assert!(status == 200 && v["errcode"] == 0, "{status} {v}");
            }
            took
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all
}

/// The `q` quantile of sorted `v`, in milliseconds.
fn ms_at(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

/// Waits until `count` reaches `n`.
async fn wait_for(count: &AtomicU64, n: u64) {
    let started = Instant::now();
    while count.load(Ordering::Relaxed) < n {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the backlog did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One record per commit, each commit fsync'd, for `seconds`: commits per second, and each
/// commit's time (sorted).
fn store_commits_per_second(dir: &std::path::Path, seconds: u64) -> (f64, Vec<Duration>) {
    use modgate::state::durable::{Durable, Kind};
    let _ = std::fs::remove_dir_all(dir);
    let store = Durable::open(dir, 16 << 20).unwrap();
    let record = vec![b'x'; 400];
    let started = Instant::now();
    let mut n = 0u64;
    let mut took = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        store.put(Kind::Jobs, &format!("{n:016}"), &record).unwrap();
        took.push(t.elapsed());
        n += 1;
    }
    took.sort_unstable();
    (n as f64 / started.elapsed().as_secs_f64(), took)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let root = std::env::current_dir().unwrap().join("target/media-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    let image = photo(320, 240);
    let fetched = Arc::new(AtomicU64::new(0));
    let pushed = Arc::new(AtomicU64::new(0));
    let hold = Arc::new(AtomicBool::new(false));
    // The media models are off: an analysis with them takes about a second of a core
    // (BENCHMARKS.md, "Media models"), which would leave this measuring the models; acceptance
    // and the pipeline's own work are what this measures.
    // The origin and the receiver get a thread and runtime of their own, so the load this
    // process generates does not hold up their answers.
    let (origin, receiver) = {
        let (fetched, pushed, hold) = (fetched.clone(), pushed.clone(), hold.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let origin = serve(Bytes::from(image), fetched, hold).await;
                let never = Arc::new(AtomicBool::new(false));
                let receiver = serve(Bytes::from_static(b"success"), pushed, never).await;
                tx.send((origin, receiver)).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    };

    let config = root.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [state]\ndata_dir = \"{}\"\n[limits]\nenforce = false\n\
             [media]\nallow_networks = [\"127.0.0.0/8\"]\nworkers = 64\nper_app = 64\nper_host = 64\n\
             max_queued = 10000000\nmodels = false\n\
             [[apps]]\nappid = \"{APPID}\"\nsecret = \"{SECRET}\"\npush_url = \"http://{receiver}/push\"\n\
             push_token = \"benchtoken\"\n",
            root.join("data").display()
        ),
    )
    .unwrap();
    let gw = Gateway::start(&config);
    let mut send = connect(gw.api).await;
    let (_, body) = call(
        &mut send,
        "GET",
        &format!("/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"),
        false,
        Vec::new(),
    )
    .await;
    let token: Value = serde_json::from_slice(&body).unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let text_uri = format!("/wxa/msg_sec_check?access_token={token}");
    let text_body = json!({"content": "今天天气不错，我们去公园散步吧", "version": 2, "scene": 2, "openid": OPENID})
        .to_string()
        .into_bytes();
    let media_uri = format!("/wxa/media_check_async?access_token={token}");
    let media_body = json!({"media_url": format!("http://{origin}/a.png"), "media_type": 2, "version": 2, "scene": 1, "openid": OPENID})
        .to_string()
        .into_bytes();

    println!(
        "# media jobs: {} s per phase, {} connections, {} rounds\n",
        a.seconds, a.conns, a.rounds
    );
    println!(
        "| round | text checks/s (no disk write) | jobs accepted/s (pipeline idle) | accepted / text | one fsync per commit: commits/s | pushes delivered/s (no submissions) | both at once: accepted/s, pushed/s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut accepted_total = 0u64;
    let mut latencies = Vec::new();
    for round in 1..=a.rounds {
        let (_, text_rps) = load(
            gw.api,
            text_uri.clone(),
            text_body.clone(),
            a.conns,
            a.seconds,
        )
        .await;

        // Acceptance alone: the origin holds its answers, so the pipeline does no work (the
        // first `workers` fetches wait on it; every other job waits in the queue).
        hold.store(true, Ordering::Relaxed);
        let (accepted, accept_rps) = load(
            gw.api,
            media_uri.clone(),
            media_body.clone(),
            a.conns,
            a.seconds,
        )
        .await;
        accepted_total += accepted;

        // Acceptance latency at half that maximum, open loop, the pipeline still held: what a
        // submission waits for (its validation and durable write), with nothing else running.
        let paced_at = |rate| {
            paced(
                gw.api,
                media_uri.clone(),
                media_body.clone(),
                a.conns,
                rate,
                a.seconds,
            )
        };
        let idle_half = accept_rps / 2.0;
        let idle_took = paced_at(idle_half).await;
        accepted_total += idle_took.len() as u64;

        // Then the backlog drains with no new submissions: fetch, check, signed push, state
        // writes.
        hold.store(false, Ordering::Relaxed);
        let drain_start = Instant::now();
        let backlog_start = pushed.load(Ordering::Relaxed);
        wait_for(&pushed, accepted_total).await;
        let drained = pushed.load(Ordering::Relaxed) - backlog_start;
        let drain_rps = drained as f64 / drain_start.elapsed().as_secs_f64().max(1e-9);

        // Both at once: submissions while the pipeline works.
        let pushed_before = pushed.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let (mixed, mixed_rps) = load(
            gw.api,
            media_uri.clone(),
            media_body.clone(),
            a.conns,
            a.seconds,
        )
        .await;
        let mixed_pushes =
            (pushed.load(Ordering::Relaxed) - pushed_before) as f64 / t0.elapsed().as_secs_f64();
        accepted_total += mixed;
        wait_for(&pushed, accepted_total).await;

        // Acceptance latency at half the maximum rate accepted with the pipeline working (the
        // phase just before), open loop, the pipeline working through what is submitted.
        let half = mixed_rps / 2.0;
        let took = paced_at(half).await;
        accepted_total += took.len() as u64;
        wait_for(&pushed, accepted_total).await;

        let (commits, commit_times) = tokio::task::spawn_blocking({
            let dir = root.join("fsync");
            let secs = a.seconds.min(5);
            move || store_commits_per_second(&dir, secs)
        })
        .await
        .unwrap();
        latencies.push((round, "held", idle_half, idle_took, commit_times.clone()));
        latencies.push((round, "working", half, took, commit_times));

        println!(
            "| {round} | {text_rps:.0} | {accept_rps:.0} | {:.1}% | {commits:.0} | {drain_rps:.0} | {mixed_rps:.0}, {mixed_pushes:.0} |",
            100.0 * accept_rps / text_rps,
        );
    }
    println!(
        "\n## Acceptance latency at half the maximum acceptance rate (open loop)\n\n\
         Pipeline held: half the rate accepted with the pipeline idle, while it stays idle (the\n\
         origin holds its answers). Pipeline working: half the rate accepted with the pipeline\n\
         working, while it works through what is submitted.\n\n\
         | round | pipeline | offered/s | accepted | p50 ms | p99 ms | max ms | one fsync'd commit alone: p50 / p99 / max ms |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (round, pipeline, rate, took, commits) in &latencies {
        println!(
            "| {round} | {pipeline} | {rate:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} |",
            took.len(),
            ms_at(took, 0.5),
            ms_at(took, 0.99),
            ms_at(took, 1.0),
            ms_at(commits, 0.5),
            ms_at(commits, 0.99),
            ms_at(commits, 1.0),
        );
    }
    println!(
        "\n{accepted_total} jobs accepted, {} fetched, {} pushes received; gateway resident memory now {:.0} MiB.",
        fetched.load(Ordering::Relaxed),
        pushed.load(Ordering::Relaxed),
        gw.rss_mib()
    );
}
