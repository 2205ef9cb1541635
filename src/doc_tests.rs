//! The user's guide as doc tests: README.md and each page of `docs/` is the documentation of a hidden module
//! here, so that `cargo test --doc` compiles (and, unless marked `no_run`, runs) every Rust snippet in them.
//! Built only for doc tests (`#[cfg(doctest)]` in lib.rs); a page whose snippets need a feature is tested with it.

#[doc = include_str!("../README.md")]
mod readme {}

#[doc = include_str!("../docs/README.md")]
mod guide {}

#[doc = include_str!("../docs/failures.md")]
mod failures {}

#[doc = include_str!("../docs/policies.md")]
mod policies {}

#[cfg(feature = "testing")]
#[doc = include_str!("../docs/engine.md")]
mod engine {}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[doc = include_str!("../docs/stores.md")]
mod stores {}

#[cfg(feature = "serve")]
#[doc = include_str!("../docs/lightflow.md")]
mod lightflow {}

#[doc = include_str!("../docs/service.md")]
mod service {}

#[doc = include_str!("../docs/operating.md")]
mod operating {}

#[doc = include_str!("../docs/performance.md")]
mod performance {}

#[doc = include_str!("../docs/development.md")]
mod development {}

#[cfg(feature = "serve")]
#[doc = include_str!("../docs/web-view.md")]
mod web_view {}
