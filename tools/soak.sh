#!/usr/bin/env bash
# The soak: tools/soak.c (see its top comment) built against a release
# build of rook, run nice'd for SECONDS.  tools/soak.sh SECONDS [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: tools/soak.sh SECONDS [CLIENTS]}
dir=build-soak
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
nice -n 10 cmake --build "$dir" -j"$(nproc)" --target rook_static >/dev/null
lib=$(find "$dir" -maxdepth 2 -name 'librook.a' | head -1)
cc -O2 -g -std=c11 -Wall -Wextra -Werror -Iinclude tools/soak.c "$lib" \
	$(pkg-config --libs liburing hwloc 2>/dev/null || echo -luring -lhwloc) -lpthread -o "$dir/soak"
exec nice -n 10 "$dir/soak" "$secs" "${2:-8}"
