"""``packager serve DIR``: serve a built bundle (e.g. ``dist/web``) on localhost to try it by hand.

Only files inside DIR are served (no ``..`` or symlink escapes, no directory listings), gzip-compressed as a
static host serves them. The server listens on 127.0.0.1, which browsers treat as a secure origin, so the service
worker, the camera and offline mode work as they will on a real https host. ``--host 0.0.0.0`` opens it to the
network (to try the page on a phone): an explicit opt-in, with a warning.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import webbrowser
from pathlib import Path

from packager.errors import InputError, UsageError

COMMAND = "serve"
HELP = "serve a built web bundle on localhost"
DESCRIPTION = "Serve OUT/web on 127.0.0.1 to try the demo by hand."


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("dir", metavar="DIR", type=Path, help="folder to serve, e.g. dist/web")
    parser.add_argument("--port", type=int, default=None,
                        help="port on 127.0.0.1 (default: a free port, printed at start)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only). 0.0.0.0 serves every "
                             "device on your network, e.g. a phone (plain http there: no camera, no offline mode)")
    parser.add_argument("--expose-any-folder", action="store_true",
                        help="serve DIR even though it is not a packager web bundle (no index.html and "
                             "manifest.webmanifest): every file in it becomes readable over http")
    parser.add_argument("--open", dest="open_browser", action="store_true",
                        help="open the page in the default web browser")
    return parser


BUNDLE_FILES = ("index.html", "manifest.webmanifest")  # every web bundle packager writes holds these


def is_web_bundle(directory: Path) -> bool:
    return all((directory / name).is_file() and not (directory / name).is_symlink() for name in BUNDLE_FILES)


def serve(directory: Path | str, port: int | None = None, open_browser: bool = False, *, out=None,
          host: str = "127.0.0.1", expose_any_folder: bool = False) -> None:
    """Serve ``directory`` on 127.0.0.1 until interrupted (Ctrl-C). Prints the URL first. A folder that is not a
    packager web bundle (``/``, a home folder) is refused unless ``expose_any_folder``."""
    from packager.targets.web.browser.chromium import StaticServer

    out = out or sys.stdout
    directory = Path(directory)
    if not host.strip():
        raise UsageError("--host is empty", hint="leave --host out to listen on 127.0.0.1 (this machine only), "
                                                 "or give an address such as 127.0.0.1, ::1 or 0.0.0.0")
    if not directory.is_dir():
        raise InputError(f"not a folder: {directory}", hint="pass the folder a build wrote, e.g. dist/web")
    if not expose_any_folder and not is_web_bundle(directory):
        raise InputError(f"{directory} is not a packager web bundle (no {' and '.join(BUNDLE_FILES)} in it): "
                         "serving it would let any page or device that reaches the port read every file in it",
                         where=str(directory.resolve()),
                         hint="pass the web folder a build wrote, e.g. dist/web; to serve this folder anyway, "
                              "add --expose-any-folder")
    if port is not None and not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is out of range", hint="use 1-65535, or leave it out for a free port")
    server = StaticServer(directory, host=host, port=port or 0, quiet=False, compress=True)
    try:
        server.bind()
    except OSError as e:
        import errno

        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            hint = "choose another --port, or leave it out for a free one"
        else:  # e.g. ::1 on a machine without IPv6, or an address this machine does not have
            hint = f"{host} is not an address this machine can listen on; try 127.0.0.1 (the default)"
        raise UsageError(f"cannot listen on {host}:{port or 0}: {e.strerror or e}", hint=hint) from e
    url = server.url
    print(f"Serving {directory.resolve()} at {url}", file=out)
    if server.any_host:
        print(f"warning: listening on {host}: every device that can reach this machine can load these files. "
              "Browsers allow the camera and offline mode on https or localhost only, so on another device over "
              "plain http those parts of the page stay off.", file=out)
    if not (directory / "index.html").is_file():
        print("note: the folder has no index.html", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    server.serve_forever()


def run_serve(args: argparse.Namespace) -> int:
    """CLI entry: returns the exit code (0 after Ctrl-C, the normal way to stop). Ctrl-C stops it even when the
    process was started with SIGINT ignored (a background job of a script inherits that), as ``packager build``."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve(args.dir, port=args.port, open_browser=args.open_browser, host=getattr(args, "host", "127.0.0.1"),
              expose_any_folder=getattr(args, "expose_any_folder", False))
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_serve_arguments(argparse.ArgumentParser(prog="packager serve", description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        return run_serve(args)
    except (InputError, UsageError) as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())


add_arguments, run = add_serve_arguments, run_serve  # the registry's command interface
