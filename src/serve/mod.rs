//! The service (feature `serve`): LightFlow remediation with nothing to write but a configuration.
//!
//! - [`callback_router`] (`callbacks.rs`): LightFlow's callbacks, checked (the token the library put in each
//!   callback URL) and handed to the store at once.
//! - [`gateway_router`] (`gateway.rs`): `POST /assets` through the service, which records the asset's parameters
//!   and adds its callback entry, so that a failure of it can be resubmitted.
//! - [`observe_router`] (`observe.rs`): `/healthz`, `/readyz`, and `/metrics` in Prometheus' text format.
//! - [`ui_router`] (`ui/`): the operator's web view: an overview, the jobs (filters, paging, cancel and retry
//!   now), one job's history and next step, the policies; for viewers' and operators' tokens.
//! - [`ServeConfig`] (`config.rs`): the TOML file and the environment.
//! - [`Service`] (`app.rs`): all of it on one listener, as `remedy serve` runs it; [`demo`] runs it against a
//!   simulated LightFlow over loopback HTTP.
//!
//! Each router is a value a host can nest in its own axum server.

mod app;
mod callbacks;
mod config;
pub mod demo;
mod gateway;
mod observe;
mod reply;
mod sweeper;
mod ui;

pub use app::{BuildOptions, Environment, Secrets, ServeError, Service, ServiceHooks};
pub use callbacks::{CALLBACK_ROLE, CALLBACKS_REFUSED, MAX_CALLBACK_BYTES, callback_router, callback_router_asking};
pub use config::{
    CallbacksConfig, ConfigError, ENV_OVERRIDES, EngineConfig, GatewayConfig, LightFlowConfig, MetricsConfig,
    NotifyConfig, ServeConfig, UiConfig,
};
pub use gateway::{ASSET_HEADER, gateway_router};
pub use observe::{HELD_REPORTS, JOBS, observe_router, prometheus};
pub use ui::{
    AccessError, CONTENT_SECURITY_POLICY, Role, SESSION_COOKIE, UiAccess, UiOptions, Who, fingerprint, ui_router,
};
