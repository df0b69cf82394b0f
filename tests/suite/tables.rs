//! Result tables: Parquet written and read back bit for bit, files as pandas/pyarrow write them
//! (optional columns with nulls, 32-bit and boolean columns) read, CSV in the shortest round-trip form.

use neurodyn::io::{read_parquet, read_signals, Column, Table, TableFormat};
use std::path::Path;

fn mixed() -> Table {
    let mut t = Table::new();
    t.push(
        "x",
        Column::F64(vec![
            1.5,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            5e-324,
            1e-30,
            std::f64::consts::PI,
        ]),
    )
    .push("k", Column::I64(vec![0, -1, i64::MAX, i64::MIN, 7, 8, 9]))
    .push(
        "label",
        Column::Str(
            ["a", "b,c", "\"q\"", "λ", "", "line\nbreak", "z"]
                .map(String::from)
                .to_vec(),
        ),
    );
    t
}

fn bits(c: &Column) -> Vec<u64> {
    match c {
        Column::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        Column::I64(v) => v.iter().map(|&x| x as u64).collect(),
        Column::Str(_) => vec![],
    }
}

#[test]
fn parquet_round_trips_every_bit() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.parquet");
    let t = mixed();
    t.write(&p, TableFormat::Parquet).unwrap();
    let back = read_parquet(&p).unwrap();
    assert_eq!(back.ncols(), 3);
    assert_eq!(back.nrows(), 7);
    for ((na, a), (nb, b)) in t.columns.iter().zip(&back.columns) {
        assert_eq!(na, nb);
        assert_eq!(bits(a), bits(b), "column {na}");
    }
    assert_eq!(back.column("label"), t.column("label"));
    // Snappy pages and the magic at both ends.
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
    // The committed fixture (read by pandas in python/tests/test_tables.py) is this table.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tables/mixed.parquet");
    let old = read_parquet(&fixture).unwrap();
    for ((na, a), (nb, b)) in t.columns.iter().zip(&old.columns) {
        assert_eq!((na, bits(a)), (nb, bits(b)));
    }
    assert_eq!(old.column("label"), t.column("label"));
}

#[test]
fn an_empty_table_and_a_large_one_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("e.parquet");
    let mut t = Table::new();
    t.push("x", Column::F64(vec![]));
    t.write(&p, TableFormat::Parquet).unwrap();
    assert_eq!(read_parquet(&p).unwrap().nrows(), 0);
    // More rows than one read batch (65 536) and than one data page.
    let n = 200_003;
    let mut t = Table::new();
    t.push("i", Column::I64((0..n).collect()))
        .push("y", Column::F64((0..n).map(|i| (i as f64).sin()).collect()));
    t.write(&p, TableFormat::Parquet).unwrap();
    let back = read_parquet(&p).unwrap();
    assert_eq!(back.nrows(), n as usize);
    assert_eq!(back.column("i"), t.column("i"));
    assert_eq!(
        bits(back.column("y").unwrap()),
        bits(t.column("y").unwrap())
    );
}

/// Files as pyarrow writes them: every column OPTIONAL, nulls as definition levels, INT32, FLOAT
/// and BOOLEAN columns; a null float is NaN, an integer column with a null becomes floats. The
/// time column `t` has no null: read as signals, it is the time.
#[test]
fn reads_optional_columns_with_nulls_as_pandas_writes_them() {
    use parquet::data_type::{BoolType, DoubleType, FloatType, Int32Type};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = parse_message_type(
        "message schema { OPTIONAL DOUBLE t; OPTIONAL DOUBLE a; OPTIONAL INT32 b; \
         OPTIONAL FLOAT c; OPTIONAL BOOLEAN d; REQUIRED INT32 e; }",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("pandas.parquet");
    let f = std::fs::File::create(&p).unwrap();
    let mut w = SerializedFileWriter::new(f, Arc::new(schema), Default::default()).unwrap();
    // Two row groups, so that columns are assembled across them.
    for g in 0..2 {
        let mut rg = w.next_row_group().unwrap();
        let full = [1i16, 1, 1];
        let holey = [1i16, 0, 1];
        let mut k = 0;
        while let Some(mut c) = rg.next_column().unwrap() {
            match k {
                0 => c.typed::<DoubleType>().write_batch(
                    &[0.0, 0.5, 1.0].map(|x| x + g as f64),
                    Some(&full),
                    None,
                ),
                1 => c
                    .typed::<DoubleType>()
                    .write_batch(&[1.0, 3.0], Some(&holey), None),
                2 => c
                    .typed::<Int32Type>()
                    .write_batch(&[4, 6], Some(&holey), None),
                3 => c
                    .typed::<FloatType>()
                    .write_batch(&[0.25, 0.5, 0.75], Some(&full), None),
                4 => c
                    .typed::<BoolType>()
                    .write_batch(&[true, false, true], Some(&full), None),
                _ => c.typed::<Int32Type>().write_batch(&[7, 8, 9], None, None),
            }
            .unwrap();
            c.close().unwrap();
            k += 1;
        }
        rg.close().unwrap();
    }
    w.close().unwrap();
    let t = read_parquet(&p).unwrap();
    assert_eq!(t.nrows(), 6);
    let a = t.f64s("a").unwrap();
    assert!(a[1].is_nan() && a[4].is_nan());
    assert_eq!((a[0], a[2], a[3], a[5]), (1.0, 3.0, 1.0, 3.0));
    // An integer column with a null is floats with NaN (as pandas reads it).
    match t.column("b").unwrap() {
        Column::F64(v) => {
            assert_eq!((v[0], v[2]), (4.0, 6.0));
            assert!(v[1].is_nan());
        }
        c => panic!("b read as {c:?}"),
    }
    assert_eq!(t.f64s("c").unwrap()[..3], [0.25, 0.5, 0.75]);
    assert_eq!(t.column("d"), Some(&Column::I64(vec![1, 0, 1, 1, 0, 1])));
    assert_eq!(t.column("e"), Some(&Column::I64(vec![7, 8, 9, 7, 8, 9])));
    // As signals, a null is a missing sample: refused, naming the column and the row.
    let e = read_signals(&p, "input").unwrap_err().to_string();
    assert!(
        e.contains("input") && e.contains("`a`, sample 1 is NaN"),
        "{e}"
    );
}

#[test]
fn text_columns_are_not_signals() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.parquet");
    mixed().write(&p, TableFormat::Parquet).unwrap();
    let e = read_signals(&p, "input").unwrap_err().to_string();
    assert!(
        e.contains("input") && e.contains("`label`") && e.contains("text"),
        "{e}"
    );
    // A file that is not Parquet: an error naming the file, no panic.
    let junk = d.path().join("junk.parquet");
    std::fs::write(&junk, b"not parquet at all").unwrap();
    let e = read_signals(&junk, "input").unwrap_err().to_string();
    assert!(e.contains("input"), "{e}");
}

#[test]
fn csv_keeps_the_shortest_round_trip_form() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.csv");
    mixed().write(&p, TableFormat::Csv).unwrap();
    let s = std::fs::read_to_string(&p).unwrap();
    let mut lines = s.lines();
    assert_eq!(lines.next(), Some("x,k,label"));
    assert_eq!(lines.next(), Some("1.5,0,a"));
    assert_eq!(lines.next(), Some("-0.0,-1,\"b,c\""));
    assert!(s.contains("5e-324,") && s.contains("1e-30,"));
}

/// A file pandas (pyarrow) wrote: nulls, float32, bool, int32 and text columns, pandas' metadata.
#[test]
fn reads_a_file_pandas_wrote() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tables/pandas.parquet");
    let t = read_parquet(&p).unwrap();
    let names: Vec<&str> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["t", "a", "b", "c", "d", "e", "s"]);
    assert_eq!(t.f64s("t").unwrap(), [0.0, 0.5, 1.0]);
    let a = t.f64s("a").unwrap();
    assert!(a[0] == 1.0 && a[1].is_nan() && a[2] == 3.0);
    let b = t.f64s("b").unwrap();
    assert!(b[0] == 4.0 && b[1].is_nan() && b[2] == 6.0);
    assert_eq!(t.f64s("c").unwrap(), [0.25, 0.5, 0.75]);
    assert_eq!(t.column("d"), Some(&Column::I64(vec![1, 0, 1])));
    assert_eq!(t.column("e"), Some(&Column::I64(vec![7, 8, 9])));
    assert_eq!(
        t.column("s"),
        Some(&Column::Str(vec!["x".into(), String::new(), "z".into()]))
    );
}

/// The resume journal every batch job shares: rows written are read back exactly, a line cut by
/// a kill is removed (its work redone), a second run on a journal in use is refused, a corrupt
/// complete line is refused naming the file and line, and a journal of another run is refused.
#[test]
fn the_resume_journal_survives_a_kill() {
    use neurodyn::io::journal::{Journal, JournalRow};
    #[derive(Debug, PartialEq)]
    struct Row(u64, f64);
    impl JournalRow for Row {
        const FIELDS: usize = 2;
        const SHAPE: &'static str = "k,x";
        fn to_line(&self) -> String {
            format!("{},{:?}", self.0, self.1)
        }
        fn parse(f: &[&str]) -> Option<Self> {
            Some(Row(f[0].parse().ok()?, f[1].parse().ok()?))
        }
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("j.csv");
    let (mut j, done) = Journal::open::<Row>(&p, "# run a", "out", "the options").unwrap();
    assert!(done.is_empty());
    j.append(&Row(0, 0.1)).unwrap();
    j.append(&Row(1, 5e-324)).unwrap();
    j.sync().unwrap();
    drop(j);
    // A kill in the middle of the third row.
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("2,0.3");
    std::fs::write(&p, &text).unwrap();
    let (mut j, done) = Journal::open::<Row>(&p, "# run a", "out", "the options").unwrap();
    assert_eq!(done, [Row(0, 0.1), Row(1, 5e-324)]);
    j.append(&Row(2, 0.3)).unwrap();
    // A second run on the same journal while the first holds it: refused, naming the field;
    // nothing of the first run's file is touched.
    let e = Journal::open::<Row>(&p, "# run a", "out", "the options")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("out") && e.contains("in use by another run"),
        "{e}"
    );
    drop(j);
    let back: Vec<Row> = Journal::read(&p, Some("# run a"), "out", "").unwrap();
    assert_eq!(back, [Row(0, 0.1), Row(1, 5e-324), Row(2, 0.3)]);
    // Another run's journal.
    let e = Journal::open::<Row>(&p, "# run b", "out", "the options")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("out") && e.contains("different run") && e.contains("the options"),
        "{e}"
    );
    // A complete line that does not parse.
    std::fs::write(&p, "# run a\n0,0.1\n1,x\n").unwrap();
    let e = Journal::read::<Row>(&p, Some("# run a"), "out", "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("k,x"), "{e}");
    // Bytes that are not text (a foreign or damaged file): invalid input naming the line.
    std::fs::write(&p, b"# run a\n0,0.1\n1,\xff\xfe\n").unwrap();
    let e = Journal::read::<Row>(&p, Some("# run a"), "out", "").unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let e = e.to_string();
    assert!(
        e.contains("out") && e.contains("line 3") && e.contains("UTF-8"),
        "{e}"
    );
}
