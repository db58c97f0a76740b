"""``python -m vm_runtime.linux [--engine E] [--strace] [--stats] [--sigmask HEX]
[--sigign HEX] [--argv0 A] -- PROGRAM ARGS...``: the entry point an exec'd guest program
starts from (execve re-runs the emulator; the signal mask and the ignored signals are what
the guest carries over an execve)."""

from __future__ import annotations

import os
import sys

from . import LoadError, Options, run_program


def main(args: list[str]) -> int:
    options = Options()
    while args and args[0] != "--":
        flag = args.pop(0)
        try:
            if flag == "--engine":
                options.engine = args.pop(0)
            elif flag == "--strace":
                options.strace = True
            elif flag == "--stats":
                options.stats = True
            elif flag == "--argv0":
                options.argv0 = args.pop(0)
            elif flag == "--sigmask":
                options.sigmask = int(args.pop(0), 16)
            elif flag == "--sigign":
                options.sigign = int(args.pop(0), 16)
            else:
                print(f"vm: error: unknown option {flag}", file=sys.stderr)
                return 2
        except (IndexError, ValueError):
            print(f"vm: error: {flag} needs a value", file=sys.stderr)
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
    except Exception as exc:  # a failure of the emulator: one line, never a traceback
        os.write(2, f"vm: internal error: {exc!r}\n".encode(errors="replace"))
        return 70


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
