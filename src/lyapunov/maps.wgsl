// Lyapunov spectra of many tanh maps h ← tanh(W h) at once (f32): one workgroup per network runs
// the warm-up, then every step the tangent update Z = D W Q (D = diag(1 − h'²)) and a classical
// Gram–Schmidt QR with re-orthogonalisation (CGS2) of Z into Q, accumulating ln r_cc.
// cfg[0]: n, k, warm-up steps, steps; cfg[1]: the step range of this dispatch. W row-major per
// network; Q, Z column-major per network. Prepended: the crate's helpers.wgsl (WG, wg_sum, tanh_s).

const NMAX: u32 = {{NMAX}}u;
const PER: u32 = {{PER}}u;

@group(0) @binding(0) var<uniform> cfg: array<vec4<u32>, 2>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read_write> acc: array<f32>;

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
                var a = 0.0;
                for (var j = 0u; j < n; j++) { a += w[wo + i * n + j] * h[j]; }
                hn[p] = tanh_s(a);
                d[p] = 1.0 - hn[p] * hn[p];
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
