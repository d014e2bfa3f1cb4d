//! What the request framing guard costs per request: inspecting one benchmark request (head and
//! body, as one read) the way the server does, for a usual head (judged by the line scan) and
//! for one the scan leaves to httparse (a header line beginning with `t`).
//!
//! Run: `cargo bench --bench framing`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modgate::transport::framing::Framing;

fn request(extra_header: &str) -> Vec<u8> {
    let body = include_bytes!("../loadtest/body.json");
    let mut req = format!(
        "POST /wxa/msg_sec_check?access_token=eyJhcHBpZCI6Ind4MDEyMzQ1Njc4OWFiY2RlZiJ9.c2lnbmF0dXJlc2lnbmF0dXJl HTTP/1.1\r\n\
         Host: 127.0.0.1:18080\r\n{extra_header}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    for (name, extra) in [
        ("usual head (line scan)", ""),
        (
            "head with a t… header (httparse)",
            "Traceparent: 00-abc-def-01\r\n",
        ),
    ] {
        let mut req = request(extra);
        let mut framing = Framing::default();
        g.bench_function(name, |b| {
            b.iter(|| framing.inspect(black_box(&mut req)));
        });
        assert_eq!(framing.refused(), 0);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
