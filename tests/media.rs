//! mediaCheckAsync end to end: submission checks, the guarded fetcher against a local media
//! origin, signed pushes to a local receiver (retries, dead letters, read-back), and a `kill -9`
//! of a gateway with thousands of queued jobs.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

const ADMIN: &str = "test-admin-token";
const PUSH_TOKEN: &str = "AAAAA";
const ORIGINAL_ID: &str = "gh_0123456789ab";
/// A small photo-like test image: gradients, a disc and a block, some texture.
fn scene(w: u32, h: u32, seed: u32) -> image::RgbImage {
    let s = seed as f32;
    image::ImageBuffer::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let mut r = 255.0 * fx;
        let mut g = 255.0 * (0.5 + 0.5 * (6.0 * fy + s).sin());
        let b = 255.0 * (0.5 + 0.5 * (4.0 * fx * fy + 0.7 * s).cos());
        if (fx - 0.3 - 0.05 * (s % 5.0)).powi(2) + (fy - 0.6).powi(2) < 0.03 {
            r = 240.0 - r * 0.5;
            g *= 0.2;
        }
        let n = (((x * 7919) ^ (y * 104_729) ^ (seed * 31)) % 17) as f32;
        image::Rgb([
            (r + n).min(255.0) as u8,
            (g + n).min(255.0) as u8,
            (b + n).min(255.0) as u8,
        ])
    })
}

fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A QR code of `text` drawn onto `photo` (6 px per module, quiet zone included).
fn with_qr(photo: &image::RgbImage, text: &str) -> image::RgbImage {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let (modules, colors) = (code.width() as u32, code.to_colors());
    let mut out = photo.clone();
    for y in 0..(modules + 8) * 6 {
        for x in 0..(modules + 8) * 6 {
            let (mx, my) = ((x / 6).wrapping_sub(4), (y / 6).wrapping_sub(4));
            let dark = mx < modules
                && my < modules
                && colors[(my * modules + mx) as usize] == qrcode::Color::Dark;
            let v = if dark { 0 } else { 255 };
            out.put_pixel(x + 10, y + 10, image::Rgb([v, v, v]));
        }
    }
    out
}

/// The image the origin serves at `/image.png`.
fn png() -> &'static [u8] {
    static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PNG.get_or_init(|| encode(&scene(160, 120, 1), image::ImageFormat::Png))
}
/// The images the origin serves under fixed names, made once (each takes a while to draw and
/// encode in a debug build).
fn fixture(name: &str) -> &'static [u8] {
    static FIXTURES: std::sync::OnceLock<HashMap<&'static str, Vec<u8>>> =
        std::sync::OnceLock::new();
    let all = FIXTURES.get_or_init(|| {
        let copy = image::imageops::resize(
            &scene(640, 480, 3),
            400,
            300,
            image::imageops::FilterType::Triangle,
        );
        HashMap::from([
            (
                "/banked.png",
                encode(&scene(640, 480, 3), image::ImageFormat::Png),
            ),
            ("/copy.jpg", encode(&copy, image::ImageFormat::Jpeg)),
            (
                "/qr.png",
                encode(
                    &with_qr(&scene(640, 480, 8), "https://example.com/join-now"),
                    image::ImageFormat::Png,
                ),
            ),
            (
                "/other.png",
                encode(&scene(640, 480, 40), image::ImageFormat::Png),
            ),
        ])
    });
    &all[name]
}

/// One second of a tone as MP3, encoded by ffmpeg (Debian's package; `scripts/test` installs it).
fn mp3() -> &'static [u8] {
    static MP3: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    MP3.get_or_init(|| {
        let path = fresh_dir("mp3").join("tone.mp3");
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=1",
            ])
            .args(["-ar", "44100", "-ac", "1", "-c:a", "libmp3lame"])
            .arg(&path)
            .status()
            .expect("ffmpeg is needed for the audio tests (scripts/test installs it)");
        assert!(status.success());
        std::fs::read(path).unwrap()
    })
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A listener on a fresh loopback port.
async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Serves `handler` on `listener`.
fn serve<F, Fut>(listener: tokio::net::TcpListener, handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    local
}

/// A body that never ends.
struct Endless;

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 65536] = [0; 65536];
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

/// A body that trickles one byte every 200 ms, forever.
struct Trickle(Pin<Box<tokio::time::Sleep>>);

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.0 = Box::pin(tokio::time::sleep(Duration::from_millis(200)));
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"\xff")))))
            }
        }
    }
}

use std::future::Future as _;

/// The media origin: paths name what it serves. Counts requests per path.
#[derive(Clone, Default)]
struct Origin {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// Delay before answering `/delayed.png`.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Origin {
    async fn start(&self) -> SocketAddr {
        // Make the fixtures now: generated inside a handler (ffmpeg, or drawing and encoding
        // an image, runs for a while, blocking the test's runtime) the first fetch of one could
        // outlast the gateway's 1.5 s fetch timeout on a loaded machine.
        let _ = (png(), mp3(), fixture("/copy.jpg"));
        let me = self.clone();
        serve(loopback().await, move |req| {
            let me = me.clone();
            async move { me.answer(req).await }
        })
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let redirect = |to: String| {
            Response::builder()
                .status(StatusCode::FOUND)
                .header("location", to)
                .body(full(""))
                .unwrap()
        };
        match path.as_str() {
            "/image.png" => Response::new(full(png())),
            "/ad-text.png" => Response::new(full(&include_bytes!("data/ad-text.png")[..])),
            "/banked.png" | "/copy.jpg" | "/qr.png" | "/other.png" => {
                Response::new(full(fixture(&path)))
            }
            // There for its first fetch only.
            "/once.png" if self.hits("/once.png") == 1 => {
                Response::new(full(fixture("/other.png")))
            }
            "/audio.mp3" => Response::new(full(mp3())),
            "/page.html" => Response::new(full("<html><body>hello</body></html>")),
            "/image.png.gz" => Response::builder()
                .header("content-encoding", "gzip")
                .body(full(&b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"[..]))
                .unwrap(),
            "/big" => Response::new(full(vec![0u8; 11 << 20])),
            "/endless" => Response::new(Endless.boxed()),
            "/slow" => Response::new(
                Trickle(Box::pin(tokio::time::sleep(Duration::from_millis(1)))).boxed(),
            ),
            "/delayed.png" => {
                let ms = self.delay_ms.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Response::new(full(png()))
            }
            "/to-private" => redirect("http://10.0.0.1/image.png".into()),
            "/to-mapped" => redirect("http://[::ffff:192.168.0.1]/image.png".into()),
            p if p.starts_with("/hops/") => {
                let n: u32 = p["/hops/".len()..].parse().unwrap();
                if n == 0 {
                    Response::new(full(png()))
                } else {
                    redirect(format!("/hops/{}", n - 1))
                }
            }
            _ => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(full("no"))
                .unwrap(),
        }
    }
}

/// One push as the receiver saw it.
#[derive(Debug, Clone)]
struct Push {
    query: HashMap<String, String>,
    content_type: String,
    body: Vec<u8>,
}

impl Push {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The app's push receiver: records every push and answers with `status`.
#[derive(Clone)]
struct Receiver {
    pushes: Arc<Mutex<Vec<Push>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn new() -> Self {
        Receiver {
            pushes: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
        }
    }

    fn start_on(&self, listener: tokio::net::TcpListener) -> SocketAddr {
        let me = self.clone();
        serve(listener, move |req| {
            let me = me.clone();
            async move {
                let query = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
                let content_type = req
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                me.pushes.lock().unwrap().push(Push {
                    query,
                    content_type,
                    body,
                });
                let status = me.status.load(Ordering::Relaxed);
                let mut resp = Response::new(full("success"));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                if status == 302 {
                    resp.headers_mut()
                        .insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
                }
                resp
            }
        })
    }

    async fn start(&self) -> SocketAddr {
        self.start_on(loopback().await)
    }

    fn all(&self) -> Vec<Push> {
        self.pushes.lock().unwrap().clone()
    }

    /// The trace_ids of every push received (plain JSON pushes).
    fn traces(&self) -> HashSet<String> {
        self.all()
            .iter()
            .map(|p| p.json()["trace_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until every one of `accepted` has been pushed at least once.
    async fn wait_for_all(&self, accepted: &HashSet<String>, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let missing = accepted.difference(&self.traces()).count();
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} accepted jobs were never pushed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Pushes carrying `trace_id` (plain JSON pushes).
    fn for_trace(&self, trace_id: &str) -> Vec<Push> {
        self.all()
            .into_iter()
            .filter(|p| p.json()["trace_id"] == trace_id)
            .collect()
    }
}

fn gateway_config(push_addr: SocketAddr, media_extra: &str, app_extra: &str) -> String {
    format!(
        r#"
[limits]
enforce = false
[admin]
token = "{ADMIN}"
[media]
allow_networks = ["127.0.0.0/8"]
push_retry_secs = [0.05, 0.1, 0.2]
connect_timeout_secs = 1
fetch_timeout_secs = 1.5
push_timeout_secs = 1
{media_extra}
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
original_id = "{ORIGINAL_ID}"
push_url = "http://{push_addr}/push?app=1"
push_token = "{PUSH_TOKEN}"
{app_extra}
[[apps]]
appid = "{APPID2}"
secret = "{SECRET2}"
push_url = "http://{push_addr}/push?app=2"
push_token = "{PUSH_TOKEN}"
"#
    )
}

async fn submit(s: &TestServer, token: &str, body: Value) -> Value {
    let (status, v) = s
        .post(
            &format!("/wxa/media_check_async?access_token={token}"),
            body.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn media(url: &str, media_type: u8) -> Value {
    json!({"media_url": url, "media_type": media_type, "version": 2, "scene": 1, "openid": "oUser_1"})
}

/// Submits and returns the trace_id.
async fn accepted(s: &TestServer, token: &str, url: &str, media_type: u8) -> String {
    let v = submit(s, token, media(url, media_type)).await;
    assert_eq!(v["errcode"], 0, "{url}: {v}");
    assert_eq!(v["errmsg"], "ok");
    let trace = v["trace_id"].as_str().unwrap().to_owned();
    assert!(is_rid(&trace), "{trace}");
    trace
}

async fn admin_job(s: &TestServer, trace_id: &str) -> Value {
    let resp = s
        .client
        .get(s.admin_url(&format!("/admin/media/{trace_id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    json_of(resp).await
}

/// Waits until the job reaches a final state; returns its record.
async fn finished(s: &TestServer, trace_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = admin_job(s, trace_id).await;
        if matches!(job["state"].as_str(), Some("delivered" | "dead" | "done")) {
            return job;
        }
        assert!(Instant::now() < deadline, "job never finished: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sha1_hex(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    Sha1::digest(sorted.concat().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn submissions_are_checked_in_order() {
    let o = Origin::default().start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(r.start().await, "", "")).await;
    let t = s.token().await;
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            json!({"media_type": 2, "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "`media_url` is required",
        ),
        (
            json!({"media_url": 5, "media_type": 2, "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "must be a string",
        ),
        (
            json!({"media_url": "http://8.8.8.8/a.png", "media_type": 2, "version": 3, "scene": 1, "openid": "o1"}),
            47001,
            "`version` must be 2",
        ),
        (
            json!({"media_url": "notaurl", "media_type": 2, "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "not a valid URL",
        ),
        (
            json!({"media_url": "ftp://8.8.8.8/a.png", "media_type": 2, "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "http or https",
        ),
        (
            json!({"media_url": format!("http://8.8.8.8/{}", "a".repeat(2048)), "media_type": 2, "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "longer than 2048 bytes",
        ),
        (
            json!({"media_url": "http://10.0.0.1/a.png", "media_type": 2, "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "10.0.0.1 is a private address",
        ),
        (
            json!({"media_url": "http://8.8.8.8/a.png", "media_type": 3, "version": 2, "scene": 1, "openid": "o1"}),
            40004,
            "invalid media type",
        ),
        (
            json!({"media_url": "http://8.8.8.8/a.png", "media_type": "x", "version": 2, "scene": 1, "openid": "o1"}),
            47001,
            "`media_type` must be a number",
        ),
        (
            json!({"media_url": "http://8.8.8.8/a.png", "media_type": 2, "version": 2, "scene": 9, "openid": "o1"}),
            40129,
            "scene",
        ),
        (
            json!({"media_url": "http://8.8.8.8/a.png", "media_type": 2, "version": 2, "scene": 1}),
            40003,
            "`openid` is required",
        ),
        (
            json!({"media_url": "http://8.8.8.8/a.png", "media_type": 2, "version": 2, "scene": 1, "openid": "a b"}),
            40003,
            "openid",
        ),
    ];
    for (body, code, needle) in cases {
        let v = submit(&s, &t, body.clone()).await;
        assert_err(&v, code);
        assert!(
            v["errmsg"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
        assert!(v.get("trace_id").is_none());
    }
    // Lenient on types, as for text: "2" is 2.
    let v = submit(
        &s,
        &t,
        json!({"media_url": format!("http://{o}/image.png"), "media_type": "2", "version": "2", "scene": "1", "openid": "o1"}),
    )
    .await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = s.post("/wxa/media_check_async", "{}").await;
    assert_err(&v, 41001);
    s.shutdown().await;
}

/// Every spelling of a private address, and IPv6 forms carrying one, is refused before any
/// connection is made.
#[tokio::test]
async fn private_literals_and_embeddings_are_refused_at_once() {
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(r.start().await, "", "")).await;
    let t = s.token().await;
    for url in [
        "http://167772161/a.png",
        "http://0x0a.1/a.png",
        "http://012.0.0.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/a.png",
        "http://[64:ff9b::a00:1]/a.png",
        "http://[64:ff9b::7f00:1]/a.png",
        "http://[2002:a00:1::1]/a.png",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/a.png",
        "http://[fd00::1]/a.png",
        "http://[fe80::1]/a.png",
        "http://0.0.0.0/a.png",
    ] {
        let v = submit(&s, &t, media(url, 2)).await;
        assert_err(&v, 47001);
        assert!(
            v["errmsg"].as_str().unwrap().contains("is refused"),
            "{url}: {v}"
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn an_image_is_fetched_analysed_and_its_verdict_pushed_signed() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(r.start().await, "", "")).await;
    let t = s.token().await;
    let trace = accepted(&s, &t, &format!("http://{o}/image.png"), 2).await;
    let job = finished(&s, &trace).await;
    assert_eq!(job["state"], "delivered", "{job}");
    assert_eq!(job["attempts"], 1);

    let pushes = r.for_trace(&trace);
    assert_eq!(pushes.len(), 1);
    let p = &pushes[0];
    assert_eq!(p.content_type, "application/json");
    assert_eq!(p.query["app"], "1", "the push URL's own query is kept");
    let (ts, nonce) = (&p.query["timestamp"], &p.query["nonce"]);
    assert_eq!(p.query["signature"], sha1_hex(&[PUSH_TOKEN, ts, nonce]));
    assert_eq!(
        p.query["openid"], "oUser_1",
        "the push names the user in its query"
    );
    assert!(!p.query.contains_key("encrypt_type"));
    assert_eq!(
        p.json(),
        json!({"ToUserName": ORIGINAL_ID, "FromUserName": "oUser_1", "CreateTime": T0_MS / 1000,
            "MsgType": "event", "Event": "wxa_media_check", "appid": APPID, "trace_id": trace, "version": 2,
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": "pass", "label": 100, "prob": 90},
                {"strategy": "format", "errcode": 0, "suggest": "pass", "label": 100, "prob": 100}],
            "errcode": 0, "errmsg": "ok", "result": {"suggest": "pass", "label": 100}})
    );

    // Audio too.
    let trace2 = accepted(&s, &t, &format!("http://{o}/audio.mp3"), 1).await;
    let audio = finished(&s, &trace2).await;
    assert_eq!(audio["verdict"]["result"]["suggest"], "pass", "{audio}");

    // The app reads its own verdict back; another app cannot.
    let (_, v) = s
        .post(
            &format!("/wxa/media_check_async/result?access_token={t}"),
            json!({"trace_id": trace}).to_string(),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["state"], "delivered");
    assert_eq!(
        v["verdict"]["result"],
        json!({"suggest": "pass", "label": 100})
    );
    let other = s.token_for(APPID2, SECRET2).await;
    for trace_id in [trace.as_str(), "00000000-00000000-00000000"] {
        let (_, v) = s
            .post(
                &format!("/wxa/media_check_async/result?access_token={other}"),
                json!({"trace_id": trace_id}).to_string(),
            )
            .await;
        assert_err(&v, 40097);
        assert!(v.get("verdict").is_none());
    }
    s.shutdown().await;
}

#[tokio::test]
async fn xml_and_safe_mode_pushes() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let key_text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let s = TestServer::start_with(&gateway_config(
        r.start().await,
        "",
        &format!("push_format = \"xml\"\npush_mode = \"aes\"\nencoding_aes_key = \"{key_text}\""),
    ))
    .await;
    let t = s.token().await;
    let trace = accepted(&s, &t, &format!("http://{o}/image.png"), 2).await;
    assert_eq!(finished(&s, &trace).await["state"], "delivered");
    let p = r.all().pop().unwrap();
    assert_eq!(p.content_type, "text/xml");
    assert_eq!(p.query["encrypt_type"], "aes");
    let body = String::from_utf8(p.body.clone()).unwrap();
    let start = body.find("<Encrypt><![CDATA[").unwrap() + "<Encrypt><![CDATA[".len();
    let encrypted = &body[start..start + body[start..].find("]]>").unwrap()];
    assert!(body.starts_with(&format!(
        "<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
    )));
    let (ts, nonce) = (&p.query["timestamp"], &p.query["nonce"]);
    assert_eq!(p.query["signature"], sha1_hex(&[PUSH_TOKEN, ts, nonce]));
    assert_eq!(
        p.query["msg_signature"],
        sha1_hex(&[PUSH_TOKEN, ts, nonce, encrypted])
    );
    // (The compatibility suite decrypts safe-mode pushes with wechatpy, independently.)
    let key = modgate::config::decode_aes_key(key_text).unwrap();
    let d = modgate::jobs::push::decrypt(&key, encrypted).unwrap();
    assert_eq!(d.appid, APPID);
    let xml = String::from_utf8(d.msg).unwrap();
    assert!(
        xml.contains(&format!("<trace_id><![CDATA[{trace}]]></trace_id>")),
        "{xml}"
    );
    assert!(
        xml.contains("<Event><![CDATA[wxa_media_check]]></Event>"),
        "{xml}"
    );
    assert!(xml.contains("<result><suggest><![CDATA[pass]]></suggest><label>100</label></result>"));
    s.shutdown().await;
}

/// A request without `version` is v1 (SPEC §12): no scene, no openid, no visit needed; its push
/// has the v1 shape (`isrisky`, `extra_info_json`, `status_code`, no `detail`) and names no user,
/// and a download failure is status_code 4294966288 (-1008 as unsigned 32-bit).
#[tokio::test]
async fn v1_submissions_are_pushed_in_the_v1_shape() {
    let o = Origin::default().start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(r.start().await, "", "")).await;
    let t = s.token().await;
    let mut traces = Vec::new();
    for path in ["/image.png", "/missing"] {
        let v = submit(
            &s,
            &t,
            json!({"media_url": format!("http://{o}{path}"), "media_type": 2}),
        )
        .await;
        assert_eq!(v["errcode"], 0, "{path}: {v}");
        traces.push(v["trace_id"].as_str().unwrap().to_owned());
    }
    let job = finished(&s, &traces[0]).await;
    assert_eq!(job["state"], "delivered", "{job}");
    assert_eq!(job["version"], 1, "{job}");
    let p = r.for_trace(&traces[0]).pop().unwrap();
    assert!(!p.query.contains_key("openid"), "{:?}", p.query);
    let (ts, nonce) = (&p.query["timestamp"], &p.query["nonce"]);
    assert_eq!(p.query["signature"], sha1_hex(&[PUSH_TOKEN, ts, nonce]));
    assert_eq!(
        p.json(),
        json!({"ToUserName": ORIGINAL_ID, "FromUserName": "", "CreateTime": T0_MS / 1000,
            "MsgType": "event", "Event": "wxa_media_check", "appid": APPID, "trace_id": traces[0],
            "isrisky": 0, "extra_info_json": "", "status_code": 0})
    );
    assert_eq!(finished(&s, &traces[1]).await["state"], "delivered");
    let failed = r.for_trace(&traces[1]).pop().unwrap().json();
    assert_eq!(failed["status_code"], 4_294_966_288u64, "{failed}");
    assert_eq!(failed["isrisky"], 0, "{failed}");
    // Any version but 2 (or none) is refused, never taken as v1.
    let v = submit(
        &s,
        &t,
        json!({"media_url": format!("http://{o}/image.png"), "media_type": 2, "version": 1}),
    )
    .await;
    assert_eq!(v["errcode"], 47001, "{v}");
    s.shutdown().await;
}

/// Downloads that fail in any way push errcode -1008 with the reason; redirects within the
/// limit are followed.
#[tokio::test]
async fn failed_downloads_push_1008_with_the_reason() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let s =
        TestServer::start_with(&gateway_config(r.start().await, "max_bytes = 10485760", "")).await;
    let t = s.token().await;
    let cases = [
        ("/missing", "HTTP 404"),
        ("/big", "larger than 10485760 bytes"),
        ("/endless", "larger than 10485760 bytes"),
        ("/slow", "timed out"),
        ("/to-private", "10.0.0.1 is a private address"),
        ("/to-mapped", "192.168.0.1 is a private address"),
        ("/hops/4", "more than 3 redirects"),
    ];
    let mut traces = Vec::new();
    for (path, _) in cases {
        traces.push(accepted(&s, &t, &format!("http://{o}{path}"), 2).await);
    }
    let ok = accepted(&s, &t, &format!("http://{o}/hops/3"), 2).await;
    for ((path, reason), trace) in cases.iter().zip(&traces) {
        let job = finished(&s, trace).await;
        assert_eq!(job["state"], "delivered", "{path}: {job}");
        let push = r.for_trace(trace).pop().unwrap().json();
        assert_eq!(push["errcode"], -1008, "{path}: {push}");
        let msg = push["errmsg"].as_str().unwrap();
        assert!(msg.contains(reason), "{path}: {msg}");
        assert_eq!(push["result"]["suggest"], "review", "{path}");
        // Led by content_model all the same, carrying the failure (SPEC §12).
        assert_eq!(
            push["detail"],
            json!([{"strategy": "content_model", "errcode": -1008, "suggest": "review", "label": 100, "prob": 0}])
        );
    }
    assert_eq!(finished(&s, &ok).await["verdict"]["errcode"], 0);
    assert_eq!(origin.hits("/hops/0"), 1, "three hops were followed");
    assert_eq!(origin.hits("/hops/1"), 2);
    s.shutdown().await;
}

#[tokio::test]
async fn files_of_the_wrong_kind_push_40004() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(r.start().await, "", "")).await;
    let t = s.token().await;
    let cases = [
        ("/page.html", 2, "not a supported image or audio format"),
        ("/image.png", 1, "media is png, not audio"),
        ("/audio.mp3", 2, "media is mp3, not an image"),
        // Served gzip-encoded: the bytes are judged as sent, never decompressed.
        ("/image.png.gz", 2, "not a supported"),
    ];
    for (path, kind, reason) in cases {
        let trace = accepted(&s, &t, &format!("http://{o}{path}"), kind).await;
        finished(&s, &trace).await;
        let push = r.for_trace(&trace).pop().unwrap().json();
        assert_eq!(push["errcode"], 40004, "{path}: {push}");
        assert!(
            push["errmsg"].as_str().unwrap().contains(reason),
            "{path}: {push}"
        );
    }
    s.shutdown().await;
}

/// The receiver is down when the verdict is ready and comes up later: the retry delivers.
#[tokio::test]
async fn a_receiver_that_comes_back_gets_the_push() {
    let origin = Origin::default();
    let o = origin.start().await;
    // Hold a port bound but not listening: connections to it are refused, and no other socket
    // (a parallel test's listener, an outgoing connection's source port) can take it before the
    // receiver listens on it.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap();
    let s = TestServer::start_with(&gateway_config(port, "", "").replace(
        "push_retry_secs = [0.05, 0.1, 0.2]",
        "push_retry_secs = [0.2, 0.4, 0.8, 1.6]",
    ))
    .await;
    let t = s.token().await;
    let trace = accepted(&s, &t, &format!("http://{o}/image.png"), 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = admin_job(&s, &trace).await;
        if job["attempts"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(job["state"], "pushing", "{job}");
            assert!(
                job["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("push attempt 1 failed"),
                "{job}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no push attempt: {job}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = Receiver::new();
    r.start_on(reserved.listen(1024).unwrap());
    let job = finished(&s, &trace).await;
    assert_eq!(job["state"], "delivered", "{job}");
    assert!(job["attempts"].as_u64().unwrap() >= 2, "{job}");
    assert_eq!(r.for_trace(&trace).len(), 1);
    s.shutdown().await;
}

/// A receiver that always fails (5xx, or a redirect, which is a failure too) gets every attempt
/// of the schedule, then the job is dead-lettered, listed, and can be retried by the operator.
#[tokio::test]
async fn a_receiver_failing_forever_dead_letters_the_job() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(r.start().await, "", "")).await;
    let t = s.token().await;
    let mut traces = Vec::new();
    for status in [500, 302] {
        r.status.store(status, Ordering::Relaxed);
        let trace = accepted(&s, &t, &format!("http://{o}/image.png"), 2).await;
        let job = finished(&s, &trace).await;
        assert_eq!(job["state"], "dead", "{job}");
        assert_eq!(job["attempts"], 4, "the first attempt and three retries");
        let reason = if status == 500 {
            "HTTP 500"
        } else {
            "HTTP 302"
        };
        assert!(
            job["last_error"].as_str().unwrap().contains(reason),
            "{job}"
        );
        assert_eq!(r.for_trace(&trace).len(), 4);
        traces.push(trace);
    }
    let dead: Vec<Value> = json_of(
        s.client
            .get(s.admin_url("/admin/media?state=dead"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let listed: Vec<&str> = dead
        .iter()
        .map(|j| j["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, traces);

    // The operator fixes the receiver and retries one.
    r.status.store(200, Ordering::Relaxed);
    let resp = s
        .client
        .post(s.admin_url(&format!("/admin/media/{}/retry", traces[0])))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let job = finished(&s, &traces[0]).await;
    assert_eq!(job["state"], "delivered", "{job}");
    let resp = s
        .client
        .post(s.admin_url(&format!("/admin/media/{}/retry", traces[0])))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "only dead jobs are retried");
    let resp = s
        .client
        .get(s.admin_url("/admin/media/00000000-00000000-00000000"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let metrics = s.metrics_text().await;
    for line in [
        "modgate_media_dead_letters_total 2",
        "modgate_media_jobs_total{outcome=\"accepted\"} 2",
        "modgate_media_jobs_total{outcome=\"dead\"} 2",
        "modgate_media_jobs_total{outcome=\"delivered\"} 1",
        "modgate_media_push_attempts_total{outcome=\"status\"} 8",
        "modgate_media_push_attempts_total{outcome=\"delivered\"} 1",
        "modgate_media_queue_depth 0",
        "modgate_media_fetch_seconds_count{outcome=\"ok\"} 2",
        &format!("modgate_media_fetch_bytes_total {}", 2 * png().len()),
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    s.shutdown().await;
}

/// With the queue full, a submission answers -1 and gets no trace_id.
#[tokio::test]
async fn a_full_queue_answers_system_busy() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    r.status.store(503, Ordering::Relaxed);
    let s = TestServer::start_with(
        &gateway_config(
            r.start().await,
            "max_queued = 2\nmax_queued_per_app = 2",
            "",
        )
        .replace(
            "push_retry_secs = [0.05, 0.1, 0.2]",
            "push_retry_secs = [60]",
        ),
    )
    .await;
    let t = s.token().await;
    for _ in 0..2 {
        accepted(&s, &t, &format!("http://{o}/image.png"), 2).await;
    }
    let v = submit(&s, &t, media(&format!("http://{o}/image.png"), 2)).await;
    assert_err(&v, -1);
    assert!(v.get("trace_id").is_none());
    s.shutdown().await;
}

/// One app whose push URL keeps failing (its jobs stay open for the whole retry schedule) fills
/// only its share of the queue: its next submission answers -1 naming the share and consumes no
/// quota, while the other app's jobs are accepted and delivered.
#[tokio::test]
async fn an_app_with_a_failing_push_url_fills_only_its_share_of_the_queue() {
    let origin = Origin::default();
    let o = origin.start().await;
    let failing = Receiver::new();
    failing.status.store(500, Ordering::Relaxed);
    let fine = Receiver::new();
    let (f, g) = (failing.start().await, fine.start().await);
    let config = gateway_config(f, "max_queued = 10\nmax_queued_per_app = 3", "")
        .replace(
            "push_retry_secs = [0.05, 0.1, 0.2]",
            "push_retry_secs = [60]",
        )
        .replace(
            &format!("http://{f}/push?app=2"),
            &format!("http://{g}/push?app=2"),
        )
        .replace("enforce = false", "enforce = true");
    let s = TestServer::start_with(&config).await;
    let image = format!("http://{o}/image.png");
    let quota_used = async |token: &str| {
        let (_, v) = s
            .post(
                &format!("/cgi-bin/openapi/quota/get?access_token={token}"),
                r#"{"cgi_path":"/wxa/media_check_async"}"#,
            )
            .await;
        v["quota"]["used"].as_u64().unwrap()
    };
    let visit = async |token: &str| {
        let (_, v) = s
            .post(
                &format!("/wxa/visit/report?access_token={token}"),
                json!({"openid": "oUser_1"}).to_string(),
            )
            .await;
        assert_eq!(v["errcode"], 0, "{v}");
    };

    let t1 = s.token().await;
    visit(&t1).await;
    for _ in 0..3 {
        accepted(&s, &t1, &image, 2).await;
    }
    let v = submit(&s, &t1, media(&image, 2)).await;
    assert_err(&v, -1);
    let errmsg = v["errmsg"].as_str().unwrap();
    assert!(errmsg.contains("3 media jobs unfinished, its share"), "{v}");
    assert!(v.get("trace_id").is_none(), "{v}");
    assert_eq!(
        quota_used(&t1).await,
        3,
        "the refused submission was not counted"
    );

    // The other app is unaffected: accepted, analysed and delivered.
    let t2 = s.token_for(APPID2, SECRET2).await;
    visit(&t2).await;
    let mut theirs = HashSet::new();
    for _ in 0..3 {
        theirs.insert(accepted(&s, &t2, &image, 2).await);
    }
    fine.wait_for_all(&theirs, Duration::from_secs(30)).await;
    assert_eq!(quota_used(&t2).await, 3);
    // Delivered jobs free their places: the app has room again.
    for _ in 0..3 {
        accepted(&s, &t2, &image, 2).await;
    }
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains(r#"modgate_media_jobs_total{outcome="refused_app_share"} 1"#),
        "{metrics}"
    );
    s.shutdown().await;
}

/// Clients that go away while their submission is being accepted (from before the request is
/// read to after the job is written) leave nothing half done: every job the gateway wrote is
/// worked and delivered, and the queue's count of unfinished jobs comes back down, so the queue
/// has all its room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_leaving_mid_submission_leak_no_place_in_the_queue() {
    use tokio::io::AsyncWriteExt;
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(
        r.start().await,
        "max_queued = 8\nmax_queued_per_app = 8",
        "",
    ))
    .await;
    let token = s.token().await;
    let body = media(&format!("http://{o}/image.png"), 2).to_string();
    let request = format!(
        "POST /wxa/media_check_async?access_token={token} HTTP/1.1\r\nHost: x\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Disconnects from 0 to 3 ms after the request was sent, in steps of 20 µs: some land
    // before the job is read, some while it is written, some after.
    for i in 0..150u64 {
        let mut stream = tokio::net::TcpStream::connect(s.api).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_micros(20 * i)).await;
        // Closed with a reset, as a client that gives up does.
        stream.set_zero_linger().unwrap();
        drop(stream);
        // At most a few jobs in flight, so the queue is never full for a real reason.
        if i % 4 == 3 {
            settle(&s).await;
        }
    }
    // Every job written is worked: soon none is left queued or pushing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        settle(&s).await;
        let mut open = Vec::new();
        for state in ["queued", "pushing"] {
            let (status, v) = admin_call(
                &s,
                reqwest::Method::GET,
                &format!("/admin/media?state={state}"),
                "application/json",
                Vec::new(),
            )
            .await;
            assert_eq!(status, 200);
            open.extend(v.as_array().unwrap().iter().cloned());
        }
        if open.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs written but never worked: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the queue has all its room: eight accepted at once.
    let mut ours = HashSet::new();
    for _ in 0..8 {
        ours.insert(accepted(&s, &token, &format!("http://{o}/image.png"), 2).await);
    }
    r.wait_for_all(&ours, Duration::from_secs(30)).await;
    s.shutdown().await;
}

/// Waits until the gateway holds no unfinished media job.
async fn settle(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = s.metrics_text().await;
        let depth = text
            .lines()
            .find_map(|l| l.strip_prefix("modgate_media_queue_depth "))
            .map(|v| v.trim().parse::<f64>().unwrap());
        if depth == Some(0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "media jobs never finished: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Media submissions count against the media quota and need a fresh visit.
#[tokio::test]
async fn media_checks_have_their_own_limits() {
    let r = Receiver::new();
    let config = gateway_config(r.start().await, "", "media_per_day = 1")
        .replace("enforce = false", "enforce = true");
    let s = TestServer::start_with(&config).await;
    let t = s.token().await;
    let body = media("http://8.8.8.8/a.png", 2);
    assert_err(&submit(&s, &t, body.clone()).await, 61010);
    let (_, v) = s
        .post(
            &format!("/wxa/visit/report?access_token={t}"),
            json!({"openid": "oUser_1"}).to_string(),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    // The refused call above was counted (the visit check comes after the quota), so the day's
    // single call is spent.
    assert_err(&submit(&s, &t, body).await, 45009);
    s.shutdown().await;
}

async fn admin_call(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = s
        .client
        .request(method, s.admin_url(path))
        .bearer_auth(ADMIN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The push for a newly submitted job, once delivered.
async fn verdict_for(s: &TestServer, r: &Receiver, token: &str, url: &str, kind: u8) -> Value {
    let trace = accepted(s, token, url, kind).await;
    assert_eq!(finished(s, &trace).await["state"], "delivered");
    r.for_trace(&trace).pop().unwrap().json()
}

/// An image whose verdict is `review` waits in the review queue with its URL, analysis and hash;
/// the reviewer sees the file through the admin listener; a reviewer who confirms it risky with
/// feedback puts the hash in the app's bank, and the next submission of the image is risky. The
/// verdicts are counted for the app (its Prometheus series, its usage history).
#[tokio::test]
async fn a_review_image_is_queued_and_a_confirmed_risky_one_joins_the_bank() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let config = format!(
        "{}\n[review]\npass_sample_every = 0\n[metrics]\napps = [\"{APPID2}\"]\n",
        gateway_config(r.start().await, "", "")
    );
    let s = TestServer::start_with(&config).await;
    let t = s.token_for(APPID2, SECRET2).await;
    let hash = {
        let img = image::load_from_memory(&encode(&scene(640, 480, 40), image::ImageFormat::Png))
            .unwrap();
        modgate::media::pdq::hash_image(&img).unwrap().0.to_hex()
    };
    let entries = json!([{"hash": hash, "kind": "image", "label": 21000, "suggest": "review"}]);
    let (status, v) = admin_call(
        &s,
        reqwest::Method::PUT,
        "/admin/banks/global",
        "application/json",
        entries.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let url = format!("http://{o}/other.png");
    let push = verdict_for(&s, &r, &t, &url, 2).await;
    assert_eq!(push["result"]["suggest"], "review", "{push}");
    let trace = push["trace_id"].as_str().unwrap().to_owned();

    let (status, item) = admin_call(
        &s,
        reqwest::Method::GET,
        &format!("/admin/review/items/{trace}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["appid"], APPID2);
    assert_eq!(item["reason"], "review");
    assert_eq!(item["label"], 21000);
    assert_eq!(item["hits"], json!(["hash_bank"]));
    assert_eq!(item["content"]["kind"], "media");
    assert_eq!(item["content"]["url"], url.as_str());
    assert_eq!(item["content"]["media_type"], "image");
    assert_eq!(item["content"]["hash"], hash.as_str());
    assert_eq!(item["content"]["analysis"]["result"], push["result"]);

    // The file, fetched again by the gateway for the reviewer's browser, served as what it is.
    let resp = s
        .client
        .get(s.admin_url(&format!("/admin/review/items/{trace}/media")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        encode(&scene(640, 480, 40), image::ImageFormat::Png).as_slice()
    );
    // Gone from its origin since: the reviewer is told so.
    let once = verdict_for(&s, &r, &t, &format!("http://{o}/once.png"), 2).await;
    assert_eq!(once["result"]["suggest"], "review", "{once}");
    let (status, v) = admin_call(
        &s,
        reqwest::Method::GET,
        &format!(
            "/admin/review/items/{}/media",
            once["trace_id"].as_str().unwrap()
        ),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 502, "{v}");
    assert!(v["error"].as_str().unwrap().contains("HTTP 404"), "{v}");

    // Counted for the app: media_check_async's series and this hour's history.
    let metrics = s.metrics_text().await;
    let series = format!(
        "modgate_app_verdicts_total{{api=\"media_check_async\",appid=\"{APPID2}\",suggest=\"review\"}} 2"
    );
    assert!(
        metrics.contains(&series),
        "{series} missing from:\n{metrics}"
    );
    let (status, history) = admin_call(
        &s,
        reqwest::Method::GET,
        &format!("/admin/usage/{APPID2}?span=hour"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let reviewed: u64 = history["media_check_async"]["review"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(reviewed, 2, "{history}");

    let post = |path: String, body: Value| {
        let s = &s;
        async move {
            admin_call(
                s,
                reqwest::Method::POST,
                &path,
                "application/json",
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    let base = format!("/admin/review/items/{trace}");
    let (status, v) = post(format!("{base}/claim"), json!({"reviewer": "ann"})).await;
    assert_eq!(status, 200, "{v}");
    // A passed image has nothing to feed back: refused, nothing recorded.
    let (status, v) = post(
        format!("{base}/decision"),
        json!({"reviewer": "ann", "outcome": "pass", "feedback": true}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(
        format!("{base}/decision"),
        json!({"reviewer": "ann", "outcome": "risky", "reason": "known scam flyer", "feedback": true, "label": 20002}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["decision"]["feedback"].as_str().unwrap().contains(&hash),
        "{v}"
    );
    let (_, bank) = admin_call(
        &s,
        reqwest::Method::GET,
        &format!("/admin/banks/{APPID2}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(bank[0]["hash"], hash.as_str(), "{bank}");
    assert_eq!(bank[0]["suggest"], "risky");
    assert_eq!(bank[0]["label"], 20002);
    let push = verdict_for(&s, &r, &t, &url, 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "risky", "label": 20002}),
        "{push}"
    );
    s.shutdown().await;
}

/// An image banked by upload is caught in a resized, re-encoded copy, for its app only; the
/// global bank applies to every app; audio is banked by exact content; entries can be removed;
/// banks survive a restart; bad changes are refused whole.
#[tokio::test]
async fn hash_banks_catch_banked_media() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let dir = fresh_dir("banks");
    let config = format!(
        "{}\n[state]\ndata_dir = \"{}\"\n",
        gateway_config(r.start().await, "", ""),
        dir.display()
    );
    let s = TestServer::start_with(&config).await;
    let (t1, t2) = (s.token().await, s.token_for(APPID2, SECRET2).await);
    let banked = encode(&scene(640, 480, 3), image::ImageFormat::Png);
    let (status, v) = admin_call(
        &s,
        reqwest::Method::POST,
        &format!("/admin/banks/{APPID}?label=20002&suggest=risky&note=case%2042"),
        "image/png",
        banked,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["count"], 1);
    let image_hash = v["added"][0]["hash"].as_str().unwrap().to_owned();
    assert_eq!(v["added"][0]["note"], "case 42");

    let copy = format!("http://{o}/copy.jpg");
    let push = verdict_for(&s, &r, &t1, &copy, 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "risky", "label": 20002}),
        "{push}"
    );
    assert_eq!(push["detail"][0]["strategy"], "content_model");
    assert_eq!(push["detail"][0]["suggest"], "risky");
    assert_eq!(push["detail"][0]["label"], 20002);
    assert_eq!(push["detail"][2]["strategy"], "hash_bank");
    assert!(push["detail"][2]["prob"].as_u64().unwrap() >= 88, "{push}");
    assert_eq!(
        push["detail"][0]["prob"], push["detail"][2]["prob"],
        "the deciding strategy's prob: {push}"
    );
    let other = format!("http://{o}/other.png");
    assert_eq!(
        verdict_for(&s, &r, &t1, &other, 2).await["result"]["suggest"],
        "pass"
    );
    // A QR code leading elsewhere is advertising.
    let push = verdict_for(&s, &r, &t1, &format!("http://{o}/qr.png"), 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "risky", "label": 10001}),
        "{push}"
    );
    assert_eq!(
        push["detail"].as_array().unwrap().last().unwrap()["strategy"],
        "qr_code"
    );
    // The bank is app 1's: app 2 is not affected.
    assert_eq!(
        verdict_for(&s, &r, &t2, &copy, 2).await["result"]["suggest"],
        "pass"
    );

    // The global bank: by hash (JSON), and an audio file by upload.
    let other_hash = {
        let img = image::load_from_memory(&encode(&scene(640, 480, 40), image::ImageFormat::Png))
            .unwrap();
        modgate::media::pdq::hash_image(&img).unwrap().0.to_hex()
    };
    let entries =
        json!([{"hash": other_hash, "kind": "image", "label": 21000, "suggest": "review"}]);
    let (status, v) = admin_call(
        &s,
        reqwest::Method::PUT,
        "/admin/banks/global",
        "application/json",
        entries.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin_call(
        &s,
        reqwest::Method::POST,
        "/admin/banks/global?label=20001&suggest=risky",
        "audio/mpeg",
        mp3().to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["added"][0]["kind"], "audio");
    assert_eq!(v["count"], 2);
    let push = verdict_for(&s, &r, &t2, &other, 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "review", "label": 21000}),
        "{push}"
    );
    let push = verdict_for(&s, &r, &t2, &format!("http://{o}/audio.mp3"), 1).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "risky", "label": 20001}),
        "{push}"
    );

    // Listing, and refusals that leave the bank as it was.
    let (_, listed) = admin_call(
        &s,
        reqwest::Method::GET,
        "/admin/banks/global",
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    for (path, ctype, body, needle) in [
        (
            format!("/admin/banks/{APPID}"),
            "image/png",
            encode(&scene(64, 64, 5), image::ImageFormat::Png),
            "?label=",
        ),
        (
            format!("/admin/banks/{APPID}?label=20002&suggest=risky"),
            "image/png",
            encode(
                &image::RgbImage::from_pixel(200, 200, image::Rgb([80, 80, 80])),
                image::ImageFormat::Png,
            ),
            "too flat",
        ),
        (
            format!("/admin/banks/{APPID}"),
            "application/json",
            br#"[{"hash":"00","kind":"image","label":20002,"suggest":"risky"}]"#.to_vec(),
            "entry 0",
        ),
        (
            format!("/admin/banks/{APPID}"),
            "text/csv",
            b"hash,kind,label,suggest\nxyz,image,1,risky\n".to_vec(),
            "entry 0",
        ),
    ] {
        let (status, v) = admin_call(&s, reqwest::Method::POST, &path, ctype, body).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{path}: {v}");
    }
    let (status, _) = admin_call(
        &s,
        reqwest::Method::GET,
        "/admin/banks/wx9999999999999999",
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 404);
    let (_, listed) = admin_call(
        &s,
        reqwest::Method::GET,
        &format!("/admin/banks/{APPID}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    s.shutdown().await;

    // After a restart the banks are back; removing the entry lets the copy pass.
    let s = TestServer::start_with(&config).await;
    let t1 = s.token().await;
    assert_eq!(
        verdict_for(&s, &r, &t1, &copy, 2).await["result"]["suggest"],
        "risky"
    );
    let (status, v) = admin_call(
        &s,
        reqwest::Method::DELETE,
        &format!("/admin/banks/{APPID}/{image_hash}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!((status, &v["count"]), (200, &json!(0)), "{v}");
    let (status, _) = admin_call(
        &s,
        reqwest::Method::DELETE,
        &format!("/admin/banks/{APPID}/{image_hash}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        verdict_for(&s, &r, &t1, &copy, 2).await["result"]["suggest"],
        "pass"
    );
    s.shutdown().await;
}

// ----------------------------------------------------------------------------------------------
// A real process, killed with SIGKILL while thousands of jobs are queued.
// ----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_thousands_queued_then_every_job_is_pushed_after_restart() {
    const JOBS: usize = 2000;
    let origin = Origin::default();
    origin.delay_ms.store(100, Ordering::Relaxed);
    let o = origin.start().await;
    let r = Receiver::new();
    let push = r.start().await;
    let dir = fresh_dir("kill9");
    let config_path = dir.join("modgate.toml");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[state]\ndata_dir = \"{}\"\n{}",
        dir.join("data").display(),
        gateway_config(push, "workers = 8\nper_host = 8", "")
            .replace("[admin]\n", "[admin]\nlisten = \"127.0.0.1:0\"\n")
    );
    std::fs::write(&config_path, config).unwrap();

    let (mut first, api) = start_process(&config_path);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = process_token(&client, api).await;
    let url = format!("http://{api}/wxa/media_check_async?access_token={token}");
    let body = media(&format!("http://{o}/delayed.png"), 2).to_string();
    let accepted = Arc::new(Mutex::new(Vec::with_capacity(JOBS)));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, body, accepted) = (
            client.clone(),
            url.clone(),
            body.clone(),
            Arc::clone(&accepted),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..JOBS / 50 {
                let v: Value =
                    json_of(client.post(&url).body(body.clone()).send().await.unwrap()).await;
                assert_eq!(v["errcode"], 0, "{v}");
                accepted
                    .lock()
                    .unwrap()
                    .push(v["trace_id"].as_str().unwrap().to_owned());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    first.0.kill().unwrap(); // SIGKILL: no drain, no flush
    first.0.wait().unwrap();
    let accepted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert_eq!(accepted.len(), JOBS);
    let pushed_before = r.traces();
    assert!(
        pushed_before.len() < JOBS / 2,
        "the kill must land with most jobs still queued ({} pushed)",
        pushed_before.len()
    );

    origin.delay_ms.store(0, Ordering::Relaxed);
    let (_second, _) = start_process(&config_path);
    r.wait_for_all(&accepted, Duration::from_secs(120)).await;
}

/// The state section of a gateway sharing Redis under `prefix`, with its own data directory.
fn shared_state(prefix: &str, data_dir: &std::path::Path) -> String {
    format!(
        "[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n\
         redis_prefix = \"{prefix}\"\ndata_dir = \"{}\"\n",
        data_dir.display()
    )
}

/// SPEC §8 with media: jobs accepted by one of three instances are in Redis, its worker is
/// killed with most of them unfinished, and the other two take them over when their lease runs
/// out and push every one; they also answer the result of a job the first one accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_killed_instances_jobs_finish_on_another() {
    const JOBS: usize = 300;
    let origin = Origin::default();
    origin.delay_ms.store(200, Ordering::Relaxed);
    let o = origin.start().await;
    let r = Receiver::new();
    let push = r.start().await;
    let prefix = format!(
        "modgate-it-media-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let config_of = |dir: &std::path::Path| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{}{}",
            shared_state(&prefix, &dir.join("data")),
            gateway_config(push, "workers = 8\nper_host = 8\nlease_secs = 2", "")
                .replace("[admin]\n", "[admin]\nlisten = \"127.0.0.1:0\"\n")
        )
    };
    let (dir_a, dir_b, dir_c) = (
        fresh_dir("shared-a"),
        fresh_dir("shared-b"),
        fresh_dir("shared-c"),
    );
    std::fs::write(dir_a.join("modgate.toml"), config_of(&dir_a)).unwrap();
    std::fs::write(dir_b.join("modgate.toml"), config_of(&dir_b)).unwrap();
    std::fs::write(dir_c.join("modgate.toml"), config_of(&dir_c)).unwrap();

    let (mut first, api) = start_process(&dir_a.join("modgate.toml"));
    modgate::transport::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = process_token(&client, api).await;
    let body = media(&format!("http://{o}/delayed.png"), 2).to_string();
    let mut accepted = HashSet::new();
    for _ in 0..JOBS {
        let v: Value = json_of(
            client
                .post(format!(
                    "http://{api}/wxa/media_check_async?access_token={token}"
                ))
                .body(body.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(v["errcode"], 0, "{v}");
        accepted.insert(v["trace_id"].as_str().unwrap().to_owned());
    }
    first.0.kill().unwrap(); // SIGKILL: its jobs stay pending under its name in Redis
    first.0.wait().unwrap();
    let pushed_before = r.all().len();
    assert!(
        pushed_before < JOBS / 2,
        "the kill must land with most jobs unfinished ({pushed_before} pushed)"
    );

    origin.delay_ms.store(0, Ordering::Relaxed);
    // Two more instances share the queue: between them they finish every job.
    let (_second, api_b) = start_process(&dir_b.join("modgate.toml"));
    let (_third, _) = start_process(&dir_c.join("modgate.toml"));
    r.wait_for_all(&accepted, Duration::from_secs(60)).await;
    // The second instance answers for a job the first accepted (the token is the first's too).
    let some = accepted.iter().next().unwrap();
    let v: Value = json_of(
        client
            .post(format!(
                "http://{api_b}/wxa/media_check_async/result?access_token={token}"
            ))
            .body(json!({ "trace_id": some }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["trace_id"], some.as_str(), "{v}");
}

/// Two instances sharing Redis: jobs submitted to either are each pushed once, and either
/// instance reads back any job's verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_jobs_are_shared_and_pushed_once() {
    const JOBS: usize = 60;
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let push = r.start().await;
    let prefix = format!(
        "modgate-it-media2-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let config =
        || shared_state(&prefix, &fresh_dir("shared").join("data")) + &gateway_config(push, "", "");
    let gws = [
        TestServer::start_with(&config()).await,
        TestServer::start_with(&config()).await,
    ];
    let tokens = [gws[0].token().await, gws[1].token().await];
    let mut accepted = Vec::new();
    for i in 0..JOBS {
        let trace = accepted_job(
            &gws[i % 2],
            &tokens[i % 2],
            &format!("http://{o}/image.png"),
        )
        .await;
        accepted.push(trace);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.all().len() < JOBS {
        assert!(
            Instant::now() < deadline,
            "{} of {JOBS} pushed",
            r.all().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed: Vec<String> = r
        .all()
        .iter()
        .map(|p| p.json()["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pushed.len(), JOBS, "each job pushed once");
    let pushed: HashSet<String> = pushed.into_iter().collect();
    assert_eq!(pushed, accepted.iter().cloned().collect::<HashSet<_>>());
    // Either instance answers for any job; the admin API of either shows it delivered.
    for (i, trace) in accepted.iter().enumerate() {
        let reader = &gws[(i + 1) % 2];
        let (_, v) = reader
            .post(
                &format!(
                    "/wxa/media_check_async/result?access_token={}",
                    tokens[(i + 1) % 2]
                ),
                json!({ "trace_id": trace }).to_string(),
            )
            .await;
        assert_eq!(v["errcode"], 0, "{v}");
    }
    assert_eq!(admin_job(&gws[1], &accepted[0]).await["state"], "delivered");
    for gw in gws {
        gw.shutdown().await;
    }
}

async fn accepted_job(s: &TestServer, token: &str, url: &str) -> String {
    accepted(s, token, url, 2).await
}

/// `/readyz` once the analysis pool has loaded (or failed to load) the media models.
async fn models_loaded(s: &TestServer) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = s
            .client
            .get(s.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !body.contains("models: loading") {
            return body;
        }
        assert!(Instant::now() < deadline, "models never loaded: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn models_dir() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    assert!(
        dir.join("open-nsfw.onnx").is_file(),
        "{} has no models: run scripts/fetch-models",
        dir.display()
    );
    dir.display().to_string()
}

/// SPEC §14: with the models loaded, text written in an image is read and judged (an ad with a
/// contact: risky, 10001), the classifier scores every image, the push's `content_model` item
/// carries the combined verdict, and the job view lists each strategy with its time and the
/// text read; `/readyz` names the models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_read_text_in_images_and_score_them() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let media_extra = format!("models_dir = {:?}\nanalysis_workers = 1\n", models_dir());
    let s = TestServer::start_with(&gateway_config(r.start().await, &media_extra, "")).await;
    let ready = models_loaded(&s).await;
    assert!(
        ready.starts_with("ready\n") && ready.contains("open_nsfw") && ready.contains("PP-OCR"),
        "{ready}"
    );
    let t = s.token().await;
    let push = verdict_for(&s, &r, &t, &format!("http://{o}/ad-text.png"), 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "risky", "label": 10001}),
        "{push}"
    );
    let detail = push["detail"].as_array().unwrap();
    assert_eq!(detail[0]["strategy"], "content_model");
    assert_eq!(
        (detail[0]["suggest"].as_str(), detail[0]["label"].as_u64()),
        (Some("risky"), Some(10001))
    );
    let item = |name: &str| detail.iter().find(|d| d["strategy"] == name).cloned();
    assert_eq!(item("ocr").unwrap()["label"], 10001, "{push}");
    let nsfw = item("nsfw_model").unwrap();
    assert_eq!(
        (nsfw["suggest"].as_str(), nsfw["label"].as_u64()),
        (Some("pass"), Some(20002))
    );
    assert!(nsfw["prob"].as_u64().unwrap() < 10, "{nsfw}");

    let job = admin_job(&s, push["trace_id"].as_str().unwrap()).await;
    let media = &job["verdict"]["media"];
    assert_eq!(
        media["text"],
        json!(["加我微信 abc123456", "带你赚钱"]),
        "{job}"
    );
    assert!(media["nsfw_score"].as_f64().unwrap() < 0.1, "{job}");
    let runs = job["verdict"]["strategies"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "decode",
            "hash_bank",
            "qr_code",
            "image_text",
            "nsfw_model",
            "ocr"
        ]
    );
    assert!(
        runs.iter()
            .all(|r| r["outcome"] == "ok" && r["ms"].as_f64().unwrap() >= 0.0),
        "{runs:?}"
    );
    assert!(
        runs[5]["ms"].as_f64().unwrap() > 1.0,
        "OCR takes time: {runs:?}"
    );

    // A photo without text passes, with the classifier's item and an OCR item that found
    // nothing to flag.
    let push = verdict_for(&s, &r, &t, &format!("http://{o}/other.png"), 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "pass", "label": 100}),
        "{push}"
    );
    let strategies: Vec<&str> = push["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(strategies, ["content_model", "format", "nsfw_model", "ocr"]);
    s.shutdown().await;
}

/// The classifier's thresholds are the operator's: at 0 everything is pornography, risky with
/// 20002 and the score as prob; the synchronous image check gives the same analysis (87014).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classifier_thresholds_decide_and_img_sec_check_shares_the_analysis() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let media_extra = format!(
        "models_dir = {:?}\nanalysis_workers = 1\nnsfw_review = 0.0\nnsfw_risky = 0.0\nocr = false\n",
        models_dir()
    );
    let s = TestServer::start_with(&gateway_config(r.start().await, &media_extra, "")).await;
    models_loaded(&s).await;
    let t = s.token().await;
    let push = verdict_for(&s, &r, &t, &format!("http://{o}/other.png"), 2).await;
    assert_eq!(
        push["result"],
        json!({"suggest": "risky", "label": 20002}),
        "{push}"
    );
    let job = admin_job(&s, push["trace_id"].as_str().unwrap()).await;
    let runs = job["verdict"]["strategies"].as_array().unwrap();
    let ocr = runs.iter().find(|r| r["strategy"] == "ocr").unwrap();
    assert_eq!(ocr["outcome"], "skipped", "{ocr}");

    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(fixture("/other.png"));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = s
        .client
        .post(s.url(&format!("/wxa/img_sec_check?access_token={t}")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let v: Value = json_of(resp).await;
    assert_err(&v, 87014);
    s.shutdown().await;
}

/// Without models the gateway still runs: `/readyz` says why there are none, and the verdicts
/// record the model strategies as skipped. A model past its time limit fails its strategy
/// (errcode -1 in its item, the reason in the job view), never the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_models_or_past_their_time_the_job_still_finishes() {
    let origin = Origin::default();
    let o = origin.start().await;
    let r = Receiver::new();
    let s = TestServer::start_with(&gateway_config(
        r.start().await,
        "models_dir = \"/nonexistent/models\"\n",
        "",
    ))
    .await;
    let ready = models_loaded(&s).await;
    assert!(
        ready.contains("models: none (/nonexistent/models lacks open-nsfw.onnx"),
        "{ready}"
    );
    let t = s.token().await;
    let push = verdict_for(&s, &r, &t, &format!("http://{o}/ad-text.png"), 2).await;
    assert_eq!(push["result"]["suggest"], "pass", "{push}");
    let job = admin_job(&s, push["trace_id"].as_str().unwrap()).await;
    let skipped: Vec<&Value> = job["verdict"]["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 2, "{job}");
    assert!(
        skipped[0]["note"]
            .as_str()
            .unwrap()
            .contains("lacks open-nsfw.onnx")
    );
    s.shutdown().await;

    let r = Receiver::new();
    let media_extra = format!(
        "models_dir = {:?}\nanalysis_workers = 1\nmodel_timeout_secs = 0.001\n",
        models_dir()
    );
    let s = TestServer::start_with(&gateway_config(r.start().await, &media_extra, "")).await;
    models_loaded(&s).await;
    let t = s.token().await;
    let push = verdict_for(&s, &r, &t, &format!("http://{o}/ad-text.png"), 2).await;
    assert_eq!(push["errcode"], 0, "{push}");
    let detail = push["detail"].as_array().unwrap();
    for name in ["nsfw_model", "ocr"] {
        let item = detail.iter().find(|d| d["strategy"] == name).unwrap();
        assert_eq!(item["errcode"], -1, "{push}");
    }
    let job = admin_job(&s, push["trace_id"].as_str().unwrap()).await;
    let failed: Vec<&Value> = job["verdict"]["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "{job}");
    assert!(
        failed.iter().all(|r| r["note"] == "timed out"),
        "{failed:?}"
    );
    s.shutdown().await;
}
