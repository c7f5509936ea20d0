#!/usr/bin/env bash
# Read latency of the catalog through the gateway (wrk: 2 threads, 8 connections, 10 s each).
# usage: bench/catalog-reads.sh BASE_URL RARE_WORD
# The shop must run with the rate limit off (MERCATO_GATEWAY__RATE_LIMIT__ENABLED=false).
# Interim tool until `mercato bench` (issue 6); see BENCHMARKS.md.
set -euo pipefail
base=$1
id=$(curl -s "$base/api/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
# A cursor 90,000 products deep in newest-first order: walk there by offset once, then key from it.
deep=$(curl -s "$base/api/v1/products?page=4500&limit=20" | python3 -c '
import json,sys,base64,datetime
p=json.load(sys.stdin)["items"][-1]
at=datetime.datetime.fromisoformat(p["created_at"].replace("Z","+00:00"))
micros=int(at.timestamp())*1_000_000+at.microsecond
key=json.dumps({"s":"newest","at":micros,"id":p["id"]},separators=(",",":"))
print(base64.urlsafe_b64encode(key.encode()).decode().rstrip("="))')
for name in "list-page-1 /api/v1/products?limit=20" \
            "list-deep-cursor /api/v1/products?limit=20&cursor=$deep" \
            "detail /api/v1/products/$id" \
            "search-common /api/v1/products?q=steel&limit=20" \
            "search-rare /api/v1/products?q=$2&limit=20" \
            "category-filter /api/v1/products?category=outdoor&sort=price_asc&limit=20"; do
  set -- $name
  printf '%-18s ' "$1"
  wrk -t2 -c8 -d10s --latency "$base$2" | awk '/^ +50%/{p50=$2} /^ +99%/{p99=$2} /Requests\/sec/{rps=$2} END{printf "p50 %-8s p99 %-8s req/s %s\n", p50, p99, rps}'
done
