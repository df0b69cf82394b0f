//! The wgpu trainer (f32): the rate cell ([`RateCell`](super::cell::RateCell), Dale's law and
//! learned τ included), the gamma cell ([`GammaCell`](super::cell::GammaCell)) and the ORGaNICs
//! Euler RNN ([`OrganicsCell`](super::cell::OrganicsCell), `organics.wgsl`) and the ANRU
//! ([`AnruCell`](super::cell::AnruCell), `anru.wgsl`) with their read-out,
//! trained entirely on the device. Runs on any Vulkan device, software (lavapipe, what CI
//! tests on) or real GPUs, unchanged.
//!
//! Kernels (`cells.wgsl`): `prepare` (effective W and α), `forward` and `backward` (one workgroup
//! per trial running the whole sequence, the state in registers and the presynaptic vector in
//! workgroup memory), `gradients` (one thread per parameter, summing over every step and trial
//! the products of stored ∂L/∂a and presynaptic vectors), `adam_step`. One
//! training step is one command buffer of five dispatches; weights, Adam moments and the
//! trajectories stay on the device, and only the per-trial losses and hits come back. The layout
//! of the parameter buffer is the CPU [`SeqNet`]'s, so [`GpuTrainer::download`] gives a network the
//! f64 analyses and the checkpoints take as is.
//!
//! PyTorch's LSTM and GRU ([`LstmCell`](super::cell::LstmCell), [`GruCell`](super::cell::GruCell))
//! share `gated.wgsl`: h and c per state, the gate values and their errors per step in the work
//! buffer. The ANRU (`anru.wgsl`) keeps each unit's controller in the work buffer. Gradient clipping
//! (`set_clip`) is one more single-workgroup dispatch computing the global norm before Adam.

use super::cell::AnyCell;
use super::net::SeqNet;
use crate::data::{Batch, Targets};
use crate::error::{Error, Result};
use crate::gpu::{gpu_err, open_device, read_back, WG};
use crate::learn::Optimizer;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use wgpu::util::DeviceExt;

pub use super::shader::{f32_slot, prelude, slot, tensor_slot, GpuCell, WorkLayout, MAX_HIDDEN};

/// A device with the rate-cell trainer's pipelines, parameters and work buffers.
pub struct GpuTrainer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipes: Vec<wgpu::ComputePipeline>,
    layout: wgpu::BindGroupLayout,
    cfg: [u32; slot::COUNT],
    cfg_buf: wgpu::Buffer,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    adam: wgpu::Buffer,
    prep: wgpu::Buffer,
    data: Option<wgpu::Buffer>,
    work: Option<wgpu::Buffer>,
    bind: Option<wgpu::BindGroup>,
    /// Read-back buffer for the per-trial losses and hits (2B floats), made with the work buffer.
    staging: Option<wgpu::Buffer>,
    shape: (usize, usize),
    n: usize,
    p: usize,
    /// The cell's work-buffer layout.
    work_layout: WorkLayout,
    /// Adam steps taken (bias correction).
    pub steps: i32,
    /// The adapter, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Cpu)".
    pub adapter: String,
    template: SeqNet<f32, AnyCell>,
}

const ENTRIES: [&str; 6] = [
    "prepare",
    "forward",
    "backward",
    "gradients",
    "adam_step",
    "clip_norm",
];

impl GpuTrainer {
    /// Uploads `net` (any cell) and its Adam state to the first Vulkan adapter.
    pub fn new(net: &SeqNet<f32, AnyCell>, adam: &Optimizer) -> Result<Self> {
        use super::cell::Cell;
        let (n, n_in) = (Cell::<f32>::hidden(&net.cell), Cell::<f32>::n_in(&net.cell));
        let cell = net.cell.gpu(&net.layout)?;
        if n > MAX_HIDDEN {
            return Err(Error::invalid(
                "hidden",
                format!("{n} is above the GPU trainer's {MAX_HIDDEN}"),
            ));
        }
        let (device, queue, name) = open_device()?;
        let nmax = n.next_multiple_of(WG);
        let src = crate::gpu::shader(
            &format!(
                "{}\n{}\n{}",
                prelude(cell.slots),
                include_str!("common.wgsl"),
                cell.shader
            ),
            &[
                ("NMAX", nmax.to_string()),
                ("PER", (nmax / WG).to_string()),
                ("CMAX", net.outputs.max(1).to_string()),
            ],
        );
        // Workgroup memory: the cell's NMAX-long arrays, the reduction and the logits.
        let shared = (cell.wg_arrays * nmax + WG + net.outputs.max(1)) * 4;
        let limit = device.limits().max_compute_workgroup_storage_size as usize;
        if shared > limit {
            return Err(Error::invalid(
                "hidden",
                format!(
                    "{n} units need {shared} bytes of workgroup memory; this device has {limit}"
                ),
            ));
        }
        let storage = |binding: u32| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        entries.extend((1..=6).map(storage));
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("rate"),
            entries: &entries,
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rate"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipes =
            crate::gpu::compile(&device, "the trainer's shaders", &src, &ENTRIES, Some(&pl))?;
        let p = net.layout.len;
        let l = &net.layout;
        let mut cfg = [0u32; slot::COUNT];
        cfg[slot::N] = n as u32;
        cfg[slot::N_IN] = n_in as u32;
        cfg[slot::C] = net.outputs as u32;
        cfg[slot::P] = p as u32;
        cfg[slot::W_OUT] = tensor_slot(l, "W_out");
        cfg[slot::B_OUT] = tensor_slot(l, "b_out");
        for &(k, v) in &cell.cfg {
            cfg[k] = v;
        }
        let buf = |label: &str, data: &[f32]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
        };
        let params = buf("params", &net.params);
        // the gradient, then its global norm (for clipping)
        let grads = buf("grads", &vec![0.0; p + 1]);
        let mut moments = vec![0.0f32; 2 * p];
        if adam.m.len() == p {
            for k in 0..p {
                moments[k] = adam.m[k] as f32;
                moments[p + k] = adam.v[k] as f32;
            }
        }
        let adam_buf = buf("adam", &moments);
        // prep: W [N, N] | α [N] | Dale signs [N] | Wᵀ [N, N]; ORGaNICs: W [N, N] | κ [4, N]
        let mut prep = vec![0.0f32; 2 * n * n + 4 * n];
        for &(k, v) in &cell.prep {
            prep[k] = v;
        }
        let prep = buf("prep", &prep);
        let cfg_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cfg"),
            size: (slot::COUNT * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuTrainer {
            device,
            queue,
            pipes,
            layout,
            cfg,
            cfg_buf,
            params,
            grads,
            adam: adam_buf,
            prep,
            data: None,
            work: None,
            bind: None,
            staging: None,
            shape: (0, 0),
            n,
            p,
            work_layout: cell.work,
            steps: if adam.m.len() == p { adam.t as i32 } else { 0 },
            adapter: name,
            template: net.clone(),
        })
    }

    /// (Re)allocates the per-batch buffers for T steps × B trials.
    fn ensure(&mut self, t: usize, b: usize) -> Result<()> {
        if self.shape == (t, b) && self.bind.is_some() {
            return Ok(());
        }
        let (n, k, c) = (
            self.n,
            self.cfg[slot::N_IN] as usize,
            self.cfg[slot::C] as usize,
        );
        // data: U [T][B][N_in] | Z [T][B][C] (labels: B) | noise [T][B][N]
        let (off_u, off_z) = (0, t * b * k);
        let off_noise = off_z + t * b * c.max(1);
        let data_len = off_noise + t * b * n;
        for (slot, v) in [
            (slot::T, t),
            (slot::B, b),
            (slot::INPUTS, off_u),
            (slot::TARGETS, off_z),
            (slot::NOISE, off_noise),
        ] {
            self.cfg[slot] = v as u32;
        }
        let regions = (self.work_layout)(t, b, n, c, &self.cfg);
        let (slots, work_len) = super::shader::lay_out(&regions, t, b, c);
        for (slot, v) in slots {
            self.cfg[slot] = v as u32;
        }
        let mk = |label: &str, len: usize| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (len.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let limit = self.device.limits().max_storage_buffer_binding_size as usize;
        let need = work_len.max(data_len) * 4;
        if need > limit || work_len > u32::MAX as usize {
            return Err(Error::invalid(
                "batch",
                format!(
                    "{b} trials × {t} steps need a {:.0} MiB work buffer; this device binds at most \
                     {:.0} MiB: lower --batch",
                    need as f64 / 1048576.0,
                    limit as f64 / 1048576.0
                ),
            ));
        }
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let data = mk("data", data_len);
        let work = mk("work", work_len);
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("rate"),
            layout: &self.layout,
            entries: &[
                (0, &self.cfg_buf),
                (1, &self.params),
                (2, &self.grads),
                (3, &self.adam),
                (4, &self.prep),
                (5, &data),
                (6, &work),
            ]
            .map(|(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            }),
        });
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::invalid(
                "batch",
                format!("the device cannot hold {b} trials × {t} steps ({e}): lower --batch"),
            ));
        }
        self.staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (4 * b * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }));
        self.data = Some(data);
        self.work = Some(work);
        self.bind = Some(bind);
        self.shape = (t, b);
        Ok(())
    }

    /// Uploads a batch: inputs, targets and the recurrent noise (drawn exactly as the CPU
    /// trainer draws it, per trial from its seed, so both see the same noise).
    fn upload(&mut self, batch: &Batch<f32>) -> Result<()> {
        let (n, k, c) = (
            self.n,
            self.cfg[slot::N_IN] as usize,
            self.cfg[slot::C] as usize,
        );
        if batch.n_in != k {
            return Err(Error::invalid(
                "inputs",
                format!("the batch has {} inputs, the network {k}", batch.n_in),
            ));
        }
        let (t, b) = (batch.t, batch.b);
        self.ensure(t, b)?;
        let mut data = vec![0.0f32; self.cfg[slot::NOISE] as usize + t * b * n];
        data[..t * b * k].copy_from_slice(&batch.u);
        let off_z = self.cfg[slot::TARGETS] as usize;
        match &batch.targets {
            Targets::Class(l) => {
                self.cfg[slot::LOSS_KIND] = 0;
                for (j, &v) in l.iter().enumerate() {
                    if v >= c {
                        return Err(Error::invalid("labels", format!("label {v} ≥ {c}")));
                    }
                    data[off_z + j] = v as f32;
                }
            }
            Targets::Trajectory(z) => {
                self.cfg[slot::LOSS_KIND] = 1;
                if z.len() != t * b * c {
                    return Err(Error::invalid("targets", "need T × B × C values"));
                }
                for (d, v) in data[off_z..off_z + z.len()].iter_mut().zip(z) {
                    *d = *v as f32;
                }
            }
        }
        self.cfg[slot::NOISE_ON] = 0;
        let noise = self.template.noise;
        if let (Some(seeds), true) = (&batch.noise_seeds, noise != 0.0) {
            self.cfg[slot::NOISE_ON] = 1;
            let off = self.cfg[slot::NOISE] as usize;
            for (j, &s) in seeds.iter().enumerate() {
                let mut r = ChaCha8Rng::seed_from_u64(s);
                for ti in 0..t {
                    for i in 0..n {
                        let z: f64 = StandardNormal.sample(&mut r);
                        data[off + (ti * b + j) * n + i] = (noise as f32) * (z as f32);
                    }
                }
            }
        }
        let buf = self
            .data
            .as_ref()
            .ok_or_else(|| gpu_err("no data buffer"))?;
        self.queue.write_buffer(buf, 0, bytemuck::cast_slice(&data));
        Ok(())
    }

    fn dispatch(&self, enc: &mut wgpu::CommandEncoder, which: usize, groups: usize) {
        let bind = self.bind.as_ref().expect("ensure() ran");
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(ENTRIES[which]),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipes[which]);
        pass.set_bind_group(0, bind, &[]);
        let (x, y) = if groups <= 65535 {
            (groups, 1)
        } else {
            (65535, groups.div_ceil(65535))
        };
        pass.dispatch_workgroups(x as u32, y as u32, 1);
    }

    /// Runs the passes on an uploaded batch; `train`: also backward, gradients and Adam at `lr`.
    fn run(&mut self, batch: &Batch<f32>, grad: bool, lr: Option<f64>) -> Result<(f64, usize)> {
        self.upload(batch)?;
        let b = batch.b;
        if let Some(lr) = lr {
            self.steps += 1;
            self.cfg[slot::LR] = (lr as f32).to_bits();
            self.cfg[slot::BC1] = ((1.0 - 0.9f64.powi(self.steps)) as f32).to_bits();
            self.cfg[slot::BC2] = ((1.0 - 0.999f64.powi(self.steps)) as f32).to_bits();
        }
        self.queue
            .write_buffer(&self.cfg_buf, 0, bytemuck::cast_slice(&self.cfg));
        let work = self
            .work
            .as_ref()
            .ok_or_else(|| gpu_err("no work buffer"))?;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.clear_buffer(work, 0, None);
        let n = self.n;
        self.dispatch(&mut enc, 0, (n * n + 4 * n).div_ceil(WG));
        self.dispatch(&mut enc, 1, b);
        if grad {
            self.dispatch(&mut enc, 2, b);
            self.dispatch(&mut enc, 3, self.p.div_ceil(WG));
            if lr.is_some() {
                if self.cfg[slot::CLIP] != 0 {
                    self.dispatch(&mut enc, 5, 1);
                }
                self.dispatch(&mut enc, 4, self.p.div_ceil(WG));
            }
        }
        let off = self.cfg[slot::LOSSES] as usize * 4;
        let staging = self
            .staging
            .as_ref()
            .ok_or_else(|| gpu_err("no read-back buffer"))?;
        enc.copy_buffer_to_buffer(work, off as u64, staging, 0, (4 * b * 4) as u64);
        self.queue.submit([enc.finish()]);
        let v = self.read(staging)?;
        // The kernels' flags (common.wgsl `begin`, `end`): one left standing means a kernel
        // stopped early (lavapipe's loop cap) and the loss and gradient are not to be trusted.
        if v[2 * b..].iter().any(|&x| x != 0.0) {
            return Err(crate::gpu::loop_cap_error(format!(
                "{} steps × {b} trials of {n} units",
                batch.t
            )));
        }
        let loss = v[..b].iter().map(|&x| x as f64).sum::<f64>() / b as f64;
        let hits = v[b..2 * b].iter().filter(|&&x| x > 0.5).count();
        Ok((loss, hits))
    }

    fn read(&self, staging: &wgpu::Buffer) -> Result<Vec<f32>> {
        read_back::<f32>(&self.device, staging)
    }

    fn download_buf(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("download"),
            size: (len * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, (len * 4) as u64);
        self.queue.submit([enc.finish()]);
        self.read(&staging)
    }

    /// Mean loss and hits (class targets) of a batch, forward only.
    pub fn evaluate(&mut self, batch: &Batch<f32>) -> Result<(f64, usize)> {
        self.run(batch, false, None)
    }

    /// Mean loss and gradient of a batch (no update): what the tests compare with the CPU.
    pub fn loss_and_grad(&mut self, batch: &Batch<f32>) -> Result<(f64, Vec<f32>)> {
        let (loss, _) = self.run(batch, true, None)?;
        Ok((loss, self.download_buf(&self.grads, self.p)?))
    }

    /// Clips the gradient's global norm (over the trained parameters) to `clip` before each Adam
    /// step (None: no clipping), as the CPU trainer's `train_step` does.
    pub fn set_clip(&mut self, clip: Option<f64>) -> Result<()> {
        match clip {
            Some(c) if !(c > 0.0 && c.is_finite()) => {
                Err(Error::invalid("clip", format!("{c} (must be positive)")))
            }
            Some(c) => {
                self.cfg[slot::CLIP] = (c as f32).to_bits();
                Ok(())
            }
            None => {
                self.cfg[slot::CLIP] = 0;
                Ok(())
            }
        }
    }

    /// Adam's L2 weight decay λ (λ·θ added to the gradient after clipping, as the CPU trainer and
    /// PyTorch's `Adam(weight_decay=λ)` do).
    pub fn set_weight_decay(&mut self, weight_decay: f64) -> Result<()> {
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            return Err(Error::invalid(
                "weight_decay",
                format!("{weight_decay} (must be zero or positive)"),
            ));
        }
        self.cfg[slot::WEIGHT_DECAY] = (weight_decay as f32).to_bits();
        Ok(())
    }

    /// One Adam step on a batch at learning rate `lr`; returns (mean loss, hits) before the step.
    pub fn train_step(&mut self, batch: &Batch<f32>, lr: f64) -> Result<(f64, usize)> {
        self.run(batch, true, Some(lr))
    }

    /// The current network (and Adam state), read back from the device.
    pub fn download(&self) -> Result<(SeqNet<f32, AnyCell>, Optimizer)> {
        let mut net = self.template.clone();
        net.params = self.download_buf(&self.params, self.p)?;
        let mv = self.download_buf(&self.adam, 2 * self.p)?;
        let mut opt = Optimizer::adam(0.0);
        opt.m = mv[..self.p].iter().map(|&v| v as f64).collect();
        opt.v = mv[self.p..].iter().map(|&v| v as f64).collect();
        opt.t = self.steps as u64;
        Ok((net, opt))
    }
}
