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
    /// Pixels scaled to [0, 1] then standardised with the dataset's mean and deviation.
    pub fn new(d: &Digits, dataset: Dataset, limit: Option<usize>) -> Self {
        let n = limit.unwrap_or(d.len()).min(d.len());
        let (m, s) = dataset.mean_std();
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
