//! modgate: a self-hosted content-moderation gateway that speaks the wire protocol of WeChat's
//! mini-program content-security APIs.
//!
//! # Layout
//!
//! Each module imports only modules below it (`tests/layers.rs` holds the table and fails when
//! an import goes up or a loop appears):
//!
//! - [`app`]: building the gateway from a config, serving it on two listeners, draining it.
//! - [`api`] and [`admin`]: the WeChat-compatible API and the operator API (HTTP only).
//! - [`gateway`]: the parts both listeners share, and admission.
//! - [`catalog`]: stored documents (apps, keyword tables, hash banks, risk lists), the one way
//!   they change, and changes made on other instances put in force here.
//! - [`jobs`]: media check jobs (queue, fetcher, dispatcher, signed pushes).
//! - [`effects`]: what a verdict sets off (the user's risk record, the review queue).
//! - [`tenants`]: the registry of apps and each app's slot.
//! - [`review`], [`risk`], [`media`]: the review queue, the user risk model, media analysis.
//! - [`metrics`]: the registry and the API's series.
//! - [`state`]: backend traits (memory, Redis) and the embedded store; knows keys, counters and
//!   bytes.
//! - [`config`]: raw TOML, then a validated [`config::Config`], one module per section.
//! - [`transport`]: the accept loop, framing guard, overload shedding, shutdown, responses.
//! - [`vision`]: the media models (ONNX Runtime at run time) and their analysis pool.
//! - [`engine`], [`limits`], [`token`], [`ids`], [`rid`], [`clock`]: pure leaves.
//!
//! [`run`] (or [`build`] then [`serve`]) starts both listeners on already-bound sockets and
//! returns after a graceful shutdown, so tests run the real server on `127.0.0.1:0`.

pub mod admin;
pub mod api;
pub mod app;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod effects;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod review;
pub mod rid;
pub mod risk;
pub mod state;
pub mod tenants;
pub mod token;
pub mod transport;
pub mod upstream;
pub mod usage;
pub mod vision;

pub use app::{Listeners, Options, RunError, build, run, serve, stored_table};
