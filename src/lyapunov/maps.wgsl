// Lyapunov spectra of many recurrent maps h ← φ(W h + b) at once (f32): one workgroup per network
// runs the warm-up, then every step the tangent update Z = D W Q (D = diag(φ'(a)), a = W h + b)
// and a classical Gram–Schmidt QR with re-orthogonalisation (CGS2) of Z into Q, accumulating
// ln r_cc. cfg[0]: n, k, warm-up steps, steps; cfg[1]: the step range of this dispatch, φ (0 tanh,
// 1 relu, 2 sigmoid, 3 softplus, 4 linear, 5 gamma with per-unit n_i, s_i). W row-major per
// network; unit[net 3N ..] = (b, n, s); Q, Z column-major per network. Prepended: the crate's
// helpers.wgsl (WG, wg_sum, tanh_s, sigm, gam, gam_x).

const NMAX: u32 = {{NMAX}}u;
const PER: u32 = {{PER}}u;

@group(0) @binding(0) var<uniform> cfg: array<vec4<u32>, 2>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read_write> acc: array<f32>;
@group(0) @binding(6) var<storage, read> unit: array<f32>;

// (φ(a), φ'(a)) of unit i of network `net`.
fn act(kind: u32, a: f32, uo: u32, n: u32, i: u32) -> vec2<f32> {
    switch kind {
        case 0u: { let t = tanh_s(a); return vec2<f32>(t, 1.0 - t * t); }
        case 1u: { return vec2<f32>(max(a, 0.0), select(0.0, 1.0, a > 0.0)); }
        case 2u: { let g = sigm(a); return vec2<f32>(g, g * (1.0 - g)); }
        case 3u: { return vec2<f32>(sp(a, 1.0), sigm(a)); }
        case 4u: { return vec2<f32>(a, 1.0); }
        default: {
            let gn = unit[uo + n + i];
            let gs = unit[uo + 2u * n + i];
            return vec2<f32>(gam(a, gn, gs), gam_x(a, gn, gs));
        }
    }
}

var<workgroup> h: array<f32, NMAX>;



@compute @workgroup_size(64)
fn run(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let net = wid.x;
    let lid = lid3.x;
    let n = cfg[0].x;
    let k = cfg[0].y;
    let warm = cfg[0].z;
    // This dispatch runs steps s0 .. s1 of the warm-up + steps sequence (state, Q and the sums
    // persist in the buffers between dispatches).
    let s0 = cfg[1].x;
    let s1 = cfg[1].y;
    let kind = cfg[1].z;
    let uo = net * 3u * n;
    let wo = net * n * n;
    let qo = net * n * k;
    for (var p = 0u; p < PER; p++) {
        let i = lid + p * WG;
        if (i < n) { h[i] = state[net * n + i]; }
    }
    workgroupBarrier();
    var steps_done = 0u;
    for (var s = s0; s < s1; s++) {
        var hn: array<f32, PER>;
        var d: array<f32, PER>;
        for (var p = 0u; p < PER; p++) {
            let i = lid + p * WG;
            if (i < n) {
                var a = unit[uo + i];
                for (var j = 0u; j < n; j++) { a += w[wo + i * n + j] * h[j]; }
                let f = act(kind, a, uo, n, i);
                hn[p] = f.x;
                d[p] = f.y;
            }
        }
        let tangent = s >= warm;
        if (tangent) {
            for (var p = 0u; p < PER; p++) {
                let i = lid + p * WG;
                if (i < n) {
                    for (var c = 0u; c < k; c++) {
                        var v = 0.0;
                        for (var j = 0u; j < n; j++) { v += w[wo + i * n + j] * q[qo + c * n + j]; }
                        z[qo + c * n + i] = d[p] * v;
                    }
                }
            }
        }
        workgroupBarrier();
        storageBarrier();
        for (var p = 0u; p < PER; p++) {
            let i = lid + p * WG;
            if (i < n) { h[i] = hn[p]; }
        }
        workgroupBarrier();
        if (tangent) {
            for (var c = 0u; c < k; c++) {
                for (var sweep = 0u; sweep < 2u; sweep++) {
                    for (var o = 0u; o < c; o++) {
                        var part = 0.0;
                        for (var p = 0u; p < PER; p++) {
                            let i = lid + p * WG;
                            if (i < n) { part += q[qo + o * n + i] * z[qo + c * n + i]; }
                        }
                        let r = wg_sum(lid, part);
                        for (var p = 0u; p < PER; p++) {
                            let i = lid + p * WG;
                            if (i < n) { z[qo + c * n + i] -= r * q[qo + o * n + i]; }
                        }
                        storageBarrier();
                    }
                }
                var part = 0.0;
                for (var p = 0u; p < PER; p++) {
                    let i = lid + p * WG;
                    if (i < n) { part += z[qo + c * n + i] * z[qo + c * n + i]; }
                }
                let nrm = sqrt(wg_sum(lid, part));
                for (var p = 0u; p < PER; p++) {
                    let i = lid + p * WG;
                    if (i < n) { q[qo + c * n + i] = z[qo + c * n + i] / nrm; }
                }
                if (lid == 0u) { acc[net * k + c] += log(nrm); }
                storageBarrier();
                workgroupBarrier();
            }
        }
        steps_done++;
    }
    for (var p = 0u; p < PER; p++) {
        let i = lid + p * WG;
        if (i < n) { state[net * n + i] = h[i]; }
    }
    // lavapipe ends an invocation's loops after 65,535 iterations (helpers.wgsl): the last entry
    // of acc flags it.
    if (steps_done != s1 - s0 || loops_cut_short(n)) { acc[arrayLength(&acc) - 1u] = 1.0; }
}
