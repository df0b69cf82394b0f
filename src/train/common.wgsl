// Shared by the trainer's shaders (prepended to cells.wgsl, organics.wgsl, anru.wgsl and
// gated.wgsl, after the crate's helpers.wgsl — WG, wg_sum, sigm, tanh_s, the gamma function): the bindings, the cfg
// accessors, the gamma nonlinearity, the read-out's loss, the trial and gradient kernels, Adam.
// cfg slots are read by name, `cu(S_W_OUT)`: the constants S_* are generated into the prelude
// from the one table the Rust side writes them with (gpu.rs `slot::COMMON` and each cell's
// `GpuCell::slots`).
//
// The kernels `forward`, `backward` and `gradients` are here; each cell's shader supplies the
// hooks they call. One workgroup runs one trial b's whole sequence; each thread owns the units
// i = lid + q·WG (q < PER) and keeps their state and errors in the cell's `var<private>` arrays.
//   forward_start(lid, b)     the initial state (and its record in the work buffer)
//   forward_step(lid, b, t)   one step t → t + 1, storing what the backward pass reads
//                             (workgroup barriers included: it ends with one)
//   feature_of(q)             the read-out feature of the thread's unit q after the step
//   forward_finish(lid, b)    what is stored after the last step
//   backward_start(lid, b)    the errors of the last state (zero: the read-out adds its own)
//   backward_step(lid, b, t)  ∂L/∂(state t + 1) → ∂L/∂(state t), storing what `gradient` sums
//                             (ends with a barrier)
//   gradient(k)               parameter k's gradient summed over every (t, b) (k below W_out)
//   feature_at(t, b, i)       unit i's read-out feature at state t (the read-out's gradient)
//   frozen(k)                 the parameters Adam leaves alone

const NMAX: u32 = {{NMAX}}u;
const PER: u32 = {{PER}}u;
const CMAX: u32 = {{CMAX}}u;

@group(0) @binding(0) var<uniform> cfg: array<vec4<u32>, 16>;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam: array<f32>;
@group(0) @binding(4) var<storage, read_write> prep: array<f32>;
@group(0) @binding(5) var<storage, read_write> data: array<f32>;
@group(0) @binding(6) var<storage, read_write> work: array<f32>;

var<workgroup> logits: array<f32, CMAX>;

fn cu(k: u32) -> u32 { return cfg[k / 4u][k % 4u]; }
fn cf(k: u32) -> f32 { return bitcast<f32>(cu(k)); }
fn N() -> u32 { return cu(S_N); }
fn NIN() -> u32 { return cu(S_N_IN); }
fn C() -> u32 { return cu(S_C); }
fn T() -> u32 { return cu(S_T); }
fn B() -> u32 { return cu(S_B); }
fn oi(t: u32, b: u32, c: u32) -> u32 { return cu(S_D_OUT) + (t * B() + b) * C() + c; }
fn ui(t: u32, b: u32, k: u32) -> u32 { return cu(S_INPUTS) + (t * B() + b) * NIN() + k; }
fn inr(k: u32, off: u32, len: u32) -> bool { return k >= off && k < off + len; }
fn flat(gid: vec3<u32>, nw: vec3<u32>) -> u32 { return gid.x + gid.y * nw.x * WG; }

fn relu(x: f32) -> f32 { return max(x, 0.0); }

// The per-trial flags after the hits (gpu.rs reads them back with the losses): a kernel working
// on trial b calls begin(lid, b) first and end(lid, b, complete) last, `complete` saying that its
// time loop ran every step. The first flag is raised by thread 0 at the start and lowered at the
// end, so an invocation that never reaches the end leaves it up; the second is raised by any
// thread whose time loop ended early or whose loops lavapipe cut short (helpers.wgsl).
fn begin(lid: u32, b: u32) { if (lid == 0u) { work[cu(S_HITS) + B() + b] = 1.0; } }
fn end(lid: u32, b: u32, complete: bool) {
    if (lid == 0u) { work[cu(S_HITS) + B() + b] = 0.0; }
    if (!complete || loops_cut_short(N())) { work[cu(S_HITS) + 2u * B() + b] = 1.0; }
}

// The recurrent noise added to unit i's next state at step t of trial b (0 when the batch has none).
fn noise(t: u32, b: u32, i: u32) -> f32 {
    if (cu(S_NOISE_ON) == 1u) { return data[cu(S_NOISE) + (t * B() + b) * N() + i]; }
    return 0.0;
}

// The gamma nonlinearity's parameter derivatives (γ, sp and ∂γ/∂x are in helpers.wgsl).
fn gam_n(x: f32, n: f32, s: f32) -> f32 {
    let z = n * x;
    let g = sigm(z);
    var d: f32;
    if (z > 0.0) { d = -x * sigm(-z) - log(1.0 + exp(-z)) / n; } else { d = x * g - sp(x, n); }
    return (1.0 - s) / n * d + s * x * g * (1.0 - g);
}
fn gam_s(x: f32, n: f32) -> f32 { return sigm(n * x) - sp(x, n); }


// Read-out o = Σ (each thread's part) + b_out at step t of trial b, its loss (returned on thread 0)
// and ∂L/∂o (stored): squared error against the targets (trajectory loss, every step), or
// cross-entropy against the label (class loss, last step; also records the hit).
fn score(lid: u32, b: u32, t: u32, parts: array<f32, CMAX>) -> f32 {
    let nc = C();
    for (var c = 0u; c < nc; c++) {
        let o = wg_sum(lid, parts[c]) + params[cu(S_B_OUT) + c];
        if (lid == 0u) { logits[c] = o; }
    }
    workgroupBarrier();
    var loss = 0.0;
    if (lid == 0u) {
        if (cu(S_LOSS_KIND) == 1u) {
            for (var c = 0u; c < nc; c++) {
                let d = logits[c] - data[cu(S_TARGETS) + (t * B() + b) * nc + c];
                loss += d * d / f32(T());
                work[oi(t, b, c)] = 2.0 * d / f32(T());
            }
        } else {
            var m = logits[0];
            var arg = 0u;
            for (var c = 1u; c < nc; c++) {
                if (logits[c] > m) { m = logits[c]; arg = c; }
            }
            var s = 0.0;
            for (var c = 0u; c < nc; c++) { s += exp(logits[c] - m); }
            let lse = m + log(s);
            let label = u32(data[cu(S_TARGETS) + b]);
            loss = lse - logits[label];
            work[cu(S_HITS) + b] = select(0.0, 1.0, arg == label);
            for (var c = 0u; c < nc; c++) {
                work[oi(t, b, c)] = exp(logits[c] - lse) - select(0.0, 1.0, c == label);
            }
        }
    }
    workgroupBarrier();
    return loss;
}

// ∂L/∂(read-out feature of unit i) at step t of trial b: Σ_c W_out[c, i] ∂L/∂o_c.
fn dfeature(t: u32, b: u32, i: u32) -> f32 {
    var g = 0.0;
    for (var c = 0u; c < C(); c++) { g += params[cu(S_W_OUT) + c * N() + i] * work[oi(t, b, c)]; }
    return g;
}

// Gradient of read-out parameter k (W_out or b_out, the last two tensors), summed over (t, b). Each
// cell's shader defines `feature_at(t, b, i)`: unit i's read-out feature at state t.
fn readout_grad(k: u32) -> f32 {
    let n = N();
    var s = 0.0;
    if (k < cu(S_B_OUT)) {
        let e = k - cu(S_W_OUT);
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) { s += work[oi(t, b, e / n)] * feature_at(t + 1u, b, e % n); }
        }
    } else {
        let c = k - cu(S_B_OUT);
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) { s += work[oi(t, b, c)]; }
        }
    }
    return s;
}

// Sums over every (t, b) for the gradients. A work region stores (t, b)'s entries from
// base + (t·B + b)·stride; `a` and `c` include the entry's offset. Σ a_t · c_{t + dt}:
fn sum_ww(a: u32, sa: u32, c: u32, sc: u32, dt: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < T(); t++) {
        for (var b = 0u; b < B(); b++) { s += work[a + (t * B() + b) * sa] * work[c + ((t + dt) * B() + b) * sc]; }
    }
    return s;
}
// Σ a_t · u_t[k] (the input k of step t).
fn sum_wu(a: u32, sa: u32, k: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < T(); t++) {
        for (var b = 0u; b < B(); b++) { s += work[a + (t * B() + b) * sa] * data[ui(t, b, k)]; }
    }
    return s;
}
// Σ a_t.
fn sum_w(a: u32, sa: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < T(); t++) {
        for (var b = 0u; b < B(); b++) { s += work[a + (t * B() + b) * sa]; }
    }
    return s;
}

// Forward through one trial's sequence (see the hooks above): the read-out and its loss after
// every step (trajectory loss) or the last (class loss), the trial's loss into the work buffer.
@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let b = wid.x;
    let lid = lid3.x;
    begin(lid, b);
    let n = N();
    let tl = T();
    let traj = cu(S_LOSS_KIND) == 1u;
    forward_start(lid, b);
    var loss = 0.0;
    var steps_done = 0u;
    for (var t = 0u; t < tl; t++) {
        forward_step(lid, b, t);
        if (traj || t + 1u == tl) {
            var parts: array<f32, CMAX>;
            for (var c = 0u; c < C(); c++) {
                for (var q = 0u; q < PER; q++) {
                    let i = lid + q * WG;
                    if (i < n) { parts[c] += params[cu(S_W_OUT) + c * n + i] * feature_of(q); }
                }
            }
            loss += score(lid, b, t, parts);
        }
        steps_done++;
    }
    forward_finish(lid, b);
    if (lid == 0u) { work[cu(S_LOSSES) + b] = loss; }
    end(lid, b, steps_done == tl);
}

// Backward through one trial's sequence, last step first.
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let b = wid.x;
    let lid = lid3.x;
    begin(lid, b);
    let tl = T();
    backward_start(lid, b);
    var steps_done = 0u;
    for (var tt = 0u; tt < tl; tt++) {
        backward_step(lid, b, tl - 1u - tt);
        steps_done++;
    }
    end(lid, b, steps_done == tl);
}

// One thread per parameter: its gradient summed over every (t, b), divided by B.
@compute @workgroup_size(64)
fn gradients(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let k = flat(gid, nw);
    if (k >= cu(S_P)) { return; }
    var s = 0.0;
    if (k >= cu(S_W_OUT)) { s = readout_grad(k); } else { s = gradient(k); }
    grads[k] = s / f32(B());
    if (loops_cut_short(N())) { work[cu(S_HITS) + 2u * B()] = 1.0; }
}

// Global norm of the trained parameters' gradient, into grads[P] (one workgroup; cfg 59 = clip).
@compute @workgroup_size(64)
fn clip_norm(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    let p = cu(S_P);
    var s = 0.0;
    for (var k = lid; k < p; k += WG) {
        if (!frozen(k)) {
            let g = grads[k];
            s += g * g;
        }
    }
    let tot = wg_sum(lid, s);
    if (lid == 0u) { grads[p] = sqrt(tot); }
}

// Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) on every trained parameter, the gradient scaled to
// global norm ≤ clip when clipping is on.
@compute @workgroup_size(64)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let k = flat(gid, nw);
    let p = cu(S_P);
    if (k >= p || frozen(k)) { return; }
    var g = grads[k];
    let c = cf(S_CLIP);
    if (c > 0.0 && grads[p] > c) { g = g * (c / grads[p]); }
    g = g + cf(S_WEIGHT_DECAY) * params[k];
    let m = 0.9 * adam[k] + 0.1 * g;
    let v = 0.999 * adam[p + k] + 0.001 * g * g;
    adam[k] = m;
    adam[p + k] = v;
    params[k] = params[k] - cf(S_LR) * (m / cf(S_BC1)) / (sqrt(v / cf(S_BC2)) + 1e-8);
}
