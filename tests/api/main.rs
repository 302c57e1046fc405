//! Integration tests: the real bridge on port 0 over the embedded store and the real Redis, and the real binary.

mod attacks;
mod cli;
mod connections;
mod cross_device;
mod headers;
mod helpers;
mod keys;
mod limits;
mod outage;
mod pages;
mod passkeys;
mod phone;
mod races;
mod streams;
mod validation;
