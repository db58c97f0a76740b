"""``python -m vm_runtime.linux [--engine E] [--strace] [--argv0 A] -- PROGRAM ARGS...``: the
entry point an exec'd guest program starts from (execve re-runs the emulator)."""

from __future__ import annotations

import sys

from . import LoadError, Options, run_program


def main(args: list[str]) -> int:
    options = Options()
    while args and args[0] != "--":
        flag = args.pop(0)
        if flag == "--engine":
            options.engine = args.pop(0)
        elif flag == "--strace":
            options.strace = True
        elif flag == "--argv0":
            options.argv0 = args.pop(0)
        else:
            print(f"vm: error: unknown option {flag}", file=sys.stderr)
            return 2
    if args and args[0] == "--":
        args.pop(0)
    if not args:
        print("vm: error: no program given", file=sys.stderr)
        return 2
    try:
        return run_program(args[0], args, options=options)
    except LoadError as e:
        print(f"vm: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
