#!/bin/sh
# Builds Ferry's rv32 guests with Debian's gcc-riscv64-unknown-elf: `sh guests/build.sh [OUT_DIR]` (default: this
# directory, where the built ELFs are committed). Needs only sh and the cross compiler (no make).
#
# Reproducible: no debug info (-g0), no .comment (-fno-ident), no build id, relative source names (the script runs
# in this directory) and `.file "crt0.S"` in crt0.S, so the output does not depend on where or when it is built.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$HERE"
CC="${CROSS:-riscv64-unknown-elf-}gcc"
CFLAGS="-march=rv32ima_zicsr_zifencei -mabi=ilp32 -nostdlib -ffreestanding -O2 -g0 -Wall -Wextra -Werror
  -fno-tree-loop-distribute-patterns -fno-ident -ffile-prefix-map=$HERE=. -I."
LDFLAGS="-T link.ld -static -Wl,--build-id=none -Wl,--no-warn-rwx-segments"

# build NAME SOURCE [EXTRA_FLAGS...]
build() {
  name=$1
  src=$2
  shift 2
  # shellcheck disable=SC2086 # word splitting of the flag lists is intended
  "$CC" $CFLAGS "$@" $LDFLAGS -o "$OUT/$name.elf" crt0.S rt.c "$src"
}

build sha sha.c
build sha-bench sha.c -DROUNDS=16 -DBUF_SIZE=262144
build dirty dirty.c
build ticker ticker.c
build echo echo.c
build exit exit.c
