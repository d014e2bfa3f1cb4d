//! Hostile clients against the API listener, on raw sockets: complete request heads whose
//! bodies never come cannot keep other clients out, whether they come from one address (the
//! per-client share) or many (the body read timeout), and credentials carried outside the body
//! are judged before it is read.
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// The head of a stable_token request announcing a body of 100 bytes that never comes.
const WITHHELD: &[u8] =
    b"POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
      Content-Length: 100\r\n\r\n";

/// Connects to `to` from the loopback address `from` (any of 127.0.0.0/8 is this machine's).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// A token request from 127.0.0.1, answered within `within` or the test fails.
async fn served_within(s: &TestServer, within: Duration) -> Duration {
    let started = Instant::now();
    let url = s.url(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    ));
    let answer = tokio::time::timeout(within, s.client.get(url).send())
        .await
        .unwrap_or_else(|_| panic!("a real client was not served within {within:?}"))
        .unwrap();
    assert_eq!(answer.status(), 200);
    let v: Value = json_of(answer).await;
    assert!(v["access_token"].is_string(), "{v}");
    started.elapsed()
}

/// The status line and JSON body of an answer read whole.
fn status_and_body(answer: &str) -> (u16, Value) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// One address opens every connection the gateway allows and sends a complete head on each,
/// then nothing: it gets its share (a quarter) and is refused the rest at once with 503, and a
/// client from another address is served while those connections are still held (the body
/// read timeout is far away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_withholding_bodies_gets_its_share_and_no_more() {
    let config = default_config()
        + "[server]\nmax_connections = 16\nheader_read_timeout_secs = 60\n\
           body_read_timeout_secs = 60\n";
    let s = TestServer::start_with(&config).await;
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        let mut stream = connect_from(attacker, s.api).await;
        stream.write_all(WITHHELD).await.unwrap();
        // A refused connection is answered at once; a held one says nothing.
        let answer = read_until_close(&mut stream, Duration::from_millis(300)).await;
        if answer.is_empty() {
            held.push(stream);
        } else {
            let (status, v) = status_and_body(&answer);
            assert_eq!(status, 503, "{answer}");
            assert_eq!(v["errcode"], -1, "{answer}");
            assert!(
                v["errmsg"]
                    .as_str()
                    .unwrap()
                    .contains("each client address may hold 4"),
                "{answer}"
            );
            refused += 1;
        }
    }
    assert_eq!((held.len(), refused), (4, 12));
    // Another client is served while the four are held.
    let took = served_within(&s, Duration::from_secs(5)).await;
    eprintln!("served in {took:?} beside 4 held connections and 12 refused");
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains(r#"modgate_http_refused_total{listener="api",reason="client_share"} 12"#),
        "{metrics}"
    );
    drop(held);
    s.shutdown().await;
}

/// Many addresses, each within its share, take every connection with complete heads and no
/// bodies (stable_token before any credentials, msgSecCheck with a valid token): each is
/// answered 408 and closed once the body read timeout passes, and a real client waiting behind
/// them is served then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_bodies_are_cut_off_at_the_body_read_timeout() {
    let config = default_config()
        + "[server]\nmax_connections = 16\nheader_read_timeout_secs = 60\n\
           body_read_timeout_secs = 1\n";
    let s = TestServer::start_with(&config).await;
    let token = s.token().await;
    let check_head = format!(
        "POST /wxa/msg_sec_check?access_token={token} HTTP/1.1\r\nHost: x\r\n\
         Content-Length: 100\r\n\r\n"
    );
    let mut held = Vec::new();
    for i in 0..16u8 {
        let mut stream = connect_from(Ipv4Addr::new(127, 0, 1, 10 + i), s.api).await;
        let head = if i % 2 == 0 {
            WITHHELD
        } else {
            check_head.as_bytes()
        };
        stream.write_all(head).await.unwrap();
        held.push(stream);
    }
    let started = Instant::now();
    // Every connection is taken: the real client waits for the timeout, and no longer than
    // the timeout and a sweep or two.
    let took = served_within(&s, Duration::from_secs(10)).await;
    eprintln!("served after {took:?} behind 16 withheld bodies");
    for mut stream in held {
        let answer = read_until_close(&mut stream, Duration::from_secs(5)).await;
        let (status, v) = status_and_body(&answer);
        assert_eq!(status, 408, "{answer}");
        assert_eq!(v["errcode"], 408, "{answer}");
        assert!(
            v["errmsg"].as_str().unwrap().starts_with("request timeout"),
            "{answer}"
        );
        assert!(answer.to_ascii_lowercase().contains("connection: close"));
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains(r#"modgate_http_refused_total{listener="api",reason="body_timeout"} 16"#),
        "{metrics}"
    );
    s.shutdown().await;
}

/// A body that arrives whole, however slowly, within the timeout is served: the deadline is on
/// the body as a whole, from its head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_within_the_timeout_is_served() {
    let config = default_config() + "[server]\nbody_read_timeout_secs = 3\n";
    let s = TestServer::start_with(&config).await;
    let body =
        format!(r#"{{"appid":"{APPID}","secret":"{SECRET}","grant_type":"client_credential"}}"#);
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    for piece in body.as_bytes().chunks(8) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(piece).await.unwrap();
    }
    let answer = read_until_close(&mut stream, Duration::from_secs(5)).await;
    let (status, v) = status_and_body(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(v["access_token"].is_string(), "{answer}");
    s.shutdown().await;
}

/// clear_quota/v2 with its credentials in the query is judged before its body is read: a wrong
/// secret is answered while the body is still withheld.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_query_are_judged_before_the_body() {
    let config = default_config() + "[server]\nbody_read_timeout_secs = 60\n";
    let s = TestServer::start_with(&config).await;
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    let head = format!(
        "POST /cgi-bin/clear_quota/v2?appid={APPID}&appsecret=wrong HTTP/1.1\r\nHost: x\r\n\
         Content-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_close(&mut stream, Duration::from_secs(3)).await;
    let (status, v) = status_and_body(&answer);
    assert_eq!(status, 200, "{answer:?}");
    assert_eq!(v["errcode"], 40125, "{answer}");
    s.shutdown().await;
}
