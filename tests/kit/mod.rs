//! What the API tests and the benchmark harness both need to speak to a bridge: the SDK's and the phone page's calls, and a phone.

pub mod client;
pub mod phone;
/// The unit tests' own Redis check, so every suite skips (or, in CI, fails) alike.
#[path = "../../src/testing.rs"]
pub mod testing;

/// A port nothing listens on now, for a process that binds it itself (a bridge, a Redis).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on loopback")
}
