//! Load generator for modgate.
//!
//! Two modes:
//! - **open loop** (`--rate N`): requests are due at fixed times, N a second spread over the
//!   connections (connection k of C sends its j-th request at `start + (k + j·C) / N`); a request
//!   sent late because the server was still answering the previous one is timed from when it was
//!   *due*, so a server that falls behind is charged for the wait it causes (no coordinated
//!   omission), while one sent on time is timed from its sending (the timer's own lateness is
//!   not the server's);
//! - **closed loop** (no `--rate`): every connection sends its next request as soon as the last
//!   is answered: the maximum throughput.
//!
//! Scenarios mix msgSecCheck v2 texts (from a file of real texts, one per line), visit reports and
//! media submissions, over one or many apps (many are created through the admin API). Latencies
//! go into HDR histograms (microseconds, 3 significant digits); the report is printed as text and,
//! with `--json`, written as JSON.
#![allow(clippy::unwrap_used)] // a tool: a broken setup should stop it loudly

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;

#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for modgate")]
struct Args {
    /// The gateway's API address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    api: SocketAddr,
    /// The admin address, to create apps when `--apps` > 1.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The admin token.
    #[arg(long, default_value = "")]
    admin_token: String,
    /// The first app (must exist); more apps are created as `wx` + 16 hex digits.
    #[arg(long, default_value = "wx0123456789abcdef")]
    appid: String,
    #[arg(long, default_value = "0123456789abcdef0123456789abcdef")]
    secret: String,
    /// How many apps the load is spread over.
    #[arg(long, default_value_t = 1)]
    apps: usize,
    /// Requests a second (open loop); without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Connections (each one request at a time).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The mix, as weights: `text=90,visit=5,media=5`.
    #[arg(long, default_value = "text=100")]
    mix: String,
    /// Texts to check, one per line (default: one fixed sentence).
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Users per app (openids; all reported as visited before the run).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// The URL media submissions name.
    #[arg(long, default_value = "http://127.0.0.1:9/image.png")]
    media_url: String,
    /// Where to write the JSON report.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also report each tenth of a second: requests due in it and their worst latency.
    #[arg(long)]
    timeline: bool,
    /// After an errcode -1 answer (the gateway is overloaded or a backend failed), the
    /// connection waits this many seconds before its next request, as SDKs back off on -1.
    /// 0: retry at once (a client that never backs off).
    #[arg(long, default_value_t = 0.0)]
    backoff_secs: f64,
    /// A name for the run in the report.
    #[arg(long, default_value = "run")]
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Text,
    Visit,
    Media,
    /// A platform API the gateway forwards in pass-through mode (a customer-service message).
    Forward,
}

/// A small deterministic generator (xorshift64*): the same run makes the same choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Setup {
    /// Requests made before the run (the mix drawn over apps, users and texts), so sending one
    /// costs the generator a reference count, not a JSON serialisation.
    pool: Vec<Prepared>,
}

struct Prepared {
    kind: Kind,
    uri: http::Uri,
    body: Bytes,
}

/// Requests prepared per run: enough that repeats do not matter to the server.
const POOL: usize = 16_384;

#[derive(Default)]
struct Tally {
    latency: BTreeMap<Kind, Histogram<u64>>,
    /// Answers by kind and errcode (`http <status>` for non-200 answers, `io` for failures).
    answers: BTreeMap<(Kind, String), u64>,
    /// Time from sending to the answer (the server's queueing and work, without any wait on
    /// the client's side for a free connection), by errcode.
    service: BTreeMap<String, Histogram<u64>>,
    sent: u64,
    /// Open loop: requests due before the end that the connection could not send by then.
    unsent: u64,
    /// Per tenth of a second since the start (by when each request was due): count, worst µs.
    timeline: BTreeMap<u64, (u64, u64)>,
}

impl Tally {
    fn record(&mut self, kind: Kind, micros: u64, service_micros: u64, answer: String) {
        self.latency
            .entry(kind)
            .or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).unwrap())
            .saturating_record(micros.max(1));
        self.service
            .entry(answer.clone())
            .or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).unwrap())
            .saturating_record(service_micros.max(1));
        *self.answers.entry((kind, answer)).or_default() += 1;
        self.sent += 1;
    }
}

#[derive(Serialize)]
struct Percentiles {
    count: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct Report {
    name: String,
    mode: &'static str,
    target_rate: Option<f64>,
    achieved_rate: f64,
    seconds: f64,
    connections: usize,
    apps: usize,
    requests: u64,
    /// Open loop: requests due in the run that could not be sent before its end.
    unsent: u64,
    latency: BTreeMap<Kind, Percentiles>,
    all: Percentiles,
    answers: BTreeMap<String, u64>,
    /// From sending to the answer, by errcode.
    service: BTreeMap<String, Percentiles>,
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |v: u64| v as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request; returns the status and body.
async fn send(
    sender: &mut Sender,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Bytes), String> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "loadtest")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    exchange(sender, req).await
}

/// Sends `req` once the connection is ready; returns the status and the whole body.
async fn exchange(
    sender: &mut Sender,
    req: http::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// Sends a prepared request; returns the status and body.
async fn send_prepared(sender: &mut Sender, p: &Prepared) -> Result<(u16, Bytes), String> {
    let mut req = http::Request::new(Full::new(p.body.clone()));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = p.uri.clone();
    let headers = req.headers_mut();
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("loadtest"),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    exchange(sender, req).await
}

fn errcode(status: u16, body: &[u8]) -> String {
    if status != 200 {
        return format!("http {status}");
    }
    // The gateway writes errcode first: read it without parsing the whole answer.
    if let Some(rest) = body.strip_prefix(br#"{"errcode":"#) {
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'-'))
            .unwrap_or(rest.len());
        if end > 0
            && let Ok(code) = std::str::from_utf8(&rest[..end])
        {
            return code.to_owned();
        }
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errcode"].as_i64())
        .map_or_else(|| "unparsable".to_owned(), |c| c.to_string())
}

fn appid_of(args: &Args, i: usize) -> String {
    if i == 0 {
        args.appid.clone()
    } else {
        format!("wx{:016x}", 0x10_0000_0000u64 + i as u64)
    }
}

fn openid(user: usize) -> String {
    format!("oLoadTestUser_{user:010}")
}

/// Creates the apps (through the admin API), issues a token for each, and reports every user's
/// visit, so the run measures checks rather than refusals.
async fn setup(args: &Args) -> Setup {
    let mut api = connect(args.api).await.expect("the gateway's API answers");
    let mut admin = match args.admin {
        Some(a) => Some(connect(a).await.expect("the admin listener answers")),
        None => None,
    };
    let mut tokens = Vec::with_capacity(args.apps);
    for i in 0..args.apps {
        let appid = appid_of(args, i);
        if i > 0 {
            let admin = admin
                .as_mut()
                .expect("--admin and --admin-token are needed for --apps > 1");
            let req = http::Request::builder()
                .method("PUT")
                .uri(format!("/admin/apps/{appid}"))
                .header("host", "loadtest")
                .header("authorization", format!("Bearer {}", args.admin_token))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::json!({
                        "secret": args.secret,
                        "text_per_minute": 1_000_000_000u32,
                        "text_per_day": 4_000_000_000u32,
                        "media_per_minute": 1_000_000_000u32,
                        "media_per_day": 4_000_000_000u32,
                    })
                    .to_string(),
                )))
                .unwrap();
            admin.ready().await.unwrap();
            let status = admin.send_request(req).await.unwrap().status();
            assert!(status.is_success(), "creating {appid}: {status}");
        }
        let (status, body) = send(
            &mut api,
            "GET",
            &format!(
                "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={}",
                args.secret
            ),
            Vec::new(),
        )
        .await
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let token = v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {appid}: {status} {v}"))
            .to_owned();
        for chunk in (0..args.users).collect::<Vec<_>>().chunks(1000) {
            let list: Vec<String> = chunk.iter().map(|u| openid(*u)).collect();
            let body = serde_json::json!({ "openids": list }).to_string();
            // A gateway still shedding after an earlier overload answers -1 (and closes the
            // connection when it refused the body unread): back off, reconnect and retry, as
            // SDKs do.
            for attempt in 0.. {
                let sent = send(
                    &mut api,
                    "POST",
                    &format!("/wxa/visit/report?access_token={token}"),
                    body.clone().into_bytes(),
                )
                .await;
                let v: serde_json::Value = match sent {
                    Ok((_, answer)) => serde_json::from_slice(&answer).unwrap(),
                    Err(e) if attempt < 30 => {
                        eprintln!("visit report: {e}; reconnecting");
                        api = connect(args.api).await.expect("the gateway's API answers");
                        continue;
                    }
                    Err(e) => panic!("visit report: {e}"),
                };
                if v["errcode"] == -1 && attempt < 30 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                assert_eq!(v["errcode"], 0, "visit report: {v}");
                break;
            }
        }
        tokens.push(token);
    }
    let texts = match &args.texts {
        Some(path) => std::fs::read_to_string(path)
            .expect("the texts file")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.chars().take(2500).collect())
            .collect(),
        None => vec!["这家店的东西很好，物流也快，下次还会再来买。".to_owned()],
    };
    assert!(!texts.is_empty(), "no texts");
    let mix: Vec<(Kind, u32)> = args
        .mix
        .split(',')
        .map(|part| {
            let (name, weight) = part.split_once('=').expect("mix entries are name=weight");
            let kind = match name.trim() {
                "text" => Kind::Text,
                "visit" => Kind::Visit,
                "media" => Kind::Media,
                "forward" => Kind::Forward,
                other => panic!("unknown mix entry {other:?} (text, visit, media, forward)"),
            };
            (kind, weight.trim().parse().expect("a whole-number weight"))
        })
        .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let pool = (0..POOL)
        .map(|_| {
            let kind = choose(&mix, &mut rng);
            let (path, body) = request(kind, &tokens, &texts, args, &mut rng);
            Prepared {
                kind,
                uri: path.parse().expect("a valid path"),
                body: Bytes::from(body),
            }
        })
        .collect();
    Setup { pool }
}

fn choose(mix: &[(Kind, u32)], rng: &mut Rng) -> Kind {
    let total: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut pick = rng.below(total as usize) as u32;
    for (kind, w) in mix {
        if pick < *w {
            return *kind;
        }
        pick -= w;
    }
    Kind::Text
}

/// The request for one operation: method, path, body.
fn request(
    kind: Kind,
    tokens: &[String],
    texts: &[String],
    args: &Args,
    rng: &mut Rng,
) -> (String, Vec<u8>) {
    let token = &tokens[rng.below(tokens.len())];
    let user = openid(rng.below(args.users));
    match kind {
        Kind::Text => (
            format!("/wxa/msg_sec_check?access_token={token}"),
            serde_json::json!({
                "content": texts[rng.below(texts.len())],
                "version": 2, "scene": 2, "openid": user,
            })
            .to_string()
            .into_bytes(),
        ),
        Kind::Visit => (
            format!("/wxa/visit/report?access_token={token}"),
            serde_json::json!({ "openid": user })
                .to_string()
                .into_bytes(),
        ),
        Kind::Media => (
            format!("/wxa/media_check_async?access_token={token}"),
            serde_json::json!({
                "media_url": args.media_url, "media_type": 2, "version": 2,
                "scene": 1, "openid": user,
            })
            .to_string()
            .into_bytes(),
        ),
        Kind::Forward => (
            format!("/cgi-bin/message/custom/send?access_token={token}"),
            serde_json::json!({
                "touser": user, "msgtype": "text",
                "text": { "content": texts[rng.below(texts.len())] },
            })
            .to_string()
            .into_bytes(),
        ),
    }
}

/// One connection's share of the run, recorded in the run's one `tally` (a histogram per
/// connection would be ~0.7 MB each: at 4,000 connections gigabytes of them, every record a
/// cache miss in the generator, whose own lag would then be measured as the server's).
async fn worker(
    k: usize,
    args: std::sync::Arc<Args>,
    setup: std::sync::Arc<Setup>,
    start: Instant,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let end = start + Duration::from_secs_f64(args.seconds);
    let mut sender = match connect(args.api).await {
        Ok(s) => s,
        Err(_) => return,
    };
    let c = args.connections as f64;
    let mut j = 0u64;
    loop {
        let due = match args.rate {
            Some(rate) => start + Duration::from_secs_f64((k as f64 + j as f64 * c) / rate),
            None => Instant::now(),
        };
        if due >= end {
            break;
        }
        if Instant::now() >= end {
            // The run is over: requests still due (the connection fell behind) are not sent
            // late, they are counted as unsent, so every run covers the same seconds.
            tally.lock().unwrap().unsent += 1;
            j += 1;
            continue;
        }
        j += 1;
        // Behind schedule (the server held up the previous request): charge the wait from when
        // this one was due. Ahead of it: sleep, and measure from the actual send, so the
        // timer's own lateness (up to a millisecond) is not blamed on the server.
        let from = match due.checked_duration_since(Instant::now()) {
            None => due,
            Some(wait) => {
                tokio::time::sleep(wait).await;
                Instant::now()
            }
        };
        let prepared = &setup.pool[rng.below(setup.pool.len())];
        let kind = prepared.kind;
        let sent = Instant::now();
        let answer = match send_prepared(&mut sender, prepared).await {
            Ok((status, body)) => errcode(status, &body),
            Err(_) => {
                // The connection broke: count it and open another.
                match connect(args.api).await {
                    Ok(s) => sender = s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                "io".to_owned()
            }
        };
        let micros = from.elapsed().as_micros() as u64;
        let service = sent.elapsed().as_micros() as u64;
        let back_off = args.backoff_secs > 0.0 && answer == "-1";
        {
            let mut tally = tally.lock().unwrap();
            tally.record(kind, micros, service, answer);
            if args.timeline {
                let tenth = due.saturating_duration_since(start).as_millis() as u64 / 100;
                let slot = tally.timeline.entry(tenth).or_default();
                slot.0 += 1;
                slot.1 = slot.1.max(micros);
            }
        }
        if back_off {
            let until = Instant::now() + Duration::from_secs_f64(args.backoff_secs);
            tokio::time::sleep_until(until.min(end).into()).await;
        }
    }
}

/// One runtime worker per CPU this process may run on (`taskset` included): more workers than
/// CPUs would time-slice one core and stall requests for whole scheduler quanta, which an
/// open-loop run would then report as the server's latency.
fn main() {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    runtime.unwrap().block_on(run());
}

async fn run() {
    let args = Args::parse();
    let setup = std::sync::Arc::new(setup(&args).await);
    let args = std::sync::Arc::new(args);
    let start = Instant::now() + Duration::from_millis(50);
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Tally::default()));
    let mut tasks = Vec::with_capacity(args.connections);
    for k in 0..args.connections {
        tasks.push(tokio::spawn(worker(
            k,
            std::sync::Arc::clone(&args),
            std::sync::Arc::clone(&setup),
            start,
            std::sync::Arc::clone(&shared),
        )));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tally = std::mem::take(&mut *shared.lock().unwrap());
    let elapsed = start.elapsed().as_secs_f64().max(args.seconds);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for h in tally.latency.values() {
        all.add(h).unwrap();
    }
    let report = Report {
        name: args.name.clone(),
        mode: if args.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        target_rate: args.rate,
        achieved_rate: tally.sent as f64 / elapsed,
        seconds: elapsed,
        connections: args.connections,
        apps: args.apps,
        requests: tally.sent,
        unsent: tally.unsent,
        latency: tally
            .latency
            .iter()
            .map(|(k, h)| (*k, percentiles(h)))
            .collect(),
        all: percentiles(&all),
        answers: tally
            .answers
            .iter()
            .map(|((kind, code), n)| (format!("{kind:?} {code}").to_lowercase(), *n))
            .collect(),
        service: tally
            .service
            .iter()
            .map(|(code, h)| (code.clone(), percentiles(h)))
            .collect(),
    };
    println!(
        "{}: {} loop{}, {} connections, {} app(s): {} requests in {:.1} s = {:.0}/s",
        report.name,
        report.mode,
        report
            .target_rate
            .map_or(String::new(), |r| format!(" at {r:.0}/s")),
        report.connections,
        report.apps,
        report.requests,
        report.seconds,
        report.achieved_rate
    );
    if report.unsent > 0 {
        println!(
            "{} requests fell due but could not be sent before the end",
            report.unsent
        );
    }
    println!("| kind | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (kind, p) in report
        .latency
        .iter()
        .map(|(k, p)| (format!("{k:?}").to_lowercase(), p))
        .chain(std::iter::once(("all".to_owned(), &report.all)))
    {
        println!(
            "| {kind} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
        );
    }
    println!("answers: {:?}", report.answers);
    println!("from send to answer, by errcode:");
    for (code, p) in &report.service {
        println!(
            "  {code}: {} answers, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p.count, p.p50_ms, p.p99_ms, p.max_ms
        );
    }
    if args.timeline {
        println!("timeline (s: requests due, worst ms):");
        for (tenth, (n, worst)) in &tally.timeline {
            println!(
                "{:6.1} {n:6} {:9.2}",
                *tenth as f64 / 10.0,
                *worst as f64 / 1000.0
            );
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    }
}
