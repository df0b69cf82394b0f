//! PyTorch's nn.RNN / nn.GRU / nn.LSTM state dicts as maps: the step equals torch's own forward
//! pass (fixtures written by benches/peers/torch_rnn_fixture.py, float64), the analytic Jacobians
//! match finite differences, and the layers load into fixed-points, lyapunov and simulate.

use neurodyn::model::torch_rnn::{TorchKind, TorchRnn};
use neurodyn::model::{check_map_jacobian, Map};
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn torch_layers_step_as_torch_does_and_their_jacobians_check() {
    for (name, kind) in [
        ("rnn", TorchKind::RnnTanh),
        ("gru", TorchKind::Gru),
        ("lstm", TorchKind::Lstm),
    ] {
        let m = TorchRnn::load(&fixture(&format!("torch_{name}.safetensors"))).unwrap();
        assert_eq!(m.kind, kind);
        let traj: ndarray::Array2<f64> =
            ndarray_npy::read_npy(fixture(&format!("torch_{name}_traj.npy"))).unwrap();
        let mut h: Vec<f64> = traj.row(0).to_vec();
        assert_eq!(h.len(), m.dim());
        for s in 1..traj.nrows() {
            m.step(s - 1, &mut h);
            for (a, b) in h.iter().zip(traj.row(s)) {
                assert!((a - b).abs() < 1e-12, "{name} step {s}: {a} vs {b}");
            }
        }
        // The analytic Jacobian against central differences at states along the trajectory.
        for s in [0, 3] {
            let c = check_map_jacobian(&m, 0, traj.row(s).as_slice().unwrap());
            assert!(c.passes(1e-7), "{name} at step {s}: {c:?}");
        }
    }
}

#[test]
fn torch_layers_load_into_the_analysis_binaries() {
    let d = tempfile::tempdir().unwrap();
    let fp = Command::new(env!("CARGO_BIN_EXE_fixed-points"))
        .arg("--checkpoint")
        .arg(fixture("torch_gru.safetensors"))
        .args(["--map", "--starts", "32", "-q", "--out"])
        .arg(d.path().join("fp.csv"))
        .output()
        .unwrap();
    assert!(
        fp.status.success(),
        "{}",
        String::from_utf8_lossy(&fp.stderr)
    );
    let mut rdr = csv::Reader::from_path(d.path().join("fp.csv")).unwrap();
    let h = rdr.headers().unwrap().clone();
    let res = h.iter().position(|c| c == "residual").unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert!(!rows.is_empty());
    // Each reported point is a fixed point of torch's GRU: F(h*) = h* to 1e-10.
    let m = TorchRnn::load(&fixture("torch_gru.safetensors")).unwrap();
    let x0 = h.iter().position(|c| c == "x0").unwrap();
    for r in &rows {
        assert!(r[res].parse::<f64>().unwrap() < 1e-10);
        let x: Vec<f64> = (0..8).map(|i| r[x0 + i].parse().unwrap()).collect();
        let mut y = x.clone();
        m.step(0, &mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-10);
        }
    }
    let ly = Command::new(env!("CARGO_BIN_EXE_lyapunov"))
        .arg("--checkpoint")
        .arg(fixture("torch_lstm.safetensors"))
        .args(["--steps", "2000", "--transient", "200", "-q", "--out"])
        .arg(d.path().join("ly.csv"))
        .output()
        .unwrap();
    assert!(
        ly.status.success(),
        "{}",
        String::from_utf8_lossy(&ly.stderr)
    );
    let text = std::fs::read_to_string(d.path().join("ly.csv")).unwrap();
    assert_eq!(text.lines().count(), 17, "{text}"); // 16 exponents for the 2N-state LSTM
    let sim = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .arg("--checkpoint")
        .arg(fixture("torch_rnn.safetensors"))
        .args(["-q", "--out"])
        .arg(d.path().join("sim.csv"))
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    // A continuation parameter is refused with a clear message.
    let co = Command::new(env!("CARGO_BIN_EXE_continuation"))
        .arg("--checkpoint")
        .arg(fixture("torch_rnn.safetensors"))
        .args(["--param", "input", "-q", "--out"])
        .arg(d.path().join("co.csv"))
        .output()
        .unwrap();
    assert_eq!(co.status.code(), Some(2));
}

/// The trainable `lstm` and `gru` cells are PyTorch's layers: with the fixtures' weights copied
/// in, their step equals torch's forward pass (1e-12), and their checkpoints are state dicts that
/// load as the layer's map (the same kind and weights) into the analyses.
#[test]
fn trainable_gated_cells_are_torch_layers() {
    use faer::{MatMut, MatRef};
    use neurodyn::learn::Optimizer;
    use neurodyn::tensor::real::Scratch;
    use neurodyn::train::cell::{AnyCell, Cell, GruCell, LstmCell, StepIn};
    use neurodyn::train::net::SeqNet;
    for (name, kind) in [("gru", TorchKind::Gru), ("lstm", TorchKind::Lstm)] {
        let src = fixture(&format!("torch_{name}.safetensors"));
        let tensors = neurodyn::tensor::safetensors::read_tensors(&src).unwrap();
        let m = TorchRnn::load(&src).unwrap();
        let cell = match kind {
            TorchKind::Gru => AnyCell::Gru(GruCell::new(m.n, m.k).unwrap()),
            _ => AnyCell::Lstm(LstmCell::new(m.n, m.k).unwrap()),
        };
        let mut net = SeqNet::<f64, AnyCell>::new(cell, 2).unwrap();
        for t in net.layout.tensors.clone() {
            if let Some(src) = tensors.iter().find(|s| s.0 == t.name) {
                net.params[t.range()].copy_from_slice(&src.2);
            }
        }
        let traj: ndarray::Array2<f64> =
            ndarray_npy::read_npy(fixture(&format!("torch_{name}_traj.npy"))).unwrap();
        let sd = Cell::<f64>::state_dim(&net.cell);
        assert_eq!(sd, traj.ncols());
        let prep = Cell::<f64>::prepare(&net.cell, &net.params);
        let mut ws = Scratch::new();
        let u = vec![0.0; m.k];
        let mut s: Vec<f64> = traj.row(0).to_vec();
        for k in 1..traj.nrows() {
            let mut out = vec![0.0; sd];
            let x = StepIn {
                p: &net.params,
                prep: &prep,
                s: MatRef::from_column_major_slice(&s, sd, 1),
                u: MatRef::from_column_major_slice(&u, m.k, 1),
            };
            net.cell.step(
                x,
                MatMut::from_column_major_slice_mut(&mut out, sd, 1),
                &mut ws,
            );
            for (a, b) in out.iter().zip(traj.row(k)) {
                assert!((a - b).abs() < 1e-12, "{name} step {k}: {a} vs {b}");
            }
            s = out;
        }
        let dir =
            std::env::temp_dir().join(format!("neurodyn-gated-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ck = dir.join("ck.safetensors");
        neurodyn::train::checkpoint::save(&net, &Optimizer::adam(0.01), &ck).unwrap();
        let back = TorchRnn::load(&ck).unwrap();
        assert_eq!(back.kind, kind);
        assert!(back.w_hh.as_ref() == m.w_hh.as_ref() && back.b_hh == m.b_hh);
        let (again, _) = neurodyn::train::checkpoint::load::<f64>(&ck).unwrap();
        assert!(again.params == net.params && again.cell == net.cell);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
