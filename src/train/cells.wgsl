// GPU trainer (f32) for the single-population cells of train::cell with a linear read-out:
// forward and backward through time, weight gradients and Adam, all on the device.
//   rate  (cell 0): a = W φ(x) + W_in u,     x' = x + α ⊙ (a − x),   feature φ(x)
//   gamma (cell 1): a = V h + U u + b,       h' = γ(a; n, s),          feature h
// Both read the recurrent input from a "presynaptic" vector r (φ(x) or h), so the weight
// gradients are the same sums: g_W = Σ_{t,b} e_t r_tᵀ with e = ∂L/∂a (α ⊙ δ or γ_x ⊙ δ).
//
// One workgroup runs one trial's whole sequence (forward, then backward), the state in registers
// and r (or e) in workgroup memory; the weight gradients are then one thread per parameter,
// summing over all (t, b). `params` has the CPU SeqNet's layout (offsets in cfg).

var<workgroup> r: array<f32, NMAX>;

fn xi(t: u32, b: u32, i: u32) -> u32 { return cu(S_X) + (t * B() + b) * N() + i; }
fn ai(t: u32, b: u32, i: u32) -> u32 { return cu(S_A) + (t * B() + b) * N() + i; }
fn di(t: u32, b: u32, i: u32) -> u32 { return cu(S_D) + (t * B() + b) * N() + i; }
fn ri(t: u32, b: u32, i: u32) -> u32 { return cu(S_R) + (t * B() + b) * N() + i; }
fn ei(t: u32, b: u32, i: u32) -> u32 { return cu(S_E) + (t * B() + b) * N() + i; }
fn GAMMA() -> bool { return cu(S_IS_GAMMA) == 1u; }

fn phi(x: f32) -> f32 {
    let k = cu(S_PHI);
    if (k == 0u) { return tanh_s(x); }
    if (k == 1u) { return max(x, 0.0); }
    return sigm(x);
}
fn dphi(x: f32) -> f32 {
    let k = cu(S_PHI);
    if (k == 0u) { let t = tanh_s(x); return 1.0 - t * t; }
    if (k == 1u) { return select(0.0, 1.0, x > 0.0); }
    let s = sigm(x);
    return s * (1.0 - s);
}

// Presynaptic vector / read-out feature of a state entry, and its derivative.
fn feat(x: f32) -> f32 { if (GAMMA()) { return x; } return phi(x); }
fn dfeat(x: f32) -> f32 { if (GAMMA()) { return 1.0; } return dphi(x); }

// Effective W = relu(W_raw)·diag(d) (or W_raw) and α = 1/τ(γ).
@compute @workgroup_size(64)
fn prepare(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let k = flat(gid, nw);
    let n = N();
    if (k < n * n) {
        let j = k % n;
        var w = params[cu(S_W_REC) + k];
        if (cu(S_DALE) == 1u) { w = prep[n * n + n + j] * max(w, 0.0); }
        prep[k] = w;
        // Wᵀ too: the forward pass reads it so that neighbouring threads (rows i) read
        // neighbouring addresses.
        prep[n * n + 2u * n + j * n + k / n] = w;
    } else if (k < n * n + n) {
        let i = k - n * n;
        if (GAMMA()) {
            prep[k] = 1.0;
        } else {
            let lo = cf(S_TAU_MIN);
            let hi = cf(S_TAU_MAX);
            prep[k] = 1.0 / (lo + (hi - lo) * sigm(params[cu(S_TAU_PARAM) + i]));
        }
    }
}

// The thread's units: the state x (rate) or h (gamma), and ∂L/∂x in the backward pass.
var<private> xq: array<f32, PER>;
var<private> dq: array<f32, PER>;

fn forward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        xq[q] = 0.0;
        if (i < N()) { work[xi(0u, b, i)] = 0.0; }
    }
}

fn forward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    let nin = NIN();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            let v = feat(xq[q]);
            r[i] = v;
            work[ri(t, b, i)] = v;
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var a = 0.0;
            let wt = n * n + 2u * n;
            for (var j = 0u; j < n; j++) { a += prep[wt + j * n + i] * r[j]; }
            for (var k = 0u; k < nin; k++) { a += params[cu(S_W_IN) + i * nin + k] * data[ui(t, b, k)]; }
            var xn: f32;
            if (GAMMA()) {
                a += params[cu(S_BIAS) + i];
                xn = gam(a, params[cu(S_GAMMA_N) + i], params[cu(S_GAMMA_S) + i]);
            } else {
                xn = xq[q] + prep[n * n + i] * (a - xq[q]);
            }
            work[ai(t, b, i)] = a;
            xn += noise(t, b, i);
            xq[q] = xn;
            work[xi(t + 1u, b, i)] = xn;
        }
    }
    workgroupBarrier();
}

fn feature_of(q: u32) -> f32 { return feat(xq[q]); }

fn forward_finish(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < N()) { work[ri(T(), b, i)] = feat(xq[q]); }
    }
}

fn backward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) { dq[q] = 0.0; }
}

// δ_t = ∂L/∂x_{t+1} (stored per step) gets the read-out's gradient, then
// ∂L/∂x_t = (1 − α) δ + φ'(x_t) ⊙ Wᵀ(α ⊙ δ).
fn backward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            let dn = dq[q] + dfeat(work[xi(t + 1u, b, i)]) * dfeature(t, b, i);
            work[di(t, b, i)] = dn;
            var e: f32;
            if (GAMMA()) {
                e = dn * gam_x(work[ai(t, b, i)], params[cu(S_GAMMA_N) + i], params[cu(S_GAMMA_S) + i]);
            } else {
                e = prep[n * n + i] * dn;
            }
            work[ei(t, b, i)] = e;
            r[i] = e;
            dq[q] = dn;
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var s = 0.0;
            for (var k = 0u; k < n; k++) { s += prep[k * n + i] * r[k]; }
            if (GAMMA()) {
                dq[q] = s;
            } else {
                dq[q] = (1.0 - prep[n * n + i]) * dq[q] + dphi(work[xi(t, b, i)]) * s;
            }
        }
    }
    workgroupBarrier();
}

fn gradient(k: u32) -> f32 {
    let n = N();
    let nin = NIN();
    var s = 0.0;
    if (inr(k, cu(S_W_REC), n * n)) {
        let e = k - cu(S_W_REC);
        let j = e % n;
        s = sum_ww(cu(S_E) + e / n, n, cu(S_R) + j, n, 0u);
        if (cu(S_DALE) == 1u) { s *= select(0.0, prep[n * n + n + j], params[k] > 0.0); }
    } else if (inr(k, cu(S_W_IN), n * nin)) {
        // (computed for frozen tensors too, as on the CPU; Adam skips them)
        let e = k - cu(S_W_IN);
        s = sum_wu(cu(S_E) + e / nin, n, e % nin);
    } else if (!GAMMA() && inr(k, cu(S_TAU_PARAM), n)) {
        let i = k - cu(S_TAU_PARAM);
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                s += work[di(t, b, i)] * (work[ai(t, b, i)] - work[xi(t, b, i)]);
            }
        }
        let lo = cf(S_TAU_MIN);
        let hi = cf(S_TAU_MAX);
        let sg = sigm(params[k]);
        let tau = lo + (hi - lo) * sg;
        s *= -(hi - lo) * sg * (1.0 - sg) / (tau * tau);
    } else if (GAMMA() && inr(k, cu(S_BIAS), n)) {
        s = sum_w(cu(S_E) + k - cu(S_BIAS), n);
    } else if (GAMMA() && (inr(k, cu(S_GAMMA_N), n) || inr(k, cu(S_GAMMA_S), n))) {
        let is_n = inr(k, cu(S_GAMMA_N), n);
        var i = k - cu(S_GAMMA_S);
        if (is_n) { i = k - cu(S_GAMMA_N); }
        let nn = params[cu(S_GAMMA_N) + i];
        let ss = params[cu(S_GAMMA_S) + i];
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                let a = work[ai(t, b, i)];
                var d = gam_s(a, nn);
                if (is_n) { d = gam_n(a, nn, ss); }
                s += work[di(t, b, i)] * d;
            }
        }
    }
    return s;
}

// Unit i's read-out feature at state t (see common.wgsl's readout_grad).
fn feature_at(t: u32, b: u32, i: u32) -> f32 { return work[ri(t, b, i)]; }

// Parameters Adam leaves alone (see common.wgsl's adam_step).
fn frozen(k: u32) -> bool {
    // W_in of Kim et al.'s network is fixed
    if (inr(k, cu(S_W_IN), N() * NIN()) && cu(S_FIXED_INPUT) == 1u) { return true; }
    // per-neuron parameters (rate: γ of τ; gamma: n and s) unless learned
    if (cu(S_LEARN_NL) == 0u) {
        if (!GAMMA() && inr(k, cu(S_TAU_PARAM), N())) { return true; }
        if (GAMMA() && (inr(k, cu(S_GAMMA_N), N()) || inr(k, cu(S_GAMMA_S), N()))) { return true; }
    }
    return false;
}
