//! Per-thread scratch buffers for the default trait methods ([`Model::jvp`](super::Model::jvp),
//! [`Map::step_tangent`](super::Map::step_tangent), …) and the small temporaries of the shipped
//! systems: a pool of `Vec<f64>` per thread, so that after the first call on a thread nothing is
//! allocated (a buffer only grows when a larger one is asked for). Nested use (a default method
//! calling a model that itself needs scratch) takes a second buffer from the pool.

use std::cell::RefCell;

thread_local! {
    static POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a zeroed-or-stale buffer of exactly `len` entries (contents unspecified: the
/// caller overwrites what it reads) taken from this thread's pool, and returns it to the pool.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    let mut buf = POOL
        .with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    POOL.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.push(buf);
        }
    });
    r
}
