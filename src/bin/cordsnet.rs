//! `cordsnet`: CordsNet convolutional RNNs as dynamical systems — the layer table, matrix-free
//! spectra of convolution operators, the simulation protocol, and steady states with their
//! per-layer spectra. Argument parsing → `neurodyn::cordsnet` / `neurodyn::krylov` → exit code.

use clap::{Parser, Subcommand};
use neurodyn::cordsnet::conv::ConvOperator;
use neurodyn::cordsnet::{Arch, CordsNet};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::krylov::{arnoldi, newton_krylov, LinearOperator, NewtonKrylovOptions};
use neurodyn::model::Model;
use neurodyn::Error;
use std::path::PathBuf;

/// CordsNet (Soo, Battista, Radmard & Wang, NeurIPS 2024): convolutional RNNs analysed as
/// dynamical systems, matrix-free.
///
/// Examples: cordsnet info --arch r8
///           cordsnet spectrum --kernel K.npy --size 10 10 --m 300 --k 10 --out ritz.csv
///           cordsnet simulate --arch mnist --seed 1 --mnist 0 --out traj.csv
///           cordsnet steady-state --arch mnist --seed 1 --mnist 0 --out ss.csv
#[derive(Parser, Debug)]
#[command(name = "cordsnet", version, allow_negative_numbers = true)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// Print a machine-readable summary on stdout (status, exit code, files written).
    #[arg(long, global = true)]
    json: bool,
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct Net {
    /// Architecture preset: r8 (ImageNet), mini (the spec's X11 wiring test), mnist (depth 4).
    #[arg(long, default_value = "mnist")]
    arch: String,
    /// Weights: safetensors with the original's state-dict names (weight-normed g/V pairs or
    /// effective tensors); without it, seeded random weights (--seed).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gain of the random recurrent kernels.
    #[arg(long, default_value_t = 0.5)]
    gain: f64,
    /// The image: .npy [C, S, S] or [S, S] (already normalised).
    #[arg(long, conflicts_with = "mnist")]
    image: Option<PathBuf>,
    /// The image: test image K of the bundled MNIST slice (28 × 28, normalised with MNIST's mean
    /// and deviation; --arch mnist).
    #[arg(long)]
    mnist: Option<usize>,
}

impl Net {
    fn build(&self) -> Result<(CordsNet, Vec<f64>), Error> {
        let arch = Arch::preset(&self.arch)?;
        let net = match &self.weights {
            Some(p) => CordsNet::load(p, arch)?,
            None => CordsNet::random(arch, self.seed, self.gain)?,
        };
        let a = &net.arch;
        let n = a.img_channels * a.img_size * a.img_size;
        let img = match (&self.image, self.mnist) {
            (Some(p), _) => {
                let v: ndarray::ArrayD<f64> = neurodyn::io::read_float(p, "image")?;
                v.iter().copied().collect::<Vec<f64>>()
            }
            (None, Some(k)) => {
                if (a.img_channels, a.img_size) != (1, 28) {
                    return Err(Error::invalid(
                        "mnist",
                        format!(
                            "MNIST images are 1×28×28; --arch {} takes {}×{}×{}",
                            self.arch, a.img_channels, a.img_size, a.img_size
                        ),
                    ));
                }
                let d = neurodyn::train::data::Digits::bundled(false)?;
                if k >= d.len() {
                    return Err(Error::invalid(
                        "mnist",
                        format!("{k}: the bundled test slice has {} images", d.len()),
                    ));
                }
                d.images[k * 784..(k + 1) * 784]
                    .iter()
                    .map(|&p| (p as f64 / 255.0 - 0.1307) / 0.3081)
                    .collect()
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

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The layer table and the parameter count.
    Info {
        #[arg(long, default_value = "r8")]
        arch: String,
    },
    /// Ritz values of the stride-1, zero-padded convolution given by a C × C × k × k float64
    /// kernel on an H × W grid (Arnoldi with modified Gram–Schmidt; residual per Ritz pair).
    Spectrum {
        /// The kernel (.npy, C × C × k × k, k odd).
        #[arg(long)]
        kernel: PathBuf,
        /// Grid height and width.
        #[arg(long, num_args = 2, value_names = ["H", "W"])]
        size: Vec<usize>,
        /// Arnoldi steps.
        #[arg(long, default_value_t = 300)]
        m: usize,
        /// Ritz values written (largest modulus first).
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output table: re, im, residual.
        #[arg(long, default_value = "out/ritz.csv")]
        out: PathBuf,
    },
    /// The protocol: spontaneous steps (x = 0), then stimulus steps; per step each layer's sum
    /// of rates and the logits.
    Simulate {
        #[command(flatten)]
        net: Net,
        #[arg(long, default_value_t = 100)]
        spont: usize,
        #[arg(long, default_value_t = 100)]
        stim: usize,
        #[arg(long, default_value = "out/cordsnet_traj.csv")]
        out: PathBuf,
    },
    /// The stimulus-driven steady state by Newton–Krylov (from the end of the protocol), and the
    /// leading eigenvalues of each layer's D·K^rec there (Arnoldi).
    SteadyState {
        #[command(flatten)]
        net: Net,
        /// Arnoldi steps per layer.
        #[arg(long, default_value_t = 60)]
        m: usize,
        /// Eigenvalues written per layer.
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value = "out/cordsnet_steady.csv")]
        out: PathBuf,
    },
}

fn run(a: Args) -> Result<(), Error> {
    match a.command {
        Cmd::Info { arch } => {
            let ar = Arch::preset(&arch)?;
            ar.validate()?;
            let s = ar.sizes();
            println!("layer  C_in  C    H=W  stride  units");
            println!(
                "stem   {:<5} {:<4} {:<4} 2+2     (static)",
                ar.img_channels,
                ar.stem,
                ar.stem_size()
            );
            for l in 0..ar.depth() {
                println!(
                    "{l:<6} {:<5} {:<4} {:<4} {:<7} {}",
                    ar.in_channels(l),
                    ar.channels[l],
                    s[l],
                    ar.strides[l],
                    ar.channels[l] * s[l] * s[l]
                );
            }
            println!("recurrent units {}, parameters {}", ar.units(), ar.params());
            Ok(())
        }
        Cmd::Spectrum {
            kernel,
            size,
            m,
            k,
            seed,
            out,
        } => {
            let fmt = TableFormat::from_path(&out)?;
            neurodyn::io::check_output("out", &out)?;
            let kr: ndarray::Array4<f64> = neurodyn::io::read_float(&kernel, "kernel")?;
            let (c, c2, kh, kw) = kr.dim();
            if c != c2 || kh != kw {
                return Err(Error::invalid(
                    "kernel",
                    format!("is {c}×{c2}×{kh}×{kw}; need C×C×k×k"),
                ));
            }
            let op = ConvOperator::new(kr.iter().copied().collect(), c, kh, size[0], size[1])?;
            let t0 = std::time::Instant::now();
            let r = arnoldi(&op, m, seed)?;
            let k = k.min(r.values.len());
            let mut t = Table::new();
            t.push(
                "re",
                Column::F64(r.values[..k].iter().map(|v| v.re).collect()),
            );
            t.push(
                "im",
                Column::F64(r.values[..k].iter().map(|v| v.im).collect()),
            );
            t.push("residual", Column::F64(r.residuals[..k].to_vec()));
            t.write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "{} Arnoldi steps on N = {} in {:.2} s; |λ_max| = {:.6} (residual {:.1e}); wrote {}",
                    r.steps,
                    op.dim(),
                    t0.elapsed().as_secs_f64(),
                    r.values[0].norm(),
                    r.residuals[0],
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::Simulate {
            net,
            spont,
            stim,
            out,
        } => {
            let fmt = TableFormat::from_path(&out)?;
            neurodyn::io::check_output("out", &out)?;
            let (net, img) = net.build()?;
            let run = net.run(&img, spont, stim)?;
            let mut t = Table::new();
            t.push(
                "step",
                Column::I64((1..=run.layer_sums.len() as i64).collect()),
            );
            for l in 0..net.arch.depth() {
                t.push(
                    format!("sum_r{l}"),
                    Column::F64(run.layer_sums.iter().map(|s| s[l]).collect()),
                );
            }
            t.write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "logits after {} steps: {:?}; wrote {}",
                    spont + stim,
                    run.logits,
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::SteadyState { net, m, k, out } => {
            let fmt = TableFormat::from_path(&out)?;
            neurodyn::io::check_output("out", &out)?;
            let (net, img) = net.build()?;
            let start = net.run(&img, 0, 100)?;
            let h = net.stem_forward(&img)?;
            let flow = net.flow(&h);
            let nk = newton_krylov(&flow, &start.state, &NewtonKrylovOptions::default())?;
            if !nk.converged {
                return Err(Error::failed(
                    "steady-state",
                    format!(
                        "Newton–Krylov stopped at ‖f‖∞ = {:.2e} after {} steps",
                        nk.residual, nk.newton_steps
                    ),
                ));
            }
            // Per layer: D·K^rec at the steady state (D = active units).
            let a2 = &net.arch;
            let s = a2.sizes();
            let units = a2.layer_units();
            let mut f = vec![0.0; flow.dim()];
            flow.rhs(0.0, &nk.x, &mut f);
            let (mut layer, mut re, mut im, mut res) = (vec![], vec![], vec![], vec![]);
            let mut off = 0;
            for l in 0..a2.depth() {
                // Active where relu(pre) > 0, i.e. where r* > 0 at the steady state.
                let mask: Vec<f64> = nk.x[off..off + units[l]]
                    .iter()
                    .map(|v| if *v > 0.0 { 1.0 } else { 0.0 })
                    .collect();
                let mut op = ConvOperator::new(net.rec[l].clone(), a2.channels[l], 3, s[l], s[l])?;
                op.mask = Some(mask);
                let r = arnoldi(&op, m, l as u64)?;
                for i in 0..k.min(r.values.len()) {
                    layer.push(l as i64);
                    re.push(r.values[i].re);
                    im.push(r.values[i].im);
                    res.push(r.residuals[i]);
                }
                off += units[l];
            }
            let mut t = Table::new();
            t.push("layer", Column::I64(layer));
            t.push("re", Column::F64(re));
            t.push("im", Column::F64(im));
            t.push("residual", Column::F64(res));
            t.write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "steady state of {} units: ‖f‖∞ = {:.1e} after {} Newton steps ({} JVPs); logits {:?}; wrote {} (eigenvalues of D·K_rec per layer)",
                    flow.dim(),
                    nk.residual,
                    nk.newton_steps,
                    nk.jvps,
                    net.logits(&nk.x),
                    out.display()
                );
            }
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    neurodyn::io::stage_outputs();
    let args = Args::parse();
    let json = args.json;
    neurodyn::error::exit_with(run(args), json)
}
