#!/usr/bin/env bash
# Reproduces docs/results.md: every parametrization at one budget, learnable vs fixed
# connections, the issue's 2-epoch bar runs, the GroupedDSP head and DWN's configuration.
# Usage: [THREADS=N] scripts/results.sh [OUT_DIR] [SECTION...]
#        (sections: table learnable bar dsp dwn; THREADS defaults to all cores)
# Prints one markdown row per run; every model is re-checked with `bitlogic eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/results}
shift || true
sections=${*:-table learnable bar dsp dwn}
cargo build --release -q -p bitlogic-cli
bin=target/release/bitlogic
mkdir -p "$out"

run() { # name, then train flags
  local name=$1
  shift
  local start end
  start=$(date +%s.%N)
  "$bin" train --out "$out/$name" --quiet true ${THREADS:+--threads $THREADS} "$@" >"$out/$name.log" 2>&1
  end=$(date +%s.%N)
  local eval
  eval=$("$bin" eval --model "$out/$name/model.safetensors" --json)
  python3 - "$out/$name/metrics.json" "$eval" "$start" "$end" "$name" "$*" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); e = json.loads(sys.argv[2])
wall = float(sys.argv[4]) - float(sys.argv[3])
print(f"| {sys.argv[5]} | {100*m['test_accuracy']:.2f} % | {e['mismatches']} | "
      f"{wall:.0f} s | {m['train_samples_per_second']:,.0f} | `{sys.argv[6]}` |")
PY
}

header() {
  echo
  echo "| run | test accuracy | packed mismatches | wall | samples/s | flags |"
  echo "|---|---|---|---|---|---|"
}

budget=(--lut-rank 4 --width 2000 --depth 2 --epochs 10 --seed 0)
if [[ $sections == *table* ]]; then
  header
  for p in light warp dwn linear polylut neurallut; do
    run "table-$p" --parametrization "$p" --connections fixed "${budget[@]}"
  done
  run table-difflogic --parametrization difflogic --connections fixed --lut-rank 2 \
    --width 2000 --depth 2 --epochs 10 --seed 0
fi
if [[ $sections == *learnable* ]]; then
  header
  run learnable-light --parametrization light --connections learnable "${budget[@]}"
  run learnable-dwn --parametrization dwn --connections learnable "${budget[@]}"
fi
if [[ $sections == *bar* ]]; then
  header
  for p in light warp dwn linear polylut neurallut; do
    run "bar-$p" --parametrization "$p" --lut-rank 4 --connections fixed --width 2000 --depth 2 --epochs 2
  done
  run bar-difflogic --parametrization difflogic --lut-rank 2 --connections fixed --width 2000 --depth 2 --epochs 2
  run bar-light-learnable --parametrization light --lut-rank 4 --connections learnable --width 2000 --depth 2 --epochs 2
fi
if [[ $sections == *dsp* ]]; then
  header
  run dsp-groupsum --parametrization light --connections fixed "${budget[@]}"
  run dsp-grouped --parametrization light --connections fixed --head grouped-dsp "${budget[@]}"
fi
if [[ $sections == *dwn* ]]; then
  header
  run dwn-config --parametrization dwn --lut-rank 6 --connections learnable,fixed \
    --connection-grad linear --num-candidates 128 --width 2000,1000 --tau 3.3333333 --encoder distributive \
    --encoder-bits 3 --encoder-per-feature true --lr 0.01 --lr-schedule step:14:0.1 \
    --batch 32 --epochs 30 --seed 0
fi
