//! What an undetermined trial is. The sweep's criteria (Morone, Rawat, Heeger & Martiniani 2025)
//! leave a trial undetermined when, after `max_chunks`, it is neither stationary, nor diverging,
//! nor periodic by the original test — which accepts only a ‖y‖ signal with one maximum and one
//! minimum per period. [`diagnose`] continues such a trial, polishes the fixed point nearest its
//! final state by Newton's method, takes that point's spectrum, and looks for a cycle with up to
//! `max_extrema` maxima per period, to say which of a slow approach, a limit cycle around an
//! unstable point, or a divergence it is.

use super::trial::*;
use crate::error::Result;
use crate::fixed_points::{newton, NewtonOptions};
use crate::integrate::{Euler, FixedStepper};
use faer::c64;

/// A periodic orbit found in a ‖y‖ signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    /// Period in Euler steps (mean over the periods seen) and in seconds.
    pub period_steps: f64,
    pub period: f64,
    /// Maxima of ‖y‖ per period (1 is what the sweep's periodic test accepts).
    pub maxima_per_period: usize,
    /// Largest relative difference between maxima one period apart.
    pub mismatch: f64,
    /// Relative standard deviation of the periods.
    pub period_spread: f64,
}

/// The verdict of [`diagnose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It reached a fixed point when continued (the original criteria, more chunks).
    SlowApproach,
    /// A periodic orbit (found by the original test when continued, or with several maxima per
    /// period).
    LimitCycle,
    /// It diverged when continued.
    Diverging,
    /// None of these within the extra chunks (quasi-periodic, chaotic, or slower still).
    Unresolved,
}

/// What [`diagnose`] found.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub verdict: Verdict,
    /// The original criteria's class after the extra chunks, and the chunks that took.
    pub continued: Condition,
    pub extra_chunks: usize,
    /// The state at the end of the continuation.
    pub final_state: Vec<f64>,
    /// Newton's method from the final state: the fixed point, ‖f‖∞ there, and the Jacobian's
    /// eigenvalues (1/s), largest real part first. `None` when Newton did not converge.
    pub fixed_point: Option<(Vec<f64>, f64, Vec<c64>)>,
    /// The cycle seen in one more chunk, if any.
    pub cycle: Option<Cycle>,
}

/// Looks for a periodic orbit in `s` (one value per Euler step of length `h`) with m = 1 …
/// `max_extrema` maxima per period: the maxima m apart are equally spaced (relative spread of the
/// spacings < 1e-2) and equally high (relative difference ≤ 1e-2), over at least three periods.
/// The smallest such m wins.
pub fn find_cycle(s: &[f64], h: f64, max_extrema: usize) -> Option<Cycle> {
    let peaks = find_peaks(s);
    for m in 1..=max_extrema.max(1) {
        if peaks.len() < 3 * m + 1 {
            break;
        }
        let periods: Vec<f64> = (0..peaks.len() - m)
            .map(|k| (peaks[k + m] - peaks[k]) as f64)
            .collect();
        let mean = periods.iter().sum::<f64>() / periods.len() as f64;
        let sd =
            (periods.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / periods.len() as f64).sqrt();
        let mismatch = (0..peaks.len() - m)
            .map(|k| (s[peaks[k + m]] - s[peaks[k]]).abs() / s[peaks[k]].abs().max(1e-300))
            .fold(0.0, f64::max);
        if sd / mean < 1e-2 && mismatch <= 1e-2 {
            return Some(Cycle {
                period_steps: mean,
                period: mean * h,
                maxima_per_period: m,
                mismatch,
                period_spread: sd / mean,
            });
        }
    }
    None
}

/// Continues trial `setup` from `x` (usually the state where the sweep left it) for up to
/// `extra_chunks` chunks under the original criteria; if still undetermined, simulates one more
/// chunk and looks for a cycle with up to 4 maxima per period ([`find_cycle`]). Newton's method
/// from the final state gives the nearby fixed point and its spectrum in every case.
pub fn diagnose(setup: &TrialSetup, x: &[f64], extra_chunks: usize) -> Result<Diagnosis> {
    let model = &setup.model;
    let n = setup.y0.len();
    let (continued, chunks, xf) = simulate_trial(model, x, extra_chunks);
    let mut cycle = None;
    if continued == Condition::Undetermined || continued == Condition::Periodic {
        let (h, points) = chunk_grid(model);
        let mut xs = xf.clone();
        let mut euler = Euler::new(xs.len());
        let mut s = Vec::with_capacity(2 * points);
        for _ in 0..2 * points {
            euler.step(model, 0.0, &mut xs, h);
            s.push(xs[..n].iter().map(|v| v * v).sum::<f64>().sqrt());
        }
        cycle = find_cycle(&s, h, 4);
    }
    let verdict = match continued {
        Condition::FixedPoint => Verdict::SlowApproach,
        Condition::Diverging => Verdict::Diverging,
        Condition::Periodic => Verdict::LimitCycle,
        Condition::Undetermined if cycle.is_some() => Verdict::LimitCycle,
        Condition::Undetermined => Verdict::Unresolved,
    };
    let fixed_point = if xf.iter().all(|v| v.is_finite()) {
        match newton(model, &xf, &NewtonOptions::default()) {
            Ok(r) if r.converged => {
                let st = crate::stability::analyze(model, &r.x)?;
                Some((r.x, r.residual, st.eigenvalues))
            }
            _ => None,
        }
    } else {
        None
    };
    Ok(Diagnosis {
        verdict,
        continued,
        extra_chunks: chunks,
        final_state: xf,
        fixed_point,
        cycle,
    })
}
