//! The benchmark pairs, one module each (its number in bench/RESULTS.md opens its doc): ours measured beside its pair.

pub mod approval_page;
pub mod http_ceiling;
pub mod init_vs_redis;
pub mod verify_cost;
pub mod waiting;
pub mod wake;
