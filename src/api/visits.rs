//! `POST /wxa/visit/report`: the app tells modgate which users visited (SPEC §5). A user is fresh
//! for `limits.visit_ttl` after the latest report; checks for stale users answer 61010.

use crate::transport::body::RequestBody;
use http::Request;

use super::fields::validate_openid;
use super::wire::{self, List, Str, VisitFailure, VisitReply, VisitReportBody};
use super::{ApiError, Gateway, Reply, tokens};
use crate::limits::Metered;
use crate::state::VisitOutcome;

/// Most openids one report may carry.
pub const MAX_BATCH: usize = 1000;

pub(super) async fn report(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    let body = super::read_body(gw, req).await?;
    let b: VisitReportBody<'_> = wire::parse_body(&body)?;
    let single;
    let items: &[Str<'_>] = match (&b.openids, &b.openid) {
        (List::Wrong, _) => {
            return Err(ApiError::Format(
                "field `openids` must be an array of strings".into(),
            ));
        }
        (_, Str::Wrong) => return Err(ApiError::Format("field `openid` must be a string".into())),
        (List::Items(items), _) if items.len() > MAX_BATCH => {
            return Err(ApiError::Format(
                format!("field `openids` has more than {MAX_BATCH} items").into(),
            ));
        }
        (List::Items(items), _) if !items.is_empty() => items,
        (_, Str::Value(_)) => {
            single = [b.openid.clone()];
            &single
        }
        _ => {
            return Err(ApiError::Format(
                "field `openid` or `openids` is required".into(),
            ));
        }
    };
    // 44991, 45009: reports are metered, so that no app floods the visit store.
    gw.admit(&app, Metered::VisitReport, None).await?;
    let now = gw.clock.now_secs();
    let mut recorded = 0;
    let mut failed = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let openid = match item {
            Str::Value(v) => v,
            Str::Absent => {
                failed.push(VisitFailure {
                    index,
                    errcode: 40003,
                    errmsg: "invalid openid: empty".into(),
                });
                continue;
            }
            Str::Wrong => {
                failed.push(VisitFailure {
                    index,
                    errcode: 40003,
                    errmsg: "invalid openid: not a string".into(),
                });
                continue;
            }
        };
        if let Err(e) = validate_openid(openid) {
            failed.push(VisitFailure {
                index,
                errcode: e.errcode(),
                errmsg: e.to_string(),
            });
            continue;
        }
        match gw.visits.record(app.appid(), openid, now).await? {
            VisitOutcome::Recorded => recorded += 1,
            VisitOutcome::Full => failed.push(VisitFailure {
                index,
                errcode: -1,
                errmsg: "visit store is full; retry later".into(),
            }),
            VisitOutcome::AppFull(cap) => failed.push(VisitFailure {
                index,
                errcode: -1,
                errmsg: format!(
                    "this app holds {cap} users with a fresh visit, its cap \
                     (limits.max_visits_per_app); known users still refresh, new ones wait \
                     until older visits expire"
                ),
            }),
        }
    }
    if let Some(held) = gw.visits.held() {
        gw.metrics.visit_entries(held);
    }
    Ok(Reply::json(&VisitReply {
        errcode: 0,
        errmsg: "ok",
        recorded,
        failed,
    }))
}
