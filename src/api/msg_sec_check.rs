//! `POST /wxa/msg_sec_check` (SPEC §3), v1 and v2.
//!
//! Checks run in the SPEC's order and the first failure answers: token; empty body; format
//! (JSON, types, content presence and length); scene; openid; then the rate limit, the daily quota
//! and (v2 only) visit freshness, through `Gateway::admit`.

use std::future::Future;
use std::sync::Arc;

use crate::transport::body::RequestBody;
use http::Request;

use super::wire::{self, ErrorBody, Int, MsgSecCheckBody, Str, V2Body};
use super::{ApiError, Gateway, Reply, tokens};
use crate::effects::Judged;
use crate::engine::{DetailItem, Engine, Suggest, Verdict};
use crate::limits::Metered;
use crate::metrics::Api;
use crate::review::{Content, Item, Reason};
use crate::tenants::App;
use crate::usage::Checked;

/// v2 `content` limit, in Unicode scalar values.
pub const MAX_V2_CHARS: usize = 2500;
/// v2 `title`, `nickname` and `signature` limit each (not documented by the platform; generous).
pub const MAX_V2_FIELD_CHARS: usize = 2500;
/// v1 `content` limit, in bytes (500 KB).
pub const MAX_V1_BYTES: usize = 500 * 1024;
/// Texts longer than this are checked on the blocking pool, not on an async worker.
const INLINE_CHECK_BYTES: usize = 64 * 1024;

/// A POST to the API. What needs only the request head (the token's signature, the announced
/// body length) is judged before the future is built, which then holds the body stream rather
/// than the whole request (see [`Gateway::handle`]); failures still answer in the SPEC's order.
pub(super) fn handle(
    gw: &Arc<Gateway>,
    req: Request<RequestBody>,
) -> impl Future<Output = Result<Reply, ApiError>> + Send + use<> {
    // One clock read serves the token's expiry, the limits, the risk model and the trace_id.
    let now_ms = gw.clock.now_ms();
    let limit = gw.config.server.max_body_bytes.get();
    let (head, body) = req.into_parts();
    let signed = tokens::signed_app(gw, &head.uri);
    let announced = super::announced_length(&head.headers, limit);
    drop(head);
    let gw = Arc::clone(gw);
    async move {
        let app = tokens::current(&gw, signed?, now_ms).await?;
        announced?;
        let body = super::read_frames(body, limit).await?;
        let b: MsgSecCheckBody<'_> = wire::parse_body(&body)?;
        // `2` (or `"2"`) is v2, no version at all is v1; any other value is refused rather
        // than answered as v1 (a client that meant v2 would read a v1 answer as a pass).
        match b.version {
            Int::Value(2) => v2(&gw, &app, &b, now_ms).await,
            Int::Absent => v1(&gw, &app, &b).await,
            _ => Err(ApiError::Format(
                "field `version` must be 2 (or absent, for the v1 check)".into(),
            )),
        }
    }
}

fn text<'a>(
    field: &'static str,
    value: &'a Str<'_>,
    max_chars: usize,
) -> Result<Option<&'a str>, ApiError> {
    match value {
        Str::Absent => Ok(None),
        Str::Wrong => Err(ApiError::Format(
            format!("field `{field}` must be a string").into(),
        )),
        Str::Value(v) => {
            // Cheap bound first: a string of n bytes has at most n characters.
            if v.len() > max_chars && v.chars().count() > max_chars {
                Err(ApiError::Format(
                    format!("field `{field}` is longer than {max_chars} characters").into(),
                ))
            } else {
                Ok(Some(v))
            }
        }
    }
}

async fn v2(
    gw: &Gateway,
    app: &App,
    b: &MsgSecCheckBody<'_>,
    now_ms: u64,
) -> Result<Reply, ApiError> {
    // 47001: every format problem, before scene and openid are judged.
    let content = text("content", &b.content, MAX_V2_CHARS)?
        .ok_or(ApiError::Format("field `content` is required".into()))?;
    let title = text("title", &b.title, MAX_V2_FIELD_CHARS)?;
    let nickname = text("nickname", &b.nickname, MAX_V2_FIELD_CHARS)?;
    let signature = text("signature", &b.signature, MAX_V2_FIELD_CHARS)?;
    if b.scene == Int::Wrong {
        return Err(ApiError::Format("field `scene` must be a number".into()));
    }
    if b.openid == Str::Wrong {
        return Err(ApiError::Format("field `openid` must be a string".into()));
    }
    let (scene, openid) = super::fields::scene_and_openid(b.scene, &b.openid)?;
    // 44991, 45009, 61010
    gw.admit_at(app, Metered::MsgSecCheck, Some(openid), now_ms)
        .await?;

    let mut fields = [content, "", "", ""];
    fields[1] = title.unwrap_or("");
    fields[2] = nickname.unwrap_or("");
    if scene == 1 {
        fields[3] = signature.unwrap_or("");
    }
    let table = gw.table(app);
    let verdict = gw
        .engine
        .load()
        .check_with(&fields, table.as_deref().map(|t| &t.matcher));
    let trace_id = gw.rid_at(now_ms).text();
    gw.effects.verdict(
        Some(&app.slot.risk),
        openid,
        now_ms,
        Judged::Text,
        verdict.result.suggest,
        |reason| {
            let names = ["content", "title", "nickname", "signature"];
            let fields = names
                .iter()
                .zip(fields)
                .filter(|(_, text)| !text.is_empty())
                .map(|(name, text)| ((*name).to_owned(), text.to_owned()))
                .collect();
            review_item(
                app,
                openid,
                scene,
                reason,
                &verdict,
                fields,
                trace_id.as_str(),
                now_ms,
            )
        },
    );
    Ok(v2_reply(gw, app, &verdict, trace_id.as_str()))
}

/// A text verdict as a review item.
#[allow(clippy::too_many_arguments)] // one call site, each argument a distinct part of the item
fn review_item(
    app: &App,
    openid: &str,
    scene: u8,
    reason: Reason,
    verdict: &Verdict,
    fields: Vec<(String, String)>,
    trace_id: &str,
    now_ms: u64,
) -> Item {
    // The result's label and those of every strategy that did not pass.
    let mut labels = vec![verdict.result.label.code()];
    let mut hits = Vec::new();
    for d in &verdict.detail {
        match d {
            DetailItem::ContentModel(c) if c.suggest != Suggest::Pass => {
                labels.push(c.label.code());
                hits.extend(c.word.clone());
            }
            DetailItem::Keyword(k) => {
                if k.suggest != Suggest::Pass {
                    labels.push(k.label.code());
                }
                hits.push(k.keyword.clone());
            }
            _ => {}
        }
    }
    labels.sort_unstable();
    labels.dedup();
    Item {
        id: trace_id.to_owned(),
        appid: app.appid().to_owned(),
        openid: Some(openid.to_owned()),
        scene,
        reason,
        suggest: verdict.result.suggest,
        label: verdict.result.label.code(),
        labels,
        hits,
        content: Content::Text { fields },
        created_ms: now_ms,
        claim: None,
        decision: None,
    }
}

fn v2_reply(gw: &Gateway, app: &App, verdict: &Verdict, trace_id: &str) -> Reply {
    gw.metrics.verdict(
        Api::MsgSecCheck,
        verdict.result.suggest,
        verdict.result.label,
    );
    gw.metrics
        .app_verdict(app.appid(), Checked::MsgSecCheck, verdict.result.suggest);
    let body = V2Body::new(trace_id, verdict, gw.config.engine.reveal_builtin_words);
    let mut json = Vec::with_capacity(256);
    body.write_json(&mut json);
    Reply {
        response: super::error::json_bytes_response(http::StatusCode::OK, json),
        errcode: 0,
    }
}

async fn v1(gw: &Gateway, app: &App, b: &MsgSecCheckBody<'_>) -> Result<Reply, ApiError> {
    let content = match &b.content {
        Str::Value(v) => v,
        Str::Absent => return Err(ApiError::Format("field `content` is required".into())),
        Str::Wrong => return Err(ApiError::Format("field `content` must be a string".into())),
    };
    if content.len() > MAX_V1_BYTES {
        return Err(ApiError::Format(
            format!("field `content` is longer than {MAX_V1_BYTES} bytes").into(),
        ));
    }
    // v1 names no user: rate limit and quota only.
    gw.admit(app, Metered::MsgSecCheck, None).await?;
    let table = gw.table(app);
    let verdict = if content.len() <= INLINE_CHECK_BYTES {
        gw.engine
            .load()
            .check_with(&[content], table.as_deref().map(|t| &t.matcher))
    } else {
        let engine: Engine = Engine::clone(&gw.engine.load());
        let owned = content.to_string();
        tokio::task::spawn_blocking(move || {
            engine.check_with(&[&owned], table.as_deref().map(|t| &t.matcher))
        })
        .await
        .map_err(|_| ApiError::System)?
    };
    gw.metrics.verdict(
        Api::MsgSecCheck,
        verdict.result.suggest,
        verdict.result.label,
    );
    gw.metrics
        .app_verdict(app.appid(), Checked::MsgSecCheck, verdict.result.suggest);
    if verdict.result.suggest == Suggest::Risky {
        let errmsg = format!("risky content rid: {}", gw.rid());
        Ok(Reply {
            response: super::error::json_response(
                http::StatusCode::OK,
                &ErrorBody {
                    errcode: 87014,
                    errmsg: &errmsg,
                },
            ),
            errcode: 87014,
        })
    } else {
        Ok(Reply::json(&ErrorBody {
            errcode: 0,
            errmsg: "ok",
        }))
    }
}
