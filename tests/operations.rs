//! docs/operations.md against the code: the configuration reference names exactly the keys the
//! parser accepts, the metric catalogue exactly the metrics the gateway registers, a live scrape
//! passes `promtool check metrics`, and the Grafana dashboard charts only catalogued metrics.
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap()
}

/// The first-column names of the table rows under `heading`.
fn table_names(doc: &str, heading: &str) -> BTreeSet<String> {
    let section = doc.split(heading).nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split('`').next().unwrap().to_owned())
        .collect()
}

/// The field names a section accepts, read from the parser's own refusal of an unknown one
/// ("expected one of `a`, `b`" or "expected `a` or `b`").
fn accepted(toml: &str) -> Vec<String> {
    let errors = modgate::config::Config::from_toml(toml).unwrap_err();
    let message = &errors.0[0].message;
    let expected = message
        .split("expected")
        .nth(1)
        .unwrap_or_else(|| panic!("no field list in {message:?}"));
    // The list ends the first line; the parser may name the section after it ("in `server`").
    let expected = expected.lines().next().unwrap_or("");
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_configuration_reference_names_every_key_and_no_other() {
    let mut keys = BTreeSet::new();
    for section in accepted("zz_unknown = 1\n") {
        let probe = match section.as_str() {
            "apps" => "[[apps]]\nzz_unknown = 1\n".to_owned(),
            _ => format!("[{section}]\nzz_unknown = 1\n"),
        };
        for field in accepted(&probe) {
            if section == "engine" && field == "lexicon" {
                for sub in accepted("[[engine.lexicon]]\nzz_unknown = 1\n") {
                    keys.insert(format!("engine.lexicon.{sub}"));
                }
            }
            keys.insert(format!("{section}.{field}"));
        }
        if section == "apps" {
            keys.insert("apps".into());
        }
    }
    assert!(keys.len() > 50, "{keys:?}");
    let documented = table_names(&doc(), "## Configuration reference");
    let missing: Vec<_> = keys.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&keys).collect();
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
    assert!(
        stale.is_empty(),
        "documented keys the parser refuses: {stale:?}"
    );
}

/// README's configuration example, with the variables its command line sets, is valid (the
/// secret files it names are made up here), and so is every configuration file README runs.
#[test]
fn the_readme_configuration_examples_are_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(!blocks.is_empty(), "README shows no configuration");
    let env: Vec<(String, String)> = readme
        .split_whitespace()
        .filter(|w| w.starts_with("MODGATE_") && w.contains("__") && w.contains('='))
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert!(!env.is_empty(), "README shows no variable");
    let dir = std::env::temp_dir().join(format!("modgate-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for block in blocks {
        let mut text = block.to_owned();
        for path in block.split('"').filter(|s| s.starts_with("/run/secrets/")) {
            let file = dir.join(path.trim_start_matches("/run/secrets/"));
            // A valid app secret is a valid token and password too.
            std::fs::write(&file, "0123456789abcdef0123456789abcdef\n").unwrap();
            text = text.replace(path, &file.display().to_string());
        }
        let config = modgate::config::layered(&text, env.clone())
            .unwrap_or_else(|e| panic!("README's example:\n{block}\n{e}"));
        assert_eq!(
            config.limits.text_per_minute.get(),
            6000,
            "the variable applies"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let files: BTreeSet<&str> = readme
        .split(|c: char| c.is_whitespace() || c == '`')
        .filter(|w| w.starts_with("config/") && w.ends_with(".toml"))
        .collect();
    assert!(files.contains("config/demo.toml"), "{files:?}");
    for file in files {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        modgate::config::Config::from_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// The metric names the code registers: each component keeps its metrics in a file named
/// `metrics.rs` (src/metrics.rs for the API's and the registry).
fn registered() -> BTreeSet<String> {
    fn metric_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                metric_files(&path, out);
            } else if path.file_name().is_some_and(|n| n == "metrics.rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    metric_files(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    assert!(files.len() >= 4, "{files:?}");
    files
        .iter()
        .flat_map(|file| {
            let source = std::fs::read_to_string(file).unwrap();
            source
                .split('"')
                .filter(|s| {
                    s.starts_with("modgate_")
                        && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A risky check refused for the missing visit (61010), the visit, then three checks: with a
/// rate of two a minute, one verdict and two rate refusals.
async fn refused_then_checked(s: &TestServer, token: &str) {
    let body = r#"{"content":"出售冰毒","version":2,"scene":2,"openid":"u1"}"#;
    assert_eq!(s.check(token, body).await["errcode"], 61010);
    s.post(
        &format!("/wxa/visit/report?access_token={token}"),
        r#"{"openid":"u1"}"#,
    )
    .await;
    for _ in 0..3 {
        s.check(token, body).await;
    }
}

/// The process collector's metrics (the prometheus crate's, read from /proc).
const PROCESS: [&str; 7] = [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_threads",
    "process_start_time_seconds",
];

#[tokio::test]
async fn the_metric_catalogue_matches_the_code_and_promtool_accepts_a_scrape() {
    let documented = table_names(&doc(), "## Metrics");
    let mut expected = registered();
    expected.extend(PROCESS.map(str::to_owned));
    assert_eq!(documented, expected);

    // A gateway that has done a little of everything, scraped.
    let s = TestServer::start_with(&default_config().replace(
        "[limits]\nenforce = false\n",
        "[limits]\ntext_per_minute = 2\n",
    ))
    .await;
    let t = s.token().await;
    refused_then_checked(&s, &t).await;
    let scrape = s.metrics_text().await;
    let exposed: BTreeSet<String> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert!(exposed.len() >= 10, "{exposed:?}");
    let undocumented: Vec<_> = exposed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "exposed but not catalogued: {undocumented:?}"
    );
    for seen in [
        "modgate_verdicts_total",
        "modgate_limit_refusals_total",
        "modgate_quota_admitted_total",
        "modgate_build_info",
    ]
    .into_iter()
    .chain(PROCESS)
    {
        assert!(exposed.contains(seen), "{seen} missing from {exposed:?}");
    }

    // promtool (Debian package prometheus; scripts/test installs it).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test installs the prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.shutdown().await;
}

/// `metrics.apps` gives the listed apps series of their own (verdicts and refusals); the other
/// apps count in the totals only.
#[tokio::test]
async fn listed_apps_get_series_of_their_own_and_others_do_not() {
    let config = default_config().replace(
        "[limits]\nenforce = false\n",
        &format!("[limits]\ntext_per_minute = 2\n[metrics]\napps = [\"{APPID}\"]\n"),
    );
    let s = TestServer::start_with(&config).await;
    // Listed at zero from the start.
    let scrape = s.metrics_text().await;
    let series = |appid: &str, api: &str, suggest: &str| {
        format!(r#"modgate_app_verdicts_total{{api="{api}",appid="{appid}",suggest="{suggest}"}}"#)
    };
    assert!(
        scrape.contains(&format!("{} 0", series(APPID, "msg_sec_check", "risky"))),
        "{scrape}"
    );
    for (appid, secret) in [(APPID, SECRET), (APPID2, SECRET2)] {
        let t = s.token_for(appid, secret).await;
        refused_then_checked(&s, &t).await;
    }
    let scrape = s.metrics_text().await;
    // Two admitted (the rate is two a minute, the first call was refused for the visit).
    let value = |line: &str| -> f64 {
        scrape
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line} in {scrape}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(&series(APPID, "msg_sec_check", "risky")),
        1.0,
        "{scrape}"
    );
    assert_eq!(
        value(&format!(
            r#"modgate_app_refusals_total{{api="msg_sec_check",appid="{APPID}",reason="visit"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            r#"modgate_app_refusals_total{{api="msg_sec_check",appid="{APPID}",reason="rate"}}"#
        )),
        2.0
    );
    // The unlisted app: in the totals, not in series of its own.
    assert!(
        !scrape
            .lines()
            .any(|l| l.starts_with("modgate_app_") && l.contains(APPID2)),
        "{scrape}"
    );
    assert_eq!(
        value(r#"modgate_limit_refusals_total{api="msg_sec_check",reason="rate"}"#),
        4.0
    );
    s.shutdown().await;
}

#[test]
fn the_dashboard_charts_only_catalogued_metrics() {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let documented = table_names(&doc(), "## Metrics");
    let mut charted = BTreeSet::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("modgate_") || word.starts_with("process_") {
                    // A histogram's series: its buckets, sum and count.
                    let name = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|suffix| word.strip_suffix(suffix))
                        .filter(|base| documented.contains(*base))
                        .unwrap_or(word)
                        .to_owned();
                    assert!(
                        documented.contains(&name),
                        "{name} in {expr:?} is not catalogued"
                    );
                    charted.insert(name);
                }
            }
        }
    }
    assert_eq!(charted, documented, "every catalogued metric has a chart");
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (scripts/test installs the prometheus package)")
}

/// The alert rules the stack loads and every query of the dashboard are valid PromQL, and the
/// stack's Prometheus configuration loads them (promtool, as Prometheus would). The compose file
/// itself is checked by tests/compat/test_compose.py.
#[test]
fn the_alert_rules_the_prometheus_config_and_the_dashboards_queries_pass_promtool() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let alerts = root.join("deploy/alerts.yml");
    let out = promtool(&["check", "rules", alerts.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("SUCCESS: 8 rules found"), "{said}");

    // Each dashboard query as a recording rule (with every instance selected).
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut count = 0;
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$instance", ".*");
            count += 1;
            rules += &format!(
                "      - record: dashboard:query_{count}\n        expr: {}\n",
                serde_json::Value::String(expr)
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("modgate-promtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dashboard-rules.yml");
    std::fs::write(&file, rules).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("SUCCESS: {count} rules found"))
    );

    // The stack's Prometheus configuration, its rule file where the compose file mounts it.
    let config = std::fs::read_to_string(root.join("deploy/prometheus.yml"))
        .unwrap()
        .replace("/etc/prometheus/alerts.yml", alerts.to_str().unwrap());
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let out = promtool(&["check", "config", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();

    // The instance variable exists for the panels' selectors.
    assert!(json["templating"]["list"][1]["name"] == "instance");
}
