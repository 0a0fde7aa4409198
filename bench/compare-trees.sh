#!/usr/bin/env bash
# Old tree vs new tree, interleaved: bench overlay (tapmesh + kernel VXLAN), N rounds.
# usage: bench/compare-trees.sh OLD_DIR NEW_DIR ROUNDS OUT (BENCH_ARGS: more bench overlay options)
set -u
old=$1; new=$2; rounds=${3:-3}; out=${4:-/tmp/cmp}
mkdir -p "$out"
for i in $(seq 1 "$rounds"); do
  for t in old new; do
    dir=$old; [ $t = new ] && dir=$new
    echo "== round $i $t ($dir) $(date +%T)" >&2
    (cd "$dir" && node dist/bench/main.js overlay --systems kernel-vxlan,tapmesh --runs 1 --seconds 8 --pings 1000 ${BENCH_ARGS:-} --out "$out/$t-$i" > "$out/$t-$i.md" 2> "$out/$t-$i.err") || echo "failed $t $i" >&2
  done
done
python3 - "$out" "$rounds" <<'PY'
import json,sys,glob,statistics as st
out,rounds=sys.argv[1],int(sys.argv[2])
res={}
KEYS=('tcp1Gbps','tcp4Gbps','pingP50Ms','pingP99Ms','cpuSecPerGB','ping1P50Ms','ping50P50Ms','ping500P50Ms')
for t in ('old','new'):
  for i in range(1,rounds+1):
    for f in [f for f in glob.glob(f'{out}/{t}-{i}/*.json') if not f.endswith('latest.json')]:
      d=json.load(open(f))
      for s in d['systems']:
        if s['status']!='ok': continue
        for k in KEYS:
          if s['figures'].get(k) is not None: res.setdefault((t,s['id'],k),[]).append(s['figures'][k])
for k in KEYS:
  o=res.get(('old','tapmesh',k),[]); n=res.get(('new','tapmesh',k),[]); ko=res.get(('old','kernel-vxlan',k),[]); kn=res.get(('new','kernel-vxlan',k),[])
  if o and n:
    print(f"{k}: old {['%.3f'%x for x in o]} median {st.median(o):.3f} | new {['%.3f'%x for x in n]} median {st.median(n):.3f} | new/old {st.median(n)/st.median(o):.3f} | kernel (old runs / new runs) {st.median(ko) if ko else float('nan'):.3f} / {st.median(kn) if kn else float('nan'):.3f}")
PY
