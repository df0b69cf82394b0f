//! Data sets, below every trainer: the IDX archives of MNIST and Fashion-MNIST (gzip or raw; the
//! bundled slices), the sequential and permuted digits and their perturbations ([`digits`]), image
//! sets normalised for the feed-forward and convolutional networks ([`images`]), the user's own
//! task arrays ([`custom`]) and the minibatch of sequences they all produce ([`Batch`]).

pub mod batch;
pub mod custom;
pub mod digits;
pub mod images;

pub use batch::{Batch, Targets};
pub use digits::{
    parse_idx, permutation, read_idx, seed_permutation, validation_split, Digits, NumpyRandomState,
    Perturbation,
};
pub use images::{Batches, Dataset, ImageSet};
