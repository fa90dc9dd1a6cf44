#!/usr/bin/env bash
# Builds tests/consumer the three ways a user links rook, C and C++, and
# runs each program: find_package of an install, add_subdirectory of the
# source, and pkg-config (shared, with an rpath, and --static).
#   run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs=$(nproc)

cmake --install "$build" --prefix "$work/prefix" >/dev/null

step() { echo "== consumer: $*" >&2; }

step "find_package"
cmake -S "$src/tests/consumer" -B "$work/fp" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/fp" -j"$jobs" >/dev/null
for p in consumer_c consumer_cxx consumer_static; do "$work/fp/$p"; done

step "add_subdirectory"
cmake -S "$src/tests/consumer" -B "$work/sub" -DROOK_SOURCE_DIR="$src" >/dev/null
cmake --build "$work/sub" -j"$jobs" >/dev/null
for p in consumer_c consumer_cxx consumer_static; do "$work/sub/$p"; done

step "pkg-config"
pc=$(dirname "$(find "$work/prefix" -name rook.pc | head -n1)")
export PKG_CONFIG_PATH=$pc
libdir=$(pkg-config --variable=libdir rook)
cc -o "$work/pc_c" "$src/tests/consumer/main.c" $(pkg-config --cflags --libs rook) -Wl,-rpath,"$libdir"
c++ -o "$work/pc_cxx" "$src/tests/consumer/main.cpp" $(pkg-config --cflags --libs rook) -Wl,-rpath,"$libdir"
cc -o "$work/pc_static" "$src/tests/consumer/main.c" $(pkg-config --cflags rook) \
	"$libdir/librook.a" $(pkg-config --static --libs-only-l --libs-only-other rook | sed 's/-lrook//')
for p in pc_c pc_cxx pc_static; do "$work/$p"; done
step "all passed"
