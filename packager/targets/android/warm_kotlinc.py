"""The warm kotlinc's child process (``kotlinc_server.start_ahead`` runs ``python -m`` on this module): it renders
the Android module from the build's settings and the signature in the ``.keras`` file's config.json, writes the
warm-up compile's arguments, then ``exec``s the JVM that compiles them and serves the build's compiles."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from packager.keras_config import config_preview
from packager.source import Source
from packager.spec import TensorSpec
from packager.targets.android.checks import kotlin_inputs, render_preview
from packager.targets.android.host import tools as host
from packager.targets.android.host.jvm_runner import compiled_java
from packager.targets.android.host.kotlinc_server import SERVER_JAVA, _server_command


def become_server(folder: Path) -> None:
    """The child: the warm-up module rendered, then ``exec`` the JVM (which keeps this process's stdin/stdout)."""
    spec = pickle.loads((folder / "spec.pickle").read_bytes())
    preview = config_preview(spec) or Source(  # else a guess: one image in, one vector out
        spec, "keras", folder, None, [TensorSpec("input", (None, 224, 224, 3))], [TensorSpec("output_0", (None, 2))])
    _, module = render_preview(spec, preview, folder)
    inputs = kotlin_inputs(module, folder)
    res, server_dir = compiled_java("KotlincServer", SERVER_JAVA, folder)
    if res.returncode != 0:
        sys.exit(1)
    warmup = host.kotlinc_args(inputs.kotlin, folder / "classes", inputs.classpath)
    (folder / "warmup.args").write_text("".join(a + "\0" for a in warmup), encoding="utf-8")
    os.execv(*_server_command(server_dir, warmup))


if __name__ == "__main__":
    become_server(Path(sys.argv[1]))
