# The code interpreter's worker (forge-local, src/toolbox/interpreter.rs): one per context,
# run as `python3 -u -c <this>` inside the sandbox. It keeps one namespace between executions.
#
# Protocol: one JSON object per line. The backend writes {"code", "envs"} on the worker's
# original stdin; the worker answers, on its original stdout, chunks as the daemon streams them:
# {"type": "stdout"|"stderr", "text"}, {"type": "error", "name", "value", "traceback"} and, to
# end each execution, {"type": "control", "text": "completed"|"interrupted"}.
#
# Both channels are moved off fds 0-2 first: the code's own stdin is /dev/null (input() cannot
# eat the next command), and fds 1 and 2 become pipes this worker reads, so what the code
# prints (print, sys.stdout, os.write, a subprocess) arrives as stdout/stderr chunks, in order,
# before the execution's control chunk. SIGINT (the backend's timeout) interrupts the code.
import codecs
import io
import json
import linecache
import os
import signal
import sys
import threading
import traceback

commands = os.fdopen(os.dup(0), "r", encoding="utf-8")
protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
diagnostics = os.fdopen(os.dup(2), "w", encoding="utf-8")
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
sys.stdin = open(os.devnull, "r")

_lock = threading.Lock()


def emit(chunk):
    line = json.dumps(chunk)
    with _lock:
        protocol.write(line + "\n")
        protocol.flush()


# End of one execution's output on a stream: written after the code ran, read back by the
# stream's reader, which then knows everything written before it has been sent.
MARK = ("\0forge-sync-" + os.urandom(8).hex() + "\0").encode()


class Capture:
    """A pipe on fd `target` whose reader sends what is written as chunks of `kind`."""

    def __init__(self, target, kind):
        self.kind = kind
        read_end, write_end = os.pipe()
        os.dup2(write_end, target)
        os.close(write_end)
        self.fd = read_end
        self.target = target
        self.synced = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def send(self, decoder, data, final=False):
        text = decoder.decode(data, final)
        if text:
            emit({"type": self.kind, "text": text})

    def run(self):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = b""
        while True:
            data = os.read(self.fd, 65536)
            if not data:
                self.send(decoder, pending, True)
                return
            pending += data
            while True:
                at = pending.find(MARK)
                if at < 0:
                    break
                self.send(decoder, pending[:at], True)
                pending = pending[at + len(MARK):]
                self.synced.set()
            # Keep a tail that may be the start of a mark; send the rest now.
            keep = 0
            for n in range(min(len(MARK) - 1, len(pending)), 0, -1):
                if MARK.startswith(pending[-n:]):
                    keep = n
                    break
            self.send(decoder, pending[: len(pending) - keep])
            pending = pending[len(pending) - keep:]

    def sync(self):
        self.synced.clear()
        os.write(self.target, MARK)
        self.synced.wait(10)


out = Capture(1, "stdout")
err = Capture(2, "stderr")
# The code's print() and sys.stdout go to the pipes as they are written.
def _stream(fd):
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", write_through=True)


sys.stdout = _stream(1)
sys.stderr = _stream(2)

namespace = {"__name__": "__main__", "__doc__": None, "__builtins__": __builtins__}
cells = 0


def user_traceback(exc):
    """The traceback of the user's code only (its cells, shown as <stdin>)."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<forge-cell-")
    ]
    if isinstance(exc, SyntaxError) and (exc.filename or "").startswith("<forge-cell-"):
        exc.filename = "<stdin>"
        return "".join(traceback.format_exception_only(type(exc), exc))
    lines = ["Traceback (most recent call last):\n"] if frames else []
    for f in frames:
        lines.append('  File "<stdin>", line %d, in %s\n' % (f.lineno, f.name))
        if f.line:
            lines.append("    %s\n" % f.line.strip())
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


def execute(code, envs):
    global cells
    cells += 1
    name = "<forge-cell-%d>" % cells
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    saved = {}
    for key, value in (envs or {}).items():
        saved[key] = os.environ.get(key)
        os.environ[key] = str(value)
    control, error = "completed", None
    try:
        exec(compile(code, name, "exec"), namespace)
    except KeyboardInterrupt:
        control = "interrupted"
    except SystemExit:
        pass
    except BaseException as e:
        error = {
            "type": "error",
            "name": type(e).__name__,
            "value": str(e),
            "traceback": user_traceback(e),
        }
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    # Everything the code printed goes out before its end.
    while True:
        try:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            out.sync()
            err.sync()
            break
        except KeyboardInterrupt:
            control = "interrupted"
    if error:
        emit(error)
    emit({"type": "control", "text": control})


def main():
    # Between executions ^C (a late timeout) must not end the worker.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    while True:
        try:
            line = commands.readline()
            if not line:
                return
            if not line.strip():
                continue
            msg = json.loads(line)
            envs = msg.get("envs")
            if envs is not None and not isinstance(envs, dict):
                raise ValueError("envs must be an object")
            execute(msg.get("code", ""), envs)
        except KeyboardInterrupt:
            continue
        except Exception as e:
            emit({"type": "error", "name": type(e).__name__, "value": str(e), "traceback": ""})
            emit({"type": "control", "text": "completed"})


main()
