//! safetensors files, the format PyTorch users exchange weights in: written with a fixed byte
//! layout (tensors in the given order, metadata in key order: the same contents always give the
//! same bytes) and atomically, read with every tensor's dtype, shape and finiteness checked and
//! errors that name the file. The checkpoints of every trainer and the weights every model loads
//! go through here.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::tensor::Real;
use ::safetensors::tensor::Dtype;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub(crate) fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid("checkpoint", format!("{}: {msg}", path.display()))
}

pub fn to_bytes<F: bytemuck::Pod>(v: &[F]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// What a cell adds to a checkpoint: metadata strings and derived f64 tensors
/// (a trainable cell's `save`).
#[derive(Debug, Default)]
pub struct CheckpointWriter {
    pub meta: Vec<(String, String)>,
    pub tensors: Vec<(String, Vec<usize>, Vec<f64>)>,
}

impl CheckpointWriter {
    /// Adds a metadata entry.
    pub fn meta(&mut self, key: &str, value: impl ToString) {
        self.meta.push((key.to_string(), value.to_string()));
    }
    /// Adds a metadata entry holding a number exactly (`{:?}`).
    pub fn meta_f64(&mut self, key: &str, value: f64) {
        self.meta.push((key.to_string(), format!("{value:?}")));
    }
    /// Adds a float64 tensor.
    pub fn tensor(&mut self, name: &str, shape: Vec<usize>, data: Vec<f64>) {
        self.tensors.push((name.to_string(), shape, data));
    }
}

/// A checkpoint being read: its tensors (either dtype, as f64, checked finite) and metadata, with
/// errors that name the file (a trainable cell's `load` reads from it).
pub struct CheckpointReader<'a> {
    path: &'a Path,
    st: &'a ::safetensors::SafeTensors<'a>,
    meta: &'a HashMap<String, String>,
}

impl<'a> CheckpointReader<'a> {
    /// A reader over a parsed file and its metadata (errors name `path`).
    pub fn new(
        path: &'a Path,
        st: &'a ::safetensors::SafeTensors<'a>,
        meta: &'a HashMap<String, String>,
    ) -> Self {
        CheckpointReader { path, st, meta }
    }
    /// An invalid-checkpoint error naming the file.
    pub fn error(&self, msg: impl std::fmt::Display) -> Error {
        bad(self.path, msg)
    }
    /// True when the tensor exists.
    pub fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }
    /// A tensor's shape and values (f32 or f64 in the file; every value finite).
    pub fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.error(format!("tensor `{name}` is missing")))?;
        let v: Vec<f64> = match t.dtype() {
            Dtype::F64 => t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
                .collect(),
            d => return Err(self.error(format!("tensor `{name}` is {d:?}; expected F32 or F64"))),
        };
        crate::error::ensure_finite(&format!("checkpoint tensor {name}"), &v)?;
        Ok((t.shape().to_vec(), v))
    }
    /// A tensor's shape.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.tensor(name)?.0)
    }
    /// Dimension `k` of tensor `name` (must exist and be positive).
    pub fn dim(&self, name: &str, k: usize) -> Result<usize> {
        let s = self.shape(name)?;
        s.get(k)
            .copied()
            .filter(|&d| d > 0)
            .ok_or_else(|| self.error(format!("tensor `{name}` has shape {s:?}")))
    }
    /// A metadata string.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(|s| s.as_str())
    }
    /// A numeric metadata entry, `default` when absent.
    pub fn meta_f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.meta.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| self.error(format!("metadata `{key}` = `{v}` is not a number"))),
        }
    }
    /// A non-negative integer metadata entry, `default` when absent.
    pub fn meta_usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.meta.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                self.error(format!(
                    "metadata `{key}` = `{v}` is not a non-negative integer"
                ))
            }),
        }
    }
    /// A boolean metadata entry (`"true"`), `default` when absent.
    pub fn meta_bool(&self, key: &str, default: bool) -> bool {
        self.meta.get(key).map(|v| v == "true").unwrap_or(default)
    }
}

/// The metadata of a checkpoint (without reading its tensors into a network).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let (_, header) = ::safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file ({e})")))?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// A tensor read from a file: (name, shape, values as f64).
pub type NamedTensor = (String, Vec<usize>, Vec<f64>);

/// Reads the tensors of `layout` from the checkpoint `path` into `params` (each must be there,
/// with its shape) and returns every tensor of the file (for the optimiser state beside them).
pub fn load_params<F: Real>(
    path: &Path,
    layout: &crate::tensor::Layout,
    params: &mut [F],
) -> Result<Vec<NamedTensor>> {
    let tensors = read_tensors(path)?;
    for t in &layout.tensors {
        let Some((_, shape, v)) = tensors.iter().find(|x| x.0 == t.name) else {
            return Err(bad(path, format!("no tensor `{}`", t.name)));
        };
        if *shape != t.shape {
            return Err(bad(
                path,
                format!(
                    "tensor `{}` has shape {shape:?}, expected {:?}",
                    t.name, t.shape
                ),
            ));
        }
        for (d, s) in params[t.range()].iter_mut().zip(v) {
            *d = F::c(*s);
        }
    }
    Ok(tensors)
}

/// Every tensor of a checkpoint file as (name, shape, f64 values), in name order — the network's
/// own tensors and the derived ones a cell stores (the rate cell's effective `W` and `tau`), and
/// the Adam state.
pub fn read_tensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let st = ::safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file ({e})")))?;
    let meta = HashMap::new();
    let ck = CheckpointReader {
        path,
        st: &st,
        meta: &meta,
    };
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let (shape, v) = ck.tensor(&name)?;
            Ok((name, shape, v))
        })
        .collect()
}

/// A tensor to write: name, shape, little-endian bytes, dtype (F32, F64, I32 or I64).
pub type RawTensor = (String, Vec<usize>, Vec<u8>, ::safetensors::Dtype);

/// Writes a safetensors file atomically with [`safetensors_bytes`]' fixed layout (the
/// checkpoints of `train` and `train-cnn`).
pub fn write_safetensors(
    path: &Path,
    tensors: &[RawTensor],
    meta: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let bytes = safetensors_bytes(tensors, meta)?;
    write_atomic(path, |w| {
        w.write_all(&bytes).map_err(|e| Error::file(path, e))
    })
}

/// The bytes of a safetensors file with the tensors in the given order and the metadata in key
/// order, so that the same contents always give the same bytes (the `safetensors` crate writes
/// its metadata from a `HashMap`, in an order that changes from run to run). Header padded with
/// spaces to a multiple of 8 bytes, as the format recommends.
pub fn safetensors_bytes(
    tensors: &[RawTensor],
    meta: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    if !meta.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = meta
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(m));
    }
    let mut off = 0usize;
    for (name, shape, data, dtype) in tensors {
        use ::safetensors::Dtype;
        let (width, dname) = match *dtype {
            Dtype::F64 => (8, "F64"),
            Dtype::I64 => (8, "I64"),
            Dtype::F32 => (4, "F32"),
            Dtype::I32 => (4, "I32"),
            other => {
                return Err(Error::invalid(
                    "dtype",
                    format!("`{other:?}` is not written here"),
                ))
            }
        };
        let n: usize = shape.iter().product();
        if n * width != data.len() {
            return Err(Error::invalid(
                name,
                format!(
                    "shape {shape:?} of {dname} needs {} bytes, got {}",
                    n * width,
                    data.len()
                ),
            ));
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dname, "shape": shape, "data_offsets": [off, off + data.len()]}),
        );
        off += data.len();
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + off);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for (_, _, data, _) in tensors {
        out.extend_from_slice(data);
    }
    Ok(out)
}
