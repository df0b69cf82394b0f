//! Named tensors in one flat parameter vector: what a trainer optimises, a checkpoint stores (one
//! safetensors entry per [`Tensor`], row-major) and an optimiser masks (trained entries against
//! fixed buffers).

/// One named tensor of the flat parameter vector (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    /// Trained (true) or a fixed buffer (initial states, fixed τ, input weights of Kim et al.).
    pub train: bool,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The tensors of a flat parameter vector, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub tensors: Vec<Tensor>,
    pub len: usize,
}

impl Layout {
    /// Appends a tensor; returns its offset.
    pub fn push(&mut self, name: &str, shape: &[usize], train: bool) -> usize {
        let off = self.len;
        let t = Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            offset: off,
            train,
        };
        self.len += t.len();
        self.tensors.push(t);
        off
    }
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// Offset of a tensor that must exist (the cells' own names).
    pub fn off(&self, name: &str) -> usize {
        self.get(name).map(|t| t.offset).unwrap_or(usize::MAX)
    }
    /// 1 for trained entries, 0 for buffers.
    pub fn train_mask(&self) -> Vec<bool> {
        let mut m = vec![false; self.len];
        for t in &self.tensors {
            for v in &mut m[t.range()] {
                *v = t.train;
            }
        }
        m
    }
}

/// The shape of one sample: channels, height, width (a feature vector is `[n, 1, 1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }
    /// Entries per sample.
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Spatial positions per channel.
    pub const fn plane(&self) -> usize {
        self.h * self.w
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.c, self.h, self.w)
    }
}
