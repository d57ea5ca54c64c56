import sys

from packager.targets.android.host.stubs.jar import main

raise SystemExit(main(sys.argv[1:]))
