#!/usr/bin/env python3
"""Microscale's engine against llama.cpp's on the same GGUF file, thread counts and tests, side by side.

Usage: scripts/compare-llama-cpp.py PATH/TO/llama-bench [--model FILE] [-p 32,128,512] [-n 128] [-t 1,2] [--pairs 5]

Each pair runs one test once in each engine, back to back, alternating which goes first (both warm up before they
time). A test's ratio is the median over the pairs of microscale t/s / llama.cpp t/s; the tokens-per-second columns
are the medians of each engine's runs. llama.cpp is built outside this repository (see README, "The engine").
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def llama_rate(binary, model, kind, n, threads):
    args = [binary, "-m", model, "-t", str(threads), "-r", "1", "-o", "json"]
    args += ["-p", str(n), "-n", "0"] if kind == "pp" else ["-p", "0", "-n", str(n)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    return float(rows[0]["avg_ts"])


def microscale_rate(binary, model, kind, n, threads):
    args = [binary, "bench", "--model", model, "-t", str(threads), "-r", "1"]
    args += ["-p", str(n), "-n", "0"] if kind == "pp" else ["-p", "0", "-n", str(n)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    m = re.search(r"\| %s%d \| ([0-9.]+)" % (kind, n), out)
    if not m:
        sys.exit("no %s%d row in microscale bench output:\n%s" % (kind, n, out))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("llama_bench", help="path of a llama-bench binary")
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--microscale", default=os.path.join(ROOT, ".build/release/microscale"))
    ap.add_argument("-p", "--prompt", default="32,128,512")
    ap.add_argument("-n", "--generate", default="128")
    ap.add_argument("-t", "--threads", default="1,2")
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args()
    if a.pairs < 1:
        sys.exit("--pairs must be at least 1")
    for path in (a.llama_bench, a.microscale, a.model):
        if not os.path.exists(path):
            sys.exit("not found: %s" % path)
    tests = [("pp", int(p)) for p in a.prompt.split(",") if int(p) > 0]
    tests += [("tg", int(n)) for n in a.generate.split(",") if int(n) > 0]
    threads = [int(t) for t in a.threads.split(",")]

    print("model: %s, %d pairs per test" % (os.path.basename(a.model), a.pairs))
    print()
    print("| threads | test | llama.cpp t/s | microscale t/s | ratio (median of pairs) | ratio range |")
    print("|---|---|---|---|---|---|")
    for t in threads:
        for kind, n in tests:
            ours, theirs, ratios = [], [], []
            for i in range(a.pairs):
                if i % 2 == 0:
                    l = llama_rate(a.llama_bench, a.model, kind, n, t)
                    m = microscale_rate(a.microscale, a.model, kind, n, t)
                else:
                    m = microscale_rate(a.microscale, a.model, kind, n, t)
                    l = llama_rate(a.llama_bench, a.model, kind, n, t)
                ours.append(m)
                theirs.append(l)
                ratios.append(m / l)
            print("| %d | %s%d | %.1f | %.1f | %.2f× | %.2f–%.2f |" % (
                t, kind, n, statistics.median(theirs), statistics.median(ours), statistics.median(ratios),
                min(ratios), max(ratios)), flush=True)


if __name__ == "__main__":
    main()
