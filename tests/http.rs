//! Transport behaviour: routing, methods, body limits, keep-alive, header timeout, connection
//! limit, graceful drain, and the admin listener.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    let s = TestServer::start().await;
    let (status, v) = s.get("/no/such/api").await;
    assert_eq!(status, 404);
    assert_err(&v, 404);
    let resp = s.client.put(s.url("/cgi-bin/token")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let resp = s
        .client
        .delete(s.url("/cgi-bin/stable_token"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_err(&v, 43002);
    s.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_refused_before_it_is_read() {
    let s = TestServer::start().await;
    let t = s.token().await;
    // Announce 10 MB and send none of it: the answer must come without the body.
    let head = format!(
        "POST /wxa/msg_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n"
    );
    let reply = raw_exchange(s.api, head.as_bytes(), Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    assert!(reply.contains("\"errcode\":413"), "{reply}");

    // Chunked with no length: refused once the limit is crossed.
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    let head = format!(
        "POST /wxa/msg_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..20 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break; // the server may close as soon as it has answered
        }
    }
    let reply = read_until_close(&mut stream, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply:.200}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_body_arriving_in_pieces_is_read_whole() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let body = json!({"content": "加我微信买彩票，稳赚不赔", "version": 2, "scene": 2, "openid": "oPieces_0123456789"})
        .to_string();
    let whole = s.check(&t, &body).await;
    assert_eq!(whole["errcode"], 0, "{whole}");
    let bytes = body.as_bytes();
    let pieces = [&bytes[..7], &bytes[7..20], &bytes[20..]];
    let path = format!("/wxa/msg_sec_check?access_token={t}");
    // Once chunked and once by length, each piece written after a pause so the gateway reads
    // it as a frame of its own.
    for chunked in [true, false] {
        let mut stream = TcpStream::connect(s.api).await.unwrap();
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", bytes.len())
        };
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{framing}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        for piece in pieces {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if chunked {
                stream
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await
                    .unwrap();
                stream.write_all(piece).await.unwrap();
                stream.write_all(b"\r\n").await.unwrap();
            } else {
                stream.write_all(piece).await.unwrap();
            }
        }
        if chunked {
            stream.write_all(b"0\r\n\r\n").await.unwrap();
        }
        let reply = read_until_close(&mut stream, Duration::from_secs(10)).await;
        let json = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value =
            serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {reply}"));
        assert_eq!(v["errcode"], 0, "{reply}");
        assert_eq!(v["result"], whole["result"], "chunked {chunked}: {reply}");
        assert_eq!(v["detail"], whole["detail"], "chunked {chunked}: {reply}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let s = TestServer::start().await;
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    let req = format!(
        "GET /cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let close = format!(
        "GET /cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(close.as_bytes()).await.unwrap();
    let replies = read_until_close(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(replies.matches("HTTP/1.1 200").count(), 3, "{replies}");
    assert_eq!(replies.matches("access_token").count(), 3);
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_http_gets_400() {
    let s = TestServer::start().await;
    let reply = raw_exchange(s.api, b"NOT HTTP AT ALL\r\n\r\n", Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    s.shutdown().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off_at_the_header_timeout() {
    let s = TestServer::start_with(&format!(
        "[server]\nheader_read_timeout_secs = 1\n{}",
        default_config()
    ))
    .await;
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    stream
        .write_all(b"POST /wxa/msg_sec_check HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Trickle a header byte now and then, never finishing the head.
    let started = tokio::time::Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                // The server answered (408) or is closing: read to the end.
                let rest = read_until_close(&mut stream, Duration::from_secs(5)).await;
                assert!(
                    rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
                    "{rest}"
                );
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(
        closed,
        "connection still open after {:?}",
        started.elapsed()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_header_timeout_spares_a_slow_body_and_closes_an_idle_keep_alive_connection() {
    let s = TestServer::start_with(&format!(
        "[server]\nheader_read_timeout_secs = 1\n{}",
        default_config()
    ))
    .await;
    let t = s.token().await;
    let body = json!({"content": "今天天气很好", "version": 2, "scene": 2, "openid": "oSlowBody_0123456789"})
        .to_string();
    let bytes = body.as_bytes();
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    let head = format!(
        "POST /wxa/msg_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The head is complete: the body may take longer than the header timeout.
    let third = bytes.len() / 3;
    for piece in [
        &bytes[..third],
        &bytes[third..2 * third],
        &bytes[2 * third..],
    ] {
        tokio::time::sleep(Duration::from_millis(700)).await;
        stream.write_all(piece).await.unwrap();
    }
    // Answered, and then, with no further request, closed once the timeout has passed.
    let started = tokio::time::Instant::now();
    let reply = read_until_close(&mut stream, Duration::from_secs(8)).await;
    let waited = started.elapsed();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""errcode":0"#), "{reply}");
    assert!(
        waited < Duration::from_secs(6),
        "an idle keep-alive connection still open after {waited:?}"
    );
    s.shutdown().await;
}

/// Opens a connection whose request is in progress: the head of a msgSecCheck with its body
/// still to come.
async fn busy_connection(s: &TestServer, token: &str) -> TcpStream {
    let mut c = TcpStream::connect(s.api).await.unwrap();
    c.write_all(
        format!(
            "POST /wxa/msg_sec_check?access_token={token} HTTP/1.1\r\nHost: x\r\n\
             Content-Length: 52\r\n\r\n{{\"content\":\"hi\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    c
}

#[tokio::test]
async fn connection_limit_holds_clients_while_every_connection_is_busy() {
    let s = TestServer::start_with(&format!(
        "[server]\nmax_connections = 2\nmax_connections_per_client = 2\n{}",
        default_config()
    ))
    .await;
    let token = s.token().await;
    // The token's connection stays open in the client's pool, idle: it is the one closed to make
    // room for the second busy connection.
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Two connections with requests in progress take both slots.
    let mut busy = vec![
        busy_connection(&s, &token).await,
        busy_connection(&s, &token).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third client connects but is not served while both are busy.
    let mut third = TcpStream::connect(s.api).await.unwrap();
    third
        .write_all(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let early = read_until_close(&mut third, Duration::from_millis(500)).await;
    assert!(early.is_empty(), "served beyond the limit: {early}");
    // One request completes: its connection goes idle and makes room for the third.
    busy[0]
        .write_all(br#","version":2,"scene":1,"openid":"ab"}"#)
        .await
        .unwrap();
    let reply = read_until_close(&mut third, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    // The completed request was answered in full before its connection was closed.
    let first = read_until_close(&mut busy[0], Duration::from_secs(5)).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    drop(busy); // the other request is abandoned by its client
    s.shutdown().await;
}

/// Idle connections (kept alive between requests, or never sending a request) do not keep
/// clients out: at the limit the idlest is closed for the newcomer.
#[tokio::test]
async fn idle_connections_make_room_at_the_limit() {
    let s = TestServer::start_with(&format!(
        "[server]\nmax_connections = 2\nmax_connections_per_client = 2\n{}",
        default_config()
    ))
    .await;
    let req = b"GET /healthz-not-here HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut kept = TcpStream::connect(s.api).await.unwrap();
    kept.write_all(req).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::io::AsyncReadExt::read(&mut kept, &mut buf)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
    let _silent = TcpStream::connect(s.api).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let reply = raw_exchange(
            s.api,
            b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    }
    // The kept-alive connection was the idlest: it was closed.
    let closed = read_until_close(&mut kept, Duration::from_secs(2)).await;
    assert!(closed.is_empty(), "{closed}");
    s.shutdown().await;
}

/// A client that has just connected is not closed for a newcomer before its request could
/// arrive: the newcomer waits for it instead.
#[tokio::test]
async fn a_fresh_connection_is_not_closed_for_a_newcomer() {
    let s = TestServer::start_with(&format!(
        "[server]\nmax_connections = 1\nmax_connections_per_client = 1\n{}",
        default_config()
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await; // older than the idle grace itself
    let mut first = TcpStream::connect(s.api).await.unwrap();
    let newcomer = tokio::spawn(raw_exchange(
        s.api,
        b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    first
        .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until_close(&mut first, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 404"), "first: {reply:?}");
    let reply = newcomer.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 404"), "newcomer: {reply:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight() {
    let mut s = TestServer::start().await;
    let t = s.token().await;
    let body = json!({"content":"网络赌博","version":2,"scene":2,"openid":"o1"}).to_string();
    let (first, second) = body.as_bytes().split_at(10);
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    let head = format!(
        "POST /wxa/msg_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    s.begin_shutdown();
    // Draining: readiness turns 503 while the API finishes what it has.
    let mut ready = 0;
    for _ in 0..100 {
        ready = s
            .client
            .get(s.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 503);
    // New connections are no longer accepted on the API listener.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(s.api).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "API listener still accepting during drain");

    stream.write_all(second).await.unwrap();
    let reply = read_until_close(&mut stream, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"suggest\":\"risky\""), "{reply}");
    s.finished().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    // A header timeout far past the test's wait: only the shutdown can close the connection.
    let mut s = TestServer::start_with(&format!(
        "[server]\nheader_read_timeout_secs = 60\n{}",
        default_config()
    ))
    .await;
    let mut stream = TcpStream::connect(s.api).await.unwrap();
    let req = format!(
        "GET /cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Answered and kept alive; now idle between requests.
    s.begin_shutdown();
    let started = tokio::time::Instant::now();
    let rest = read_until_close(&mut stream, Duration::from_secs(20)).await;
    assert!(rest.is_empty() || rest.contains("access_token"), "{rest}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connection still open {:?} after shutdown began",
        started.elapsed()
    );
    s.finished().await;
}

#[tokio::test]
async fn admin_listener_health_and_metrics() {
    let s = TestServer::start().await;
    let t = s.token().await;
    s.check(
        &t,
        r#"{"content":"网络赌博","version":2,"scene":2,"openid":"o1"}"#,
    )
    .await;
    s.check(&t, r#"{"content":"x","version":2,"scene":9,"openid":"o1"}"#)
        .await;
    let get = |p: &str| s.client.get(s.admin_url(p)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let resp = get("/metrics").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for line in [
        r#"modgate_api_requests_total{api="msg_sec_check",errcode="0"} 1"#,
        r#"modgate_api_requests_total{api="msg_sec_check",errcode="40129"} 1"#,
        r#"modgate_api_requests_total{api="token",errcode="0"} 1"#,
        r#"modgate_api_request_duration_seconds_count{api="msg_sec_check"} 2"#,
        r#"modgate_verdicts_total{api="msg_sec_check",label="20006",suggest="risky"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    // Secrets and tokens never show up in metrics.
    assert!(!text.contains(SECRET) && !text.contains(&t));
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    let resp = s.client.post(s.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    s.shutdown().await;
}

/// Request smuggling probes. Ambiguous or malformed framing is answered 400 and the connection
/// closed; a message with both Content-Length and Transfer-Encoding is read by its chunks alone
/// and its connection closed after the answer (RFC 9112 §6.1; hyper drops the Content-Length
/// before the handler sees it). Either way nothing hidden behind the body is ever served.
#[tokio::test]
async fn request_smuggling_probes_never_reach_a_second_request() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let body = r#"{"content":"hi","version":2,"scene":1,"openid":"u"}"#;
    let head = format!("POST /wxa/msg_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\n");
    // A second request smuggled behind the first, if framing were read the other way.
    let hidden = "GET /cgi-bin/token?grant_type=client_credential HTTP/1.1\r\nHost: x\r\n\r\n";
    let n = body.len();
    let refused = [
        (
            "two Content-Length values",
            format!("{head}Content-Length: {n}\r\nContent-Length: 5\r\n\r\n{body}{hidden}"),
        ),
        (
            "a chunk size that is not hex",
            format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "a chunk size that overflows",
            format!(
                "{head}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{body}\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "a chunk size with a sign",
            format!(
                "{head}Transfer-Encoding: chunked\r\n\r\n-{n:x}\r\n{body}\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "an unknown transfer coding",
            format!("{head}Transfer-Encoding: xchunked\r\n\r\n{body}{hidden}"),
        ),
        (
            "chunked not last",
            format!("{head}Transfer-Encoding: chunked, gzip\r\n\r\n{body}{hidden}"),
        ),
        (
            "a space before the colon",
            format!(
                "{head}Transfer-Encoding : chunked\r\nContent-Length: {n}\r\n\r\n{body}{hidden}"
            ),
        ),
        (
            "a negative Content-Length",
            format!("{head}Content-Length: -5\r\n\r\n{body}{hidden}"),
        ),
        (
            "Content-Length then Transfer-Encoding",
            format!(
                "{head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{n:x}\r\n{body}\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "Transfer-Encoding then Content-Length",
            format!(
                "{head}Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{n:x}\r\n{body}\r\n0\r\n\r\n{hidden}",
                n + 10 + hidden.len()
            ),
        ),
    ];
    for (name, probe) in &refused {
        let started = std::time::Instant::now();
        let reply = raw_exchange(s.api, probe.as_bytes(), Duration::from_secs(5)).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{name}: {reply}");
        assert_eq!(reply.matches("HTTP/1.1 ").count(), 1, "{name}: {reply}");
        assert!(!reply.contains("access_token"), "{name}: {reply}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{name}: the connection was left open"
        );
    }
    // On a kept-alive connection, after requests framed each way: the valid ones are answered
    // in order, the conflicting one is refused and nothing behind it is served.
    let pipeline = format!(
        "{head}Content-Length: {n}\r\n\r\n{body}\
         {head}Transfer-Encoding: chunked\r\n\r\n{n:x}\r\n{body}\r\n0\r\n\r\n\
         {head}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{n:x}\r\n{body}\r\n0\r\n\r\n{hidden}"
    );
    let reply = raw_exchange(s.api, pipeline.as_bytes(), Duration::from_secs(5)).await;
    let statuses: Vec<&str> = reply
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &reply[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "400"], "{reply}");
    assert!(!reply.contains("access_token"), "{reply}");
    let metrics = s.metrics_text().await;
    let refused_line = metrics
        .lines()
        .find(|l| {
            l.starts_with("modgate_http_refused_total")
                && l.contains(r#"listener="api""#)
                && l.contains(r#"reason="conflicting_framing""#)
        })
        .unwrap_or_default();
    assert!(refused_line.ends_with(" 3"), "{refused_line:?}");
    s.shutdown().await;
}
