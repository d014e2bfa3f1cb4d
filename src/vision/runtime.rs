//! ONNX Runtime, loaded at run time (DESIGN.md, "Media models: the inference runtime"): one
//! environment per process, one session per model per worker, each on one thread, and a
//! watchdog that stops a run past its deadline.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use ort::environment::Environment;
use ort::session::{RunOptions, Session};
use ort::value::Tensor;

/// Why a model could not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Load(String),
    #[error("inference failed: {0}")]
    Run(String),
    #[error("timed out")]
    TimedOut,
    #[error("unexpected output: {0}")]
    Output(String),
}

/// Held (shared) by every call into ONNX Runtime; taken exclusively, for good, by [`quiesce`]
/// before the process exits. Exiting runs the library's C++ static destructors, and one that
/// runs while another thread is inside the library (a worker still loading its sessions at a
/// second Ctrl-C) kills the process with a signal instead of the exit code it meant.
static IN_USE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Waits until no thread is inside ONNX Runtime and keeps it so (later calls block for good),
/// up to `timeout`; whether it got there. Call it right before the process exits.
pub fn quiesce(timeout: std::time::Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("model-quiesce".into())
        .spawn(move || {
            let guard = IN_USE
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::forget(guard);
            let _ = tx.send(());
        });
    spawned.is_ok() && rx.recv_timeout(timeout).is_ok()
}

fn entered() -> std::sync::RwLockReadGuard<'static, ()> {
    IN_USE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process's ONNX Runtime environment; the first library loaded stays loaded (ONNX Runtime
/// allows one environment per process).
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static Environment, ModelError> {
    let env = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(library)
            .map_err(|e| format!("ONNX Runtime library {}: {e}", library.display()))?;
        builder
            .with_name("modgate")
            .build()
            .map_err(|e| format!("ONNX Runtime environment: {e}"))
    });
    env.as_ref().map_err(|e| ModelError::Load(e.clone()))
}

/// One model's session, used by one thread at a time.
pub struct Net {
    session: Session,
    name: &'static str,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").field("name", &self.name).finish()
    }
}

/// An output tensor: its shape and values.
pub type Output = (Vec<i64>, Vec<f32>);

impl Net {
    /// Loads `file` with ONNX Runtime from `library`, for one thread.
    pub fn load(library: &Path, file: &Path, name: &'static str) -> Result<Net, ModelError> {
        let _inside = entered();
        let env = environment(library)?;
        let fail = |e: String| ModelError::Load(format!("{}: {e}", file.display()));
        let session = Session::builder(env)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| fail(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| fail(e.to_string()))?
            .commit_from_file(file)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Net { session, name })
    }

    /// Runs the model on one `f32` input of `shape`, stopping it at `deadline`; the first output.
    pub fn run(
        &mut self,
        shape: Vec<i64>,
        data: Vec<f32>,
        deadline: Instant,
    ) -> Result<Output, ModelError> {
        if Instant::now() >= deadline {
            return Err(ModelError::TimedOut);
        }
        let _inside = entered();
        let input =
            Tensor::from_array((shape, data)).map_err(|e| ModelError::Run(e.to_string()))?;
        let options = Arc::new(RunOptions::new().map_err(|e| ModelError::Run(e.to_string()))?);
        watchdog().watch(deadline, &options);
        let outputs = match self.session.run_with_options(ort::inputs![input], &options) {
            Ok(outputs) => outputs,
            Err(_) if Instant::now() >= deadline => return Err(ModelError::TimedOut),
            Err(e) => return Err(ModelError::Run(e.to_string())),
        };
        let (shape, values) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Output(format!("{}: {e}", self.name)))?;
        Ok((shape.to_vec(), values.to_vec()))
    }
}

/// Runs in flight with a deadline; the watchdog thread sets the terminate flag of those past it.
/// A run that ends drops its options, so the watchdog's weak reference no longer upgrades.
struct Watchdog {
    tx: Mutex<Sender<(Instant, Weak<RunOptions>)>>,
}

impl Watchdog {
    fn watch(&self, deadline: Instant, options: &Arc<RunOptions>) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The thread lives as long as the process; a send cannot fail while it does.
        let _ = tx.send((deadline, Arc::downgrade(options)));
    }
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("model-watchdog".into())
            .spawn(move || watch(&rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "model watchdog thread did not start: runs cannot time out");
        }
        Watchdog { tx: Mutex::new(tx) }
    })
}

fn watch(rx: &Receiver<(Instant, Weak<RunOptions>)>) {
    let mut pending: Vec<(Instant, Weak<RunOptions>)> = Vec::new();
    loop {
        let now = Instant::now();
        pending.retain(|(deadline, weak)| {
            let Some(options) = weak.upgrade() else {
                return false;
            };
            if *deadline <= now {
                let _ = options.terminate();
                return false;
            }
            true
        });
        let wait = pending
            .iter()
            .map(|(d, _)| d.saturating_duration_since(now))
            .min()
            .unwrap_or(std::time::Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(entry) => pending.push(entry),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
