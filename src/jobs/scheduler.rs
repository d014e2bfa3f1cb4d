//! The schedule of this instance's unfinished jobs: which step runs next, within the global,
//! per-app and per-host bounds, taking apps in turn; pushes ahead of fetches; retries on timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use super::store::{Job, JobState};
use crate::config::MediaConfig;
use crate::tenants::AppRegistry;

/// What a dispatched step works on.
pub(super) struct Work {
    pub(super) job: Job,
    pub(super) host: String,
}

#[derive(Default)]
pub(super) struct Sched {
    /// Every unfinished job, by trace_id.
    pub(super) open: HashMap<String, Job>,
    /// Runnable jobs per app, in order.
    pub(super) ready: HashMap<String, VecDeque<String>>,
    /// Apps with runnable jobs, in turn.
    pub(super) ring: VecDeque<String>,
    /// Pushes waiting for their next attempt: (due, trace_id).
    pub(super) timers: BinaryHeap<Reverse<(u64, String)>>,
    pub(super) running: usize,
    pub(super) running_app: HashMap<String, usize>,
    pub(super) running_host: HashMap<String, usize>,
    /// With the shared queue: each held job's stream entry, by trace_id.
    pub(super) entries: HashMap<String, String>,
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Sched {
    /// Queues a job for its next step. A job ready to push goes ahead of the app's jobs still to
    /// be fetched: work in progress is finished before new work starts, so under a flood of
    /// submissions verdicts keep flowing instead of every job waiting behind every newer fetch.
    pub(super) fn make_ready(&mut self, job: &Job) {
        let queue = self.ready.entry(job.appid.clone()).or_default();
        if queue.is_empty() {
            self.ring.push_back(job.appid.clone());
        }
        if job.state == JobState::Pushing {
            queue.push_front(job.trace_id.clone());
        } else {
            queue.push_back(job.trace_id.clone());
        }
    }

    /// Puts an unfinished job where it belongs: runnable now, or on the timer heap.
    pub(super) fn place(&mut self, job: Job, now: u64) {
        if job.state == JobState::Pushing && job.next_at_ms > now {
            self.timers
                .push(Reverse((job.next_at_ms, job.trace_id.clone())));
        } else {
            self.make_ready(&job);
        }
        self.open.insert(job.trace_id.clone(), job);
    }

    /// The host a job's next step talks to.
    pub(super) fn host(job: &Job, apps: &AppRegistry) -> String {
        match job.state {
            JobState::Pushing => apps
                .get(&job.appid)
                .and_then(|a| {
                    a.config
                        .push_url
                        .as_ref()
                        .and_then(|u| u.host_str().map(str::to_owned))
                })
                .unwrap_or_default(),
            _ => host_of(&job.media_url),
        }
    }

    /// Starts what the limits allow; returns the work and when the next timer is due.
    pub(super) fn take(
        &mut self,
        now: u64,
        config: &MediaConfig,
        apps: &AppRegistry,
    ) -> (Vec<Work>, Option<u64>) {
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, trace))) = self.timers.pop() else {
                break;
            };
            if let Some(job) = self.open.get(&trace) {
                let job = job.clone();
                self.make_ready(&job);
            }
        }
        let mut out = Vec::new();
        let mut idle = 0;
        while self.running < config.workers.get() && idle < self.ring.len() {
            let Some(app) = self.ring.pop_front() else {
                break;
            };
            let mut started = false;
            let app_running = self.running_app.get(&app).copied().unwrap_or(0);
            if app_running < config.per_app.get()
                && let Some(queue) = self.ready.get_mut(&app)
            {
                // The first of the app's next few jobs whose host has room.
                let found = queue.iter().take(32).enumerate().find_map(|(i, trace)| {
                    let job = self.open.get(trace)?;
                    let host = Self::host(job, apps);
                    let busy = self.running_host.get(&host).copied().unwrap_or(0);
                    (busy < config.per_host.get()).then_some((i, host))
                });
                if let Some((i, host)) = found
                    && let Some(trace) = queue.remove(i)
                    && let Some(job) = self.open.get(&trace)
                {
                    self.running += 1;
                    *self.running_app.entry(app.clone()).or_default() += 1;
                    *self.running_host.entry(host.clone()).or_default() += 1;
                    out.push(Work {
                        job: job.clone(),
                        host,
                    });
                    started = true;
                }
            }
            if self.ready.get(&app).is_some_and(|q| !q.is_empty()) {
                self.ring.push_back(app);
            } else {
                self.ready.remove(&app);
            }
            idle = if started { 0 } else { idle + 1 };
        }
        let next = self.timers.peek().map(|Reverse((due, _))| *due);
        (out, next)
    }

    /// Records the end of a step.
    pub(super) fn finish(&mut self, job: Job, host: &str, now: u64) {
        self.running = self.running.saturating_sub(1);
        decrement(&mut self.running_app, &job.appid);
        decrement(&mut self.running_host, host);
        if job.state.is_open() {
            self.place(job, now);
        } else {
            self.open.remove(&job.trace_id);
            self.entries.remove(&job.trace_id);
        }
    }
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::media::sniff::MediaKind;

    pub(in crate::jobs) fn job(trace: &str, app: &str, url: &str) -> Job {
        Job {
            trace_id: trace.into(),
            appid: app.into(),
            openid: "o".into(),
            scene: 1,
            media_url: url.into(),
            media_type: MediaKind::Image,
            created_ms: 0,
            state: JobState::Queued,
            verdict: None,
            attempts: 0,
            next_at_ms: 0,
            last_error: None,
            finished_ms: None,
            version: 2,
        }
    }

    pub(in crate::jobs) fn config(workers: usize, per_app: usize, per_host: usize) -> MediaConfig {
        let mut c = crate::config::Config::default().media;
        c.workers = std::num::NonZeroUsize::new(workers).unwrap();
        c.per_app = std::num::NonZeroUsize::new(per_app).unwrap();
        c.per_host = std::num::NonZeroUsize::new(per_host).unwrap();
        // No models: these tests schedule jobs, and a process ending while the runtime loads
        // them can crash in it.
        c.models_dir = None;
        c
    }

    /// The dispatcher honours the global, per-app and per-host bounds and takes apps in turn.
    #[test]
    fn scheduling_respects_every_bound_and_takes_apps_in_turn() {
        let apps = AppRegistry::default();
        let mut s = Sched::default();
        for i in 0..10 {
            s.place(
                job(
                    &format!("a{i}"),
                    "A",
                    &format!("http://h{}.example/x", i % 2),
                ),
                0,
            );
        }
        for i in 0..3 {
            s.place(job(&format!("b{i}"), "B", "http://h0.example/y"), 0);
        }
        let c = config(5, 3, 2);
        let (work, _) = s.take(0, &c, &apps);
        let traces: Vec<&str> = work.iter().map(|w| w.job.trace_id.as_str()).collect();
        // A gets h0 then h1 then h0 (per-app 3); B shares h0, which is then full (per-host 2).
        assert_eq!(traces, ["a0", "b0", "a1", "a3"]);
        assert_eq!(s.running, 4);
        assert_eq!(s.running_host["h0.example"], 2);
        // Finishing b0 frees h0 and a B slot: b1 goes next.
        let mut b0 = work[1].job.clone();
        b0.state = JobState::Delivered;
        s.finish(b0, "h0.example", 0);
        let (work, _) = s.take(0, &c, &apps);
        let traces: Vec<&str> = work.iter().map(|w| w.job.trace_id.as_str()).collect();
        assert_eq!(traces, ["b1"]);
        assert!(!s.open.contains_key("b0"));
    }

    /// A job ready to push is taken before the app's jobs still waiting to be fetched.
    #[test]
    fn pushes_go_ahead_of_fetches() {
        let apps = AppRegistry::default();
        let mut s = Sched::default();
        for i in 0..5 {
            s.place(job(&format!("f{i}"), "A", "http://h.example/x"), 0);
        }
        let mut p = job("p", "A", "http://h.example/x");
        p.state = JobState::Pushing;
        s.place(p, 0);
        let (work, _) = s.take(0, &config(1, 1, 1), &apps);
        assert_eq!(work[0].job.trace_id, "p");
    }

    /// A push waiting for a retry is not runnable before its time, and is after.
    #[test]
    fn retries_wait_for_their_time() {
        let apps = AppRegistry::default();
        let mut s = Sched::default();
        let mut j = job("t", "A", "http://h.example/x");
        j.state = JobState::Pushing;
        j.next_at_ms = 1_000;
        s.place(j, 0);
        let c = config(5, 5, 5);
        let (work, next) = s.take(999, &c, &apps);
        assert!(work.is_empty());
        assert_eq!(next, Some(1_000));
        let (work, next) = s.take(1_000, &c, &apps);
        assert_eq!(work.len(), 1);
        assert_eq!(next, None);
    }
}
