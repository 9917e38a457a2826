#!/bin/sh
# Builds bench/guests/x86-dirty.bin (a 512-byte boot sector) from x86-dirty.S with Debian's x86 binutils.
# Usage: sh bench/guests/build.sh [OUTDIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --32 -o "$tmp/x86-dirty.o" "$here/x86-dirty.S"
ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$out/x86-dirty.bin" "$tmp/x86-dirty.o"
size=$(wc -c < "$out/x86-dirty.bin")
if [ "$size" -ne 512 ]; then echo "x86-dirty.bin is $size bytes, expected 512" >&2; exit 1; fi
