"""The bundled demo: a shapes classifier (model.keras, labels.txt, samples/, packager.toml) trained by train.py."""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).parent


def demo_args(args: argparse.Namespace) -> argparse.Namespace:
    """Turn ``packager demo`` flags into ``build`` flags on the bundled files."""
    out = Path(args.out)
    from packager.outdir import is_packager_output

    previous_output = is_packager_output(out)  # a folder merely holding a report.json is not ours to delete
    return argparse.Namespace(
        model=None,
        samples=None,
        config=str(HERE / "packager.toml"),
        out=str(out),
        targets=args.targets,
        quantize=args.quantize,
        optimize=args.optimize,
        web_runtime=args.web_runtime,
        force=previous_output,  # re-running the demo replaces its own earlier output, nothing else
        no_cache=args.no_cache,
        quiet=args.quiet,
        verbose=args.verbose,
    )
