#!/usr/bin/env bash
# Regenerates crates/core/src/onnx/proto.rs, the prost types of the ONNX protobuf schema.
#
# proto.rs is checked in so that building certquant needs no protoc; run this only to move to
# another onnx.proto. It reproduces the checked-in file from exactly these inputs (the ones
# named in proto.rs's header):
#   - onnx/onnx.proto of the `onnx` 1.23.2 Python wheel (PyPI),
#   - prost-build 0.14.6 with feature `cleanup-markdown`,
#   - protoc 36.2 as shipped by protoc-bin-vendored 3.3.0.
# Needs python3 with pip, unzip and cargo; downloads the wheel and the two crates into a
# temporary directory that is removed afterwards.
#
# Usage: crates/core/scripts/gen-onnx-proto.sh [OUTPUT]   (default: crates/core/src/onnx/proto.rs)
# To change a version, change it below and in the header text of step 3.
set -euo pipefail

ONNX_VERSION=1.23.2
PROST_BUILD_VERSION=0.14.6
PROTOC_BIN_VENDORED_VERSION=3.3.0

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../src/onnx/proto.rs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The schema, from the wheel (any platform's wheel holds the same onnx.proto).
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work/wheel" "onnx==$ONNX_VERSION"
mkdir -p "$work/proto"
unzip -q -j "$(ls "$work"/wheel/onnx-*.whl | head -n 1)" onnx/onnx.proto -d "$work/proto"

# 2. A throwaway generator crate running prost-build with the vendored protoc.
mkdir -p "$work/gen/src" "$work/rs"
cat > "$work/gen/Cargo.toml" <<TOML
[package]
name = "gen-onnx-proto"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
prost-build = { version = "=$PROST_BUILD_VERSION", features = ["cleanup-markdown"] }
protoc-bin-vendored = "=$PROTOC_BIN_VENDORED_VERSION"

[workspace]
TOML
cat > "$work/gen/src/main.rs" <<'RS'
fn main() {
    let mut args = std::env::args().skip(1);
    let (dir, out) = (args.next().expect("proto dir"), args.next().expect("out dir"));
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    std::env::set_var("PROTOC", protoc);
    prost_build::Config::new()
        .out_dir(out)
        .compile_protos(&[format!("{dir}/onnx.proto")], &[dir])
        .expect("prost-build");
}
RS
cargo run --quiet --release --manifest-path "$work/gen/Cargo.toml" -- "$work/proto" "$work/rs"

# 3. The header (literal: update its versions together with the ones above), then
#    prost-build's output.
{
    cat <<'HEADER'
//! Rust types for the ONNX protobuf schema (`onnx.proto`, package `onnx`).
//!
//! GENERATED FILE — DO NOT EDIT BY HAND. Generated once from `onnx/onnx.proto` of the
//! `onnx` 1.23.2 Python wheel by prost-build 0.14.6 (feature `cleanup-markdown`, protoc
//! 36.2 from protoc-bin-vendored 3.3.0) and checked in so that building the crate needs
//! no `protoc`. To regenerate, run prost-build's `Config::compile_protos` on that file
//! and replace everything below this header with its output.
#![allow(clippy::all, clippy::pedantic, missing_docs, dead_code, rustdoc::all)]

HEADER
    cat "$work/rs/onnx.rs"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
