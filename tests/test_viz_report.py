"""viz (figures, video), artifact writing, metrics reading and the static HTML reports."""

from __future__ import annotations

import json
import math
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import imageio.v3 as iio
import numpy as np
import pytest
from markupsafe import escape

from athanor.core import artifact_io
from athanor.core.artifact_io import write_artifacts
from athanor.core.artifacts import Heatmap, TextTable, table_from_json
from athanor.core.errors import DataError
from athanor.core.runs import read_metrics, read_table
from athanor.report.html import experiment_report, fmt_value, gallery, run_report
from athanor.viz import figures, video

XSS = "<script>alert('x')</script>"
CELL = '<script>alert(1)</script> & "quotes"'


def _is_rgb_uint8(a: np.ndarray) -> bool:
    return a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and min(a.shape[:2]) >= 50


def _table(values=None, **kw) -> Heatmap:
    values = np.arange(30, dtype=float).reshape(6, 5) if values is None else values
    return Heatmap(values, [str(i) for i in range(values.shape[0])],
                   ["R", "RB", "BR", "B", "G"][: values.shape[1]], **kw)


# ------------------------------------------------------------------------------------------------ figures

def test_figures_return_rgb_uint8_of_sane_shape():
    recs = [{"step": s, "kind": "train", "loss": 1.0 / s, "acc": s / 100} for s in range(1, 60)]
    recs += [{"step": 50, "kind": "eval", "loss": 0.03}]
    one = figures.heatmap(_table(title="freq"))
    two = figures.heatmap_grid([_table(), _table(), _table()], ncols=2)
    cur = figures.curves(recs, ["loss", "acc", "absent"], title="run")
    bar = figures.bar_compare(["vae", "gan", "gan-mbd"], [0.1, 0.5, math.nan], [0.01, math.nan, 0.2],
                              title="tv", ylabel="tv")
    for a in (one, two, cur, bar):
        assert _is_rgb_uint8(a)
        assert a.std() > 5  # something was drawn, not a blank canvas
    assert two.shape[1] > 1.5 * one.shape[1] and two.shape[0] > 1.5 * one.shape[0]  # 2 x 2 grid of tables
    assert cur.shape[1] > cur.shape[0]  # three panels side by side
    with pytest.raises(ValueError):
        figures.curves(recs, [])
    with pytest.raises(ValueError):
        figures.heatmap_grid([])
    with pytest.raises(ValueError):
        figures.bar_compare(["a", "b"], [1.0], [0.0])


def test_heatmap_turns_long_column_labels_and_makes_room_for_them():
    values = np.arange(6.0).reshape(2, 3)
    short = figures.heatmap(Heatmap(values, ["a", "b"], ["x", "y", "z"]))
    long = figures.heatmap(Heatmap(values, ["a", "b"], ["grinning face", "sun with face", "snowman and more"]))
    assert long.shape[1] == short.shape[1] and long.shape[0] > short.shape[0]


def test_heatmap_draws_nan_cells_blank_and_annotates_values():
    values = np.array([[0.0, 1.0], [np.nan, 0.0]])
    blank = np.array([217, 217, 217])  # figures.BLANK_CELL
    with_nan = figures.heatmap(_table(values, cmap="gray", vmin=0.0, vmax=1.0))
    without = figures.heatmap(_table(np.nan_to_num(values, nan=1.0), cmap="gray", vmin=0.0, vmax=1.0))
    n_blank = np.all(with_nan == blank, axis=-1).sum()
    assert n_blank > 0.1 * with_nan.shape[0] * with_nan.shape[1] / 4  # about one cell of four
    assert np.all(without == blank, axis=-1).sum() < n_blank / 20
    # The cell text follows the format: a different format changes the picture, the layout does not.
    a = figures.heatmap(_table(values, fmt=".1f"))
    b = figures.heatmap(_table(values, fmt=".4f"))
    assert a.shape == b.shape and not np.array_equal(a, b)
    # An all-NaN table and a constant one still render.
    assert _is_rgb_uint8(figures.heatmap(_table(np.full((2, 2), np.nan))))
    assert _is_rgb_uint8(figures.heatmap(_table(np.ones((2, 2)), fmt="not a format")))


def test_log_axis_rule():
    assert figures.use_log_axis("loss", [1.0, 0.01])
    assert figures.use_log_axis("train/KL", [5.0, 0.1])
    assert not figures.use_log_axis("loss", [1.0, 0.5])  # less than LOG_SPAN
    assert not figures.use_log_axis("loss", [1.0, 0.0])  # not positive
    assert not figures.use_log_axis("accuracy", [1.0, 0.001])  # not loss-like
    assert not figures.use_log_axis("loss", [])


def test_image_grid_places_each_image_in_its_cell():
    n, h, w, nrow, pad, scale = 7, 2, 3, 3, 1, 2
    colours = np.stack([np.arange(n) * 30 + 10, 250 - np.arange(n) * 30, np.full(n, 77)], axis=1)
    imgs = np.broadcast_to(colours[:, None, None, :], (n, h, w, 3)).astype(np.uint8).copy()
    imgs[:, 0, 0] = 0  # a marker on each image's top-left source pixel, to check orientation
    grid = figures.image_grid(imgs, nrow=nrow, pad=pad, scale=scale, pad_value=1.0)
    rows, hs, ws = math.ceil(n / nrow), h * scale, w * scale
    assert grid.shape == (pad + rows * (hs + pad), pad + nrow * (ws + pad), 3) and grid.dtype == np.uint8
    for k in range(n):
        r, c = divmod(k, nrow)
        y, x = pad + r * (hs + pad), pad + c * (ws + pad)
        cell = grid[y:y + hs, x:x + ws]
        assert np.all(cell[:scale, :scale] == 0)  # the upscaled marker block
        assert np.all(cell[scale:, :] == colours[k]) and np.all(cell[:, scale:] == colours[k])
    assert np.all(grid[:pad] == 255) and np.all(grid[:, :pad] == 255)  # border
    last = grid[pad + 2 * (hs + pad):, pad + 1 * (ws + pad):]  # cells 7 and 8 are empty
    assert np.all(last == 255)


def test_image_grid_converts_float_grey_and_rgba():
    f = np.array([0.0, 0.5, 1.0, 2.0])[:, None, None, None] * np.ones((4, 1, 1, 3))
    g = figures.image_grid(f, nrow=4, pad=0)
    assert g.shape == (1, 4, 3) and g[0, :, 0].tolist() == [0, 128, 255, 255]  # rounded and clipped
    grey = figures.image_grid(np.full((1, 2, 2), 0.2), pad=0)
    assert grey.shape == (2, 2, 3) and np.all(grey == 51)
    rgba = np.zeros((1, 1, 2, 4))
    rgba[0, 0, 0] = [1.0, 0.0, 0.0, 1.0]  # opaque red
    rgba[0, 0, 1] = [1.0, 0.0, 0.0, 0.0]  # transparent: composited to white
    assert figures.image_grid(rgba, pad=0)[0].tolist() == [[255, 0, 0], [255, 255, 255]]
    with pytest.raises(ValueError, match="NaN"):
        figures.image_grid(np.full((1, 2, 2, 3), np.nan))


def test_image_grid_takes_images_of_different_sizes():
    a = np.zeros((2, 3, 3), np.uint8)
    b = np.full((4, 1, 3), 200, np.uint8)
    g = figures.image_grid([a, b], nrow=2, pad=1)
    assert g.shape == (1 + 4 + 1, 1 + 2 * (3 + 1), 3)  # every cell is the largest height and width
    assert (g[1:3, 1:4] == 0).all() and (g[3:5, 1:4] == 255).all()  # the small image sits top-left
    assert (g[1:5, 5:6] == 200).all() and (g[1:5, 6:8] == 255).all()


def test_curves_draw_one_line_per_series_value():
    rows = [{"step": s, "label": lab, "success": v * s} for lab, v in (("a", 1.0), ("b", 2.0)) for s in range(5)]
    one = figures.curves([r for r in rows if r["label"] == "a"], ["success"], series="label")
    two = figures.curves(rows, ["success"], series="label")
    assert one.shape == two.shape and not np.array_equal(one, two)
    by_x = figures.curves(rows, ["success"], x="success", series="label")  # any numeric field can be x
    assert _is_rgb_uint8(by_x)


def test_scatter2d_free_limits_density_and_grid_panels():
    pts = np.random.default_rng(0).normal(size=(500, 2)) * [10.0, 0.1] + [100.0, 0.0]
    dots = figures.scatter2d(pts, title="free limits")
    dens = figures.scatter2d(pts, density=True, bins=16)
    assert _is_rgb_uint8(dots) and _is_rgb_uint8(dens) and dots.std() > 5
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        figures.scatter2d(np.zeros((3, 3)))
    grids = [np.where(np.eye(4) > 0, 1.0, np.nan), np.arange(16.0).reshape(4, 4)]
    panels = figures.grid_panels(grids, ["a", "b"], extent=(0, 1, 0, 1), label="fitness")
    assert _is_rgb_uint8(panels) and panels.shape[1] > panels.shape[0]
    with pytest.raises(ValueError, match="one title per grid"):
        figures.grid_panels(grids, ["a"], extent=(0, 1, 0, 1))


def test_scatter2d_colours_dots_by_class_and_labelled_paths():
    from matplotlib import colormaps

    pts = np.random.default_rng(1).normal(size=(400, 2))
    cls = np.arange(400) % 3
    plain, coloured = figures.scatter2d(pts), figures.scatter2d(pts, labels=cls)

    def has(img, colour, alpha=0.6):  # any pixel near the tab10 colour as drawn (alpha 0.6 over white)
        rgb = np.round((alpha * np.asarray(colour[:3]) + 1 - alpha) * 255)
        return bool((np.abs(img.astype(float) - rgb).sum(-1) < 60).any())

    tab = [colormaps["tab10"](i) for i in range(3)]
    assert all(has(coloured, c) for c in tab) and not has(plain, tab[2])
    with pytest.raises(ValueError, match="3 labels for 400 points"):
        figures.scatter2d(pts, labels=[0, 1, 2])
    paths = {"test": ([1.0, 2.0, 4.0], [0.5, 1.0, 1.2], ["1e-3", "1e-2", "1e-1"]),
             "train": ([1, 2], [1, 2], ["a", "b"])}
    assert _is_rgb_uint8(figures.labelled_paths(paths, title="plane", xlabel="rate", ylabel="I", log_x=True))
    with pytest.raises(ValueError, match="as many labels"):
        figures.labelled_paths({"s": ([1.0], [1.0], [])})
    rows = [{"beta": b, "err": b} for b in (1e-6, 1e-3, 1.0, 0.0)]  # x <= 0 is skipped on a log axis
    assert _is_rgb_uint8(figures.curves(rows, ["err"], x="beta", log_x=True))


def test_render_turns_a_callers_figure_into_pixels():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1), dpi=figures.DPI)
    fig.add_subplot().plot([0, 1], [1, 0])
    img = figures.render(fig)
    assert img.shape == (100, 200, 3) and img.dtype == np.uint8 and img.std() > 5


# -------------------------------------------------------------------------------------------------- video

def _constant_video(t=6, h=17, w=23, rgb=(200, 40, 90)) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (t, h, w, 3)).copy()


def test_write_video_mp4_round_trip(tmp_path):
    frames = _constant_video()
    path = video.write_video(tmp_path / "v" / "clip", frames, fps=5)
    assert path == tmp_path / "v" / "clip.mp4" and path.stat().st_size > 0
    back = video.read_video_file(path)
    assert back.shape == (6, 18, 24, 3)  # odd sides padded to even for yuv420p
    assert np.abs(back[:, :17, :23].mean(axis=(0, 1, 2)) - np.array([200, 40, 90])).max() < 8
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary left behind


def test_tile_videos_layout():
    a = np.zeros((3, 4, 5, 3), np.uint8)
    b = np.full((2, 6, 2, 3), 7, np.uint8)
    out = video.tile_videos([a, b, a], ncols=2, pad=1)
    assert out.shape == (3, 1 + 2 * (6 + 1), 1 + 2 * (5 + 1), 3)
    assert (out[2, 1:7, 7:9] == 7).all()  # the shorter video holds its last frame
    assert (out[:, 8:12, 1:6] == 0).all()


def test_write_video_falls_back_to_gif(tmp_path, monkeypatch):
    (tmp_path / "clip.mp4").write_bytes(b"stale")

    def broken(*args, **kwargs):
        raise RuntimeError("no encoder")

    monkeypatch.setattr(video, "_write_mp4", broken)
    frames = _constant_video(t=3)
    frames[1] //= 2  # distinct frames: GIF writers merge identical neighbours
    frames[2] //= 4
    path = video.write_video(tmp_path / "clip", frames, fps=10)
    assert path.name == "clip.gif" and not (tmp_path / "clip.mp4").exists()
    back = iio.imread(path, extension=".gif", index=None)
    assert back.shape[:3] == (3, 17, 23)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]
    with pytest.raises(TypeError, match="uint8"):
        video.write_video(tmp_path / "x", np.zeros((2, 4, 4, 3)))


# ------------------------------------------------------------------------------------------- artifact_io

def test_write_artifacts_writes_each_kind(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    rgba = np.random.default_rng(1).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    values = np.arange(6.0).reshape(2, 3)
    values[1, 2] = np.nan
    hm = Heatmap(values, ["a", "b"], ["x", "y", "z"], title="t", fmt=".1f")
    paths = write_artifacts(tmp_path, {"samples": img, "alpha": rgba, "anim": _constant_video(t=2),
                                       "freq": hm})
    rel = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert rel[:4] == ["figures/alpha.png", "figures/freq.png", "figures/samples.png", "tables/freq.json"]
    assert rel[4] in ("videos/anim.mp4", "videos/anim.gif") and len(rel) == 5
    assert np.array_equal(iio.imread(tmp_path / "figures/samples.png"), img)  # PNG is lossless
    assert np.array_equal(iio.imread(tmp_path / "figures/alpha.png"), rgba)
    raw = (tmp_path / "tables/freq.json").read_text()
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    back = Heatmap.from_json(json.loads(raw))
    np.testing.assert_array_equal(back.values, values)  # NaN comes back as NaN
    assert back.rows == ["a", "b"] and back.fmt == ".1f"
    assert _is_rgb_uint8(iio.imread(tmp_path / "figures/freq.png")[..., :3])


def test_svg_artifacts_are_written_as_given(tmp_path):
    from athanor.core.artifacts import Svg

    doc = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>\n'
    paths = write_artifacts(tmp_path, {"strokes": Svg(doc)})
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["figures/strokes.svg"]
    assert (tmp_path / "figures/strokes.svg").read_text() == doc
    with pytest.raises(ValueError, match="SVG document"):
        Svg("<html></html>")


def test_text_table_validates_its_cells_and_round_trips_through_json():
    t = TextTable(["prompt", "sample"], [["a cat", "the cat sat"], ("a dog", CELL)], title="samples")
    assert t.columns == ("prompt", "sample") and t.rows == (("a cat", "the cat sat"), ("a dog", CELL))
    d = json.loads(json.dumps(t.to_json()))
    assert d == {"kind": "text_table", "title": "samples", "columns": ["prompt", "sample"],
                 "rows": [["a cat", "the cat sat"], ["a dog", CELL]]}
    assert TextTable.from_json(d) == t and table_from_json(d) == t
    assert isinstance(table_from_json(_table().to_json()), Heatmap)  # no kind marker: a heatmap, as before
    assert TextTable(["a"], []).rows == ()
    with pytest.raises(ValueError, match="row 1 has 1 cells, expected 2"):
        TextTable(["a", "b"], [["x", "y"], ["z"]])
    with pytest.raises(TypeError, match=r"cell \(0, 1\) is a float"):
        TextTable(["a", "b"], [["x", 0.5]])
    with pytest.raises(TypeError, match="row 0 is a str"):
        TextTable(["a"], ["x"])
    with pytest.raises(TypeError, match="columns must be a sequence of str"):
        TextTable("ab", [])
    with pytest.raises(ValueError, match="at least one column"):
        TextTable([], [])
    with pytest.raises(ValueError, match="not a text table"):
        TextTable.from_json(_table().to_json())


def test_text_tables_are_written_as_json_without_a_picture(tmp_path):
    t = TextTable(("prompt", "sample"), (("a cat", CELL),), title="samples")
    paths = write_artifacts(tmp_path, {"generations": t})
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["tables/generations.json"]
    assert not (tmp_path / "figures").exists()
    assert table_from_json(json.loads((tmp_path / "tables/generations.json").read_text())) == t
    assert read_table(tmp_path, "generations") == t


@pytest.mark.parametrize("bad, err, match", [
    ({"img": np.zeros((4, 4, 3), np.float32)}, TypeError, "uint8"),
    ({"img": [[1, 2], [3, 4]]}, TypeError, "allowed kinds"),
    ({"img": np.zeros((4, 4), np.uint8)}, TypeError, "allowed kinds"),
    ({"img": np.zeros((4, 4, 2), np.uint8)}, TypeError, "allowed kinds"),
    ({"img": np.zeros((0, 4, 3), np.uint8)}, ValueError, "empty"),
    ({"../up": np.zeros((4, 4, 3), np.uint8)}, ValueError, "safe file stem"),
    ({"a b": np.zeros((4, 4, 3), np.uint8)}, ValueError, "safe file stem"),
    ({".hidden": np.zeros((4, 4, 3), np.uint8)}, ValueError, "safe file stem"),
    ({"": np.zeros((4, 4, 3), np.uint8)}, ValueError, "safe file stem"),
    ({"curves": np.zeros((4, 4, 3), np.uint8)}, ValueError, "reserved"),
])
def test_write_artifacts_rejects_bad_input_and_writes_nothing(tmp_path, bad, err, match):
    good = {"fine": np.zeros((4, 4, 3), np.uint8)}
    with pytest.raises(err, match=match) as info:
        write_artifacts(tmp_path, {**good, **bad})
    assert repr(next(iter(bad)))[1:-1] in str(info.value)  # the message names the artifact
    assert not any(tmp_path.iterdir())  # validated before anything was written


def _write_lines(path: Path, lines: list[str], tail: str = "") -> None:
    path.write_text("".join(line + "\n" for line in lines) + tail)


def test_read_metrics_last_wins_sorted_and_truncated_tail(tmp_path):
    rows = [{"step": 10, "kind": "train", "loss": 1.0}, {"step": 20, "kind": "train", "loss": 0.5},
            {"step": 20, "kind": "eval", "acc": 0.1}, {"step": 30, "kind": "train", "loss": 0.4},
            # resumed from the step-10 checkpoint: steps 20 and 30 are logged again and must win
            {"step": 20, "kind": "train", "loss": 0.45}, {"step": 30, "kind": "train", "loss": 0.35},
            {"step": 5, "kind": "eval", "acc": 0.0}]
    _write_lines(tmp_path / "metrics.jsonl", [json.dumps(r) for r in rows], tail='{"step": 40, "kind": "tr')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn final line is expected after a crash: no warning
        recs = read_metrics(tmp_path)
    assert [(r["step"], r["kind"]) for r in recs] == [(5, "eval"), (10, "train"), (20, "train"), (20, "eval"),
                                                       (30, "train")]
    assert [r.get("loss") for r in recs if r["kind"] == "train"] == [1.0, 0.45, 0.35]
    assert read_metrics(tmp_path / "nowhere") == []


def test_curves_over_seeds_averages_each_label_step_and_kind(tmp_path):
    from athanor.core.experiment import RunRecord, RunSpec, curves_over_seeds

    records = []
    for label, seed, accs in (("a", 0, (0.0, 0.4)), ("a", 1, (0.2, 0.6)), ("b", 0, (1.0, 1.0))):
        run_dir = tmp_path / f"{label}_s{seed}"
        run_dir.mkdir()
        rows = [{"step": 10 * (k + 1), "kind": "eval", "acc": acc} for k, acc in enumerate(accs)]
        rows += [{"step": 10, "kind": "train", "acc": 99.0, "loss": 1.0 + seed}]  # a train row's acc is not eval
        _write_lines(run_dir / "metrics.jsonl", [json.dumps(r) for r in rows])
        records.append(RunRecord(RunSpec("sys", label), seed, run_dir, {"done": 1.0}))
    out = curves_over_seeds(records, {"acc": "eval", "loss": "train"})
    assert {(r["label"], r["step"]): r.get("acc") for r in out if "acc" in r} == pytest.approx(
        {("a", 10): 0.1, ("a", 20): 0.5, ("b", 10): 1.0, ("b", 20): 1.0})
    assert [r["loss"] for r in out if r["label"] == "a" and "loss" in r] == [1.5]
    assert {r["label"] for r in curves_over_seeds(records, {"acc": "eval"}, labels=["b"])} == {"b"}


def test_read_metrics_keeps_a_complete_last_line_and_warns_on_damage_inside(tmp_path):
    _write_lines(tmp_path / "metrics.jsonl",
                 ['{"step": 1, "kind": "train", "loss": 2.0}', '{"step": 2, "ki{"step": 2, "kind": "train"}',
                  '[1, 2]'], tail='{"step": 3, "kind": "train", "loss": 1.0}')
    with pytest.warns(UserWarning) as caught:
        recs = read_metrics(tmp_path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "line 2 is not valid JSON" in messages[0] and "line 3" in messages[1]
    assert [r["step"] for r in recs] == [1, 3]


# ---------------------------------------------------------------------------------------------- reports

def _make_run(run_dir: Path, *, system="vae", seed=0, final=None, created="2025-01-01T00:00:00+00:00",
              status="completed", message=None, figures_too=True, config_extra=None) -> Path:
    run_dir.mkdir(parents=True)
    config = {"system": system, "family": "generative", "seed": seed, "preset": "tiny",
              "config": {"steps": 40, "inner_steps": 10, "lr": 3e-4, **(config_extra or {})},
              "overrides": {"lr": 3e-4}, "version": "0.1.0", "git_sha": None,
              "jax": {"version": "0.0", "backend": "cpu", "devices": 1}, "created": created}
    (run_dir / "config.json").write_text(json.dumps(config))
    recs = [{"step": s, "kind": "train", "wall_s": s / 10, "loss": 2.0 / s} for s in (10, 20, 30, 40)]
    recs.append({"step": 40, "kind": "eval", "wall_s": 4.0, **(final or {"tv": 0.5})})
    _write_lines(run_dir / "metrics.jsonl", [json.dumps(r) for r in recs])
    (run_dir / "summary.json").write_text(json.dumps(
        {"status": status, "steps_done": 40, "steps": 40, "wall_s": 4.2, "final": final or {"tv": 0.5},
         "message": message}))
    if figures_too:
        write_artifacts(run_dir, {"samples": np.full((8, 8, 3), 120, np.uint8),
                                  "frequency": _table(np.full((2, 2), 0.25), title="freq", fmt=".3f")})
    return run_dir


def _links(html: str) -> set[str]:
    return set(re.findall(r'(?:href|src)="([^"]+)"', html))


def test_run_report_escapes_user_text_and_shows_everything(tmp_path):
    run = _make_run(tmp_path / "vae" / "20250101_s0", message=f"stopped: {XSS}",
                    config_extra={"note": XSS}, final={"tv": 0.123456789})
    iio.imwrite(tmp_path / "vae" / "20250101_s0" / "figures" / "x y.png", np.zeros((4, 4, 3), np.uint8))
    path = run_report(run)
    html = path.read_text()
    assert path == run / "report.html" and html.startswith("<!doctype html>")
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "0.1235" in html  # final metric to 4 significant digits
    assert "0.00030000000000000003" not in html and "0.0003" in html  # config values shown as given
    assert "0.250" in html  # the table's values, in the table's own format
    assert "1 metric logged only once" in html  # the single final "tv" is a table entry, not a curve
    assert _is_rgb_uint8(iio.imread(run / "figures" / "curves.png")[..., :3])
    links = _links(html)
    assert {"figures/curves.png", "figures/samples.png", "figures/frequency.png",
            "figures/x%20y.png"} <= links
    for link in links:
        assert (run / link.replace("%20", " ")).is_file(), link  # every link is relative and resolves
    with pytest.raises(DataError, match="config.json"):
        run_report(tmp_path)


def test_run_report_without_summary_uses_metrics(tmp_path):
    run = _make_run(tmp_path / "r", final={"tv": 0.75}, figures_too=False)
    (run / "summary.json").unlink()
    html = run_report(run).read_text()
    assert "summary.json is missing" in html and "0.75" in html and "unknown" in html


def test_reports_show_text_tables_escaped_next_to_heatmaps(tmp_path):
    text = TextTable(["prompt", "sample"], [["a cat", "the cat sat on the mat " * 20], ["a dog", CELL]],
                     title=f"samples {XSS}")
    run = _make_run(tmp_path / "r")  # with a heatmap table, "frequency"
    write_artifacts(run, {"generations": text})
    html = run_report(run).read_text()
    assert "<script" not in html.lower() and str(escape(CELL)) in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;" in html
    assert f"<caption>{escape(text.title)}</caption>" in html
    assert _table_rows(html, "text") == [["prompt", "sample"], ["a cat", " ".join(text.rows[0][1].split())],
                                         ["a dog", CELL]]
    assert "figures/generations.png" not in html
    assert "0.250" in html and "figures/frequency.png" in _links(html)  # the heatmap as before
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "experiment.json").write_text(json.dumps({"experiment": "lm", "runs": [], "status": "completed"}))
    write_artifacts(exp, {"generations": text, "frequency": _table(np.full((2, 2), 0.25), fmt=".3f")})
    html = experiment_report(exp).read_text()
    assert "<script" not in html.lower() and str(escape(CELL)) in html
    assert _table_rows(html, "text")[2] == ["a dog", CELL]
    assert "0.250" in html and "figures/frequency.png" in _links(html)


def _make_experiment(root: Path, name: str, created: str, finals: dict[str, list[float]],
                     claims: list[dict]) -> Path:
    exp = root / name / created.replace(":", "")[:15]
    runs = []
    for label, values in finals.items():
        for seed, v in enumerate(values):
            d = f"{label}_s{seed}"
            _make_run(exp / d, system=label, seed=seed, final={"tv": v, "bins": 30.0}, created=created,
                      figures_too=seed == 0)
            runs.append({"system": label, "label": label, "seed": seed, "dir": d})
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "experiment.json").write_text(json.dumps(
        {"experiment": name, "scale": "tiny", "seeds": 2, "summary": "mode coverage", "created": created,
         "runs": runs, "status": "completed", "wall_s": 75.0, "notes": []}))
    (exp / "claims.json").write_text(json.dumps(claims))
    return exp


CLAIMS = [
    {"id": "vae-covers", "statement": f"VAE covers every bin {XSS}", "metric": "bins", "threshold": 30,
     "measured": {"vae": 29.123456, "gan": 12.0}, "verdict": "reproduced"},
    {"id": "gan-collapses", "statement": "GAN misses bins", "metric": "bins", "threshold": "< 25",
     "measured": 0.333333333, "verdict": "not_reproduced"},
    {"id": "diffusion-colour", "statement": "diffusion error is colour", "metric": "err", "threshold": None,
     "measured": "n/a at tiny scale", "verdict": "inconclusive"},
]


def test_experiment_report_claims_comparison_and_runs(tmp_path):
    exp = _make_experiment(tmp_path, "generative", "2025-02-01T10:00:00+00:00",
                           {"vae": [0.1, 0.3], "gan": [0.7, 0.9]}, CLAIMS)
    meta = json.loads((exp / "experiment.json").read_text())
    meta["runs"].append({"system": "flow", "label": "flow", "seed": 0, "dir": "javascript:alert(1)"})
    (exp / "experiment.json").write_text(json.dumps(meta))
    _make_run(exp / "javascript:alert(1)", system="flow", final={"tv": 0.4}, figures_too=False)
    html = experiment_report(exp).read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    # claims first, each listed once with its verdict colour
    assert html.index("vae-covers") < html.index("Final metrics per system")
    for c, cls in zip(CLAIMS, ("good", "bad", "neutral"), strict=True):
        assert html.count(c["id"]) == 1
        row = rf'<span class="badge {cls}">{c["verdict"]}</span></td>\s*<td[^>]*><div class="key">{c["id"]}</div>'
        assert re.search(row, html), c["id"]
    assert "vae: 29.12, gan: 12" in html and "0.3333" in html and "n/a at tiny scale" in html
    # mean +- sample std over the two seeds
    for mean, pair in ((0.2, [0.1, 0.3]), (0.8, [0.7, 0.9])):
        assert f"{mean} ± {np.std(pair, ddof=1):.4g}" in html
    assert "How to read this report" in html and "inconclusive by construction" in html
    for run in meta["runs"]:
        assert (exp / run["dir"] / "report.html").is_file()
    links = _links(html)
    assert {"vae_s0/report.html", "vae_s1/report.html", "gan_s0/report.html", "gan_s1/report.html",
            "javascript%3Aalert%281%29/report.html", "vae_s0/figures/samples.png"} <= links
    assert not any(link.lower().startswith("javascript:") for link in links)


class _Cells(HTMLParser):
    """The text of every row of the tables of one class: [[cell text, ...], ...] (rowspans not expanded)."""

    def __init__(self, table_class: str):
        super().__init__()
        self.cls, self.depth, self.rows, self.cell = table_class, 0, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.depth += 1 if self.depth or self.cls in (dict(attrs).get("class") or "").split() else 0
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join(" ".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def _table_rows(html: str, table_class: str) -> list[list[str]]:
    parser = _Cells(table_class)
    parser.feed(html)
    return parser.rows


RULE = "reproduced when every check's interval lies on the claimed side"
INTERVAL = "95% Student t interval of the mean over seeds"


def _check(name, op, threshold, per_seed, mean, ci, verdict):
    return {"name": name, "op": op, "threshold": threshold, "per_seed": per_seed, "mean": mean, "ci": ci,
            "verdict": verdict}


# claims.json as written since verdicts are judged over seeds (core/claims.py): every field the report shows
SEED_CLAIMS = [
    {"id": "mbd-covers-more", "statement": f"Minibatch discrimination covers more bins {XSS}",
     "metric": "bins(gan-mbd) - bins(gan)", "threshold": "> 0", "measured": [4.0, 1.0, 5.123456],
     "verdict": "reproduced", "seeds": 3, "interval": INTERVAL, "rule": RULE, "leans": "reproduced", "reason": None,
     "checks": [_check("bins(gan-mbd) - bins(gan)", ">", 0, [4.0, 1.0, 5.123456], 3.374485, [0.1234567, 8.6],
                       "reproduced")]},
    {"id": "batch-kl-prior", "statement": "Batch KL matches the prior in aggregate", "metric": "z_var; kl ratio",
     "threshold": "in [0.5, 2]; >= 2", "measured": None, "verdict": "inconclusive", "seeds": 3,
     "interval": INTERVAL, "rule": RULE, "leans": "not_reproduced", "reason": "an interval straddles its threshold",
     "checks": [_check("z_var", "within", [0.5, 2], [1.0, 1.1, 1.2], 1.1, [0.85, 1.35], "reproduced"),
                _check("kl(batch) / kl(element)", ">=", 2, [1.5, 2.5, 0.9], 1.633333, [-0.4, 3.6], "inconclusive")]},
    {"id": "failed-run", "statement": "Element KL costs reconstruction", "metric": "mse(element) - mse(batch)",
     "threshold": "> 0", "measured": [0.3, None], "verdict": "inconclusive", "seeds": 2, "interval": INTERVAL,
     "rule": RULE, "leans": None, "reason": "a measurement is missing or not finite (a failed run?)",
     "checks": [_check("mse(element) - mse(batch)", ">", 0, [0.3, None], None, None, "inconclusive")]},
    {"id": "one-seed", "statement": "One seed decides nothing", "metric": "tv(gan) - tv(vae)", "threshold": "< 0",
     "measured": 0.25, "verdict": "inconclusive", "seeds": 1, "interval": INTERVAL, "rule": RULE,
     "leans": "not_reproduced", "reason": "one seed: no interval",
     "checks": [_check("tv(gan) - tv(vae)", "<", 0, [0.25], 0.25, None, "inconclusive")]},
]


def test_experiment_report_shows_each_check_over_seeds(tmp_path):
    exp = _make_experiment(tmp_path, "vae-kl", "2025-02-01T10:00:00+00:00", {"vae": [0.1, 0.3]}, SEED_CLAIMS)
    html = experiment_report(exp).read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    rows = _table_rows(html, "claims")
    assert rows[0] == ["verdict", "claim", "check", "per seed", "mean", "interval", "condition", "check verdict"]
    # a claim's first row holds its verdict and statement (rowspan), then one row per check
    first, band, ratio, failed, one = rows[1:]
    assert first[0] == "reproduced" and first[1].startswith("mbd-covers-more Minibatch") and "3 seeds" in first[1]
    assert first[2:] == ["bins(gan-mbd) - bins(gan)", "4, 1, 5.123", "3.374", "[0.1235, 8.6]", "> 0", "reproduced"]
    assert band[0] == "inconclusive leans not_reproduced"  # the lean is shown beside an inconclusive verdict
    assert "an interval straddles its threshold" in band[1]
    assert band[2:] == ["z_var", "1, 1.1, 1.2", "1.1", "[0.85, 1.35]", "in [0.5, 2]", "reproduced"]
    assert ratio == ["kl(batch) / kl(element)", "1.5, 2.5, 0.9", "1.633", "[-0.4, 3.6]", ">= 2", "inconclusive"]
    assert failed[0] == "inconclusive" and "a failed run?" in failed[1]  # no lean: the means cannot say
    assert failed[2:] == ["mse(element) - mse(batch)", "0.3, —", "—", "—", "> 0", "inconclusive"]
    assert one[0] == "inconclusive leans not_reproduced" and "one seed: no interval" in one[1]
    assert one[4:6] == ["0.25", "— (one seed)"]
    assert 'rowspan="2"' in html and html.count('<tbody class="claim">') == 4
    # the rule and the kind of interval once, not per claim
    assert html.count(escape(RULE)) == 1 and html.count(INTERVAL) == 1
    assert '<a href="claims.json">claims.json</a>' in html
    assert "1 reproduced · 0 not reproduced · 3 inconclusive (of 4)" in html


def test_experiment_report_mixes_old_and_new_claims(tmp_path):
    other_rule = dict(SEED_CLAIMS[0], id="other-rule", rule="a different rule", checks=[
        dict(SEED_CLAIMS[0]["checks"][0], once=True, per_seed=[0.5], ci=None)])
    exp = _make_experiment(tmp_path, "generative", "2025-02-01T10:00:00+00:00", {"vae": [0.1]},
                           [CLAIMS[0], SEED_CLAIMS[1], other_rule, "not a claim"])
    html = experiment_report(exp).read_text()
    rows = _table_rows(html, "claims")
    old = rows[1]  # claims.json written before checks: metric, measured (across three columns) and threshold
    assert old[0] == "reproduced" and old[2:] == ["bins", "vae: 29.12, gan: 12", "30", "—"]
    assert rows[5][:2] == ["inconclusive", "— not a claim"]  # a damaged entry still shows
    assert rows[4][5] == "one value, judged as it is"  # a check judged on one computation's value
    assert html.count(escape(RULE)) == 1 and html.count("a different rule") == 1


def test_experiment_report_marks_missing_runs(tmp_path):
    exp = _make_experiment(tmp_path, "vib", "2025-02-01T10:00:00+00:00", {"vib": [0.2]}, [])
    meta = json.loads((exp / "experiment.json").read_text())
    meta["runs"].append({"system": "vib", "label": "vib", "seed": 1, "dir": "vib_s1"})
    (exp / "experiment.json").write_text(json.dumps(meta))
    html = experiment_report(exp).read_text()
    assert "missing" in html and "&#39;vib_s1&#39;" in html
    assert "No claims recorded" in html
    with pytest.raises(DataError, match="experiment.json"):
        experiment_report(tmp_path)


def test_gallery_lists_newest_first_with_tallies(tmp_path):
    old = _make_experiment(tmp_path, "vae-kl", "2025-01-01T00:00:00+00:00", {"vae": [0.1]}, CLAIMS[:1])
    new = _make_experiment(tmp_path, f"gen{XSS}", "2025-03-01T00:00:00+00:00", {"gan": [0.5]}, CLAIMS)
    single = _make_run(tmp_path / "oracle" / "20250201_s0", system="oracle", created="2025-02-01T00:00:00")
    index = gallery(tmp_path)
    html = index.read_text()
    assert index == tmp_path / "index.html"
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    cards = html[html.index("<h2>Experiments</h2>"):]
    positions = [cards.index(needle) for needle in ("gen&lt;script", "vae-kl", "<h2>Single runs</h2>", "oracle")]
    assert positions == sorted(positions)  # experiments newest first (March, January), then the single run
    assert "1/3 reproduced" in html and "1/1 reproduced" in html
    links = _links(html)
    for d in (new, single, old):
        rel = d.relative_to(tmp_path).as_posix()
        assert "/".join(quote(s, safe="") for s in rel.split("/")) + "/report.html" in links, rel
        assert (d / "report.html").is_file()  # missing reports were built
    assert sum(link.endswith(".png") for link in links) == 3  # one thumbnail each
    assert html.count('<div class="card">') == 3  # runs inside an experiment are not listed on their own
    for d in (new, old):  # and its claims.json
        assert "/".join(quote(s, safe="") for s in d.relative_to(tmp_path).parts) + "/claims.json" in links


def _set_meta(exp: Path, **fields) -> None:
    meta = json.loads((exp / "experiment.json").read_text())
    (exp / "experiment.json").write_text(json.dumps({**meta, **fields}))


def test_gallery_key_figures_claims_overview_and_earlier_folders(tmp_path):
    old = _make_experiment(tmp_path, "vae-kl", "2025-01-01T00:00:00+00:00", {"vae": [0.1]}, CLAIMS[:1])
    new = _make_experiment(tmp_path, "vae-kl", "2025-03-01T00:00:00+00:00", {"vae": [0.1]}, SEED_CLAIMS)
    write_artifacts(new, {"kl_grid": np.full((6, 6, 3), 40, np.uint8), "another": np.zeros((6, 6, 3), np.uint8)})
    _set_meta(new, key_figure="kl_grid")
    ocean = _make_experiment(tmp_path, "oceanworld", "2025-02-01T00:00:00+00:00", {"me": [0.1]}, [])
    write_artifacts(ocean, {"elites": _constant_video(t=3)})
    _set_meta(ocean, key_figure="elites", scale="quick")
    gen = _make_experiment(tmp_path, "generative", "2025-02-02T00:00:00+00:00", {"gan": [0.5]}, CLAIMS)
    _set_meta(gen, key_figure="../../outside")  # not an artifact name: the first figure stands in
    (tmp_path / "tour.json").write_text(json.dumps(
        {"scale": "quick", "status": "failed", "started": "2025-03-01T00:00:00+00:00", "wall_s": 754.2,
         "experiments": [{"name": "vae-kl", "status": "completed"},
                         {"name": "offline-rl", "status": "failed", "error": f"boom {XSS}"}]}))
    html = gallery(tmp_path).read_text()
    assert "<script" not in html.lower()
    overview = _table_rows(html, "overview")
    assert overview[0] == ["experiment", "scale", "seeds", "claim", "verdict", "point estimate"]
    # the newest folder of each experiment and scale, by name: generative (3 claims), then vae-kl (4); the
    # experiment, scale and seeds once per experiment (rowspan), then one row per claim
    assert [len(r) for r in overview[1:]] == [6, 3, 3, 6, 3, 3, 3]
    assert overview[1][:3] == ["generative", "tiny", "2"] and overview[4][:3] == ["vae-kl", "tiny", "2"]
    assert overview[1][4:] == ["reproduced", "—"]  # old claims.json: no point estimate
    assert overview[5][1:] == ["inconclusive", "not_reproduced"]
    assert "one seed: no interval" in overview[7][0]
    cards = html[html.index("<h2>Experiments</h2>"):html.index("<h2>Earlier experiment folders</h2>")]
    assert cards.count('<div class="card">') == 3
    vae_kl = "vae-kl/" + new.name
    assert f'<img src="{vae_kl}/figures/kl_grid.png"' in cards and "figure: kl_grid" in cards
    report = (new / "report.html").read_text()  # the key figure leads the experiment's figures
    assert report.index("figures/kl_grid.png") < report.index("figures/another.png")
    assert f'<video src="oceanworld/{ocean.name}/videos/elites.mp4"' in cards
    assert f'<img src="generative/{gen.name}/gan_s0/figures/frequency.png"' in cards  # the first figure
    assert "1 not reproduced" in cards and "1/3 reproduced" in cards and "3 inconclusive" in cards
    earlier = html[html.index("<h2>Earlier experiment folders</h2>"):]
    assert f"vae-kl/{old.name}/report.html" in earlier and new.name not in earlier
    assert "12 min 34 s" in html and "experiment offline-rl failed: boom &lt;script&gt;" in html
    assert '<a href="tour.json">tour.json</a>' in html


def test_gallery_says_a_shared_reason_once_and_enlarges_pixel_pictures_as_pixels(tmp_path):
    tiny = [dict(c, reason="tiny scale: the runs are seconds long", verdict="inconclusive") for c in SEED_CLAIMS]
    exp = _make_experiment(tmp_path, "vae-kl", "2025-02-01T10:00:00+00:00", {"vae": [0.1]}, tiny)
    html = gallery(tmp_path).read_text()
    assert html.count("tiny scale: the runs are seconds long") == 1
    assert "all inconclusive (tiny scale" in html
    # samples.png (8 x 8) is a picture of pixels: no smoothing; the drawn table and curves are plots
    assert re.search(r'<img src="[^"]*/frequency.png" alt="frequency" loading', html)
    report = (exp / "report.html").read_text()
    assert re.search(r'src="vae_s0/figures/samples.png" alt="samples" class="pix"', report)
    assert re.search(r'src="vae_s0/figures/curves.png" alt="curves" loading', report)


def test_fmt_value():
    assert fmt_value(0.123456) == "0.1235" and fmt_value(123456.0) == "1.235e+05" and fmt_value(3) == "3"
    assert fmt_value({"a": 1.0 / 3, "b": [2.0, None]}) == "a: 0.3333, b: [2, —]"
    assert fmt_value(True) == "true" and fmt_value("x") == "x"


def test_atomic_write_leaves_no_temporaries(tmp_path):
    artifact_io.atomic_write_text(tmp_path / "a" / "f.txt", "one")
    artifact_io.atomic_write_text(tmp_path / "a" / "f.txt", "two")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.txt"]
    assert (tmp_path / "a" / "f.txt").read_text() == "two"


@pytest.mark.parametrize("dirty, shown", [(True, "abc123 (with uncommitted changes)"), (False, "abc123"),
                                          (None, "abc123")])
def test_run_report_says_when_the_code_was_uncommitted(tmp_path, dirty, shown):
    run = _make_run(tmp_path / "vae" / "20250101_s0", figures_too=False)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "git_sha": "abc123", "git_dirty": dirty}))
    html = run_report(run).read_text()
    assert shown in html and ("uncommitted" in html) == bool(dirty)
