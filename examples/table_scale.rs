//! Custom keyword tables at scale: many apps, each with a full table, in one gateway process.
//!
//! Starts one real gateway process (`target/release/modgate serve`, pinned to CPU 0 with one
//! tokio worker) per app count in `--apps`, gives every app a table of `--entries` generated
//! keywords through the admin API, then measures, side by side in one run:
//! - msgSecCheck throughput and server CPU per request, each request for a random app, on every
//!   gateway (rounds alternate between them, so drift on a shared machine hits all alike);
//! - the latency of replacing one table through the admin API while the largest gateway serves
//!   those requests;
//! - resident memory before and after the tables are loaded, and after a restart of the largest
//!   gateway, which loads every table back from the embedded store.
//!
//! With `--baseline BINARY` (another build of the gateway), a gateway of that build with the
//! largest app count runs beside this build's in every round and restart, in turn with it.
//!
//! Run through `loadtest/tables.sh`, which builds the binary and pins this client to CPU 1.
//! Usage: table_scale [--apps N,N,...] [--entries N] [--seconds N] [--rounds N] [--conns N]
//! [--replace-seconds N] (each replacement round's length; default `--seconds`)
//! [--baseline BINARY]

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Gateway, call, connect};

const OPENID: &str = "oScaleUser_0123456789";
/// Pause between two replacements of app 0's table during the replacement rounds.
const REPLACE_PAUSE_MS: u64 = 100;
const LABELS: [u32; 9] = [
    10001, 20001, 20002, 20003, 20006, 20008, 20012, 20013, 21000,
];

struct Args {
    /// App counts, one gateway each, ascending; the first is the baseline, the last the one
    /// whose memory, replacements and restart are measured.
    apps: Vec<usize>,
    entries: usize,
    seconds: u64,
    rounds: usize,
    conns: usize,
    /// Seconds of each replacement round (idle, half and full load, on every gateway).
    replace_seconds: u64,
    /// Another build, run with the largest app count beside this one.
    baseline: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        apps: vec![1, 100, 1000, 10_000],
        entries: 1000,
        seconds: 10,
        rounds: 3,
        conns: 32,
        replace_seconds: 0,
        baseline: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: table_scale [--apps N,N,...] [--entries N] [--seconds N] [--rounds N] \
                 [--conns N] [--replace-seconds N] [--baseline BINARY]";
    for pair in argv.chunks(2) {
        let text = pair.get(1).unwrap_or_else(|| panic!("{usage}"));
        let value = || -> usize { text.parse().unwrap_or_else(|_| panic!("{usage}")) };
        match pair[0].as_str() {
            "--apps" => {
                a.apps = text
                    .split(',')
                    .map(|n| n.parse().unwrap_or_else(|_| panic!("{usage}")))
                    .collect();
                a.apps.sort_unstable();
            }
            "--entries" => a.entries = value(),
            "--seconds" => a.seconds = value() as u64,
            "--rounds" => a.rounds = value(),
            "--conns" => a.conns = value(),
            "--replace-seconds" => a.replace_seconds = value() as u64,
            "--baseline" => a.baseline = Some(PathBuf::from(text)),
            _ => panic!("{usage}"),
        }
    }
    assert!(
        !a.apps.is_empty() && a.apps[0] >= 1,
        "{usage}: app counts must be at least 1"
    );
    if a.replace_seconds == 0 {
        a.replace_seconds = a.seconds;
    }
    a
}

/// xorshift64*: deterministic keywords and request mixes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn appid(i: usize) -> String {
    format!("wx{i:016x}")
}

fn secret(i: usize) -> String {
    format!("{i:032x}")
}

/// The Chinese characters of the benign corpus, with their frequencies (as repetitions), and its
/// lines as request texts.
struct Corpus {
    chars: Vec<char>,
    lines: Vec<String>,
}

fn corpus() -> Corpus {
    let text = std::fs::read_to_string("tests/data/benign-zh.txt").unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.chars().count() >= 10)
        .map(str::to_owned)
        .collect();
    let chars = text
        .chars()
        .filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c))
        .collect();
    Corpus { chars, lines }
}

/// App `app`'s table (variant 0 or 1): keywords of 3–8 common Chinese characters (85%) or 4–10
/// Latin letters, random labels and levels, mostly risky, some review, some pass.
fn table(corpus: &Corpus, app: usize, variant: u64, entries: usize) -> Vec<Value> {
    let mut rng = Rng((app as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (variant + 1));
    (0..entries)
        .map(|k| {
            let keyword: String = if rng.below(100) < 85 {
                let len = 3 + rng.below(6);
                (0..len)
                    .map(|_| corpus.chars[rng.below(corpus.chars.len())])
                    .collect()
            } else {
                let len = 4 + rng.below(7);
                (0..len)
                    .map(|_| (b'a' + rng.below(26) as u8) as char)
                    .collect::<String>()
                    + &k.to_string()
            };
            let suggest = match rng.below(10) {
                0 => "pass",
                1 | 2 => "review",
                _ => "risky",
            };
            json!({
                "keyword": keyword,
                "label": LABELS[rng.below(LABELS.len())],
                "level": rng.below(101),
                "suggest": suggest,
            })
        })
        .collect()
}

fn config_text(apps: usize, data_dir: &Path) -> String {
    let mut c = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 16777216\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n\
         [state]\ndata_dir = \"{}\"\n",
        data_dir.display()
    );
    for i in 0..apps {
        c += &format!(
            "[[apps]]\nappid = \"{}\"\nsecret = \"{}\"\ntext_per_minute = 1000000000\ntext_per_day = 4000000000\n",
            appid(i),
            secret(i)
        );
    }
    c
}

/// Puts `entries` as app `app`'s table; returns the round trip.
async fn put_table(send: &mut SendRequest<Full<Bytes>>, app: usize, entries: &[Value]) -> Duration {
    let body = serde_json::to_vec(entries).unwrap();
    let started = Instant::now();
    let (status, resp) = call(
        send,
        "PUT",
        &format!("/admin/apps/{}/keywords", appid(app)),
        true,
        body,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    took
}

/// Fetches a token for each of `apps` apps and reports the benchmark user's visit.
async fn tokens(gw: &Gateway, apps: usize) -> Vec<String> {
    let mut send = connect(gw.api).await;
    let mut out = Vec::with_capacity(apps);
    for i in 0..apps {
        let uri = format!(
            "/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
            appid(i),
            secret(i)
        );
        let (status, body) = call(&mut send, "GET", &uri, false, Vec::new()).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let token = v["access_token"].as_str().unwrap().to_owned();
        let uri = format!("/wxa/visit/report?access_token={token}");
        let body = json!({ "openid": OPENID }).to_string().into_bytes();
        let (status, body) = call(&mut send, "POST", &uri, false, body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        out.push(token);
    }
    out
}

struct Load {
    /// Requests shed under overload (errcode -1), not counted in `requests`.
    shed: u64,
    requests: u64,
    flagged: u64,
    rps: f64,
    cpu_us_per_request: f64,
}

/// `conns` connections sending msgSecCheck v2 for `seconds`, each request for a random app of
/// `tokens` with a random corpus line (a tenth of them with one of that app's keywords in it);
/// at most `rate` requests per second in all when given.
async fn load(
    gw: &Gateway,
    tokens: Arc<Vec<String>>,
    keywords: Arc<Vec<Vec<String>>>,
    lines: Arc<Vec<String>>,
    conns: usize,
    seconds: u64,
    rate: Option<f64>,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let (done, flagged) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let shed = Arc::new(AtomicU64::new(0));
    let cpu0 = gw.cpu_secs();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (tokens, keywords, lines) = (tokens.clone(), keywords.clone(), lines.clone());
        let (stop, done, flagged, shed) =
            (stop.clone(), done.clone(), flagged.clone(), shed.clone());
        let addr = gw.api;
        tasks.push(tokio::spawn(async move {
            let mut send = connect(addr).await;
            let mut rng = Rng(0xC0FF_EE00 + c as u64);
            // Paced: each connection sends at its share of `rate`; otherwise as fast as answered.
            let mut pace = rate.map(|r| {
                let mut i = tokio::time::interval(Duration::from_secs_f64(conns as f64 / r));
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            while !stop.load(Ordering::Relaxed) {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                let app = rng.below(tokens.len());
                let mut content = lines[rng.below(lines.len())].clone();
                if rng.below(10) == 0 {
                    let words = &keywords[app];
                    content.push_str(&words[rng.below(words.len())]);
                }
                let body = json!({"content": content, "version": 2, "scene": 2, "openid": OPENID});
                let uri = format!("/wxa/msg_sec_check?access_token={}", tokens[app]);
                let (status, resp) = call(
                    &mut send,
                    "POST",
                    &uri,
                    false,
                    body.to_string().into_bytes(),
                )
                .await;
                let v: Value = serde_json::from_slice(&resp).unwrap();
                // Shed under overload (errcode -1): counted, not a failure of the run.
                if status == 200 && v["errcode"] == -1 {
                    shed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                assert!(status == 200 && v["errcode"] == 0, "{status} {v}");
                if v["result"]["suggest"] != "pass" {
                    flagged.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = gw.cpu_secs() - cpu0;
    let requests = done.load(Ordering::Relaxed);
    Load {
        requests,
        shed: shed.load(Ordering::Relaxed),
        flagged: flagged.load(Ordering::Relaxed),
        rps: requests as f64 / elapsed,
        cpu_us_per_request: cpu * 1e6 / requests.max(1) as f64,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// "p50 | p99 | max" in milliseconds.
fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    format!(
        "{:.2} | {:.2} | {:.2}",
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 1.0)
    )
}

/// Waits until the gateway is ready (`/readyz`: every stored table loaded).
async fn healthy(gw: &Gateway) {
    for _ in 0..600 {
        if let Ok(stream) = tokio::net::TcpStream::connect(gw.admin).await {
            drop(stream);
            let mut send = connect(gw.admin).await;
            if call(&mut send, "GET", "/readyz", false, Vec::new()).await.0 == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not become healthy");
}

/// What the gateway's log says of one replacement round.
#[derive(Default)]
struct Logged {
    /// Each replacement from the PUT's arrival to the table in force.
    total: Vec<Duration>,
    /// Each replacement's store write (waiting for the writer, the transaction, the commit).
    stored: Vec<Duration>,
    /// Writes of any kind over 50 ms, by the step that took longest (wait, write, commit), with
    /// the longest of them.
    slow: std::collections::BTreeMap<String, (usize, f64)>,
    /// One fsync'd commit of a table-sized value alone, in the client's process, meanwhile.
    lone: Vec<Duration>,
    /// Each replacement's steps in ms, from its log line: total, body read, wait for the
    /// blocking pool, built (counted from before that wait), store write.
    steps: Vec<[f64; 5]>,
}

/// The steps of the replacements: each step's p99, and each step's mean over the slowest 5%
/// (by total), so that what the tail is made of can be read.
fn step_row(steps: &[[f64; 5]]) -> String {
    if steps.is_empty() {
        return "- | -".into();
    }
    let p99 = |i: usize| {
        let mut v: Vec<f64> = steps.iter().map(|s| s[i]).collect();
        v.sort_by(f64::total_cmp);
        v[(v.len() * 99 / 100).min(v.len() - 1)]
    };
    let mut by_total = steps.to_vec();
    by_total.sort_by(|a, b| b[0].total_cmp(&a[0]));
    let tail = &by_total[..by_total.len().div_ceil(20)];
    let mean = |i: usize| tail.iter().map(|s| s[i]).sum::<f64>() / tail.len() as f64;
    let fmt = |f: &dyn Fn(usize) -> f64| {
        (0..5)
            .map(|i| format!("{:.2}", f(i)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    format!("{} | {}", fmt(&p99), fmt(&mean))
}

/// `key=value` of a log line, as a number.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split(&format!(" {key}="))
        .nth(1)?
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// A run on `s` with app 0's table replaced back and forth meanwhile (a pause of
/// `REPLACE_PAUSE_MS` between replacements): idle (`load` None), or under a load (`Some(None)`:
/// as fast as it answers; `Some(Some(rate))`: paced). Returns the load (if any), the
/// replacements' round trips and the gateway's own account of them.
async fn replacement_round(
    s: &Subject,
    corpus: &Corpus,
    keywords: &Arc<Vec<Vec<String>>>,
    lines: &Arc<Vec<String>>,
    a: &Args,
    load_at: Option<Option<f64>>,
) -> (Option<Load>, Vec<Duration>, Logged) {
    let log = s.config.with_extension("log");
    let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
    let mut logged = Logged::default();
    let stop = Arc::new(AtomicBool::new(false));
    // The disk alone, meanwhile: one fsync'd commit of a table-sized value at the same pace, in
    // an embedded store of this process's own (on CPU 1, the gateway's core left alone).
    let lone = {
        let stop = stop.clone();
        let dir = s.config.with_extension("fsync");
        std::thread::spawn(move || {
            use modgate::state::durable::{Durable, Kind};
            let _ = std::fs::remove_dir_all(&dir);
            let store = Durable::open(&dir, 16 << 20).unwrap();
            let value = vec![b'x'; 64 * 1024];
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                store
                    .put(Kind::Keywords, "wx0000000000000000", &value)
                    .unwrap();
                took.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(REPLACE_PAUSE_MS));
            }
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
            took
        })
    };
    let replacer = {
        let (stop, addr) = (stop.clone(), s.gw.admin);
        let tables = [
            table(corpus, 0, 1, a.entries),
            table(corpus, 0, 0, a.entries),
        ];
        tokio::spawn(async move {
            let mut send = connect(addr).await;
            let mut took = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                took.push(put_table(&mut send, 0, &tables[k % 2]).await);
                k += 1;
                tokio::time::sleep(Duration::from_millis(REPLACE_PAUSE_MS)).await;
            }
            // End on variant 0, the table the load's keywords come from.
            if k % 2 == 1 {
                put_table(&mut send, 0, &tables[1]).await;
            }
            took
        })
    };
    let r = match load_at {
        Some(rate) => Some(
            load(
                &s.gw,
                s.tokens.clone(),
                keywords.clone(),
                lines.clone(),
                a.conns,
                a.replace_seconds,
                rate,
            )
            .await,
        ),
        None => {
            tokio::time::sleep(Duration::from_secs(a.replace_seconds)).await;
            None
        }
    };
    stop.store(true, Ordering::Relaxed);
    let took = replacer.await.unwrap();
    logged.lone = lone.join().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read(&log).unwrap();
    let ms = |v: f64| Duration::from_secs_f64(v / 1e3);
    for line in String::from_utf8_lossy(&text[log_start as usize..]).lines() {
        if line.contains("keyword table stored") {
            if let Some(v) = field(line, "total_ms") {
                logged.total.push(ms(v));
            }
            let step = |key| field(line, key).unwrap_or(f64::NAN);
            if field(line, "read_ms").is_some() {
                logged.steps.push([
                    step("total_ms"),
                    step("read_ms"),
                    step("queued_ms"),
                    step("built_ms"),
                    step("write_ms"),
                ]);
            }
            // Builds before the write ran beside the compile logged `stored_ms` from the task's
            // start, the build included.
            if let Some(write) = field(line, "write_ms") {
                logged.stored.push(ms(write));
            } else if let (Some(stored), Some(built)) =
                (field(line, "stored_ms"), field(line, "built_ms"))
            {
                logged.stored.push(ms(stored - built));
            }
        } else if line.contains("slow store write") {
            let step = line
                .split(" step=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("?")
                .trim_matches('"')
                .to_owned();
            let total = field(line, "total_ms").unwrap_or(0.0);
            let e = logged.slow.entry(step).or_default();
            e.0 += 1;
            e.1 = e.1.max(total);
        }
    }
    (r, took, logged)
}

/// One gateway under test: its app count, name in the tables, build, process, tokens.
struct Subject {
    apps: usize,
    name: String,
    binary: PathBuf,
    gw: Gateway,
    config: PathBuf,
    tokens: Arc<Vec<String>>,
    rss_apps_only: f64,
    rss_loaded: f64,
    load_secs: f64,
    puts: Vec<Duration>,
    rps: Vec<f64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let corpus = corpus();
    let work = PathBuf::from("target/table-scale");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    println!(
        "# apps {:?} x {} entries; {} s x {} rounds, {} connections",
        a.apps, a.entries, a.seconds, a.rounds, a.conns
    );

    // Every app's table (variant 0), generated once; gateways share the first apps' tables.
    let most = *a.apps.last().unwrap();
    let tables: Vec<Vec<Value>> = (0..most).map(|i| table(&corpus, i, 0, a.entries)).collect();
    let keywords: Arc<Vec<Vec<String>>> = Arc::new(
        tables
            .iter()
            .map(|t| {
                t.iter()
                    .filter(|e| e["suggest"] != "pass")
                    .map(|e| e["keyword"].as_str().unwrap().to_owned())
                    .collect()
            })
            .collect(),
    );
    // Every app count with this build; the largest with the baseline build too, just before
    // this build's (the last gateway is the one restarted at the end).
    let this = PathBuf::from("target/release/modgate");
    let mut runs: Vec<(usize, String, PathBuf)> = a
        .apps
        .iter()
        .map(|&n| (n, n.to_string(), this.clone()))
        .collect();
    if let Some(baseline) = &a.baseline {
        runs.insert(
            runs.len() - 1,
            (most, format!("{most} (baseline)"), baseline.clone()),
        );
    }
    let mut subjects = Vec::new();
    for (n, name, binary) in runs {
        let file = name.replace(" (baseline)", "-baseline");
        let config = work.join(format!("apps-{file}.toml"));
        std::fs::write(&config, config_text(n, &work.join(format!("data-{file}")))).unwrap();
        let gw = Gateway::start_binary(&binary, &config);
        healthy(&gw).await;
        let rss_apps_only = gw.rss_mib();
        let mut admin = connect(gw.admin).await;
        let started = Instant::now();
        let mut puts = Vec::with_capacity(n);
        for (i, t) in tables.iter().enumerate().take(n) {
            puts.push(put_table(&mut admin, i, t).await);
        }
        let load_secs = started.elapsed().as_secs_f64();
        let rss_loaded = gw.rss_mib();
        let tokens = Arc::new(tokens(&gw, n).await);
        subjects.push(Subject {
            apps: n,
            name,
            binary,
            gw,
            config,
            tokens,
            rss_apps_only,
            rss_loaded,
            load_secs,
            puts,
            rps: Vec::new(),
        });
    }
    drop(tables);

    println!("\n## Loading the tables through the admin API (idle gateway)\n");
    println!(
        "| apps | load s | PUT p50 ms | PUT p99 ms | PUT max ms |\n| ---: | ---: | ---: | ---: | ---: |"
    );
    for s in &subjects {
        println!(
            "| {} | {:.1} | {} |",
            s.name,
            s.load_secs,
            percentiles(s.puts.clone())
        );
    }

    let lines = Arc::new(corpus.lines.clone());
    println!(
        "\n## Throughput, each request for a random app\n\n| round | apps | requests/s | server CPU µs/request | requests | flagged |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for round in 1..=a.rounds {
        for s in subjects.iter_mut() {
            let r = load(
                &s.gw,
                s.tokens.clone(),
                keywords.clone(),
                lines.clone(),
                a.conns,
                a.seconds,
                None,
            )
            .await;
            s.rps.push(r.rps);
            println!(
                "| {round} | {} | {:.0} | {:.1} | {} | {} |",
                s.name, r.rps, r.cpu_us_per_request, r.requests, r.flagged
            );
        }
    }
    let base: f64 = subjects[0].rps.iter().sum();
    println!();
    for s in &subjects[1..] {
        println!(
            "- {} apps / {} app(s), requests/s summed over rounds: {:.1}%",
            s.name,
            subjects[0].name,
            100.0 * s.rps.iter().sum::<f64>() / base
        );
    }
    // Every gateway, with app 0's table replaced back and forth all along: idle, at half the
    // rate it served in its last round, and as fast as it answers.
    println!(
        "\n## Replacing app 0's {}-entry table, {} s a run\n\n\
         Client: the PUT's round trip as this client saw it. Gateway: from the PUT's arrival to the\n\
         new table in force; store: its write (waiting for the store's writer, the transaction, the\n\
         commit with its fsync); both from the gateway's log. Lone commit: one fsync'd commit of a\n\
         64 KiB value (a table's size) every 100 ms meanwhile, in a store of the client's own on\n\
         the same disk. Slow writes: the gateway's writes of any kind over 50 ms meanwhile, by\n\
         their longest step (count, longest ms).\n\n\
         | apps | load | requests/s | replacements | client p50 / p99 / max ms | gateway p50 / p99 / max ms | store p50 / p99 / max ms | lone commit p50 / p99 / max ms | slow writes |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        a.entries, a.replace_seconds
    );
    let mut step_rows = Vec::new();
    for s in &subjects {
        let full = *s.rps.last().unwrap();
        for (name, at) in [
            ("idle", None),
            ("half", Some(Some(full / 2.0))),
            ("full", Some(None)),
        ] {
            let (r, took, logged) = replacement_round(s, &corpus, &keywords, &lines, &a, at).await;
            let slow: Vec<String> = logged
                .slow
                .iter()
                .map(|(step, (n, max))| format!("{step} {n} ({max:.0})"))
                .collect();
            step_rows.push(format!(
                "| {} | {name} | {} |",
                s.name,
                step_row(&logged.steps)
            ));
            println!(
                "| {} | {name} | {} | {} | {} | {} | {} | {} | {} |",
                s.name,
                r.as_ref().map_or("-".into(), |r| if r.shed > 0 {
                    format!("{:.0} ({} shed)", r.rps, r.shed)
                } else {
                    format!("{:.0}", r.rps)
                }),
                took.len(),
                percentiles(took).replace(" | ", " / "),
                percentiles(logged.total).replace(" | ", " / "),
                percentiles(logged.stored).replace(" | ", " / "),
                percentiles(logged.lone).replace(" | ", " / "),
                if slow.is_empty() {
                    "none".into()
                } else {
                    slow.join(", ")
                }
            );
        }
    }
    println!(
        "\nThe gateway's steps of each replacement, from its log (ms): the whole, the body's read,\n\
         the wait for the blocking pool, built (parse, validate, compile; counted from before that\n\
         wait) and the store write (beside the compile). Tail: each step's mean over the slowest\n\
         5% of replacements.\n\n\
         | apps | load | p99: total / read / queued / built / write | tail: total / read / queued / built / write |\n\
         | --- | --- | ---: | ---: |"
    );
    for row in step_rows {
        println!("{row}");
    }
    let big = subjects.pop().unwrap();

    println!(
        "\n## Resident memory (VmRSS)\n\n| apps | apps configured, no tables | tables loaded | after the rounds | per table |\n| ---: | ---: | ---: | ---: | ---: |"
    );
    for s in subjects.iter().chain(std::iter::once(&big)) {
        println!(
            "| {} | {:.0} MiB | {:.0} MiB | {:.0} MiB | {:.1} KiB |",
            s.name,
            s.rss_apps_only,
            s.rss_loaded,
            s.gw.rss_mib(),
            (s.rss_loaded - s.rss_apps_only) * 1024.0 / s.apps as f64
        );
    }
    // Restarts load every table back from the embedded store: the largest gateway's, and the
    // baseline build's beside it, in turn, twice each (all others stopped meanwhile).
    let mut restarted = vec![big];
    if a.baseline.is_some() {
        restarted.insert(0, subjects.pop().unwrap());
    }
    drop(subjects);
    let restarted: Vec<(String, PathBuf, PathBuf)> = restarted
        .into_iter()
        .map(|s| (s.name, s.binary, s.config))
        .collect();
    let turns = if restarted.len() > 1 { 2 } else { 1 };
    println!(
        "\n## Restart of the {most}-app gateway\n\nFrom the process's start to `/readyz` answering 200 (every table loaded from\nthe embedded store), then app 0's own keyword checked.\n\n| gateway | turn | ready s | resident MiB |\n| --- | ---: | ---: | ---: |"
    );
    for turn in 1..=turns {
        for (name, binary, config) in &restarted {
            let started = Instant::now();
            let gw = Gateway::start_binary(binary, config);
            healthy(&gw).await;
            let ready_secs = started.elapsed().as_secs_f64();
            let rss = gw.rss_mib();
            let token = tokens(&gw, 1).await.remove(0);
            let probe = &keywords[0][0];
            let body = json!({"content": format!("前文{probe}后文"), "version": 2, "scene": 2, "openid": OPENID});
            let (_, resp) = call(
                &mut connect(gw.api).await,
                "POST",
                &format!("/wxa/msg_sec_check?access_token={token}"),
                false,
                body.to_string().into_bytes(),
            )
            .await;
            let v: Value = serde_json::from_slice(&resp).unwrap();
            let hit = v["detail"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["keyword"].as_str() == Some(probe));
            assert!(
                hit,
                "after the restart of {name}, app 0's keyword {probe:?} is not found: {v}"
            );
            println!("| {name} | {turn} | {ready_secs:.1} | {rss:.0} |");
        }
    }
}
