"""SVG plots for the site, written as plain SVG text (no plotting library, no JavaScript).

Every label that comes from a result file is escaped here (markupsafe), so the returned
markup can be inserted into a page as is.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

W, H = 380, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 44
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
MAX_SERIES = len(COLORS)


class _Axis:
    def __init__(self, lo: float, hi: float, log: bool, start: float, end: float):
        self.log, self.start, self.end = log, start, end
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        if self.hi == self.lo:
            self.hi = self.lo + 1

    def __call__(self, v: float) -> float:
        v = math.log10(v) if self.log else v
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e9:
        return f"{v / 1e9:g}B"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _frame(x: _Axis, y: _Axis, xticks, yticks, xlabel: str, ylabel: str, title: str) -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {W} {H}" width="{W}" '
        f'height="{H}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="#fff" stroke="#999"/>',
    ]
    for t in xticks:
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#eee"/>')
        out.append(f'<text x="{px:.1f}" y="{H - BOTTOM + 14}" font-size="10" text-anchor="middle">{_fmt_tick(t)}</text>')
    for t in yticks:
        py = y(t)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 4}" y="{py + 3:.1f}" font-size="10" text-anchor="end">{_fmt_tick(t)}</text>')
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2:.0f}" y="{H - 8}" font-size="11" text-anchor="middle">{escape(xlabel)}</text>'
    )
    out.append(
        f'<text x="12" y="{(TOP + H - BOTTOM) / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + H - BOTTOM) / 2:.0f})">{escape(ylabel)}</text>'
    )
    return out


def _legend(labels, corner: str = "top-left") -> list[str]:
    out = []
    labels = list(labels)
    x0 = LEFT + 8 if corner.endswith("left") else W - RIGHT - 8 - 6 * max((len(s) for s in labels), default=0) - 14
    for i, label in enumerate(labels):
        yy = TOP + 12 + 13 * i if corner.startswith("top") else H - BOTTOM - 8 - 13 * (len(labels) - 1 - i)
        out.append(f'<rect x="{x0}" y="{yy - 8}" width="10" height="3" fill="{COLORS[i]}"/>')
        out.append(f'<text x="{x0 + 14}" y="{yy - 3}" font-size="10">{escape(label)}</text>')
    return out


def _polyline(points, color: str, dash: str = "") -> str:
    pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.6"{extra} points="{pts}"/>'


def roc_svg(curves, *, log: bool = False, title: str = "ROC curve") -> Markup:
    """ROC curves: ``curves`` is a list of (label, fpr list, tpr list).

    ``log=True`` draws both axes on a log scale from 1e-3 (or 1/n, whichever the data reach)
    to 1, the view that shows the low-FPR regime where membership inference matters.
    """
    curves = list(curves)[:MAX_SERIES]
    if log:
        positive = [v for _, fpr, tpr in curves for v in list(fpr) + list(tpr) if v > 0]
        floor = max(10 ** math.floor(math.log10(min(positive, default=1e-3))), 1e-4)
        floor = min(floor, 1e-2)
        x = _Axis(floor, 1, True, LEFT, W - RIGHT)
        y = _Axis(floor, 1, True, H - BOTTOM, TOP)
        ticks = [10.0**e for e in range(int(math.log10(floor)), 1)]
        out = _frame(x, y, ticks, ticks, "false-positive rate (log)", "true-positive rate (log)", title)
        out.append(_polyline([(x(floor), y(floor)), (x(1), y(1))], "#aaa", "4 3"))
        clip = lambda v: max(v, floor)  # noqa: E731
    else:
        x = _Axis(0, 1, False, LEFT, W - RIGHT)
        y = _Axis(0, 1, False, H - BOTTOM, TOP)
        ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
        out = _frame(x, y, ticks, ticks, "false-positive rate", "true-positive rate", title)
        out.append(_polyline([(x(0), y(0)), (x(1), y(1))], "#aaa", "4 3"))
        clip = lambda v: v  # noqa: E731
    for i, (_, fpr, tpr) in enumerate(curves):
        pts = [(x(clip(f)), y(clip(t))) for f, t in zip(fpr, tpr)]
        out.append(_polyline(pts, COLORS[i]))
    out += _legend([label for label, _, _ in curves], "bottom-right")
    out.append("</svg>")
    return Markup("\n".join(out))


def line_svg(series, *, xlabel: str, ylabel: str = "AUC", logx: bool = False, title: str = "") -> Markup:
    """Lines with markers: ``series`` is a list of (label, [(x, y), ...]); y is an AUC in [0, 1].

    Each point may carry a third value, the (lo, hi) 95% interval, drawn as an error bar.
    """
    series = [(label, sorted(points)) for label, points in list(series)[:MAX_SERIES] if points]
    xs = [p[0] for _, pts in series for p in pts]
    lo, hi = (min(xs), max(xs)) if xs else (1, 10)
    if logx:
        lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
        if lo == hi:
            hi = lo * 10
        xticks = [10.0**e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1)]
    else:
        if lo == hi:
            lo, hi = lo - 1, hi + 1
        step = (hi - lo) / 4
        xticks = [lo + step * i for i in range(5)]
    x = _Axis(lo, hi, logx, LEFT + 8, W - RIGHT - 8)
    y = _Axis(0.3, 1.0, False, H - BOTTOM, TOP)
    out = _frame(x, y, xticks, [0.3, 0.5, 0.7, 0.9, 1.0], xlabel, ylabel, title or f"{ylabel} against {xlabel}")
    out.append(_polyline([(x(lo), y(0.5)), (x(hi), y(0.5))], "#aaa", "4 3"))
    for i, (_, pts) in enumerate(series):
        color = COLORS[i]
        out.append(_polyline([(x(p[0]), y(min(max(p[1], 0.3), 1))) for p in pts], color))
        for p in pts:
            px, py = x(p[0]), y(min(max(p[1], 0.3), 1))
            if len(p) > 2 and p[2]:
                a, b = (y(min(max(v, 0.3), 1)) for v in p[2])
                out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{a:.1f}" y2="{b:.1f}" stroke="{color}"/>')
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>')
    out += _legend([label for label, _ in series])
    out.append("</svg>")
    return Markup("\n".join(out))
