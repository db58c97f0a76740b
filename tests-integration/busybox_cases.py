"""Debian's busybox-static as a test program: the cases, and the files they work on.

Shared by the suites that run busybox two ways and compare the two byte for byte (stdout and
exit status): test_user_riscv64.py (riscv64 busybox under qemu-riscv64-static and `vm run`) and
test_user_x86_64_kvm.py (amd64 busybox natively and under `vm run --accel kvm`).

Each case is busybox's own argv (``Case.args``: an applet and its arguments, or ``sh -c
SCRIPT`` via ``sh``) and its stdin. A test runs it in a fresh scratch directory of each run's
own, filled by ``prepare`` (and ``Case.setup`` where set), with the same environment for both
runs. Every input is fixed: file contents, mtimes (``os.utime``; scripts that create files set
``MTIME``), dates given explicitly; so the output depends on busybox and the system under test
alone. ``env-sorted`` prints the environment less PWD and PYTHONPATH.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def _lcg_bytes(n: int, seed: int = 12345) -> bytes:
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(x >> 16 & 0xFF)
    return bytes(out)


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi",
         "chi", "psi", "omega"]


def prepare(d: Path) -> None:
    """The input files every busybox case finds in its working directory."""
    lines = [f"{WORDS[i * 7 % len(WORDS)]} {WORDS[i * 3 % len(WORDS)]} {i * 37 % 101}"
             for i in range(60)]
    (d / "text.txt").write_text("\n".join(lines) + "\n")
    (d / "nums.txt").write_text("".join(f"{(i * 7919) % 53 - 10}\n" for i in range(40)))
    (d / "data.bin").write_bytes(_lcg_bytes(6000))
    (d / "csv.txt").write_text("name,age,city\nann,31,oslo\nbob,27,rome\ncid,45,lima\n"
                               "dee,27,oslo\neve,38,rome\n")
    (d / "prose.txt").write_text(
        "The quick brown fox jumps over the lazy dog.\n" * 3
        + "Pack my box with five dozen liquor jugs!\n"
        + "  leading spaces\ttab\there   trailing   \n" * 2)
    for name in ("text.txt", "nums.txt", "data.bin", "csv.txt", "prose.txt"):
        os.utime(d / name, (1_600_000_000, 1_600_000_000))  # gzip and ls show mtimes


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    stdin: bytes = b""
    setup: Callable[[Path], None] | None = field(default=None, compare=False)


def sh(id_: str, script: str, stdin: bytes = b"") -> Case:
    return Case(id_, ["sh", "-c", script], stdin)


MTIME = "2021-03-04 05:06:07"

BUSYBOX_CASES: list[Case] = [
    # the shell
    sh("sh-loops", "for i in 1 2 3; do echo for $i; done; i=0; while [ $i -lt 5 ]; do "
                   "i=$((i+1)); done; echo while $i; until [ $i -le 2 ]; do i=$((i-1)); done; "
                   "echo until $i"),
    sh("sh-functions", 'f() { echo "f:$1:$#"; return 3; }; f a b c; echo "status $?"; '
                       'g() { local x=inner; echo $x; }; x=outer; g; echo $x; '
                       'fact() { if [ $1 -le 1 ]; then echo 1; else '
                       'echo $(( $1 * $(fact $(($1-1))) )); fi; }; fact 10'),
    sh("sh-pipes", "printf 'b\\na\\nc\\nb\\n' | sort | uniq | tr a-z A-Z | head -2; "
                   "echo one two three | wc -w; cat text.txt | grep alpha | wc -l"),
    sh("sh-subshells", "x=1; (x=2; echo in $x); echo out $x; (cd / && pwd); echo $( (echo deep) ); "
                       "{ echo grouped; echo block; } | wc -l; (exit 7); echo sub $?"),
    sh("sh-arithmetic", "echo $((7*6)) $((2**10)) $((17%5)) $((1<<4)) $(( (3+4)*2 )) "
                        "$((-7/2)) $((0x1f)) $((010)) $((5>3 && 2>1)) $((~0)) $((9^5))"),
    sh("sh-case", "for w in apple banana cherry 42 ''; do case $w in a*) echo A;; "
                  "b*|c*) echo BC;; [0-9]*) echo digit;; '') echo empty;; esac; done"),
    sh("sh-heredoc", "n=5; cat <<EOF\nline $((n+1)) of $n\n\ttabbed\nEOF\n"
                     "cat <<'EOF'\nliteral $n $(echo no)\nEOF\ncat <<-EOF\n\tstripped\n\tEOF\n"),
    sh("sh-command-substitution", 'x=$(echo hi; echo there); echo "$x" | wc -l; '
                                  "y=`echo back ticks`; echo $y; echo $(echo $(echo nested)); "
                                  'n=$(wc -l < text.txt); echo lines=$n'),
    sh("sh-strings", 's=hello.world.txt; echo ${s%.txt} ${s#*.} ${s%%.*} ${#s} ${s:-def} '
                     '${unset:-default} ${s/world/there}; set -- a "b c" d; echo $# "$2"; '
                     'for a in "$@"; do echo "[$a]"; done; IFS=,; set -- $(echo x,y,z); echo $2'),
    sh("sh-test-and-files", "mkdir d && echo x > d/f && [ -d d ] && [ -f d/f ] && echo ok; "
                            "[ -e nope ] || echo missing; [ -s d/f ] && echo nonempty; "
                            "[ abc \\< abd ] && echo less; [ 3 -gt 2 ] && echo gt; "
                            "ln -s f d/l && [ -L d/l ] && readlink d/l; rm -r d && echo gone"),
    sh("sh-redirections", "echo one > o.txt; echo two >> o.txt; cat < o.txt; "
                          "ls nope 2>/dev/null || echo ls failed $?; exec 3> fd3.txt; "
                          "echo via3 >&3; exec 3>&-; cat fd3.txt; cat o.txt nope 2>&1 "
                          "| sed 's/^.*nope.*$/ERR/'"),
    sh("sh-trap-and-status", "trap 'echo trapped' EXIT; false; echo false $?; true; echo "
                             "true $?; ! false && echo negated; sh -c 'exit 42'; echo child $?"),
    sh("sh-read", "while read a b c; do echo \"$c $b $a\"; done; read x < csv.txt; echo $x",
       stdin=b"1 2 3\nfour five six seven\n"),
    sh("sh-kill-self", "echo before; kill -TERM $$; echo after"),
    sh("sh-exit-status", "echo out; exit 3"),
    # checksums and compression
    Case("sha256sum", ["sha256sum", "data.bin", "text.txt"]),
    Case("md5sum", ["md5sum", "data.bin", "csv.txt"]),
    Case("sha1sum-stdin", ["sha1sum"], stdin=b"some input on stdin\n" * 50),
    sh("gzip-roundtrip", "gzip -c text.txt | gunzip -c | cmp - text.txt && echo same; "
                         "gzip -c data.bin > d.gz && gunzip -c d.gz | cmp - data.bin && echo same"),
    sh("gzip-sha256", "gzip -c < prose.txt | sha256sum; gzip -9 -c < text.txt | wc -c"),
    sh("crc32", "crc32 text.txt data.bin; cat prose.txt | crc32"),
    # text tools
    Case("awk-sum", ["awk", "{ s += $3; n[$1]++ } END { print s, NR; "
                            "for (k in n) if (n[k] > 2) c++; print c }", "text.txt"]),
    Case("awk-printf", ["awk", 'BEGIN { printf "%.3f %5d|%-6s|%x %e\\n", 3.14159, 42, "ab", '
                               '255, 12345.678; print 1e6 * 3, int(-3.7), 7/2, length("abc"), '
                               'substr("hello", 2, 3), index("hello", "l"), toupper("x") }']),
    Case("awk-fields", ["awk", "-F,", "NR > 1 && $2 > 30 { print $3 \":\" $1 }", "csv.txt"]),
    Case("sed-substitute", ["sed", "-e", "s/a/A/g", "-e", "3d", "-e", "/omega/s/$/ !/",
                            "text.txt"]),
    Case("sed-ranges", ["sed", "-n", "-e", "2,4p", "-e", "/^pi/,+1p", "-e", "$=", "text.txt"]),
    Case("grep-E", ["grep", "-E", "-n", "^(alpha|beta) [a-z]+ [0-9]$", "text.txt"]),
    Case("grep-options", ["grep", "-c", "-v", "-i", "ALPHA", "text.txt"]),
    Case("sort-n", ["sort", "-n", "nums.txt"]),
    Case("sort-r-u", ["sort", "-r", "-u", "nums.txt"]),
    Case("sort-key", ["sort", "-t", ",", "-k", "2,2n", "-k", "1,1r", "csv.txt"]),
    sh("uniq-c", "sort nums.txt | uniq -c | sort -k1,1nr -k2,2n | head -8"),
    Case("wc", ["wc", "text.txt", "prose.txt", "data.bin"]),
    Case("wc-lwc-stdin", ["wc", "-l", "-w", "-c"], stdin=b"a b c\nd e\n\nf\n"),
    Case("tr", ["tr", "a-z", "A-Z"], stdin=b"Hello, World! 123\n"),
    sh("tr-delete-squeeze", "tr -d aeiou < prose.txt; tr -s ' ' < prose.txt | tail -1"),
    Case("cut", ["cut", "-d", ",", "-f", "1,3", "csv.txt"]),
    Case("cut-chars", ["cut", "-c", "2-5,8", "text.txt"]),
    Case("od", ["od", "-A", "x", "-t", "x1", "prose.txt"]),
    Case("od-chars", ["od", "-c", "csv.txt"]),
    Case("od-words", ["od", "-A", "d", "-t", "d4", "-N", "64", "data.bin"]),
    Case("hexdump", ["hexdump", "-C", "-n", "96", "data.bin"]),
    Case("head", ["head", "-n", "3", "text.txt"]),
    Case("head-bytes", ["head", "-c", "20", "prose.txt"]),
    Case("tail", ["tail", "-n", "2", "text.txt"]),
    Case("tail-from", ["tail", "-n", "+57", "text.txt"]),
    Case("tac-rev", ["sh", "-c", "tac csv.txt | rev"]),
    Case("fold-expand", ["sh", "-c", "fold -w 17 prose.txt | expand -t 4 | head -8"]),
    Case("seq-paste", ["sh", "-c", "seq 1 12 | paste - - -; seq 10 -3 1"]),
    Case("printf", ["printf", "%05d|%-4s|%x|%o|%c|%5.2f|%s\\n", "42", "ab", "255", "8", "xyz",
                    "3.14159", "end"]),
    sh("expr-factor", "expr 3 + 4 \\* 5; expr length hello; expr substr hello 2 3; "
                      "factor 360 9973 1000001"),
    sh("xargs-find", "mkdir -p t/a t/b && touch t/a/1.txt t/b/2.txt t/3.log && "
                     "find t -name '*.txt' | sort | xargs -n1 basename; find t -type d | sort"),
    sh("ls-la-fixed-mtimes", f"mkdir -p tree/sub && printf 12345 > tree/five && "
                             f"echo hi > tree/sub/two && ln -s five tree/link && "
                             f"chmod 640 tree/five && touch -h -d '{MTIME}' tree/* tree/sub/* "
                             f"tree . && ls -la tree && ls -lR tree/sub && ls -1 tree"),
    sh("stat", f"echo abc > s.txt && chmod 604 s.txt && touch -d '{MTIME}' s.txt && "
               "stat -c '%n %s %a %F %h %Y' s.txt csv.txt"),
    sh("cp-mv-rm", "mkdir -p a/b/c && cp csv.txt a/b/c/ && mv a/b/c/csv.txt a/moved && "
                   "cat a/moved | wc -l && ls -R a && rm -r a && ls"),
    sh("dd", "dd if=data.bin bs=100 skip=2 count=3 2>/dev/null | od -A d -t x1 | tail -3; "
             "dd if=prose.txt of=out.txt bs=7 count=4 2>/dev/null; cat out.txt; echo"),
    sh("tee-cmp-diff", "echo hello | tee t1 t2 > /dev/null; cat t1 t2; cmp t1 t2 && echo same; "
                       "echo other > t3; cmp t1 t3; echo cmp $?; diff -q t1 t3; echo diff $?"),
    sh("date-fixed", "date -u -d @86400 '+%Y-%m-%d %H:%M:%S %j %a'; "
                     "date -u -d '2020-02-29 12:34:56' +%s"),
    sh("base64-xxd", "head -c 100 data.bin | base64; printf 'hi there' | xxd; "
                     "echo aGVsbG8K | base64 -d"),
    sh("tar-roundtrip", "mkdir -p pk/x && echo one > pk/x/1 && echo two > pk/2 && "
                        "tar cf p.tar pk && tar tf p.tar | sort && mkdir un && "
                        "tar xf p.tar -C un && cat un/pk/x/1 un/pk/2"),
    sh("bc", "echo '2^64 + 7 * 3; scale=5; 22/7' | bc"),
    sh("env-sorted", "env | grep -v -e ^PWD= -e ^PYTHONPATH= | sort; echo HOME=$HOME"),
]
