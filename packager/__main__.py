from packager.cli import entry

entry()
