//! Integration tests: the real bridge on port 0 over the embedded store and the real Redis, and the real binary.

mod assets;
mod attacks;
mod audit;
mod cli;
mod connections;
mod cross_device;
mod deploy;

mod headers;
mod helpers;
mod https;
mod keys;
#[path = "../kit/mod.rs"]
mod kit;
mod layers;
mod limits;
mod logs;
mod manage;
mod metrics;
mod outage;
mod pages;
mod passkeys;
mod pin_bridge;
mod qr;
mod races;
mod related_origins;
mod signals;
mod streams;
mod validation;
mod webhooks;

// The tests name the phone `crate::phone`; it lives in the kit, shared with the benchmark harness.
use kit::phone;
