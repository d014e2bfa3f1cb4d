//! The analysis pool: a fixed set of threads, each holding its own model sessions, that run
//! the CPU-heavy part of media analysis (decoding, hashing, the models) apart from the request
//! threads and the async runtime. Work waits in a bounded queue: when it is full, [`Pool::run`]
//! waits for room (callers are already bounded by the media workers and the image check's
//! rate limit). A task that panics loses its answer, not the thread.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{ModelFiles, Models};

type Task = Box<dyn FnOnce(Option<&mut Models>) + Send>;

/// The pool's handle; cloning shares it.
#[derive(Clone)]
pub struct Pool {
    tx: mpsc::Sender<Task>,
    state: Arc<PoolState>,
}

/// What the pool runs with, for `/readyz` and the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// The workers are still loading the models; work waits for them.
    Loading,
    /// Every worker holds the models named.
    Models(Vec<String>),
    /// No models: analyses run without them, for this reason.
    Without(String),
}

#[derive(Debug)]
struct PoolState {
    loaded: tokio::sync::watch::Receiver<Loaded>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("state", &self.state).finish()
    }
}

/// The pool has shut down, or the task panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the analysis pool did not run the task")]
pub struct NotRun;

impl Pool {
    /// Starts `workers` threads and returns at once. Each thread loads the models of `files`
    /// (`Err` says why there are none) in the background; work queued meanwhile waits. If any thread fails to
    /// load, every thread runs without models. The outcome is logged once and kept in
    /// [`Pool::loaded`].
    pub fn start(files: Result<ModelFiles, String>, workers: usize, queue: usize) -> Pool {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::channel::<Task>(queue.max(1));
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let (loaded_tx, loaded_rx) = tokio::sync::watch::channel(Loaded::Loading);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let mut go = Vec::new();
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let files = files.as_ref().ok().cloned();
            let ready = ready_tx.clone();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<bool>();
            go.push(go_tx);
            let spawned = std::thread::Builder::new()
                .name(format!("analysis-{i}"))
                .spawn(move || {
                    let loaded = files.as_ref().map(Models::load).transpose();
                    let _ = ready.send(loaded.as_ref().map(|_| ()).map_err(ToString::to_string));
                    let mut models = loaded.ok().flatten();
                    // Every worker runs alike: with models only if all of them loaded.
                    if !go_rx.recv().unwrap_or(false) {
                        models = None;
                    }
                    work(&rx, models.as_mut());
                });
            if let Err(e) = spawned {
                let _ = ready_tx.send(Err(format!("analysis thread: {e}")));
            }
        }
        drop(ready_tx);
        let started = std::time::Instant::now();
        let coordinate = move || {
            let mut failure = None;
            for result in ready_rx.iter().take(workers) {
                if let Err(e) = result {
                    failure.get_or_insert(e);
                }
            }
            let loaded = match (files, failure) {
                (Err(why), _) => Loaded::Without(why),
                (Ok(_), Some(e)) => Loaded::Without(e),
                (Ok(f), None) => Loaded::Models(f.names),
            };
            match &loaded {
                Loaded::Models(names) => tracing::info!(
                    models = %names.join("; "),
                    workers,
                    load_ms = started.elapsed().as_millis() as u64,
                    "media models loaded"
                ),
                Loaded::Without(why) => tracing::warn!(
                    reason = %why,
                    "media models not loaded: image verdicts are made without the classifier \
                     and text recognition"
                ),
                Loaded::Loading => {}
            }
            let with = matches!(loaded, Loaded::Models(_));
            for g in go {
                let _ = g.send(with);
            }
            let _ = loaded_tx.send(loaded);
        };
        if let Err(e) = std::thread::Builder::new()
            .name("analysis-load".into())
            .spawn(coordinate)
        {
            tracing::error!(error = %e, "the analysis pool cannot start");
        }
        Pool {
            tx,
            state: Arc::new(PoolState { loaded: loaded_rx }),
        }
    }

    /// A pool without models.
    pub fn without_models(workers: usize) -> Pool {
        Pool::start(
            Err("media models are switched off".into()),
            workers,
            workers * 4,
        )
    }

    /// What the workers run with (`Loading` until they have loaded).
    pub fn loaded(&self) -> Loaded {
        self.state.loaded.borrow().clone()
    }

    /// Waits until the workers have loaded (or failed to load) the models.
    pub async fn ready(&self) -> Loaded {
        let mut rx = self.state.loaded.clone();
        match rx.wait_for(|l| *l != Loaded::Loading).await {
            Ok(l) => l.clone(),
            Err(_) => Loaded::Without("the analysis pool stopped".into()),
        }
    }

    /// Runs `f` on a pool thread with that thread's models (`None` without them).
    pub async fn run<R, F>(&self, f: F) -> Result<R, NotRun>
    where
        R: Send + 'static,
        F: FnOnce(Option<&mut Models>) -> R + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel();
        let task: Task = Box::new(move |models| {
            match std::panic::catch_unwind(AssertUnwindSafe(|| f(models))) {
                Ok(r) => {
                    let _ = done_tx.send(r);
                }
                Err(_) => tracing::error!("a media analysis task panicked"),
            }
        });
        self.tx.send(task).await.map_err(|_| NotRun)?;
        done_rx.await.map_err(|_| NotRun)
    }
}

fn work(rx: &std::sync::Mutex<mpsc::Receiver<Task>>, mut models: Option<&mut Models>) {
    loop {
        let task = {
            let mut rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rx.blocking_recv()
        };
        let Some(task) = task else { return };
        task(models.as_deref_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_pool_and_a_panic_loses_only_its_answer() {
        let pool = Pool::without_models(2);
        assert!(matches!(pool.ready().await, Loaded::Without(_)));
        let here = std::thread::current().id();
        let (there, had_models) = pool
            .run(|m| (std::thread::current().id(), m.is_some()))
            .await
            .unwrap();
        assert_ne!(there, here);
        assert!(!had_models);
        let lost: Result<(), NotRun> = pool.run(|_| panic!("boom")).await;
        assert_eq!(lost, Err(NotRun));
        let sums =
            futures_util::future::join_all((0..20u64).map(|i| pool.run(move |_| i * 2))).await;
        assert_eq!(sums.into_iter().map(Result::unwrap).sum::<u64>(), 380);
    }

    #[test]
    fn a_folder_without_models_says_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("modgate-no-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = ModelFiles::find(&dir).unwrap_err();
        assert!(
            e.contains("open-nsfw.onnx") && e.contains("scripts/fetch-models"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
