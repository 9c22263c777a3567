#!/usr/bin/env bash
# Regenerate the committed reports (reports/*.pdf) and the README's page images
# (reports/png/*.png) from the bundled scenarios. Run from anywhere:
#     bash reports/make_reports.sh
# The reports are byte-reproducible: rerunning with the same simkit (and matplotlib) version
# leaves `git status` clean.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for name in chatbot-llama3-8b-h100 news-vs-contracts interleaved-vs-uniform-128k \
            system-prompt-caching cheapest-70b-20qps disaggregation-long-prompts \
            speculative-decoding; do
    python -m simkit report "scenarios/$name.toml" -o "reports/$name.pdf" --png-dir "$tmp/$name"
done

# two pages of the capacity scenario for the README
mkdir -p reports/png
cp "$tmp/chatbot-llama3-8b-h100/04-scaling-with-context-length.png" \
   reports/png/chatbot-llama3-8b-h100-scaling.png
cp "$tmp/chatbot-llama3-8b-h100/08-capacity-plan.png" \
   reports/png/chatbot-llama3-8b-h100-capacity-plan.png
ls -l reports/*.pdf reports/png/*.png
