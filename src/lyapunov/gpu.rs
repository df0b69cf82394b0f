//! Lyapunov spectra of many networks at once on a GPU (wgpu compute shaders, f32; the trainer's
//! device code path, lavapipe in CI): the tanh maps h ← tanh(W h) of a gain sweep or of a set of
//! trained networks, one workgroup per network running the warm-up and then the tangent update
//! Z = diag(1 − h'²) W Q with a classical Gram–Schmidt QR re-orthogonalised once (CGS2) every
//! step, accumulating ln r_cc on the device (`maps.wgsl`). Only the k exponents per network come
//! back. The f64 CPU path ([`super::lyapunov_map`]) is the reference: non-chaotic spectra agree
//! to 1e-4 relative (tested).

use crate::error::{Error, Result};
use crate::gpu::{self, open_device, read_back, WG};
use faer::Mat;

/// Largest network the shader is built for (workgroup memory: N floats).
pub const MAX_N: usize = 4096;

/// The k leading exponents (per step, largest first, as [`super::lyapunov_map`] gives them) of the map h ← tanh(W h) for each
/// W in `nets` (all N × N), from h = `x0` after `warmup` steps, averaged over `steps` steps with
/// Q₀ = the first k columns of the identity and a QR every step.
pub fn tanh_map_spectra(
    nets: &[Mat<f64>],
    x0: &[f64],
    k: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let Some(first) = nets.first() else {
        return Err(Error::invalid("networks", "no networks"));
    };
    let n = first.nrows();
    if n == 0 || n > MAX_N || nets.iter().any(|w| w.nrows() != n || w.ncols() != n) {
        return Err(Error::invalid(
            "networks",
            format!("need square matrices of one size N ≤ {MAX_N}"),
        ));
    }
    if k == 0 || k > n {
        return Err(Error::invalid("k", format!("{k} (need 1 ≤ k ≤ N = {n})")));
    }
    if steps == 0 {
        return Err(Error::invalid("steps", "must be at least 1"));
    }
    crate::error::ensure_state("x0", x0, n, "network")?;
    let m = nets.len();
    crate::memory::check(
        "networks",
        (m as u128) * (n as u128) * (n as u128 + 2 * k as u128) * 4,
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
    for w in nets {
        for i in 0..n {
            wdata.extend((0..n).map(|j| w[(i, j)] as f32));
        }
    }
    let mut state = Vec::with_capacity(m * n);
    let mut q = vec![0.0f32; m * n * k];
    for net in 0..m {
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
            0,
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
    let pipe = gpu::compile(&device, "maps.wgsl", &src, &["run"], None)?.remove(0);
    let bind = gpu::bind(&device, &pipe, &[&cfg, &wb, &sb, &qb, &zb, &ab]);
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
