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
            size: (900, 560),
        }
    }
    pub fn series(mut self, label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            label: label.into(),
            points,
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
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
        for (k, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
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
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(|e| err(&e))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        if self.series.len() > 1 && self.series.len() <= 12 {
            chart
                .configure_series_labels()
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
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
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
