//! Lyapunov spectra of many networks at once on a GPU (wgpu compute shaders, f32; the device
//! code path of [`crate::gpu`], lavapipe in CI): recurrent maps h ← φ(W h + b) — a gain sweep of
//! one network, or the checkpoints of training runs — one workgroup per network running the
//! warm-up and then the tangent update Z = diag(φ'(a)) W Q with a classical Gram–Schmidt QR
//! re-orthogonalised once (CGS2) every step, accumulating ln r_cc on the device (`maps.wgsl`).
//! Only the k exponents per network come back. φ is tanh, relu, sigmoid, softplus, linear or the
//! gamma nonlinearity with per-unit (n_i, s_i) (a trained gamma cell). The f64 CPU path
//! ([`super::lyapunov_map`]) is the reference: non-chaotic spectra agree to 1e-4 relative
//! (tested).

use crate::error::{Error, Result};
use crate::gpu::{self, open_device, read_back, WG};
use crate::model::{Activation, Layer, Map, System};
use faer::Mat;

/// Largest network the shader is built for (workgroup memory: N floats).
pub const MAX_N: usize = 4096;

/// The k leading exponents of the bias-free tanh maps h ← tanh(W h), W in `nets`, all from `x0`
/// ([`layer_spectra`]).
pub fn tanh_map_spectra(
    nets: &[Mat<f64>],
    x0: &[f64],
    k: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let zeros = vec![0.0; nets.first().map_or(0, |w| w.nrows())];
    let layers: Vec<Layer> = nets
        .iter()
        .map(|w| Layer {
            w: w.as_ref(),
            b: &zeros,
            act: Activation::Tanh,
            gamma: None,
        })
        .collect();
    layer_spectra(&layers, &vec![x0; nets.len()], k, warmup, steps)
}

/// The k leading exponents of each of `systems` (maps that are one recurrent layer,
/// [`Map::layer`], each from its own start): what `lyapunov --device gpu` runs for a gain sweep
/// or a list of checkpoints. Any other system is an error naming `device`.
pub fn system_spectra(
    systems: &[(&System, &[f64])],
    k: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let mut layers = Vec::with_capacity(systems.len());
    for (s, _) in systems {
        let layer = match s {
            System::Map(m) => m.layer(),
            System::Flow(_) => None,
        };
        layers.push(layer.ok_or_else(|| {
            Error::invalid(
                "device",
                format!(
                    "the GPU spectra run recurrent maps h ← φ(W h + b) without input; {} is not one (use --device cpu)",
                    s.name()
                ),
            )
        })?);
    }
    let x0s: Vec<&[f64]> = systems.iter().map(|(_, x)| *x).collect();
    layer_spectra(&layers, &x0s, k, warmup, steps)
}

/// The k leading exponents (per step, largest first, as [`super::lyapunov_map`] gives them) of
/// each layer h ← φ(W h + b) (all N × N and of one φ kind), from h = `x0s[i]` after `warmup`
/// steps, averaged over `steps` steps with Q₀ = the first k columns of the identity and a QR
/// every step.
pub fn layer_spectra(
    layers: &[Layer],
    x0s: &[&[f64]],
    k: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let Some(first) = layers.first() else {
        return Err(Error::invalid("networks", "no networks"));
    };
    let n = first.w.nrows();
    if n == 0
        || n > MAX_N
        || layers
            .iter()
            .any(|l| l.w.nrows() != n || l.w.ncols() != n || l.b.len() != n)
    {
        return Err(Error::invalid(
            "networks",
            format!("need square matrices of one size N ≤ {MAX_N} (and biases of length N)"),
        ));
    }
    let kind = |l: &Layer| match (l.gamma.is_some(), l.act) {
        (true, _) | (_, Activation::Gamma { .. }) => 5u32,
        (_, Activation::Tanh) => 0,
        (_, Activation::Relu) => 1,
        (_, Activation::Sigmoid) => 2,
        (_, Activation::Softplus) => 3,
        (_, Activation::Linear) => 4,
    };
    let phi = kind(first);
    if layers.iter().any(|l| kind(l) != phi) {
        return Err(Error::invalid(
            "networks",
            "every network of one GPU batch needs the same nonlinearity",
        ));
    }
    if k == 0 || k > n {
        return Err(Error::invalid("k", format!("{k} (need 1 ≤ k ≤ N = {n})")));
    }
    if steps == 0 {
        return Err(Error::invalid("steps", "must be at least 1"));
    }
    if x0s.len() != layers.len() {
        return Err(Error::invalid(
            "x0",
            format!("{} starts for {} networks", x0s.len(), layers.len()),
        ));
    }
    for x0 in x0s {
        crate::error::ensure_state("x0", x0, n, "network")?;
    }
    let m = layers.len();
    crate::memory::check(
        "networks",
        (m as u128) * (n as u128) * (n as u128 + 2 * k as u128 + 4) * 4,
        None,
    )?;
    let (device, queue, _) = open_device()?;
    let nmax = n.next_multiple_of(WG);
    let src = gpu::shader(
        include_str!("maps.wgsl"),
        &[("NMAX", nmax.to_string()), ("PER", (nmax / WG).to_string())],
    );
    let limit = device.limits().max_compute_workgroup_storage_size as usize;
    if (nmax + WG) * 4 > limit {
        return Err(Error::invalid(
            "networks",
            format!("N = {n} needs more workgroup memory than this device's {limit} bytes"),
        ));
    }
    let mut wdata = Vec::with_capacity(m * n * n);
    let mut unit = Vec::with_capacity(m * 3 * n);
    for l in layers {
        for i in 0..n {
            wdata.extend((0..n).map(|j| l.w[(i, j)] as f32));
        }
        unit.extend(l.b.iter().map(|&v| v as f32));
        match (l.gamma, l.act) {
            (Some((gn, gs)), _) => {
                unit.extend(gn.iter().map(|&v| v as f32));
                unit.extend(gs.iter().map(|&v| v as f32));
            }
            (None, Activation::Gamma { n: gn, s: gs }) => {
                unit.extend(std::iter::repeat_n(gn as f32, n));
                unit.extend(std::iter::repeat_n(gs as f32, n));
            }
            _ => unit.extend(std::iter::repeat_n(0.0f32, 2 * n)),
        }
    }
    let mut state = Vec::with_capacity(m * n);
    let mut q = vec![0.0f32; m * n * k];
    for (net, x0) in x0s.iter().enumerate() {
        state.extend(x0.iter().map(|&v| v as f32));
        for c in 0..k {
            q[net * n * k + c * n + c] = 1.0;
        }
    }
    let cfg_of = |s0: usize, s1: usize| -> [u32; 8] {
        [
            n as u32,
            k as u32,
            warmup as u32,
            steps as u32,
            s0 as u32,
            s1 as u32,
            phi,
            0,
        ]
    };
    let cfg = gpu::uniform(&device, "cfg", &cfg_of(0, 0));
    let (wb, sb, qb) = (
        gpu::storage(&device, "w", &wdata),
        gpu::storage(&device, "state", &state),
        gpu::storage(&device, "q", &q),
    );
    let zb = gpu::storage(&device, "z", &vec![0.0f32; m * n * k]);
    let ab = gpu::storage(&device, "acc", &vec![0.0f32; m * k + 1]);
    let ub = gpu::storage(&device, "unit", &unit);
    let pipe = gpu::compile(&device, "maps.wgsl", &src, &["run"], None)?.remove(0);
    let bind = gpu::bind(&device, &pipe, &[&cfg, &wb, &sb, &qb, &zb, &ab, &ub]);
    let staging = gpu::staging(&device, (m * k + 1) * 4);
    // Bounded loop iterations per thread and dispatch (state, Q and the sums carry over in the
    // buffers): llvmpipe (lavapipe) ends an invocation's loops after 65,535 iterations in total
    // ([`crate::gpu::loop_cap_error`]); a step that alone exceeds it is reported, not summed.
    let per = n.div_ceil(WG);
    let per_step = per * n * (k + 1) + k * (2 * k + 1) * (per + 8) + 8;
    let chunk = (30_000 / per_step).max(1);
    let total = warmup + steps;
    let mut s0 = 0;
    while s0 < total {
        let s1 = (s0 + chunk).min(total);
        queue.write_buffer(&cfg, 0, bytemuck::cast_slice(&cfg_of(s0, s1)));
        let mut enc =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("lyapunov"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(m as u32, 1, 1);
        }
        if s1 == total {
            enc.copy_buffer_to_buffer(&ab, 0, &staging, 0, ((m * k + 1) * 4) as u64);
        }
        queue.submit([enc.finish()]);
        s0 = s1;
    }
    let mut acc = read_back::<f32>(&device, &staging)?;
    if acc.pop() != Some(0.0) {
        return Err(crate::gpu::loop_cap_error(format!(
            "N = {n}, k = {k}: one step's tangent update"
        )));
    }
    Ok(acc
        .chunks_exact(k)
        .map(|c| {
            let mut e: Vec<f64> = c.iter().map(|&v| v as f64 / steps as f64).collect();
            e.sort_by(|a, b| b.total_cmp(a));
            e
        })
        .collect())
}
