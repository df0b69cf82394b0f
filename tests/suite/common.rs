//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh, empty temporary folder for this test process and `name` (every call its own: the tests
/// of all modules share one process).
pub fn tmpdir(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("neurodyn-test-{}-{k}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Engelken, Wolf & Abbott (2023): the deterministic tanh-map spectrum (N = 10, g = 1.5), 10 significant digits.
pub const LYAP_SPEC: [f64; 10] = [
    -1.111642945e-3,
    -0.1818549330,
    -0.1823568477,
    -0.4191016377,
    -0.4903359098,
    -0.5371738818,
    -1.053197076,
    -1.054892157,
    -1.782614453,
    -3.451318468,
];
