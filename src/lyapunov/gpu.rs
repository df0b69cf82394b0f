//! Lyapunov spectra of many networks at once on a GPU (wgpu compute shaders, f32; the trainer's
//! device code path, lavapipe in CI): the tanh maps h ← tanh(W h) of a gain sweep or of a set of
//! trained networks, one workgroup per network running the warm-up and then the tangent update
//! Z = diag(1 − h'²) W Q with a classical Gram–Schmidt QR re-orthogonalised once (CGS2) every
//! step, accumulating ln r_cc on the device (`maps.wgsl`). Only the k exponents per network come
//! back. The f64 CPU path ([`super::lyapunov_map`]) is the reference: non-chaotic spectra agree
//! to 1e-4 relative (tested).

use crate::error::{Error, Result};
use crate::train::gpu::{open_device, read_back};
use faer::Mat;
use wgpu::util::DeviceExt;

const WG: usize = 64;

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
    let src = include_str!("maps.wgsl")
        .replace("{{NMAX}}", &nmax.to_string())
        .replace("{{PER}}", &(nmax / WG).to_string());
    let limit = device.limits().max_compute_workgroup_storage_size as usize;
    if (nmax + WG) * 4 > limit {
        return Err(Error::invalid(
            "networks",
            format!("N = {n} needs more workgroup memory than this device's {limit} bytes"),
        ));
    }
    let f32s = |v: &mut Vec<f32>, w: &Mat<f64>| {
        for i in 0..n {
            for j in 0..n {
                v.push(w[(i, j)] as f32);
            }
        }
    };
    let mut wdata = Vec::with_capacity(m * n * n);
    for w in nets {
        f32s(&mut wdata, w);
    }
    let mut state = Vec::with_capacity(m * n);
    let mut q = vec![0.0f32; m * n * k];
    for net in 0..m {
        state.extend(x0.iter().map(|&v| v as f32));
        for c in 0..k {
            q[net * n * k + c * n + c] = 1.0;
        }
    }
    let storage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buf = |label: &str, data: &[f32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: storage,
        })
    };
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
    let cfg = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("cfg"),
        contents: bytemuck::cast_slice(&cfg_of(0, 0)),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    });
    let (wb, sb, qb) = (buf("w", &wdata), buf("state", &state), buf("q", &q));
    let zb = buf("z", &vec![0.0; m * n * k]);
    let ab = buf("acc", &vec![0.0; m * k]);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("maps.wgsl"),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let pipe = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("lyapunov"),
        layout: None,
        module: &module,
        entry_point: Some("run"),
        compilation_options: Default::default(),
        cache: None,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::failed(
            "device",
            format!("gpu: the device rejected the shader: {e}"),
        ));
    }
    let layout = pipe.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> = [&cfg, &wb, &sb, &qb, &zb, &ab]
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("lyapunov"),
        layout: &layout,
        entries: &entries,
    });
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("read-back"),
        size: (m * k * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    // Bounded work per dispatch (≈ 4·10⁵ multiply-adds per network; state, Q and the sums carry
    // over in the buffers): one dispatch running hundreds of steps at k = 5 returned sums of
    // only part of the steps on lavapipe, chunked runs match the CPU (tested).
    let per_step = (n * n * (k + 1) + n * k * k * 3).max(1);
    let chunk = (400_000 / per_step).max(1);
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
            enc.copy_buffer_to_buffer(&ab, 0, &staging, 0, (m * k * 4) as u64);
        }
        queue.submit([enc.finish()]);
        s0 = s1;
    }
    let acc = read_back(&device, &staging)?;
    Ok(acc
        .chunks_exact(k)
        .map(|c| {
            let mut e: Vec<f64> = c.iter().map(|&v| v as f64 / steps as f64).collect();
            e.sort_by(|a, b| b.total_cmp(a));
            e
        })
        .collect())
}
