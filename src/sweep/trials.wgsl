// Many ORGaNICs sweep trials at once (f32; prepended: the crate's helpers.wgsl — WG, wg_sum,
// wg_max; the classification is classify.wgsl). One workgroup per trial runs forward-Euler steps of
//   τ_y ẏ = −y + b1 z + (1 − √⌊a⌋) r(y),   τ_a ȧ = −a + (σ b0)² + c Σ_j ⌊a_j⌋ ŷ_j²
// (the sweep's all-to-all pool W = c 11ᵀ: one workgroup sum per step), keeping what the chunk's
// criteria need: the divergence flag, max |x_{n+1} − x_n| over the chunk's last floor(points/2)
// steps and ‖y‖ after every step (classify.wgsl turns them into the class).
//
// Per trial t: W_r column-major at wr[t N² ..], the unit constants at unit[t 4N ..] (b1 z,
// (σ b0)², 1/τ_y, 1/τ_a), the state [y; a] at state[t 2N ..], ‖y‖ of the chunk's rows at
// ynorm[t P ..] (P = points), crit[t 4 ..] = (max diff of the running chunk, diverged flag, max
// diff of the last finished chunk, −). `active` lists the trials of this dispatch.

const NMAX: u32 = {{NMAX}}u;
const PER: u32 = {{PER}}u;

// cfg[0] = (N, points, first step of the criterion window, variant: 0 unrectified, 1 rectified,
// 2 rectified recurrence), cfg[1] = (h, c as f32 bits, −, −), cfg[2] = (steps s0..s1 of this
// dispatch, active trials, −).
@group(0) @binding(0) var<uniform> cfg: array<vec4<u32>, 3>;
@group(0) @binding(1) var<storage, read> wr: array<f32>;
@group(0) @binding(2) var<storage, read> unit: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> ynorm: array<f32>;
@group(0) @binding(5) var<storage, read_write> crit: array<f32>;
@group(0) @binding(6) var<storage, read> running: array<u32>;

var<workgroup> yv: array<f32, NMAX>;
var<workgroup> yh: array<f32, NMAX>;

// |x| > 1e10, ±∞ or NaN, by the bits (comparisons with NaN are not reliable in WGSL).
fn bad(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x501502f9u; }

fn ycap(y: f32, variant: u32) -> f32 {
    if (variant == 0u) { return y; }
    return max(y, 0.0);
}

@compute @workgroup_size(64)
fn steps(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    if (wid.x >= cfg[2].z) { return; }
    let tr = running[wid.x];
    let n = cfg[0].x;
    let points = cfg[0].y;
    let window = cfg[0].z;
    let variant = cfg[0].w;
    let h = bitcast<f32>(cfg[1].x);
    let c = bitcast<f32>(cfg[1].y);
    let s0 = cfg[2].x;
    let s1 = cfg[2].y;
    let so = tr * 2u * n;
    let uo = tr * 4u * n;
    let wo = tr * n * n;
    let po = tr * points;
    var a: array<f32, PER>;
    var md = 0.0;
    var dv = false;
    var part = 0.0;
    for (var p = 0u; p < PER; p++) {
        let i = lid + p * WG;
        if (i < n) {
            let y = state[so + i];
            a[p] = state[so + n + i];
            yv[i] = y;
            yh[i] = ycap(y, variant);
            part += y * y;
            dv = dv || bad(y) || bad(a[p]);
        }
    }
    if (s0 == 0u) {
        // A new chunk: its first row, and the divergence test of the starting state.
        let s = sqrt(wg_sum(lid, part));
        if (lid == 0u) { ynorm[po] = s; }
    } else {
        md = crit[tr * 4u];
        dv = crit[tr * 4u + 1u] > 0.0;
    }
    workgroupBarrier();
    var steps_done = 0u;
    for (var k = s0; k < s1; k++) {
        // The pooled drive c Σ_j ⌊a_j⌋ ŷ_j².
        var pp = 0.0;
        for (var p = 0u; p < PER; p++) {
            let i = lid + p * WG;
            if (i < n) { pp += max(a[p], 0.0) * yh[i] * yh[i]; }
        }
        let pool = c * wg_sum(lid, pp);
        var yn: array<f32, PER>;
        var sq = 0.0;
        for (var p = 0u; p < PER; p++) {
            let i = lid + p * WG;
            if (i < n) {
                var r = 0.0;
                for (var j = 0u; j < n; j++) { r += wr[wo + j * n + i] * yh[j]; }
                if (variant == 2u) { r = max(r, 0.0); }
                let y = yv[i];
                let dy = (-y + unit[uo + i] + (1.0 - sqrt(max(a[p], 0.0))) * r) * unit[uo + 2u * n + i];
                let da = (-a[p] + unit[uo + n + i] + pool) * unit[uo + 3u * n + i];
                yn[p] = y + h * dy;
                let an = a[p] + h * da;
                if (k >= window) { md = max(md, max(abs(yn[p] - y), abs(an - a[p]))); }
                dv = dv || bad(yn[p]) || bad(an);
                a[p] = an;
                sq += yn[p] * yn[p];
            }
        }
        workgroupBarrier();
        for (var p = 0u; p < PER; p++) {
            let i = lid + p * WG;
            if (i < n) {
                yv[i] = yn[p];
                yh[i] = ycap(yn[p], variant);
            }
        }
        let s = sqrt(wg_sum(lid, sq));
        if (lid == 0u) { ynorm[po + k + 1u] = s; }
        steps_done++;
    }
    for (var p = 0u; p < PER; p++) {
        let i = lid + p * WG;
        if (i < n) {
            state[so + i] = yv[i];
            state[so + n + i] = a[p];
        }
    }
    // A NaN difference is dropped by max(); the state is then NaN and flagged diverged.
    let m = wg_max(lid, md);
    let d = wg_max(lid, select(0.0, 1.0, dv));
    if (lid == 0u) {
        crit[tr * 4u] = m;
        crit[tr * 4u + 1u] = d;
    }
    // lavapipe ends an invocation's loops after 65,535 iterations (helpers.wgsl): say so.
    if (steps_done != s1 - s0 || loops_cut_short(n)) { crit[tr * 4u + 3u] = 1.0; }
}
