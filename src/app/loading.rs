//! The admin listener while the gateway is still being built: loading thousands of stored tables
//! takes seconds, and an orchestrator probing a socket nobody listens on sees "connection
//! refused" and may kill the process. Bound first, the admin socket answers meanwhile:
//! `/healthz` 200 (the process is up), `/readyz` and everything else 503 `loading`. Each
//! connection gets one answer and is closed, so none outlives the switch to the real admin
//! service, which takes the same socket.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin socket answering "loading" until [`Loading::finish`].
pub struct Loading {
    stop: oneshot::Sender<()>,
    task: JoinHandle<TcpListener>,
}

impl Loading {
    /// Starts answering on `listener`.
    pub fn start(listener: TcpListener) -> Loading {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(answer);
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(false)
                                .header_read_timeout(std::time::Duration::from_secs(5))
                                .timer(hyper_util::rt::TokioTimer::new())
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
            }
            listener
        });
        Loading { stop, task }
    }

    /// Stops answering and hands the socket back (connections accepted meanwhile finish their
    /// one answer on their own).
    pub async fn finish(self) -> std::io::Result<TcpListener> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)
    }
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "ok\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "loading\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn answers_loading_until_finished_then_hands_the_socket_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let loading = Loading::start(listener);
        let ready = get(addr, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.ends_with("loading\n"), "{ready}");
        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 503"));

        let listener = loading.finish().await.unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr, "the same socket");
        // Nobody answers on it now until its new owner accepts.
        let client = tokio::spawn(get(addr, "/readyz"));
        let (mut conn, _) = listener.accept().await.unwrap();
        // Read the whole head before answering (closing on unread bytes would reset).
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"GET /readyz HTTP/1.1"));
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        drop(conn);
        assert!(client.await.unwrap().starts_with("HTTP/1.1 200"));
    }
}
