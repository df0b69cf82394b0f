//! The device code path every GPU computation shares (wgpu compute shaders, f32): opening the
//! first Vulkan (Metal, DX12) adapter, compiling a shader with its failures as errors, storage
//! and read-back buffers, bind groups, and the WGSL helpers (`helpers.wgsl`: the workgroup size,
//! the workgroup sum and maximum, overflow-safe tanh and sigmoid) prepended to every shader.
//!
//! Users: the trainer ([`crate::train::gpu`]), the batched Lyapunov spectra
//! ([`crate::lyapunov::gpu`]) and the batched ORGaNICs sweep ([`crate::sweep::gpu`]). In CI the
//! device is lavapipe (Mesa's software Vulkan), so every shader is tested on any machine.

use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

/// Where a computation runs: the f64 CPU code, or the f32 compute shaders.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    /// wgpu compute shaders (Vulkan; lavapipe without a GPU), float32.
    Gpu,
}

/// Threads per workgroup of every shader (`WG` in `helpers.wgsl`).
pub const WG: usize = 64;

/// The WGSL every shader starts with (see the module documentation).
pub const HELPERS: &str = include_str!("helpers.wgsl");

/// A device failure (no adapter, rejected shaders, lost device): a run failure, not bad input.
pub(crate) fn gpu_err(what: impl std::fmt::Display) -> Error {
    Error::failed("device", format!("gpu: {what}"))
}

/// The error for a kernel whose loops the device stopped early: llvmpipe (lavapipe) ends every
/// loop of a shader invocation after 65,535 iterations in total, without an error of its own
/// (`loops_cut_short` in `helpers.wgsl` detects it). `what` names the size that asked too much.
pub fn loop_cap_error(what: impl std::fmt::Display) -> Error {
    gpu_err(format!(
        "the device stopped a shader's loops early ({what}): the software Vulkan device (lavapipe) \
         caps each shader invocation at 65,535 loop iterations — use --device cpu, smaller sizes, \
         or a real GPU"
    ))
}

/// The first Vulkan (Metal, DX12) adapter with its full limits: (device, queue, adapter name).
/// A missing adapter is a run failure that says what to install.
pub fn open_device() -> Result<(wgpu::Device, wgpu::Queue, String)> {
    const NO_ADAPTER_HINT: &str = if cfg!(target_vendor = "apple") {
        "Metal is part of macOS: check that the machine has a GPU (Apple silicon or a supported AMD/Intel GPU), or run with --device cpu"
    } else if cfg!(windows) {
        "install your GPU vendor's driver (DX12 or Vulkan), or run with --device cpu"
    } else {
        "install your GPU's Vulkan driver, or mesa-vulkan-drivers (apt) for the software lavapipe device, or run with --device cpu"
    };
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        ..Default::default()
    }))
    .map_err(|e| gpu_err(format!("no GPU adapter ({e}); {}", NO_ADAPTER_HINT)))?;
    let info = adapter.get_info();
    let name = format!("{} ({:?})", info.name, info.device_type);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("neurodyn"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(gpu_err)?;
    Ok((device, queue, name))
}

/// [`HELPERS`] followed by `body`, with each `{{KEY}}` of `subst` replaced by its value.
pub fn shader(body: &str, subst: &[(&str, String)]) -> String {
    let mut src = format!("{HELPERS}\n{body}");
    for (k, v) in subst {
        src = src.replace(&format!("{{{{{k}}}}}"), v);
    }
    src
}

/// Compiles `src` and builds one pipeline per entry point, with `layout` or (None) the layout the
/// shader implies (bind group 0); anything the device rejects is an error naming `label`, not a
/// panic.
pub fn compile(
    device: &wgpu::Device,
    label: &str,
    src: &str,
    entries: &[&str],
    layout: Option<&wgpu::PipelineLayout>,
) -> Result<Vec<wgpu::ComputePipeline>> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let pipes = entries
        .iter()
        .map(|e| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(e),
                layout,
                module: &module,
                entry_point: Some(e),
                compilation_options: Default::default(),
                cache: None,
            })
        })
        .collect();
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(gpu_err(format!("the device rejected {label}: {e}")));
    }
    Ok(pipes)
}

/// A storage buffer (readable and writable by shaders, copyable both ways) holding `data`.
pub fn storage<T: bytemuck::Pod>(device: &wgpu::Device, label: &str, data: &[T]) -> wgpu::Buffer {
    let empty = [0u8; 4];
    let bytes: &[u8] = if data.is_empty() {
        &empty
    } else {
        bytemuck::cast_slice(data)
    };
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
    })
}

/// A uniform buffer holding `data`, rewritable with `queue.write_buffer`.
pub fn uniform<T: bytemuck::Pod>(device: &wgpu::Device, label: &str, data: &[T]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// A mappable buffer of `bytes` to copy results into for [`read_back`].
pub fn staging(device: &wgpu::Device, bytes: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("read-back"),
        size: bytes.max(4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The bind group 0 of `pipe` with `buffers` at bindings 0, 1, 2, … in order.
pub fn bind(
    device: &wgpu::Device,
    pipe: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let layout = pipe.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    })
}

/// The contents of a mappable (`MAP_READ`) buffer, after the queued work finishes.
pub fn read_back<T: bytemuck::Pod>(
    device: &wgpu::Device,
    staging: &wgpu::Buffer,
) -> Result<Vec<T>> {
    let slice = staging.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(gpu_err)?;
    rx.recv().map_err(gpu_err)?.map_err(gpu_err)?;
    let out = {
        let view = slice.get_mapped_range().map_err(gpu_err)?;
        bytemuck::cast_slice::<u8, T>(&view).to_vec()
    };
    staging.unmap();
    Ok(out)
}
