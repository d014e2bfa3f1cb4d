//! The admin listener's one error type, and its one mapping to a response: JSON
//! `{"error": "..."}` (with `errors` for an invalid app) and the status that says what went
//! wrong.

use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::catalog::ChangeError;
use crate::config::ConfigErrors;
use crate::review::ReviewError;
use crate::transport::body::ReadError;
use crate::transport::response::{Response, json_response};

/// Why an admin request was not done. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 400: the request is invalid (the message says why).
    #[error("{0}")]
    BadRequest(String),
    /// 400: an app that does not validate, with every problem by key.
    #[error("invalid app")]
    InvalidApp(ConfigErrors),
    /// 401: no bearer token, or the wrong one.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// 403: the caller's role does not allow it (the message says why).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: what the request names does not exist (the message says what).
    #[error("{0}")]
    NotFound(&'static str),
    /// 404: the admin API is off (no `[admin] token`).
    #[error("the admin API is disabled: set [admin] token")]
    Disabled,
    /// 405, with the methods allowed.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 409: the change conflicts with the state of what it names (the message says how).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the limit, in bytes.
    #[error("request body too large: the limit is {0} bytes")]
    TooLarge(u64),
    /// 408: the body did not arrive whole within the body read timeout.
    #[error("request timeout: the body did not arrive within the server's body read timeout")]
    BodyTimeout,
    /// 500: the change could not be stored or made (the message says which).
    #[error("{0}")]
    Internal(String),
    /// 502: what the answer is fetched from elsewhere could not be fetched (the message says
    /// why).
    #[error("{0}")]
    BadGateway(String),
    /// 503: a store the answer needs did not answer.
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct FieldError {
    key: String,
    message: String,
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) | AdminError::InvalidApp(_) => StatusCode::BAD_REQUEST,
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) | AdminError::Disabled => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The one mapping of an admin error to its response.
    pub fn into_response(self) -> Response {
        let message = self.to_string();
        let errors = match &self {
            AdminError::InvalidApp(errs) => errs
                .0
                .iter()
                .map(|e| FieldError {
                    key: e.key.clone(),
                    message: e.message.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut resp = json_response(
            self.status(),
            &ErrorJson {
                error: &message,
                errors,
            },
        );
        match self {
            AdminError::Unauthorized => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AdminError::MethodNotAllowed(allow) => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            // The body was not read whole; the connection cannot carry another request.
            AdminError::BodyTimeout => {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

impl From<ChangeError> for AdminError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Invalid(message) => AdminError::BadRequest(message),
            ChangeError::NotFound(what) => AdminError::NotFound(what),
            ChangeError::Conflict => AdminError::Conflict(e.to_string()),
            ChangeError::Store(ref cause) => {
                tracing::error!(error = %cause, "catalog write failed");
                AdminError::Internal(e.to_string())
            }
            ChangeError::Failed(ref cause) => {
                tracing::error!(error = %cause, "admin change task failed");
                AdminError::Internal(e.to_string())
            }
        }
    }
}

impl From<ReviewError> for AdminError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => AdminError::NotFound("no such review item"),
            ReviewError::ClaimedByOther(_) | ReviewError::Decided(_) | ReviewError::NotClaimed => {
                AdminError::Conflict(e.to_string())
            }
            ReviewError::Store(_) => AdminError::Unavailable(e.to_string()),
        }
    }
}

impl From<ReadError> for AdminError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::TooLarge(limit) => AdminError::TooLarge(limit),
            ReadError::TimedOut => AdminError::BodyTimeout,
            ReadError::BadLength | ReadError::Unreadable => {
                AdminError::BadRequest("request body could not be read".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status_and_a_json_body() {
        let cases = [
            (AdminError::BadRequest("x".into()), 400),
            (AdminError::InvalidApp(ConfigErrors(Vec::new())), 400),
            (AdminError::Unauthorized, 401),
            (AdminError::NotFound("no such app"), 404),
            (AdminError::Disabled, 404),
            (AdminError::MethodNotAllowed("GET"), 405),
            (AdminError::Conflict("x".into()), 409),
            (AdminError::TooLarge(10), 413),
            (AdminError::Internal("x".into()), 500),
            (AdminError::BadGateway("x".into()), 502),
            (AdminError::Unavailable("x".into()), 503),
        ];
        for (e, status) in cases {
            let message = e.to_string();
            let resp = e.into_response();
            assert_eq!(resp.status().as_u16(), status, "{message}");
            assert_eq!(
                resp.headers()[header::CONTENT_TYPE],
                "application/json; charset=utf-8"
            );
        }
        let resp = AdminError::MethodNotAllowed("GET, PUT").into_response();
        assert_eq!(resp.headers()[header::ALLOW], "GET, PUT");
        let resp = AdminError::Unauthorized.into_response();
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
        // A conflict from the catalog and a refused review claim are both 409.
        assert_eq!(
            AdminError::from(ChangeError::Conflict).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            AdminError::from(ReviewError::NotClaimed).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            AdminError::from(ReadError::TooLarge(5)).to_string(),
            "request body too large: the limit is 5 bytes"
        );
    }
}
