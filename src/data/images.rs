//! The image sets (MNIST, Fashion-MNIST) as the feed-forward and convolutional trainers take
//! them: pixels scaled to [0, 1] and standardised with the set's mean and deviation.

use super::digits::Digits;
use crate::error::Result;
use crate::tensor::Shape;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The image sets (28 × 28 grey levels, 10 classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Mnist,
    FashionMnist,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }
    /// Mean and standard deviation of the training pixels in [0, 1] (torchvision's usual
    /// normalisation constants).
    pub fn mean_std(self) -> (f64, f64) {
        match self {
            Dataset::Mnist => (0.1307, 0.3081),
            Dataset::FashionMnist => (0.2860, 0.3530),
        }
    }
    /// The training or test split: the four IDX files in `dir`, or the bundled slice.
    pub fn load(self, dir: Option<&Path>, train: bool) -> Result<Digits> {
        match (dir, self) {
            (Some(d), _) => Digits::load_dir(d, train),
            (None, Dataset::Mnist) => Digits::bundled(train),
            (None, Dataset::FashionMnist) => Digits::bundled_fashion(train),
        }
    }
}

/// Images as normalised float rows and their labels.
pub struct ImageSet {
    pub x: Vec<f32>,
    pub labels: Vec<u8>,
    pub shape: Shape,
}

impl ImageSet {
    /// Pixels scaled to [0, 1] then standardised, (v − m)/s, with `(m, s)` (the dataset's
    /// [`Dataset::mean_std`], or (0, 1) for raw grey levels).
    pub fn new(d: &Digits, (m, s): (f64, f64), limit: Option<usize>) -> Self {
        let n = limit.unwrap_or(d.len()).min(d.len());
        let px = d.pixels();
        ImageSet {
            x: d.images[..n * px]
                .iter()
                .map(|&v| ((v as f64 / 255.0 - m) / s) as f32)
                .collect(),
            labels: d.labels[..n].to_vec(),
            shape: Shape::new(1, d.rows, d.cols),
        }
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The order of `n` examples in epoch `epoch` of a run seeded `seed` (a seeded shuffle per epoch,
/// the same on any thread count and after a resume).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
        crate::seed::trial_seed(seed, epoch, 0, 1),
    ));
    order
}

/// Minibatches of an image set: the seeded order of each epoch ([`epoch_order`]) and the
/// examples of step k gathered into buffers reused from step to step.
#[derive(Debug, Clone)]
pub struct Batches {
    batch: usize,
    order: Vec<usize>,
    x: Vec<f32>,
    labels: Vec<u8>,
}

impl Batches {
    /// Batches of `batch` examples of `dim` values each.
    pub fn new(batch: usize, dim: usize) -> Self {
        Batches {
            batch,
            order: vec![],
            x: vec![0.0; batch * dim],
            labels: vec![0; batch],
        }
    }

    /// Minibatches per epoch over `n` examples (the last one may be short).
    pub fn steps(&self, n: usize) -> usize {
        n.div_ceil(self.batch)
    }

    /// The order of epoch `epoch` over `n` examples, for a run seeded `seed`.
    pub fn shuffle(&mut self, n: usize, seed: u64, epoch: usize) {
        self.order = epoch_order(n, seed, epoch);
    }

    /// The images and labels of minibatch `step` of the current order.
    pub fn gather(&mut self, set: &ImageSet, step: usize) -> (&[f32], &[u8]) {
        let d = set.shape.len();
        let lo = (step * self.batch).min(self.order.len());
        let idx = &self.order[lo..(lo + self.batch).min(self.order.len())];
        for (k, &i) in idx.iter().enumerate() {
            self.x[k * d..(k + 1) * d].copy_from_slice(&set.x[i * d..(i + 1) * d]);
            self.labels[k] = set.labels[i];
        }
        (&self.x[..idx.len() * d], &self.labels[..idx.len()])
    }
}
