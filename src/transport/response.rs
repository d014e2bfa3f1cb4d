//! The response type every listener answers with, and JSON bodies.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::Full;

/// What every handler answers: a whole body, already in memory.
pub type Response = http::Response<Full<Bytes>>;

/// Any error a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body streamed from elsewhere as it arrives (pass-through mode's upstream answers).
pub type StreamedBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The API listener's body: a whole one, or one streamed from the upstream.
pub type AnyBody = http_body_util::Either<Full<Bytes>, StreamedBody>;

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    // Serializing our own response structs cannot fail (no maps with non-string keys, no
    // fallible Serialize impls); fall back to a fixed body rather than panic if it ever did.
    // Room for a typical answer (a v2 verdict is ~250 bytes) in one allocation.
    let mut bytes = Vec::with_capacity(384);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes = br#"{"errcode":-1,"errmsg":"system error"}"#.to_vec();
    }
    json_bytes_response(status, bytes)
}

/// A response with a JSON body already written.
pub fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
