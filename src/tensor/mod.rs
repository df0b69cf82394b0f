//! Tensors, below every model and trainer: the float types the trainers run in ([`Real`]: f64
//! the reference, f32 what GPUs train in) with the row-/column-major views the cells use, the
//! named layout of a flat parameter vector ([`Layout`]), and safetensors files in and out
//! ([`safetensors`]). Imports nothing above [`crate::io`].

pub mod layout;
pub mod real;
pub mod safetensors;

pub use layout::{Layout, Shape, Tensor};
pub use real::Real;
