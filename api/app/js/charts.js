// The charts of Progress, drawn as inline SVG. Each is role="img" with an
// aria-label that says what it shows; the same numbers are in a table below it.
// Colours come from app.css (classes), and every value is written next to its mark,
// so nothing is told by colour alone.

import { svg } from "./ui.js";

const WIDTH = 360;
const HEIGHT = 220;
const PLOT = { left: 40, right: WIDTH - 10, top: 24, bottom: HEIGHT - 30 };

function frame(id, label) {
  return svg("svg", {
    id,
    class: "chart",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": label,
    focusable: "false",
  });
}

/** Horizontal grid lines with their values on the left. */
function grid(ticks, y, unit) {
  return ticks.map((t) => [
    svg("line", { class: "grid", x1: PLOT.left, x2: PLOT.right, y1: y(t), y2: y(t) }),
    svg("text", { class: "axis", x: PLOT.left - 6, y: y(t) + 4, "text-anchor": "end" }, `${t}${unit}`),
  ]);
}

function centredText(text) {
  return svg("text", { class: "axis", x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle" }, text);
}

/**
 * Bars of percentages. `bars`: [{label, percent}] (percent null: nothing due, drawn
 * as "–"). `empty`: the words shown when there are no bars.
 */
export function barChart(id, label, bars, empty) {
  const chart = frame(id, label);
  const y = (v) => PLOT.bottom - ((PLOT.bottom - PLOT.top) * v) / 100;
  chart.append(...grid([0, 50, 100], y, "%").flat());
  if (!bars.length) chart.append(centredText(empty));
  const slot = (PLOT.right - PLOT.left) / Math.max(bars.length, 1);
  bars.forEach((bar, i) => {
    const middle = PLOT.left + slot * (i + 0.5);
    const text = (value, at, cls) => svg("text", { class: cls, x: middle, y: at, "text-anchor": "middle" }, value);
    chart.append(text(bar.label, HEIGHT - 10, "axis"));
    if (bar.percent === null) {
      chart.append(text("–", PLOT.bottom - 6, "value"));
      return;
    }
    const top = y(bar.percent);
    const width = Math.min(slot * 0.6, 40);
    chart.append(
      svg("rect", { class: "bar", x: middle - width / 2, y: top, width, height: PLOT.bottom - top }),
      text(`${bar.percent}%`, top - 6, "value"),
    );
  });
  return chart;
}

/**
 * A line of scores over time, from 0 to 10 unless `scale` ({min, max}) says otherwise.
 * `points`: [{time (ms), score}], oldest first; `first` and `last`: the labels under the
 * first and last points (`last` null when it would say the same).
 */
export function lineChart(id, label, points, first, last, empty, scale = { min: 0, max: 10 }) {
  const chart = frame(id, label);
  const { min, max } = scale;
  const y = (v) => PLOT.bottom - ((PLOT.bottom - PLOT.top) * (v - min)) / (max - min);
  chart.append(...grid([min, (min + max) / 2, max], y, "").flat());
  if (!points.length) {
    chart.append(centredText(empty));
    return chart;
  }
  const t0 = points[0].time;
  const span = points[points.length - 1].time - t0;
  const x = (t) => (span ? PLOT.left + ((PLOT.right - PLOT.left) * (t - t0)) / span : (PLOT.left + PLOT.right) / 2);
  chart.append(
    svg("polyline", { class: "line", points: points.map((p) => `${x(p.time)},${y(p.score)}`).join(" ") }),
    ...points.map((p) =>
      svg("circle", { class: "point", cx: x(p.time), cy: y(p.score), r: points.length > 40 ? 2.5 : 4 }),
    ),
    svg("text", { class: "axis", x: x(t0), y: HEIGHT - 10, "text-anchor": span ? "start" : "middle" }, first),
  );
  if (last) chart.append(svg("text", { class: "axis", x: PLOT.right, y: HEIGHT - 10, "text-anchor": "end" }, last));
  return chart;
}
