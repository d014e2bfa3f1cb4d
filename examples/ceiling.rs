//! The benchmark ceiling: a minimal hyper server that reads a msgSecCheck v2 body with serde_json
//! and answers a fixed verdict. Same hyper/tokio setup as the gateway, none of its work (no
//! token check, no engine, no metrics), so `modgate / ceiling` is the share of the HTTP budget
//! the gateway keeps. Run: `cargo run --release --example ceiling -- 127.0.0.1:18081`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)] // parsed to pay the same cost as the gateway, not read
struct Body<'a> {
    content: std::borrow::Cow<'a, str>,
    version: u32,
    scene: u32,
    openid: &'a str,
}

const VERDICT: &[u8] = br#"{"errcode":0,"errmsg":"ok","trace_id":"6744b7a0-3f2a91c4-0b1e55d2","result":{"suggest":"pass","label":100},"detail":[{"strategy":"content_model","errcode":0,"suggest":"pass","label":100,"prob":90},{"strategy":"keyword","errcode":0}]}"#;

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = match serde_json::from_slice::<Body<'_>>(&body) {
        Ok(_) => Bytes::from_static(VERDICT),
        Err(_) => Bytes::from_static(br#"{"errcode":47001,"errmsg":"data format error"}"#),
    };
    let mut resp = Response::new(Full::new(reply));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(resp)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("ceiling listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
