//! `deployer`: builds and runs a web service on AWS across regions by calling the AWS SDKs
//! directly. Data flows one way:
//!
//! ```text
//! args ─▶ settings ─▶ Config ─▶ Desired ─┐
//!                                        ├─▶ Plan ─▶ engine ─▶ AWS
//!                      AWS ─▶ Observed ──┘
//! ```
//! `config`, `model` and `plan` are pure; `observe`, `resources`' I/O functions and `engine`
//! talk to AWS; `commands` glue them; the binary's `cli` is the only place that knows clap.

pub mod cloud;
pub mod commands;
pub mod config;
pub mod engine;
pub mod lock;
pub mod model;
pub mod observe;
pub mod permissions;
pub mod plan;
pub mod release;
pub mod resources;
pub mod spec;
