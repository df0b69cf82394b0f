//! Reading `.npy` arrays with validation, and writing tables (Parquet, CSV) and other outputs
//! atomically: everything is written to a temporary file in the destination folder and renamed
//! into place only when complete, so a failed or killed run never leaves a partial file.

use crate::error::{Error, IntegrateError, Result};
use faer::Mat;
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyError, ReadNpyExt};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub mod journal;
mod parquet_table;

fn open(path: &Path, field: &str) -> Result<File> {
    File::open(path)
        .map_err(|e| Error::invalid(field, format!("cannot open {}: {}", path.display(), e)))
}

/// Opens a `.npy` file after checking what its header promises against what the file holds: the
/// data its shape and dtype imply must be in the file, and their f64 copy must fit in memory — a
/// lying header (10⁶ × 10⁶ over 200 bytes) is refused before anything is allocated for it.
pub fn open_npy(path: &Path, field: &str) -> Result<File> {
    use std::io::Read;
    let mut f = open(path, field)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = vec![0u8; 12];
    let got = f.read(&mut head).unwrap_or(0);
    if got >= 10 && &head[..6] == b"\x93NUMPY" {
        let (hlen, start) = match head[6] {
            1 => (u16::from_le_bytes([head[8], head[9]]) as u64, 10),
            _ => (
                u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64,
                12,
            ),
        };
        if hlen <= 1 << 20 {
            let mut text = vec![0u8; hlen as usize];
            let mut g = open(path, field)?;
            let mut skip = vec![0u8; start];
            if g.read_exact(&mut skip).is_ok() && g.read_exact(&mut text).is_ok() {
                if let Some((count, item)) = npy_extent(&String::from_utf8_lossy(&text)) {
                    let data = len.saturating_sub(start as u64 + hlen) as u128;
                    let need = count.saturating_mul(item);
                    if need > data {
                        return Err(Error::invalid(
                            field,
                            format!(
                                "{}: the header promises {count} values ({need} bytes) but the file holds {data} bytes of data",
                                path.display()
                            ),
                        ));
                    }
                    crate::memory::check(field, count.saturating_mul(8), None)?;
                }
            }
        }
    }
    open(path, field)
}

/// (number of values, bytes per value) from a `.npy` header dictionary, when it can be read.
fn npy_extent(header: &str) -> Option<(u128, u128)> {
    let descr = header.split("'descr'").nth(1)?;
    let descr = descr.split('\'').nth(1)?;
    let item: u128 = descr
        .trim_start_matches(['<', '>', '|', '='])
        .get(1..)?
        .parse()
        .ok()?;
    let shape = header.split("'shape'").nth(1)?;
    let shape = shape.split('(').nth(1)?.split(')').next()?;
    let mut count: u128 = 1;
    for d in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        count = count.saturating_mul(d.parse::<u128>().ok()?);
    }
    Some((count, item))
}

fn npy_err(path: &Path, field: &str, e: ReadNpyError) -> Error {
    let problem = match &e {
        ReadNpyError::WrongDescriptor(d) => {
            format!(
                "{}: expected a float64 or float32 array ('<f8', '<f4'), found dtype {d:?}",
                path.display()
            )
        }
        ReadNpyError::WrongNdim(exp, got) => format!(
            "{}: expected a {}-D array, found {}-D",
            path.display(),
            exp.map(|e| e.to_string()).unwrap_or_else(|| "?".into()),
            got
        ),
        _ => format!("{}: not a readable .npy file ({e})", path.display()),
    };
    Error::invalid(field, problem)
}

/// Reads a float `.npy` array of dimension `D`: float64 as is, float32 (what PyTorch users save)
/// widened exactly; integer, complex and other dtypes are refused naming the dtype.
pub fn read_float<D: ndarray::Dimension>(
    path: &Path,
    field: &str,
) -> Result<ndarray::Array<f64, D>> {
    match ndarray::Array::<f64, D>::read_npy(open_npy(path, field)?) {
        Ok(a) => Ok(a),
        Err(ReadNpyError::WrongDescriptor(d)) => {
            match ndarray::Array::<f32, D>::read_npy(open(path, field)?) {
                Ok(a) => Ok(a.mapv(f64::from)),
                // A float32 array of the wrong dimension: say so.
                Err(e @ ReadNpyError::WrongNdim(..)) => Err(npy_err(path, field, e)),
                Err(_) => Err(npy_err(path, field, ReadNpyError::WrongDescriptor(d))),
            }
        }
        Err(e) => Err(npy_err(path, field, e)),
    }
}

/// Reads a 1-D float64 (or float32, widened) `.npy` vector; `field` names it in errors. Checks finiteness and, if given,
/// the length.
pub fn read_npy_vec(path: &Path, field: &str, expected_len: Option<usize>) -> Result<Vec<f64>> {
    let a: Array1<f64> = read_float(path, field)?;
    let v = a.to_vec();
    if let Some(n) = expected_len {
        if v.len() != n {
            return Err(Error::invalid(
                field,
                format!("{}: has length {}, expected {n}", path.display(), v.len()),
            ));
        }
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            field,
            format!("{}: entry {i} is {} (must be finite)", path.display(), v[i]),
        ));
    }
    Ok(v)
}

/// Reads a 2-D float64 (or float32, widened) `.npy` matrix (C or Fortran order); checks finiteness and, if given, the shape.
pub fn read_npy_mat(
    path: &Path,
    field: &str,
    expected: Option<(usize, usize)>,
) -> Result<Mat<f64>> {
    let a: Array2<f64> = read_float(path, field)?;
    let (r, c) = a.dim();
    if let Some((er, ec)) = expected {
        if (r, c) != (er, ec) {
            return Err(Error::invalid(
                field,
                format!("{}: has shape {r}×{c}, expected {er}×{ec}", path.display()),
            ));
        }
    }
    if let Some(((i, j), x)) = a.indexed_iter().find(|(_, x)| !x.is_finite()) {
        return Err(Error::invalid(
            field,
            format!(
                "{}: entry ({i}, {j}) is {x} (must be finite)",
                path.display()
            ),
        ));
    }
    Ok(Mat::from_fn(r, c, |i, j| a[(i, j)]))
}

/// Checks, before any work, that an output file can be written at `path` (named by `field`):
/// it is not a folder, and its nearest existing ancestor is a folder this process can create
/// files in. A run checks all its outputs with this first, so that a bad second output path
/// cannot leave the first output behind.
pub fn check_output(field: &str, path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::invalid(field, "empty path"));
    }
    if path.is_dir() {
        return Err(Error::invalid(
            field,
            format!("{} is a folder; give a file name", path.display()),
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    check_writable_ancestor(field, path, dir)
}

/// [`check_output`] for every path of a run's outputs.
pub fn check_outputs(field: &str, paths: &[PathBuf]) -> Result<()> {
    paths.iter().try_for_each(|p| check_output(field, p))
}

/// Checks, before any work, that `path` (named by `field`, usually `out`) can be an output
/// folder: an existing folder this process can write in, or a path whose nearest existing
/// ancestor is one (a path below a file, a file, or a read-only place is refused, exit 2).
pub fn check_out_dir_named(field: &str, path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::invalid(field, "empty path"));
    }
    if path.exists() && !path.is_dir() {
        return Err(Error::invalid(
            field,
            format!("{} exists and is not a folder", path.display()),
        ));
    }
    check_writable_ancestor(field, path, path.to_path_buf())
}

/// [`check_out_dir_named`] for the field `out`.
pub fn check_out_dir(path: &Path) -> Result<()> {
    check_out_dir_named("out", path)
}

/// The nearest existing ancestor of `dir` (itself included) must be a folder this process can
/// create files in.
fn check_writable_ancestor(field: &str, path: &Path, mut dir: PathBuf) -> Result<()> {
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => {
                dir = PathBuf::from(".");
                break;
            }
        }
    }
    if !dir.is_dir() {
        return Err(Error::invalid(
            field,
            format!(
                "{}: {} is a file, not a folder",
                path.display(),
                dir.display()
            ),
        ));
    }
    tempfile::Builder::new()
        .prefix(".neurodyn-probe-")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| {
            Error::invalid(
                field,
                format!(
                    "{}: cannot write in {} ({e})",
                    path.display(),
                    dir.display()
                ),
            )
        })
}

/// An output path that is a folder cannot take a file: invalid `out` (exit 2).
fn refuse_folder(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::invalid(
            "out",
            format!("{} is a folder, where an output file goes", path.display()),
        ));
    }
    Ok(())
}

/// Every file this process finished writing (what `--json` lists).
static WRITTEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The files this process has written so far, in order (each once).
pub fn written() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    if let Ok(w) = WRITTEN.lock() {
        for p in w.iter() {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

/// Writes `path` atomically: `write` fills a temporary file in the same folder, which is renamed to
/// `path` only if `write` succeeds. On error the temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    refuse_folder(path)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create folder: {e}")))?;
    // `.neurodyn-<name>-XXXXXX.tmp`: a temp file that a killed writer left for this same target
    // is removed first — once it is a minute old, so that another process writing the same
    // target right now (shards of one sweep writing its config.toml) keeps its own.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".neurodyn-{name}-");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60));
            if f.starts_with(&prefix)
                && f.ends_with(".tmp")
                && f.len() == prefix.len() + 10
                && stale
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp").rand_bytes(6);
    // Finished files get the user's umask (0644 normally), not the temp-file default 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::file(dir, format!("cannot create a temporary file: {e}")))?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    w.flush().map_err(|e| Error::file(path, e))?;
    drop(w);
    // A staged run: renamed by `commit_outputs` once everything succeeded.
    let tmp_path = STAGED.with(|s| match s.borrow_mut().as_mut() {
        Some(list) => {
            list.retain(|(_, p)| p != path);
            list.push((tmp_path, path.to_path_buf()));
            None
        }
        None => Some(tmp_path),
    });
    match tmp_path {
        Some(t) => persist(t, path),
        None => Ok(()),
    }
}

fn persist(tmp: tempfile::TempPath, path: &Path) -> Result<()> {
    tmp.persist(path).map_err(|e| {
        Error::file(
            path,
            format!("cannot move the finished file into place: {e}"),
        )
    })?;
    if let Ok(mut w) = WRITTEN.lock() {
        w.push(path.to_path_buf());
    }
    Ok(())
}

/// Finished temporary files of a staged run and their destinations.
type Staged = Vec<(tempfile::TempPath, PathBuf)>;
thread_local! {
    // Per thread: a binary stages on its main thread; concurrent tests do not see each other's.
    static STAGED: std::cell::RefCell<Option<Staged>> = const { std::cell::RefCell::new(None) };
}

/// From now on (on this thread), [`write_atomic`] keeps each finished file as a temporary file next to its
/// destination; [`commit_outputs`] renames them all, [`discard_outputs`] deletes them. A run's
/// outputs then appear together or not at all (the one-shot binaries stage; the resumable ones —
/// `train`, `stability-sweep`, `spiking` — write each epoch's files as they go, on purpose).
pub fn stage_outputs() {
    STAGED.with(|s| *s.borrow_mut() = Some(vec![]));
}

/// Renames every staged file into place (in the order written), after checking that every
/// destination can take it (none is a folder): a bad destination fails the run with nothing
/// renamed.
pub fn commit_outputs() -> Result<()> {
    let list = STAGED.with(|s| s.borrow_mut().take()).unwrap_or_default();
    for (_, path) in &list {
        refuse_folder(path)?;
    }
    for (tmp, path) in list {
        persist(tmp, &path)?;
    }
    Ok(())
}

/// Runs `write` with its files staged ([`stage_outputs`]): they appear together when it succeeds
/// and none does when it fails. Inside a staged run (a one-shot binary) it only runs `write`, whose
/// files then join the run's. What a resumable run writes at its end (reports, figures) goes
/// through this, so a bad last path leaves none of them.
pub fn staged<T>(write: impl FnOnce() -> Result<T>) -> Result<T> {
    if STAGED.with(|s| s.borrow().is_some()) {
        return write();
    }
    stage_outputs();
    match write() {
        Ok(v) => commit_outputs()
            .map(|()| v)
            .inspect_err(|_| discard_outputs()),
        Err(e) => {
            discard_outputs();
            Err(e)
        }
    }
}

/// Deletes every staged file (a failed run leaves nothing).
pub fn discard_outputs() {
    let list = STAGED.with(|s| s.borrow_mut().take()).unwrap_or_default();
    drop(list);
}

/// Output table format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
    Csv,
}

impl TableFormat {
    /// From a file extension (`.parquet`/`.pq` or `.csv`).
    pub fn from_path(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("parquet") | Some("pq") => Ok(TableFormat::Parquet),
            Some("csv") => Ok(TableFormat::Csv),
            _ => Err(Error::invalid(
                "out",
                format!(
                    "{}: unknown table format (use .parquet or .csv)",
                    path.display()
                ),
            )),
        }
    }
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

impl Column {
    /// The rows in `r`.
    pub fn select(&self, r: std::ops::Range<usize>) -> Column {
        match self {
            Column::F64(v) => Column::F64(v[r].to_vec()),
            Column::I64(v) => Column::I64(v[r].to_vec()),
            Column::Str(v) => Column::Str(v[r].to_vec()),
        }
    }
    /// The values as floats (integers converted exactly up to 2^53); `None` for text.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self {
            Column::F64(v) => Some(v.clone()),
            Column::I64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::Str(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }
}

/// A named-column table that pandas and polars read back.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<(String, Column)>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, name: impl Into<String>, col: Column) -> &mut Self {
        self.columns.push((name.into(), col));
        self
    }
    pub fn nrows(&self) -> usize {
        self.columns.first().map(|c| c.1.len()).unwrap_or(0)
    }

    /// Writes the table atomically as Parquet (Snappy) or CSV, chosen by `format`.
    pub fn write(&self, path: &Path, format: TableFormat) -> Result<()> {
        let n = self.nrows();
        if let Some((name, _)) = self.columns.iter().find(|(_, c)| c.len() != n) {
            return Err(Error::invalid(
                name,
                "column length differs from the others",
            ));
        }
        match format {
            TableFormat::Csv => write_atomic(path, |w| {
                self.write_csv(w).map_err(|e| Error::file(path, e))
            }),
            TableFormat::Parquet => write_atomic(path, |w| self.write_parquet(w, path)),
        }
    }

    fn write_csv(&self, w: &mut impl Write) -> std::io::Result<()> {
        let names: Vec<String> = self.columns.iter().map(|(n, _)| csv_field(n)).collect();
        writeln!(w, "{}", names.join(","))?;
        for r in 0..self.nrows() {
            for (k, (_, c)) in self.columns.iter().enumerate() {
                if k > 0 {
                    w.write_all(b",")?;
                }
                match c {
                    // Shortest round-trip form, scientific for tiny/huge values (1e-30, not 0.000…01).
                    Column::F64(v) => write!(w, "{:?}", v[r])?,
                    Column::I64(v) => write!(w, "{}", v[r])?,
                    Column::Str(v) => write!(w, "{}", csv_field(&v[r]))?,
                }
            }
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    fn write_parquet(&self, w: &mut BufWriter<File>, path: &Path) -> Result<()> {
        parquet_table::write(self, w).map_err(|e| Error::file(path, e))
    }

    /// The column named `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The column named `name` as floats (integers converted); `None` if absent or text.
    pub fn f64s(&self, name: &str) -> Option<Vec<f64>> {
        self.column(name).and_then(Column::to_f64)
    }

    pub fn ncols(&self) -> usize {
        self.columns.len()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Reads a Parquet file (ours, pandas', polars') back into a [`Table`]: floating columns as
/// `F64` (a null is NaN), integer and boolean columns as `I64` (as `F64` with NaN where one holds a
/// null), text as `Str`.
pub fn read_parquet(path: &Path) -> Result<Table> {
    let f = File::open(path).map_err(|e| Error::file(path, e))?;
    parquet_table::read(f).map_err(|e| Error::file(path, e))
}

/// Writes a 2-D float64 array as `.npy`, atomically.
pub fn write_npy_mat(path: &Path, rows: usize, cols: usize, data: &[f64]) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    let a = Array2::from_shape_vec((rows, cols), data.to_vec())
        .map_err(|e| Error::invalid("array", e.to_string()))?;
    write_atomic(path, |w| a.write_npy(w).map_err(|e| Error::file(path, e)))
}

/// Writes a 1-D float64 array as `.npy`, atomically.
pub fn write_npy_vec(path: &Path, data: &[f64]) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    let a = Array1::from_vec(data.to_vec());
    write_atomic(path, |w| a.write_npy(w).map_err(|e| Error::file(path, e)))
}

/// A numeric signal matrix: `t` rows (samples) × `n` columns (signals), row-major, with column names.
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    pub names: Vec<String>,
    pub t: usize,
    pub n: usize,
    pub data: Vec<f64>,
    /// The values of a time column named `t`, if the table had one (not included in `data`).
    pub time: Option<Vec<f64>>,
    /// The input was a 1-D `.npy` vector.
    pub one_d: bool,
}

impl Signals {
    pub fn column(&self, i: usize) -> Vec<f64> {
        (0..self.t).map(|k| self.data[k * self.n + i]).collect()
    }

    /// The sample spacing: `dt` if given, else that of the `t` column, which must be uniform
    /// (errors name `dt`).
    pub fn spacing(&self, dt: Option<f64>) -> Result<f64> {
        match (dt, &self.time) {
            (Some(d), _) => Ok(d),
            (None, Some(t)) if t.len() >= 2 => {
                let d = t[1] - t[0];
                if t.windows(2)
                    .any(|w| ((w[1] - w[0]) - d).abs() > 1e-9 * d.abs().max(1e-300))
                {
                    return Err(Error::invalid(
                        "dt",
                        "the `t` column is not uniformly spaced; resample or give --dt",
                    ));
                }
                Ok(d)
            }
            _ => Err(Error::invalid(
                "dt",
                "missing: give --dt (the input has no `t` column)",
            )),
        }
    }

    /// Writes `data` (row-major `t × n`, e.g. a transform of these signals) to `path` in the
    /// signals' own shape: `.npy` 1-D or 2-D as read, or a table with the same column names (and
    /// the `t` column).
    pub fn write_like(&self, path: &Path, data: &[f64]) -> Result<()> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        if ext == "npy" {
            return if self.one_d {
                write_npy_vec(path, data)
            } else {
                write_npy_mat(path, self.t, self.n, data)
            };
        }
        let fmt = TableFormat::from_path(path)?;
        let mut table = Table::new();
        if let Some(t) = &self.time {
            table.push("t", Column::F64(t.clone()));
        }
        for (i, name) in self.names.iter().enumerate() {
            table.push(
                name.clone(),
                Column::F64((0..self.t).map(|k| data[k * self.n + i]).collect()),
            );
        }
        table.write(path, fmt)
    }
}

/// Reads signals from `.npy` (1-D, or 2-D T×N), Parquet or CSV (numeric columns; a column named
/// `t` is taken as time, not as a signal). `field` names the input in errors.
pub fn read_signals(path: &Path, field: &str) -> Result<Signals> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let (names, cols, time): (Vec<String>, Vec<Vec<f64>>, Option<Vec<f64>>) = match ext.as_str() {
        "npy" => {
            if let Ok(a) = read_float::<ndarray::Ix1>(path, field) {
                let v = a.to_vec();
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{}: sample {i} is {} (must be finite)",
                            path.display(),
                            v[i]
                        ),
                    ));
                }
                let t = v.len();
                return Ok(Signals {
                    names: vec!["x0".into()],
                    t,
                    n: 1,
                    data: v,
                    time: None,
                    one_d: true,
                });
            }
            let m = read_npy_mat(path, field, None)?;
            let names = (0..m.ncols()).map(|i| format!("x{i}")).collect();
            let cols = (0..m.ncols())
                .map(|j| (0..m.nrows()).map(|i| m[(i, j)]).collect())
                .collect();
            (names, cols, None)
        }
        "parquet" | "pq" => {
            let table = read_parquet(path).map_err(|e| Error::invalid(field, e.to_string()))?;
            let mut names = vec![];
            let mut cols = vec![];
            let mut time = None;
            for (name, c) in table.columns {
                let v = c.to_f64().ok_or_else(|| {
                    Error::invalid(
                        field,
                        format!("{}: column `{name}` is text, not numbers", path.display()),
                    )
                })?;
                if name == "t" {
                    time = Some(v);
                } else {
                    names.push(name);
                    cols.push(v);
                }
            }
            (names, cols, time)
        }
        "csv" => {
            // The csv crate: quoted fields, CRLF, a header row; an empty cell is NaN, as pandas
            // writes a missing value.
            let mut rd = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_path(path)
                .map_err(|e| {
                    Error::invalid(field, format!("cannot read {}: {e}", path.display()))
                })?;
            let header: Vec<String> = rd
                .headers()
                .map_err(|e| Error::invalid(field, format!("{}: {e}", path.display())))?
                .iter()
                .map(|s| s.to_string())
                .collect();
            let mut cols: Vec<Vec<f64>> = vec![vec![]; header.len()];
            for (r, rec) in rd.records().enumerate() {
                let rec = rec.map_err(|e| {
                    Error::invalid(field, format!("{}: row {}: {e}", path.display(), r + 1))
                })?;
                for (c, cell) in rec.iter().enumerate() {
                    let v: f64 = if cell.is_empty() {
                        f64::NAN
                    } else {
                        cell.parse().map_err(|_| {
                            Error::invalid(
                                field,
                                format!(
                                    "{}: row {}, column `{}`: `{cell}` is not a number",
                                    path.display(),
                                    r + 1,
                                    header[c]
                                ),
                            )
                        })?
                    };
                    cols[c].push(v);
                }
            }
            let mut names = vec![];
            let mut out = vec![];
            let mut time = None;
            for (h, c) in header.into_iter().zip(cols) {
                if h == "t" {
                    time = Some(c);
                } else {
                    names.push(h);
                    out.push(c);
                }
            }
            (names, out, time)
        }
        _ => {
            return Err(Error::invalid(
                field,
                format!(
                    "{}: unknown format (use .npy, .parquet or .csv)",
                    path.display()
                ),
            ))
        }
    };
    let n = cols.len();
    let t = cols.first().map(|c| c.len()).unwrap_or(0);
    if n == 0 || t == 0 {
        return Err(Error::invalid(
            field,
            format!("{}: no samples", path.display()),
        ));
    }
    let mut data = vec![0.0; t * n];
    for (i, c) in cols.iter().enumerate() {
        for (k, &v) in c.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{}: column `{}`, sample {k} is {v} (must be finite)",
                        path.display(),
                        names[i]
                    ),
                ));
            }
            data[k * n + i] = v;
        }
    }
    Ok(Signals {
        names,
        t,
        n,
        data,
        time,
        one_d: false,
    })
}

/// The process exit for a binary's result: success, 2 for invalid input (the message names the
/// field), 1 for a failure while running. Prints `error: …` on stderr.
pub fn exit(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// [`exit`], and with `json` a machine-readable summary on stdout (the human messages stay on
/// stderr): `{"status": "ok", "exit_code": 0, "outputs": [files written]}` or
/// `{"status": "error", "exit_code": 2, "field": "…", "error": "…", "outputs": […]}`.
pub fn exit_with(result: Result<()>, json: bool) -> std::process::ExitCode {
    // A staged run's files appear now, all together, or not at all.
    let result = match result {
        Ok(()) => commit_outputs(),
        Err(e) => {
            discard_outputs();
            Err(e)
        }
    };
    if json {
        let outputs: Vec<String> = written().iter().map(|p| p.display().to_string()).collect();
        let v = match &result {
            Ok(()) => serde_json::json!({"status": "ok", "exit_code": 0, "outputs": outputs}),
            Err(e) => {
                let field = match e {
                    Error::Invalid { field, .. } => Some(field.clone()),
                    Error::Integrate(IntegrateError::InvalidOption { field, .. }) => {
                        Some(field.clone())
                    }
                    _ => None,
                };
                serde_json::json!({
                    "status": "error",
                    "exit_code": e.exit_code(),
                    "field": field,
                    "error": e.to_string(),
                    "outputs": outputs,
                })
            }
        };
        println!("{v}");
    }
    exit(result)
}

/// Parses `start:stop:count` (count ≥ `min_count`) into evenly spaced values; `field` names the
/// flag in errors.
pub fn parse_range(s: &str, field: &str, min_count: usize) -> Result<Vec<f64>> {
    let bad = || {
        Error::invalid(
            field,
            format!("`{s}`: expected start:stop:count with count ≥ {min_count}"),
        )
    };
    let p: Vec<&str> = s.split(':').collect();
    if p.len() != 3 {
        return Err(bad());
    }
    let (a, b): (f64, f64) = (
        p[0].trim().parse().map_err(|_| bad())?,
        p[1].trim().parse().map_err(|_| bad())?,
    );
    let c: usize = p[2].trim().parse().map_err(|_| bad())?;
    if c < min_count.max(1) || !a.is_finite() || !b.is_finite() {
        return Err(bad());
    }
    // Every grid value becomes at least a result row: refuse grids whose rows alone exceed memory.
    crate::memory::check(field, c as u128 * 256, None)?;
    Ok((0..c)
        .map(|i| {
            if c == 1 {
                a
            } else {
                a + (b - a) * i as f64 / (c - 1) as f64
            }
        })
        .collect())
}

/// Writes an n-D float64 array as `.npy`, atomically.
pub fn write_npy_array<D: ndarray::Dimension>(
    path: &Path,
    a: &ndarray::Array<f64, D>,
) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    write_atomic(path, |w| a.write_npy(w).map_err(|e| Error::file(path, e)))
}

// Shards: work split into contiguous blocks that separate processes run (SLURM arrays, Dask).

/// The jobs of shard `i` of `n` (numpy.array_split: the first `len % n` shards get one more).
pub fn shard_jobs(total: usize, i: usize, n: usize) -> std::ops::Range<usize> {
    let (q, r) = (total / n, total % n);
    let start = i * q + i.min(r);
    start..start + q + usize::from(i < r)
}

/// Parses `--shard I/N` (0 ≤ I < N; none: the whole sweep, `(0, 1)`), naming `shard`.
pub fn parse_shard(s: &Option<String>) -> Result<(usize, usize)> {
    let Some(s) = s else { return Ok((0, 1)) };
    let bad = || Error::invalid("shard", format!("`{s}`: expected I/N with 0 ≤ I < N"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

static INTERRUPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks the running work to stop at its next safe point (between epochs' minibatches, trials,
/// grid values, continuation points, starts): it then returns [`Error::Interrupted`] with what it
/// finished kept, so that rerunning resumes. The Python package calls this on Ctrl-C.
pub fn interrupt() {
    INTERRUPT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Clears a request of [`interrupt`] (before a new run starts).
pub fn clear_interrupt() {
    INTERRUPT.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// `Err(Error::Interrupted)` once [`interrupt`] was called; `what` says what was kept.
pub fn check_interrupt(what: &str) -> Result<()> {
    if INTERRUPT.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::Interrupted(what.to_string()));
    }
    Ok(())
}

static OBSERVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static OBSERVED: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// From now on, progress bars draw nothing and the latest one can be read with
/// [`observed_progress`] (the Python package draws it its own way: tqdm in a terminal or Jupyter).
pub fn observe_progress(on: bool) {
    OBSERVE.store(on, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut g) = OBSERVED.lock() {
        *g = None;
    }
}

/// The latest progress bar's state under [`observe_progress`]: position, length (none for a
/// spinner), message.
pub fn observed_progress() -> Option<(u64, Option<u64>, String)> {
    let g = OBSERVED.lock().ok()?;
    let b = g.as_ref()?;
    let len = b.length().filter(|&l| l > 0);
    Some((b.position(), len, b.message()))
}

/// After `bar.set_position(done)` for work a resumed run found already done: the estimate of
/// what is left starts from here (indicatif would otherwise count the restored steps as done
/// in the first instant and promise an end within seconds).
pub fn restart_eta(bar: &indicatif::ProgressBar) {
    // `tick` does nothing while a steady ticker runs (the log lines' bar has one), so the
    // restored position is recorded through a length change, which always updates the estimate.
    bar.inc_length(0);
    bar.reset_eta();
}

/// The progress bar of every long command: hidden with `quiet`; on a terminal, drawn on stderr
/// as `{spinner} [{elapsed_precise}] {bar:40} ` followed by `tail` (e.g. `"{pos}/{len} {msg}"`);
/// when stderr is a file or a pipe (a batch job, a log), one plain line every
/// [`LOG_EVERY`] with the elapsed time, the percentage and the estimate of what is left
/// ([`LogLines`]), so that no long run is silent.
pub fn progress_bar(quiet: bool, len: u64, tail: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    if OBSERVE.load(std::sync::atomic::Ordering::Relaxed) {
        let b = ProgressBar::hidden();
        b.set_length(len);
        if let Ok(mut g) = OBSERVED.lock() {
            *g = Some(b.clone());
        }
        return b;
    }
    if quiet {
        return ProgressBar::hidden();
    }
    if !std::io::stderr().is_terminal() {
        // NEURODYN_LOG_EVERY (seconds) overrides the interval (the tests use 0).
        let every = std::env::var("NEURODYN_LOG_EVERY")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map_or(LOG_EVERY, std::time::Duration::from_secs_f64);
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(LogLines::new(every)), 1);
        let b = ProgressBar::with_draw_target(Some(len), target);
        let eta = if tail.contains("{eta}") {
            ""
        } else {
            " (about {eta} left)"
        };
        b.set_style(
            ProgressStyle::with_template(&format!(
                "[{{elapsed_precise}}] {{percent}} % {tail}{eta}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        // Redrawn while the work does not advance, so that a stall shows too.
        b.enable_steady_tick(std::time::Duration::from_secs(1));
        return b;
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:40}} {tail}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

/// A progress report: called with the number of items (steps, starts) done so far — what the
/// analyses give a progress bar.
#[derive(Clone)]
pub struct StepCallback(pub std::sync::Arc<dyn Fn(usize) + Send + Sync>);

impl std::fmt::Debug for StepCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepCallback")
    }
}

/// A progress indicator for work of unknown length (a Newton–Krylov solve, a batch of fits):
/// `what` and the elapsed time, on a terminal as a spinner and otherwise as a plain line every
/// [`LOG_EVERY`] ([`progress_bar`]'s rule); hidden with `quiet`. Call `finish_and_clear` after.
pub fn spinner(quiet: bool, what: &str) -> indicatif::ProgressBar {
    let b = progress_bar(quiet, 0, "");
    if quiet {
        return b;
    }
    let template = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        "{spinner} [{elapsed_precise}] {msg}"
    } else {
        "[{elapsed_precise}] {msg} (still working)"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(style);
    }
    b.set_message(what.to_string());
    b.enable_steady_tick(std::time::Duration::from_secs(1));
    b
}

/// How often a progress bar writes a line when stderr is not a terminal.
pub const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A progress bar's target when stderr is not a terminal: the bar's text as a plain line,
/// at most once per `every` (the first after `every`), without cursor movements.
#[derive(Debug)]
pub struct LogLines {
    every: std::time::Duration,
    state: std::sync::Mutex<(std::time::Instant, String)>,
}

impl LogLines {
    pub fn new(every: std::time::Duration) -> Self {
        LogLines {
            every,
            state: std::sync::Mutex::new((std::time::Instant::now(), String::new())),
        }
    }
}

impl indicatif::TermLike for LogLines {
    fn width(&self) -> u16 {
        160
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if let Ok(mut st) = self.state.lock() {
            st.1.push_str(s);
        }
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    /// The end of one drawing: its text becomes a line when the last one is `every` old.
    fn flush(&self) -> std::io::Result<()> {
        if let Ok(mut st) = self.state.lock() {
            let line = std::mem::take(&mut st.1);
            let line = line.trim_matches(|c: char| c.is_whitespace());
            if st.0.elapsed() >= self.every && !line.is_empty() {
                eprintln!("{line}");
                st.0 = std::time::Instant::now();
            }
        }
        Ok(())
    }
}

/// Initial states from a float64 `.npy` matrix `[M, n]`, one state per row (field `field`),
/// checked to fit in memory with `samples` saved states of each.
pub fn read_states(path: &Path, field: &str, n: usize, samples: usize) -> Result<Vec<Vec<f64>>> {
    let starts = read_npy_mat(path, field, None)?;
    if starts.ncols() != n || starts.nrows() == 0 {
        return Err(Error::invalid(
            field,
            format!(
                "{}: shape [{}, {}]; need [M, {n}] (one initial state of the {n}-unit model per row)",
                path.display(),
                starts.nrows(),
                starts.ncols()
            ),
        ));
    }
    crate::memory::check(
        field,
        samples as u128 * starts.nrows() as u128 * (n as u128 + 2) * 8 * 3,
        None,
    )?;
    Ok((0..starts.nrows())
        .map(|r| (0..n).map(|c| starts[(r, c)]).collect())
        .collect())
}

/// FNV-1a (64-bit) of `bytes`: a cheap fingerprint that names a file's contents in a journal.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `out` without its extension, `_suffix` appended to the file name (`a/s.csv` → `a/s_suffix`).
pub fn suffixed(out: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let st = out.with_extension("");
    let name = st
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    st.with_file_name(format!("{name}_{suffix}"))
}

/// How a command's outputs are written: `Staged` (a one-shot command: every file appears at the
/// end, together, or none does) or `AsTheyCome` (a training run keeps each epoch's checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    Staged,
    AsTheyCome,
}

#[cfg(test)]
mod tests {
    /// A bar resumed at 9,000 of 10,000 steps that then advances 10 steps in ≈ 0.2 s has
    /// ≈ 20 s left; counting the restored steps as done in the first instant would promise
    /// well under a second. Checked with a steady ticker, as the log-line bar runs.
    #[test]
    fn a_resumed_bar_estimates_from_the_restored_position() {
        use std::time::Duration;
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(10_000),
            indicatif::ProgressDrawTarget::hidden(),
        );
        bar.enable_steady_tick(Duration::from_millis(5));
        bar.set_position(9_000);
        super::restart_eta(&bar);
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(20));
            bar.inc(1);
        }
        std::thread::sleep(Duration::from_millis(20));
        let eta = bar.eta().as_secs_f64();
        assert!(eta > 5.0, "estimate {eta} s");
    }
}
