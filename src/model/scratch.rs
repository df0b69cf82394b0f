//! Per-thread scratch buffers for the default trait methods ([`Model::jvp`](super::Model::jvp),
//! [`Map::step_tangent`](super::Map::step_tangent), …), the small temporaries of the shipped
//! systems and the FFTs of [`crate::fracdiff`]: a pool of buffers per thread and element type
//! (`f64`, complex), so that after the first call on a thread nothing is allocated (a buffer only
//! grows when a larger one is asked for). Nested use (a default method calling a model that
//! itself needs scratch, an FFT's scratch inside its padded signal's) takes a second buffer from
//! the pool.

use realfft::num_complex::Complex64;
use std::cell::RefCell;
use std::thread::LocalKey;

thread_local! {
    static POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
    static COMPLEX: RefCell<Vec<Vec<Complex64>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a zeroed-or-stale buffer of exactly `len` entries (contents unspecified: the
/// caller overwrites what it reads) taken from this thread's pool, and returns it to the pool.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    with_pool(&POOL, len, f)
}

/// [`with_scratch`] for complex buffers (spectra and FFT scratch).
pub fn with_complex_scratch<R>(len: usize, f: impl FnOnce(&mut [Complex64]) -> R) -> R {
    with_pool(&COMPLEX, len, f)
}

fn with_pool<T: Clone + Default + 'static, R>(
    pool: &'static LocalKey<RefCell<Vec<Vec<T>>>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buf = pool
        .with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    let r = f(&mut buf[..len]);
    pool.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.push(buf);
        }
    });
    r
}
