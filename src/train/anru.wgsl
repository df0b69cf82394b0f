// GPU trainer (f32) for the ANRU of train::cell::AnruCell (Geadah et al. 2024):
//   a = U_xh u + W_hh h + b_h,  gⁱ' = tanh(u_ag aⁱ + b_g + W_gg gⁱ),
//   nⁱ = w_gn·gⁱ' + b_gn,  sⁱ = w_gs·gⁱ' + b_gs,  hⁱ' = γ(aⁱ; nⁱ, sⁱ);  read-out from h.
// One workgroup per trial; each thread owns units i and their controllers gⁱ (M values, kept in the
// work buffer). Forward stores h, g and a per step; backward stores ∂L/∂h', ∂L/∂a, ∂L/∂n, ∂L/∂s
// and ∂L/∂(controller pre-activation); the gradients kernel sums products of those with the
// presynaptic quantities over every (t, b) (and unit i for the shared controller weights).

var<workgroup> sh: array<f32, NMAX>;

fn M() -> u32 { return cu(S_M); }
// Tensor offsets 37..46: U_xh, b_h, W_hh, u_ag, b_g, W_gg, w_gn, b_gn, w_gs, b_gs.
fn T_(k: u32) -> u32 { return cu(S_TENSORS + k); }

// work regions: H [(T+1)][B][N] (17), G [(T+1)][B][N][M] (31), A [T][B][N] (18),
// DH [T][B][N] (19), EA [T][B][N] (36), DN, DS [T][B][N] (47, 48), DP [T][B][N][M] (49),
// carry [B][N][M] (50), DO (20), loss (21), hits (22)
fn hi(t: u32, b: u32, i: u32) -> u32 { return cu(S_H) + (t * B() + b) * N() + i; }
fn gi(t: u32, b: u32, i: u32, k: u32) -> u32 { return cu(S_G) + ((t * B() + b) * N() + i) * M() + k; }
fn ai(t: u32, b: u32, i: u32) -> u32 { return cu(S_A) + (t * B() + b) * N() + i; }
fn dhi(t: u32, b: u32, i: u32) -> u32 { return cu(S_DH) + (t * B() + b) * N() + i; }
fn eai(t: u32, b: u32, i: u32) -> u32 { return cu(S_EA) + (t * B() + b) * N() + i; }
fn dni(t: u32, b: u32, i: u32) -> u32 { return cu(S_DN) + (t * B() + b) * N() + i; }
fn dsi(t: u32, b: u32, i: u32) -> u32 { return cu(S_DS) + (t * B() + b) * N() + i; }
fn dpi(t: u32, b: u32, i: u32, k: u32) -> u32 { return cu(S_DP) + ((t * B() + b) * N() + i) * M() + k; }
fn ci(b: u32, i: u32, k: u32) -> u32 { return cu(S_CARRY) + (b * N() + i) * M() + k; }

// (n, s) of unit i from its controller at step t (G[t]).
fn gains(t: u32, b: u32, i: u32) -> vec2<f32> {
    var nv = params[T_(7u)];
    var sv = params[T_(9u)];
    for (var k = 0u; k < M(); k++) {
        let g = work[gi(t, b, i, k)];
        nv += params[T_(6u) + k] * g;
        sv += params[T_(8u) + k] * g;
    }
    return vec2<f32>(nv, sv);
}

@compute @workgroup_size(64)
fn prepare(@builtin(global_invocation_id) gid: vec3<u32>) {
    // nothing derived: the ANRU uses its parameters as they are
}

// The thread's units: h, and ∂L/∂h in the backward pass (the controllers g live in the work
// buffer).
var<private> hq: array<f32, PER>;
var<private> dhq: array<f32, PER>;

fn forward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        hq[q] = 0.0;
        if (i < N()) {
            work[hi(0u, b, i)] = 0.0;
            for (var k = 0u; k < M(); k++) { work[gi(0u, b, i, k)] = 0.0; }
        }
    }
}

fn forward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    let m = M();
    let nin = NIN();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) { sh[i] = hq[q]; }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var a = params[T_(1u) + i];
            for (var j = 0u; j < n; j++) { a += params[T_(2u) + i * n + j] * sh[j]; }
            for (var k = 0u; k < nin; k++) { a += params[T_(0u) + i * nin + k] * data[ui(t, b, k)]; }
            work[ai(t, b, i)] = a;
            for (var k = 0u; k < m; k++) {
                var p = params[T_(3u) + k] * a + params[T_(4u) + k];
                for (var l = 0u; l < m; l++) { p += params[T_(5u) + k * m + l] * work[gi(t, b, i, l)]; }
                work[gi(t + 1u, b, i, k)] = tanh_s(p);
            }
            let ns = gains(t + 1u, b, i);
            let hn = gam(a, ns.x, ns.y) + noise(t, b, i);
            hq[q] = hn;
            work[hi(t + 1u, b, i)] = hn;
        }
    }
    workgroupBarrier();
}

fn feature_of(q: u32) -> f32 { return hq[q]; }

fn forward_finish(lid: u32, b: u32) {}

fn backward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        dhq[q] = 0.0;
        let i = lid + q * WG;
        if (i < N()) {
            for (var k = 0u; k < M(); k++) { work[ci(b, i, k)] = 0.0; }
        }
    }
}

fn backward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    let m = M();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            let g = dfeature(t, b, i);
            let d1 = dhq[q] + g;
            work[dhi(t, b, i)] = d1;
            let a = work[ai(t, b, i)];
            let ns = gains(t + 1u, b, i);
            let dn = d1 * gam_n(a, ns.x, ns.y);
            let dsv = d1 * gam_s(a, ns.x);
            work[dni(t, b, i)] = dn;
            work[dsi(t, b, i)] = dsv;
            var da = d1 * gam_x(a, ns.x, ns.y);
            for (var k = 0u; k < m; k++) {
                let gk = work[gi(t + 1u, b, i, k)];
                let dp = (work[ci(b, i, k)] + params[T_(6u) + k] * dn + params[T_(8u) + k] * dsv) * (1.0 - gk * gk);
                work[dpi(t, b, i, k)] = dp;
                da += params[T_(3u) + k] * dp;
            }
            // carry = W_ggᵀ dpre: ∂L/∂g at step t.
            for (var l = 0u; l < m; l++) {
                var s = 0.0;
                for (var k = 0u; k < m; k++) { s += params[T_(5u) + k * m + l] * work[dpi(t, b, i, k)]; }
                work[ci(b, i, l)] = s;
            }
            work[eai(t, b, i)] = da;
            sh[i] = da;
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var s = 0.0;
            for (var k = 0u; k < n; k++) { s += params[T_(2u) + k * n + i] * sh[k]; }
            dhq[q] = s;
        }
    }
    workgroupBarrier();
}

fn gradient(k: u32) -> f32 {
    let n = N();
    let m = M();
    let nin = NIN();
    var s = 0.0;
    if (inr(k, T_(0u), n * nin)) {
        let e = k - T_(0u);
        s = sum_wu(cu(S_EA) + e / nin, n, e % nin);
    } else if (inr(k, T_(1u), n)) {
        s = sum_w(cu(S_EA) + k - T_(1u), n);
    } else if (inr(k, T_(2u), n * n)) {
        let e = k - T_(2u);
        s = sum_ww(cu(S_EA) + e / n, n, cu(S_H) + e % n, n, 0u);
    } else if (inr(k, T_(3u), m) || inr(k, T_(4u), m)) {
        let is_u = inr(k, T_(3u), m);
        var kk = k - T_(4u);
        if (is_u) { kk = k - T_(3u); }
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                for (var i = 0u; i < n; i++) {
                    var x = 1.0;
                    if (is_u) { x = work[ai(t, b, i)]; }
                    s += work[dpi(t, b, i, kk)] * x;
                }
            }
        }
    } else if (inr(k, T_(5u), m * m)) {
        let e = k - T_(5u);
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                for (var i = 0u; i < n; i++) { s += work[dpi(t, b, i, e / m)] * work[gi(t, b, i, e % m)]; }
            }
        }
    } else if (inr(k, T_(6u), m) || inr(k, T_(8u), m)) {
        let is_n = inr(k, T_(6u), m);
        var kk = k - T_(8u);
        if (is_n) { kk = k - T_(6u); }
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                for (var i = 0u; i < n; i++) {
                    var d = work[dsi(t, b, i)];
                    if (is_n) { d = work[dni(t, b, i)]; }
                    s += d * work[gi(t + 1u, b, i, kk)];
                }
            }
        }
    } else if (k == T_(7u) || k == T_(9u)) {
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) {
                for (var i = 0u; i < n; i++) {
                    if (k == T_(7u)) { s += work[dni(t, b, i)]; } else { s += work[dsi(t, b, i)]; }
                }
            }
        }
    }
    return s;
}

// Unit i's read-out feature at state t (see common.wgsl's readout_grad).
fn feature_at(t: u32, b: u32, i: u32) -> f32 { return work[hi(t, b, i)]; }

// Parameters Adam leaves alone (see common.wgsl's adam_step).
fn frozen(k: u32) -> bool {
    return false;
}
