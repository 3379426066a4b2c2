"""The official Python SDK (daytona==0.218.0 from PyPI), unchanged, against `forge local`:
create, exec, files, sessions, snapshots, volumes and delete. Prints one JSON object of what
it saw; the Node test that runs it asserts on it."""
import json
import os

from daytona import (
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaConfig,
    Image,
    SessionExecuteRequest,
    VolumeMount,
)

seen = {}
d = Daytona(DaytonaConfig(api_key=os.environ["FORGE_KEY"], api_url=os.environ["FORGE_URL"]))

sandbox = d.create(timeout=60)
seen["state"] = str(sandbox.state.value if hasattr(sandbox.state, "value") else sandbox.state)
seen["cpu"] = sandbox.cpu
r = sandbox.process.exec("echo $HOME; whoami; echo {1..3}")
seen["exec"] = [r.exit_code, r.result]

sandbox.fs.upload_file(b"hello from python\n", "/home/daytona/p.txt")
seen["cat"] = sandbox.process.exec("cat /home/daytona/p.txt").result
seen["download"] = sandbox.fs.download_file("p.txt").decode()
seen["listed"] = sorted(f.name for f in sandbox.fs.list_files("/home/daytona"))

sandbox.process.create_session("py")
a = sandbox.process.execute_session_command("py", SessionExecuteRequest(command="cd /tmp && export X=1"))
b = sandbox.process.execute_session_command("py", SessionExecuteRequest(command="echo $X; pwd"))
seen["session"] = [a.exit_code, b.exit_code, b.stdout]

snap = d.snapshot.create(CreateSnapshotParams(name="py-snap", image="python:3.12"))
seen["snapshot"] = str(snap.state.value if hasattr(snap.state, "value") else snap.state)
from_snap = d.create(CreateSandboxFromSnapshotParams(snapshot="py-snap"), timeout=60)
seen["from_snapshot"] = from_snap.snapshot
from_snap.delete()

# A declarative Image: RUN and ENV are built; local files need the SDK's S3 upload, whose
# client (obstore) is made with the environment cleared, so it can neither be allowed
# http:// nor trust a local certificate (crates/local/README.md): refused at push access, clearly.
built = d.snapshot.create(
    CreateSnapshotParams(name="py-built", image=Image.base("python:3.12").env({"G": "hi"}).run_commands("echo $G > /home/daytona/built.txt"))
)
from_built = d.create(CreateSandboxFromSnapshotParams(snapshot="py-built"), timeout=60)
seen["built"] = from_built.process.exec("cat /home/daytona/built.txt").result
from_built.delete()
try:
    d.snapshot.create(CreateSnapshotParams(name="py-files", image=Image.base("python:3.12").add_local_file(__file__, "/home/daytona/x.py")))
    seen["local_files"] = "built"
except Exception as e:  # the SDK's DaytonaError
    seen["local_files"] = str(e)

vol = d.volume.create("py-vol")
seen["volume"] = str(vol.state.value if hasattr(vol.state, "value") else vol.state)
with_vol = d.create(
    CreateSandboxFromSnapshotParams(volumes=[VolumeMount(volume_id=vol.id, mount_path="/home/daytona/vol")]),
    timeout=60,
)
with_vol.process.exec("echo shared > /home/daytona/vol/x")
seen["volume_file"] = with_vol.process.exec("cat /home/daytona/vol/x").result
with_vol.delete()

sandbox.delete()
seen["deleted"] = all(s.id != sandbox.id for s in d.list())
print(json.dumps(seen))
