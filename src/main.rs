//! The `modgate` command: parse the CLI, load config, init logging, bind, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use modgate::api::wire::V2Body;
use modgate::config::Config;
use modgate::engine::Engine;

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
        /// TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the built-in engine's verdict for one text as JSON, offline.
    Check {
        /// The text to check.
        text: String,
        /// Also show why: the normalized text, and each hit with its span in the input and the
        /// normalization steps that led to it.
        #[arg(long)]
        explain: bool,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Check { text, explain } => check(&text, explain),
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

fn check(text: &str, explain: bool) -> ExitCode {
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("modgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verdict = engine.check(&[text]);
    // Offline and run by the operator: the deciding built-in word is shown.
    let body = V2Body::new("", &verdict, true);
    let out = serde_json::json!({ "result": body.result, "detail": body.detail });
    println!("{out}");
    if explain {
        print!("{}", explanation(&engine, text));
    }
    ExitCode::SUCCESS
}

/// `check --explain`: the normalized text, then one block per hit.
fn explanation(engine: &Engine, text: &str) -> String {
    use std::fmt::Write;
    let why = engine.explain(text, None);
    let mut out = String::new();
    let _ = writeln!(out, "normalized: {}", why.normalized);
    if why.hits.is_empty() {
        let _ = writeln!(out, "no hits");
    }
    for (n, hit) in why.hits.iter().enumerate() {
        let f = &hit.finding;
        let source = match f.source {
            modgate::engine::Source::Builtin(_) => "lexicon",
            modgate::engine::Source::Custom(_) => "custom table",
            modgate::engine::Source::Detector(_) => "detector",
        };
        let chars = |to: usize| text[..to].chars().count();
        let _ = writeln!(
            out,
            "hit {}: {} ({source}; label {}, {} {})",
            n + 1,
            hit.word,
            f.label.code(),
            f.suggest.as_str(),
            f.score,
        );
        let _ = writeln!(
            out,
            "  input: {:?} at characters {}..{} (bytes {}..{})",
            &text[hit.input_start..hit.input_end],
            chars(hit.input_start),
            chars(hit.input_end),
            hit.input_start,
            hit.input_end,
        );
        let _ = writeln!(
            out,
            "  matched: {:?}",
            why.normalized
                .get(f.start as usize..f.end as usize)
                .unwrap_or("")
        );
        let steps: Vec<&str> = hit.steps.iter().map(|s| s.as_str()).collect();
        let steps = if steps.is_empty() {
            "none (as written)".to_owned()
        } else {
            steps.join(", ")
        };
        let _ = writeln!(out, "  steps: {steps}");
    }
    out
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match path {
        Some(p) => Config::from_file(&p),
        None => Ok(Config::default()),
    };
    let config = match config {
        Ok(c) => c,
        Err(errors) => {
            eprint!("modgate: {errors}");
            return ExitCode::from(2);
        }
    };
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
        let gw = match modgate::build(config, modgate::Options::default()).await {
            Ok(gw) => gw,
            Err(e) => {
                eprintln!("modgate: {e}");
                return ExitCode::FAILURE;
            }
        };
        let api = modgate::transport::server::bind(listen.0);
        let admin = modgate::transport::server::bind(listen.1);
        let (api, admin) = match (api, admin) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => {
                eprintln!("modgate: cannot listen on {}: {e}", listen.0);
                return ExitCode::FAILURE;
            }
            (_, Err(e)) => {
                eprintln!("modgate: cannot listen on {}: {e}", listen.1);
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
        tokio::spawn(reload_on_sighup(Arc::clone(&gw)));
        modgate::serve(gw, modgate::Listeners { api, admin }, signals()).await;
        ExitCode::SUCCESS
    });
    // The analysis workers may still be inside ONNX Runtime (loading, or a last analysis):
    // exiting under them would crash in the library's destructors.
    modgate::vision::runtime::quiesce(std::time::Duration::from_secs(5));
    status
}

/// Rebuilds the lexicon (built-in plus `[[engine.lexicon]]` files) on every SIGHUP.
async fn reload_on_sighup(gw: Arc<modgate::gateway::Gateway>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; lexicon reload is unavailable");
        return;
    };
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
async fn signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; shut down with SIGKILL");
        return std::future::pending().await;
    };
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
