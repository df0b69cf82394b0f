//! Softmax cross-entropy over a batch of logits (mean over the batch, as PyTorch's
//! `cross_entropy`): L = −(1/B) Σ_b log softmax(o_b)_{y_b}, ∂L/∂o_b = (softmax(o_b) − e_{y_b})/B.

use super::Real;
use crate::error::{Error, Result};

/// The mean loss and the number of correct arg-max predictions of `logits` (`b × classes`,
/// row-major) against `labels`; writes ∂L/∂logits into `dlogits` when given.
pub fn softmax_cross_entropy<F: Real>(
    logits: &[F],
    labels: &[u8],
    classes: usize,
    dlogits: Option<&mut [F]>,
) -> Result<(f64, usize)> {
    let b = labels.len();
    if logits.len() < b * classes {
        return Err(Error::invalid(
            "logits",
            "fewer logits than labels × classes",
        ));
    }
    if let Some(&l) = labels.iter().find(|&&l| l as usize >= classes) {
        return Err(Error::invalid(
            "labels",
            format!("label {l} with {classes} classes"),
        ));
    }
    let mut loss = 0.0;
    let mut correct = 0;
    let mut dl = dlogits;
    for (s, &label) in labels.iter().enumerate() {
        let row = &logits[s * classes..(s + 1) * classes];
        let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
        for (k, v) in row.iter().enumerate() {
            if v.f() > best {
                best = v.f();
                arg = k;
            }
        }
        correct += usize::from(arg == label as usize);
        let lse = best + row.iter().map(|v| (v.f() - best).exp()).sum::<f64>().ln();
        loss += lse - row[label as usize].f();
        if let Some(d) = dl.as_deref_mut() {
            for k in 0..classes {
                let pk = (row[k].f() - lse).exp();
                let t = if k == label as usize { 1.0 } else { 0.0 };
                d[s * classes + k] = F::c((pk - t) / b as f64);
            }
        }
    }
    Ok((loss / b.max(1) as f64, correct))
}
