"""Pure drawing functions: arrays and records in, uint8 RGB images (H, W, 3) out.

``viz`` is the bottom layer of the package: it imports nothing else from athanor, so every other layer
(core, report, envs, systems, experiments) may draw through it.

Every function renders with matplotlib's Agg rasteriser through the object-oriented API
(``matplotlib.figure.Figure`` + ``FigureCanvasAgg``) and returns the pixel buffer. pyplot is never
imported, so no global figure registry exists to leak memory, nothing is ever shown, and the
process-wide backend a user picked (e.g. in a notebook) is left untouched; this is the deliberate
alternative to calling ``matplotlib.use("Agg")`` on import. Figures render at ``DPI`` = 100, which
keeps one call in the tens of milliseconds.

Functions:
- :func:`heatmap` draws a :class:`~athanor.viz.table.Heatmap`, the labelled table a system may return.
- :func:`render` rasterise any matplotlib ``Figure`` built by a caller into that uint8 array.
- :func:`heatmap` the table with every cell annotated in ``hm.fmt`` (the post's digit x colour
  frequency and error tables); non-finite cells are drawn grey and left blank.
- :func:`heatmap_grid` several tables side by side, each with its own colour scale.
- :func:`curves` a metric against step (or any x key), one panel per metric, one line per value of a series
  key (record ``kind`` by default: train / eval; or a run label); loss-like metrics that are strictly
  positive and span more than ``LOG_SPAN`` use a log y axis.
- :func:`image_grid` a batch of images (or a list of images of different sizes) tiled into rows of ``nrow``
  with ``pad`` pixels between and around them, each upscaled by an integer ``scale`` with nearest-neighbour
  repetition (pixel art stays crisp). This one needs no matplotlib: it is plain array placement.
- :func:`bar_compare` mean +- spread per system, the value written above each bar.
- :func:`scatter2d` 2-D points as a scatter or a density (2-D histogram), with free or fixed limits,
  optional guide polylines, and optional class labels that colour the dots.
- :func:`labelled_paths` lines through labelled points (a trade-off over a hyperparameter, such as an
  information plane with one point per beta).
- :func:`action_scatter` 2-D actions on [-1.1, 1.1]^2 with the unit circle and square (the offline-RL post's
  "data actions" / "policy actions" figure): :func:`scatter2d` with fixed limits and two guides.
- :func:`grid_panels` several 2-D grids of values side by side on one shared colour scale, empty cells grey
  (a quality-diversity archive over time).
- :func:`stacked_area` counts over time stacked in bands (species abundances).
- :func:`categorical_frames` integer category grids to colour frames through a palette (a world's cells).
- :func:`swatches` a legend panel of colour squares and labels, to set beside frames.
- :func:`bar_panel` horizontal bars on a fixed scale, one panel per video frame (a gauge beside a world).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from athanor.viz.table import Heatmap

__all__ = ["render", "heatmap", "heatmap_grid", "curves", "image_grid", "bar_compare", "scatter2d",
           "action_scatter", "labelled_paths", "grid_panels", "to_rgb_uint8", "use_log_axis", "text_outlines",
           "stacked_area", "categorical_frames", "swatches", "bar_panel", "DPI"]

DPI = 100
# Substrings that mark a metric whose scale spans decades, so a log axis shows its progress.
LOSS_LIKE = ("loss", "kl", "nll", "mse", "bpd", "error", "perplexity")
LOG_SPAN = 20.0  # max/min ratio above which a positive loss-like metric is drawn on a log axis
BLANK_CELL = "#d9d9d9"


def render(fig: Figure) -> np.ndarray:
    """Rasterise a figure to (H, W, 3) uint8 and drop the canvas so the figure can be collected.

    Build the figure with ``matplotlib.figure.Figure`` (never pyplot) at ``DPI``; this is how every function
    here turns a drawing into pixels, and how a caller's own figure becomes an artifact."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) view into the canvas
    rgb = np.ascontiguousarray(rgba[..., :3]).copy()
    fig.clear()
    return rgb


def _format(value: float, fmt: str) -> str:
    """Format a cell with the table's own format, falling back to 4 significant digits if it is invalid."""
    try:
        return format(value, fmt)
    except (ValueError, TypeError):
        return format(value, ".4g")


def _draw_heatmap(fig: Figure, ax, hm: Heatmap, *, colorbar: bool = True) -> None:
    values = hm.values  # (R, C) float64, validated by Heatmap
    finite = np.isfinite(values)
    lo = hm.vmin if hm.vmin is not None else (float(values[finite].min()) if finite.any() else 0.0)
    hi = hm.vmax if hm.vmax is not None else (float(values[finite].max()) if finite.any() else 1.0)
    if hi <= lo:
        # A constant table still needs a non-degenerate scale to pick a colour.
        hi = lo + 1.0
    try:
        cmap = colormaps[hm.cmap].with_extremes(bad=BLANK_CELL)
    except KeyError:
        cmap = colormaps["viridis"].with_extremes(bad=BLANK_CELL)
    norm = Normalize(vmin=lo, vmax=hi)
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto",
                   interpolation="nearest")
    n_rows, n_cols = values.shape
    if _rotate_columns(hm):  # long column labels would run into each other side by side
        ax.set_xticks(range(n_cols), [str(c) for c in hm.cols], rotation=40, ha="left", rotation_mode="anchor")
    else:
        ax.set_xticks(range(n_cols), [str(c) for c in hm.cols])
    ax.set_yticks(range(n_rows), [str(r) for r in hm.rows])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fontsize = 9 if max(n_rows, n_cols) <= 12 else 6
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            if not finite[i, j]:
                continue
            r, g, b, _ = cmap(norm(v))
            # Dark text on light cells and vice versa (ITU-R 601 luma).
            colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, _format(v, hm.fmt), ha="center", va="center", color=colour, fontsize=fontsize)
    if hm.title:
        ax.set_title(hm.title, fontsize=10)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)


COLUMN_CHARS = 9  # column labels longer than this (about one 0.75-inch column at font size 9) are rotated


def _rotate_columns(hm: Heatmap) -> bool:
    return max((len(str(c)) for c in hm.cols), default=0) > COLUMN_CHARS


def _heatmap_size(hm: Heatmap) -> tuple[float, float]:
    n_rows, n_cols = hm.values.shape
    label_w = 0.08 * max((len(str(r)) for r in hm.rows), default=1)
    label_h = 0.055 * max(len(str(c)) for c in hm.cols) if _rotate_columns(hm) else 0.0
    return 1.6 + label_w + 0.75 * n_cols, 1.0 + label_h + 0.42 * n_rows + (0.3 if hm.title else 0.0)


def heatmap(hm: Heatmap) -> np.ndarray:
    """Draw one labelled table (rows on the left, columns on top), every finite cell annotated."""
    if not isinstance(hm, Heatmap):
        raise TypeError(f"heatmap() takes an athanor.viz.table.Heatmap, got {type(hm).__name__}")
    fig = Figure(figsize=_heatmap_size(hm), dpi=DPI, layout="constrained")
    _draw_heatmap(fig, fig.add_subplot(), hm)
    return render(fig)


def heatmap_grid(heatmaps: Sequence[Heatmap], ncols: int = 3) -> np.ndarray:
    """Several tables in a grid of ``ncols`` columns, each keeping its own colour scale and colour bar."""
    heatmaps = list(heatmaps)
    if not heatmaps:
        raise ValueError("heatmap_grid() needs at least one Heatmap")
    if ncols < 1:
        raise ValueError(f"heatmap_grid(): ncols must be >= 1, got {ncols}")
    ncols = min(ncols, len(heatmaps))
    nrows = math.ceil(len(heatmaps) / ncols)
    w = max(_heatmap_size(h)[0] for h in heatmaps)
    h = max(_heatmap_size(h)[1] for h in heatmaps)
    fig = Figure(figsize=(w * ncols, h * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < len(heatmaps):
            _draw_heatmap(fig, ax, heatmaps[k])
        else:
            ax.set_axis_off()
    return render(fig)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def use_log_axis(key: str, values: Sequence[float]) -> bool:
    """Log y for a loss-like metric whose values are all positive and span at least ``LOG_SPAN``.

    A log axis only pays off when the values cover decades; within one it mostly hides the tick labels.
    """
    if not values or min(values) <= 0:
        return False
    return max(values) >= LOG_SPAN * min(values) and any(t in key.lower() for t in LOSS_LIKE)


def curves(records: Sequence[Mapping], keys: Sequence[str], title: str = "", *, x: str = "step",
           series: str = "kind", xlabel: str | None = None, log_loss: bool = True, log_x: bool = False) -> np.ndarray:
    """Metric against ``x``: one panel per key, one line per value of the record field ``series``.

    ``records`` are flat dicts such as metrics.jsonl rows (``{"step", "kind", <metric>: float}``); rows without
    the key or ``x``, or with a non-finite value, are skipped for that key. By default the lines are the record
    kinds (train / eval); pass ``series="label"`` (or any field) to draw one line per run, e.g. with records
    ``{"step", "label", "success"}`` gathered from several runs. Lines are drawn in order of first appearance,
    ``train`` first. With ``log_loss`` a key whose name looks like a loss (see ``LOSS_LIKE``) and whose values
    are all positive and span decades is drawn on a log axis; ``log_x`` puts x on a log axis (a sweep over
    decades of a hyperparameter; rows with x <= 0 are then skipped).
    """
    keys = list(keys)
    if not keys:
        raise ValueError("curves() needs at least one metric key")
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 2.8 * nrows + (0.3 if title else 0.0)), dpi=DPI,
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        lines: dict[str, tuple[list[float], list[float]]] = {}
        for rec in records:
            v, s = rec.get(key), rec.get(x)
            if not (_is_number(v) and _is_number(s)) or not math.isfinite(float(v)) or (log_x and s <= 0):
                continue
            xs, ys = lines.setdefault(str(rec.get(series, "")), ([], []))
            xs.append(float(s))
            ys.append(float(v))
        if not lines:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
        for name, (xs, ys) in sorted(lines.items(), key=lambda kv: kv[0] != "train"):  # stable: first seen
            order = np.argsort(xs, kind="stable")
            ax.plot(np.asarray(xs)[order], np.asarray(ys)[order], label=name or None,
                    marker="o" if len(xs) <= 25 else None, markersize=3, linewidth=1.4)
        if log_loss and use_log_axis(key, [y for _, ys in lines.values() for y in ys]):
            ax.set_yscale("log")
        if log_x:
            ax.set_xscale("log")
        only = next(iter(lines)) if len(lines) == 1 else ""
        ax.set_title(f"{key} ({only})" if only and only != "train" else key, fontsize=10)
        ax.set_xlabel(xlabel or x, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    return render(fig)


def to_rgb_uint8(images: np.ndarray, *, background: float = 1.0) -> np.ndarray:
    """(..., C) images, uint8 or float in [0, 1], C in {1, 3, 4} -> (..., 3) uint8.

    uint8 RGB passes through unchanged. Floats are clipped to [0, 1] and rounded. Grey is repeated to
    three channels; RGBA is composited over a ``background`` grey level (white by default, as NCA
    renderings are).
    """
    x = np.asarray(images)
    if x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images need 1, 3 or 4 channels in the last axis, got shape {x.shape}")
    if x.dtype == np.uint8 and x.shape[-1] == 3:
        return x
    if x.dtype == np.uint8:
        xf = x.astype(np.float64) / 255.0
    elif np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.bool_):
        xf = x.astype(np.float64)
        if not np.isfinite(xf).all():
            raise ValueError("images contain NaN or infinite values; check the model output before drawing")
        xf = np.clip(xf, 0.0, 1.0)
    else:
        raise TypeError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")
    if xf.shape[-1] == 1:
        xf = np.repeat(xf, 3, axis=-1)
    elif xf.shape[-1] == 4:
        alpha = xf[..., 3:4]
        xf = xf[..., :3] * alpha + background * (1.0 - alpha)
    return np.round(xf * 255.0).astype(np.uint8)


def image_grid(images, nrow: int = 8, pad: int = 2, scale: int = 1, *, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into a grid with ``nrow`` images per row -> (H', W', 3) uint8.

    ``images`` is an (N, H, W, C) or (N, H, W) array, or a sequence of N images whose sizes may differ: every
    cell then has the largest height H and width W, and a smaller image sits in its cell's top-left corner.
    Image k sits in grid row ``k // nrow`` and column ``k % nrow``; its top-left pixel is at
    ``(pad + row * (H * scale + pad), pad + col * (W * scale + pad))``. Padding, the unused part of a cell and
    empty trailing cells take the grey level ``pad_value``. Single-channel input is treated as grey.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("image_grid() needs at least one image")
        items = [np.asarray(i) for i in images]
    else:
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[0] == 0:
            raise ValueError(f"image_grid() takes (N, H, W, C) or (N, H, W) with N >= 1, got shape {x.shape}")
        items = list(x)
    if nrow < 1 or pad < 0 or scale < 1:
        raise ValueError(f"image_grid(): need nrow >= 1, pad >= 0, scale >= 1; got {nrow}, {pad}, {scale}")
    rgb = []
    for i in items:
        img = i[..., None] if i.ndim == 2 else i
        if img.ndim != 3:
            raise ValueError(f"image_grid(): every image must be (H, W) or (H, W, C), got shape {i.shape}")
        img = to_rgb_uint8(img)
        rgb.append(np.repeat(np.repeat(img, scale, axis=0), scale, axis=1) if scale > 1 else img)
    n = len(rgb)
    h, w = max(i.shape[0] for i in rgb), max(i.shape[1] for i in rgb)
    ncols = min(nrow, n)
    nrows = math.ceil(n / ncols)
    fill = np.uint8(round(float(np.clip(pad_value, 0.0, 1.0)) * 255))
    grid = np.full((pad + nrows * (h + pad), pad + ncols * (w + pad), 3), fill, dtype=np.uint8)
    for k, img in enumerate(rgb):
        r, c = divmod(k, ncols)
        y, xo = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + img.shape[0], xo:xo + img.shape[1]] = img
    return grid


def bar_compare(names: Sequence[str], means: Sequence[float], stds: Sequence[float] | None = None,
                title: str = "", ylabel: str = "") -> np.ndarray:
    """One bar per system at its mean with a +-std error bar; NaN std (one seed) draws no bar."""
    names = [str(n) for n in names]
    means_a = np.asarray(means, dtype=np.float64)
    stds_a = np.zeros_like(means_a) if stds is None else np.asarray(stds, dtype=np.float64)
    if not (len(names) == means_a.shape[0] == stds_a.shape[0]) or means_a.ndim != 1:
        raise ValueError(f"bar_compare(): names, means and stds must have one entry each; got "
                         f"{len(names)}, {means_a.shape}, {stds_a.shape}")
    if not names:
        raise ValueError("bar_compare() needs at least one bar")
    ok = np.isfinite(means_a)
    heights = np.where(ok, means_a, 0.0)
    has_err = ok & np.isfinite(stds_a)
    errs = np.where(has_err, np.abs(np.nan_to_num(stds_a)), 0.0)
    fig = Figure(figsize=(1.2 + 0.9 * len(names), 3.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    xs = np.arange(len(names))
    colours = [colormaps["tab10"](i % 10) for i in range(len(names))]
    ax.bar(xs, heights, color=colours, edgecolor="black", linewidth=0.6)
    if has_err.any():
        ax.errorbar(xs[has_err], heights[has_err], yerr=errs[has_err], fmt="none", ecolor="black", capsize=4,
                    linewidth=1.0)
    for x, m, e in zip(xs, means_a, errs, strict=True):
        if not math.isfinite(m):
            ax.annotate("n/a", (x, 0.0), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, color="grey")
            continue
        up = m >= 0
        ax.annotate(f"{m:.4g}", (x, m + e if up else m - e), xytext=(0, 3 if up else -3),
                    textcoords="offset points", ha="center", va="bottom" if up else "top", fontsize=8)
    rotate = max(len(n) for n in names) > 8
    ax.set_xticks(xs, names, rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=9)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.grid(True, axis="y", alpha=0.3)
    ax.margins(y=0.15)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    return render(fig)


def scatter2d(points, *, title: str = "", xlabel: str = "", ylabel: str = "",
              xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
              density: bool = False, bins: int = 64, guides: Sequence = (), equal: bool = False,
              size: tuple[float, float] = (3.6, 3.2), max_points: int = 20000, labels=None) -> np.ndarray:
    """2-D points (N, 2) as small translucent dots, or with ``density`` as a 2-D histogram of ``bins`` x ``bins``.

    ``labels`` (N,) integers colour the dots by class (tab10, with a legend) instead of one colour.

    Limits are free (fitted to the data with a 5% margin) unless ``xlim`` / ``ylim`` fix them. ``guides`` are
    polylines (M, 2) drawn thin and grey under the points (a unit circle, a wall), each optionally as a pair
    ``(polyline, {matplotlib line options})``. ``equal`` keeps one unit the
    same length on both axes. ``size`` is (width, height) in inches at ``DPI``. Non-finite rows are dropped;
    above ``max_points`` rows an evenly strided subset is drawn as dots (a density uses every row). The count
    in the corner is of the rows drawn.
    """
    a = np.asarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"scatter2d() takes points of shape (N, 2), got {a.shape}")
    cls = None if labels is None else np.asarray(labels).reshape(-1)
    if cls is not None and cls.shape[0] != a.shape[0]:
        raise ValueError(f"scatter2d(): {cls.shape[0]} labels for {a.shape[0]} points")
    keep = np.isfinite(a).all(axis=1)
    a, cls = a[keep], None if cls is None else cls[keep]
    if not density and max_points > 0 and len(a) > max_points:
        stride = math.ceil(len(a) / max_points)
        a, cls = a[::stride], None if cls is None else cls[::stride]
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for g in guides:
        g, style = g if isinstance(g, tuple) else (g, {})
        g = np.asarray(g, dtype=np.float64)
        ax.plot(g[:, 0], g[:, 1], **{"color": "black", "linewidth": 0.8, "alpha": 0.6, **style})
    lims = []
    for axis, fixed in ((0, xlim), (1, ylim)):
        if fixed is not None:
            lims.append((float(fixed[0]), float(fixed[1])))
            continue
        lo, hi = (float(a[:, axis].min()), float(a[:, axis].max())) if len(a) else (-1.0, 1.0)
        margin = 0.05 * (hi - lo) if hi > lo else 0.5
        lims.append((lo - margin, hi + margin))
    if density and len(a):
        hist, xe, ye = np.histogram2d(a[:, 0], a[:, 1], bins=bins, range=lims)
        im = ax.imshow(np.ma.masked_equal(hist.T, 0), origin="lower", aspect="auto", interpolation="nearest",
                       extent=(xe[0], xe[-1], ye[0], ye[-1]), cmap="viridis")
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="count")
    elif len(a):
        # alpha falls with the point count so dense regions stay readable instead of saturating
        alpha = float(np.clip(2000.0 / len(a), 0.1, 0.6))
        if cls is None:
            ax.scatter(a[:, 0], a[:, 1], s=3.0, alpha=alpha, color=colormaps["tab10"](0), linewidths=0,
                       rasterized=True)
        else:
            for i, c in enumerate(np.unique(cls)):
                sel = cls == c
                ax.scatter(a[sel, 0], a[sel, 1], s=3.0, alpha=alpha, color=colormaps["tab10"](i % 10),
                           linewidths=0, rasterized=True, label=str(c))
            ax.legend(fontsize=6, markerscale=3, loc="upper right", ncols=2, framealpha=0.8)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    if equal:
        ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.text(0.02, 0.02, f"n={len(a)}", transform=ax.transAxes, fontsize=7, color="grey")
    _label(ax, title, xlabel, ylabel, fontsize=8)
    return render(fig)


def _label(ax, title: str, xlabel: str, ylabel: str, fontsize: int) -> None:
    """Axis labels at ``fontsize`` and the title one point larger, each only when given."""
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=fontsize)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=fontsize)
    if title:
        ax.set_title(title, fontsize=fontsize + 1)


def labelled_paths(paths: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[str]]], *,
                   title: str = "", xlabel: str = "", ylabel: str = "", size: tuple[float, float] = (5.0, 3.8),
                   log_x: bool = False) -> np.ndarray:
    """Lines through labelled points, one per series: ``{series: (xs, ys, point labels)}``, each point annotated
    with its label (a trade-off curve whose points are settings, e.g. an information plane over beta). Points
    are joined in the order given; non-finite points are skipped."""
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for i, (name, (xs, ys, labels)) in enumerate(paths.items()):
        x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        if not (len(x) == len(y) == len(labels)):
            raise ValueError(f"labelled_paths(): series '{name}' needs as many labels as points")
        ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log_x else True)
        colour = colormaps["tab10"](i % 10)
        ax.plot(x[ok], y[ok], marker="o", markersize=4, linewidth=1.2, color=colour, label=name)
        for xi, yi, text in zip(x[ok], y[ok], np.asarray(labels, dtype=object)[ok], strict=True):
            ax.annotate(str(text), (xi, yi), xytext=(4, -10 if i % 2 else 4), textcoords="offset points",
                        fontsize=7, color=colour)
    if log_x:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    if len(paths) > 1:
        ax.legend(fontsize=8)
    _label(ax, title, xlabel, ylabel, fontsize=9)
    return render(fig)


def action_scatter(actions, title: str = "", size: float = 3.2, max_points: int = 20000) -> np.ndarray:
    """2-D actions as small translucent points on [-1.1, 1.1]^2 with the unit circle and the unit square drawn.

    ``size`` is the figure's side in inches (``size * DPI`` pixels). Above ``max_points`` rows an evenly strided
    subset is drawn, which keeps the picture (and the time to draw it) independent of the dataset's size.
    """
    theta = np.linspace(0.0, 2.0 * np.pi, 256)
    circle = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], np.float64)
    square_style = {"color": "grey", "linestyle": "--", "alpha": 0.8}
    return scatter2d(actions, title=title, xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), guides=(circle, (square, square_style)),
                     equal=True, size=(size, size), max_points=max_points)


def grid_panels(grids: Sequence[np.ndarray], titles: Sequence[str], *, extent: tuple[float, float, float, float],
                xlabel: str = "", ylabel: str = "", label: str = "", ncols: int | None = None,
                vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D grids of values, one panel each, on one shared colour scale; NaN cells are drawn grey.

    ``grids[k]`` is indexed [x bin, y bin] and drawn with x to the right and y upwards over ``extent`` =
    (x_low, x_high, y_low, y_high). The colour scale spans every finite value unless ``vmin`` / ``vmax`` fix it;
    ``label`` names it on the colour bar. Panels fill rows of ``ncols`` (default: all in one row).
    """
    if not grids or len(grids) != len(titles):
        raise ValueError(f"grid_panels() needs one title per grid and at least one grid, got {len(grids)} grids "
                         f"and {len(titles)} titles")
    ncols = len(grids) if ncols is None else ncols
    nrows = -(-len(grids) // ncols)
    finite = [np.asarray(g, np.float64)[np.isfinite(g)] for g in grids]
    values = np.concatenate(finite) if any(v.size for v in finite) else np.zeros(1)
    lo = float(values.min()) if vmin is None else vmin
    hi = max(float(values.max()) if vmax is None else vmax, lo + 1e-6)
    fig = Figure(figsize=(2.7 * ncols + 0.9, 2.5 * nrows + 0.2), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap = colormaps["viridis"].with_extremes(bad=BLANK_CELL)
    im = None
    for n, ax in enumerate(axes.flat):
        if n >= len(grids):
            ax.set_axis_off()
            continue
        im = ax.imshow(np.ma.masked_invalid(np.asarray(grids[n], np.float64).T), origin="lower", aspect="auto",
                       cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest", extent=extent)
        ax.set_title(titles[n], fontsize=9)
        ax.tick_params(labelsize=7)
        if n // ncols == nrows - 1 and xlabel:
            ax.set_xlabel(xlabel, fontsize=8)
        if n % ncols == 0 and ylabel:
            ax.set_ylabel(ylabel, fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label=label)
    return render(fig)


def text_outlines(text: str, height: float) -> list[np.ndarray]:
    """The outlines of ``text`` set in bold DejaVu Sans (matplotlib's bundled font), as closed polylines (m, 2) of
    (row, col) in a grid whose capital letters are about ``height`` cells tall, with the top-left of the text's
    box at (0, 0): a path to place things along (StampCA draws a word with seeds)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = TextPath((0, 0), text, size=height / 0.73, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    box = path.get_extents()
    return [np.stack([box.y1 - poly[:, 1], poly[:, 0] - box.x0], axis=1) for poly in path.to_polygons()]


def stacked_area(x, counts, labels: Sequence[str], *, colours=None, title: str = "", xlabel: str = "",
                 ylabel: str = "") -> np.ndarray:
    """Columns of ``counts`` (T, K) stacked over ``x`` (T,), one band per label (a species plot)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != len(labels) or counts.shape[0] != len(x):
        raise ValueError(f"stacked_area: counts {counts.shape} do not match {len(x)} x values and {len(labels)} "
                         "labels")
    fig = Figure(figsize=(7.5, 3.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    kw = {"colors": [tuple(c) for c in colours]} if colours is not None else {}
    ax.stackplot(np.asarray(x, dtype=np.float64), counts.T, labels=list(labels), **kw)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return render(fig)


def categorical_frames(grids, colours, scale: int = 1) -> np.ndarray:
    """Integer grids (T, H, W) of category indices -> uint8 RGB frames (T, H * scale, W * scale, 3).

    ``colours`` (K, 3) floats in [0, 1]; index -1 takes the last colour (for example empty space)."""
    grids = np.asarray(grids)
    palette = (np.clip(np.asarray(colours, np.float64), 0, 1) * 255).round().astype(np.uint8)
    frames = palette[np.where(grids < 0, len(palette) - 1, grids)]
    if scale > 1:
        frames = frames.repeat(scale, axis=-3).repeat(scale, axis=-2)
    return frames


def swatches(entries: Sequence[tuple[str, Sequence[float]]], height: int, width: int = 260,
             title: str = "") -> np.ndarray:
    """A legend panel (height, width, 3): one colour square and label per entry."""
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    n = max(len(entries), 1)
    step = min(1.0 / (n + 1.5), 0.09)
    if title:
        ax.text(0.05, 1 - step, title, fontsize=9, weight="bold", va="center")
    for i, (label, colour) in enumerate(entries):
        y = 1 - step * (i + 2)
        ax.add_patch(_rectangle((0.05, y - step * 0.35), 0.08, step * 0.7, colour))
        ax.text(0.17, y, label, fontsize=8, va="center", family="monospace")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    img = render(fig)
    return img[:height, :width]


def _rectangle(xy, w: float, h: float, colour):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, w, h, facecolor=tuple(colour), edgecolor="black", linewidth=0.5)


def bar_panel(values, labels: Sequence[str], *, vmax: float, height: int, width: int = 220, title: str = "",
              colours=None) -> np.ndarray:
    """Horizontal bars of ``values`` on a fixed scale [0, vmax], as a (height, width, 3) panel: a frame-by-frame
    gauge beside a video (for example the mean amount of each chemical)."""
    values = np.asarray(values, dtype=np.float64)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(values))[::-1]
    ax.barh(y, values, color=None if colours is None else [tuple(c) for c in colours])
    ax.set_yticks(y, list(labels), fontsize=7, family="monospace")
    ax.set_xlim(0, max(float(vmax), 1e-9))
    ax.tick_params(axis="x", labelsize=6)
    ax.set_title(title, fontsize=8)
    img = render(fig)
    return img[:height, :width]
