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


def _tick(t) -> tuple[float, str]:
    """A tick is a number, or (number, label)."""
    return (float(t[0]), str(t[1])) if isinstance(t, tuple) else (float(t), _fmt_tick(t))


def _frame(x: _Axis, y: _Axis, xticks, yticks, xlabel: str, ylabel: str, title: str, extra: str = "") -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {W} {H}" width="{W}" '
        f'height="{H}" role="img" aria-label="{escape(title)}"{extra}><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="#fff" stroke="#999"/>',
    ]
    for t, label in map(_tick, xticks):
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#eee"/>')
        out.append(f'<text x="{px:.1f}" y="{H - BOTTOM + 14}" font-size="10" text-anchor="middle">{escape(label)}</text>')
    for t, label in map(_tick, yticks):
        py = y(t)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 4}" y="{py + 3:.1f}" font-size="10" text-anchor="end">{escape(label)}</text>')
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


def _log_ticks(floor: float, n: int | None) -> list:
    """The floor itself (labelled 1/n), then every decade above it that is not too close."""
    decades = [10.0**e for e in range(math.ceil(math.log10(floor) - 1e-9), 1)]
    if n is None or any(abs(math.log10(d / floor)) < 1e-9 for d in decades):
        return decades
    return [(floor, f"1/{n}")] + [d for d in decades if math.log10(d / floor) > 0.35]


def roc_svg(curves, *, log: bool = False, title: str = "ROC curve", n_members: int | None = None,
            n_nonmembers: int | None = None) -> Markup:
    """ROC curves: ``curves`` is a list of (label, fpr list, tpr list).

    ``log=True`` draws both axes on a log scale that stops at what the split can resolve: the
    FPR axis at 1/n_nonmembers (one false positive) and the TPR axis at 1/n_members, never
    below; points under that floor (rate 0) sit on the axis. The view shows the low-FPR regime
    where membership inference matters, and nothing finer than the data can say.
    """
    curves = list(curves)[:MAX_SERIES]
    if log:
        fx = 1.0 / n_nonmembers if n_nonmembers else 1e-3
        fy = 1.0 / n_members if n_members else 1e-3
        x = _Axis(fx, 1, True, LEFT, W - RIGHT)
        y = _Axis(fy, 1, True, H - BOTTOM, TOP)
        out = _frame(x, y, _log_ticks(fx, n_nonmembers), _log_ticks(fy, n_members), "false-positive rate (log)",
                     "true-positive rate (log)", title, extra=f' data-fpr-min="{fx:.6g}" data-tpr-min="{fy:.6g}"')
        out.append(_polyline([(x(max(fx, fy)), y(max(fx, fy))), (x(1), y(1))], "#aaa", "4 3"))
        clip_x, clip_y = (lambda v: max(v, fx)), (lambda v: max(v, fy))
    else:
        x = _Axis(0, 1, False, LEFT, W - RIGHT)
        y = _Axis(0, 1, False, H - BOTTOM, TOP)
        ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
        out = _frame(x, y, ticks, ticks, "false-positive rate", "true-positive rate", title)
        out.append(_polyline([(x(0), y(0)), (x(1), y(1))], "#aaa", "4 3"))
        clip_x = clip_y = lambda v: v  # noqa: E731
    for i, (_, fpr, tpr) in enumerate(curves):
        pts = [(x(clip_x(f)), y(clip_y(t))) for f, t in zip(fpr, tpr)]
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


ABOVE, NOT_ABOVE, NO_BLIND = "#1a7f37", "#6e7781", "#1f77b4"
BLIND = "#d4760a"


def _short(label: str, n: int = 30) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def auc_vs_blind_svg(rows, *, blind: float | None, blind_ci=None, title: str, control: bool = False) -> Markup:
    """The field's central question in one picture: each scorer's AUC with its 95% interval,
    beside the split's best blind-baseline AUC (a band: its interval; a line: its value).

    ``rows`` are dicts with ``label``, ``auc``, ``lo``, ``hi``, ``above`` (True when the whole
    interval clears the blind AUC, None where that comparison means nothing: model-free
    scorers, control splits), ``model_free`` and optionally ``href``. Filled green: above the
    blind baseline; filled grey: not above; hollow: model-free. On a control split both
    classes share membership status, so the chance line (0.5) is the reference.
    """
    rows = list(rows)
    left, right, top, row_h, bottom = 178, 14, 28, 17, 40
    width = 470
    height = top + row_h * max(len(rows), 1) + bottom
    lows = [r["lo"] for r in rows if r.get("lo") is not None] + ([blind_ci[0]] if blind_ci else []) + (
        [blind] if blind is not None else [])
    lo = min([0.4] + [math.floor(v * 10) / 10 for v in lows])
    x = _Axis(lo, 1.0, False, left, width - right)
    label = escape(title)
    blind_attr = f' data-blind-auc="{blind:.4f}"' if blind is not None else ""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot overview" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}"{blind_attr}><title>{label}</title>',
        f'<rect x="{left}" y="{top - 6}" width="{width - left - right}" height="{row_h * max(len(rows), 1) + 6}" '
        f'fill="#fff" stroke="#bbb"/>',
    ]
    ticks = [round(lo + 0.1 * i, 1) for i in range(int(round((1.0 - lo) * 10)) + 1)]
    axis_y = top + row_h * max(len(rows), 1)
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 6}" y2="{axis_y}" stroke="#eee"/>')
        out.append(f'<text x="{x(t):.1f}" y="{axis_y + 13}" font-size="10" text-anchor="middle">{t:g}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.0f}" y="{axis_y + 28}" font-size="11" text-anchor="middle">'
               f'AUC with 95% interval</text>')
    out.append(f'<line x1="{x(0.5):.1f}" x2="{x(0.5):.1f}" y1="{top - 6}" y2="{axis_y}" stroke="#999" '
               f'stroke-dasharray="4 3"/>')
    if blind is not None:
        if blind_ci:
            a, b = x(max(blind_ci[0], lo)), x(min(blind_ci[1], 1.0))
            out.append(f'<rect class="blind-band" x="{a:.1f}" y="{top - 6}" width="{max(b - a, 1):.1f}" '
                       f'height="{axis_y - top + 6}" fill="{BLIND}" fill-opacity="0.15"/>')
        out.append(f'<line class="blind-line" x1="{x(blind):.1f}" x2="{x(blind):.1f}" y1="{top - 6}" y2="{axis_y}" '
                   f'stroke="{BLIND}" stroke-width="2"/>')
        anchor = "end" if x(blind) > width - right - 30 else "middle"
        out.append(f'<text x="{min(x(blind), width - 2):.1f}" y="{top - 10}" font-size="10" text-anchor="{anchor}" '
                   f'fill="{BLIND}">blind {blind:.2f}</text>')
    else:
        out.append(f'<text x="{left + 4}" y="{top - 10}" font-size="10" fill="#777">'
                   f'{"control split: 0.5 is the reference" if control else "no blind baseline for this split"}</text>')
    for i, r in enumerate(rows):
        cy = top + row_h * i + row_h / 2 - 3
        color = NO_BLIND if r.get("above") is None else (ABOVE if r["above"] else NOT_ABOVE)
        tip = escape(r.get("tip") or r["label"])
        state = "n/a" if r.get("above") is None else ("above" if r["above"] else "not-above")
        out.append(f'<g class="row" data-auc="{r["auc"]:.4f}" data-vs-blind="{state}"><title>{tip}</title>')
        text = f'<text x="{left - 6}" y="{cy + 3.5:.1f}" font-size="10.5" text-anchor="end">{escape(_short(r["label"]))}</text>'
        out.append(f'<a href="{escape(r["href"])}">{text}</a>' if r.get("href") else text)
        if r.get("lo") is not None and r.get("hi") is not None:
            out.append(f'<line x1="{x(max(r["lo"], lo)):.1f}" x2="{x(r["hi"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                       f'stroke="{color}" stroke-width="2"/>')
        fill = "#fff" if r.get("model_free") else color
        out.append(f'<circle cx="{x(max(r["auc"], lo)):.1f}" cy="{cy:.1f}" r="4" fill="{fill}" stroke="{color}" '
                   f'stroke-width="1.6"/></g>')
    out.append("</svg>")
    return Markup("\n".join(out))


def histogram_svg(hist: dict, *, title: str) -> Markup:
    """Score histograms of members and non-members on shared bins (each as a fraction of its
    class), drawn as step lines."""
    edges, members, nonmembers = hist["edges"], hist["members"], hist["nonmembers"]
    top = max(members + nonmembers + [1e-9])
    x = _Axis(edges[0], edges[-1], False, LEFT, W - RIGHT)
    y = _Axis(0, top * 1.1, False, H - BOTTOM, TOP)
    xticks = [edges[0] + (edges[-1] - edges[0]) * i / 4 for i in range(5)]
    yticks = [round(top * 1.1 * i / 4, 3) for i in range(5)]
    out = _frame(x, y, [(t, f"{t:.3g}") for t in xticks], yticks, "score (higher = member)", "fraction of class", title)
    for values, color in ((members, COLORS[0]), (nonmembers, COLORS[1])):
        pts = [(x(edges[0]), y(0))]
        for i, v in enumerate(values):
            pts += [(x(edges[i]), y(v)), (x(edges[i + 1]), y(v))]
        pts.append((x(edges[-1]), y(0)))
        out.append(_polyline(pts, color))
    out += _legend([f"members (n={hist['n_members']})", f"non-members (n={hist['n_nonmembers']})"])
    out.append("</svg>")
    return Markup("\n".join(out))
