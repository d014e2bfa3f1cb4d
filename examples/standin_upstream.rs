//! A stand-in for the platform behind modgate in pass-through mode, for the forwarding benchmark
//! (loadtest/forward.sh): `/cgi-bin/token` issues a token, the token check names the app, and
//! every other call is answered `{"errcode":0,"errmsg":"ok"}` after its body is read. The same
//! hyper/tokio setup as the ceiling, so a direct call to it and a call through modgate differ
//! only by the gateway's forwarding. Run:
//! `cargo run --release --example standin_upstream -- 127.0.0.1:18180`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const TOKEN: &[u8] =
    br#"{"access_token":"PLATFORM-STANDIN-TOKEN-0123456789abcdef0123456789abcdef","expires_in":7200}"#;
const OWNER: &[u8] = br#"{"errcode":0,"errmsg":"ok","appid":"wx0123456789abcdef"}"#;
const OK: &[u8] = br#"{"errcode":0,"errmsg":"ok"}"#;

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let _ = req.into_body().collect().await;
    let reply = match path.as_str() {
        "/cgi-bin/token" | "/cgi-bin/stable_token" => TOKEN,
        "/cgi-bin/account/getaccountbasicinfo" => OWNER,
        _ => OK,
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(reply)));
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
        .unwrap_or_else(|| "127.0.0.1:18180".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("stand-in upstream listening on {addr}");
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
