//! The variational system of a flow: the state together with a frame of k tangent vectors,
//!
//! $$ \dot x = f(t, x), \qquad \dot Y = J(t, x)\, Y, \qquad Y \in \mathbb{R}^{n\times k}, $$
//!
//! as an ordinary [`Model`] of dimension n(1 + k) (state first, then Y column by column), so the
//! integrators step it like any other flow. The Lyapunov spectrum of a flow
//! ([`lyapunov_flow`](crate::lyapunov::lyapunov_flow)) is RK4 on this system plus QR.
//! `Y' = J Y` goes through [`Model::jac_mul_mat`] in one call (matrix-free where the model is).

use super::closure::fd_jacobian;
use super::Model;
use faer::{MatMut, MatRef};

/// `(x, Y)' = (f(t, x), J(t, x) Y)` for a flow `model` and a frame of `k` columns.
pub struct Variational<'a, M: Model + ?Sized> {
    pub model: &'a M,
    pub k: usize,
}

impl<'a, M: Model + ?Sized> Variational<'a, M> {
    pub fn new(model: &'a M, k: usize) -> Self {
        Variational { model, k }
    }
    /// The frame Y inside a joint state vector (n×k, column-major after the n state entries).
    pub fn frame<'b>(&self, z: &'b [f64]) -> MatRef<'b, f64> {
        let n = self.model.dim();
        MatRef::from_column_major_slice(&z[n..], n, self.k)
    }
    /// The frame Y inside a joint state vector, mutable.
    pub fn frame_mut<'b>(&self, z: &'b mut [f64]) -> MatMut<'b, f64> {
        let n = self.model.dim();
        MatMut::from_column_major_slice_mut(&mut z[n..], n, self.k)
    }
}

/// ```
/// use neurodyn::prelude::*;
/// use neurodyn::model::Variational;
/// // x' = −2x with one tangent vector: y' = −2y.
/// let f = FlowFn::new(1, |_t, x, dx| dx[0] = -2.0 * x[0]).with_jacobian(|_t, _x, mut j| j[(0, 0)] = -2.0);
/// let var = Variational::new(&f, 1);
/// let mut dz = [0.0; 2];
/// var.rhs(0.0, &[1.0, 3.0], &mut dz);
/// assert_eq!(dz, [-2.0, -6.0]);
/// ```
impl<M: Model + ?Sized> Model for Variational<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim() * (1 + self.k)
    }
    fn rhs(&self, t: f64, z: &[f64], dz: &mut [f64]) {
        let n = self.model.dim();
        let (x, y) = z.split_at(n);
        let (dx, dy) = dz.split_at_mut(n);
        self.model.rhs(t, x, dx);
        self.model.jac_mul_mat(
            t,
            x,
            MatRef::from_column_major_slice(y, n, self.k),
            MatMut::from_column_major_slice_mut(dy, n, self.k),
        );
    }
    /// The joint Jacobian involves second derivatives of f; it is formed by central differences
    /// (for checks and implicit methods on small systems; explicit steppers never call it).
    fn jacobian(&self, t: f64, z: &[f64], jac: MatMut<'_, f64>) {
        fd_jacobian(self.dim(), |z, dz| self.rhs(t, z, dz), z, jac)
    }
    fn name(&self) -> String {
        format!(
            "variational system of {} (k = {})",
            self.model.name(),
            self.k
        )
    }
}
