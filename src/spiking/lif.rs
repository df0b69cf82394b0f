//! The leaky (or quadratic) integrate-and-fire network of Kim, Li & Sejnowski (2019), one
//! forward-Euler step of `dt` at a time, exactly as their per-step algorithm orders it.
//!
//! Time is in seconds, voltages and currents in mV. Per step $i = 1, \dots, n_t$ (time $i\,dt$):
//!
//! 1. $I = \mathrm{IPSC} + I_{bias} + (W^{in} u)_{:,c(i)}$, with the input column
//!    $c(i) = \mathrm{round}(i/100)$ (each 5-ms column is held for 100 steps, centred);
//! 2. units outside their refractory period ($i > i_{last} + n_{ref}$, $n_{ref} = \mathrm{round}(t_{ref}/dt)$)
//!    integrate $v \leftarrow v + dt\,(-v + I)/\tau_m$ (LIF) or $v \leftarrow v + dt\,(v^2 + I)/\tau_m$ (QIF);
//!    every unit then receives voltage noise $\mathcal N(0, 0.1^2)$ mV;
//! 3. optional optogenetic stimulation: with probability ½ per step, ±0.5 mV on chosen units;
//! 4. the spiking set $S = \{j : v_j \ge v_{th}\}$ sends $J_D = \sum_{j \in S} W^{spk}_{:,j}$
//!    (only the spiking columns are read: event-driven);
//! 5. double-exponential synaptic filters (old $h$, $h_r$ used before their update):
//!    $\mathrm{IPSC} \leftarrow \mathrm{IPSC}\, e^{-dt/\tau_d} + h\,dt$,
//!    $h \leftarrow h\,e^{-dt/\tau_r} + J_D / (\tau_r \tau_d)$ (postsynaptic $\tau_d$),
//!    $r \leftarrow r\, e^{-dt/\tau_d} + h_r\,dt$,
//!    $h_r \leftarrow h_r\,e^{-dt/\tau_r} + \mathbb 1\[S\]/(\tau_r\tau_d)$ (the spiking unit's own $\tau_d$);
//! 6. spikes are recorded sparsely as (unit, step); spiking units are marked at $v = 30$ mV and
//!    reset to $v_{reset}$; the read-out is $o(i) = w^{out}_{spk} \cdot r$ (no bias).
//!
//! The refractory gate is the integer form (the original compares floats, which shortens 0.7 % of
//! the interspike intervals by one step); the initial $i_{last} = 0$ freezes every unit for its
//! first $n_{ref}$ steps as the original does ([`SimOptions::initial_refractory`]).

use crate::error::{Error, Result};
use faer::Mat;
use rand_distr::{Distribution, StandardNormal};

/// The random stream of a trial: wyrand (fastrand, a fraction of a nanosecond per 64-bit draw)
/// feeding rand_distr's ziggurat normals, so that the 0.1-mV voltage noise of every unit at every
/// step (4 × 10⁶ normals per 200-unit trial) stays cheap. Seeded and reproducible bit for bit.
#[derive(Debug, Clone)]
pub struct NoiseRng {
    rng: fastrand::Rng,
}

impl NoiseRng {
    pub fn new(seed: u64) -> Self {
        NoiseRng {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Uniform in (0, 1].
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        ((self.rng.u64(..) >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
    }

    /// Fills `out` with standard normal draws.
    pub fn fill_normal(&mut self, out: &mut [f64]) {
        for z in out {
            *z = StandardNormal.sample(self);
        }
    }
}

impl rand::RngCore for NoiseRng {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.rng.u32(..)
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.rng.u64(..)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.rng.fill(dst)
    }
}

/// Steps of the base `dt` (0.05 ms) per 5-ms input column.
pub const STEPS_PER_COLUMN: usize = 100;
/// The base LIF step: 0.05 ms.
pub const BASE_DT: f64 = 5e-5;
/// One rate-network step (and one input column): 5 ms.
pub const RATE_STEP: f64 = 5e-3;

/// The neuron model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Neuron {
    /// Leaky integrate-and-fire: τ_m dv/dt = −v + I; threshold −40 mV, bias −40.
    Lif,
    /// Quadratic integrate-and-fire (SI of Kim et al.): τ_m dv/dt = v² + I; peak 30 mV, bias 0.
    Qif,
}

/// The constants of Kim, Li & Sejnowski (2019), SI Table S1 (seconds, mV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constants {
    /// Membrane time constant τ_m (10 ms).
    pub tau_m: f64,
    /// Absolute refractory period t_ref (2 ms).
    pub t_ref: f64,
    /// Spike threshold ("vpeak"): −40 mV for the LIF, 30 mV for the QIF.
    pub v_th: f64,
    /// Reset voltage (−65 mV).
    pub v_reset: f64,
    /// The marker a spiking unit's recorded voltage is set to (30 mV).
    pub v_marker: f64,
    /// Constant bias current (−40 for the LIF, 0 for the QIF).
    pub bias: f64,
    /// Synaptic rise time τ_r (2 ms).
    pub tau_r: f64,
    /// Standard deviation of the voltage noise per step (0.1 mV).
    pub noise: f64,
}

impl Constants {
    /// The paper's constants for `neuron`.
    pub fn of(neuron: Neuron) -> Self {
        let (v_th, bias) = match neuron {
            Neuron::Lif => (-40.0, -40.0),
            Neuron::Qif => (30.0, 0.0),
        };
        Constants {
            tau_m: 0.010,
            t_ref: 0.002,
            v_th,
            v_reset: -65.0,
            v_marker: 30.0,
            bias,
            tau_r: 0.002,
            noise: 0.1,
        }
    }
}

/// A spiking network: W^spk = λW (N × N, column j = what unit j sends), W^in (N × N_in),
/// per-unit synaptic decay τ_d (seconds) and the read-out λ w^out.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikingNetwork {
    pub w: Mat<f64>,
    pub w_in: Mat<f64>,
    pub tau_d: Vec<f64>,
    pub w_out: Vec<f64>,
}

impl SpikingNetwork {
    /// Checks the shapes and values.
    pub fn new(w: Mat<f64>, w_in: Mat<f64>, tau_d: Vec<f64>, w_out: Vec<f64>) -> Result<Self> {
        let n = w.nrows();
        if n == 0 || w.ncols() != n {
            return Err(Error::invalid(
                "W",
                format!(
                    "need a square N × N matrix, got {} × {}",
                    w.nrows(),
                    w.ncols()
                ),
            ));
        }
        if w_in.nrows() != n {
            return Err(Error::invalid(
                "W_in",
                format!("has {} rows, the network {n} units", w_in.nrows()),
            ));
        }
        if tau_d.len() != n || tau_d.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
            return Err(Error::invalid(
                "tau_d",
                format!("need {n} positive finite decay times (seconds)"),
            ));
        }
        if w_out.len() != n {
            return Err(Error::invalid(
                "w_out",
                format!("has {} entries, the network {n} units", w_out.len()),
            ));
        }
        let finite =
            |m: &Mat<f64>| (0..m.ncols()).all(|j| (0..m.nrows()).all(|i| m[(i, j)].is_finite()));
        if !finite(&w) || !finite(&w_in) || w_out.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("weights", "contain NaN or infinity"));
        }
        Ok(SpikingNetwork {
            w,
            w_in,
            tau_d,
            w_out,
        })
    }

    pub fn n(&self) -> usize {
        self.w.nrows()
    }

    pub fn n_in(&self) -> usize {
        self.w_in.ncols()
    }
}

/// Optogenetic-style stimulation (Kim et al.'s `stims`): during steps `start ≤ i < end`, with
/// probability ½ per step, `units` get `+amplitude` (depolarising) or `−amplitude` mV.
#[derive(Debug, Clone, PartialEq)]
pub struct Stimulation {
    pub units: Vec<usize>,
    pub start: usize,
    pub end: usize,
    /// Signed kick in mV (+0.5 excitatory, −0.5 inhibitory in the original).
    pub amplitude: f64,
}

/// Initial membrane voltages.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialVoltage {
    /// v(0) ~ U(v_reset, 30 mV) per unit (the original).
    Uniform,
    /// Given voltages.
    Given(Vec<f64>),
}

/// How a trial is simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    pub neuron: Neuron,
    pub constants: Constants,
    /// dt = 0.05 ms × downsample; the input columns are subsampled by the same factor, as the
    /// original does (each kept column is still held for 100 steps).
    pub downsample: usize,
    /// Voltage noise on (σ = `constants.noise` per step).
    pub noise: bool,
    /// `true` (default, as the original): i_last = 0, so every unit is frozen for its first n_ref
    /// steps; `false`: i_last = −∞.
    pub initial_refractory: bool,
    pub v0: InitialVoltage,
    pub stimulation: Option<Stimulation>,
    /// Units whose voltage trace is recorded (after the spike marker, before the reset).
    pub record_voltage: Vec<usize>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions::new(Neuron::Lif)
    }
}

impl SimOptions {
    pub fn new(neuron: Neuron) -> Self {
        SimOptions {
            neuron,
            constants: Constants::of(neuron),
            downsample: 1,
            noise: true,
            initial_refractory: true,
            v0: InitialVoltage::Uniform,
            stimulation: None,
            record_voltage: vec![],
        }
    }

    /// The step in seconds.
    pub fn dt(&self) -> f64 {
        BASE_DT * self.downsample as f64
    }

    /// Number of LIF steps for `n_columns` input columns: (n_u' − 1)·100 with n_u' the columns kept
    /// after subsampling by `downsample`.
    pub fn steps(&self, n_columns: usize) -> usize {
        let kept = n_columns.div_ceil(self.downsample.max(1));
        kept.saturating_sub(1) * STEPS_PER_COLUMN
    }

    fn validate(&self, n: usize) -> Result<()> {
        if self.downsample == 0 || self.downsample > STEPS_PER_COLUMN {
            return Err(Error::invalid(
                "downsample",
                format!(
                    "{}: need 1 ≤ downsample ≤ {STEPS_PER_COLUMN}",
                    self.downsample
                ),
            ));
        }
        if let InitialVoltage::Given(v) = &self.v0 {
            if v.len() != n || v.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid("v0", format!("need {n} finite voltages")));
            }
        }
        if let Some(s) = &self.stimulation {
            if let Some(&u) = s.units.iter().find(|&&u| u >= n) {
                return Err(Error::invalid(
                    "stimulation.units",
                    format!("unit {u} does not exist (N = {n})"),
                ));
            }
        }
        if let Some(&u) = self.record_voltage.iter().find(|&&u| u >= n) {
            return Err(Error::invalid(
                "record_voltage",
                format!("unit {u} does not exist (N = {n})"),
            ));
        }
        Ok(())
    }
}

/// One simulated trial.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeTrial {
    /// The step (seconds).
    pub dt: f64,
    /// Steps simulated (n_t).
    pub steps: usize,
    /// Spikes as (unit, step), step i = 1..n_t (time i·dt), in time order.
    pub spikes: Vec<(u32, u32)>,
    /// The read-out o(i) = λ w_out · r after step i (index i − 1).
    pub output: Vec<f64>,
    /// Spike count per unit.
    pub counts: Vec<u32>,
    /// Voltage traces of [`SimOptions::record_voltage`] (steps × units, row = step).
    pub voltage: Vec<f64>,
}

impl SpikeTrial {
    /// Trial duration in seconds.
    pub fn duration(&self) -> f64 {
        self.steps as f64 * self.dt
    }

    /// Mean firing rate per unit (Hz).
    pub fn rates(&self) -> Vec<f64> {
        let t = self.duration();
        self.counts.iter().map(|&c| c as f64 / t).collect()
    }

    /// Interspike intervals (seconds) of all units.
    pub fn isis(&self) -> Vec<f64> {
        let n = self.counts.len();
        let mut last: Vec<Option<u32>> = vec![None; n];
        let mut out = Vec::with_capacity(self.spikes.len());
        for &(u, i) in &self.spikes {
            if let Some(p) = last[u as usize] {
                out.push((i - p) as f64 * self.dt);
            }
            last[u as usize] = Some(i);
        }
        out
    }

    /// Spike steps of one unit.
    pub fn train(&self, unit: usize) -> Vec<u32> {
        self.spikes
            .iter()
            .filter(|s| s.0 as usize == unit)
            .map(|s| s.1)
            .collect()
    }
}

/// The network state, stepped one `dt` at a time (what [`simulate`] loops over; public so that a
/// caller can drive it with its own currents and inspect every variable).
#[derive(Debug, Clone)]
pub struct LifState {
    /// Membrane voltage (mV).
    pub v: Vec<f64>,
    /// Filtered recurrent current and its rise variable.
    pub ipsc: Vec<f64>,
    pub h: Vec<f64>,
    /// Read-out trace (1/s) and its rise variable.
    pub r: Vec<f64>,
    pub hr: Vec<f64>,
    /// Step of each unit's last spike (i64::MIN / 2: never).
    pub last: Vec<i64>,
    /// Steps completed.
    pub step: usize,
    // Per-unit constants and scratch.
    decay_d: Vec<f64>,
    inv_rd: Vec<f64>,
    decay_r: f64,
    jd: Vec<f64>,
    noise: Vec<f64>,
    spiking: Vec<u32>,
    n_ref: i64,
    dt: f64,
    c: Constants,
    neuron: Neuron,
}

impl LifState {
    /// The initial state for `net` under `opts` (v0 drawn from `rng` when uniform).
    pub fn new(net: &SpikingNetwork, opts: &SimOptions, rng: &mut NoiseRng) -> Result<Self> {
        let n = net.n();
        opts.validate(n)?;
        let c = opts.constants;
        let dt = opts.dt();
        let v = match &opts.v0 {
            InitialVoltage::Uniform => (0..n)
                .map(|_| c.v_reset + (1.0 - rng.uniform()) * (c.v_marker - c.v_reset))
                .collect(),
            InitialVoltage::Given(v) => v.clone(),
        };
        Ok(LifState {
            v,
            ipsc: vec![0.0; n],
            h: vec![0.0; n],
            r: vec![0.0; n],
            hr: vec![0.0; n],
            last: vec![
                if opts.initial_refractory {
                    0
                } else {
                    i64::MIN / 2
                };
                n
            ],
            step: 0,
            decay_d: net.tau_d.iter().map(|t| (-dt / t).exp()).collect(),
            inv_rd: net.tau_d.iter().map(|t| 1.0 / (c.tau_r * t)).collect(),
            decay_r: (-dt / c.tau_r).exp(),
            jd: vec![0.0; n],
            noise: vec![0.0; n],
            spiking: Vec::with_capacity(n),
            n_ref: (c.t_ref / dt).round() as i64,
            dt,
            c,
            neuron: opts.neuron,
        })
    }

    /// Advances one step with external current `ext` (W^in u for this step, length N), voltage
    /// noise from `noise` (None: off) and an optional voltage kick on `kick.0` units. Returns the
    /// units that spiked (valid until the next step).
    pub fn step(
        &mut self,
        net: &SpikingNetwork,
        ext: &[f64],
        mut noise: Option<(&mut NoiseRng, f64)>,
        kick: Option<(&[usize], f64)>,
    ) -> &[u32] {
        self.step += 1;
        let i = self.step as i64;
        let (dt, tau_m, bias, v_th) = (self.dt, self.c.tau_m, self.c.bias, self.c.v_th);
        let n = self.v.len();
        // 1–2. Currents and the voltage update (refractory units receive noise only); branch-free
        // over zipped slices so that the loop vectorises.
        let a = dt / tau_m;
        let n_ref = self.n_ref;
        let lin = matches!(self.neuron, Neuron::Lif);
        for (((v, ipsc), e), last) in self
            .v
            .iter_mut()
            .zip(&self.ipsc)
            .zip(&ext[..n])
            .zip(&self.last)
        {
            let open = if i > *last + n_ref { a } else { 0.0 };
            let cur = *ipsc + bias + *e;
            let drive = if lin { -*v + cur } else { *v * *v + cur };
            *v += open * drive;
        }
        if let Some((rng, sd)) = noise.as_mut() {
            self.noise.resize(n, 0.0);
            rng.fill_normal(&mut self.noise);
            let sd = *sd;
            for (v, z) in self.v.iter_mut().zip(&self.noise) {
                *v += sd * *z;
            }
        }
        // 3. Stimulation.
        if let Some((units, a)) = kick {
            for &u in units {
                self.v[u] += a;
            }
        }
        // 4. Spikes and the event-driven recurrent input.
        self.spiking.clear();
        for k in 0..n {
            if self.v[k] >= v_th {
                self.spiking.push(k as u32);
            }
        }
        let any = !self.spiking.is_empty();
        if any {
            self.jd.fill(0.0);
            for &j in &self.spiking {
                let col = net.w.col(j as usize);
                for (a, b) in self.jd.iter_mut().zip(col.iter()) {
                    *a += *b;
                }
                self.last[j as usize] = i;
            }
        }
        // 5. Synaptic filters.
        let er = self.decay_r;
        for ((((ipsc, r), h), hr), ed) in self
            .ipsc
            .iter_mut()
            .zip(self.r.iter_mut())
            .zip(self.h.iter_mut())
            .zip(self.hr.iter_mut())
            .zip(&self.decay_d)
        {
            *ipsc = *ipsc * ed + *h * dt;
            *r = *r * ed + *hr * dt;
            *h *= er;
            *hr *= er;
        }
        if any {
            for ((h, jd), inv) in self.h.iter_mut().zip(&self.jd).zip(&self.inv_rd) {
                *h += jd * inv;
            }
            for &j in &self.spiking {
                self.hr[j as usize] += self.inv_rd[j as usize];
            }
        }
        // 6. Marker then reset (the marker is what a voltage recording shows).
        for &j in &self.spiking {
            self.v[j as usize] = self.c.v_marker;
        }
        &self.spiking
    }

    /// Resets the units that just spiked to v_reset (after a recording of their marker).
    pub fn reset_spiking(&mut self) {
        for &j in &self.spiking {
            self.v[j as usize] = self.c.v_reset;
        }
    }

    /// The read-out w_out · r.
    pub fn output(&self, net: &SpikingNetwork) -> f64 {
        // Four partial sums (vectorisable), then combined.
        let mut acc = [0.0f64; 4];
        let (r4, rt) = self.r.split_at(self.r.len() / 4 * 4);
        let (w4, wt) = net.w_out.split_at(r4.len());
        for (r, w) in r4.chunks_exact(4).zip(w4.chunks_exact(4)) {
            for k in 0..4 {
                acc[k] += r[k] * w[k];
            }
        }
        let tail: f64 = rt.iter().zip(wt).map(|(a, b)| a * b).sum();
        (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
    }
}

/// Simulates one trial: `u` holds the input columns (5 ms each, N_in values), `seed` drives the
/// initial voltages, the voltage noise and the stimulation. The same seed gives the same bits.
pub fn simulate(
    net: &SpikingNetwork,
    u: &[Vec<f64>],
    opts: &SimOptions,
    seed: u64,
) -> Result<SpikeTrial> {
    let (n, n_in) = (net.n(), net.n_in());
    if let Some((k, c)) = u.iter().enumerate().find(|(_, c)| c.len() != n_in) {
        return Err(Error::invalid(
            "inputs",
            format!(
                "column {k} has {} values, the network takes {n_in}",
                c.len()
            ),
        ));
    }
    if u.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::invalid("inputs", "contain NaN or infinity"));
    }
    let mut rng = NoiseRng::new(seed);
    let mut state = LifState::new(net, opts, &mut rng)?;
    let ds = opts.downsample;
    let steps = opts.steps(u.len());
    if steps == 0 {
        return Err(Error::invalid(
            "inputs",
            format!(
                "{} columns give no LIF steps (need at least {} columns)",
                u.len(),
                ds + 1
            ),
        ));
    }
    if steps > u32::MAX as usize {
        return Err(Error::invalid(
            "inputs",
            format!("{steps} steps is too long a trial"),
        ));
    }
    // W^in u for the kept columns, column-major.
    let kept: Vec<&Vec<f64>> = u.iter().step_by(ds).collect();
    let mut ext = vec![0.0; n * kept.len()];
    for (c, col) in kept.iter().enumerate() {
        for (m, &uv) in col.iter().enumerate() {
            if uv != 0.0 {
                for (e, w) in ext[c * n..(c + 1) * n]
                    .iter_mut()
                    .zip(net.w_in.col(m).iter())
                {
                    *e += w * uv;
                }
            }
        }
    }
    let rec = &opts.record_voltage;
    let mut trial = SpikeTrial {
        dt: opts.dt(),
        steps,
        spikes: Vec::new(),
        output: Vec::with_capacity(steps),
        counts: vec![0; n],
        voltage: Vec::with_capacity(steps * rec.len()),
    };
    let sd = opts.constants.noise;
    // One stream per trial: initial voltages, then per step the stimulation coin and the noise.
    for i in 1..=steps {
        let c = ((i as f64) / STEPS_PER_COLUMN as f64).round() as usize;
        let c = c.min(kept.len() - 1);
        let ext_i = &ext[c * n..(c + 1) * n];
        let kick = opts
            .stimulation
            .as_ref()
            .filter(|s| (s.start..s.end).contains(&i))
            .and_then(|s| (rng.uniform() <= 0.5).then_some((s.units.as_slice(), s.amplitude)));
        let noise = opts.noise.then_some((&mut rng, sd));
        let spk = state.step(net, ext_i, noise, kick);
        for &j in spk {
            trial.spikes.push((j, i as u32));
            trial.counts[j as usize] += 1;
        }
        for &u in rec {
            trial.voltage.push(state.v[u]);
        }
        state.reset_spiking();
        trial.output.push(state.output(net));
    }
    Ok(trial)
}
