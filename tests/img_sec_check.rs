//! SPEC §12: `/wxa/img_sec_check`, the v1 synchronous image check: multipart uploads, the
//! media analysis's verdict, its own limits, and every kind of bad upload.

#![allow(clippy::unwrap_used)] // a failing step is a failing test

mod common;

use common::*;
use serde_json::{Value, json};

const BOUNDARY: &str = "modgate-test-boundary";

/// A photo-like image: gradients and texture, enough structure for a PDQ hash.
fn photo(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        let n = ((x * 7919) ^ (y * 104_729) ^ (seed * 31)) % 23;
        image::Rgb([
            ((x * 255 / 320) + n) as u8,
            ((y * 255 / 240 + seed * 40) % 256) as u8,
            (((x + y) * 2 + n) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A multipart body of `(name, content)` parts, closed unless `close` is false.
fn multipart(parts: &[(&str, &[u8])], close: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"upload.png\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    if close {
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    }
    body
}

async fn upload(s: &TestServer, token: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = s
        .client
        .post(s.url(&format!("/wxa/img_sec_check?access_token={token}")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

async fn check(s: &TestServer, token: &str, image: &[u8]) -> Value {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let (status, v) = upload(s, token, &ct, multipart(&[("media", image)], true)).await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn images_get_the_media_analysis_verdict() {
    let s = TestServer::start().await;
    let t = s.token().await;
    assert_eq!(
        check(&s, &t, &photo(1)).await,
        json!({"errcode": 0, "errmsg": "ok"})
    );
    // Banked as risky for this app: 87014 with a rid, for this app only.
    let resp = s
        .client
        .post(s.admin_url(&format!("/admin/banks/{APPID}?label=20002&suggest=risky")))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "image/png")
        .body(photo(2))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = check(&s, &t, &photo(2)).await;
    assert_err(&v, 87014);
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("risky content rid: ")
    );
    let other = s.token_for(APPID2, SECRET2).await;
    assert_eq!(check(&s, &other, &photo(2)).await["errcode"], 0);
    // A file that is not an image, and one that claims to be PNG but is not.
    assert_err(
        &check(&s, &t, b"just some text, not a picture").await,
        40004,
    );
    let mut broken = photo(3);
    broken.truncate(100);
    assert_err(&check(&s, &t, &broken).await, 40004);
    // Extra fields beside the file are fine, in any order.
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let body = multipart(&[("type", b"image/png"), ("media", &photo(1))], true);
    assert_eq!(upload(&s, &t, &ct, body).await.1["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_uploads_get_clear_errcodes() {
    let s = TestServer::start().await;
    let t = s.token().await;
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let image = photo(1);
    // Token first, then the upload.
    let (_, v) = upload(&s, "", &ct, multipart(&[("media", &image)], true)).await;
    assert_err(&v, 41001);
    let (status, v) = s.get(&format!("/wxa/img_sec_check?access_token={t}")).await;
    assert_eq!(status, 200);
    assert_err(&v, 43002);
    // No media part; an empty one.
    let (_, v) = upload(&s, &t, &ct, multipart(&[("file", &image)], true)).await;
    assert_err(&v, 41005);
    let (_, v) = upload(&s, &t, &ct, multipart(&[("media", b"")], true)).await;
    assert_err(&v, 41005);
    // Not multipart, or no boundary.
    for content_type in ["multipart/form-data", "application/json", "image/png"] {
        let (status, v) = upload(&s, &t, content_type, multipart(&[("media", &image)], true)).await;
        assert_eq!(status, 200);
        assert_err(&v, 47001);
        assert!(v["errmsg"].as_str().unwrap().contains("boundary"), "{v}");
    }
    // 10,000 parts.
    let mut many =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n")
            .repeat(10_000)
            .into_bytes();
    many.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let (_, v) = upload(&s, &t, &ct, many).await;
    assert_err(&v, 47001);
    assert!(
        v["errmsg"].as_str().unwrap().contains("more than 8 parts"),
        "{v}"
    );
    // A file over the 1 MiB limit.
    let big = vec![0x89u8; (1 << 20) + 1];
    let (_, v) = upload(&s, &t, &ct, multipart(&[("media", &big)], true)).await;
    assert_err(&v, 40006);
    // A body cut short before its closing boundary.
    let (_, v) = upload(&s, &t, &ct, multipart(&[("media", &image)], false)).await;
    assert_err(&v, 47001);
    assert!(v["errmsg"].as_str().unwrap().contains("cut short"), "{v}");
    // A body announced far over the limit is refused before it is read.
    let addr = s.api;
    let head = format!(
        "POST /wxa/img_sec_check?access_token={t} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: {ct}\r\nContent-Length: 50000000\r\n\r\n"
    );
    let answer = raw_exchange(addr, head.as_bytes(), std::time::Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // After all of that, a good upload is still served.
    assert_eq!(check(&s, &t, &image).await["errcode"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn the_image_check_has_limits_of_its_own() {
    let config = default_config().replace(
        "[limits]\nenforce = false\n",
        "[limits]\nimage_per_minute = 3\nimage_per_day = 4\n",
    ) + "image_per_minute = 1\n";
    let s = TestServer::start_with(&config).await;
    let t = s.token().await;
    let image = photo(1);
    for _ in 0..3 {
        assert_eq!(check(&s, &t, &image).await["errcode"], 0);
    }
    assert_err(&check(&s, &t, &image).await, 44991);
    // Text checks are not touched by the image check's limits.
    let text = json!({"content":"hello"}).to_string();
    assert_eq!(s.check(&t, &text).await["errcode"], 0);
    let (_, q) = s
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={t}"),
            r#"{"cgi_path":"/wxa/img_sec_check"}"#,
        )
        .await;
    assert_eq!(q["quota"], json!({"daily_limit":4,"used":3,"remain":1}));
    // The day's quota: one more after the minute refills, then 45009.
    s.clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(check(&s, &t, &image).await["errcode"], 0);
    assert_err(&check(&s, &t, &image).await, 45009);
    // The second app overrides its rate: one a minute.
    let t2 = s.token_for(APPID2, SECRET2).await;
    assert_eq!(check(&s, &t2, &image).await["errcode"], 0);
    assert_err(&check(&s, &t2, &image).await, 44991);
    s.shutdown().await;
}
