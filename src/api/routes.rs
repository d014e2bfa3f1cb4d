//! The route table of the WeChat-compatible listener: which API a request path names.

use crate::metrics::Api;

/// What a path on the API listener names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    MsgSecCheck,
    Token,
    StableToken,
    QuotaGet,
    ClearQuota,
    ClearQuotaV2,
    VisitReport,
    MediaCheckAsync,
    MediaResult,
    RiskRank,
    ImgSecCheck,
    /// No API lives here.
    Unknown,
}

impl Route {
    /// The route a request path names.
    pub fn of_path(path: &str) -> Route {
        match path {
            "/wxa/msg_sec_check" => Route::MsgSecCheck,
            "/cgi-bin/token" => Route::Token,
            "/cgi-bin/stable_token" => Route::StableToken,
            "/cgi-bin/openapi/quota/get" => Route::QuotaGet,
            "/cgi-bin/clear_quota" => Route::ClearQuota,
            "/cgi-bin/clear_quota/v2" => Route::ClearQuotaV2,
            "/wxa/visit/report" => Route::VisitReport,
            "/wxa/media_check_async" => Route::MediaCheckAsync,
            "/wxa/media_check_async/result" => Route::MediaResult,
            "/wxa/getuserriskrank" => Route::RiskRank,
            "/wxa/img_sec_check" => Route::ImgSecCheck,
            _ => Route::Unknown,
        }
    }

    /// The API it serves, as the metrics label it (both clear_quota versions count as one).
    pub fn api(self) -> Api {
        match self {
            Route::MsgSecCheck => Api::MsgSecCheck,
            Route::Token => Api::Token,
            Route::StableToken => Api::StableToken,
            Route::QuotaGet => Api::QuotaGet,
            Route::ClearQuota | Route::ClearQuotaV2 => Api::ClearQuota,
            Route::VisitReport => Api::VisitReport,
            Route::MediaCheckAsync => Api::MediaCheckAsync,
            Route::MediaResult => Api::MediaResult,
            Route::RiskRank => Api::RiskRank,
            Route::ImgSecCheck => Api::ImgSecCheck,
            Route::Unknown => Api::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_routes_and_labels() {
        assert_eq!(Route::of_path("/wxa/msg_sec_check"), Route::MsgSecCheck);
        assert_eq!(
            Route::of_path("/cgi-bin/clear_quota/v2"),
            Route::ClearQuotaV2
        );
        assert_eq!(Route::ClearQuotaV2.api(), Route::ClearQuota.api());
        assert_eq!(Route::of_path("/wxa/msg_sec_check/"), Route::Unknown);
        assert_eq!(Route::Unknown.api(), Api::Other);
    }
}
