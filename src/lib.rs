//! `deployer`: builds and runs a web service on AWS across regions by calling the AWS SDKs
//! directly. Data flows one way:
//!
//! ```text
//! args ─▶ settings ─▶ Config ─▶ Desired ─┐
//!                                        ├─▶ Plan ─▶ engine ─▶ AWS
//!                      AWS ─▶ Observed ──┘
//! ```
//! `spec`, `config`, `model`, `plan` and `engine` are pure (the engine runs an executor; the
//! AWS one is `resources::Aws`); `observe`, the kinds' I/O in `resources`, `lock` and `release`
//! talk to AWS; `commands` parse arguments and render; the binary's `cli` is the only place
//! that knows clap. The layers and what each may import: `scripts/check-layers`, and
//! docs/architecture.md "Layers".

pub mod cloud;
pub mod commands;
pub mod config;
pub mod engine;
pub mod failover;
pub mod lock;
pub mod model;
pub mod observe;
pub mod permissions;
pub mod plan;
pub mod release;
pub mod resources;
pub mod session;
pub mod spec;
