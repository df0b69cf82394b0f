//! Figures as PNG + SVG (plotters, pure Rust; text rendered with the embedded DejaVu Sans).
//!
//! Every function takes an output *stem* (`figures/traj`) and writes `stem.png` and `stem.svg`,
//! each atomically.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: Once = Once::new();

fn ensure_font() {
    FONT.call_once(|| {
        // DejaVu Sans (Bitstream Vera licence, see assets/DejaVuSans-LICENSE.txt).
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// One line of a line plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Draw markers instead of a line.
    pub markers: bool,
    /// Draw a dashed line.
    pub dashed: bool,
    /// Palette index of the colour (default: the series' position).
    pub color: Option<usize>,
}

/// A line plot description.
#[derive(Debug, Clone)]
pub struct LinePlot {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    pub series: Vec<Series>,
    /// Log10 y axis.
    pub log_y: bool,
    /// Draw markers (a scatter plot) instead of lines.
    pub markers: bool,
    /// The x axis counts something (an exponent's index): ticks between integers stay unlabelled.
    pub integer_x: bool,
    pub size: (u32, u32),
}

impl LinePlot {
    pub fn new(
        title: impl Into<String>,
        xlabel: impl Into<String>,
        ylabel: impl Into<String>,
    ) -> Self {
        LinePlot {
            title: title.into(),
            xlabel: xlabel.into(),
            ylabel: ylabel.into(),
            series: vec![],
            log_y: false,
            markers: false,
            integer_x: false,
            size: (900, 560),
        }
    }

    /// Labels only the integer ticks of the x axis ([`LinePlot::integer_x`]).
    pub fn integer_x(mut self) -> Self {
        self.integer_x = true;
        self
    }

    pub fn series(mut self, label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            markers: false,
            label: label.into(),
            points,
            dashed: false,
            color: None,
        });
        self
    }

    /// Adds a line in a given palette colour, dashed or solid; an empty label stays out of the
    /// legend (for the second and later pieces of one curve).
    pub fn segment(
        mut self,
        label: impl Into<String>,
        points: Vec<(f64, f64)>,
        color: usize,
        dashed: bool,
    ) -> Self {
        self.series.push(Series {
            markers: false,
            label: label.into(),
            points,
            dashed,
            color: Some(color),
        });
        self
    }

    /// Adds a series drawn as markers (a scatter).
    pub fn points(mut self, label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            label: label.into(),
            points,
            markers: true,
            dashed: false,
            color: None,
        });
        self
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for s in &self.series {
            for &(x, y) in &s.points {
                let y = if self.log_y {
                    y.abs().max(1e-300).log10()
                } else {
                    y
                };
                if x.is_finite() && y.is_finite() {
                    x0 = x0.min(x);
                    x1 = x1.max(x);
                    y0 = y0.min(y);
                    y1 = y1.max(y);
                }
            }
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y0 -= 0.5;
            y1 += 0.5;
        }
        let pad = 0.05 * (y1 - y0);
        ((x0, x1), (y0 - pad, y1 + pad))
    }

    /// The corner whose legend box would cover the fewest data points (a marker — a bifurcation,
    /// a highlighted value — counts as many line points: it must never hide under the legend).
    fn legend_corner(
        &self,
        (x0, x1): (f64, f64),
        (y0, y1): (f64, f64),
        rows: usize,
    ) -> SeriesLabelPosition {
        use SeriesLabelPosition::*;
        let (w, h) = (0.42, (0.07 * rows as f64 + 0.04).min(0.9));
        let boxes = [
            (UpperLeft, (0.0, w), (1.0 - h, 1.0)),
            (UpperRight, (1.0 - w, 1.0), (1.0 - h, 1.0)),
            (LowerRight, (1.0 - w, 1.0), (0.0, h)),
            (LowerLeft, (0.0, w), (0.0, h)),
        ];
        let cost = |(bx, by): ((f64, f64), (f64, f64))| -> f64 {
            let mut c = 0.0;
            for s in &self.series {
                let weight = if self.markers || s.markers { 50.0 } else { 1.0 };
                for &(x, y) in &s.points {
                    let y = if self.log_y {
                        y.abs().max(1e-300).log10()
                    } else {
                        y
                    };
                    let (u, v) = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
                    if u >= bx.0 && u <= bx.1 && v >= by.0 && v <= by.1 {
                        c += weight;
                    }
                }
            }
            c
        };
        let mut best = (UpperLeft, f64::INFINITY);
        for (pos, bx, by) in boxes {
            let c = cost((bx, by));
            if c < best.1 {
                best = (pos, c);
            }
        }
        best.0
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: &dyn std::fmt::Display| Error::invalid("plot", e.to_string());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            // Room for the last x label, centred on the right edge ("1200" was cut to "120").
            .margin_right(28)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        let ylabel = if self.log_y {
            format!("log10 {}", self.ylabel)
        } else {
            self.ylabel.clone()
        };
        chart
            .configure_mesh()
            .x_desc(&self.xlabel)
            .y_desc(ylabel)
            .x_label_formatter(&|v: &f64| {
                if self.integer_x && v.fract() != 0.0 {
                    String::new()
                } else {
                    tick_label(v)
                }
            })
            .y_label_formatter(&tick_label)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
        for (k, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(s.color.unwrap_or_else(|| auto_color(k))).to_rgba();
            let log_y = self.log_y;
            let pts = s.points.iter().map(move |&(x, y)| {
                (
                    x,
                    if log_y {
                        y.abs().max(1e-300).log10()
                    } else {
                        y
                    },
                )
            });
            let style = ShapeStyle {
                color,
                filled: false,
                stroke_width: 2,
            };
            if self.markers || s.markers {
                let r = if s.points.len() <= 3 { 7 } else { 2 };
                let fill = ShapeStyle {
                    color,
                    filled: true,
                    stroke_width: 1,
                };
                let a = chart
                    .draw_series(pts.map(|p| Circle::new(p, r, fill)))
                    .map_err(|e| err(&e))?;
                if !s.label.is_empty() {
                    a.label(s.label.clone())
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, fill));
                }
            } else if s.dashed {
                let a = chart
                    .draw_series(DashedLineSeries::new(pts, 8, 5, style))
                    .map_err(|e| err(&e))?;
                if !s.label.is_empty() {
                    a.label(s.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], style));
                }
            } else {
                let a = chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(|e| err(&e))?;
                if !s.label.is_empty() {
                    a.label(s.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                }
            }
        }
        let labelled = self.series.iter().filter(|s| !s.label.is_empty()).count();
        if labelled > 1 && labelled <= 12 {
            chart
                .configure_series_labels()
                .position(self.legend_corner((x0, x1), (y0, y1), labelled))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }

    /// Writes `stem.png` and `stem.svg`; returns both paths.
    pub fn save(&self, stem: &Path) -> Result<(PathBuf, PathBuf)> {
        ensure_font();
        let (png, svg) = (with_suffix(stem, "png"), with_suffix(stem, "svg"));
        // SVG: render into a string, then write atomically.
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, self.size).into_drawing_area();
            self.draw(root)?;
        }
        write_atomic(&svg, |w| {
            std::io::Write::write_all(w, s.as_bytes()).map_err(|e| Error::file(&svg, e))
        })?;
        // PNG: render into an RGB buffer, encode, write atomically.
        let (w, h) = self.size;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, self.size).into_drawing_area();
            self.draw(root)?;
        }
        write_png(&png, w, h, &buf)?;
        Ok((png, svg))
    }
}

/// Encodes an RGB8 buffer as PNG, atomically.
fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    write_atomic(path, |out| {
        let mut enc = png::Encoder::new(out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| Error::file(path, e))?;
        wr.write_image_data(rgb).map_err(|e| Error::file(path, e))?;
        wr.finish().map_err(|e| Error::file(path, e))?;
        Ok(())
    })
}

/// A heat map on (optionally logarithmic) axes with an optional overlaid curve: the sweep's
/// phase diagram. `values[iy * xs.len() + ix]` is the cell at (`xs[ix]`, `ys[iy]`), in `[vmin, vmax]`.
#[derive(Debug, Clone)]
pub struct HeatMap {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub values: Vec<f64>,
    pub vmin: f64,
    pub vmax: f64,
    pub log: bool,
    pub curve: Option<(String, Vec<(f64, f64)>)>,
}

/// The plasma colour map (matplotlib), piecewise-linear through 5 anchors.
fn plasma(t: f64) -> RGBColor {
    const A: [(f64, [f64; 3]); 5] = [
        (0.0, [13.0, 8.0, 135.0]),
        (0.25, [126.0, 3.0, 168.0]),
        (0.5, [204.0, 71.0, 120.0]),
        (0.75, [248.0, 149.0, 64.0]),
        (1.0, [240.0, 249.0, 33.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let k = A.iter().position(|(p, _)| *p >= t).unwrap_or(4).max(1);
    let (p0, c0) = A[k - 1];
    let (p1, c1) = A[k];
    let f = (t - p0) / (p1 - p0);
    let c = |i: usize| (c0[i] + f * (c1[i] - c0[i])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// Cell edges around grid points: midpoints (geometric on log axes), extended at both ends.
fn edges(v: &[f64], log: bool) -> Vec<f64> {
    let tr = |x: f64| if log { x.ln() } else { x };
    let inv = |x: f64| if log { x.exp() } else { x };
    let t: Vec<f64> = v.iter().map(|&x| tr(x)).collect();
    let n = t.len();
    if n == 1 {
        let w = if log { 0.1 } else { 0.5 * t[0].abs().max(1.0) };
        return vec![inv(t[0] - w), inv(t[0] + w)];
    }
    let mut e = vec![t[0] - 0.5 * (t[1] - t[0])];
    for k in 0..n - 1 {
        e.push(0.5 * (t[k] + t[k + 1]));
    }
    e.push(t[n - 1] + 0.5 * (t[n - 1] - t[n - 2]));
    e.into_iter().map(inv).collect()
}

/// The palette colour of the `k`-th series without a colour of its own (and for callers that
/// colour by position): the palette's order
/// without its pale entries (yellow, cyan, lime, pink, lavender, beige, mint, coral), which vanish on
/// white.
pub fn auto_color(k: usize) -> usize {
    const DARK: [usize; 12] = [0, 1, 3, 4, 5, 7, 10, 12, 14, 16, 18, 19];
    DARK[k % DARK.len()]
}

/// A tick value as a reader writes it: no trailing zeros (`10`, `0.25`, `-3.5`), scientific
/// notation outside [1e-4, 1e6).
fn tick_label(v: &f64) -> String {
    let a = v.abs();
    // Ticks are round numbers: one within rounding noise of zero (1.4e-17 from a range's
    // arithmetic) is zero.
    if a < 1e-13 {
        return "0".into();
    }
    if !(1e-4..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

impl HeatMap {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: &dyn std::fmt::Display| Error::invalid("plot", e.to_string());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (ex, ey) = (edges(&self.xs, self.log), edges(&self.ys, self.log));
        let (x0, x1) = (ex[0], *ex.last().unwrap_or(&1.0));
        let (y0, y1) = (ey[0], *ey.last().unwrap_or(&1.0));
        let (main, bar) = root.split_horizontally(self_width(&root) - 110);
        let caption = (self.title.as_str(), ("sans-serif", 20));
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(&self.xlabel)
                    .y_desc(&self.ylabel)
                    .label_style(("sans-serif", 14))
                    .draw()
                    .map_err(|e| err(&e))?;
                let nx = self.xs.len();
                let cells = (0..self.ys.len()).flat_map(|iy| (0..nx).map(move |ix| (ix, iy)));
                chart
                    .draw_series(cells.map(|(ix, iy)| {
                        let v = self.values[iy * nx + ix];
                        let c = plasma((v - self.vmin) / (self.vmax - self.vmin));
                        Rectangle::new([(ex[ix], ey[iy]), (ex[ix + 1], ey[iy + 1])], c.filled())
                    }))
                    .map_err(|e| err(&e))?;
                if let Some((label, pts)) = &self.curve {
                    let inside: Vec<(f64, f64)> = pts
                        .iter()
                        .copied()
                        .filter(|&(x, y)| x >= x0 && x <= x1 && y >= y0 && y <= y1)
                        .collect();
                    let style = ShapeStyle {
                        color: WHITE.to_rgba(),
                        filled: false,
                        stroke_width: 3,
                    };
                    chart
                        .draw_series(LineSeries::new(inside, style))
                        .map_err(|e| err(&e))?
                        .label(label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                    chart
                        .configure_series_labels()
                        .background_style(BLACK.mix(0.5))
                        .label_font(("sans-serif", 14).into_font().color(&WHITE))
                        .draw()
                        .map_err(|e| err(&e))?;
                }
            }};
        }
        if self.log {
            body!(ChartBuilder::on(&main)
                .caption(caption.0, caption.1)
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(|e| err(&e))?);
        } else {
            body!(ChartBuilder::on(&main)
                .caption(caption.0, caption.1)
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| err(&e))?);
        }
        // Colour bar.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(50)
            .margin_bottom(57)
            .margin_right(10)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..1.0, self.vmin..self.vmax)
            .map_err(|e| err(&e))?;
        cb.configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&e))?;
        let steps = 100;
        cb.draw_series((0..steps).map(|k| {
            let a = self.vmin + (self.vmax - self.vmin) * k as f64 / steps as f64;
            let b = self.vmin + (self.vmax - self.vmin) * (k + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                plasma(k as f64 / steps as f64).filled(),
            )
        }))
        .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }

    /// Writes `stem.png` and `stem.svg`.
    pub fn save(&self, stem: &Path) -> Result<(PathBuf, PathBuf)> {
        ensure_font();
        if self.values.len() != self.xs.len() * self.ys.len()
            || self.xs.is_empty()
            || self.ys.is_empty()
        {
            return Err(Error::invalid(
                "plot",
                "heat map values do not match the grid",
            ));
        }
        let size = (900u32, 620u32);
        let (png, svg) = (with_suffix(stem, "png"), with_suffix(stem, "svg"));
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
            self.draw(root)?;
        }
        write_atomic(&svg, |w| {
            std::io::Write::write_all(w, s.as_bytes()).map_err(|e| Error::file(&svg, e))
        })?;
        let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
            self.draw(root)?;
        }
        write_png(&png, size.0, size.1, &buf)?;
        Ok((png, svg))
    }
}

fn self_width<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>) -> u32 {
    root.dim_in_pixel().0
}

/// `stem` + `.ext`, keeping any dot already in the stem (`phase_w0.5` → `phase_w0.5.png`, where
/// `Path::with_extension` would give `phase_w0.png`).
pub fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

#[cfg(test)]
mod suffix_tests {
    #[test]
    fn a_dot_in_the_stem_survives() {
        let p = super::with_suffix(std::path::Path::new("figs/organics_phase_w0.5"), "png");
        assert_eq!(p, std::path::PathBuf::from("figs/organics_phase_w0.5.png"));
    }

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        let t = |v: f64| super::tick_label(&v);
        assert_eq!(
            [
                t(10.0),
                t(100.0),
                t(0.25),
                t(-3.5),
                t(0.0),
                t(-0.0),
                t(1e-3)
            ],
            ["10", "100", "0.25", "-3.5", "0", "0", "0.001"]
        );
        assert_eq!([t(2e-5), t(3e7), t(1.4e-17)], ["2.0e-5", "3.0e7", "0"]);
        // A tick computed as 0.1 + 0.2 still reads as 0.3.
        assert_eq!(t(0.1 + 0.2), "0.3");
    }

    #[test]
    fn automatic_colours_skip_the_pale_ones() {
        use plotters::style::{Palette, Palette99};
        for k in 0..40 {
            let (r, g, b) = Palette99::COLORS[super::auto_color(k)];
            // Relative luminance (sRGB weights, 0–255): yellow is 221, blue 109.
            let lum = 0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64;
            assert!(lum < 190.0, "series {k}: ({r}, {g}, {b})");
        }
        assert_eq!(super::auto_color(0), 0);
        assert_ne!(super::auto_color(2), 2);
    }
}

/// A histogram of `values` over `[lo, hi]` in `bins` equal bins (values outside are clamped into
/// the end bins) as a step outline: two points per bin, (left, count) and (right, count).
pub fn histogram_steps(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    let bins = bins.max(1);
    let w = ((hi - lo) / bins as f64).max(1e-12);
    let mut counts = vec![0usize; bins];
    for v in values {
        counts[(((v - lo) / w).floor().max(0.0) as usize).min(bins - 1)] += 1;
    }
    let mut pts = Vec::with_capacity(2 * bins);
    for (k, c) in counts.iter().enumerate() {
        pts.push((lo + w * k as f64, *c as f64));
        pts.push((lo + w * (k + 1) as f64, *c as f64));
    }
    pts
}

/// [`histogram_steps`] over the values' own range (empty for no values).
pub fn histogram(values: &[f64], bins: usize) -> Vec<(f64, f64)> {
    if values.is_empty() {
        return vec![];
    }
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    histogram_steps(values, lo, hi, bins)
}
