//! `code-run` of Python that uses matplotlib: figures the code shows come back as
//! `artifacts.charts` (the daemon's chart shape), out of the output. This machine has no
//! matplotlib, so the wrapper is driven by a small stand-in `matplotlib.pyplot` (the API the
//! wrapper reads: figures, axes, lines, ticks, savefig); where the sandbox has the real one,
//! a real figure is checked too.

use crate::common;

use reqwest::Method;
use serde_json::{json, Value};

/// A stand-in matplotlib: one figure of line plots, enough for the wrapper to read.
const PYPLOT: &str = r#"
class _Text:
    def __init__(self, t): self.t = t
    def get_text(self): return self.t

class _Line:
    def __init__(self, xs, ys, label): self.xs, self.ys, self.label = list(xs), list(ys), label
    def get_label(self): return self.label
    def get_xdata(self): return self.xs
    def get_ydata(self): return self.ys

class _Axes:
    def __init__(self):
        self.lines, self.collections, self.patches = [], [], []
        self.title, self.labels = "", {"x": "", "y": ""}
    def get_lines(self): return self.lines
    def get_title(self): return self.title
    def get_xlabel(self): return self.labels["x"]
    def get_ylabel(self): return self.labels["y"]
    def get_xticks(self): return [0.0, 1.0, 2.0]
    def get_yticks(self): return [0.0, 2.0, 4.0]
    def get_xticklabels(self): return [_Text(str(t)) for t in self.get_xticks()]
    def get_yticklabels(self): return [_Text(str(t)) for t in self.get_yticks()]
    def get_xscale(self): return "linear"
    def get_yscale(self): return "linear"

class _Figure:
    def __init__(self): self.axes = [_Axes()]
    def savefig(self, buf, format=None, **kw): buf.write(b"PNG-STAND-IN")

_figures = {}

def _current():
    if not _figures: _figures[1] = _Figure()
    return _figures[max(_figures)].axes[0]

def plot(xs, ys, label="_line0"): _current().lines.append(_Line(xs, ys, label))
def title(t): _current().title = t
def xlabel(t): _current().labels["x"] = t
def ylabel(t): _current().labels["y"] = t
def get_fignums(): return sorted(_figures)
def figure(n=None): return _figures[n]
def close(which=None): _figures.clear()
def show(): raise RuntimeError("the wrapper must replace show()")
"#;

async fn code_run(env: &common::Env, id: &str, body: Value) -> Value {
    let (s, v) = env
        .json(Method::POST, &env.tb(id, "/process/code-run"), Some(body))
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn shown_figures_become_chart_artifacts() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = common::upload(
        &env,
        &id,
        &[
            ("/home/daytona/stub/matplotlib/__init__.py", b"".to_vec()),
            (
                "/home/daytona/stub/matplotlib/pyplot.py",
                PYPLOT.as_bytes().to_vec(),
            ),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let stub = json!({"PYTHONPATH": "/home/daytona/stub"});

    let v = code_run(
        &env,
        &id,
        json!({
            "language": "python",
            "envs": stub,
            "argv": ["one"],
            "code": "import sys\nimport matplotlib.pyplot as plt\nprint('before')\nplt.plot([0, 1, 2], [0, 1, 4], label='squares')\nplt.title('Squares')\nplt.xlabel('x')\nplt.ylabel('y')\nplt.show()\nprint('after', sys.argv, __name__)",
        }),
    )
    .await;
    assert_eq!(v["exitCode"], 0, "{v}");
    assert_eq!(v["result"], "before\nafter ['-c', 'one'] __main__\n");
    let charts = v["artifacts"]["charts"].as_array().expect("charts");
    assert_eq!(charts.len(), 1, "{v}");
    let c = &charts[0];
    assert_eq!(
        (&c["type"], &c["title"], &c["x_label"], &c["y_label"]),
        (&json!("line"), &json!("Squares"), &json!("x"), &json!("y"))
    );
    assert_eq!(
        c["elements"],
        json!([{"label": "squares", "points": [[0, 0], [1, 1], [2, 4]]}])
    );
    assert_eq!(c["x_ticks"], json!([0.0, 1.0, 2.0]));
    assert_eq!(c["x_scale"], "linear");
    assert_eq!(c["png"], "UE5HLVNUQU5ELUlO"); // base64 of the stand-in's bytes

    // No figure shown: no artifacts; an error: the user's traceback only, exit code 1.
    let v = code_run(
        &env,
        &id,
        json!({"language": "python", "envs": stub, "code": "import matplotlib.pyplot as plt\nprint('plain')"}),
    )
    .await;
    assert_eq!(
        (&v["result"], v.get("artifacts")),
        (&json!("plain\n"), None),
        "{v}"
    );
    let v = code_run(
        &env,
        &id,
        json!({"language": "python", "envs": stub, "code": "import matplotlib.pyplot as plt\n\ndef f():\n    raise ValueError('bad plot')\nf()"}),
    )
    .await;
    assert_eq!(v["exitCode"], 1, "{v}");
    let out = v["result"].as_str().unwrap();
    assert!(
        out.contains("line 4, in f") && out.ends_with("ValueError: bad plot\n"),
        "{out}"
    );
    assert!(
        !out.contains("_main") && !out.contains("exec("),
        "no wrapper frames: {out}"
    );
    // Without matplotlib in the code the wrapper is not used.
    let v = code_run(
        &env,
        &id,
        json!({"language": "python", "code": "import sys\nprint(sys.argv)", "argv": ["x"]}),
    )
    .await;
    assert_eq!(v["result"], "['-c', 'x']\n");
}

#[tokio::test]
async fn a_real_matplotlib_figure_when_the_sandbox_has_matplotlib() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (_, v) = env
        .exec(
            &id,
            json!({"command": "python3 -c 'import matplotlib, numpy, PIL' && echo yes"}),
        )
        .await;
    if v["result"].as_str().unwrap_or("").trim() != "yes" {
        eprintln!("skipped: this machine's python3 has no matplotlib (numpy, PIL)");
        return;
    }
    let v = code_run(
        &env,
        &id,
        json!({"language": "python", "code": "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9], label='sq')\nplt.title('T')\nplt.show()"}),
    )
    .await;
    let c = &v["artifacts"]["charts"][0];
    assert_eq!(
        (&c["type"], &c["title"]),
        (&json!("line"), &json!("T")),
        "{v}"
    );
    assert!(c["png"].as_str().is_some_and(|p| p.len() > 100));
}
