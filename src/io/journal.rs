//! The resume journal of every long batch job (the stability sweep's trials, the spiking λ grid):
//! a first line naming the run, then one CSV line per finished piece of work, appended and
//! flushed as each finishes. A killed run is resumed by reading the journal back: complete lines
//! only (a line cut by the kill is dropped from the file and its work redone); a complete line
//! that does not parse is corruption, reported with the file and line.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One finished piece of work, as one CSV line (floats in their shortest round-trip form, so a
/// resumed run reads back exactly the numbers it wrote).
pub trait JournalRow: Sized {
    /// Fields per line.
    const FIELDS: usize;
    /// What a line holds, for messages (`s,correct,trials,mean_rate`).
    const SHAPE: &'static str;
    fn to_line(&self) -> String;
    /// The row of a line's fields (exactly `FIELDS` of them); `None` if one does not parse.
    fn parse(fields: &[&str]) -> Option<Self>;
}

/// An open journal, appending rows.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens the journal at `path`, creating it with `header` as its first line, or reading the
    /// rows of the run it holds. An existing journal whose first line is not `header` belongs to
    /// another run: an error naming `field` (where the journal lives, e.g. `out`) and `other`
    /// (what differs). A line cut by a kill is removed, so new rows start on a fresh line.
    pub fn open<R: JournalRow>(
        path: &Path,
        header: &str,
        field: &str,
        other: &str,
    ) -> Result<(Journal, Vec<R>)> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        // One run per journal: an advisory lock held while this process has it open (released by
        // the system when the process ends, killed or not).
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} is in use by another run that is still going; wait for it, or use another folder",
                        path.display()
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::file(path, e)),
        }
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(Error::file(path, e)),
        };
        // A line cut by a kill is dropped from the file (its work is redone): ended instead, a
        // row whose last number lost digits would read back as a wrong value.
        let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if keep < text.len() {
            file.set_len(keep as u64)
                .map_err(|e| Error::file(path, e))?;
        }
        let rows = if keep > 0 {
            Self::read(path, Some(header), field, other)?
        } else {
            vec![]
        };
        if keep == 0 {
            writeln!(file, "{header}")
                .and_then(|_| file.sync_data())
                .map_err(|e| Error::file(path, e))?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            rows,
        ))
    }

    /// The rows of the journal at `path` (complete lines after the first). With `header`, the
    /// first line must be it (else an error naming `field`, saying `other` differs).
    pub fn read<R: JournalRow>(
        path: &Path,
        header: Option<&str>,
        field: &str,
        other: &str,
    ) -> Result<Vec<R>> {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Error::invalid(
                field,
                format!(
                    "{}, line {line}: not UTF-8 text (not a journal this program wrote; delete the line or the file)",
                    path.display()
                ),
            )
        })?;
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        if let Some(h) = header {
            if first != h {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} belongs to a different run ({other} differ); use another folder or delete it",
                        path.display()
                    ),
                ));
            }
        }
        // Only lines that end in a newline are complete.
        let complete = text.rfind('\n').map(|i| &text[..i]).unwrap_or("");
        let mut rows = vec![];
        for (k, line) in complete.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() < R::FIELDS {
                continue; // cut by a kill: redone
            }
            let row = (fields.len() == R::FIELDS)
                .then(|| R::parse(&fields))
                .flatten()
                .ok_or_else(|| {
                    Error::invalid(
                        field,
                        format!(
                            "{}, line {}: `{}` is not `{}` (delete the line to redo that work)",
                            path.display(),
                            k + 1,
                            line.chars().take(80).collect::<String>(),
                            R::SHAPE
                        ),
                    )
                })?;
            rows.push(row);
        }
        Ok(rows)
    }

    /// Appends a finished row and flushes it to the operating system.
    pub fn append<R: JournalRow>(&mut self, row: &R) -> Result<()> {
        writeln!(self.file, "{}", row.to_line())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::file(&self.path, e))
    }

    /// Waits until the rows appended so far are on disk (for work that is slow to redo).
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::file(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
