//! The `modgate` command: parse the CLI, load config, init logging, bind, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use modgate::app::offline;
use modgate::config::{Config, LogFormat};
use modgate::engine::Engine;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// mimalloc rather than the system allocator: a table replacement builds and frees thousands of
/// small vectors on a blocking-pool thread while request tasks free the old table on a worker;
/// glibc's per-thread arenas spent most of a replacement's CPU consolidating and unlinking chunks
/// (BENCHMARKS.md, "Custom keyword tables at scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "modgate",
    version,
    about = "Content-moderation gateway speaking WeChat's content-security API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (built-in defaults when no config is given: no apps). SIGTERM or SIGINT
    /// drains and exits (a second one exits at once); SIGHUP reloads the lexicon files.
    Serve {
        /// TOML configuration file; `MODGATE_SECTION__KEY` environment variables override it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How to write the log (overrides `log.format`).
        #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
        log_format: Option<String>,
    },
    /// Check texts offline with the built-in engine (and an app's custom table): one JSON line
    /// per text with its verdict. Texts come from the arguments or, without any, from standard
    /// input, one per line. Exits 1 when any text is risky, 2 on an error.
    Check {
        /// Texts to check; none: read standard input.
        texts: Vec<String>,
        /// Read standard input as JSON lines: each a string, or an object with `content` (and
        /// optionally `title`, `nickname`, `signature`, checked together, and an `id` echoed
        /// back).
        #[arg(long)]
        json: bool,
        /// Configuration file, for `--app` (the deployment's store or Redis).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Apply this app's stored custom keyword table.
        #[arg(long, value_name = "APPID", requires = "config")]
        app: Option<String>,
        /// Also show why: the normalized text, and each hit with its span in the input and the
        /// normalization steps that led to it (after each text's line).
        #[arg(long)]
        explain: bool,
    },
    /// Validate a configuration (the file, the environment over it and the secret files it
    /// names) and print every problem; exits 1 on any.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Ask a running gateway's admin listener whether it is ready (`/readyz`): exits 0 when it
    /// answers 200, 1 otherwise. For container health checks.
    Healthcheck {
        /// Configuration file, for `admin.listen`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The admin listener's address (overrides the configuration's).
        #[arg(long, value_name = "HOST:PORT")]
        admin: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 3.0)]
        timeout: f64,
    },
    /// Analyse image or audio files offline as a media check would (format, QR codes,
    /// embedded text, the media models), with the built-in lexicon and empty hash banks; one
    /// JSON line per file: the verdict, what the file is (with the classifier's score and the
    /// text read in it) and each strategy's time.
    CheckMedia {
        /// Files to analyse.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// What the files are.
        #[arg(long, default_value = "image", value_parser = ["image", "audio"])]
        kind: String,
        /// The media models' folder (`scripts/fetch-models`).
        #[arg(long, value_name = "DIR", default_value = "models")]
        models: PathBuf,
        /// Analyse without the media models.
        #[arg(long)]
        no_models: bool,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate a configuration and print every problem.
    Check {
        /// TOML configuration file (none: the defaults and the environment).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format.as_deref()),
        Command::Check {
            texts,
            json,
            config,
            app,
            explain,
        } => check(
            &texts,
            offline::CheckOptions { json, explain },
            config.as_deref(),
            app.as_deref(),
        ),
        Command::Config {
            action: ConfigAction::Check { config },
        } => config_check(config.as_deref()),
        Command::Healthcheck {
            config,
            admin,
            timeout,
        } => healthcheck(config.as_deref(), admin.as_deref(), timeout),
        Command::CheckMedia {
            files,
            kind,
            models,
            no_models,
        } => check_media(&files, &kind, (!no_models).then_some(models.as_path())),
    }
}

fn check_media(files: &[PathBuf], kind: &str, models: Option<&std::path::Path>) -> ExitCode {
    use modgate::media::models::ModelSettings;
    use modgate::media::sniff::MediaKind;
    use modgate::media::{Analysis, analyse, bank::Bank};
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("modgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut loaded = match models.map(modgate::vision::ModelFiles::find) {
        None => None,
        Some(Err(e)) => {
            eprintln!("modgate: {e}");
            return ExitCode::FAILURE;
        }
        Some(Ok(files)) => match modgate::vision::Models::load(&files) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("modgate: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let empty = Bank::default();
    let analysis = Analysis {
        models: ModelSettings {
            without: "run without models (--no-models)".into(),
            ..ModelSettings::default()
        },
        ..Analysis::standalone(&empty, &engine)
    };
    let kind = if kind == "audio" {
        MediaKind::Audio
    } else {
        MediaKind::Image
    };
    let mut status = ExitCode::SUCCESS;
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("modgate: {}: {e}", file.display());
                status = ExitCode::FAILURE;
                continue;
            }
        };
        let verdict = analyse(&bytes, kind, &analysis, loaded.as_mut());
        let out = serde_json::json!({ "file": file, "verdict": verdict });
        println!("{out}");
    }
    status
}

/// `check`: texts from the arguments or standard input, with an app's stored table if asked.
fn check(
    texts: &[String],
    options: offline::CheckOptions,
    config: Option<&std::path::Path>,
    app: Option<&str>,
) -> ExitCode {
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("modgate: {e}");
            return ExitCode::from(2);
        }
    };
    let table = match (config, app) {
        (Some(path), Some(appid)) => match stored_table(path, appid) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("modgate: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let custom = table.as_ref().map(|t| &t.matcher);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let tally = if texts.is_empty() {
        let stdin = std::io::stdin();
        offline::check_lines(
            &engine,
            custom,
            stdin.lock(),
            options,
            &mut out,
            &mut std::io::stderr(),
        )
    } else {
        offline::check_texts(&engine, custom, texts, options, &mut out)
    };
    match tally.and_then(|t| std::io::Write::flush(&mut out).map(|()| t)) {
        Ok(t) => ExitCode::from(t.status()),
        // Output closed early (`| head`): nothing more to say.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(2),
        Err(e) => {
            eprintln!("modgate: {e}");
            ExitCode::from(2)
        }
    }
}

/// The custom table `appid` has stored in the deployment `path` configures.
fn stored_table(
    path: &std::path::Path,
    appid: &str,
) -> Result<modgate::engine::table::CustomTable, String> {
    let config = Config::load(Some(path)).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(modgate::stored_table(&config, appid))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{appid} has no custom keyword table stored"))
}

/// `healthcheck`: 0 when the admin listener answers `/readyz` with 200.
fn healthcheck(config: Option<&std::path::Path>, admin: Option<&str>, timeout: f64) -> ExitCode {
    let addr = match admin {
        Some(a) => a.to_owned(),
        None => match Config::load(config) {
            Ok(c) => offline::local_address(c.admin.listen).to_string(),
            Err(e) => {
                eprint!("modgate: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    // A zero or unreadable timeout would make every socket call fail at once: use the default.
    let timeout = std::time::Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(std::time::Duration::from_secs(3));
    match offline::ready(&addr, timeout) {
        Ok(body) => {
            println!("ready: {}", body.replace('\n', "; "));
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("not ready: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `config check`: every problem, and exit 1 on any.
fn config_check(path: Option<&std::path::Path>) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            println!(
                "configuration is valid: {} app(s), state in {}, API on {}, admin on {}",
                c.apps.len(),
                match c.state.backend {
                    modgate::config::Backend::Memory => "this process",
                    modgate::config::Backend::Redis => "Redis",
                },
                c.server.listen,
                c.admin.listen
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for the process unless `server.huge_pages` asks for them
/// (before the stored tables load). The allocator asks for huge pages for its memory; where the
/// kernel grants them, every first touch of a 2 MiB region zeroes all of it at once, which cost
/// a table replacement 5-20 ms of its core on a virtual machine (BENCHMARKS.md). Turning them
/// off is logged at debug level; a refusal is a warning, and the process goes on as it is.
fn huge_pages(wanted: bool) {
    match rustix::thread::disable_transparent_huge_pages(!wanted) {
        Ok(()) if wanted => {}
        Ok(()) => tracing::debug!("transparent huge pages off for this process"),
        Err(e) => {
            tracing::warn!(error = %e, "transparent huge pages cannot be set for this process; left as they are")
        }
    }
}

fn serve(path: Option<PathBuf>, log_format: Option<&str>) -> ExitCode {
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("modgate: {errors}");
            return ExitCode::from(2);
        }
    };
    let format = log_format
        .and_then(LogFormat::parse)
        .unwrap_or(config.log.format);
    init_logging(format);
    huge_pages(config.server.huge_pages);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(async move {
        let listen = (config.server.listen, config.admin.listen);
        // The admin socket first, answering `/readyz` 503 "loading" while stored documents load
        // (seconds with thousands of tables): probes see a live process, not a refused port.
        let admin = match modgate::transport::server::bind(listen.1) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("modgate: cannot listen on {}: {e}", listen.1);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(admin = %listen.1, "loading: the admin listener answers /readyz 503 until ready");
        let loading = modgate::app::loading::Loading::start(admin);
        let gw = match modgate::build(config, modgate::Options::default()).await {
            Ok(gw) => gw,
            Err(e) => {
                eprintln!("modgate: {e}");
                return ExitCode::FAILURE;
            }
        };
        let admin = match loading.finish().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("modgate: the admin listener failed while loading: {e}");
                return ExitCode::FAILURE;
            }
        };
        let api = match modgate::transport::server::bind(listen.0) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("modgate: cannot listen on {}: {e}", listen.0);
                return ExitCode::FAILURE;
            }
        };
        // Installed before the gateway says it listens: a signal sent from then on is handled,
        // never met by the default action of ending the process at once.
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("modgate: cannot install the signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (api_addr, admin_addr) = (api.local_addr().ok(), admin.local_addr().ok());
        tracing::info!(
            api = %api_addr.map(|a| a.to_string()).unwrap_or_default(),
            admin = %admin_addr.map(|a| a.to_string()).unwrap_or_default(),
            apps = gw.apps.len(),
            "listening"
        );
        tokio::spawn(reload_on_sighup(Arc::clone(&gw), signals.hangup));
        let shutdown = drain_on_signal(signals.terminate, signals.interrupt);
        modgate::serve(gw, modgate::Listeners { api, admin }, shutdown).await;
        ExitCode::SUCCESS
    });
    // The analysis workers may still be inside ONNX Runtime (loading, or a last analysis):
    // exiting under them would crash in the library's destructors.
    modgate::vision::runtime::quiesce(std::time::Duration::from_secs(5));
    status
}

/// Log events to standard error, at `RUST_LOG`'s levels (`info` by default).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One object per line, the event's fields at the top level beside the spans' (a
        // request's `rid`).
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// The signals `serve` answers: SIGTERM and SIGINT drain, SIGHUP reloads the lexicon.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }
}

/// Rebuilds the lexicon (built-in plus `[[engine.lexicon]]` files) on every SIGHUP.
async fn reload_on_sighup(gw: Arc<modgate::gateway::Gateway>, mut hup: Signal) {
    while hup.recv().await.is_some() {
        match gw.reload_engine().await {
            Ok(patterns) => tracing::info!(patterns, "lexicon reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "lexicon reload failed; the previous lexicon stays in force")
            }
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits the process at once.
async fn drain_on_signal(mut term: Signal, mut int: Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal received: draining (send another to exit at once)");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting without draining");
        modgate::vision::runtime::quiesce(std::time::Duration::from_secs(2));
        std::process::exit(130);
    });
}
