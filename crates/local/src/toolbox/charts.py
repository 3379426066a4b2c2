# forge-local's wrapper for `code-run` of Python code that uses matplotlib (src/toolbox/exec.rs).
# Run as `python3 -c <this> ARGS...` with the user's code on fd 3: runs it as `python3 -c CODE
# ARGS...` would (its own __main__ namespace, sys.argv, tracebacks of its frames only, its exit
# code) and, each time it shows figures (pyplot.show), prints every open figure as one line
#   dtn_artifact_k39fd2:{"type": "chart", "value": <Chart>}
# which the backend takes out of the output into `artifacts.charts`, as the daemon does. A
# Chart: type (line, scatter, bar, pie, composite_chart, unknown), title, png (base64), axis
# labels, ticks, tick labels, scales, and elements (points, bars or wedges).
import base64
import importlib.abc
import importlib.util
import io
import json
import os
import sys
import traceback

MARKER = "dtn_artifact_k39fd2:"


def _plain(value):
    """Numbers, strings and lists from numpy scalars, arrays and dates."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _floats(values):
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            return [_plain(v) for v in values]
    return out


def _axis(ax, which):
    ticks = list(getattr(ax, "get_%sticks" % which)())
    labels = [t.get_text() for t in getattr(ax, "get_%sticklabels" % which)()]
    scale = getattr(ax, "get_%sscale" % which)()
    return {
        "%s_label" % which: getattr(ax, "get_%slabel" % which)(),
        "%s_ticks" % which: _floats(ticks),
        "%s_tick_labels" % which: labels,
        "%s_scale" % which: scale,
    }


def _is_grid(line):
    xs, ys = list(line.get_xdata()), list(line.get_ydata())
    return len(xs) == 2 and len(ys) == 2 and (xs[0] == xs[1] or ys[0] == ys[1])


def _axes_chart(ax):
    lines = [l for l in ax.get_lines() if not _is_grid(l)]
    collections = list(getattr(ax, "collections", []))
    patches = list(getattr(ax, "patches", []))
    kinds = {type(p).__name__ for p in patches}
    chart = {"title": ax.get_title()}
    if lines and not collections and not patches:
        chart["type"] = "line"
        chart["elements"] = [
            {"label": l.get_label(), "points": [[_plain(x), _plain(y)] for x, y in zip(l.get_xdata(), l.get_ydata())]}
            for l in lines
        ]
    elif collections and not lines and not patches:
        chart["type"] = "scatter"
        chart["elements"] = [
            {"label": c.get_label(), "points": [[_plain(x), _plain(y)] for x, y in c.get_offsets()]}
            for c in collections
        ]
    elif patches and kinds == {"Rectangle"}:
        chart["type"] = "bar"
        labels = [t.get_text() for t in ax.get_xticklabels()]
        ticks = list(ax.get_xticks())
        elements = []
        for p in patches:
            center = p.get_x() + p.get_width() / 2
            label = ""
            for tick, text in zip(ticks, labels):
                if abs(float(tick) - center) < p.get_width() / 2 + 1e-9:
                    label = text
            elements.append({"label": label, "group": p.get_label() if not str(p.get_label()).startswith("_") else "", "value": str(p.get_height())})
        chart["elements"] = elements
    elif patches and kinds == {"Wedge"}:
        chart["type"] = "pie"
        chart["elements"] = [
            {"label": w.get_label(), "angle": abs(w.theta2 - w.theta1), "radius": w.r} for w in patches
        ]
        return chart
    else:
        chart["type"] = "unknown"
        chart["elements"] = []
    chart.update(_axis(ax, "x"))
    chart.update(_axis(ax, "y"))
    return chart


def _emit(fig):
    axes = list(fig.axes)
    charts = [_axes_chart(ax) for ax in axes]
    if len(charts) == 1:
        chart = charts[0]
    else:
        title = getattr(fig, "_suptitle", None)
        chart = {
            "type": "composite_chart" if charts else "unknown",
            "title": title.get_text() if title is not None else "",
            "elements": charts,
        }
    png = io.BytesIO()
    fig.savefig(png, format="png", bbox_inches="tight")
    chart["png"] = base64.b64encode(png.getvalue()).decode()
    print(MARKER + json.dumps({"type": "chart", "value": chart}, default=_plain), flush=True)


def _patch(pyplot):
    def show(*args, **kwargs):
        for number in pyplot.get_fignums():
            try:
                _emit(pyplot.figure(number))
            except Exception as e:  # a figure we cannot read is left out, not fatal
                sys.stderr.write("chart not captured: %s\n" % e)
        pyplot.close("all")

    pyplot.show = show


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Patches matplotlib.pyplot's show() when the code imports it (nothing before)."""

    def find_spec(self, name, path, target=None):
        if name != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def _main():
    chunks = []
    while True:
        data = os.read(3, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(3)
    code = b"".join(chunks).decode("utf-8")
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.meta_path.insert(0, _Finder())
    sys.argv = ["-c"] + sys.argv[1:]
    namespace = {"__name__": "__main__", "__doc__": None, "__builtins__": __builtins__}
    try:
        exec(compile(code, "<string>", "exec"), namespace)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as e:
        # The user's frames only (not this wrapper's), as `python3 -c` prints them.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        sys.exit(1)


_main()
