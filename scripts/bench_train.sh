#!/usr/bin/env bash
# Training throughput of bitlogic beside its PyTorch peers, as a markdown table.
#
#   scripts/bench_train.sh                 # bitlogic only
#   PEERS=1 scripts/bench_train.sh         # and the peers (../shared/peers, set up once)
#
# Model 784 → 6 × 8000 → GroupSum(10), batch 128, THREADS threads (default 2). Each
# configuration runs REPS times (default 3), interleaved, and the median is reported: the
# machines here are shared, so single runs wander. bitlogic rows give mode=false (f32, no
# plan; run step by step alongside reduce-overhead f32, `--interleave`), reduce-overhead f32
# and reduce-overhead bf16; peers run right after, in the same shell. PEERS_DIR defaults to ~/.cache/bitlogic-peers.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PEERS=${PEERS:-0}
PEERS_DIR=${PEERS_DIR:-$HOME/.cache/bitlogic-peers}
# torchlogix at rank 6 takes about 70 s and 14.2 GB of memory (15 GB free needed);
# PEER_R6=0 leaves it out.
r6_peer=""
if [[ "${PEER_R6:-1}" == 1 ]]; then r6_peer="--impl torchlogix --param light --lut-rank 6"; fi
BIN=target/release/bitlogic
cargo build --release -q -p bitlogic-cli

# name | bitlogic args | peer args (empty: no peer run)
CONFIGS=(
  "light, rank 2|--lut-rank 2 --parametrization light|--impl torchlogix --param light --lut-rank 2"
  "difflogic, rank 2|--lut-rank 2 --parametrization difflogic|--impl difflogic"
  "light, rank 4|--lut-rank 4 --parametrization light|--impl torchlogix --param light --lut-rank 4"
  "light, rank 6|--lut-rank 6 --parametrization light|$r6_peer"
)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); v=d['$1']; print(v if v is not None else 'nan')"; }

tmp=$(mktemp -d)
for rep in $(seq "$REPS"); do
  for i in "${!CONFIGS[@]}"; do
    IFS='|' read -r _ args _ <<<"${CONFIGS[$i]}"
    # shellcheck disable=SC2086
    $BIN bench train --in-dim 784 --width 8000 --depth 6 --batch 128 --threads "$THREADS" $args --interleave --json >"$tmp/f32.$i.$rep"
    # shellcheck disable=SC2086
    $BIN bench train --in-dim 784 --width 8000 --depth 6 --batch 128 --threads "$THREADS" $args --amp bf16 --no-baseline --json >"$tmp/bf16.$i.$rep"
  done
done

echo "| model | peer | bitlogic mode=false (f32) | reduce-overhead f32 | reduce-overhead bf16 | bf16 / peer | peak RSS (bf16) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for i in "${!CONFIGS[@]}"; do
  IFS='|' read -r name _ peer <<<"${CONFIGS[$i]}"
  eager=$(for r in $(seq "$REPS"); do field eager_samples_per_second <"$tmp/f32.$i.$r"; done | median)
  f32=$(for r in $(seq "$REPS"); do field samples_per_second <"$tmp/f32.$i.$r"; done | median)
  bf16=$(for r in $(seq "$REPS"); do field samples_per_second <"$tmp/bf16.$i.$r"; done | median)
  rss=$(for r in $(seq "$REPS"); do field peak_rss_bytes <"$tmp/bf16.$i.$r"; done | median)
  peer_sps="—"
  ratio="—"
  if [[ "$PEERS" == 1 && -n "$peer" ]]; then
    # shellcheck disable=SC2086
    peer_sps=$(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 \
      "$PEERS_DIR/venv/bin/python" ../shared/peers/bench/bench_train.py $peer \
      --width 8000 --depth 6 --batch 128 --threads "$THREADS" | tail -1 | field samples_per_s)
    ratio=$(awk -v a="$bf16" -v b="$peer_sps" 'BEGIN {printf "%.0f×", a / b}')
    peer_sps=$(printf "%.0f" "$peer_sps")
  fi
  printf "| %s | %s | %.0f | %.0f | %.0f | %s | %.0f MB |\n" "$name" "$peer_sps" "$eager" "$f32" "$bf16" "$ratio" "$(awk -v r="$rss" 'BEGIN {print r / 1e6}')"
done
rm -rf "$tmp"
