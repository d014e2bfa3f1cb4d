//! Redis over TLS, as managed services offer it: a `redis-server` of the test's own serving TLS
//! only, with a certificate from a private CA (made here with openssl) and a password. In a
//! binary of its own: its servers would otherwise share the two cores with the three-instance
//! test's timing.
#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// The redis-server, stopped with the test.
struct OwnRedis(Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gateway's configuration on `redis_url`, the password and CA given as files.
fn config(redis_url: &str, dir: &std::path::Path, ca: bool) -> String {
    let ca = if ca {
        format!("redis_ca_file = \"{}\"\n", dir.join("ca.pem").display())
    } else {
        String::new()
    };
    format!(
        r#"
[limits]
text_per_minute = 100000
[state]
backend = "redis"
redis_url = "{redis_url}"
redis_prefix = "modgate-it-tls-{}"
redis_password_file = "{}"
{ca}data_dir = "{}"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
text_per_day = 1000
"#,
        std::process::id(),
        dir.join("password").display(),
        fresh_dir("data").display()
    )
}

fn body(content: &str, openid: &str) -> String {
    json!({"content": content, "version": 2, "scene": 2, "openid": openid}).to_string()
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/test installs it)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// Redis over TLS, as managed services offer it: a certificate from a private CA and a
/// password. The gateway reaches it with `rediss://`, the CA from `redis_ca_file` and the
/// password from `redis_password_file`, and everything kept in Redis works through it; without
/// the CA (the system's roots do not know it) the start fails instead of talking in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_a_private_ca_and_a_password_from_a_file() {
    let dir = fresh_dir("redis-tls");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=modgate test CA",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    std::fs::write(dir.join("password"), "s3cret pass\n").unwrap();
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
        .args([
            "--requirepass",
            "s3cret pass",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/test installs it)");
    let _redis = OwnRedis(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("rediss://127.0.0.1:{port}/0");

    // The system's roots do not know this CA: the start fails.
    let refused = modgate::build(
        modgate::config::Config::from_toml(&config(&url, &dir, false)).unwrap(),
        modgate::Options::default(),
    )
    .await;
    let Err(e) = refused else {
        panic!("started without the CA")
    };
    let e = e.to_string();
    assert!(e.contains("shared state"), "{e}");

    let with_ca = config(&url, &dir, true);
    let a = TestServer::start_with(&with_ca).await;
    let b = TestServer::start_with(&with_ca).await;
    // A token from one instance is good on the other, and the daily quota counts in Redis.
    let t = a.token().await;
    let (status, v) = a
        .post(
            &format!("/wxa/visit/report?access_token={t}"),
            json!({ "openid": "u-tls" }).to_string(),
        )
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    let v: Value = b.check(&t, &body("你好", "u-tls")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, quota) = a
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t}"),
            r#"{"cgi_path":"/wxa/msg_sec_check"}"#,
        )
        .await;
    assert_eq!(quota["quota"]["used"], 1, "{quota}");
    assert!(
        a.metrics_text()
            .await
            .contains("modgate_state_backend_up 1")
    );
    a.shutdown().await;
    b.shutdown().await;
}
