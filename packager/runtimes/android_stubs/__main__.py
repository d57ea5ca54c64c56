import sys

from .jar import main

raise SystemExit(main(sys.argv[1:]))
