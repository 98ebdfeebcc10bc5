//! Latency distributions as SVG charts: each load's latency at every percentile, so a tail is
//! seen as a tail and two loads can be compared at a glance.

use plotters::prelude::*;

use crate::percentile;

/// One load's latencies, sorted, in milliseconds.
#[derive(Debug, Clone)]
pub struct Series {
    /// Which chart it goes on: `Chart::Reads` or `Chart::Commands`.
    pub chart: Chart,
    pub name: String,
    pub sorted_ms: Vec<f64>,
}

/// The report's two charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    Reads,
    Commands,
}

impl Series {
    pub fn new(chart: Chart, name: &str, sorted_ms: &[f64]) -> Self {
        Self {
            chart,
            name: name.to_string(),
            sorted_ms: sorted_ms.to_vec(),
        }
    }
}

/// Draws `series` (those with samples) as percentile curves up to p99.9 into an SVG at `path`.
pub fn latency_chart(path: &str, title: &str, series: &[&Series]) -> anyhow::Result<()> {
    let series: Vec<&&Series> = series.iter().filter(|s| !s.sorted_ms.is_empty()).collect();
    let top = series
        .iter()
        .map(|s| percentile(&s.sorted_ms, 99.9))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    let draw = |error: &dyn std::fmt::Debug| anyhow::anyhow!("drawing {path}: {error:?}");
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0_f64..99.9_f64, 0.0_f64..top)
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .draw()
        .map_err(|e| draw(&e))?;
    for (index, one) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points = (1..=999).map(|tenth| {
            let p = f64::from(tenth) / 10.0;
            (p, percentile(&one.sorted_ms, p))
        });
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| draw(&e))?
            .label(format!(
                "{} (p50 {:.1} ms, p99 {:.1} ms)",
                one.name,
                percentile(&one.sorted_ms, 50.0),
                percentile(&one.sorted_ms, 99.0)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}
