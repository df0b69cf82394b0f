// GPU trainer (f32) for the ORGaNICs Euler RNN of train::cell::OrganicsCell (Rawat, Heeger & Martiniani 2024):
//   z = ⌊W_zx u⌋, ŷ = ⌊W_r y⌋, B_k = σ(W_bxk u + W_byk y + W_bak a),
//   y' = y + κ_y(−y + b1 z + (1 − √⌊a⌋) ŷ),  a' = a + κ_a(−a + σ² b0² + W(⌊y⌋² ⊙ ⌊a⌋)),
//   b_k' = b_k + κ_bk(−b_k + B_k),  κ = κ_max σ(θ),  W = clamp(e^{log W}, 0, 1); read-out from y.
// One workgroup per trial runs the sequence forward (storing the state and the five
// pre-activations W_zx u, W_r y, the two gain inputs and W q) and backward (storing ∂L/∂ of the
// state and of the five pre-activations); the weight gradients are then sums over (t, b) of
// products of those with the presynaptic vectors u, y, a, q, one thread per parameter.

var<workgroup> s1: array<f32, NMAX>;
var<workgroup> s2: array<f32, NMAX>;
var<workgroup> s3: array<f32, NMAX>;
var<workgroup> s4: array<f32, NMAX>;

// Tensor offsets: 37 W_zx, 38 W_r, 39 W_bx0, 40 W_by0, 41 W_ba0, 42 W_bx1, 43 W_by1, 44 W_ba1,
// 45 log_W, 46..49 θ_y, θ_a, θ_b0, θ_b1, 50..53 y0, a0, b00, b10.
fn T_(k: u32) -> u32 { return cu(S_TENSORS + k); }

fn si(t: u32, b: u32, w: u32, i: u32) -> u32 { return cu(S_S) + ((t * B() + b) * 4u + w) * N() + i; }
fn pi(t: u32, b: u32, w: u32, i: u32) -> u32 { return cu(S_PRE) + ((t * B() + b) * 5u + w) * N() + i; }
fn di(t: u32, b: u32, w: u32, i: u32) -> u32 { return cu(S_D) + ((t * B() + b) * 4u + w) * N() + i; }
fn ei(t: u32, b: u32, w: u32, i: u32) -> u32 { return cu(S_E) + ((t * B() + b) * 5u + w) * N() + i; }
fn kap(w: u32, i: u32) -> f32 { return prep[N() * N() + w * N() + i]; }
fn q_of(y: f32, a: f32) -> f32 { let r = relu(y); return r * r * relu(a); }

// W = clamp(e^{log W}, 0, 1) and κ = κ_max σ(θ).
@compute @workgroup_size(64)
fn prepare(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let k = flat(gid, nw);
    let n = N();
    if (k < n * n) {
        prep[k] = clamp(exp(params[T_(8u) + k]), 0.0, 1.0);
    } else if (k < n * n + 4u * n) {
        let e = k - n * n;
        let w = e / n;
        let i = e % n;
        var km = cf(S_KAPPA_Y);
        if (w == 1u) { km = cf(S_KAPPA_A); }
        if (w >= 2u) { km = cf(S_KAPPA_B); }
        prep[k] = km * sigm(params[T_(9u + w) + i]);
    }
}

// The thread's units: the state (y, a, b0, b1), and its error in the backward pass.
var<private> st: array<vec4<f32>, PER>;
var<private> dst: array<vec4<f32>, PER>;

fn forward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < N()) {
            st[q] = vec4<f32>(params[T_(13u) + i], params[T_(14u) + i], params[T_(15u) + i], params[T_(16u) + i]);
            for (var w = 0u; w < 4u; w++) { work[si(0u, b, w, i)] = st[q][w]; }
        }
    }
}

fn forward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    let nin = NIN();
    let sig2 = cf(S_SIGMA) * cf(S_SIGMA);
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            s1[i] = st[q].x;
            s2[i] = st[q].y;
            s3[i] = q_of(st[q].x, st[q].y);
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var pz = 0.0;
            var g0 = 0.0;
            var g1 = 0.0;
            for (var k = 0u; k < nin; k++) {
                let u = data[ui(t, b, k)];
                pz += params[T_(0u) + i * nin + k] * u;
                g0 += params[T_(2u) + i * nin + k] * u;
                g1 += params[T_(5u) + i * nin + k] * u;
            }
            var py = 0.0;
            var wq = 0.0;
            for (var j = 0u; j < n; j++) {
                let y = s1[j];
                let a = s2[j];
                py += params[T_(1u) + i * n + j] * y;
                g0 += params[T_(3u) + i * n + j] * y + params[T_(4u) + i * n + j] * a;
                g1 += params[T_(6u) + i * n + j] * y + params[T_(7u) + i * n + j] * a;
                wq += prep[i * n + j] * s3[j];
            }
            work[pi(t, b, 0u, i)] = pz;
            work[pi(t, b, 1u, i)] = py;
            work[pi(t, b, 2u, i)] = g0;
            work[pi(t, b, 3u, i)] = g1;
            work[pi(t, b, 4u, i)] = wq;
            let s = st[q];
            let z = relu(pz);
            let yh = relu(py);
            let sa = sqrt(relu(s.y));
            var yn = s.x + kap(0u, i) * (-s.x + s.w * z + (1.0 - sa) * yh);
            let an = s.y + kap(1u, i) * (-s.y + sig2 * s.z * s.z + wq);
            let b0n = s.z + kap(2u, i) * (-s.z + sigm(g0));
            let b1n = s.w + kap(3u, i) * (-s.w + sigm(g1));
            yn += noise(t, b, i);
            st[q] = vec4<f32>(yn, an, b0n, b1n);
            for (var w = 0u; w < 4u; w++) { work[si(t + 1u, b, w, i)] = st[q][w]; }
        }
    }
    workgroupBarrier();
}

fn feature_of(q: u32) -> f32 { return st[q].x; }

fn forward_finish(lid: u32, b: u32) {}

fn backward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) { dst[q] = vec4<f32>(0.0); }
}

fn backward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    let sig2 = cf(S_SIGMA) * cf(S_SIGMA);
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            let g = dfeature(t, b, i);
            let d1 = dst[q] + vec4<f32>(g, 0.0, 0.0, 0.0);
            for (var w = 0u; w < 4u; w++) { work[di(t, b, w, i)] = d1[w]; }
            let y = work[si(t, b, 0u, i)];
            let a = work[si(t, b, 1u, i)];
            let b0 = work[si(t, b, 2u, i)];
            let b1 = work[si(t, b, 3u, i)];
            let pz = work[pi(t, b, 0u, i)];
            let py = work[pi(t, b, 1u, i)];
            let sg0 = sigm(work[pi(t, b, 2u, i)]);
            let sg1 = sigm(work[pi(t, b, 3u, i)]);
            let ky = kap(0u, i);
            let ka = kap(1u, i);
            let kb0 = kap(2u, i);
            let kb1 = kap(3u, i);
            let gy = ky * d1.x;
            let ga = ka * d1.y;
            let z = relu(pz);
            let yh = relu(py);
            let sa = sqrt(relu(a));
            let e_pz = select(0.0, gy * b1, pz > 0.0);
            let e_py = select(0.0, gy * (1.0 - sa), py > 0.0);
            let e_g0 = kb0 * d1.z * sg0 * (1.0 - sg0);
            let e_g1 = kb1 * d1.w * sg1 * (1.0 - sg1);
            work[ei(t, b, 0u, i)] = e_pz;
            work[ei(t, b, 1u, i)] = e_py;
            work[ei(t, b, 2u, i)] = e_g0;
            work[ei(t, b, 3u, i)] = e_g1;
            work[ei(t, b, 4u, i)] = ga;
            s1[i] = e_py;
            s2[i] = e_g0;
            s3[i] = e_g1;
            s4[i] = ga;
            var da = (1.0 - ka) * d1.y;
            if (a > 0.0) { da += -gy * yh / (2.0 * sa); }
            dst[q] = vec4<f32>(
                (1.0 - ky) * d1.x,
                da,
                (1.0 - kb0) * d1.z + ga * 2.0 * sig2 * b0,
                (1.0 - kb1) * d1.w + gy * z,
            );
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var sy = 0.0;
            var sa = 0.0;
            var sq = 0.0;
            for (var k = 0u; k < n; k++) {
                let e1 = s1[k];
                let e2 = s2[k];
                let e3 = s3[k];
                sy += params[T_(1u) + k * n + i] * e1 + params[T_(3u) + k * n + i] * e2 + params[T_(6u) + k * n + i] * e3;
                sa += params[T_(4u) + k * n + i] * e2 + params[T_(7u) + k * n + i] * e3;
                sq += prep[k * n + i] * s4[k];
            }
            let y = relu(work[si(t, b, 0u, i)]);
            let a = work[si(t, b, 1u, i)];
            var d = dst[q];
            d.x += sy + sq * 2.0 * y * relu(a);
            d.y += sa;
            if (a > 0.0) { d.y += sq * y * y; }
            dst[q] = d;
        }
    }
    workgroupBarrier();
}

// Σ over (t, b) of a stored pre-activation gradient (slot w) times a presynaptic value.
fn sum_e(w: u32, i: u32, pre: u32, j: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < T(); t++) {
        for (var b = 0u; b < B(); b++) {
            var x: f32;
            if (pre == 0u) { x = data[ui(t, b, j)]; }
            else if (pre == 1u) { x = work[si(t, b, 0u, j)]; }
            else if (pre == 2u) { x = work[si(t, b, 1u, j)]; }
            else { x = q_of(work[si(t, b, 0u, j)], work[si(t, b, 1u, j)]); }
            s += work[ei(t, b, w, i)] * x;
        }
    }
    return s;
}

fn gradient(k: u32) -> f32 {
    let n = N();
    let nin = NIN();
    let sig2 = cf(S_SIGMA) * cf(S_SIGMA);
    var s = 0.0;
    // (matrix, e slot, presynaptic: 0 u, 1 y, 2 a, 3 q, columns)
    if (inr(k, T_(0u), n * nin)) { let e = k - T_(0u); s = sum_e(0u, e / nin, 0u, e % nin); }
    else if (inr(k, T_(1u), n * n)) { let e = k - T_(1u); s = sum_e(1u, e / n, 1u, e % n); }
    else if (inr(k, T_(2u), n * nin)) { let e = k - T_(2u); s = sum_e(2u, e / nin, 0u, e % nin); }
    else if (inr(k, T_(3u), n * n)) { let e = k - T_(3u); s = sum_e(2u, e / n, 1u, e % n); }
    else if (inr(k, T_(4u), n * n)) { let e = k - T_(4u); s = sum_e(2u, e / n, 2u, e % n); }
    else if (inr(k, T_(5u), n * nin)) { let e = k - T_(5u); s = sum_e(3u, e / nin, 0u, e % nin); }
    else if (inr(k, T_(6u), n * n)) { let e = k - T_(6u); s = sum_e(3u, e / n, 1u, e % n); }
    else if (inr(k, T_(7u), n * n)) { let e = k - T_(7u); s = sum_e(3u, e / n, 2u, e % n); }
    else if (inr(k, T_(8u), n * n)) {
        let e = k - T_(8u);
        let x = exp(params[k]);
        if (x <= 1.0) { s = sum_e(4u, e / n, 3u, e % n) * x; }
    } else if (k >= T_(9u) && k < T_(12u) + n) {
        var w = 0u;
        for (var v = 1u; v < 4u; v++) { if (k >= T_(9u + v)) { w = v; } }
        let i = k - T_(9u + w);
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                let y = work[si(t, b, 0u, i)];
                let a = work[si(t, b, 1u, i)];
                let b0 = work[si(t, b, 2u, i)];
                let b1 = work[si(t, b, 3u, i)];
                var br: f32;
                if (w == 0u) {
                    br = -y + b1 * relu(work[pi(t, b, 0u, i)]) + (1.0 - sqrt(relu(a))) * relu(work[pi(t, b, 1u, i)]);
                } else if (w == 1u) {
                    br = -a + sig2 * b0 * b0 + work[pi(t, b, 4u, i)];
                } else if (w == 2u) {
                    br = -b0 + sigm(work[pi(t, b, 2u, i)]);
                } else {
                    br = -b1 + sigm(work[pi(t, b, 3u, i)]);
                }
                s += work[di(t, b, w, i)] * br;
            }
        }
        var km = cf(S_KAPPA_Y);
        if (w == 1u) { km = cf(S_KAPPA_A); }
        if (w >= 2u) { km = cf(S_KAPPA_B); }
        let sg = sigm(params[k]);
        s *= km * sg * (1.0 - sg);
    }
    // the initial states y0, a0, b00, b10 are buffers: no gradient (as on the CPU)
    return s;
}

// Unit i's read-out feature at state t (see common.wgsl's readout_grad).
fn feature_at(t: u32, b: u32, i: u32) -> f32 { return work[si(t, b, 0u, i)]; }

// Parameters Adam leaves alone (see common.wgsl's adam_step).
fn frozen(k: u32) -> bool {
    let n = N();
    // the initial states y0, a0, b00, b10 are buffers; θ is fixed unless τ is learned
    if (k >= T_(13u) && k < T_(16u) + n) { return true; }
    return cu(S_LEARN_TAU) == 0u && k >= T_(9u) && k < T_(12u) + n;
}
