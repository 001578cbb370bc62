"""Hand-written hostile ``cortex.yaml`` documents, each with a fragment of the one-line error it
must give when read from a folder holding ``predictor.py``. Shared by the spec tests and the
CLI's (``cortex deploy`` on each)."""

from __future__ import annotations

API = "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n"


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["    config:", "      l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"      l{level}: &l{level} [{refs}]")
    return API + "\n".join(lines) + "\n"


HOSTILE: dict[str, tuple[str, str]] = {
    "billion-laughs": (_laughs(), "aliases expand the document past"),
    "recursive-alias": (API + "    config: {loop: &a [*a]}\n", "an alias refers to a value"),
    "deep-nesting": ("[" * 10_000 + "]" * 10_000, "nested more than 100 levels deep"),
    "python-object-tag": (
        API + "    config: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        "could not determine a constructor for the tag",
    ),
    "huge-integer": (API + "    threads_per_process: " + "9" * 5000 + "\n", "5000 digits"),
    "binary-tag": (API + "    config: {weights: !!binary AAEC}\n", "tag !!binary is not allowed"),
    "lone-surrogate": (API + '    env: {NAME: "\\ud800"}\n', "not valid Unicode text"),
    "nul-in-env": (API + '    env: {NAME: "a\\0b"}\n', "predictor.env 'NAME' holds a NUL"),
    "infinite-factor": (
        API + "  autoscaling: {max_upscale_factor: .inf}\n",
        "autoscaling.max_upscale_factor inf must be a number > 1",
    ),
    "endless-window": (
        API + "  autoscaling: {window: " + "9" * 90 + "s}\n",
        "autoscaling.window '99999",
    ),
    "image-with-newline": (
        API + '    image: "repo/api:1\\n    command: [sh]"\n',
        "predictor.image 'repo/api:1\\n    command: [sh]' is not an image reference",
    ),
    "configmap-path": (
        API + "  project: {configMap: ../../etc/passwd}\n",
        "project.configMap '../../etc/passwd' must be the name of a ConfigMap",
    ),
    "quantity-exponent": (API + "  compute: {mem: 1e999999}\n", "compute.mem '1e999999'"),
    "path-too-long": (
        API + "    python_path: " + "d" * 400 + "\n",
        "is not a usable path (File name too long)",
    ),
    "nul-in-path": (
        API.replace("predictor.py", '"pre\\0dictor.py"'),
        "predictor.path 'pre\\x00dictor.py' is not a usable path (embedded null byte)",
    ),
}
