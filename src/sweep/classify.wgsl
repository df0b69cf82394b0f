// The class of each running sweep trial at the end of a chunk (one thread per trial), from what
// trials.wgsl kept: diverging, fixed point, periodic (the original sweep's test on ‖y‖, with
// scipy.signal.find_peaks' plateau rule) or, after the last chunk, undetermined; in legacy mode
// (§10, one long run) fixed point or undetermined. status[t 2 ..] = (class + 1, 0 while running;
// chunks run); marks[t P ..] is scratch.
//
// cfg[0] = (points, threshold as f32 bits, mode: 0 adaptive, 1 legacy, −), cfg[1] = (active
// trials, this chunk's number from 1, the last chunk, −).
@group(0) @binding(0) var<uniform> cfg: array<vec4<u32>, 2>;
@group(0) @binding(1) var<storage, read_write> ynorm: array<f32>;
@group(0) @binding(2) var<storage, read_write> crit: array<f32>;
@group(0) @binding(3) var<storage, read> running: array<u32>;
@group(0) @binding(4) var<storage, read_write> marks: array<u32>;
@group(0) @binding(5) var<storage, read_write> status: array<u32>;

// Marks the peaks of ±s (scipy.signal.find_peaks without options: strict local maxima, a plateau
// at its midpoint rounded down, never the end points) with `tag`; sign = 1 maxima, −1 minima.
fn mark_peaks(po: u32, len: u32, sgn: f32, tag: u32) {
    var i = 1u;
    loop {
        if (i + 1u >= len) { break; }
        let xi = sgn * ynorm[po + i];
        if (sgn * ynorm[po + i - 1u] < xi) {
            var j = i + 1u;
            loop {
                if (j + 1u >= len || sgn * ynorm[po + j] != xi) { break; }
                j++;
            }
            if (sgn * ynorm[po + j] < xi) {
                marks[po + (i + j - 1u) / 2u] = tag;
                i = j + 1u;
                continue;
            }
        }
        i++;
    }
}

// The original sweep's periodic test on s = ‖y‖ of the chunk: ≥ 4 extrema, periods between every
// other extremum with relative standard deviation < 1e-2, every amplitude between consecutive
// extrema within 1e-8 + 1e-2 × their mean.
fn periodic(po: u32, len: u32) -> bool {
    for (var i = 0u; i < len; i++) { marks[po + i] = 0u; }
    mark_peaks(po, len, 1.0, 1u);
    mark_peaks(po, len, -1.0, 2u);
    var count = 0u;
    var last_start = 0u;
    var psum = 0u;
    var psq = 0u;
    var np = 0u;
    var asum = 0.0;
    var prev = 0u;
    for (var i = 0u; i < len; i++) {
        if (marks[po + i] != 0u) {
            if (count % 2u == 0u) {
                if (count > 0u) {
                    let d = i - last_start;
                    psum += d;
                    psq += d * d;
                    np++;
                }
                last_start = i;
            }
            if (count > 0u) { asum += abs(ynorm[po + i] - ynorm[po + prev]); }
            prev = i;
            count++;
        }
    }
    if (count < 4u || np == 0u) { return false; }
    let mean = f32(psum) / f32(np);
    let var_ = max(f32(psq) / f32(np) - mean * mean, 0.0);
    if (!(sqrt(var_) / mean < 1e-2)) { return false; }
    let ma = asum / f32(count - 1u);
    var first = true;
    for (var i = 0u; i < len; i++) {
        if (marks[po + i] != 0u) {
            if (!first) {
                let amp = abs(ynorm[po + i] - ynorm[po + prev]);
                if (abs(amp - ma) > 1e-8 + 1e-2 * abs(ma)) { return false; }
            }
            first = false;
            prev = i;
        }
    }
    return true;
}

// Classes: 1 undetermined, 2 diverging, 3 fixed point, 4 periodic (the original codes + 1;
// 0 while running).
@compute @workgroup_size(64)
fn classify(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    if (q >= cfg[1].x) { return; }
    let tr = running[q];
    let points = cfg[0].x;
    let thr = bitcast<f32>(cfg[0].y);
    let legacy = cfg[0].z == 1u;
    let chunk = cfg[1].y;
    let md = crit[tr * 4u];
    let dv = crit[tr * 4u + 1u] > 0.0;
    crit[tr * 4u + 2u] = md;
    var cls = 0u;
    if (legacy) {
        // §10: stable when the last step is finite and changed every entry by less than 1e-5.
        cls = select(1u, 3u, !dv && md < thr);
    } else if (dv) {
        cls = 2u;
    } else if (md < thr) {
        cls = 3u;
    } else if (periodic(tr * points, points)) {
        cls = 4u;
    } else if (chunk >= cfg[1].z) {
        cls = 1u;
    }
    // 5: the device cut this trial's loops short (lavapipe's 65,535 iterations; helpers.wgsl).
    if (crit[tr * 4u + 3u] != 0.0 || loops_cut_short(points)) { cls = 5u; }
    status[tr * 2u] = cls;
    status[tr * 2u + 1u] = chunk;
}
