//! `POST /wxa/img_sec_check?access_token=..` (SPEC §12): the v1 synchronous image check. The
//! file comes as the `multipart/form-data` part named `media`; the verdict is the media
//! analysis's (hash banks, QR codes, text in the image), answered at once: 87014 for risky,
//! otherwise ok (v1 has no `review`).

use crate::transport::body::RequestBody;
use http::Request;
use http_body_util::BodyExt;

use super::{ApiError, Gateway, Reply, tokens};
use crate::engine::{Label, Suggest};
use crate::limits::Metered;
use crate::media::WRONG_TYPE;
use crate::media::sniff::MediaKind;
use crate::metrics::Api;
use crate::transport::body;
use crate::transport::multipart::{self, UploadError, UploadLimits};
use crate::usage::Checked;

/// Parts an upload may have: the file and a few fields some clients add.
pub const MAX_PARTS: usize = 8;

pub(super) async fn handle(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    let limits = UploadLimits {
        file_bytes: gw.config.media.image_check_max_bytes,
        max_parts: MAX_PARTS,
    };
    body::announced_length(req.headers(), limits.body_bytes())?;
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let file = multipart::file_part(
        content_type.as_deref(),
        req.into_body().into_data_stream(),
        "media",
        limits,
    )
    .await
    .map_err(|e| match e {
        UploadError::Missing(_) => ApiError::MediaMissing,
        UploadError::FileTooLarge(limit) => ApiError::MediaTooLarge(limit),
        UploadError::BodyTooLarge(limit) => ApiError::BodyTooLarge(limit),
        UploadError::Unreadable => ApiError::BadRequest("request body could not be read"),
        UploadError::TimedOut => ApiError::BodyTimeout,
        other => ApiError::Format(other.to_string().into()),
    })?;
    // No user is named: rate limit and quota only.
    gw.admit(&app, Metered::ImgSecCheck, None).await?;
    let verdict = gw
        .media
        .analyse(
            Some(std::sync::Arc::clone(&app.slot)),
            gw.engine.load_full(),
            MediaKind::Image,
            file,
        )
        .await;
    match verdict.errcode {
        0 => {}
        WRONG_TYPE => return Err(ApiError::InvalidMedia(verdict.errmsg.into())),
        _ => return Err(ApiError::System),
    }
    let label = Label::from_code(verdict.result.label).unwrap_or(Label::Other);
    gw.metrics
        .verdict(Api::ImgSecCheck, verdict.result.suggest, label);
    gw.metrics
        .app_verdict(app.appid(), Checked::ImgSecCheck, verdict.result.suggest);
    if verdict.result.suggest == Suggest::Risky {
        Err(ApiError::RiskyContent)
    } else {
        Ok(Reply::json(&super::wire::ErrorBody {
            errcode: 0,
            errmsg: "ok",
        }))
    }
}
