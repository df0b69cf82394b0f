//! Digits data: an IDX (MNIST format) reader, gzip or raw, and the sequential / permuted-sequential
//! digits tasks (one pixel per step, pixels scaled to `[0, 1]` as torchvision's ToTensor does).
//!
//! The repository carries a small slice of MNIST in `models/mnist-slice/` (the first 2000 training
//! and 500 test images; MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0) so that the
//! tests and the embedded default run with nothing downloaded; `--data DIR` points `train` at the
//! full set (the four standard files, `.gz` or not).

use super::batch::{Batch, Targets};
use crate::error::{Error, Result};
use crate::tensor::Real;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Images (row-major bytes) and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    pub rows: usize,
    pub cols: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

/// The bytes of `raw`, gunzipped when they are gzip (`name` labels errors).
fn decode(raw: &[u8], name: &str) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|e| Error::invalid("data", format!("{name}: corrupt gzip ({e})")))?;
        Ok(out)
    } else {
        Ok(raw.to_vec())
    }
}

/// Reads an IDX file of unsigned bytes (magic 0x0000080D: D dimensions); returns (dims, data).
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path)
        .map_err(|e| Error::invalid("data", format!("cannot read {}: {e}", path.display())))?;
    parse_idx(&raw, &path.display().to_string())
}

/// Parses IDX bytes (gzipped or not); `name` labels errors.
pub fn parse_idx(raw: &[u8], name: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    let b = decode(raw, name)?;
    let bad = |what: &str| Error::invalid("data", format!("{name}: {what}"));
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(bad("not an IDX file (bad magic number)"));
    }
    if b[2] != 0x08 {
        return Err(bad(
            "only unsigned-byte IDX files (type 0x08) are supported",
        ));
    }
    let nd = b[3] as usize;
    if nd == 0 || b.len() < 4 + 4 * nd {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|k| {
            u32::from_be_bytes([b[4 + 4 * k], b[5 + 4 * k], b[6 + 4 * k], b[7 + 4 * k]]) as usize
        })
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let head = 4 + 4 * nd;
    match count {
        Some(c) if b.len() == head + c => Ok((dims, b[head..].to_vec())),
        _ => Err(bad(&format!(
            "header says {dims:?} but the file holds {} data bytes",
            b.len() - head
        ))),
    }
}

/// The bundled slice, compiled into the library so that installed binaries need no files.
const SLICE: [(&str, &[u8]); 4] = [
    (
        "train-images",
        include_bytes!("../../models/mnist-slice/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels",
        include_bytes!("../../models/mnist-slice/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images",
        include_bytes!("../../models/mnist-slice/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels",
        include_bytes!("../../models/mnist-slice/t10k-labels-idx1-ubyte.gz"),
    ),
];

/// The bundled Fashion-MNIST slice (`models/fashion-mnist-slice`: 1000 training, 500 test images;
/// Xiao, Rasul & Vollgraf 2017, MIT license).
const FASHION_SLICE: [(&str, &[u8]); 4] = [
    (
        "train-images",
        include_bytes!("../../models/fashion-mnist-slice/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels",
        include_bytes!("../../models/fashion-mnist-slice/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images",
        include_bytes!("../../models/fashion-mnist-slice/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels",
        include_bytes!("../../models/fashion-mnist-slice/t10k-labels-idx1-ubyte.gz"),
    ),
];

impl Digits {
    /// The bundled Fashion-MNIST slice (training or test split), compiled in.
    pub fn bundled_fashion(train: bool) -> Result<Self> {
        let (im, lb) = if train {
            (FASHION_SLICE[0], FASHION_SLICE[1])
        } else {
            (FASHION_SLICE[2], FASHION_SLICE[3])
        };
        Self::from_idx(
            parse_idx(im.1, im.0)?,
            parse_idx(lb.1, lb.0)?,
            "bundled Fashion-MNIST slice",
        )
    }

    /// Images and labels from a pair of IDX files.
    pub fn load(images: &Path, labels: &Path) -> Result<Self> {
        let name = format!("{} and {}", images.display(), labels.display());
        Self::from_idx(read_idx(images)?, read_idx(labels)?, &name)
    }

    fn from_idx(
        (di, im): (Vec<usize>, Vec<u8>),
        (dl, lb): (Vec<usize>, Vec<u8>),
        name: &str,
    ) -> Result<Self> {
        if di.len() != 3 || dl.len() != 1 || di[0] != dl[0] {
            return Err(Error::invalid(
                "data",
                format!("{name}: need images [K, rows, cols] and K labels, got {di:?} and {dl:?}"),
            ));
        }
        if lb.iter().any(|&l| l > 9) {
            return Err(Error::invalid("data", "labels must be digits 0..9"));
        }
        Ok(Digits {
            rows: di[1],
            cols: di[2],
            images: im,
            labels: lb,
        })
    }

    /// The training or test split in `dir` (`train-images-idx3-ubyte[.gz]` etc.).
    pub fn load_dir(dir: &Path, train: bool) -> Result<Self> {
        let stem = if train { "train" } else { "t10k" };
        let find = |kind: &str| -> Result<PathBuf> {
            for ext in ["", ".gz"] {
                let p = dir.join(format!("{stem}-{kind}{ext}"));
                if p.exists() {
                    return Ok(p);
                }
            }
            Err(Error::invalid(
                "data",
                format!("{}: no {stem}-{kind}[.gz]", dir.display()),
            ))
        };
        Self::load(&find("images-idx3-ubyte")?, &find("labels-idx1-ubyte")?)
    }

    /// The slice shipped with the repository (`models/mnist-slice`), compiled in.
    pub fn bundled(train: bool) -> Result<Self> {
        let (im, lb) = if train {
            (SLICE[0], SLICE[1])
        } else {
            (SLICE[2], SLICE[3])
        };
        Self::from_idx(
            parse_idx(im.1, im.0)?,
            parse_idx(lb.1, lb.0)?,
            "bundled MNIST slice",
        )
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Pixels per image (= steps of the sequential task).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// Average-pools by `f` × `f` (28 × 28 → 7 × 7 for f = 4: 49 steps instead of 784), rounding.
    pub fn pooled(&self, f: usize) -> Result<Self> {
        if f == 0 || self.rows % f != 0 || self.cols % f != 0 {
            return Err(Error::invalid(
                "pool",
                format!("{f} does not divide the {}×{} images", self.rows, self.cols),
            ));
        }
        let (r, c) = (self.rows / f, self.cols / f);
        let mut images = Vec::with_capacity(self.len() * r * c);
        for k in 0..self.len() {
            let img = &self.images[k * self.pixels()..(k + 1) * self.pixels()];
            for i in 0..r {
                for j in 0..c {
                    let mut s = 0u32;
                    for a in 0..f {
                        for b in 0..f {
                            s += img[(i * f + a) * self.cols + j * f + b] as u32;
                        }
                    }
                    images.push(((s as f64) / (f * f) as f64).round() as u8);
                }
            }
        }
        Ok(Digits {
            rows: r,
            cols: c,
            images,
            labels: self.labels.clone(),
        })
    }

    /// The first `k` images.
    pub fn head(&self, k: usize) -> Self {
        let k = k.min(self.len());
        Digits {
            rows: self.rows,
            cols: self.cols,
            images: self.images[..k * self.pixels()].to_vec(),
            labels: self.labels[..k].to_vec(),
        }
    }

    /// A batch of the sequential task for images `idx`: T = pixels, one input, pixel/255 at step t
    /// (pixel `perm[t]` when permuted), label targets.
    pub fn batch<F: Real>(&self, idx: &[usize], perm: Option<&[usize]>) -> Result<Batch<F>> {
        let t = self.pixels();
        if let Some(p) = perm {
            if p.len() != t {
                return Err(Error::invalid(
                    "permutation",
                    format!("has {} entries for {t} pixels", p.len()),
                ));
            }
        }
        let b = idx.len();
        let mut u = vec![F::zero(); t * b];
        for (bi, &k) in idx.iter().enumerate() {
            let img = &self.images[k * t..(k + 1) * t];
            for ti in 0..t {
                let px = perm.map_or(ti, |p| p[ti]);
                u[ti * b + bi] = F::c(img[px] as f64 / 255.0);
            }
        }
        Ok(Batch {
            t,
            b,
            n_in: 1,
            u,
            targets: Targets::Class(idx.iter().map(|&k| self.labels[k] as usize).collect()),
            noise_seeds: None,
            mask: None,
        })
    }
}

/// A permutation of `0..n`, deterministic in `seed` (Fisher–Yates with ChaCha8).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    p
}

/// The seed's psMNIST permutation π = RandomState(400).permutation(784) (Geadah et al. 2024),
/// shipped as `models/psmnist-perm.npy` (written by numpy) and compiled in.
pub fn seed_permutation() -> Result<Vec<usize>> {
    use ndarray_npy::ReadNpyExt;
    let bytes: &[u8] = include_bytes!("../../models/psmnist-perm.npy");
    let v = ndarray::Array1::<i64>::read_npy(bytes)
        .map_err(|e| Error::invalid("permutation", format!("models/psmnist-perm.npy: {e}")))?;
    Ok(v.iter().map(|&x| x as usize).collect())
}

/// numpy's legacy `RandomState` (MT19937 seeded by `init_genrand`) as far as the psMNIST protocol
/// needs it: `permutation(n)`, drawn exactly as numpy draws it (Fisher–Yates from the top, each
/// index by masked rejection on 32-bit outputs), so that `RandomState(400)`'s first two draws give
/// the seed's pixel order π and its 50k/10k train/validation split (Geadah et al. 2024) bit for
/// bit. No crate in the dependency tree provides numpy's stream.
pub struct NumpyRandomState {
    mt: [u32; 624],
    pos: usize,
}

impl NumpyRandomState {
    /// `numpy.random.RandomState(seed)` for a 32-bit integer seed.
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1812433253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        NumpyRandomState { mt, pos: 624 }
    }

    /// The next 32-bit output of MT19937.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            for i in 0..624 {
                let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
                if y & 1 == 1 {
                    v ^= 0x9908_b0df;
                }
                self.mt[i] = v;
            }
            self.pos = 0;
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in 0..=max (numpy's `random_interval`, for max < 2³²).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for s in [1, 2, 4, 8, 16] {
            mask |= mask >> s;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.permutation(n)` (n < 2³²).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// The psMNIST protocol's train/validation split of `len` training images with `val` held out
/// (Geadah et al. 2024): for the 60,000 MNIST images, R = RandomState(400)'s second permutation
/// (after π), train = R[..len − val], validation = R[len − val..] — the original 50k/10k split
/// when val = 10,000; for other sets a seeded permutation. Returns (train, validation) indices.
pub fn validation_split(len: usize, val: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let r = if len == 60_000 {
        let mut rs = NumpyRandomState::new(400);
        rs.permutation(784);
        rs.permutation(len)
    } else {
        permutation(len, seed ^ 0x5a11)
    };
    let cut = len.saturating_sub(val);
    (r[..cut].to_vec(), r[cut..].to_vec())
}

impl Digits {
    /// The images at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Self {
        let t = self.pixels();
        let mut images = Vec::with_capacity(idx.len() * t);
        for &k in idx {
            images.extend_from_slice(&self.images[k * t..(k + 1) * t]);
        }
        Digits {
            rows: self.rows,
            cols: self.cols,
            images,
            labels: idx.iter().map(|&k| self.labels[k]).collect(),
        }
    }
}

/// The psMNIST robustness perturbations (Geadah et al. 2024, applied to a batch's inputs with time
/// measured on the 784-step clock, so pooled sequences see the same perturbation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Perturbation {
    /// x'_t = x_t (1 + A sin(2π f t/784 + φ)) on the non-zero pixels.
    Sin {
        amplitude: f64,
        frequency: f64,
        phase: f64,
    },
    /// x'_t = x_t + ξ_t with the step drive ξ_t = 1 for 200 < t < 400, else 0.
    Step,
}

impl Perturbation {
    /// Applies the perturbation to every trial of `batch` (a digits batch: one input).
    pub fn apply<F: Real>(&self, batch: &mut Batch<F>) {
        let (t, b) = (batch.t, batch.b);
        let scale = 784.0 / t as f64;
        for ti in 0..t {
            let clock = ti as f64 * scale;
            for bi in 0..b {
                let x = &mut batch.u[(ti * b + bi) * batch.n_in];
                match *self {
                    Perturbation::Sin {
                        amplitude,
                        frequency,
                        phase,
                    } => {
                        if *x != F::zero() {
                            let m = 1.0
                                + amplitude
                                    * (2.0 * std::f64::consts::PI * frequency * clock / 784.0
                                        + phase)
                                        .sin();
                            *x = F::c(x.f() * m);
                        }
                    }
                    Perturbation::Step => {
                        if clock > 200.0 && clock < 400.0 {
                            *x += F::one();
                        }
                    }
                }
            }
        }
    }
}
