//! Sweep trials on a GPU (wgpu compute shaders, f32; the device code path of [`crate::gpu`],
//! lavapipe in CI): one workgroup per trial runs the forward-Euler chunks (`trials.wgsl`), and at
//! the end of each chunk one thread per trial applies the same criteria as the CPU
//! ([`super::simulate_trial`]: diverging, fixed point, the periodic test; `classify.wgsl`), so
//! only a class, a chunk count, the final state and the last chunk's criterion value come back
//! per trial. The matrix draws, ρ(W), the analytic start and the f64 spectrum at a fixed point
//! stay on the CPU ([`super::run_jobs`] with `device = "gpu"`).
//!
//! f32 against f64: a trial's class can differ only where a criterion lies within f32 rounding of
//! its threshold — the fixed-point test max |x_{n+1} − x_n| < 1e-6 compares steps of states of
//! order one, whose f32 resolution is ≈ 1.2e-7 — so [`GpuTrial::criterion`] is returned for
//! every trial, and the tests list the trials where the two devices disagree together with that
//! value. The Euler step is the uniform h = chunk/(points − 1) (numpy.linspace's grid differs
//! from it in the last bits).

use super::config::Criterion;
use super::trial::{chunk_grid, Condition};
use crate::error::{Error, Result};
use crate::gpu::{self, open_device, read_back, WG};
use crate::model::organics::{Organics, Variant};

/// Largest circuit the shader is built for (workgroup memory: 2N floats).
pub const MAX_N: usize = 4096;

/// What one trial brings back from the device.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuTrial {
    pub condition: Condition,
    /// Chunks run (1 in legacy mode).
    pub chunks: usize,
    /// The final state [y; a] (f32 values).
    pub state: Vec<f64>,
    /// max |x_{n+1} − x_n| over the last chunk's criterion window (the value compared with the
    /// fixed-point threshold; NaN-free, so a diverged trial reports what it had).
    pub criterion: f64,
}

/// Loop iterations one thread runs per dispatch: llvmpipe (lavapipe) ends every loop of an
/// invocation after 65,535 iterations in total ([`crate::gpu::loop_cap_error`]), so the steps of a
/// chunk go in dispatches of at most this many; a trial whose loops were cut anyway (one step of
/// a very wide circuit) is an error, never a wrong class.
const ITERATIONS_PER_DISPATCH: usize = 30_000;

/// An opened device for sweep trials: [`SweepDevice::simulate`] runs batch after batch on it
/// (the jobs runner opens one per run, not one per batch).
pub struct SweepDevice {
    device: wgpu::Device,
    queue: wgpu::Queue,
}

impl SweepDevice {
    /// The first Vulkan (Metal, DX12) adapter ([`crate::gpu::open_device`]).
    pub fn open() -> Result<Self> {
        let (device, queue, _) = open_device()?;
        Ok(SweepDevice { device, queue })
    }

    /// [`simulate_trials`] on this device.
    pub fn simulate(
        &self,
        trials: &[(&Organics, &[f64])],
        max_chunks: usize,
        criterion: Criterion,
    ) -> Result<Vec<GpuTrial>> {
        self.simulate_budget(trials, max_chunks, criterion, ITERATIONS_PER_DISPATCH)
    }

    /// [`Self::simulate`] with `iterations` loop iterations per thread and dispatch (the tests
    /// push it past lavapipe's cap to check that the cut is reported).
    #[doc(hidden)]
    pub fn simulate_budget(
        &self,
        trials: &[(&Organics, &[f64])],
        max_chunks: usize,
        criterion: Criterion,
        iterations: usize,
    ) -> Result<Vec<GpuTrial>> {
        simulate_on(
            &self.device,
            &self.queue,
            trials,
            max_chunks,
            criterion,
            iterations,
        )
    }
}

/// Runs the trials (circuit, start) on the device: chunks of forward-Euler steps classified as
/// [`super::simulate_trial`] does (`Criterion::Adaptive`, up to `max_chunks`), or the single long
/// run of [`super::simulate_legacy`] (`Criterion::Legacy`). Every circuit must have the sweep's
/// all-to-all pool ([`Organics::pool_weight`]) and share N, the variant and the time constants'
/// range (so one step size serves all). Opens the device for this call ([`SweepDevice`] keeps it).
pub fn simulate_trials(
    trials: &[(&Organics, &[f64])],
    max_chunks: usize,
    criterion: Criterion,
) -> Result<Vec<GpuTrial>> {
    SweepDevice::open()?.simulate(trials, max_chunks, criterion)
}

fn simulate_on(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    trials: &[(&Organics, &[f64])],
    max_chunks: usize,
    criterion: Criterion,
    iterations: usize,
) -> Result<Vec<GpuTrial>> {
    let Some((first, _)) = trials.first() else {
        return Ok(vec![]);
    };
    let n = first.n();
    if n == 0 || n > MAX_N {
        return Err(Error::invalid(
            "n",
            format!("{n} (the GPU sweep takes 1 ≤ N ≤ {MAX_N})"),
        ));
    }
    if max_chunks == 0 {
        return Err(Error::invalid("max_chunks", "must be at least 1"));
    }
    let grid = chunk_grid(first);
    let mut pools = Vec::with_capacity(trials.len());
    for (k, (m, x0)) in trials.iter().enumerate() {
        if m.n() != n || m.variant != first.variant || chunk_grid(m) != grid {
            return Err(Error::invalid(
                "trials",
                format!("trial {k}: every circuit of one GPU batch needs the same N, variant and time constants"),
            ));
        }
        crate::error::ensure_state("x0", x0, 2 * n, "circuit")?;
        let c = m.pool_weight().ok_or_else(|| {
            Error::invalid(
                "trials",
                format!("trial {k}: the GPU sweep needs the all-to-all pool W = c 11ᵀ"),
            )
        })?;
        pools.push(c);
    }
    if pools.iter().any(|&c| c != pools[0]) {
        return Err(Error::invalid(
            "trials",
            "every circuit of one GPU batch needs the same pool weight c",
        ));
    }
    // The step grid: 100 τ_max chunks (adaptive) or one 200 τ_max run with the same step (legacy).
    let (h, points, chunks, window, threshold, mode) = match criterion {
        Criterion::Adaptive => {
            let (h, points) = grid;
            (h, points, max_chunks, points - points / 2, 1e-6f32, 0u32)
        }
        Criterion::Legacy => {
            let taus = || first.tau_y.iter().chain(&first.tau_a).copied();
            let (tmin, tmax) = (
                taus().fold(f64::INFINITY, f64::min),
                taus().fold(0.0, f64::max),
            );
            let span = 200.0 * tmax;
            let points = (span / (0.05 * tmin)).floor() as usize;
            (
                span / (points - 1) as f64,
                points,
                1,
                points - 2,
                1e-5f32,
                1u32,
            )
        }
    };
    let limits = device.limits();
    let max_buf = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
    let per_trial = 4 * (n * n).max(2 * points) as u64;
    let batch = ((max_buf / per_trial) as usize)
        .min(limits.max_compute_workgroups_per_dimension as usize)
        .min(8192)
        .max(1);
    crate::memory::check(
        "trials",
        (batch.min(trials.len()) as u128) * (4 * (n * n + 6 * n + 2 * points + 8)) as u128,
        None,
    )?;
    let nmax = n.next_multiple_of(WG);
    if 2 * nmax * 4 + WG * 4 > limits.max_compute_workgroup_storage_size as usize {
        return Err(Error::invalid(
            "n",
            format!("N = {n} needs more workgroup memory than this device has"),
        ));
    }
    let subst = [("NMAX", nmax.to_string()), ("PER", (nmax / WG).to_string())];
    let step_pipe = gpu::compile(
        &device,
        "trials.wgsl",
        &gpu::shader(include_str!("trials.wgsl"), &subst),
        &["steps"],
        None,
    )?
    .remove(0);
    let class_pipe = gpu::compile(
        &device,
        "classify.wgsl",
        &gpu::shader(include_str!("classify.wgsl"), &subst),
        &["classify"],
        None,
    )?
    .remove(0);
    let setup = Setup {
        device,
        queue,
        step_pipe: &step_pipe,
        class_pipe: &class_pipe,
        n,
        points,
        chunks,
        window,
        variant: first.variant,
        h: h as f32,
        c: pools[0] as f32,
        threshold,
        mode,
        iterations,
    };
    let mut out = Vec::with_capacity(trials.len());
    for part in trials.chunks(batch) {
        out.extend(setup.run(part)?);
    }
    Ok(out)
}

/// One device, its two pipelines and the grid every trial shares.
struct Setup<'a> {
    device: &'a wgpu::Device,
    queue: &'a wgpu::Queue,
    step_pipe: &'a wgpu::ComputePipeline,
    class_pipe: &'a wgpu::ComputePipeline,
    n: usize,
    points: usize,
    chunks: usize,
    window: usize,
    variant: Variant,
    h: f32,
    c: f32,
    threshold: f32,
    mode: u32,
    iterations: usize,
}

impl Setup<'_> {
    fn run(&self, trials: &[(&Organics, &[f64])]) -> Result<Vec<GpuTrial>> {
        let (device, queue, n, points) = (self.device, self.queue, self.n, self.points);
        let b = trials.len();
        let mut wr = Vec::with_capacity(b * n * n);
        let mut unit = Vec::with_capacity(b * 4 * n);
        let mut state = Vec::with_capacity(b * 2 * n);
        for (m, x0) in trials {
            // Column-major, so that the threads of a workgroup read consecutive entries.
            for j in 0..n {
                wr.extend(m.w_r.col(j).iter().map(|&v| v as f32));
            }
            unit.extend((0..n).map(|i| (m.b1[i] * m.z[i]) as f32));
            unit.extend((0..n).map(|i| (m.sigma[i] * m.b0[i]).powi(2) as f32));
            unit.extend(m.tau_y.iter().map(|t| (1.0 / t) as f32));
            unit.extend(m.tau_a.iter().map(|t| (1.0 / t) as f32));
            state.extend(x0.iter().map(|&v| v as f32));
        }
        let variant = match self.variant {
            Variant::Unrectified => 0u32,
            Variant::Rectified => 1,
            Variant::RectifiedRecurrence => 2,
        };
        let wr_b = gpu::storage(device, "wr", &wr);
        let unit_b = gpu::storage(device, "unit", &unit);
        let state_b = gpu::storage(device, "state", &state);
        let snorm_b = gpu::storage(device, "ynorm", &vec![0.0f32; b * points]);
        let crit_b = gpu::storage(device, "crit", &vec![0.0f32; b * 4]);
        let marks_b = gpu::storage(device, "marks", &vec![0u32; b * points]);
        let status_b = gpu::storage(device, "status", &vec![0u32; b * 2]);
        let active_b = gpu::storage(device, "active", &(0..b as u32).collect::<Vec<_>>());
        // The step ranges of a chunk, each with its own uniform (same for every chunk).
        let per_step = (n.div_ceil(WG)) * (n + 4) + 32;
        let span = (self.iterations / per_step).max(1);
        let steps = points - 1;
        let ranges: Vec<(usize, usize)> = (0..steps)
            .step_by(span)
            .map(|s0| (s0, (s0 + span).min(steps)))
            .collect();
        let step_cfg = |s0: usize, s1: usize, active: usize| -> [u32; 12] {
            [
                n as u32,
                points as u32,
                self.window as u32,
                variant,
                self.h.to_bits(),
                self.c.to_bits(),
                0,
                0,
                s0 as u32,
                s1 as u32,
                active as u32,
                0,
            ]
        };
        let class_cfg = |active: usize, chunk: usize| -> [u32; 8] {
            [
                points as u32,
                self.threshold.to_bits(),
                self.mode,
                0,
                active as u32,
                chunk as u32,
                self.chunks as u32,
                0,
            ]
        };
        let step_bufs: Vec<wgpu::Buffer> = ranges
            .iter()
            .map(|&(s0, s1)| gpu::uniform(device, "cfg", &step_cfg(s0, s1, b)))
            .collect();
        let step_binds: Vec<wgpu::BindGroup> = step_bufs
            .iter()
            .map(|u| {
                gpu::bind(
                    device,
                    self.step_pipe,
                    &[u, &wr_b, &unit_b, &state_b, &snorm_b, &crit_b, &active_b],
                )
            })
            .collect();
        let class_u = gpu::uniform(device, "cfg", &class_cfg(b, 1));
        let class_bind = gpu::bind(
            device,
            self.class_pipe,
            &[&class_u, &snorm_b, &crit_b, &active_b, &marks_b, &status_b],
        );
        let status_stage = gpu::staging(device, b * 2 * 4);
        let mut active: Vec<u32> = (0..b as u32).collect();
        for chunk in 1..=self.chunks {
            let na = active.len();
            queue.write_buffer(&active_b, 0, bytemuck::cast_slice(&active));
            for (u, &(s0, s1)) in step_bufs.iter().zip(&ranges) {
                queue.write_buffer(u, 0, bytemuck::cast_slice(&step_cfg(s0, s1, na)));
            }
            queue.write_buffer(&class_u, 0, bytemuck::cast_slice(&class_cfg(na, chunk)));
            let mut enc =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            for bind in &step_binds {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("sweep steps"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(self.step_pipe);
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(na as u32, 1, 1);
            }
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("sweep classify"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(self.class_pipe);
                pass.set_bind_group(0, &class_bind, &[]);
                pass.dispatch_workgroups(na.div_ceil(WG) as u32, 1, 1);
            }
            enc.copy_buffer_to_buffer(&status_b, 0, &status_stage, 0, (b * 2 * 4) as u64);
            queue.submit([enc.finish()]);
            let status = read_back::<u32>(device, &status_stage)?;
            active.retain(|&t| status[2 * t as usize] == 0);
            if active.is_empty() {
                break;
            }
        }
        // Everything back: the classes, the states and the criterion values.
        let state_stage = gpu::staging(device, b * 2 * n * 4);
        let crit_stage = gpu::staging(device, b * 4 * 4);
        let mut enc =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(&state_b, 0, &state_stage, 0, (b * 2 * n * 4) as u64);
        enc.copy_buffer_to_buffer(&crit_b, 0, &crit_stage, 0, (b * 4 * 4) as u64);
        enc.copy_buffer_to_buffer(&status_b, 0, &status_stage, 0, (b * 2 * 4) as u64);
        queue.submit([enc.finish()]);
        let states = read_back::<f32>(device, &state_stage)?;
        let crit = read_back::<f32>(device, &crit_stage)?;
        let status = read_back::<u32>(device, &status_stage)?;
        (0..b)
            .map(|t| {
                let condition = match status[2 * t] {
                    1 => Condition::Undetermined,
                    2 => Condition::Diverging,
                    3 => Condition::FixedPoint,
                    4 => Condition::Periodic,
                    5 => {
                        return Err(crate::gpu::loop_cap_error(format!(
                            "sweep trials of N = {n} with {points} steps per chunk"
                        )))
                    }
                    other => {
                        return Err(Error::failed(
                            "device",
                            format!("gpu: trial {t} came back with class code {other}"),
                        ))
                    }
                };
                Ok(GpuTrial {
                    condition,
                    chunks: status[2 * t + 1] as usize,
                    state: states[t * 2 * n..(t + 1) * 2 * n]
                        .iter()
                        .map(|&v| v as f64)
                        .collect(),
                    criterion: crit[4 * t + 2] as f64,
                })
            })
            .collect()
    }
}
