//! QR Bridge: sign in on a desktop by approving with the passkey on your phone.

pub mod session;
