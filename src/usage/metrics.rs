//! The Prometheus series of the apps named in `metrics.apps`: their verdicts by API and
//! suggest, their refusals by API and reason. Other apps are counted only in the deployment's
//! totals, so the number of series stays the operator's choice.

use std::collections::HashSet;

use prometheus::{IntCounterVec, Opts, Registry};

use super::Checked;
use crate::engine::Suggest;

pub(super) struct AppSeries {
    listed: HashSet<String>,
    verdicts: IntCounterVec,
    refusals: IntCounterVec,
}

impl AppSeries {
    /// Registers the series; each listed app's verdicts start at zero.
    pub(super) fn new(registry: &Registry, listed: &[String]) -> Result<Self, prometheus::Error> {
        let verdicts = IntCounterVec::new(
            Opts::new(
                "modgate_app_verdicts_total",
                "Verdicts of the apps listed in metrics.apps, by app, API and suggest",
            ),
            &["appid", "api", "suggest"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "modgate_app_refusals_total",
                "Calls of the apps listed in metrics.apps refused by a limit, by app, API and reason",
            ),
            &["appid", "api", "reason"],
        )?;
        registry.register(Box::new(verdicts.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        for appid in listed {
            for api in Checked::ALL {
                for suggest in [Suggest::Pass, Suggest::Review, Suggest::Risky] {
                    verdicts.with_label_values(&[appid, api.as_str(), suggest.as_str()]);
                }
            }
        }
        Ok(AppSeries {
            listed: listed.iter().cloned().collect(),
            verdicts,
            refusals,
        })
    }

    fn has(&self, appid: &str) -> bool {
        !self.listed.is_empty() && self.listed.contains(appid)
    }

    pub(super) fn verdict(&self, appid: &str, api: Checked, suggest: Suggest) {
        if self.has(appid) {
            self.verdicts
                .with_label_values(&[appid, api.as_str(), suggest.as_str()])
                .inc();
        }
    }

    pub(super) fn refusal(&self, appid: &str, api: &'static str, reason: &'static str) {
        if self.has(appid) {
            self.refusals.with_label_values(&[appid, api, reason]).inc();
        }
    }
}
