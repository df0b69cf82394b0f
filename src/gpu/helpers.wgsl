// Shared by every neurodyn shader (prepended by `gpu::shader`): the workgroup size, the
// workgroup reductions and the nonlinearities. The shaders that include it run workgroups of
// 64 threads.

const WG: u32 = 64u;

var<workgroup> red: array<f32, WG>;

fn sigm(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// tanh without overflow for large |x|.
fn tanh_s(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

// The gamma nonlinearity γ(x; n, s) = (1 − s) sp_n(x) + s σ(nx), sp_n(x) = ln(1 + e^{nx})/n
// (Geadah et al. 2024), and ∂γ/∂x.
fn sp(x: f32, n: f32) -> f32 {
    let z = n * x;
    return (max(z, 0.0) + log(1.0 + exp(-abs(z)))) / n;
}
fn gam(x: f32, n: f32, s: f32) -> f32 { return (1.0 - s) * sp(x, n) + s * sigm(n * x); }
fn gam_x(x: f32, n: f32, s: f32) -> f32 {
    let g = sigm(n * x);
    return (1.0 - s) * g + s * n * g * (1.0 - g);
}

// Sum of one value per thread over the workgroup (called in uniform control flow).
fn wg_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    var s = WG / 2u;
    loop {
        if (s == 0u) { break; }
        if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
        workgroupBarrier();
        s = s / 2u;
    }
    let out = red[0];
    workgroupBarrier();
    return out;
}

// Maximum of one value per thread over the workgroup (called in uniform control flow; NaN
// entries are dropped unless every entry is NaN).
fn wg_max(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    var s = WG / 2u;
    loop {
        if (s == 0u) { break; }
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
        workgroupBarrier();
        s = s / 2u;
    }
    let out = red[0];
    workgroupBarrier();
    return out;
}

// llvmpipe (Mesa's software Vulkan, lavapipe) stops every loop of an invocation once the
// invocation has run 65,535 loop iterations in total, silently. A kernel calls this last: true
// when this invocation hit that cap — a probe loop of max(n, 2) iterations (not a constant, so it
// is not unrolled away) then runs only once. The host turns the kernel's flag into an error.
fn loops_cut_short(n: u32) -> bool {
    let want = max(n, 2u);
    var k = 0u;
    for (var i = 0u; i < want; i++) { k++; }
    return k != want;
}
