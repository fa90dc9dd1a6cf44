# CMake toolchain file: cross-build rook for aarch64 Linux with Debian's
# gcc-aarch64-linux-gnu and the :arm64 multiarch packages (liburing-dev,
# libhwloc-dev), and run what it builds under qemu-user, so that ctest
# works on an x86-64 host:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# tools/test.sh --aarch64 does this and runs the tests.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(ROOK_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${ROOK_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${ROOK_CROSS_TRIPLE}-gcc)

# Debian's multiarch layout: the target's libraries and headers live in
# /usr/lib/aarch64-linux-gnu and /usr/include (shared with the host), the
# cross libc in /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/${ROOK_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config must see only the target's .pc files, never the host's (an
# amd64 criterion.pc would be taken and fail at link time).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${ROOK_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# ctest (and add_test commands naming a target) run through qemu-user.
# No -L /usr/aarch64-linux-gnu: that would take ld.so from the cross libc
# (libc6-arm64-cross, 2.36-8cross1) while ld.so's search finds libc.so.6 of
# libc6:arm64 (2.36-9+deb12u14, pulled in by liburing2:arm64) in
# /lib/aarch64-linux-gnu; the two share the private _rtld_global layout and
# a mismatched pair hangs in fork's child (reclaim_stacks walking a list of
# the wrong offset). The host's root holds a matched pair
# (/lib/ld-linux-aarch64.so.1 from libc6:arm64).
find_program(ROOK_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(ROOK_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ROOK_QEMU_AARCH64})
endif()
