//! Parquet for [`Table`]s, on the `parquet` crate's column API (no Arrow, no data-frame library:
//! a table here is a handful of flat columns, and this keeps a clean build minutes shorter).
//!
//! Written: one row group, every column `REQUIRED` (`DOUBLE`, `INT64`, or `BYTE_ARRAY` annotated as
//! UTF-8 `STRING`), Snappy pages, statistics on — what pandas (pyarrow) and polars read.
//! Read: any flat file of those or of `FLOAT`/`INT32`/`BOOLEAN` columns, required or optional.

use super::{Column, Table};
use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::column::reader::ColumnReader;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

pub(super) fn write<W: Write + Send>(table: &Table, w: W) -> Result<()> {
    let fields = table
        .columns
        .iter()
        .map(|(name, c)| {
            let (physical, logical) = match c {
                Column::F64(_) => (Physical::DOUBLE, None),
                Column::I64(_) => (Physical::INT64, None),
                Column::Str(_) => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            };
            Type::primitive_type_builder(name, physical)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>>>()?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = SerializedFileWriter::new(w, Arc::new(schema), Arc::new(props))?;
    let mut group = writer.next_row_group()?;
    let mut k = 0;
    while let Some(mut col) = group.next_column()? {
        match (col.untyped(), &table.columns[k].1) {
            (ColumnWriter::DoubleColumnWriter(w), Column::F64(v)) => {
                w.write_batch(v, None, None)?;
            }
            (ColumnWriter::Int64ColumnWriter(w), Column::I64(v)) => {
                w.write_batch(v, None, None)?;
            }
            (ColumnWriter::ByteArrayColumnWriter(w), Column::Str(v)) => {
                let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                w.write_batch(&v, None, None)?;
            }
            _ => {
                return Err(ParquetError::General(
                    "column writer of another type".into(),
                ))
            }
        }
        col.close()?;
        k += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}

/// Values and definition levels read from one column chunk, spread to one entry per row with
/// `fill` where the row holds a null.
fn spread<T: Clone>(values: Vec<T>, defs: &[i16], max_def: i16, fill: T) -> (Vec<T>, bool) {
    if max_def == 0 {
        return (values, false);
    }
    let mut it = values.into_iter();
    let mut nulls = false;
    let out = defs
        .iter()
        .map(|&d| {
            if d == max_def {
                it.next().unwrap_or_else(|| fill.clone())
            } else {
                nulls = true;
                fill.clone()
            }
        })
        .collect();
    (out, nulls)
}

fn read_chunk<T: parquet::data_type::DataType>(
    reader: &mut parquet::column::reader::ColumnReaderImpl<T>,
    max_def: i16,
) -> Result<(Vec<T::T>, Vec<i16>)> {
    let mut values = Vec::new();
    let mut defs = Vec::new();
    loop {
        let (records, _, _) = if max_def > 0 {
            reader.read_records(1 << 16, Some(&mut defs), None, &mut values)?
        } else {
            reader.read_records(1 << 16, None, None, &mut values)?
        };
        if records == 0 {
            break;
        }
    }
    Ok((values, defs))
}

/// One column as it is assembled across row groups.
enum Acc {
    F64(Vec<f64>),
    I64(Vec<i64>, Vec<bool>),
    Str(Vec<String>),
}

pub(super) fn read(f: File) -> Result<Table> {
    let reader = SerializedFileReader::new(f)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    if schema.root_schema().get_fields().len() != schema.num_columns() {
        return Err(ParquetError::General(
            "nested columns are not supported (a flat table is expected)".into(),
        ));
    }
    let mut acc: Vec<Acc> = (0..schema.num_columns())
        .map(|j| match schema.column(j).physical_type() {
            Physical::DOUBLE | Physical::FLOAT => Ok(Acc::F64(vec![])),
            Physical::INT64 | Physical::INT32 | Physical::BOOLEAN => Ok(Acc::I64(vec![], vec![])),
            Physical::BYTE_ARRAY => Ok(Acc::Str(vec![])),
            t => Err(ParquetError::General(format!(
                "column `{}`: physical type {t} is not supported",
                schema.column(j).name()
            ))),
        })
        .collect::<Result<_>>()?;
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g)?;
        for (j, a) in acc.iter_mut().enumerate() {
            let max_def = schema.column(j).max_def_level();
            match (group.get_column_reader(j)?, a) {
                (ColumnReader::DoubleColumnReader(mut r), Acc::F64(out)) => {
                    let (v, d) = read_chunk(&mut r, max_def)?;
                    out.extend(spread(v, &d, max_def, f64::NAN).0);
                }
                (ColumnReader::FloatColumnReader(mut r), Acc::F64(out)) => {
                    let (v, d) = read_chunk(&mut r, max_def)?;
                    out.extend(
                        spread(v, &d, max_def, f32::NAN)
                            .0
                            .into_iter()
                            .map(f64::from),
                    );
                }
                (ColumnReader::Int64ColumnReader(mut r), Acc::I64(out, null)) => {
                    let (v, d) = read_chunk(&mut r, max_def)?;
                    let (v, _) = spread(v.into_iter().map(Some).collect(), &d, max_def, None);
                    null.extend(v.iter().map(Option::is_none));
                    out.extend(v.into_iter().map(|x| x.unwrap_or(0)));
                }
                (ColumnReader::Int32ColumnReader(mut r), Acc::I64(out, null)) => {
                    let (v, d) = read_chunk(&mut r, max_def)?;
                    let (v, _) = spread(v.into_iter().map(Some).collect(), &d, max_def, None);
                    null.extend(v.iter().map(Option::is_none));
                    out.extend(v.into_iter().map(|x| x.map_or(0, i64::from)));
                }
                (ColumnReader::BoolColumnReader(mut r), Acc::I64(out, null)) => {
                    let (v, d) = read_chunk(&mut r, max_def)?;
                    let (v, _) = spread(v.into_iter().map(Some).collect(), &d, max_def, None);
                    null.extend(v.iter().map(Option::is_none));
                    out.extend(v.into_iter().map(|x| x.map_or(0, i64::from)));
                }
                (ColumnReader::ByteArrayColumnReader(mut r), Acc::Str(out)) => {
                    let (v, d) = read_chunk(&mut r, max_def)?;
                    let v: Vec<String> = v
                        .iter()
                        .map(|b| String::from_utf8_lossy(b.data()).into_owned())
                        .collect();
                    out.extend(spread(v, &d, max_def, String::new()).0);
                }
                _ => {
                    return Err(ParquetError::General(format!(
                        "column `{}`: unexpected reader type",
                        schema.column(j).name()
                    )))
                }
            }
        }
    }
    let mut table = Table::new();
    for (j, a) in acc.into_iter().enumerate() {
        let col = match a {
            Acc::F64(v) => Column::F64(v),
            Acc::I64(v, null) if null.iter().any(|&n| n) => Column::F64(
                v.iter()
                    .zip(&null)
                    .map(|(&x, &n)| if n { f64::NAN } else { x as f64 })
                    .collect(),
            ),
            Acc::I64(v, _) => Column::I64(v),
            Acc::Str(v) => Column::Str(v),
        };
        table.push(schema.column(j).name().to_string(), col);
    }
    Ok(table)
}
