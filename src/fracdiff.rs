//! Fractional derivatives of sampled signals (Podlubny 1999; Oldham & Spanier 1974), with base point t₀ = 0 on the uniform
//! grid `t_k = k h`, k = 0..N−1:
//!
//! | scheme | formula | order | α |
//! |---|---|---|---|
//! | Grünwald–Letnikov ([`Scheme::GrunwaldLetnikov`]) | $D_k = h^{-α}\sum_{j=0}^{k} w_j f_{k-j}$, $w_0 = 1$, $w_j = w_{j-1}(j-1-α)/j$ | O(h) | 0 < α < 2 |
//! | Riemann–Liouville, product trapezoid ([`Scheme::RiemannLiouville`]) | $D_k = \frac{h^{-α}}{Γ(2-α)}\sum_{j=0}^{k} c_{k,j} f_j$ | O(h^{2−α}) | 0 < α < 1 |
//! | Caputo L1 ([`Scheme::CaputoL1`]) | $D_k = \frac{h^{-α}}{Γ(2-α)}\sum_{j=0}^{k-1} b_j (f_{k-j} - f_{k-j-1})$, $b_j = (j+1)^{1-α} - j^{1-α}$ | O(h^{2−α}) | 0 < α < 1 |
//!
//! with $c_{k,0} = (k-1)^{1-α} - (k+α-1)k^{-α}$, $c_{k,j} = (k-j+1)^{1-α} - 2(k-j)^{1-α} + (k-j-1)^{1-α}$
//! and $c_{k,k} = 1$. Every scheme is a causal (Toeplitz) convolution plus boundary terms, computed
//! by a **zero-padded** real FFT (a linear convolution, O(N log N)) — unlike differint's `GL` (version 1.0.0), whose
//! unpadded FFT wraps around. The direct O(N²) sums are kept as references
//! ([`fracdiff_direct`]). At k = 0 the RL value is singular when f₀ ≠ 0 (returned as NaN) and 0 when
//! f₀ = 0; GL and L1 return their formula's value (GL: h^{−α} f₀, L1: 0).
//!
//! Also: the seed paper's periodic spectral operator [`spectral`] (a Fourier filter, *not* GL/RL)
//! and its fractional-order estimate [`estimate_order`] (§C.4).

use crate::error::{Error, Result};
use crate::model::scratch::{with_complex_scratch, with_scratch};
use rayon::prelude::*;
use realfft::num_complex::Complex64;
use realfft::RealFftPlanner;
use std::borrow::Cow;
use std::sync::Arc;

/// A discretisation of the fractional derivative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    GrunwaldLetnikov,
    RiemannLiouville,
    CaputoL1,
}

impl std::str::FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gl" | "grunwald-letnikov" => Ok(Scheme::GrunwaldLetnikov),
            "rl" | "riemann-liouville" => Ok(Scheme::RiemannLiouville),
            "l1" | "caputo" | "caputo-l1" => Ok(Scheme::CaputoL1),
            _ => Err(Error::invalid(
                "method",
                format!("unknown scheme `{s}` (expected gl, rl or l1; spectral is separate)"),
            )),
        }
    }
}

impl Scheme {
    /// The admissible orders.
    pub fn alpha_range(self) -> (f64, f64) {
        match self {
            Scheme::GrunwaldLetnikov => (0.0, 2.0),
            _ => (0.0, 1.0),
        }
    }
    /// Theoretical order of accuracy in h for smooth f (with f(0) = 0 for RL/L1 at full order).
    pub fn order(self, alpha: f64) -> f64 {
        match self {
            Scheme::GrunwaldLetnikov => 1.0,
            _ => 2.0 - alpha,
        }
    }
}

fn gamma_fn(x: f64) -> f64 {
    libm::tgamma(x)
}

fn validate(f: &[f64], alpha: f64, h: f64, scheme: Scheme) -> Result<()> {
    let (lo, hi) = scheme.alpha_range();
    if !(alpha > lo && alpha < hi) {
        return Err(Error::invalid(
            "alpha",
            format!("{alpha} is outside ({lo}, {hi}) for {scheme:?}"),
        ));
    }
    if !(h > 0.0 && h.is_finite()) {
        return Err(Error::invalid(
            "dt",
            format!("{h} (the sample spacing must be positive and finite)"),
        ));
    }
    if f.is_empty() {
        return Err(Error::invalid("input", "the signal is empty"));
    }
    crate::error::ensure_finite("input", f)
}

/// Grünwald–Letnikov weights `w_j = (−1)^j C(α, j)` by the stable recurrence
/// `w_j = w_{j−1} (j − 1 − α)/j`, j = 0..n−1.
pub fn gl_weights(alpha: f64, n: usize) -> Vec<f64> {
    let mut w = vec![0.0; n];
    gl_weights_into(alpha, &mut w);
    w
}

/// [`gl_weights`] into `w` (its length): the ratios in one vectorisable pass, then their running
/// product (the same bits as the recurrence written as one loop, twice as fast).
fn gl_weights_into(alpha: f64, w: &mut [f64]) {
    for (j, v) in w.iter_mut().enumerate().skip(1) {
        let j = j as f64;
        *v = (j - 1.0 - alpha) / j;
    }
    if let Some((first, rest)) = w.split_first_mut() {
        *first = 1.0;
        let mut c = 1.0;
        for v in rest {
            c *= *v;
            *v = c;
        }
    }
}

/// The convolution kernel and the per-sample boundary terms of a scheme, such that
/// `D_k = scale · ( Σ_{j≤k} kernel_{k−j} g_j + boundary_k )` with `g` given by [`Self::input`]
/// and the kernel by [`Self::fill`].
struct Kernel {
    scale: f64,
    scheme: Scheme,
    alpha: f64,
}

impl Kernel {
    fn new(alpha: f64, h: f64, scheme: Scheme) -> Self {
        let scale = match scheme {
            Scheme::GrunwaldLetnikov => h.powf(-alpha),
            _ => h.powf(-alpha) / gamma_fn(2.0 - alpha),
        };
        Kernel {
            scale,
            scheme,
            alpha,
        }
    }

    /// The kernel's first `k.len()` entries into `k`.
    fn fill(&self, k: &mut [f64]) {
        let p = 1.0 - self.alpha;
        let pw = |m: f64| if m <= 0.0 { 0.0 } else { m.powf(p) };
        match self.scheme {
            Scheme::GrunwaldLetnikov => gl_weights_into(self.alpha, k),
            // Σ_{j=1}^{k} a_{k−j} f_j with a_0 = 1 (c_{k,k}), a_m = (m+1)^p − 2m^p + (m−1)^p.
            Scheme::RiemannLiouville => {
                for (m, v) in k.iter_mut().enumerate() {
                    let m = m as f64;
                    *v = if m == 0.0 {
                        1.0
                    } else {
                        pw(m + 1.0) - 2.0 * pw(m) + pw(m - 1.0)
                    };
                }
            }
            // Σ_{m=1}^{k} b_{k−m} (f_m − f_{m−1}), b_j = (j+1)^p − j^p.
            Scheme::CaputoL1 => {
                for (j, v) in k.iter_mut().enumerate() {
                    let j = j as f64;
                    *v = pw(j + 1.0) - pw(j);
                }
            }
        }
    }

    /// The kernel's first `n` entries.
    fn entries(&self, n: usize) -> Vec<f64> {
        let mut k = vec![0.0; n];
        self.fill(&mut k);
        k
    }

    /// The sequence convolved with the kernel (f itself for Grünwald–Letnikov).
    fn input<'a>(&self, f: &'a [f64]) -> Cow<'a, [f64]> {
        if self.scheme == Scheme::GrunwaldLetnikov {
            return Cow::Borrowed(f);
        }
        let mut g = vec![0.0; f.len()];
        self.input_into(f, &mut g);
        Cow::Owned(g)
    }

    /// The convolution's input sequence written into `g` (length n).
    fn input_into(&self, f: &[f64], g: &mut [f64]) {
        match self.scheme {
            Scheme::GrunwaldLetnikov => g.copy_from_slice(f),
            Scheme::RiemannLiouville => {
                g.copy_from_slice(f);
                g[0] = 0.0;
            }
            Scheme::CaputoL1 => {
                g[0] = 0.0;
                for m in 1..f.len() {
                    g[m] = f[m] - f[m - 1];
                }
            }
        }
    }

    /// Adds the boundary terms and the scale to the convolution `conv`.
    fn finish(&self, f: &[f64], conv: &mut [f64]) {
        let p = 1.0 - self.alpha;
        for (k, c) in conv.iter_mut().enumerate() {
            let mut v = *c;
            if k == 0 {
                // Exactly kernel₀ · g₀ (an FFT leaves round-off of the size of the largest sample here).
                v = match self.scheme {
                    Scheme::GrunwaldLetnikov => f[0],
                    _ => 0.0,
                };
            }
            if self.scheme == Scheme::RiemannLiouville {
                if k == 0 {
                    *c = if f[0] == 0.0 { 0.0 } else { f64::NAN };
                    continue;
                }
                let kf = k as f64;
                let ck0 =
                    (kf - 1.0).max(0.0).powf(p) - (kf + self.alpha - 1.0) * kf.powf(-self.alpha);
                v += ck0 * f[0];
            }
            *c = self.scale * v;
        }
    }
}

/// A prepared FFT convolution with a fixed kernel: the kernel's spectrum is computed once and
/// reused for every signal (batch mode over the columns of an activity matrix).
pub struct Operator {
    kernel: Kernel,
    n: usize,
    len: usize,
    spec: Vec<Complex64>,
}

/// The FFT length the operators use for a linear convolution of `n` points: the smallest length
/// ≥ n of the form 2^a 3^b (rustfft's fastest radices; measured faster here than admitting
/// factors of 5 as well).
pub fn fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p3 = 1usize;
    while p3 < best {
        let mut m = p3;
        while m < n {
            m *= 2;
        }
        best = best.min(m);
        p3 *= 3;
    }
    best
}

impl Operator {
    /// Prepares D^α for signals of length n with spacing h.
    pub fn new(alpha: f64, h: f64, n: usize, scheme: Scheme) -> Result<Self> {
        validate(&[0.0], alpha, h, scheme)?;
        if n == 0 {
            return Err(Error::invalid("input", "the signal is empty"));
        }
        let kernel = Kernel::new(alpha, h, scheme);
        let len = conv_len(n);
        let mut spec = vec![Complex64::default(); len / 2 + 1];
        padded_spectrum(&kernel.entries(n), len, &mut spec)?;
        Ok(Operator {
            kernel,
            n,
            len,
            spec,
        })
    }

    /// D^α f (f of the prepared length).
    pub fn apply(&self, f: &[f64]) -> Result<Vec<f64>> {
        if f.len() != self.n {
            return Err(Error::invalid(
                "input",
                format!(
                    "has {} samples, the operator was prepared for {}",
                    f.len(),
                    self.n
                ),
            ));
        }
        crate::error::ensure_finite("input", f)?;
        // The padded signal, its spectrum and the FFTs' scratch live in the threads' scratch
        // pools (`model::scratch`; tens of MB at N = 10⁶, where fresh allocations cost as much as
        // the transforms, in page faults); only the result (and for RL and L1 the input they
        // convolve) is allocated.
        let g = self.kernel.input(f);
        let mut out = vec![0.0; self.n];
        with_complex_scratch(self.spec.len(), |s| -> Result<()> {
            padded_spectrum(&g, self.len, s)?;
            for (a, b) in s.iter_mut().zip(&self.spec) {
                *a *= *b;
            }
            samples(s, self.len, &mut out)
        })?;
        self.kernel.finish(f, &mut out);
        Ok(out)
    }
}

/// From this length on, the one-shot [`fracdiff`] transforms the kernel and the signal on two
/// threads. Measured on 2 cores: two transforms of 2·10⁶ points take 13.5 ms on two threads
/// against 23.2 ms on one, but at 2·10⁵ points 2.4 ms against 2.0 ms (each core then reads
/// data the other wrote, and starting a thread costs tens of µs).
const PARALLEL_FROM: usize = 250_000;

/// The padded length of a linear convolution of n points (≥ 2n − 1).
fn conv_len(n: usize) -> usize {
    fast_len((2 * n).saturating_sub(1).max(2))
}

/// The first `out.len()` samples of the inverse transform of `spec` divided by `len` (the
/// circular convolution whose spectrum `spec` is); `spec` is overwritten.
fn samples(spec: &mut [Complex64], len: usize, out: &mut [f64]) -> Result<()> {
    // The DC and Nyquist bins of a real signal's spectrum are real; clear round-off.
    spec[0].im = 0.0;
    if len % 2 == 0 {
        let last = spec.len() - 1;
        spec[last].im = 0.0;
    }
    let ifft = plan_inverse(len);
    with_scratch(len, |buf| -> Result<()> {
        inv(ifft.as_ref(), spec, buf)?;
        let norm = 1.0 / len as f64;
        for (o, v) in out.iter_mut().zip(buf.iter()) {
            *o = v * norm;
        }
        Ok(())
    })
}

thread_local! {
    /// One planner per thread: plans (twiddle tables) are cached across calls.
    static PLANNER: std::cell::RefCell<RealFftPlanner<f64>> = std::cell::RefCell::new(RealFftPlanner::new());
}

fn inv(
    fft: &dyn realfft::ComplexToReal<f64>,
    input: &mut [Complex64],
    output: &mut [f64],
) -> Result<()> {
    with_complex_scratch(fft.get_scratch_len(), |sc| {
        fft.process_with_scratch(input, output, sc)
    })
    .map_err(|e| Error::invalid("fft", e.to_string()))
}

fn plan_forward(len: usize) -> Arc<dyn realfft::RealToComplex<f64>> {
    PLANNER.with(|p| p.borrow_mut().plan_fft_forward(len))
}

fn plan_inverse(len: usize) -> Arc<dyn realfft::ComplexToReal<f64>> {
    PLANNER.with(|p| p.borrow_mut().plan_fft_inverse(len))
}

/// Real FFT of `buf` (its first `n` entries written, the rest zeroed here) into `spec`, with
/// the caller's scratch (for a thread without scratch pools of its own).
fn pad_transform(
    fft: &dyn realfft::RealToComplex<f64>,
    buf: &mut [f64],
    n: usize,
    spec: &mut [Complex64],
    scratch: &mut [Complex64],
) -> Result<()> {
    buf[n..].fill(0.0);
    fft.process_with_scratch(buf, spec, scratch)
        .map_err(|e| Error::invalid("fft", e.to_string()))
}

/// Real FFT of `x` zero-padded to `len`, into `spec` (len/2 + 1 bins); the padded copy lives in
/// this thread's scratch pool.
fn padded_spectrum(x: &[f64], len: usize, spec: &mut [Complex64]) -> Result<()> {
    let fft = plan_forward(len);
    with_scratch(len, |buf| {
        buf[..x.len()].copy_from_slice(x);
        with_complex_scratch(fft.get_scratch_len(), |sc| {
            pad_transform(fft.as_ref(), buf, x.len(), spec, sc)
        })
    })
}

/// D^α f by FFT convolution, O(N log N) (see the module documentation). For long signals the
/// kernel's and the signal's transforms run on two threads; for many signals of one length
/// prefer [`Operator`].
///
/// ```
/// use neurodyn::fracdiff::{fracdiff, power_derivative, Scheme};
/// // D^0.5 t² on t ∈ [0, 1]: Caputo L1 is O(h^{1.5}) accurate against Γ(3)/Γ(2.5) t^1.5.
/// let h = 1e-3;
/// let f: Vec<f64> = (0..=1000).map(|k| (k as f64 * h).powi(2)).collect();
/// let d = fracdiff(&f, 0.5, h, Scheme::CaputoL1).unwrap();
/// assert!((d[1000] - power_derivative(2.0, 0.5, 1.0)).abs() < 1e-3);
/// ```
pub fn fracdiff(f: &[f64], alpha: f64, h: f64, scheme: Scheme) -> Result<Vec<f64>> {
    validate(f, alpha, h, scheme)?;
    let n = f.len();
    let len = conv_len(n);
    let kernel = Kernel::new(alpha, h, scheme);
    let g = kernel.input(f);
    let mut out = vec![0.0; n];
    // The kernel is written straight into its padded buffer; that buffer, the signal's, the
    // spectra and the transforms' scratch come from this thread's scratch pools (also for the
    // second thread's transform): a repeated call allocates only its result.
    let bins = len / 2 + 1;
    let fft = plan_forward(len);
    with_complex_scratch(2 * bins, |spectra| -> Result<()> {
        let (ks, gs) = spectra.split_at_mut(bins);
        with_scratch(len, |kbuf| {
            with_complex_scratch(fft.get_scratch_len(), |sc| {
                let mut kernel_side = || {
                    kernel.fill(&mut kbuf[..n]);
                    pad_transform(fft.as_ref(), kbuf, n, ks, sc)
                };
                if n >= PARALLEL_FROM {
                    std::thread::scope(|s| -> Result<()> {
                        let k = s.spawn(kernel_side);
                        padded_spectrum(&g, len, gs)?;
                        k.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                    })
                } else {
                    kernel_side()?;
                    padded_spectrum(&g, len, gs)
                }
            })
        })?;
        for (a, b) in gs.iter_mut().zip(ks.iter()) {
            *a *= *b;
        }
        samples(gs, len, &mut out)
    })?;
    kernel.finish(f, &mut out);
    Ok(out)
}

/// D^α f by the direct O(N²) sums (the reference the FFT path is tested against).
pub fn fracdiff_direct(f: &[f64], alpha: f64, h: f64, scheme: Scheme) -> Result<Vec<f64>> {
    validate(f, alpha, h, scheme)?;
    let k = Kernel::new(alpha, h, scheme);
    let kernel = k.entries(f.len());
    let g = k.input(f);
    let mut out: Vec<f64> = (0..f.len())
        .into_par_iter()
        .map(|i| {
            // Sum from the small (far-past) terms up, for accuracy.
            let mut s = 0.0;
            for j in (0..=i).rev() {
                s += kernel[j] * g[i - j];
            }
            s
        })
        .collect();
    k.finish(f, &mut out);
    Ok(out)
}

/// D^α of every column of a row-major `T × N` matrix (`data[t * n + i]`, one column per
/// neuron), in parallel over columns, sharing one prepared [`Operator`]. Returns the same layout.
pub fn fracdiff_columns(
    data: &[f64],
    t: usize,
    n: usize,
    alpha: f64,
    h: f64,
    scheme: Scheme,
) -> Result<Vec<f64>> {
    if data.len() != t * n || t == 0 || n == 0 {
        return Err(Error::invalid(
            "input",
            format!(
                "expected a non-empty {t}×{n} matrix, got {} values",
                data.len()
            ),
        ));
    }
    crate::error::ensure_finite("input", data)?;
    let op = Operator::new(alpha, h, t, scheme)?;
    let cols: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| op.apply(&(0..t).map(|k| data[k * n + i]).collect::<Vec<_>>()))
        .collect::<Result<_>>()?;
    let mut out = vec![0.0; t * n];
    for (i, c) in cols.iter().enumerate() {
        for k in 0..t {
            out[k * n + i] = c[k];
        }
    }
    Ok(out)
}

/// The seed paper's spectral `frac_diff` (the spectral method of Geadah et al. 2024): `y = IDFT(H ⊙ DFT(x))` with
/// `H_m = (i 2π f_m)^α` (principal branch), `H_0 = 0`, `f_m = fftfreq(N, d)`. Periodic, no base
/// point; exact for on-grid trigonometric signals. Negative α integrates. Returns (Re y, Im y).
pub fn spectral(x: &[f64], alpha: f64, d: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    if x.is_empty() {
        return Err(Error::invalid("input", "the signal is empty"));
    }
    crate::error::ensure_finite("input", x)?;
    if !alpha.is_finite() {
        return Err(Error::invalid("alpha", format!("{alpha} (must be finite)")));
    }
    if !(d > 0.0 && d.is_finite()) {
        return Err(Error::invalid("dt", format!("{d} (must be positive)")));
    }
    let n = x.len();
    let mut planner = rustfft::FftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut buf: Vec<Complex64> = x.iter().map(|&v| Complex64::new(v, 0.0)).collect();
    fwd.process(&mut buf);
    for (m, b) in buf.iter_mut().enumerate() {
        // numpy.fft.fftfreq: m/(N d) for m < ceil(N/2), else (m − N)/(N d).
        let f = if m < n.div_ceil(2) {
            m as f64
        } else {
            m as f64 - n as f64
        } / (n as f64 * d);
        let h = if m == 0 {
            Complex64::new(0.0, 0.0)
        } else {
            let w = 2.0 * std::f64::consts::PI * f;
            Complex64::from_polar(
                w.abs().powf(alpha),
                w.signum() * alpha * std::f64::consts::FRAC_PI_2,
            )
        };
        *b *= h / n as f64;
    }
    inv.process(&mut buf);
    Ok((
        buf.iter().map(|c| c.re).collect(),
        buf.iter().map(|c| c.im).collect(),
    ))
}

/// Result of [`estimate_order`].
#[derive(Debug, Clone)]
pub struct OrderEstimate {
    /// The order minimising the summed error.
    pub alpha: f64,
    /// The scanned orders and the summed error at each.
    pub alphas: Vec<f64>,
    pub errors: Vec<f64>,
}

/// The seed's fractional-order estimate (the spectral method of Geadah et al. 2024): for each candidate α,
/// `y = Re frac_diff(r, α) − y[anchor]` and the error `E(α) = Σ_signals mean_{t ∈ window} (y(t) − s(t))²`;
/// returns the minimising α (ties: the first, as numpy's argmin). `signals` and `targets` pair
/// responses r_ξ with targets s_ξ.
pub fn estimate_order(
    signals: &[Vec<f64>],
    targets: &[Vec<f64>],
    alphas: &[f64],
    d: f64,
    anchor: usize,
    window: std::ops::Range<usize>,
) -> Result<OrderEstimate> {
    if signals.is_empty() || signals.len() != targets.len() {
        return Err(Error::invalid(
            "targets",
            format!("{} signals but {} targets", signals.len(), targets.len()),
        ));
    }
    if alphas.is_empty() {
        return Err(Error::invalid("alpha", "no candidate orders"));
    }
    for (s, t) in signals.iter().zip(targets) {
        if s.len() != t.len() {
            return Err(Error::invalid(
                "target",
                format!("has length {}, the signal {}", t.len(), s.len()),
            ));
        }
        if anchor >= s.len() {
            return Err(Error::invalid(
                "anchor",
                format!("{anchor}: past the end of signals of length {}", s.len()),
            ));
        }
        if window.end > s.len() || window.is_empty() {
            return Err(Error::invalid(
                "window",
                format!(
                    "window {window:?} / anchor {anchor} do not fit signals of length {}",
                    s.len()
                ),
            ));
        }
    }
    let errors: Vec<f64> = alphas
        .par_iter()
        .map(|&a| -> Result<f64> {
            let mut e = 0.0;
            for (s, t) in signals.iter().zip(targets) {
                let (y, _) = spectral(s, a, d)?;
                let y0 = y[anchor];
                e += window
                    .clone()
                    .map(|k| (y[k] - y0 - t[k]).powi(2))
                    .sum::<f64>()
                    / window.len() as f64;
            }
            Ok(e)
        })
        .collect::<Result<_>>()?;
    let mut best = 0;
    for (i, e) in errors.iter().enumerate() {
        if *e < errors[best] {
            best = i;
        }
    }
    Ok(OrderEstimate {
        alpha: alphas[best],
        alphas: alphas.to_vec(),
        errors,
    })
}

/// `D^α t^p = Γ(p+1)/Γ(p+1−α) t^{p−α}` (exact; for tests and figures).
pub fn power_derivative(p: f64, alpha: f64, t: f64) -> f64 {
    gamma_fn(p + 1.0) / gamma_fn(p + 1.0 - alpha) * t.powf(p - alpha)
}

/// The spectral fractional integral of order α (the seed's `frac_int`): `y = IDFT(X / H)` with
/// the same `H_m = (i 2π f_m)^α` as [`spectral`] and the DC bin mapped to 0, so that
/// `spectral(frac_int(x, α), α)` returns x minus its mean. Returns (Re y, Im y).
pub fn spectral_integral(x: &[f64], alpha: f64, d: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    // 1/H_m = (i 2π f_m)^(−α) for m ≠ 0, and H_0 = 0 maps to 0 in both.
    spectral(x, -alpha, d)
}

/// Options of [`anru_orders`]: the seed's appendix protocol (Geadah et al. 2024; fracdiff.md
/// §C.4 steps 1–4 and 7).
#[derive(Debug, Clone)]
pub struct AnruOrderOptions {
    pub trials: usize,
    /// Step amplitudes ξ added to every pre-activation while the step is on.
    pub xis: Vec<f64>,
    /// Steps per trial T.
    pub steps: usize,
    /// The step is on for `on.0 < t < on.1`.
    pub on: (usize, usize),
    /// Per-neuron input x_i ~ N(mean, sd²) plus ε_i ~ N(0, noise²), constant in a trial.
    pub input_mean: f64,
    pub input_sd: f64,
    pub noise_sd: f64,
    /// W_hh ← diag(W_hh) (the "isolated" setting).
    pub isolated: bool,
    /// Candidate orders for the mean response and per neuron.
    pub mean_alphas: Vec<f64>,
    pub neuron_alphas: Vec<f64>,
    pub window: std::ops::Range<usize>,
    pub anchor: usize,
    pub seed: u64,
}

impl Default for AnruOrderOptions {
    fn default() -> Self {
        let lin = |a: f64, b: f64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|k| a + (b - a) * k as f64 / (n - 1) as f64)
                .collect()
        };
        AnruOrderOptions {
            trials: 20,
            xis: vec![0.0, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0],
            steps: 150,
            on: (50, 101),
            input_mean: 0.8,
            input_sd: 0.1,
            noise_sd: 0.1,
            isolated: false,
            mean_alphas: lin(0.0, 1.0, 1001),
            neuron_alphas: lin(-1.0, 1.0, 100),
            window: 40..110,
            anchor: 25,
            seed: 0,
        }
    }
}

/// What [`anru_orders`] finds.
#[derive(Debug, Clone)]
pub struct AnruOrders {
    /// α* of the mean response (summed error over ξ ≠ 0), with the error curve.
    pub mean: OrderEstimate,
    /// Per neuron, α* of its trial-averaged response to the largest ξ.
    pub neuron_alpha: Vec<f64>,
    /// Per ξ, the mean response r_ξ(t) over trials and neurons.
    pub responses: Vec<Vec<f64>>,
    /// Per ξ, the target s_ξ(t) = input_mean + ξ·1[|t − c| < w], c = ⌊(on.0 + on.1)/2⌋,
    /// w = ⌊(on.1 − on.0)/2⌋ (the seed's |t − 75| < 25 for the default drive).
    pub targets: Vec<Vec<f64>>,
}

/// The fractional-order analysis of an ANRU network (Geadah et al. 2024): each neuron gets
/// its own scalar input u_i x_i (U_xh ← diag: `u` holds the per-neuron input weights), the
/// network (optionally isolated) is run from h = 0, g = 0 for `trials` seeded trials per ξ with
/// ξ added to every pre-activation for on.0 < t < on.1, and the spectral order estimate is fitted
/// to the mean response (orders `mean_alphas`, ξ ≠ 0 summed) and to each neuron's trial-averaged
/// response to the largest ξ (orders `neuron_alphas`). Trials run in parallel; the same seed gives
/// the same bits on any thread count.
pub fn anru_orders(
    net: &crate::model::Anru,
    u: &[f64],
    opts: &AnruOrderOptions,
) -> Result<AnruOrders> {
    use crate::model::Map;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let n = net.n();
    if u.len() != n {
        return Err(Error::invalid(
            "input",
            format!("{} input weights for {n} neurons", u.len()),
        ));
    }
    if opts.trials == 0 || opts.xis.is_empty() || opts.steps < 2 {
        return Err(Error::invalid(
            "trials",
            "need at least one trial, one ξ and two steps",
        ));
    }
    if !(opts.input_sd >= 0.0 && opts.noise_sd >= 0.0) {
        return Err(Error::invalid("input", "standard deviations must be ≥ 0"));
    }
    crate::memory::check(
        "trials",
        (opts.xis.len() * opts.steps * n * 8 * 3) as u128,
        None,
    )?;
    let mut base = net.clone();
    if opts.isolated {
        base.w_hh = faer::Mat::from_fn(n, n, |i, j| if i == j { net.w_hh[(i, j)] } else { 0.0 });
    }
    let t_len = opts.steps;
    // Per ξ: Σ over trials of h_i(t), laid out [t][i].
    let per_xi: Vec<Vec<f64>> = opts
        .xis
        .iter()
        .map(|&xi| -> Result<Vec<f64>> {
            let sums: Vec<Vec<f64>> = (0..opts.trials)
                .into_par_iter()
                .map(|trial| -> Result<Vec<f64>> {
                    // The trial's inputs depend on the trial only (the same for every ξ).
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(crate::seed::trial_seed(
                        opts.seed, trial, 0, 7,
                    ));
                    let nx = Normal::new(opts.input_mean, opts.input_sd)
                        .map_err(|e| Error::invalid("input", e.to_string()))?;
                    let ne = Normal::new(0.0, opts.noise_sd)
                        .map_err(|e| Error::invalid("input", e.to_string()))?;
                    let x: Vec<f64> = (0..n)
                        .map(|_| nx.sample(&mut rng) + ne.sample(&mut rng))
                        .collect();
                    let mut m = base.clone();
                    m.drive_seq = Some(faer::Mat::from_fn(n, t_len, |i, t| {
                        let step = if t > opts.on.0 && t < opts.on.1 {
                            xi
                        } else {
                            0.0
                        };
                        u[i] * x[i] + net.bias[i] + step
                    }));
                    let mut s = vec![0.0; m.dim()];
                    let mut out = Vec::with_capacity(t_len * n);
                    for t in 0..t_len {
                        m.step(t, &mut s);
                        out.extend_from_slice(&s[..n]);
                    }
                    if out.iter().any(|v| !v.is_finite()) {
                        return Err(Error::failed(
                            "simulate",
                            format!("trial {trial} at ξ = {xi} became non-finite"),
                        ));
                    }
                    Ok(out)
                })
                .collect::<Result<_>>()?;
            let mut acc = vec![0.0; t_len * n];
            for s in &sums {
                for (a, v) in acc.iter_mut().zip(s) {
                    *a += v;
                }
            }
            Ok(acc)
        })
        .collect::<Result<_>>()?;
    let trials = opts.trials as f64;
    // The seed's target window |t − 75| < 25 for the drive 50 < t < 101 (one step shorter).
    let mid = ((opts.on.0 + opts.on.1) / 2) as f64;
    let half = ((opts.on.1 - opts.on.0) / 2) as f64;
    let target = |xi: f64| -> Vec<f64> {
        (0..t_len)
            .map(|t| {
                opts.input_mean
                    + if ((t as f64) - mid).abs() < half {
                        xi
                    } else {
                        0.0
                    }
            })
            .collect()
    };
    let responses: Vec<Vec<f64>> = per_xi
        .iter()
        .map(|acc| {
            (0..t_len)
                .map(|t| acc[t * n..(t + 1) * n].iter().sum::<f64>() / (trials * n as f64))
                .collect()
        })
        .collect();
    let targets: Vec<Vec<f64>> = opts.xis.iter().map(|&x| target(x)).collect();
    let (sig, tgt): (Vec<Vec<f64>>, Vec<Vec<f64>>) = responses
        .iter()
        .zip(&targets)
        .zip(&opts.xis)
        .filter(|(_, &x)| x != 0.0)
        .map(|((r, t), _)| (r.clone(), t.clone()))
        .unzip();
    if sig.is_empty() {
        return Err(Error::invalid("xis", "need at least one ξ ≠ 0"));
    }
    let mean = estimate_order(
        &sig,
        &tgt,
        &opts.mean_alphas,
        1.0,
        opts.anchor,
        opts.window.clone(),
    )?;
    let (kmax, &ximax) = opts
        .xis
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("non-empty");
    let tmax = target(ximax);
    let neuron_alpha = (0..n)
        .into_par_iter()
        .map(|i| -> Result<f64> {
            let r: Vec<f64> = (0..t_len)
                .map(|t| per_xi[kmax][t * n + i] / trials)
                .collect();
            Ok(estimate_order(
                &[r],
                &[tmax.clone()],
                &opts.neuron_alphas,
                1.0,
                opts.anchor,
                opts.window.clone(),
            )?
            .alpha)
        })
        .collect::<Result<_>>()?;
    Ok(AnruOrders {
        mean,
        neuron_alpha,
        responses,
        targets,
    })
}

/// `D^α` of every column of `data` (row-major `t × n`) by `method`: `gl`, `rl`, `l1` (see
/// [`Scheme`]), `spectral` or `spectral-int` (the seed's periodic Fourier operators, real part).
pub fn differentiate(
    method: &str,
    data: &[f64],
    (t, n): (usize, usize),
    alpha: f64,
    dt: f64,
) -> Result<Vec<f64>> {
    if method != "spectral" && method != "spectral-int" {
        return fracdiff_columns(data, t, n, alpha, dt, method.parse()?);
    }
    let mut d = vec![0.0; t * n];
    for i in 0..n {
        let col: Vec<f64> = (0..t).map(|k| data[k * n + i]).collect();
        let (re, _) = if method == "spectral" {
            spectral(&col, alpha, dt)?
        } else {
            spectral_integral(&col, alpha, dt)?
        };
        for k in 0..t {
            d[k * n + i] = re[k];
        }
    }
    Ok(d)
}

/// `start:end` (samples, end exclusive, start < end) of the `--estimate` error window.
pub fn parse_window(s: &str) -> Result<std::ops::Range<usize>> {
    let bad = || {
        Error::invalid(
            "window",
            format!("`{s}`: expected start:end with start < end"),
        )
    };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b): (usize, usize) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a >= b {
        return Err(bad());
    }
    Ok(a..b)
}

/// [`estimate_order`] for each signal (column) of `signals` against its target (`targets`:
/// one column used for every signal, or one per signal): a table `signal`, `alpha`, `error`.
pub fn estimate_orders(
    signals: &crate::io::Signals,
    targets: &crate::io::Signals,
    alphas: &[f64],
    dt: f64,
    anchor: usize,
    window: std::ops::Range<usize>,
) -> Result<crate::io::Table> {
    use crate::io::{Column, Table};
    if targets.t != signals.t || !(targets.n == 1 || targets.n == signals.n) {
        return Err(Error::invalid(
            "target",
            format!(
                "is {}×{}, the input is {}×{} (need the same length, one column or one per signal)",
                targets.t, targets.n, signals.t, signals.n
            ),
        ));
    }
    let (mut best, mut err) = (vec![], vec![]);
    for i in 0..signals.n {
        let s = signals.column(i);
        let t = targets.column(if targets.n == 1 { 0 } else { i });
        let e = estimate_order(&[s], &[t], alphas, dt, anchor, window.clone())?;
        let k = e.alphas.iter().position(|&a| a == e.alpha).unwrap_or(0);
        best.push(e.alpha);
        err.push(e.errors[k]);
    }
    let mut table = Table::new();
    table
        .push("signal", Column::Str(signals.names.clone()))
        .push("alpha", Column::F64(best))
        .push("error", Column::F64(err));
    Ok(table)
}

impl AnruOrders {
    /// The per-neuron orders (`neuron`, `alpha`), the mean response's error curve (`alpha`,
    /// `error`) and the mean responses per ξ (`t`, `r_xi…`).
    pub fn tables(&self, opts: &AnruOrderOptions) -> [crate::io::Table; 3] {
        use crate::io::{Column, Table};
        let mut per = Table::new();
        per.push(
            "neuron",
            Column::I64((0..self.neuron_alpha.len() as i64).collect()),
        )
        .push("alpha", Column::F64(self.neuron_alpha.clone()));
        let mut mean = Table::new();
        mean.push("alpha", Column::F64(self.mean.alphas.clone()))
            .push("error", Column::F64(self.mean.errors.clone()));
        let mut resp = Table::new();
        resp.push("t", Column::I64((0..opts.steps as i64).collect()));
        for (x, r) in opts.xis.iter().zip(&self.responses) {
            resp.push(format!("r_xi{x}"), Column::F64(r.clone()));
        }
        [per, mean, resp]
    }

    /// The histogram of the per-neuron orders over [−1, 1] in 20 bins.
    pub fn histogram(&self, opts: &AnruOrderOptions, isolated: bool) -> crate::plot::LinePlot {
        crate::plot::LinePlot::new(
            format!(
                "per-neuron fractional order ({} network, ξ = {}; mean response α* = {:.3})",
                if isolated { "isolated" } else { "interacting" },
                opts.xis.iter().cloned().fold(0.0, f64::max),
                self.mean.alpha
            ),
            "α (> 0: differentiation / adaptation, < 0: integration)",
            "neurons",
        )
        .series(
            "neurons per bin",
            crate::plot::histogram_steps(&self.neuron_alpha, -1.0, 1.0, 20),
        )
    }
}
