// GPU trainer (f32) for PyTorch's gated cells with a linear read-out of h (train::cell::lstm and
// train::cell::gru), forward and backward through time on the device:
//   LSTM (GATES = 4; i, f, g, o): a = W_ih u + b_ih + W_hh h + b_hh,
//        c' = σ(a_f) c + σ(a_i) tanh(a_g),  h' = σ(a_o) tanh(c')
//   GRU  (GATES = 3; r, z, n):   r = σ(a_r), z = σ(a_z) (a as above),
//        n = tanh(W_in u + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) n + z h
// One workgroup runs one trial's whole sequence, h (and c) in registers, h (forward) or the gate
// errors e (backward) in workgroup memory. Per step the work buffer keeps h, c, the gate values
// (GRU: r, z, n and W_hn h + b_hn) and e = ∂L/∂(pre-activations) (GRU: the input side; the
// recurrent side of the n gate is e_n ⊙ r). The weight gradients are then one thread per
// parameter summing over every (t, b). W_hh is read from `params` as stored ([G·N, N], row-major).

const GMAX: u32 = 4u * NMAX;
var<workgroup> sh: array<f32, GMAX>;

fn LSTM() -> bool { return cu(S_IS_LSTM) == 1u; }
fn GATES() -> u32 { return cu(S_GATES); }
fn hi(t: u32, b: u32, i: u32) -> u32 { return cu(S_H) + (t * B() + b) * N() + i; }
fn ci(t: u32, b: u32, i: u32) -> u32 { return cu(S_CC) + (t * B() + b) * N() + i; }
// Gate values / errors of step t, row r of [4N].
fn gi(t: u32, b: u32, r: u32) -> u32 { return cu(S_GA) + (t * B() + b) * 4u * N() + r; }
fn ei(t: u32, b: u32, r: u32) -> u32 { return cu(S_EA) + (t * B() + b) * 4u * N() + r; }

// Row r of W_hh · h (h in sh[0..N]) + b_hh[r].
fn rec(r: u32) -> f32 {
    let n = N();
    var a = params[cu(S_B_HH) + r];
    let off = cu(S_W_HH) + r * n;
    for (var j = 0u; j < n; j++) { a += params[off + j] * sh[j]; }
    return a;
}
// Row r of W_ih · u_t + b_ih[r].
fn inp(r: u32, t: u32, b: u32) -> f32 {
    let nin = NIN();
    var a = params[cu(S_B_IH) + r];
    let off = cu(S_W_IH) + r * nin;
    for (var k = 0u; k < nin; k++) { a += params[off + k] * data[ui(t, b, k)]; }
    return a;
}

@compute @workgroup_size(64)
fn prepare(@builtin(global_invocation_id) gid: vec3<u32>) {
    // nothing derived: the gated cells use their parameters as they are
}

// The thread's units: h and c (the LSTM's; the GRU leaves c at 0), and their errors backward.
var<private> hq: array<f32, PER>;
var<private> cq: array<f32, PER>;
var<private> dhq: array<f32, PER>;
var<private> dcq: array<f32, PER>;

fn forward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        hq[q] = 0.0;
        cq[q] = 0.0;
    }
}

// h and c of state t are stored as the step reads them; the gate values of step t after it.
fn forward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            sh[i] = hq[q];
            work[hi(t, b, i)] = hq[q];
            work[ci(t, b, i)] = cq[q];
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var hn: f32;
            if (LSTM()) {
                let ig = sigm(inp(i, t, b) + rec(i));
                let fg = sigm(inp(n + i, t, b) + rec(n + i));
                let gg = tanh_s(inp(2u * n + i, t, b) + rec(2u * n + i));
                let og = sigm(inp(3u * n + i, t, b) + rec(3u * n + i));
                cq[q] = fg * cq[q] + ig * gg;
                hn = og * tanh_s(cq[q]);
                work[gi(t, b, i)] = ig;
                work[gi(t, b, n + i)] = fg;
                work[gi(t, b, 2u * n + i)] = gg;
                work[gi(t, b, 3u * n + i)] = og;
            } else {
                let rg = sigm(inp(i, t, b) + rec(i));
                let zg = sigm(inp(n + i, t, b) + rec(n + i));
                let hh = rec(2u * n + i);
                let ng = tanh_s(inp(2u * n + i, t, b) + rg * hh);
                hn = (1.0 - zg) * ng + zg * hq[q];
                work[gi(t, b, i)] = rg;
                work[gi(t, b, n + i)] = zg;
                work[gi(t, b, 2u * n + i)] = ng;
                work[gi(t, b, 3u * n + i)] = hh;
            }
            hq[q] = hn + noise(t, b, i);
        }
    }
    workgroupBarrier();
}

fn feature_of(q: u32) -> f32 { return hq[q]; }

fn forward_finish(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < N()) {
            work[hi(T(), b, i)] = hq[q];
            work[ci(T(), b, i)] = cq[q];
        }
    }
}

fn backward_start(lid: u32, b: u32) {
    for (var q = 0u; q < PER; q++) {
        dhq[q] = 0.0;
        dcq[q] = 0.0;
    }
}

// δh (and δc) of state t+1 get the read-out's gradient, the gate errors e are formed and
// stored, and δh_t = W_hhᵀ e (+ z ⊙ δh for the GRU; the recurrent n row carries e_n ⊙ r),
// δc_t = δc̄ ⊙ f.
fn backward_step(lid: u32, b: u32, t: u32) {
    let n = N();
    let g = GATES();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            let d = dhq[q] + dfeature(t, b, i);
            if (LSTM()) {
                let ig = work[gi(t, b, i)];
                let fg = work[gi(t, b, n + i)];
                let gg = work[gi(t, b, 2u * n + i)];
                let og = work[gi(t, b, 3u * n + i)];
                let tc = tanh_s(work[ci(t + 1u, b, i)]);
                let dcb = dcq[q] + d * og * (1.0 - tc * tc);
                let e_i = dcb * gg * ig * (1.0 - ig);
                let e_f = dcb * work[ci(t, b, i)] * fg * (1.0 - fg);
                let e_g = dcb * ig * (1.0 - gg * gg);
                let e_o = d * tc * og * (1.0 - og);
                work[ei(t, b, i)] = e_i;
                work[ei(t, b, n + i)] = e_f;
                work[ei(t, b, 2u * n + i)] = e_g;
                work[ei(t, b, 3u * n + i)] = e_o;
                sh[i] = e_i;
                sh[n + i] = e_f;
                sh[2u * n + i] = e_g;
                sh[3u * n + i] = e_o;
                dcq[q] = dcb * fg;
                dhq[q] = 0.0;
            } else {
                let rg = work[gi(t, b, i)];
                let zg = work[gi(t, b, n + i)];
                let ng = work[gi(t, b, 2u * n + i)];
                let hh = work[gi(t, b, 3u * n + i)];
                let e_n = d * (1.0 - zg) * (1.0 - ng * ng);
                let e_z = d * (work[hi(t, b, i)] - ng) * zg * (1.0 - zg);
                let e_r = e_n * hh * rg * (1.0 - rg);
                work[ei(t, b, i)] = e_r;
                work[ei(t, b, n + i)] = e_z;
                work[ei(t, b, 2u * n + i)] = e_n;
                sh[i] = e_r;
                sh[n + i] = e_z;
                sh[2u * n + i] = e_n * rg;
                dhq[q] = d * zg;
            }
        }
    }
    workgroupBarrier();
    for (var q = 0u; q < PER; q++) {
        let i = lid + q * WG;
        if (i < n) {
            var s = 0.0;
            for (var r = 0u; r < g * n; r++) { s += params[cu(S_W_HH) + r * n + i] * sh[r]; }
            dhq[q] += s;
        }
    }
    workgroupBarrier();
}

// The recurrent-side error of row r at (t, b): e, with the GRU's n rows scaled by r.
fn erec(t: u32, b: u32, r: u32) -> f32 {
    let n = N();
    let e = work[ei(t, b, r)];
    if (!LSTM() && r >= 2u * n) { return e * work[gi(t, b, r - 2u * n)]; }
    return e;
}

fn gradient(k: u32) -> f32 {
    let n = N();
    let nin = NIN();
    let rows = GATES() * n;
    var s = 0.0;
    if (inr(k, cu(S_W_HH), rows * n)) {
        let e = k - cu(S_W_HH);
        let r = e / n;
        let j = e % n;
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) { s += erec(t, b, r) * work[hi(t, b, j)]; }
        }
    } else if (inr(k, cu(S_W_IH), rows * nin)) {
        let e = k - cu(S_W_IH);
        s = sum_wu(cu(S_EA) + e / nin, 4u * n, e % nin);
    } else if (inr(k, cu(S_B_IH), rows)) {
        s = sum_w(cu(S_EA) + k - cu(S_B_IH), 4u * n);
    } else if (inr(k, cu(S_B_HH), rows)) {
        let r = k - cu(S_B_HH);
        for (var t = 0u; t < T(); t++) {
            for (var b = 0u; b < B(); b++) { s += erec(t, b, r); }
        }
    }
    return s;
}

// Unit i's read-out feature at state t: h.
fn feature_at(t: u32, b: u32, i: u32) -> f32 { return work[hi(t, b, i)]; }

// Every parameter is trained.
fn frozen(k: u32) -> bool { return false; }
