//! Seeds: one derivation shared by every module that splits a master seed into independent
//! streams (the sweep's trials, the trainer's minibatches and evaluation trials), so that results
//! are bitwise identical whatever the number of threads, shards or restarts.

/// SplitMix64 finaliser: the per-trial seed from (seed, i, j, k).
pub fn trial_seed(seed: u64, i: usize, j: usize, k: usize) -> u64 {
    let mut x = seed;
    for v in [i as u64, j as u64, k as u64] {
        x = x
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(v.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}
