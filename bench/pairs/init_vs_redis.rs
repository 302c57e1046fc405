//! Pair 2: init on the Redis store against Redis's own SET … EX, at the same concurrency.

use serde::{Deserialize, Serialize};

use crate::load::{Load, redis_set};
use crate::options::Settings;

#[derive(Debug, Serialize, Deserialize)]
pub struct InitVsRedis {
    pub concurrency: usize,
    pub init_redis: Load,
    pub redis_set_ex: Load,
    /// Init's requests per second over SET's: how close init comes to the store beneath it.
    pub ratio: f64,
}

/// `init_redis` is pair 1's figure for the Redis store: measuring it again would only add noise.
pub fn run(s: &Settings, init_redis: Load) -> InitVsRedis {
    let redis_set_ex = redis_set(s);
    InitVsRedis {
        concurrency: s.concurrency,
        ratio: init_redis.rps / redis_set_ex.rps,
        init_redis,
        redis_set_ex,
    }
}
