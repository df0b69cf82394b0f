//! A CordsNet and its input, named the way a user names them: an architecture preset, trained or
//! seeded random weights, and an image (a `.npy` array, a test image of the bundled MNIST slice,
//! or blank). One resolver for the `cordsnet` subcommands and for [`Source::CordsNet`]
//! (`simulate`, `fixed-points`, `lyapunov`).
//!
//! [`Source::CordsNet`]: crate::source::Source::CordsNet

use super::{Arch, CordsNet};
use crate::data::{Dataset, Digits};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Which network, with which input (also the command-line arguments that name them).
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct NetSpec {
    /// Architecture preset: r8 (ImageNet), mini (the spec's X11 wiring test), mnist (depth 4),
    /// mnist-wide; ignored for a `cordsnet train` checkpoint, which records its own.
    #[arg(long, default_value = "mnist")]
    pub arch: String,
    /// Weights: a `cordsnet train` checkpoint, or safetensors with the original's state-dict
    /// names (weight-normed g/V pairs or effective tensors) for --arch; without it, seeded
    /// random weights (--seed).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Gain of the random recurrent kernels.
    #[arg(long, default_value_t = 0.5)]
    pub gain: f64,
    /// The image: .npy [C, S, S] or [S, S] (already normalised).
    #[arg(long, conflicts_with = "mnist")]
    pub image: Option<PathBuf>,
    /// The image: test image K of the bundled MNIST slice (28 × 28, normalised with MNIST's
    /// mean and deviation).
    #[arg(long)]
    pub mnist: Option<usize>,
}

impl Default for NetSpec {
    fn default() -> Self {
        NetSpec {
            arch: "mnist".into(),
            weights: None,
            seed: 1,
            gain: 0.5,
            image: None,
            mnist: None,
        }
    }
}

/// Pixels `0..=255` of one image normalised as the network was trained: `(p/255 − mean)/std`.
pub fn normalise(pixels: &[u8], dataset: Dataset) -> Vec<f64> {
    let (m, s) = dataset.mean_std();
    pixels.iter().map(|&p| (p as f64 / 255.0 - m) / s).collect()
}

impl NetSpec {
    /// The network and the image (`C·S·S` values) it is driven by.
    pub fn build(&self) -> Result<(CordsNet, Vec<f64>)> {
        if self.image.is_some() && self.mnist.is_some() {
            return Err(Error::invalid("image", "give --image or --mnist, not both"));
        }
        if !(self.gain.is_finite() && self.gain >= 0.0) {
            return Err(Error::invalid(
                "gain",
                format!("{}: must be finite and non-negative", self.gain),
            ));
        }
        let net = match &self.weights {
            Some(p) => {
                let weights = |e: Error| e.in_field("weights");
                if crate::tensor::safetensors::read_metadata(p)
                    .map_err(weights)?
                    .contains_key("arch")
                {
                    CordsNet::load_checkpoint(p).map_err(weights)?
                } else {
                    CordsNet::load(p, Arch::preset(&self.arch)?).map_err(weights)?
                }
            }
            None => CordsNet::random(Arch::preset(&self.arch)?, self.seed, self.gain)?,
        };
        let a = &net.arch;
        let n = a.img_channels * a.img_size * a.img_size;
        let img = match (&self.image, self.mnist) {
            (Some(p), _) => {
                let v: ndarray::ArrayD<f64> = crate::io::read_float(p, "image")?;
                let (c, s) = (a.img_channels, a.img_size);
                let fits = match v.shape() {
                    [h, w] => c == 1 && (*h, *w) == (s, s),
                    [k, h, w] => (*k, *h, *w) == (c, s, s),
                    _ => false,
                };
                if !fits {
                    return Err(Error::invalid(
                        "image",
                        format!(
                            "{}: shape {:?}; this network takes [{c}, {s}, {s}]{}",
                            p.display(),
                            v.shape(),
                            if c == 1 {
                                format!(" or [{s}, {s}]")
                            } else {
                                String::new()
                            }
                        ),
                    ));
                }
                if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                    return Err(Error::invalid(
                        "image",
                        format!("{}: value {i} is {x} (must be finite)", p.display()),
                    ));
                }
                v.iter().copied().collect::<Vec<f64>>()
            }
            (None, Some(k)) => {
                if (a.img_channels, a.img_size) != (1, 28) {
                    return Err(Error::invalid(
                        "mnist",
                        format!(
                            "MNIST images are 1×28×28; this network takes {}×{}×{}",
                            a.img_channels, a.img_size, a.img_size
                        ),
                    ));
                }
                let d = Digits::bundled(false)?;
                if k >= d.len() {
                    return Err(Error::invalid(
                        "mnist",
                        format!("{k}: the bundled test slice has {} images", d.len()),
                    ));
                }
                normalise(&d.images[k * 784..(k + 1) * 784], Dataset::Mnist)
            }
            (None, None) => vec![0.0; n],
        };
        if img.len() != n {
            return Err(Error::invalid(
                "image",
                format!("has {} values; the network takes {n}", img.len()),
            ));
        }
        Ok((net, img))
    }
}
