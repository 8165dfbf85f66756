#!/usr/bin/env bash
# End-to-end demo: publish the sample clip as a live RTMP stream, run livesnap, create a
# template, submit a job, watch JPEGs appear, list them, stop the job.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=./bin/livesnap
DATA=${DEMO_DATA:-./data/demo}
API=${DEMO_API:-127.0.0.1:18080}
RTMP=${DEMO_RTMP:-127.0.0.1:19350}
SAMPLE=${LIVESNAP_SAMPLE:-../shared/media/big_buck_bunny_360p.mp4}
WATCH=${DEMO_SECONDS:-16}
STREAM="rtmp://$RTMP/live/bunny"
CREDIT="(Big Buck Bunny (c) Blender Foundation, CC BY 3.0)"
[ -n "${LIVESNAP_SAMPLE:-}" ] && CREDIT="(your clip: $LIVESNAP_SAMPLE)"

if [ ! -f "$SAMPLE" ]; then
  echo "sample clip $SAMPLE not found; generating a test pattern instead"
  CREDIT="(a test pattern made with ffmpeg's testsrc2)"
  SAMPLE=$(mktemp --suffix=.mp4)
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=24 -t 20 \
    -c:v libx264 -g 64 -pix_fmt yuv420p "$SAMPLE"
fi

pids=()
# Stop in reverse order (livesnap, the publisher, then the relay it publishes to).
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT

mkdir -p "$DATA"
echo "== starting an RTMP relay on $RTMP and publishing $SAMPLE to $STREAM"
$BIN rtmp-relay --listen "$RTMP" 2>"$DATA/relay.log" & pids+=($!)
sleep 0.5
# The sample clip's file is cut short: ffmpeg's "partial file" message at each loop is that, and
# the loop goes on; it goes to a log rather than between the demo's lines.
ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$SAMPLE" -map 0:v -map 0:a? -c copy -f flv "$STREAM" 2>"$DATA/ffmpeg.log" & pids+=($!)

echo "== starting livesnap serve on $API (data in $DATA, log in $DATA/livesnap.log)"
$BIN serve --listen "$API" --data "$DATA" 2>"$DATA/livesnap.log" & pids+=($!)
for _ in $(seq 100); do curl -fs "http://$API/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
grep -A3 "created account" "$DATA/livesnap.log" || true

export LIVESNAP_DATA="$DATA" LIVESNAP_ENDPOINT="$API"
call() { echo "\$ livesnap call $*" >&2; $BIN call "$@"; }
field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1; }

tpl=$(call CreateLiveSnapshotTemplate --TemplateName demo --TimeInterval 5 \
  --OverwriteFormat 'snapshot/{JobId}.jpg' --SequenceFormat 'snapshot/{JobId}/{Sequence}-{UnixTimestamp}.jpg')
echo "$tpl"
tid=$(echo "$tpl" | field TemplateId)

job=$(call SubmitLiveSnapshotJob --JobName demo --TemplateId "$tid" \
  --StreamInput "{\"Type\":\"rtmp\",\"Url\":\"$STREAM\"}" \
  --SnapshotOutput '{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"demo-bucket"}')
echo "$job"
jid=$(echo "$job" | field JobId)
# Submit starts the job at once when the stream is live. ffmpeg needs a few seconds to start
# publishing, so the job may still be in init: start it as soon as the stream is there.
for _ in $(seq 60); do
  $BIN call GetLiveSnapshotJob --JobId "$jid" | grep -q '"Status": "started"' && break
  $BIN call SendLiveSnapshotJobCommand --JobId "$jid" --Command start >/dev/null 2>&1 && break
  echo "  (stream not live yet; retrying start)"; sleep 1
done
call GetLiveSnapshotJob --JobId "$jid"

echo "== capturing for $WATCH s (one snapshot every 5 s)"
for i in $(seq "$WATCH"); do
  n=$( (find "$DATA/objects/demo-bucket/snapshot/$jid" -name '*.jpg' 2>/dev/null || true) | wc -l)
  printf '\r  %2ds: %d snapshots' "$i" "$n"; sleep 1
done
echo
start=$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ); end=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)
call ListLiveSnapshotFiles --JobId "$jid" --StartTime "$start" --EndTime "$end" --Limit 100
call SendLiveSnapshotJobCommand --JobId "$jid" --Command stop
call GetLiveSnapshotJob --JobId "$jid" | grep '"Status"'

echo "== the images:"
ls -l "$DATA/objects/demo-bucket/snapshot/$jid" "$DATA/objects/demo-bucket/snapshot/$jid.jpg"
echo "Open them, e.g.: xdg-open $DATA/objects/demo-bucket/snapshot/$jid.jpg"
echo "$CREDIT"
