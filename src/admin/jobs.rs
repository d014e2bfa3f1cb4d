//! `/admin/media`: media jobs, for operators: one job's record, the jobs in one state, and a
//! dead-lettered job sent again.

use crate::transport::body::RequestBody;
use http::Request;

use super::{AdminError, Answer, ok};
use crate::gateway::Gateway;
use crate::jobs::store::{JobState, StoreError};
use crate::transport::query::query_param;

fn unreadable(e: StoreError, what: &str) -> AdminError {
    tracing::error!(error = %e, "{what}");
    AdminError::Internal("the job store could not be read".into())
}

/// `GET /admin/media/{trace_id}`: the job's whole record (state, attempts, verdict, last error).
pub(super) async fn get(gw: &Gateway, trace_id: &str) -> Answer {
    match gw.media.job(trace_id).await {
        Ok(Some(job)) => ok(&job),
        Ok(None) => Err(AdminError::NotFound("no such media job")),
        Err(e) => Err(unreadable(e, "media job could not be read")),
    }
}

/// `GET /admin/media?state=dead[&limit=N]`: jobs in one state (default `dead`, at most `limit`,
/// default 100, up to 10,000), oldest first.
pub(super) async fn list(gw: &Gateway, req: &Request<RequestBody>) -> Answer {
    let state = match query_param(req, "state").as_deref().unwrap_or("dead") {
        "queued" => JobState::Queued,
        "pushing" => JobState::Pushing,
        "delivered" => JobState::Delivered,
        "dead" => JobState::Dead,
        "done" => JobState::Done,
        _ => {
            return Err(AdminError::BadRequest(
                "state must be queued, pushing, delivered, dead or done".into(),
            ));
        }
    };
    let limit = match query_param(req, "limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=10_000).contains(&n) => n,
        Some(_) => return Err(AdminError::BadRequest("limit must be 1 to 10000".into())),
    };
    match gw.media.list(state, limit).await {
        Ok(jobs) => ok(&jobs),
        Err(e) => Err(unreadable(e, "media jobs could not be listed")),
    }
}

/// `POST /admin/media/{trace_id}/retry`: a dead-lettered job is pushed again, with a fresh
/// retry schedule.
pub(super) async fn retry(gw: &Gateway, trace_id: &str) -> Answer {
    match gw.media.retry(trace_id).await {
        Ok(Some(job)) => ok(&job),
        Ok(None) => Err(AdminError::NotFound(
            "no dead-lettered job with this trace_id",
        )),
        Err(e) => {
            tracing::error!(error = %e, "media job could not be retried");
            Err(AdminError::Internal(
                "the job store could not be written".into(),
            ))
        }
    }
}
